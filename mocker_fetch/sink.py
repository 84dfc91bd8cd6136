"""Where a blob's bytes go while it downloads: a file, and a hash of what was written.

(Hashing and writing on a helper thread, overlapping the socket reads, was
tried and measured: on two busy cores it gained nothing, so it stays simple.)
"""

import hashlib


class Sink:
    """An open, unbuffered file that a blob is streamed into, hashed as it is written."""

    def __init__(self, file, hasher):
        self.file = file
        self.hasher = hasher
        self.written = file.seek(0, 2)    # a resumed download starts after what is there

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:   # an unbuffered write(2) may write less than asked
            view = view[self.file.write(view):]
        self.hasher.update(chunk)
        self.written += len(chunk)

    def restart(self) -> None:
        """Forget what was written (the server sent the blob from its start)."""
        self.file.seek(0)
        self.file.truncate()
        self.hasher = hashlib.new(self.hasher.name)
        self.written = 0
