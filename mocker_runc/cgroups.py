"""STAND-IN until branch `runcgroups` lands: the agreed interface, cgroup v1 only, no limits.

The real module (resources, v2, cgroupspy) replaces this file on merge.
"""

import os
import time

ROOT = "/sys/fs/cgroup"
CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio")


class Cgroup:
    def __init__(self, path: str):
        self.path = path.strip("/")

    def dirs(self):
        return [os.path.join(ROOT, c, self.path) for c in CONTROLLERS
                if os.path.isdir(os.path.join(ROOT, c))]

    def add(self, pid: int) -> None:
        for d in self.dirs():
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(ROOT, "pids", self.path, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def _freezer(self, value: str) -> None:
        with open(os.path.join(ROOT, "freezer", self.path, "freezer.state"), "w") as f:
            f.write(value)

    def freeze(self) -> None:
        self._freezer("FROZEN")

    def thaw(self) -> None:
        self._freezer("THAWED")

    def state(self) -> str:
        try:
            with open(os.path.join(ROOT, "freezer", self.path, "freezer.state")) as f:
                return "running" if f.read().strip() == "THAWED" else "paused"
        except FileNotFoundError:
            return "running"

    def remove(self) -> None:
        for d in reversed(self.dirs()):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def _path(cgroups_path: str, container_id: str) -> str:
    return cgroups_path or f"/mocker/{container_id}"


def create(cgroups_path: str, resources: dict, container_id: str) -> Cgroup:
    cg = Cgroup(_path(cgroups_path, container_id))
    for c in CONTROLLERS:
        if os.path.isdir(os.path.join(ROOT, c)):
            os.makedirs(os.path.join(ROOT, c, cg.path), exist_ok=True)
    _inherit_cpuset(cg.path)
    return cg


def _inherit_cpuset(path: str) -> None:
    """A new v1 cpuset is empty (joining it fails with ENOSPC): copy cpus and mems down."""
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        here = os.path.join(ROOT, "cpuset", *parts[:depth])
        parent = os.path.dirname(here)
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(here, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(parent, name)) as f:
                value = f.read().strip()
            with open(os.path.join(here, name), "w") as f:
                f.write(value)


def load(cgroups_path: str, container_id: str) -> Cgroup:
    return Cgroup(_path(cgroups_path, container_id))
