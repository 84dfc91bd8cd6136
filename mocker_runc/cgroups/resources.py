"""What a runtime-spec `linux.resources` object asks of each controller.

runtime-spec config-linux.md: a value of 0 (or absent) leaves the kernel's
default, as runc does; -1 means "no limit" where a limit is allowed.
"""

# The fields that set a limit, by section. Kernel memory ("kernel",
# "kernelTCP") is deprecated and ignored, as by runc.
MEMORY_FIELDS = ("limit", "reservation", "swap", "swappiness", "disableOOMKiller")
CPU_FIELDS = ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "idle")
CPUSET_FIELDS = ("cpus", "mems")


def is_set(value) -> bool:
    """True for a value the config really sets (not null, 0, "" or false)."""
    return value not in (None, 0, "")


def swappiness(memory: dict) -> int | None:
    """memory.swappiness, where 0 is a real value; out of 0..100 means unset."""
    value = memory.get("swappiness")
    return value if value is not None and 0 <= value <= 100 else None


def needed_controllers(resources: dict, v2: bool = False) -> list[str]:
    """The controllers in which resources sets a limit, named as on v1 or v2."""
    needed = []
    memory = resources.get("memory") or {}
    if any(is_set(memory.get(k)) for k in MEMORY_FIELDS) or swappiness(memory) is not None:
        needed.append("memory")
    cpu = resources.get("cpu") or {}
    if any(is_set(cpu.get(k)) for k in CPU_FIELDS):
        needed.append("cpu")
    if any(is_set(cpu.get(k)) for k in CPUSET_FIELDS):
        needed.append("cpuset")
    if is_set((resources.get("pids") or {}).get("limit")):
        needed.append("pids")
    if any(is_set(value) for value in (resources.get("blockIO") or {}).values()):
        needed.append("io" if v2 else "blkio")
    if resources.get("hugepageLimits"):
        needed.append("hugetlb")
    network = resources.get("network") or {}
    if is_set(network.get("classID")):
        needed.append("net_cls")
    if network.get("priorities"):
        needed.append("net_prio")
    return needed


def pids_max(limit: int) -> str:
    """pids.max for a pids.limit: a negative limit means no limit ("max")."""
    return "max" if limit < 0 else str(limit)
