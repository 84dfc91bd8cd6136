"""The bytes of one layer blob, decompressed, with both its digests checked.

image-spec: a layer descriptor's digest is of the blob as stored (compressed);
the config's rootfs.diff_ids[i] is the digest of the uncompressed tar. We check
both. The tar is streamed through a `gzip -dc` / `zstd -dc` child process, so
decompression runs on another core while Python writes files; the compressed
digest is computed by a thread meanwhile (hashlib releases the GIL). A mismatch
is found when the stream ends, so callers unpack into a scratch directory and
keep it only after finish() succeeded.
"""

import subprocess
import threading
from pathlib import Path

from mocker_common.digest import CHUNK, check_digest, digest_file, new_hasher
from mocker_common.errors import Corrupt, MockerError, NotFound
from mocker_common.mediatypes import layer_compression

DECOMPRESSORS = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dcq"]}


class LayerStream:
    """A read()-able stream of a layer's tar; use as a context manager, call finish()."""

    def __init__(self, blob: Path, media_type: str, digest: str, diff_id: str):
        self.blob, self.digest, self.diff_id = Path(blob), digest, diff_id
        self.compression = layer_compression(media_type)
        if self.compression and self.compression not in DECOMPRESSORS:
            raise MockerError(f"layer {digest}: unsupported compression in {media_type}")
        try:
            self._file = open(self.blob, "rb")
        except FileNotFoundError:
            raise NotFound(f"layer {digest} is missing from the image layout ({self.blob})") from None
        self._hasher = new_hasher(diff_id)
        self._proc = None
        self._blob_digest = {}
        self._thread = None
        if self.compression:
            self._proc = subprocess.Popen(DECOMPRESSORS[self.compression], stdin=self._file,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          bufsize=CHUNK)
            self._source = self._proc.stdout
            self._thread = threading.Thread(target=self._digest_blob, daemon=True)
            self._thread.start()
        else:
            self._source = self._file

    def _digest_blob(self) -> None:
        algorithm = self.digest.split(":", 1)[0]
        try:
            self._blob_digest["value"] = digest_file(self.blob, algorithm)
        except OSError as err:
            self._blob_digest["error"] = err

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._hasher.update(data)
        return data

    def finish(self) -> None:
        """Read what the tar left unread, then check both digests (raise Corrupt)."""
        while self.read(CHUNK):
            pass
        if self._proc is not None:
            # The stored blob's digest first: if it is wrong, that explains everything after.
            self._thread.join()
            if "error" in self._blob_digest:
                raise self._blob_digest["error"]
            check_digest(self.digest, self._blob_digest["value"], f"layer blob {self.blob.name}")
            stderr = self._proc.stderr.read().decode(errors="replace").strip()
            if self._proc.wait() != 0:
                detail = stderr.splitlines()[-1] if stderr else f"exit {self._proc.returncode}"
                raise Corrupt(f"layer {self.digest}: cannot decompress ({self.compression}): {detail}")
        else:
            check_digest(self.digest, _hexdigest(self._hasher), f"layer blob {self.blob.name}")
        check_digest(self.diff_id, _hexdigest(self._hasher),
                     f"uncompressed layer {self.digest} (config rootfs.diff_ids)")

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None:
            self._proc.stdout.close()
            self._proc.stderr.close()
        if self._thread is not None:
            self._thread.join()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _hexdigest(hasher) -> str:
    return f"{hasher.name}:{hasher.hexdigest()}"


def unpack_verified(blob: Path, descriptor: dict, diff_id: str, dest: Path, overlay: bool) -> None:
    """Unpack a layer blob into dest (see extract.py), then check its digests.

    dest may hold a partial tree when this raises: callers throw it away.
    When the tar is unreadable, a bad digest or decompression error is the real
    cause and is reported instead.
    """
    from .extract import unpack_layer
    what = f"layer {descriptor['digest']}"
    with LayerStream(blob, descriptor.get("mediaType", ""), descriptor["digest"], diff_id) as stream:
        try:
            unpack_layer(stream, dest, overlay=overlay, what=what)
        except Corrupt:
            stream.finish()      # raises the digest or decompression error, if there is one
            raise
        stream.finish()
