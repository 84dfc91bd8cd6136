"""cgroup v2: one unified hierarchy, settings through its plain files.

A controller works in a cgroup only if every ancestor lists it in
cgroup.subtree_control, so creating a container's cgroup enables the
available controllers on the way down. Kernel reference:
Documentation/admin-guide/cgroup-v2.rst.
"""

import math
import os
import signal
import time

from mocker_common.errors import MockerError

from . import fs, hierarchies, resources as res
from .base import Cgroup

_FREEZE_TIMEOUT = 5.0
_DEFAULT_CPU_PERIOD = 100000  # microseconds, the kernel's default for cpu.max


def cpu_weight(shares: int) -> int:
    """cpu.weight (1..10000, default 100) for v1 cpu.shares (2..262144, default 1024).

    runc's current mapping (since runc 1.3.2; older runc used a straight line,
    1 + (shares - 2) * 9999 / 262142, which maps the default 1024 to 39): a
    curve through (2, 1), (1024, 100) and (262144, 10000), so that the two
    defaults match.
    """
    if shares <= 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    exponent = math.log2(shares)
    return math.ceil(10 ** ((exponent * exponent + 125 * exponent) / 612.0 - 7.0 / 34.0))


def cpu_max(quota: int | None, period: int | None) -> str | None:
    """cpu.max ("QUOTA PERIOD" or "max PERIOD") for CFS quota and period; None to leave it."""
    if not res.is_set(quota) and not res.is_set(period):
        return None
    period = period if res.is_set(period) else _DEFAULT_CPU_PERIOD
    return f"{quota if res.is_set(quota) and quota > 0 else 'max'} {period}"


def swap_max(limit: int | None, swap: int | None) -> str | None:
    """memory.swap.max for the spec's memory.swap, which is memory+swap (as in v1)."""
    if not res.is_set(swap):
        return None
    if swap == -1:
        return "max"
    if not res.is_set(limit) or limit == -1:
        raise MockerError("cannot set a memory+swap limit without a memory limit on cgroup v2")
    if swap < limit:
        raise MockerError(f"memory+swap limit {swap} is below the memory limit {limit}")
    return str(swap - limit)


def _limit(value: int) -> str:
    return "max" if value == -1 else str(value)


