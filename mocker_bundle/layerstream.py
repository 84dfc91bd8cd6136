"""The bytes of one layer blob, decompressed, with both its digests checked.

image-spec: a layer descriptor's digest is of the blob as stored (compressed);
the config's rootfs.diff_ids[i] is the digest of the uncompressed tar. We check
both. A producer thread reads the blob, hashes it, inflates it (zlib for gzip;
a `zstd -dc` child for zstd) and hashes the tar, while the main thread writes
files: zlib and hashlib release the GIL, so this uses a second core. A mismatch
is only known when the stream ends, so callers unpack into a scratch directory
and keep it only after finish() succeeded.
"""

import queue
import threading
import zlib
from pathlib import Path

from mocker_common.digest import CHUNK, check_digest, digest_file, new_hasher
from mocker_common.errors import Corrupt, MockerError, NotFound
from mocker_common.mediatypes import layer_compression

COMPRESSIONS = ("", "gzip", "zstd")
# zstd's own decompressor beats anything in Python's standard library.
ZSTD = ["zstd", "-dcq"]
# Pieces of 256 KiB: the main thread starts writing files after the first one,
# not after a whole megabyte was read, hashed and inflated (on a small image,
# that wait was a fifth of the unpack); smaller pieces cost more queue hand-offs.
PIECE = 256 << 10
QUEUE_CHUNKS = 64          # decompressed pieces in flight between the two threads
_GZIP_WBITS = 31           # zlib: expect a gzip header and trailer


class LayerStream:
    """A read()-able stream of a layer's tar; use as a context manager, call finish()."""

    def __init__(self, blob: Path, media_type: str, digest: str, diff_id: str):
        self.blob, self.digest, self.diff_id = Path(blob), digest, diff_id
        self.compression = layer_compression(media_type)
        if self.compression not in COMPRESSIONS:
            raise MockerError(f"layer {digest}: unsupported compression in {media_type}")
        try:
            self._file = open(self.blob, "rb")
        except FileNotFoundError:
            raise NotFound(f"layer {digest} is missing from the image layout ({self.blob})") from None
        self._tar_hasher = new_hasher(diff_id)
        self._blob_hasher = new_hasher(digest) if self.compression == "gzip" else None
        self._proc = None
        self._error = None
        self._queue = queue.Queue(QUEUE_CHUNKS)
        self._stop = threading.Event()
        self._buffer, self._pos, self._eof = b"", 0, False   # a chunk being handed out
        self._thread = threading.Thread(target=self._produce, daemon=True)
        self._thread.start()

    # -- the producer thread -----------------------------------------------------

    def _produce(self) -> None:
        try:
            for chunk in self._tar_chunks():
                self._tar_hasher.update(chunk)
                if not self._put(chunk):
                    return
        except (zlib.error, OSError, Corrupt) as err:
            self._error = err
        finally:
            self._put(None)     # end of stream

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _tar_chunks(self):
        if self.compression == "gzip":
            yield from self._gunzip()
        elif self.compression == "zstd":
            import subprocess   # only for zstd layers
            self._proc = subprocess.Popen(ZSTD, stdin=self._file, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE)
            while chunk := self._proc.stdout.read(PIECE):
                yield chunk
        else:
            while chunk := self._file.read(PIECE):
                yield chunk

    def _gunzip(self):
        inflater = zlib.decompressobj(_GZIP_WBITS)
        while raw := self._file.read(PIECE):
            self._blob_hasher.update(raw)
            while raw:
                # Bounded output: a small blob may inflate to gigabytes.
                yield inflater.decompress(raw, PIECE)
                raw = inflater.unconsumed_tail
                if inflater.eof and inflater.unused_data:   # a next gzip member follows
                    raw = inflater.unused_data + raw
                    inflater = zlib.decompressobj(_GZIP_WBITS)
        yield inflater.flush()
        if not inflater.eof:
            raise Corrupt("the gzip stream is truncated")

    # -- the consumer side ---------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        """Up to size bytes (fewer at a chunk's end, b"" at the end), as a raw read() does."""
        if self._pos >= len(self._buffer):
            if self._eof:
                return b""
            chunk = self._queue.get()
            if chunk is None:
                self._eof = True
                return b""
            if size < 0 or len(chunk) <= size:
                return chunk            # the common case: no copy
            self._buffer, self._pos = chunk, 0
        end = len(self._buffer) if size < 0 else self._pos + size
        data = self._buffer[self._pos:end]
        self._pos += len(data)
        return data

    def finish(self) -> None:
        """Read what the tar left unread, then check both digests (raise Corrupt)."""
        while self.read(CHUNK):
            pass
        self._thread.join()
        # The stored blob's digest first: if it is wrong, that explains any error after.
        if self._blob_hasher is not None:
            blob_digest = _hexdigest(self._blob_hasher)
        elif self.compression:
            blob_digest = digest_file(self.blob, self.digest.split(":", 1)[0])
        else:
            blob_digest = _hexdigest(self._tar_hasher)
        check_digest(self.digest, blob_digest, f"layer blob {self.blob.name}")
        if self._error is not None:
            raise Corrupt(f"layer {self.digest}: cannot decompress ({self.compression}): "
                          f"{self._error}")
        if self._proc is not None:
            stderr = self._proc.stderr.read().decode(errors="replace").strip()
            if self._proc.wait() != 0:
                detail = stderr.splitlines()[-1] if stderr else f"exit {self._proc.returncode}"
                raise Corrupt(f"layer {self.digest}: cannot decompress ({self.compression}): {detail}")
        check_digest(self.diff_id, _hexdigest(self._tar_hasher),
                     f"uncompressed layer {self.digest} (config rootfs.diff_ids)")

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
            try:
                self._queue.get(timeout=0.1)   # unblock a producer waiting to put
            except queue.Empty:
                pass
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc.stdout.close()
            self._proc.stderr.close()
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
