"""The default runtime profile, as Docker gives a container (moby's oci/defaults.go).

Data only: convert.py builds config.json from it.
"""

# Docker's default capability set (moby: oci/caps/defaults.go).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# Namespaces a container gets; "network" is left out in --network host mode.
DEFAULT_NAMESPACES = ["pid", "ipc", "uts", "mount", "network", "cgroup"]

# Kernel interfaces a container must not read (masked) or change (read-only).
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# runtime-spec config.md "mounts": the filesystems every Linux container expects.
DEFAULT_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
]

# Docker raises the open-files limit to this; we stay within the host's hard limit.
DEFAULT_NOFILE = 1048576
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# cgroup v1 CFS: the period a --cpus quota is measured against (microseconds).
CPU_PERIOD = 100000


def _allow(kind: str, major: int | None, minor: int | None, access: str = "rwm") -> dict:
    rule = {"allow": True, "type": kind, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


# linux.resources.devices, as a Docker container gets them: deny everything,
# then allow mknod of any node (opening it still needs a rule) and the
# devices every program expects. Docker's own config.json lists null, zero,
# random, urandom, tty and console, and leaves the rest (mknod, full, ptmx,
# pts/*) to runc's defaults; they are written out here so the bundle says
# what it gets whatever runtime runs it.
DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    _allow("c", None, None, "m"),   # mknod of any char device
    _allow("b", None, None, "m"),   # mknod of any block device
    _allow("c", 1, 3),              # /dev/null
    _allow("c", 1, 5),              # /dev/zero
    _allow("c", 1, 7),              # /dev/full
    _allow("c", 1, 8),              # /dev/random
    _allow("c", 1, 9),              # /dev/urandom
    _allow("c", 5, 0),              # /dev/tty
    _allow("c", 5, 1),              # /dev/console
    _allow("c", 5, 2),              # /dev/ptmx
    _allow("c", 136, None),         # /dev/pts/*
]
# (Docker's list ends with a deny of /dev/fuse, c 10:229: a no-op after the
# deny-all, and here, after the mknod wildcard, a "hole" runc would refuse.)
