"""config.json, read and checked once, into small data classes (record.py).

runtime-spec config.md and config-linux.md: the rest of mocker-runc trusts
these objects and never looks at the raw JSON again (except to hand
`linux.resources` and `linux.seccomp` to the cgroups and seccomp modules, and
the annotations to hooks).
"""

import json
import os

from mocker_common.errors import MockerError, NotFound

from . import flags as k   # the kernel's CLONE_* and MS_* numbers
from mocker_common.record import Record

SPEC_VERSION = "1.0.2"

# <linux/capability.h>, in bit order
CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]

# config-linux.md#namespaces: spec name -> (CLONE_* flag, /proc/PID/ns file)
NAMESPACES = {
    "user": (k.CLONE_NEWUSER, "user"),
    "pid": (k.CLONE_NEWPID, "pid"),
    "network": (k.CLONE_NEWNET, "net"),
    "mount": (k.CLONE_NEWNS, "mnt"),
    "ipc": (k.CLONE_NEWIPC, "ipc"),
    "uts": (k.CLONE_NEWUTS, "uts"),
    "cgroup": (k.CLONE_NEWCGROUP, "cgroup"),
    "time": (k.CLONE_NEWTIME, "time"),
}

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

HOOK_POINTS = ("prestart", "createRuntime", "createContainer", "startContainer",
               "poststart", "poststop")


class SpecError(MockerError):
    """config.json (or a process.json) says something we cannot run."""


class Capabilities(Record):
    bounding: int = 0
    effective: int = 0
    permitted: int = 0
    inheritable: int = 0
    ambient: int = 0


class Rlimit(Record):
    name: str
    resource: int
    soft: int
    hard: int


class Process(Record):
    args: list[str]
    env: list[str] = []
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = []
    umask: int | None = None
    terminal: bool = False
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] = []
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    console_size: tuple[int, int] | None = None   # (rows, cols)
    apparmor_profile: str = ""
    selinux_label: str = ""

    def getenv(self, name: str, default: str = "") -> str:
        for item in self.env:
            key, _, value = item.partition("=")
            if key == name:
                return value
        return default


class Mount(Record):
    destination: str
    type: str
    source: str
    flags: int            # MS_* flags except propagation
    propagation: list[int]
    data: str             # the options the filesystem itself reads (mode=755,size=…)

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & k.MS_BIND)


class Namespace(Record):
    type: str
    flag: int
    proc_name: str
    path: str | None = None


class IDMap(Record):
    container_id: int
    host_id: int
    size: int


class Device(Record):
    path: str
    type: str
    major: int
    minor: int
    mode: int
    uid: int
    gid: int


class Hook(Record):
    path: str
    args: list[str]
    env: list[str] | None
    timeout: int | None


class Spec(Record):
    """A checked config.json. raw keeps the document for cgroups, seccomp and state."""
    bundle: str
    rootfs: str
    readonly_root: bool
    process: Process
    hostname: str | None
    domainname: str | None
    mounts: list[Mount]
    namespaces: list[Namespace]
    uid_mappings: list[IDMap]
    gid_mappings: list[IDMap]
    devices: list[Device]
    masked_paths: list[str]
    readonly_paths: list[str]
    sysctl: dict[str, str]
    rootfs_propagation: int
    cgroups_path: str
    resources: dict
    seccomp: dict | None
    hooks: dict[str, list[Hook]]
    annotations: dict[str, str]
    raw: dict
    mount_label: str = ""

    def namespace(self, kind: str) -> Namespace | None:
        return next((ns for ns in self.namespaces if ns.type == kind), None)

    def new_namespace(self, kind: str) -> bool:
        ns = self.namespace(kind)
        return ns is not None and ns.path is None


# --- mount options --------------------------------------------------------------

