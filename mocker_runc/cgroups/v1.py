"""cgroup v1: one hierarchy per controller, settings through cgroupspy.

cgroupspy gives each controller's files typed attributes (memory's
limit_in_bytes is an integer, cpuset's cpus a set of CPUs, a device rule a
DeviceAccess); this module maps runtime-spec `linux.resources` onto them.
Kernel reference: Documentation/admin-guide/cgroup-v1/{memory,cpusets,
devices,pids,freezer-subsystem}.rst; the cpu files are in scheduler/sched-bwc.
"""

import contextlib
import os
import time

from cgroupspy import controllers as cs
from cgroupspy.contenttypes import DeviceAccess
from cgroupspy.interfaces import BaseFileInterface, IntegerFile

from mocker_common.errors import MockerError

from .. import narrate
from . import devices as dev, fs, hierarchies, resources as res
from .base import Cgroup


class _Dir:
    """All a cgroupspy controller needs of its node: the directory, as bytes.

    (cgroupspy's own Node would also pull in its tree code and logging.)
    """

    def __init__(self, path: str):
        self.full_path = os.fsencode(path)


class PidsController(cs.Controller):
    """pids.max and pids.current (cgroupspy has no pids controller)."""

    max = BaseFileInterface("pids.max")
    current = IntegerFile("pids.current", readonly=True)


class FreezerController(cs.Controller):
    """freezer.state: THAWED, FREEZING or FROZEN (cgroupspy has no freezer)."""

    state = BaseFileInterface("freezer.state")


CONTROLLER_CLASSES = {
    "memory": cs.MemoryController,
    "cpu": cs.CpuController,
    "cpuacct": cs.CpuAcctController,
    "cpuset": cs.CpuSetController,
    "devices": cs.DevicesController,
    "blkio": cs.BlkIOController,
    "net_cls": cs.NetClsController,
    "net_prio": cs.NetPrioController,
    "pids": PidsController,
    "freezer": FreezerController,
}

_FREEZE_TIMEOUT = 5.0


