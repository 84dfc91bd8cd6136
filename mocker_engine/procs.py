"""Is a process alive? Read from /proc, without signalling it."""

import contextlib

from mocker_common.procfs import proc_start_time


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if it is gone).

    A pid and its start time name one process: pids are reused, this pair is not.
    """
    started = proc_start_time(pid) if pid > 0 else None
    return "" if started is None else str(started)


def alive(pid: int, started: str = "") -> bool:
    """True if pid runs (a zombie does not) and, if given, started at `started`."""
    now = start_time(pid)
    return bool(now) and (not started or now == started)


def read_pid(path) -> int:
    with contextlib.suppress(FileNotFoundError, ValueError):
        with open(path) as f:
            return int(f.read().strip() or 0)
    return 0


def set_title(title: str) -> None:
    """Name this process (its comm, what ps -e, top and pgrep show); 15 bytes at most."""
    with contextlib.suppress(OSError):
        with open("/proc/self/comm", "w") as f:
            f.write(title[:15])