class V2Cgroup(Cgroup):
    """A container's cgroup on a v2 host: one directory in the unified tree."""

    version = 2

    def __init__(self, paths: dict[str, str], mountpoint: str | None):
        super().__init__(paths)
        self.mountpoint = mountpoint

    @classmethod
    def locate(cls, layout: hierarchies.Layout, cgroups_path: str, container_id: str) -> "V2Cgroup":
        cgroup = hierarchies.cgroup_path(cgroups_path, container_id)
        return cls({"unified": layout.unified.dir_for(cgroup)}, layout.unified.mountpoint)

    @property
    def path(self) -> str:
        return self.paths["unified"]

    def make(self, resources: dict) -> list[str]:
        ancestors = self._ancestors()
        existing = [d for d in ancestors if os.path.isdir(d)]
        available = fs.read(os.path.join(existing[-1], "cgroup.controllers")).split()
        self._require(res.needed_controllers(resources, v2=True), available,
                      f"cgroup.controllers of {existing[-1]}: {' '.join(available) or 'none'}")
        for directory in existing:
            _enable_controllers(directory)
        return fs.make_dirs(self.path, on_new_dir=self._enable_below_if_parent)

    def _ancestors(self) -> list[str]:
        """The directories from the mountpoint down to the cgroup's parent."""
        rel = os.path.relpath(os.path.dirname(self.path), self.mountpoint)
        dirs = [self.mountpoint]
        for part in ([] if rel == "." else rel.split("/")):
            dirs.append(os.path.join(dirs[-1], part))
        return dirs

    def _enable_below_if_parent(self, directory: str) -> None:
        if directory != self.path:
            _enable_controllers(directory)

    # -- limits -----------------------------------------------------------

    def apply(self, resources: dict, devices: list | None = None, creating: bool = False) -> None:
        self._apply_memory(resources.get("memory") or {})
        self._apply_cpu(resources.get("cpu") or {})
        if res.is_set((resources.get("pids") or {}).get("limit")):
            self._write("pids.max", res.pids_max(resources["pids"]["limit"]), "pids limit")
        self._apply_io(resources.get("blockIO") or {})
        for limit in resources.get("hugepageLimits") or []:
            self._write(f"hugetlb.{limit['pageSize']}.max", limit["limit"],
                        f"hugetlb {limit['pageSize']} limit")
        # runtime-spec: "unified" sets any v2 file by name; it goes last, so it
        # wins over the values above.
        for key, value in (resources.get("unified") or {}).items():
            self._apply_unified(key, value)
        # Last, so that a failure before leaves no program: device rules are an
        # eBPF program on the cgroup (devicefilter.py), attached before any
        # process of the container runs in it.
        if creating or "devices" in resources:
            self.apply_devices(resources.get("devices") or [], devices or [])

    def apply_devices(self, rules: list, devices: list) -> None:
        """Install (or replace) the device program for linux.resources.devices
        and linux.devices; runc's rules and defaults (devices.py)."""
        from . import devicefilter, devices as dev
        devicefilter.install(self.path, dev.normalize(dev.effective_rules(rules, devices)))

    def _apply_memory(self, memory: dict) -> None:
        limit = memory.get("limit")
        swap = swap_max(limit, memory.get("swap"))
        if res.is_set(limit):
            self._write("memory.max", _limit(limit), "memory limit")
        if swap is not None:
            self._write("memory.swap.max", swap, "memory+swap limit")
        if res.is_set(memory.get("reservation")):
            self._write("memory.low", _limit(memory["reservation"]), "memory reservation")
        # memory.swappiness and disableOOMKiller do not exist on v2; runc ignores them too.

    def _apply_cpu(self, cpu: dict) -> None:
        if res.is_set(cpu.get("realtimeRuntime")) or res.is_set(cpu.get("realtimePeriod")):
            raise MockerError("realtime cpu limits (realtimeRuntime, realtimePeriod) need cgroup v1")
        if res.is_set(cpu.get("shares")):
            self._write("cpu.weight", cpu_weight(cpu["shares"]), "cpu weight")
        quota_period = cpu_max(cpu.get("quota"), cpu.get("period"))
        if quota_period:
            self._write("cpu.max", quota_period, "cpu quota")
        if res.is_set(cpu.get("burst")):
            self._write("cpu.max.burst", cpu["burst"], "cpu burst")
        if res.is_set(cpu.get("idle")):
            self._write("cpu.idle", cpu["idle"], "cpu idle")
        for key in res.CPUSET_FIELDS:
            if res.is_set(cpu.get(key)):
                self._write(f"cpuset.{key}", cpu[key], f"cpuset {key}")

    def _apply_io(self, block_io: dict) -> None:
        if res.is_set(block_io.get("weight")):
            self._write("io.weight", f"default {block_io['weight']}", "io weight")
        for device in block_io.get("weightDevice") or []:
            if res.is_set(device.get("weight")):
                self._write("io.weight", f"{device['major']}:{device['minor']} {device['weight']}",
                            "io weight")
        for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                          ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for device in block_io.get(key) or []:
                line = f"{device['major']}:{device['minor']} {name}={device['rate']}"
                self._write("io.max", line, f"io {key}")

    def _apply_unified(self, key: str, value) -> None:
        if "/" in key or key.startswith(".") or not key:
            raise MockerError(f"invalid linux.resources.unified key {key!r}: not a cgroup file name")
        if not os.path.exists(os.path.join(self.path, key)):
            controller = key.split(".", 1)[0]
            available = fs.read(os.path.join(self.path, "cgroup.controllers")).split()
            if controller not in available and controller != "cgroup":
                raise MockerError(f"cannot set {key} (linux.resources.unified): the {controller} "
                                  f"cgroup controller is not available in {self.path}")
        self._write(key, value, f"{key} (linux.resources.unified)")

    def kill_all(self, sig: int) -> None:
        """SIGKILL through cgroup.kill where the kernel has it (Linux 5.14): the
        kernel kills the whole subtree at once, frozen or not, and no fork
        escapes; runc does the same. Other signals: freeze, signal, thaw."""
        if sig == signal.SIGKILL and os.path.exists(os.path.join(self.path, "cgroup.kill")):
            self._write("cgroup.kill", 1, "cgroup.kill")
            return
        super().kill_all(sig)

    # -- pause / resume, statistics ------------------------------------------

    def freeze(self) -> None:
        self._write("cgroup.freeze", 1, "cgroup.freeze")
        deadline = time.monotonic() + _FREEZE_TIMEOUT
        # cgroup.events says "frozen 1" once every process has stopped
        while fs.read_keyed(os.path.join(self.path, "cgroup.events")).get("frozen") != 1:
            if time.monotonic() > deadline:
                self.thaw()
                raise MockerError(f"cannot freeze cgroup {self.path}: not frozen after {_FREEZE_TIMEOUT}s")
            time.sleep(0.005)

    def thaw(self) -> None:
        self._write("cgroup.freeze", 0, "cgroup.freeze")

    def state(self) -> str:
        return "paused" if fs.read(os.path.join(self.path, "cgroup.freeze")) == "1" else "running"

    def stats(self) -> dict:
        path = self.path
        stats = {}
        if os.path.exists(f"{path}/memory.current"):
            stats["memory"] = {
                "usage": {"usage": fs.read_int(f"{path}/memory.current") or 0,
                          "max": fs.read_int(f"{path}/memory.peak") or 0,
                          "limit": fs.read_int(f"{path}/memory.max") or 0,
                          "failcnt": fs.read_keyed(f"{path}/memory.events").get("max", 0)},
                "oom_kill": fs.read_keyed(f"{path}/memory.events").get("oom_kill", 0),
            }
        if os.path.exists(f"{path}/pids.current"):
            stats["pids"] = {"current": fs.read_int(f"{path}/pids.current") or 0,
                             "limit": fs.read_int(f"{path}/pids.max") or 0}
        usage_usec = fs.read_keyed(f"{path}/cpu.stat").get("usage_usec")
        if usage_usec is not None:
            stats["cpu"] = {"usage": {"total": usage_usec * 1000}}
        return stats

    def _write(self, filename: str, value, what: str) -> None:
        fs.write(os.path.join(self.path, filename), value, what)


def _enable_controllers(directory: str) -> None:
    """Let the cgroups below directory use every controller it has.

    All at once first; if the kernel refuses one (e.g. a threaded-only
    controller), then one by one, keeping those it accepts, as runc does.
    """
    available = fs.read(os.path.join(directory, "cgroup.controllers")).split()
    if not available:
        return
    control = os.path.join(directory, "cgroup.subtree_control")
    try:
        fs.write_raw(control, " ".join(f"+{c}" for c in available))
    except OSError:
        for controller in available:
            try:
                fs.write_raw(control, f"+{controller}")
            except OSError:
                pass
