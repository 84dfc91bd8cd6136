"""File operations on a cgroup filesystem, with errors that name the file.

A cgroup is a directory; its settings are small files the kernel parses on
write(2). These helpers are shared by the v1 and v2 code: they write one
value, read one value, make and remove cgroup directories. Every failure
becomes a one-line MockerError naming the file and the value.
"""

import errno
import os
import time

from mocker_common.errors import MockerError

from .. import narrate

# rmdir(2) of a cgroup fails with EBUSY while the kernel still counts a dying
# task in it (a killed process is reaped a little after its parent sees it).
_RMDIR_TRIES = 6
_RMDIR_FIRST_WAIT = 0.01


def write(path: str, value, what: str) -> None:
    """Write value to the cgroup file at path; `what` names it for the error."""
    try:
        write_raw(path, value)
    except OSError as e:
        raise MockerError(f"cannot set {what} to {value}: {path}: {e.strerror}") from None


def write_raw(path: str, value) -> None:
    """One write(2) of value to an existing file (raises OSError)."""
    # O_TRUNC without O_CREAT: a missing file means a missing feature, not a
    # file to create (cgroupfs could not create it anyway).
    narrate.say("echo %s > %s", value, path)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def read(path: str) -> str:
    """The content of a cgroup file, stripped; "" if it does not exist."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def read_int(path: str) -> int | None:
    """A cgroup file holding one number ("max" or missing gives None)."""
    text = read(path)
    return int(text) if text.lstrip("-").isdigit() else None


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key value" lines, like memory.stat or cpu.stat)."""
    values = {}
    for line in read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def make_dirs(path: str, on_new_dir=None) -> list[str]:
    """mkdir -p for a cgroup; returns the directories it made, outermost first.

    on_new_dir(dir) runs right after each directory is made, before its
    children: v1 cpuset needs its cpus and mems filled in at every level.
    """
    missing = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    made = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            continue  # another container made the shared parent at the same moment
        except OSError as e:
            remove_dirs(made)
            raise MockerError(f"cannot create cgroup {directory}: {e.strerror}") from None
        made.append(directory)
        if on_new_dir:
            try:
                on_new_dir(directory)
            except BaseException:
                remove_dirs(made)
                raise
    return made


def remove_dirs(dirs: list[str]) -> None:
    """Remove the directories (made outermost first), innermost first; quietly."""
    for directory in reversed(dirs):
        try:
            remove_tree(directory)
        except MockerError:
            pass  # a shared parent still in use by another container


def remove_tree(path: str) -> None:
    """Remove a cgroup and the cgroups below it; a cgroup already gone is fine.

    Only directories are removed: rmdir(2) on cgroupfs drops a cgroup with its
    interface files, and fails with EBUSY while a process is still inside.
    """
    try:
        children = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return
    for child in children:
        remove_tree(child)
    wait = _RMDIR_FIRST_WAIT
    for attempt in range(_RMDIR_TRIES):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == _RMDIR_TRIES - 1:
                raise MockerError(f"cannot remove cgroup {path}: {e.strerror}") from None
        time.sleep(wait)
        wait *= 2


def procs(path: str, recursive: bool = True) -> list[int]:
    """The process ids in the cgroup at path (and, if recursive, below it)."""
    found = []
    text = read(os.path.join(path, "cgroup.procs"))
    found.extend(int(pid) for pid in text.split())
    if recursive:
        try:
            children = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            children = []
        for child in children:
            found.extend(procs(child))
    return found
