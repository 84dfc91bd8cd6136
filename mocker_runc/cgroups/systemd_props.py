"""runtime-spec linux.resources as systemd unit properties (systemd.resource-control(5)).

Pure conversions, no D-Bus and no files: the systemd driver sends what these
return to StartTransientUnit or SetUnitProperties. A property is a tuple
(name, D-Bus signature, value), the shape a D-Bus variant takes.

systemd has no property for every cgroup file; what it cannot say is written
into the delegated cgroup afterwards (systemd.py), as runc does. The choice
of properties follows runc's (docs/systemd.md in runc): on v2 MemoryMax,
MemoryLow, MemorySwapMax, CPUWeight, CPUQuotaPerSecUSec, TasksMax,
AllowedCPUs, AllowedMemoryNodes; on v1 MemoryLimit, CPUShares, BlockIOWeight,
TasksMax; on both the device policy.
"""

from mocker_common.errors import MockerError

from . import resources as res
from .v2 import cpu_weight, swap_max

INFINITY = (1 << 64) - 1          # systemd's USEC_INFINITY / CGROUP_LIMIT_MAX: "no limit"
DEFAULT_CPU_PERIOD = 100000       # microseconds, the kernel's default CFS period
# systemd versions that know a property (older ones get only the cgroup file)
CPU_QUOTA_PERIOD_SINCE = 242
ALLOWED_CPUS_SINCE = 244
CPU_IDLE_SINCE = 252


def prop(name: str, signature: str, value) -> tuple:
    return (name, signature, value)


def unit_properties(slice_: str, pid: int | None, description: str, is_slice: bool,
                    v2: bool) -> list[tuple]:
    """What every unit runc starts carries, whatever its limits.

    A scope goes into its slice with Slice= and is delegated (Delegate=yes:
    the cgroup below the unit is ours to manage, systemd.resource-control(5));
    a slice only Wants= its parent, as runc does. Accounting is always on, so
    that the controllers are enabled down to the unit.
    """
    props = [prop("Description", "s", description)]
    if is_slice:
        props.append(prop("Wants", "as", [slice_]))
    else:
        props.append(prop("Slice", "s", slice_))
        props.append(prop("Delegate", "b", True))
    if pid is not None:
        props.append(prop("PIDs", "au", [pid]))
    props += [prop("MemoryAccounting", "b", True), prop("CPUAccounting", "b", True),
              prop("IOAccounting" if v2 else "BlockIOAccounting", "b", True),
              prop("TasksAccounting", "b", True),
              # no ordering against shutdown.target etc.: the engine stops it
              prop("DefaultDependencies", "b", False)]
    return props


def resource_properties(resources: dict, devices_rules: list | None, v2: bool,
                        version: int) -> tuple[list[tuple], dict]:
    """The properties for linux.resources, and the resources to write as files.

    The second value is resources with the cpu quota as systemd rounds it
    (see cpu_quota), so that the cgroup file says what the unit says.
    """
    resources = {**resources, "cpu": dict(resources.get("cpu") or {})}
    props = device_properties(devices_rules) if devices_rules is not None else []
    memory = resources.get("memory") or {}
    cpu = resources["cpu"]
    if v2:
        props += _memory_v2(memory)
        props += _cpu_weight_v2(cpu, version)
    else:
        if res.is_set(memory.get("limit")):
            props.append(prop("MemoryLimit", "t", _limit(memory["limit"])))
        if res.is_set(cpu.get("shares")):
            props.append(prop("CPUShares", "t", cpu["shares"]))
        weight = (resources.get("blockIO") or {}).get("weight")
        if res.is_set(weight):
            props.append(prop("BlockIOWeight", "t", weight))
    quota_props, quota = cpu_quota(cpu.get("quota"), cpu.get("period"), version)
    props += quota_props
    if quota is not None:
        cpu["quota"] = quota
    limit = (resources.get("pids") or {}).get("limit")
    if res.is_set(limit):
        props.append(prop("TasksMax", "t", tasks_max(limit)))
    props += _cpuset(cpu.get("cpus"), cpu.get("mems"), version)
    if v2:
        props += unified_properties(resources.get("unified") or {}, version)
    return props, resources


def _limit(value: int) -> int:
    return INFINITY if value == -1 else value


def _memory_v2(memory: dict) -> list[tuple]:
    props = []
    if res.is_set(memory.get("limit")):
        props.append(prop("MemoryMax", "t", _limit(memory["limit"])))
    if res.is_set(memory.get("reservation")):
        props.append(prop("MemoryLow", "t", _limit(memory["reservation"])))
    swap = swap_max(memory.get("limit"), memory.get("swap"))
    if swap is not None:
        props.append(prop("MemorySwapMax", "t", INFINITY if swap == "max" else int(swap)))
    return props


def _cpu_weight_v2(cpu: dict, version: int) -> list[tuple]:
    # CPUWeight=0 is how systemd says cpu.idle=1 (v252); the two cannot both be sent
    if cpu.get("idle") == 1 and version >= CPU_IDLE_SINCE:
        return [prop("CPUWeight", "t", 0)]
    if res.is_set(cpu.get("shares")):
        return [prop("CPUWeight", "t", cpu_weight(cpu["shares"]))]
    return []


def tasks_max(limit: int) -> int:
    """TasksMax for pids.limit: negative is no limit; systemd refuses 0, so 1."""
    return INFINITY if limit < 0 else max(limit, 1)


