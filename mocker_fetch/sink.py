"""Where a blob's bytes go while it downloads: a file, and a hash of what was written."""

import hashlib
import queue
import threading


class Sink:
    """An open file that a blob is streamed into, hashed as it is written.

    Hashing and writing run on a helper thread, so they overlap the network
    reads of the download thread (hashlib, write(2) and recv(2) all release
    the GIL): a pull then costs about max(recv, hash + write), not their sum.
    Use it as a context manager, so the helper thread always ends.
    """

    DEPTH = 8   # chunks in flight between the two threads

    def __init__(self, file, hasher):
        self.file = file
        self.hasher = hasher
        self.written = file.seek(0, 2)    # bytes received so far (queued or on disk)
        self._queue = queue.Queue(self.DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="blob-writer", daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._queue.put(None)
        self._thread.join()

    def write(self, chunk: bytes) -> None:
        if self._error:
            raise self._error
        self._queue.put(chunk)
        self.written += len(chunk)

    def flush(self) -> None:
        """Wait until every chunk is hashed and written; raise what went wrong there."""
        self._queue.join()
        if self._error:
            raise self._error

    def restart(self) -> None:
        """Forget what was written (the server sent the blob from its start)."""
        self.flush()
        self.file.seek(0)
        self.file.truncate()
        self.hasher = hashlib.new(self.hasher.name)
        self.written = 0

    def _write_all(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:   # an unbuffered write(2) may write less than asked
            view = view[self.file.write(view):]

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            try:
                if self._error is None:
                    self._write_all(chunk)
                    self.hasher.update(chunk)
            except BaseException as err:   # ENOSPC and friends: reported by write()/flush()
                self._error = err
            finally:
                self._queue.task_done()
        self._queue.task_done()
