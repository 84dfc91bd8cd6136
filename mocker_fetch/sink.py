"""Where a blob's bytes go while it downloads: a file, and a hash of what was written.

A blob must be on disk (fdatasync) before it is renamed into blobs/. Left to
the end, that sync of a 200 MB layer waits ~50 ms for the disk with nothing
else to do; so every FLUSH_EVERY bytes a helper thread starts a sync of what
is written so far, and the disk works while the download goes on. The last
sync then has only the tail left.

(Hashing and writing on a helper thread, overlapping the socket reads, was
tried and measured: on two busy cores it gained nothing, so it stays simple.)
"""

import hashlib
import os
import threading

FLUSH_EVERY = 32 << 20   # bytes; measured against 16 and 64 MB on the 200 MB bench layer


class Sink:
    """An open, unbuffered file that a blob is streamed into, hashed as it is written."""

    def __init__(self, file, hasher):
        self.file = file
        self.hasher = hasher
        self.written = file.seek(0, 2)    # a resumed download starts after what is there
        self._flushed_at = self.written
        self._flush: threading.Thread | None = None
        self._flush_error: OSError | None = None

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:   # an unbuffered write(2) may write less than asked
            view = view[self.file.write(view):]
        self.hasher.update(chunk)
        self.written += len(chunk)
        if self.written - self._flushed_at >= FLUSH_EVERY and not self._flushing():
            self._flushed_at = self.written
            self._flush = threading.Thread(target=self._flush_now, name="flush", daemon=True)
            self._flush.start()

    def restart(self) -> None:
        """Forget what was written (the server sent the blob from its start)."""
        self.file.seek(0)
        self.file.truncate()
        self.hasher = hashlib.new(self.hasher.name)
        self.written = self._flushed_at = 0

    def sync(self) -> None:
        """Put every byte written on disk (after any early flush, whose error it raises:
        a failed fdatasync is reported once, so the last one may not see it again)."""
        self.wait_for_flush()
        if self._flush_error is not None:
            raise self._flush_error
        os.fdatasync(self.file.fileno())

    def wait_for_flush(self) -> None:
        """Let an early flush end: call it before the file is closed."""
        if self._flush is not None:
            self._flush.join()

    def _flushing(self) -> bool:
        return self._flush is not None and self._flush.is_alive()

    def _flush_now(self) -> None:
        try:
            os.fdatasync(self.file.fileno())
        except OSError as err:
            self._flush_error = err
