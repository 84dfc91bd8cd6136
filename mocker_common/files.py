"""Files that are never seen half-written, and locks between processes."""

import contextlib
import fcntl
import json
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write data to path so that readers see the old file or the new one, never a mix.

    The data goes to a temp file in the same directory, is flushed to disk,
    and then renamed over path (rename(2) is atomic within a filesystem).
    """
    import tempfile  # here: it imports shutil and random, which locked() users need not load
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj, mode: int = 0o644) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False).encode() + b"\n", mode)


def read_json(path: Path):
    with open(path, "rb") as f:
        return json.load(f)


@contextlib.contextmanager
def locked(path: Path, shared: bool = False):
    """Hold an flock(2) on path (created if missing) for the with-block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)
