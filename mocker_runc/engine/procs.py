"""Is a process alive? Read from /proc, without signalling it."""

import contextlib


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain ") ".
    return stat[stat.rindex(")") + 2:].split()


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if it is gone).

    A pid and its start time name one process: pids are reused, this pair is not.
    """
    fields = _stat_fields(pid)
    return fields[19] if fields else ""  # proc(5): field 22, starttime


def alive(pid: int, started: str = "") -> bool:
    """True if pid runs (a zombie does not) and, if given, started at `started`."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return not started or fields[19] == started


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
