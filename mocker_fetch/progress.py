"""Progress on stderr: a bar per blob on a terminal, plain lines otherwise, or nothing.

stdout is reserved for the one machine-readable line, so everything a
person watches goes to stderr.
"""

import sys
import threading
import time

from mocker_common.cli import human_size

BAR_WIDTH = 30
REDRAW_EVERY = 0.1   # seconds; redrawing on every chunk would cost more than it shows


class Progress:
    """Reports blob downloads; safe to call from the download threads."""

    def __init__(self, stream=None, quiet: bool = False, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._rows: dict[str, list] = {}   # digest -> [done, total, state]
        self._drawn = 0
        self._last = 0.0

    def message(self, text: str) -> None:
        if not self.quiet:
            with self._lock:
                print(text, file=self.stream, flush=True)
                self._drawn = 0

    def start(self, digest: str, size: int, present: bool = False) -> None:
        state = "Already exists" if present else "Downloading"
        with self._lock:
            self._rows[digest] = [size if present else 0, size, state]
            if not self.tty:
                self._line(f"{digest[7:19]}: {state} ({human_size(size)})")
        self._redraw(force=True)

    def advance(self, digest: str, nbytes: int) -> None:
        with self._lock:
            self._rows[digest][0] += nbytes
        self._redraw()

    def done(self, digest: str) -> None:
        with self._lock:
            row = self._rows[digest]
            if row[2] == "Downloading":
                row[0], row[2] = row[1], "Pull complete"
                if not self.tty:
                    self._line(f"{digest[7:19]}: Pull complete")
        self._redraw(force=True)

    def _line(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def _redraw(self, force: bool = False) -> None:
        """Rewrite the block of bars in place (cursor up, then one line per blob)."""
        if self.quiet or not self.tty:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < REDRAW_EVERY:
                return
            self._last = now
            lines = [self._bar(digest, *row) for digest, row in self._rows.items()]
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self.stream.flush()
            self._drawn = len(lines)

    @staticmethod
    def _bar(digest: str, done: int, total: int, state: str) -> str:
        if state != "Downloading":
            return f"{digest[7:19]}: {state}"
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + " " * (BAR_WIDTH - filled - 1)
        return f"{digest[7:19]}: [{bar[:BAR_WIDTH]}] {human_size(done)}/{human_size(total)}"
