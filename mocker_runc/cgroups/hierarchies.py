"""Which cgroup hierarchies this host has, and where a container's cgroup goes.

Three shapes exist (kernel Documentation/admin-guide/cgroup-v1 and cgroup-v2):
- v1: one hierarchy per controller (or a few co-mounted), e.g. /sys/fs/cgroup/memory;
- v2: one unified hierarchy, controllers enabled per level in cgroup.subtree_control;
- hybrid: v1 controllers plus a cgroup2 tree (often /sys/fs/cgroup/unified) that
  holds no controllers but still tracks processes. Like runc, we use the v1
  controllers and also put the container in the unified tree.
The answer comes from /proc/self/mountinfo, read at run time.
"""

import posixpath

from mocker_common.record import Record

MOUNTINFO = "/proc/self/mountinfo"
OWN_CGROUP = "/proc/self/cgroup"
DEFAULT_PARENT = "/mocker"
# v1 controllers (a v1 mount's super options also hold flags like xattr or noprefix)
V1_CONTROLLERS = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
                  "net_prio", "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc"}


class Mount(Record):
    """A mounted cgroup hierarchy: where it is, and which cgroup its top shows."""

    mountpoint: str
    root: str = "/"   # the cgroup at the mountpoint ("/" unless in a cgroup namespace)

    def dir_for(self, cgroup: str) -> str:
        """The directory of cgroup (a path inside the hierarchy) under this mount."""
        inside = cgroup == self.root or cgroup.startswith(self.root.rstrip("/") + "/")
        rel = (posixpath.relpath(cgroup, self.root) if inside else cgroup).lstrip("/")
        return self.mountpoint if rel in ("", ".") else posixpath.join(self.mountpoint, rel)


class Layout(Record):
    """The cgroup hierarchies of a host.

    v1 maps a controller name ("memory", "cpu", "name=systemd", ...) to its
    mount; unified is the cgroup2 mount, if any.
    """

    v1: dict[str, Mount] = {}
    unified: Mount | None = None

    @property
    def mode(self) -> str:
        """"v1", "hybrid" (v1 controllers and a cgroup2 tree), "v2" or "none"."""
        # a lone name=systemd v1 tree (kept on some v2 hosts for old software)
        # holds no controller: such a host is v2
        if any(name in V1_CONTROLLERS for name in self.v1):
            return "hybrid" if self.unified else "v1"
        return "v2" if self.unified else "none"


def detect(mountinfo: str = MOUNTINFO) -> Layout:
    """Read the cgroup mounts of this process's mount namespace."""
    layout = Layout()
    with open(mountinfo) as f:
        for line in f:
            # proc(5): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            fstype, superopts = tail[0], tail[2]
            mount = Mount(mountpoint=_unescape(fields[4]), root=_unescape(fields[3]))
            if fstype == "cgroup2" and layout.unified is None:
                layout.unified = mount
            elif fstype == "cgroup":
                for opt in superopts.split(","):
                    if opt in V1_CONTROLLERS or opt.startswith("name="):  # name=systemd: no controller
                        layout.v1.setdefault(opt, mount)
    return layout


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def cgroup_path(cgroups_path: str, container_id: str, controller: str = "") -> str:
    """The container's cgroup, as a clean absolute path inside one hierarchy.

    runtime-spec config-linux.md "Cgroups path": an absolute cgroupsPath is
    relative to the hierarchy's root, a relative one to the runtime's own
    cgroup; an empty one is the runtime's choice (/mocker/<id>, like docker's
    /docker/<id>). ".." cannot climb above the hierarchy's root.
    """
    if not cgroups_path:
        cgroups_path = posixpath.join(DEFAULT_PARENT, container_id)
    if not cgroups_path.startswith("/"):
        cgroups_path = posixpath.join(own_cgroup(controller), cgroups_path)
    return posixpath.normpath("/" + cgroups_path.lstrip("/"))


def own_cgroup(controller: str, proc_cgroup: str = OWN_CGROUP) -> str:
    """This process's cgroup in the hierarchy of controller ("" for v2)."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return "/"
    for line in lines:
        # cgroups(7): HIERARCHY-ID:CONTROLLER-LIST:CGROUP-PATH
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (controller == "" == controllers):
            return path or "/"
    return "/"
