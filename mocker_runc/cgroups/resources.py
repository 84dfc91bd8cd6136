"""What a runtime-spec `linux.resources` object asks of each controller.

runtime-spec config-linux.md: a value of 0 (or absent) leaves the kernel's
default, as runc does; -1 means "no limit" where a limit is allowed.
"""

# The fields that set a limit, by section. Kernel memory ("kernel",
# "kernelTCP") is deprecated and ignored, as by runc.
MEMORY_FIELDS = ("limit", "reservation", "swap", "swappiness", "disableOOMKiller")
CPU_FIELDS = ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "idle")
CPUSET_FIELDS = ("cpus", "mems")

# The devices every container may use whatever its config says, as runc
# allows them (libcontainer/specconv AllowedDevices): mknod of any device
# (using one still needs a rule), the null-like devices, ttys and ptys, tun.
DEFAULT_DEVICE_RULES = [
    {"type": "c", "access": "m"},
    {"type": "b", "access": "m"},
    {"type": "c", "major": 1, "minor": 3, "access": "rwm"},    # /dev/null
    {"type": "c", "major": 1, "minor": 5, "access": "rwm"},    # /dev/zero
    {"type": "c", "major": 1, "minor": 7, "access": "rwm"},    # /dev/full
    {"type": "c", "major": 1, "minor": 8, "access": "rwm"},    # /dev/random
    {"type": "c", "major": 1, "minor": 9, "access": "rwm"},    # /dev/urandom
    {"type": "c", "major": 5, "minor": 0, "access": "rwm"},    # /dev/tty
    {"type": "c", "major": 5, "minor": 2, "access": "rwm"},    # /dev/ptmx
    {"type": "c", "major": 136, "access": "rwm"},              # /dev/pts/*
    {"type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
]


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


def device_rules(rules: list, devices: list) -> list[dict]:
    """The whole device allow-list, in order, as runc builds it: deny all, the
    config's linux.resources.devices, then the default devices and the
    config's linux.devices (a "u" is an unbuffered char device; a fifo needs no rule)."""
    kinds = {"c": "c", "u": "c", "b": "b"}
    extra = [{"type": kinds[d["type"]], "major": d.get("major"), "minor": d.get("minor"),
              "access": "rwm"} for d in devices if d.get("type") in kinds]
    return ([{"allow": False, "type": "a", "access": "rwm"}] + list(rules)
            + [dict(rule, allow=True) for rule in DEFAULT_DEVICE_RULES + extra])
