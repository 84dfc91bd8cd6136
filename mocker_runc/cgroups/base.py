"""What every container cgroup can do, whatever the cgroup version.

A container's cgroup is one directory per hierarchy (v1: one per controller;
v2: one in the unified tree). The version classes (v1.V1Cgroup, v2.V2Cgroup)
fill in how limits, freezing and statistics map onto their files.
"""

import os

from mocker_common.errors import MockerError

from . import fs


def join_self(tasks_files: list[str]) -> None:
    """Move the calling process, single-threaded, into cgroups through their v1 `tasks` files.

    Moving a whole process (cgroup.procs) takes the kernel's global threadgroup
    lock, and its first taker waits for an RCU grace period: 5-15 ms on this
    host, runc pays it too. A thread that moves only itself ("0" in `tasks`)
    skips that lock; in a single-threaded process that is the whole process.
    """
    for tasks in tasks_files:
        try:
            fs.write_raw(tasks, 0)
        except OSError as e:
            raise MockerError(f"cannot join cgroup: {tasks}: {e.strerror}") from None


# Where to look for "the processes in this cgroup": a hierarchy every
# container joins, the pids controller first because it counts them too.
_PIDS_SOURCES = ("pids", "freezer", "devices", "memory", "cpu", "unified")


class Cgroup:
    """A container's cgroup: `paths` maps a controller (or "unified") to its directory."""

    version = 0
    needs_pid = False   # the systemd driver: the cgroup exists once start(pid) made it

    def __init__(self, paths: dict[str, str]):
        self.paths = dict(paths)

    def __repr__(self):
        return f"<{type(self).__name__} {self.paths}>"

    # -- life cycle -------------------------------------------------------

    def make(self, resources: dict) -> list[str]:
        """Create the directories; returns those it made (to undo a failed create)."""
        raise NotImplementedError

    def apply(self, resources: dict, devices: list | None = None, creating: bool = False) -> None:
        """Write the limits of a runtime-spec linux.resources object."""
        raise NotImplementedError

    def update(self, resources: dict) -> None:
        """Change the limits of a live container (runc update): only the given fields."""
        self.apply(resources)

    def start(self, pid: int) -> None:
        """Make the cgroup around its first process (only where needs_pid)."""

    def add(self, pid: int, only: list[str] | None = None) -> None:
        """Move process pid (and its future children) into the cgroup, in every
        hierarchy (or in those of `only`, keys of paths)."""
        for path in self._dirs() if only is None else [self.paths[key] for key in only]:
            procs = os.path.join(path, "cgroup.procs")
            try:
                fs.write_raw(procs, pid)
            except OSError as e:
                raise MockerError(f"cannot add process {pid} to cgroup: {procs}: {e.strerror}") from None

    def self_join_files(self) -> list[str]:
        """Files a single-threaded process writes "0" to, to move itself in: see
        join_self. Only v1 has them (its `tasks`); the rest needs add() or clone3."""
        return []

    def pids(self) -> list[int]:
        """Every process in the cgroup, including those in cgroups below it."""
        for key in _PIDS_SOURCES:
            if key in self.paths:
                return sorted(set(fs.procs(self.paths[key])))
        return []

    def kill_all(self, sig: int) -> None:
        """Send sig to every process in the cgroup (runc kill --all).

        The cgroup is frozen meanwhile, so that no process can fork a child
        the signal would miss; a cgroup that was paused stays paused.
        """
        was_paused = self.state() == "paused"
        try:
            self.freeze()
            frozen = True
        except MockerError:
            frozen = False  # no freezer: signal them anyway
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass  # exited meanwhile
        finally:
            if frozen and not was_paused:
                self.thaw()

    def remove(self) -> None:
        """Remove the cgroup's directories. Kills nothing; fine if already gone."""
        for path in self._dirs():
            fs.remove_tree(path)

    def exists(self) -> bool:
        return any(os.path.isdir(path) for path in self._dirs())

    # -- pause / resume ---------------------------------------------------

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def state(self) -> str:
        """"paused" while frozen, else "running"."""
        raise NotImplementedError

    def stats(self) -> dict:
        """Usage figures shaped like runc's `events --stats` data (cpu, memory, pids)."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------

    def _dirs(self) -> list[str]:
        """Each directory once (co-mounted v1 controllers share one)."""
        return list(dict.fromkeys(self.paths.values()))

    def _require(self, needed: list[str], available, where: str) -> None:
        for controller in needed:
            if controller not in available:
                raise MockerError(f"the config sets a {controller} limit, but the {controller} "
                                  f"cgroup controller is not available ({where})")

