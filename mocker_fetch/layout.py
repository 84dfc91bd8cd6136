"""An OCI image layout on disk (image-spec image-layout.md), safe to share.

    LAYOUT/oci-layout            {"imageLayoutVersion": "1.0.0"}
    LAYOUT/index.json            the images, named by org.opencontainers.image.ref.name
    LAYOUT/blobs/sha256/<hex>    content, addressed by digest
    LAYOUT/.mocker/              ours, hidden: locks and partial downloads

Rules that keep it safe to share between processes:
- a blob appears under blobs/ only complete and verified (temp file, rename);
- index.json is replaced atomically, under a lock, re-read inside the lock;
- pulls hold the "gc" lock shared, removal and garbage collection hold it
  exclusively, so a collector never deletes blobs a pull has not named yet.
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
from pathlib import Path

from mocker_common.digest import blob_path, check_digest, digest_bytes, new_hasher, parse_digest
from mocker_common.errors import Corrupt, MockerError
from mocker_common.files import atomic_write, atomic_write_json, locked, read_json
from mocker_common.mediatypes import INDEXES, MANIFESTS, REF_NAME

log = logging.getLogger("mocker.fetch")

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
EMPTY_INDEX = {"schemaVersion": 2, "manifests": []}


class Layout:
    def __init__(self, path: Path):
        self.path = Path(path)

    # -- structure -------------------------------------------------------------------------

    @property
    def private(self) -> Path:
        return self.path / ".mocker"

    def exists(self) -> bool:
        return (self.path / "oci-layout").is_file()

    def create(self) -> None:
        """Make the directory a valid, empty layout (if it is not one already)."""
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.private / "partial").mkdir(parents=True, exist_ok=True)
        with self.index_lock():
            if not (self.path / "oci-layout").exists():
                atomic_write_json(self.path / "oci-layout", LAYOUT_VERSION)
            if not (self.path / "index.json").exists():
                atomic_write_json(self.path / "index.json", EMPTY_INDEX)

    def index_lock(self):
        return locked(self.private / "index.lock")

    def gc_lock(self, exclusive: bool):
        return locked(self.private / "gc.lock", shared=not exclusive)

    # -- blobs -----------------------------------------------------------------------------

    def blob(self, digest: str) -> Path:
        return blob_path(self.path, digest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """Is the blob stored (and, if size is given, of that size)?"""
        try:
            stat = self.blob(digest).stat()
        except (FileNotFoundError, MockerError):   # absent, or not a digest we can store
            return False
        return size is None or stat.st_size == size

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob(digest).read_bytes()
        except FileNotFoundError:
            raise MockerError(f"blob {digest} is missing from {self.path}") from None

    def put_blob(self, digest: str, data: bytes) -> None:
        """Store a small blob held in memory (manifests, configs), after checking it."""
        check_digest(digest, digest_bytes(data, parse_digest(digest)[0]), "blob")
        if not self.has_blob(digest, len(data)):
            self.blob(digest).parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.blob(digest), data)

    @contextlib.contextmanager
    def partial(self, digest: str):
        """Open and lock the partial download of a blob; yield (path, file, hasher).

        The file survives an interrupted pull, so the next one resumes it: the
        bytes already there are hashed again first. The flock makes a second
        pull of the same blob wait rather than write the same file.
        """
        path = self.private / "partial" / parse_digest(digest)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        with _open_locked(path) as file:
            hasher = new_hasher(digest)
            file.seek(0)
            while chunk := file.read(1 << 20):
                hasher.update(chunk)
            try:
                yield path, file, hasher
            finally:
                _unlink_if_empty(path, file)

    def commit_partial(self, path: Path, digest: str, actual: str, size: int) -> None:
        """Rename a finished download into blobs/ if its digest and size match."""
        written = path.stat().st_size
        if actual != digest or written != size:
            path.unlink()
            check_digest(digest, actual, "blob")
            raise Corrupt(f"blob {digest}: {written} bytes instead of {size}")
        self.blob(digest).parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, self.blob(digest))

    # -- index.json --------------------------------------------------------------------------

    def read_index(self) -> dict:
        try:
            index = read_json(self.path / "index.json")
        except FileNotFoundError:
            return dict(EMPTY_INDEX)
        except ValueError as err:
            raise Corrupt(f"{self.path}/index.json is not valid JSON: {err}") from None
        if not isinstance(index.get("manifests"), list):
            raise Corrupt(f"{self.path}/index.json has no manifests list")
        return index

    def lookup(self, refname: str) -> dict | None:
        """The index.json descriptor named refname, if any."""
        for entry in self.read_index()["manifests"]:
            if _refname(entry) == refname:
                return entry
        return None

    def tag(self, refname: str, descriptor: dict) -> None:
        """Name descriptor refname in index.json, replacing what had that name."""
        entry = dict(descriptor)
        entry["annotations"] = {**descriptor.get("annotations", {}), REF_NAME: refname}
        with self.index_lock():
            index = self.read_index()
            if entry in index["manifests"]:
                return
            index["manifests"] = [e for e in index["manifests"] if _refname(e) != refname]
            index["manifests"].append(entry)
            atomic_write_json(self.path / "index.json", index)

    def untag(self, refnames: set[str]) -> list[dict]:
        """Drop the index.json entries with these names; return what was dropped."""
        return self._drop(lambda entry: _refname(entry) in refnames)

    def drop_untagged(self) -> list[dict]:
        """Drop entries with no ref name (dangling images); return them."""
        return self._drop(lambda entry: _refname(entry) is None)

    def _drop(self, doomed) -> list[dict]:
        with self.index_lock():
            index = self.read_index()
            dropped = [e for e in index["manifests"] if doomed(e)]
            if dropped:
                index["manifests"] = [e for e in index["manifests"] if not doomed(e)]
                atomic_write_json(self.path / "index.json", index)
            return dropped

    # -- garbage collection -------------------------------------------------------------------

    def referenced(self) -> set[str]:
        """Every digest reachable from index.json: indexes, manifests, configs, layers."""
        seen: set[str] = set()
        todo = list(self.read_index()["manifests"])
        while todo:
            descriptor = todo.pop()
            digest = descriptor.get("digest", "")
            if digest in seen:
                continue
            seen.add(digest)
            if descriptor.get("mediaType") not in (*INDEXES, *MANIFESTS) or not self.has_blob(digest):
                continue   # a config or a layer: nothing further to follow
            try:
                document = json.loads(self.read_blob(digest))
            except ValueError:
                continue
            if isinstance(document, dict):
                todo += document.get("manifests", []) + document.get("layers", [])
                if isinstance(document.get("config"), dict):
                    todo.append(document["config"])
        return seen

    def collect_garbage(self) -> tuple[int, int]:
        """Delete blobs nothing references (call with gc_lock held); return (count, bytes)."""
        keep = self.referenced()
        count = freed = 0
        for directory in (self.path / "blobs").iterdir():
            if not directory.is_dir():
                continue
            for blob in directory.iterdir():
                if f"{directory.name}:{blob.name}" in keep:
                    continue
                size = blob.stat().st_size
                try:
                    blob.unlink()
                except OSError as err:
                    if err.errno != errno.ENOENT:
                        raise
                    continue
                log.info("deleted blob %s:%s (%d bytes)", directory.name, blob.name, size)
                count, freed = count + 1, freed + size
        for leftover in (self.private / "partial").glob("*"):
            leftover.unlink(missing_ok=True)   # interrupted pulls' bytes: free them too
        return count, freed


def _open_locked(path: Path):
    """Open path for appending and flock it, making sure the lock is on the file
    that is still at path: while we waited, the holder may have renamed its file
    into blobs/ or deleted it, and then we must start on a new one."""
    while True:
        file = open(path, "a+b", buffering=0)   # unbuffered: no bytes hide in a buffer
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(file.fileno()), os.stat(path)):
                return file
        except FileNotFoundError:
            pass
        file.close()


def _refname(entry: dict) -> str | None:
    return (entry.get("annotations") or {}).get(REF_NAME)


def _unlink_if_empty(path: Path, file) -> None:
    """Remove an empty partial file that is still ours (nothing worth resuming)."""
    try:
        mine = os.fstat(file.fileno())
        if os.path.samestat(os.stat(path), mine) and mine.st_size == 0:
            path.unlink()
    except FileNotFoundError:
        pass
