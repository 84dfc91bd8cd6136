"""Container cgroups: create, limit, freeze, list and remove, on cgroup v1 or v2.

    cg = cgroups.create(cgroups_path, resources, container_id)  # at `create`
    cg.add(pid)                                                  # the container's first process
    cg = cgroups.load(cgroups_path, container_id)                # later verbs: pause, ps, kill --all
    cg = cgroups.from_paths(saved_cg_paths)                      # or from the paths saved at create
    cg.freeze(); cg.thaw(); cg.state(); cg.pids(); cg.stats(); cg.update(resources)
    cg.kill_all(signal.SIGKILL)
    cg.remove()                                                  # at `delete`

With systemd=True (mocker-runc --systemd-cgroup) systemd makes the cgroup as a
transient unit (systemd.py); create() then only prepares it, and the unit is
started once the container's first process exists: `if cg.needs_pid: cg.start(pid)`.

The host's hierarchies are found at run time (hierarchies.py): v1, v2, or hybrid
(v1 controllers plus a controller-less v2 tree, used like v1 and joined too).
Importing this package costs only the standard library: the version modules
(and cgroupspy, for v1) load on first use.
"""

from mocker_common.errors import MockerError

from .base import Cgroup
from .hierarchies import Layout, Mount, detect

__all__ = ["Cgroup", "Layout", "Mount", "create", "detect", "from_paths", "load"]


def create(cgroups_path: str, resources: dict, container_id: str, *,
           devices: list | None = None, layout: Layout | None = None,
           systemd: bool = False) -> Cgroup:
    """Create the container's cgroup and apply linux.resources to it.

    cgroups_path is the runtime-spec linux.cgroupsPath ("" means /mocker/<id>);
    devices is the spec's linux.devices: a device there with the path of one
    of runc's defaults replaces that default's rule (cgroups/devices.py).
    On failure nothing this call made is left behind.
    """
    cgroup = load(cgroups_path, container_id, layout=layout, systemd=systemd)
    resources = resources or {}
    made = cgroup.make(resources)
    try:
        cgroup.apply(resources, devices=devices, creating=True)
    except BaseException:
        from . import fs
        fs.remove_dirs(made)
        raise
    return cgroup


def load(cgroups_path: str, container_id: str, *, layout: Layout | None = None,
         systemd: bool = False) -> Cgroup:
    """The cgroup of an existing container (nothing is created or checked)."""
    layout = layout or detect()
    if systemd:
        from .systemd import SystemdCgroup, parse_cgroups_path
        place = parse_cgroups_path(cgroups_path, container_id)
        # the cgroupfs driver's object for the unit's cgroup, an absolute path
        return SystemdCgroup(place, load(place.cgroup(), container_id, layout=layout))
    if layout.mode == "v2":
        from .v2 import V2Cgroup
        return V2Cgroup.locate(layout, cgroups_path, container_id)
    if layout.mode in ("v1", "hybrid"):
        from .v1 import V1Cgroup
        return V1Cgroup.locate(layout, cgroups_path, container_id)
    raise MockerError("no cgroup hierarchy is mounted (none in /proc/self/mountinfo)")


def from_paths(paths: dict[str, str], systemd_unit: str = "", systemd_slice: str = "") -> Cgroup:
    """The cgroup whose directories create() returned in `.paths` (saved in state).

    Safer than load() for a relative cgroupsPath, which depends on the cgroup
    of the process that resolves it. A container made by systemd also names
    its unit (and slice), which delete stops and update changes.
    """
    if set(paths) == {"unified"}:
        from .v2 import V2Cgroup
        files = V2Cgroup(paths, mountpoint=None)
    else:
        from .v1 import V1Cgroup
        files = V1Cgroup(paths)
    if systemd_unit:
        from .systemd import SystemdCgroup, UnitPlace
        return SystemdCgroup(UnitPlace(systemd_slice, systemd_unit), files)
    return files