# option -> (flag, True to set it / False to clear it); mount(8)'s names
_MOUNT_FLAGS = {
    "ro": (k.MS_RDONLY, True), "rw": (k.MS_RDONLY, False),
    "nosuid": (k.MS_NOSUID, True), "suid": (k.MS_NOSUID, False),
    "nodev": (k.MS_NODEV, True), "dev": (k.MS_NODEV, False),
    "noexec": (k.MS_NOEXEC, True), "exec": (k.MS_NOEXEC, False),
    "sync": (k.MS_SYNCHRONOUS, True), "async": (k.MS_SYNCHRONOUS, False),
    "remount": (k.MS_REMOUNT, True),
    "mand": (k.MS_MANDLOCK, True), "nomand": (k.MS_MANDLOCK, False),
    "dirsync": (k.MS_DIRSYNC, True),
    "noatime": (k.MS_NOATIME, True), "atime": (k.MS_NOATIME, False),
    "nodiratime": (k.MS_NODIRATIME, True), "diratime": (k.MS_NODIRATIME, False),
    "bind": (k.MS_BIND, True), "rbind": (k.MS_BIND | k.MS_REC, True),
    "silent": (k.MS_SILENT, True),
    "relatime": (k.MS_RELATIME, True), "norelatime": (k.MS_RELATIME, False),
    "strictatime": (k.MS_STRICTATIME, True), "nostrictatime": (k.MS_STRICTATIME, False),
    "lazytime": (k.MS_LAZYTIME, True), "nolazytime": (k.MS_LAZYTIME, False),
    "defaults": (0, True),
}
_PROPAGATION = {
    "private": k.MS_PRIVATE, "rprivate": k.MS_PRIVATE | k.MS_REC,
    "shared": k.MS_SHARED, "rshared": k.MS_SHARED | k.MS_REC,
    "slave": k.MS_SLAVE, "rslave": k.MS_SLAVE | k.MS_REC,
    "unbindable": k.MS_UNBINDABLE, "runbindable": k.MS_UNBINDABLE | k.MS_REC,
}
# runc-specific options that are not passed to the kernel
_IGNORED_OPTIONS = {"tmpcopyup", "nocopyup"}


def parse_mount_options(options: list[str]) -> tuple[int, list[int], str]:
    flags, propagation, data = 0, [], []
    for opt in options:
        if opt in _MOUNT_FLAGS:
            bit, on = _MOUNT_FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in _PROPAGATION:
            propagation.append(_PROPAGATION[opt])
        elif opt not in _IGNORED_OPTIONS:
            data.append(opt)
    return flags, propagation, ",".join(data)


# --- the parts of config.json -------------------------------------------------

def cap_mask(names: list[str] | None) -> int:
    """["CAP_KILL", ...] -> the bit mask capset(2) takes."""
    bits = 0
    for name in names or []:
        short = name.upper().removeprefix("CAP_")
        if short not in CAPABILITIES:
            raise SpecError(f"unknown capability {name!r}")
        bits |= 1 << CAPABILITIES.index(short)
    return bits


def _caps(doc: dict | None) -> Capabilities | None:
    if doc is None:
        return None
    return Capabilities(*(cap_mask(doc.get(k)) for k in
                          ("bounding", "effective", "permitted", "inheritable", "ambient")))


def parse_process(doc: dict) -> Process:
    """runtime-spec config.md#process (also the format of `exec --process FILE`)."""
    args = doc.get("args") or []
    if not args:
        raise SpecError("process.args must name the program to run")
    user = doc.get("user") or {}
    rlimits = []
    for item in doc.get("rlimits") or []:
        if item.get("type") not in RLIMITS:
            raise SpecError(f"unknown rlimit type {item.get('type')!r}")
        rlimits.append(Rlimit(item["type"], RLIMITS[item["type"]], int(item["soft"]),
                              int(item["hard"])))
    size = doc.get("consoleSize")
    return Process(
        args=list(args), env=list(doc.get("env") or []), cwd=doc.get("cwd") or "/",
        uid=int(user.get("uid", 0)), gid=int(user.get("gid", 0)),
        additional_gids=[int(g) for g in user.get("additionalGids") or []],
        umask=user.get("umask"), terminal=bool(doc.get("terminal", False)),
        capabilities=_caps(doc.get("capabilities")), rlimits=rlimits,
        no_new_privileges=bool(doc.get("noNewPrivileges", False)),
        oom_score_adj=doc.get("oomScoreAdj"),
        console_size=(size["height"], size["width"]) if size else None,
        apparmor_profile=doc.get("apparmorProfile") or "",
        selinux_label=doc.get("selinuxLabel") or "",
    )


# The filesystems that take an SELinux context= option from linux.mountLabel
# (runc labels these; proc, sysfs and cgroup files keep the kernel's labels).
_LABELLED_TYPES = {"tmpfs", "devpts"}


def _mounts(items: list[dict], bundle: str, mount_label: str = "") -> list[Mount]:
    mounts = []
    for item in items:
        dest = item.get("destination", "")
        if not dest.startswith("/"):
            raise SpecError(f"mount destination {dest!r} must be an absolute path")
        flags, propagation, data = parse_mount_options(item.get("options") or [])
        mtype = item.get("type") or ("bind" if flags & k.MS_BIND else "")
        if mtype == "bind":
            flags |= k.MS_BIND
        source = item.get("source", "")
        if flags & k.MS_BIND and not source.startswith("/"):
            source = os.path.join(bundle, source)
        if mount_label and mtype in _LABELLED_TYPES:   # config-linux.md#mount-label
            data = ",".join(filter(None, [data, f'context="{mount_label}"']))
        mounts.append(Mount(dest, mtype, source, flags, propagation, data))
    return mounts


