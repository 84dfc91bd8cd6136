"""Files that are never seen half-written, and locks between processes.

Standard library only, and no pathlib: mocker-runc's start path uses it too."""

import contextlib
import fcntl
import json
import os


def atomic_write(path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Write data to path so that readers see the old file or the new one, never a mix.

    The data goes to a temp file in the same directory and is renamed over
    path (rename(2) is atomic within a filesystem). durable=False skips the
    fsync, for state that is gone at reboot anyway (the runtime's, on tmpfs,
    as runc keeps it): that is the container start path.

    The directory may be one others can write (a --pid-file in /tmp): the temp
    name is unpredictable, and O_EXCL | O_NOFOLLOW refuse a file or symlink
    planted there, so nothing is written through a link into someone else's
    file; rename(2) then replaces whatever sits at path itself, a symlink
    included, without following it.
    """
    directory, name = os.path.split(os.fspath(path))
    tmp = os.path.join(directory, f".{name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)   # O_CREAT's mode is masked by the umask; the caller's is meant
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write_json(path, obj, mode: int = 0o644) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False).encode() + b"\n", mode)


def read_json(path):
    with open(path, "rb") as f:
        return json.load(f)


@contextlib.contextmanager
def locked(path, shared: bool = False):
    """Hold an flock(2) on path (created if missing) for the with-block."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)