class V1Cgroup(Cgroup):
    """A container's cgroup on a v1 (or hybrid) host: a directory per controller."""

    version = 1

    @classmethod
    def locate(cls, layout: hierarchies.Layout, cgroups_path: str, container_id: str) -> "V1Cgroup":
        paths = {}
        for controller, mount in layout.v1.items():
            paths[controller] = mount.dir_for(hierarchies.cgroup_path(cgroups_path, container_id, controller))
        if layout.unified:
            # hybrid host: the unified tree has no controllers here, but being in it
            # lets the kernel (and a cgroup namespace) show the container's cgroup.
            paths["unified"] = layout.unified.dir_for(hierarchies.cgroup_path(cgroups_path, container_id))
        return cls(paths)

    def make(self, resources: dict) -> list[str]:
        if resources.get("unified"):
            raise MockerError("linux.resources.unified needs cgroup v2; this host uses cgroup v1")
        self._require(res.needed_controllers(resources), self.paths, "no such v1 hierarchy mounted")
        made = []
        try:
            for controller, path in self.paths.items():
                fill = _copy_parent_cpuset if controller == "cpuset" else None
                made += fs.make_dirs(path, on_new_dir=fill)
        except BaseException:
            fs.remove_dirs(made)
            raise
        return made

    def self_join_files(self) -> list[str]:
        v1_dirs = [path for key, path in self.paths.items() if key != "unified"]
        return [os.path.join(path, "tasks") for path in dict.fromkeys(v1_dirs)]  # co-mounted: once

    # -- limits -----------------------------------------------------------

    def apply(self, resources: dict, devices: list | None = None, creating: bool = False) -> None:
        self._apply_memory(resources.get("memory") or {})
        self._apply_cpu(resources.get("cpu") or {})
        self._apply_pids(resources.get("pids") or {})
        self._apply_block_io(resources.get("blockIO") or {})
        self._apply_hugetlb(resources.get("hugepageLimits") or [])
        self._apply_network(resources.get("network") or {})
        if creating or "devices" in resources:
            self._apply_devices(resources.get("devices") or [], devices or [])

    def _apply_memory(self, memory: dict) -> None:
        if "memory" not in self.paths:
            return
        mem = self._controller("memory")
        limit, swap = memory.get("limit"), memory.get("swap")
        if res.is_set(swap) and not os.path.exists(mem.filepath(b"memory.memsw.limit_in_bytes")):
            raise MockerError("cannot set memory+swap limit: the kernel has no swap accounting "
                              f"(no memory.memsw.limit_in_bytes in {self.paths['memory']})")
        # The kernel keeps limit <= memory+swap limit at every moment, so a
        # growing memsw limit goes first and a shrinking one last.
        swap_first = res.is_set(swap) and (swap == -1 or swap > (mem.memsw_limit_in_bytes or 0))
        if swap_first:
            self._set(mem, "memsw_limit_in_bytes", swap, "memory+swap limit")
        if res.is_set(limit):
            self._set(mem, "limit_in_bytes", limit, "memory limit")
        if res.is_set(swap) and not swap_first:
            self._set(mem, "memsw_limit_in_bytes", swap, "memory+swap limit")
        if res.is_set(memory.get("reservation")):
            self._set(mem, "soft_limit_in_bytes", memory["reservation"], "memory reservation")
        if res.swappiness(memory) is not None:
            self._set(mem, "swappiness", memory["swappiness"], "memory swappiness")
        if memory.get("disableOOMKiller"):
            self._set(mem, "oom_control", 1, "memory oom_control")

    def _apply_cpu(self, cpu_cfg: dict) -> None:
        if "cpu" in self.paths:
            cpu = self._controller("cpu")
            if res.is_set(cpu_cfg.get("shares")):
                self._set(cpu, "shares", cpu_cfg["shares"], "cpu shares")
            self._apply_cfs(cpu, cpu_cfg.get("quota"), cpu_cfg.get("period"))
            for key, filename in (("burst", "cpu.cfs_burst_us"), ("idle", "cpu.idle"),
                                  ("realtimePeriod", "cpu.rt_period_us"),
                                  ("realtimeRuntime", "cpu.rt_runtime_us")):
                if res.is_set(cpu_cfg.get(key)):
                    self._write(cpu, filename, cpu_cfg[key], f"cpu {key}")
        if "cpuset" in self.paths:
            cpuset = self._controller("cpuset")
            for key in res.CPUSET_FIELDS:
                if res.is_set(cpu_cfg.get(key)):
                    # the kernel parses the list format ("0-2,4") itself
                    self._write(cpuset, f"cpuset.{key}", cpu_cfg[key], f"cpuset {key}")

    def _apply_cfs(self, cpu, quota, period) -> None:
        """CFS bandwidth (quota per period). The kernel checks each write against
        the other file, so if the period is refused, set the quota first."""
        if not res.is_set(period):
            if res.is_set(quota):
                self._set(cpu, "cfs_quota_us", quota, "cpu quota")
            return
        try:
            self._set(cpu, "cfs_period_us", period, "cpu period")
        except MockerError:
            if not res.is_set(quota):
                raise
            self._set(cpu, "cfs_quota_us", quota, "cpu quota")
            self._set(cpu, "cfs_period_us", period, "cpu period")
            return
        if res.is_set(quota):
            self._set(cpu, "cfs_quota_us", quota, "cpu quota")

    def _apply_pids(self, pids: dict) -> None:
        if "pids" in self.paths and res.is_set(pids.get("limit")):
            self._set(self._controller("pids"), "max", res.pids_max(pids["limit"]), "pids limit")

    def _apply_block_io(self, block_io: dict) -> None:
        if "blkio" not in self.paths:
            return
        blkio = self._controller("blkio")
        for key, filename in (("weight", "blkio.weight"), ("leafWeight", "blkio.leaf_weight")):
            if res.is_set(block_io.get(key)):
                self._write(blkio, filename, block_io[key], f"blkio {key}")
        for device in block_io.get("weightDevice") or []:
            if res.is_set(device.get("weight")):
                line = f"{device['major']}:{device['minor']} {device['weight']}"
                self._write(blkio, "blkio.weight_device", line, "blkio weight")
        for key, suffix in (("throttleReadBpsDevice", "read_bps_device"),
                            ("throttleWriteBpsDevice", "write_bps_device"),
                            ("throttleReadIOPSDevice", "read_iops_device"),
                            ("throttleWriteIOPSDevice", "write_iops_device")):
            for device in block_io.get(key) or []:
                line = f"{device['major']}:{device['minor']} {device['rate']}"
                self._write(blkio, f"blkio.throttle.{suffix}", line, f"blkio {key}")

    def _apply_hugetlb(self, limits: list) -> None:
        for limit in limits:
            node = self._controller("hugetlb")
            filename = f"hugetlb.{limit['pageSize']}.limit_in_bytes"
            self._write(node, filename, limit["limit"], f"hugetlb {limit['pageSize']} limit")

    def _apply_network(self, network: dict) -> None:
        if res.is_set(network.get("classID")):
            self._set(self._controller("net_cls"), "class_id", network["classID"], "net_cls classid")
        for prio in network.get("priorities") or []:
            line = f"{prio['name']} {prio['priority']}"
            self._write(self._controller("net_prio"), "net_prio.ifpriomap", line, "net_prio priority")

    def _apply_devices(self, rules: list, devices: list) -> None:
        """The device allow-list, as runc writes it: the rules normalized
        (devices.py: the config's, then runc's defaults), then a reset to
        the default ("a" in devices.deny or devices.allow) and the exceptions."""
        if "devices" not in self.paths:
            return
        ruleset = dev.normalize(dev.effective_rules(rules, devices))
        ctl = self._controller("devices")
        self._set(ctl, "allow" if ruleset.default_allow else "deny",
                  DeviceAccess(DeviceAccess.TYPE_ALL), "device rule")
        for rule in ruleset.exceptions:
            self._set(ctl, "allow" if rule.allow else "deny", _device_access(rule), "device rule")

    # -- pause / resume, statistics ------------------------------------------

    def freeze(self) -> None:
        freezer = self._controller("freezer")
        deadline = time.monotonic() + _FREEZE_TIMEOUT
        # The state goes THAWED -> FREEZING -> FROZEN once every task has stopped;
        # writing FROZEN again retries the tasks that were busy.
        while True:
            self._set(freezer, "state", "FROZEN", "freezer state")
            if freezer.state == "FROZEN":
                return
            if time.monotonic() > deadline:
                self.thaw()
                raise MockerError(f"cannot freeze cgroup {self.paths['freezer']}: still FREEZING")
            time.sleep(0.01)

    def thaw(self) -> None:
        self._set(self._controller("freezer"), "state", "THAWED", "freezer state")

    def state(self) -> str:
        if "freezer" not in self.paths:
            return "running"
        return "paused" if fs.read(os.path.join(self.paths["freezer"], "freezer.state")) == "FROZEN" else "running"

    def stats(self) -> dict:
        stats = {}
        if "memory" in self.paths:
            path = self.paths["memory"]
            stats["memory"] = {
                "usage": {
                    "usage": fs.read_int(f"{path}/memory.usage_in_bytes") or 0,
                    "max": fs.read_int(f"{path}/memory.max_usage_in_bytes") or 0,
                    "limit": fs.read_int(f"{path}/memory.limit_in_bytes") or 0,
                    "failcnt": fs.read_int(f"{path}/memory.failcnt") or 0,
                },
                "oom_kill": fs.read_keyed(f"{path}/memory.oom_control").get("oom_kill", 0),
            }
        if "pids" in self.paths:
            path = self.paths["pids"]
            stats["pids"] = {"current": fs.read_int(f"{path}/pids.current") or 0,
                             "limit": fs.read_int(f"{path}/pids.max") or 0}
        if "cpuacct" in self.paths:
            stats["cpu"] = {"usage": {"total": fs.read_int(f"{self.paths['cpuacct']}/cpuacct.usage") or 0}}
        return stats

    # -- helpers ----------------------------------------------------------

    def _controller(self, name: str) -> cs.Controller:
        if name not in self.paths:
            raise MockerError(f"the {name} cgroup controller is not mounted on this host")
        return CONTROLLER_CLASSES.get(name, cs.Controller)(_Dir(self.paths[name]))

    def _set(self, ctl: cs.Controller, attr: str, value, what: str) -> None:
        """Set a cgroupspy attribute (a typed file), naming the file on failure."""
        filename = ctl.get_interface(attr).filename
        narrate.say("echo %s > %s", value, os.fsdecode(ctl.filepath(filename)))
        with _errors(ctl, filename, value, what):
            setattr(ctl, attr, value)

    def _write(self, ctl: cs.Controller, filename: str, value, what: str) -> None:
        """Write a file cgroupspy has no attribute for."""
        narrate.say("echo %s > %s", value, os.fsdecode(ctl.filepath(filename.encode())))
        with _errors(ctl, filename.encode(), value, what):
            ctl.set_property(filename.encode(), value)


@contextlib.contextmanager
def _errors(ctl: cs.Controller, filename: bytes, value, what: str):
    try:
        yield
    except OSError as e:
        path = os.fsdecode(ctl.filepath(filename))
        raise MockerError(f"cannot set {what} to {value}: {path}: {e.strerror}") from None


def _copy_parent_cpuset(path: str) -> None:
    """A new v1 cpuset starts with no CPUs and no memory nodes, and a process
    cannot join it so; fill them in from the parent, as runc does."""
    child = cs.CpuSetController(_Dir(path))
    parent = cs.CpuSetController(_Dir(os.path.dirname(path)))
    for attr, what in (("cpus", "cpuset cpus"), ("mems", "cpuset mems")):
        if not getattr(child, attr):
            value = getattr(parent, attr)
            with _errors(child, child.get_interface(attr).filename, value, what):
                setattr(child, attr, value)


def _device_access(rule: dev.Rule) -> DeviceAccess:
    """A normalized device rule as a devices.allow / devices.deny line."""
    number = lambda n: None if n == dev.ANY else n
    return DeviceAccess(rule.type, number(rule.major), number(rule.minor), rule.access)