def cpu_quota(quota: int | None, period: int | None, version: int) -> tuple[list[tuple], int | None]:
    """CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec) for a CFS quota and period.

    systemd keeps the quota as a percentage of one CPU, in steps of 1% (10 ms
    per second): a quota between two steps is rounded up, and the quota to
    write into cpu.max is recomputed from it, as runc does, so that the file
    and the unit agree. Returns the properties and that quota (None: as given).
    """
    if not res.is_set(quota) and not res.is_set(period):
        return [], None
    props = []
    if res.is_set(period) and version >= CPU_QUOTA_PERIOD_SINCE:
        props.append(prop("CPUQuotaPeriodUSec", "t", period))
    per_sec, new_quota = INFINITY, None
    if res.is_set(quota) and quota > 0:
        period = period if res.is_set(period) else DEFAULT_CPU_PERIOD
        per_sec = quota * 1_000_000 // period
        if per_sec % 10_000:
            per_sec = (per_sec // 10_000 + 1) * 10_000
            new_quota = per_sec * period // 1_000_000
    props.append(prop("CPUQuotaPerSecUSec", "t", per_sec))
    return props, new_quota


def _cpuset(cpus: str | None, mems: str | None, version: int) -> list[tuple]:
    if version < ALLOWED_CPUS_SINCE:
        return []   # the cgroup files still get them
    props = []
    if cpus:
        props.append(prop("AllowedCPUs", "ay", range_to_bits(cpus)))
    if mems:
        props.append(prop("AllowedMemoryNodes", "ay", range_to_bits(mems)))
    return props


def range_to_bits(text: str) -> bytes:
    """A cpuset list ("0-2,5") as the bit mask systemd's AllowedCPUs takes:
    CPU n is bit n % 8 of byte n // 8."""
    mask = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        try:
            start, end = int(first), int(last if dash else first)
        except ValueError:
            raise MockerError(f"invalid cpuset list {text!r}") from None
        if start < 0 or start > end:
            raise MockerError(f"invalid cpuset range {part!r} in {text!r}")
        for n in range(start, end + 1):
            mask |= 1 << n
    if not mask:
        raise MockerError(f"empty cpuset list {text!r}")
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


# linux.resources.unified files systemd has a property for (the rest: files only)
_UNIFIED_MEMORY = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
                   "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}


def unified_properties(unified: dict, version: int) -> list[tuple]:
    props = []
    for key, value in unified.items():
        value = str(value).strip()
        try:
            if key in _UNIFIED_MEMORY:
                props.append(prop(_UNIFIED_MEMORY[key], "t", INFINITY if value == "max" else int(value)))
            elif key == "pids.max":
                props.append(prop("TasksMax", "t", INFINITY if value == "max" else max(int(value), 1)))
            elif key == "cpu.weight" and not (unified.get("cpu.idle") == "1" and version >= CPU_IDLE_SINCE):
                props.append(prop("CPUWeight", "t", int(value)))
            elif key == "cpu.idle" and value == "1" and version >= CPU_IDLE_SINCE:
                props.append(prop("CPUWeight", "t", 0))
            elif key == "cpu.max":
                quota, _, period = value.partition(" ")
                quota_props, _ = cpu_quota(-1 if quota == "max" else int(quota),
                                           int(period) if period else DEFAULT_CPU_PERIOD, version)
                props += quota_props
            elif key in ("cpuset.cpus", "cpuset.mems"):
                props += _cpuset(value if key == "cpuset.cpus" else None,
                                 value if key == "cpuset.mems" else None, version)
        except ValueError:
            raise MockerError(f"invalid linux.resources.unified value {key}={value!r}") from None
    return props


# -- devices ----------------------------------------------------------------------

def device_properties(rules: list) -> list[tuple]:
    """DevicePolicy and DeviceAllow for linux.resources.devices (an ordered allow/deny list).

    systemd only knows allow lists: DevicePolicy=strict denies every device
    but those in DeviceAllow, which systemd enforces with a BPF_CGROUP_DEVICE
    program. The rules are replayed in order, as the kernel's v1 device
    controller would: a rule for all devices resets the list, an allow rule
    adds to it, a deny rule takes access away. A deny list (allow all, deny
    some) cannot be said to systemd: like runc, we then deny everything,
    which gives the container less, never more. The empty DeviceAllow first
    clears what an existing unit allowed (update).
    """
    allow_all, allowed = False, {}
    for rule in rules:
        kind = rule.get("type") or "a"
        major, minor = _number(rule.get("major")), _number(rule.get("minor"))
        access = set(rule.get("access") or "rwm")
        if kind == "a" and major is None and minor is None:
            if access >= set("rwm"):
                allow_all, allowed = bool(rule.get("allow")), {}
            continue
        if allow_all:
            if rule.get("allow"):
                continue
            allow_all = False   # a deny list: deny all instead (see above), then go on
        kinds = ("c", "b") if kind == "a" else (kind,)
        for k in kinds:
            key = (k, major, minor)
            if rule.get("allow"):
                allowed[key] = allowed.get(key, set()) | access
            elif key in allowed:
                allowed[key] -= access
    if allow_all:
        return [prop("DeviceAllow", "a(ss)", []), prop("DevicePolicy", "s", "auto")]
    entries = []
    for (kind, major, minor), access in allowed.items():
        perms = "".join(c for c in "rwm" if c in access)
        if not perms:
            continue
        group = "char" if kind == "c" else "block"
        if major is None:
            if minor is not None:
                continue   # "*:n" has no systemd form; leaving it out gives less access
            path = f"{group}-*"
        elif minor is None:
            path = f"{group}-{major}"                      # systemd >= 240
        else:
            path = f"/dev/{group}/{major}:{minor}"
        entries.append((path, perms))
    return [prop("DeviceAllow", "a(ss)", []), prop("DevicePolicy", "s", "strict"),
            prop("DeviceAllow", "a(ss)", entries)]


def _number(value):
    """A device number of a rule; absent or negative is the wildcard (None)."""
    return None if value is None or value < 0 else value