def _namespaces(items: list[dict]) -> list[Namespace]:
    seen, out = set(), []
    for item in items:
        kind = item.get("type")
        if kind not in NAMESPACES:
            raise SpecError(f"unknown namespace type {kind!r}")
        if kind in seen:
            raise SpecError(f"namespace {kind} is listed twice")
        seen.add(kind)
        flag, proc_name = NAMESPACES[kind]
        out.append(Namespace(kind, flag, proc_name, item.get("path") or None))
    return out


def _idmaps(items: list[dict] | None) -> list[IDMap]:
    return [IDMap(int(m["containerID"]), int(m["hostID"]), int(m["size"])) for m in items or []]


def _devices(items: list[dict] | None) -> list[Device]:
    devices = []
    for d in items or []:
        if d.get("type") not in ("c", "b", "u", "p"):
            raise SpecError(f"device {d.get('path')}: unknown type {d.get('type')!r}")
        devices.append(Device(d["path"], d["type"], int(d.get("major", 0)), int(d.get("minor", 0)),
                              int(d.get("fileMode", 0o666)), int(d.get("uid", 0)),
                              int(d.get("gid", 0))))
    return devices


def _hooks(doc: dict | None) -> dict[str, list[Hook]]:
    hooks = {}
    for point in HOOK_POINTS:
        hooks[point] = []
        for h in (doc or {}).get(point) or []:
            if not h.get("path", "").startswith("/"):
                raise SpecError(f"{point} hook path {h.get('path')!r} must be absolute")
            hooks[point].append(Hook(h["path"], h.get("args") or [h["path"]], h.get("env"),
                                     h.get("timeout")))
    return hooks


def parse(doc: dict, bundle: str) -> Spec:
    """Check a config.json document and turn it into a Spec."""
    if "process" not in doc:
        raise SpecError("config.json has no process")
    root = doc.get("root") or {}
    rootfs = root.get("path", "rootfs")
    rootfs = os.path.realpath(os.path.join(bundle, rootfs))
    if not os.path.isdir(rootfs):
        raise NotFound(f"rootfs {rootfs} is not a directory")
    linux = doc.get("linux") or {}
    propagation = linux.get("rootfsPropagation")
    if propagation and propagation not in _PROPAGATION:
        raise SpecError(f"unknown rootfsPropagation {propagation!r}")
    namespaces = _namespaces(linux.get("namespaces") or [])
    if any(ns.type == "user" for ns in namespaces) and not linux.get("uidMappings") \
            and not next(ns.path for ns in namespaces if ns.type == "user"):
        raise SpecError("a new user namespace needs linux.uidMappings and gidMappings")
    return Spec(
        bundle=bundle, rootfs=rootfs, readonly_root=bool(root.get("readonly")),
        process=parse_process(doc["process"]),
        hostname=doc.get("hostname"), domainname=doc.get("domainname"),
        mounts=_mounts(doc.get("mounts") or [], bundle, linux.get("mountLabel") or ""),
        namespaces=namespaces,
        uid_mappings=_idmaps(linux.get("uidMappings")),
        gid_mappings=_idmaps(linux.get("gidMappings")),
        devices=_devices(linux.get("devices")),
        masked_paths=list(linux.get("maskedPaths") or []),
        readonly_paths=list(linux.get("readonlyPaths") or []),
        sysctl=dict(linux.get("sysctl") or {}),
        rootfs_propagation=_PROPAGATION.get(propagation, k.MS_PRIVATE | k.MS_REC),
        cgroups_path=linux.get("cgroupsPath") or "",
        resources=dict(linux.get("resources") or {}),
        seccomp=linux.get("seccomp"), hooks=_hooks(doc.get("hooks")),
        annotations=dict(doc.get("annotations") or {}), raw=doc,
        mount_label=linux.get("mountLabel") or "",
    )


def load(bundle: str) -> Spec:
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file (is {bundle} a bundle?)") from None
    except ValueError as err:
        raise SpecError(f"{path}: not valid JSON: {err}") from None
    try:
        return parse(doc, bundle)
    except (KeyError, TypeError, ValueError) as err:
        raise SpecError(f"{path}: malformed: {err}") from None


def default_config() -> dict:
    """What `spec` writes: runc's default, a busybox-style shell in a few namespaces."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in
                             ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "mocker",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
