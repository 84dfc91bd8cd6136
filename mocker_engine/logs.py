"""`mocker logs [-f] [--tail N]`: the container's output, from its log file.

A detached container writes straight into the file (its stdout and stderr are
the file), so its log survives a lost monitor and needs no copying.
"""

import os
import sys
import time

from mocker_common.errors import MockerError

from . import lifecycle, records
from .records import Record

FOLLOW_POLL = 0.1
CHUNK = 1 << 16


def tail_offset(f, lines: int) -> int:
    """The offset where the last `lines` lines of the open file begin."""
    end = f.seek(0, os.SEEK_END)
    if lines <= 0:
        return end
    position, found = end, 0
    while position > 0:
        size = min(CHUNK, position)
        position -= size
        f.seek(position)
        block = f.read(size)
        # A newline that ends the file does not start a line.
        if position + size == end and block.endswith(b"\n"):
            block = block[:-1]
        count = block.count(b"\n")
        if found + count >= lines:
            index = len(block)
            for _ in range(lines - found):
                index = block.rindex(b"\n", 0, index)
            return position + index + 1
        found += count
    return 0


def show(record: Record, follow: bool = False, tail: int | None = None, out=None) -> None:
    out = out or sys.stdout.buffer
    try:
        f = open(records.log_path(record.id), "rb")
    except FileNotFoundError:
        return  # never started detached: nothing was logged
    with f:
        f.seek(tail_offset(f, tail) if tail is not None else 0)
        while True:
            data = f.read(CHUNK)
            if data:
                out.write(data)
                continue
            out.flush()
            if not follow or not _still_running(record):
                rest = f.read()  # what came between the last read and the end
                out.write(rest)
                out.flush()
                return
            time.sleep(FOLLOW_POLL)


def _still_running(record: Record) -> bool:
    try:
        return lifecycle.is_running(records.load(record.id))
    except MockerError:
        return False
