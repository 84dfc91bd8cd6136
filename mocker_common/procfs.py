"""What /proc tells about a process (proc(5)), for the runtime and the engine alike."""


def proc_start_time(pid: int) -> int | None:
    """The start time of pid (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])   # field 22 overall; fields here start at field 3
