"""The systemd cgroup driver (runc --systemd-cgroup): systemd makes the container's cgroup.

On a host booted with systemd, systemd owns the cgroup tree; podman's and
containerd's systemd mode therefore ask the runtime not to mkdir cgroups
itself but to have systemd start a transient unit for the container:

    cgroupsPath "kubepods-besteffort-pod1234.slice:cri-containerd:abcd"
    -> unit cri-containerd-abcd.scope in kubepods-besteffort-pod1234.slice
    -> cgroup /sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/
              kubepods-besteffort-pod1234.slice/cri-containerd-abcd.scope

The scope is started over D-Bus (systemd_dbus.py) with the container's first
process in it, Delegate=yes and the limits systemd has properties for
(systemd_props.py); then, as runc does, every limit is also written into the
cgroup's files by the cgroupfs driver (v2.py or v1.py), which covers what
systemd has no property for. Freezing, listing and statistics read the same
files, so they are the cgroupfs driver's. A slice that does not exist yet is
made by systemd itself when the scope names it (a slice's parents are in its
name: a-b-c.slice lives in a-b.slice, in a.slice).
"""

import posixpath

from mocker_common.errors import MockerError

from . import systemd_props as props
from .base import Cgroup

DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "mocker"     # runc's is "runc": `systemctl list-units 'mocker-*'`
SLICE_SUFFIX = ".slice"


class UnitPlace:
    """Where a container's unit goes: its name and its parent slice."""

    def __init__(self, slice_: str, unit: str):
        self.slice, self.unit = slice_, unit

    @property
    def is_slice(self) -> bool:
        return self.unit.endswith(SLICE_SUFFIX)

    def cgroup(self) -> str:
        """The unit's cgroup, as a path inside the hierarchy."""
        return posixpath.join(expand_slice(self.slice), self.unit)


def parse_cgroups_path(cgroups_path: str, container_id: str) -> UnitPlace:
    """runtime-spec linux.cgroupsPath in systemd's form, "[slice]:[prefix]:[name]".

    As runc (docs/systemd.md): empty means ":mocker:<id>"; an empty slice is
    system.slice; the unit is "<prefix>-<name>.scope", unless name is itself
    a slice ("x.slice"), which is then made instead of a scope.
    """
    if not cgroups_path:
        cgroups_path = f":{DEFAULT_PREFIX}:{container_id}"
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise MockerError(f'cgroupsPath must be "slice:prefix:name" with --systemd-cgroup, '
                          f'got {cgroups_path!r}')
    slice_, prefix, name = parts
    slice_ = slice_ or DEFAULT_SLICE
    expand_slice(slice_)   # checks it
    unit = name if name.endswith(SLICE_SUFFIX) else f"{prefix}-{name}.scope"
    if not name or "/" in unit or unit.startswith((".", "-")) or len(unit) > 255:
        raise MockerError(f"invalid systemd unit name {unit!r} from cgroupsPath {cgroups_path!r}")
    if unit.endswith(SLICE_SUFFIX):
        expand_slice(unit)
    return UnitPlace(slice_, unit)


def expand_slice(slice_: str) -> str:
    """A slice's cgroup: systemd.slice(5) nests by dashes, a-b.slice is /a.slice/a-b.slice.

    "-.slice" is the root slice. Empty parts ("a--b.slice", "-a.slice") and
    slashes are refused, as by systemd and runc.
    """
    if not slice_.endswith(SLICE_SUFFIX) or len(slice_) <= len(SLICE_SUFFIX) or "/" in slice_:
        raise MockerError(f"invalid slice name {slice_!r}: a slice is NAME.slice, without '/'")
    name = slice_[:-len(SLICE_SUFFIX)]
    if name == "-":
        return "/"
    path, prefix = "", ""
    for part in name.split("-"):
        if not part:
            raise MockerError(f"invalid slice name {slice_!r}: empty part between dashes")
        path += f"/{prefix}{part}{SLICE_SUFFIX}"
        prefix += part + "-"
    return path


class SystemdCgroup(Cgroup):
    """A container's cgroup made by systemd: a transient unit, backed by the files.

    `files` is the cgroupfs driver's object for the same directories; what
    systemd does not do (freeze, list, statistics, the limits it has no
    property for) goes through it.
    """

    def __init__(self, place: UnitPlace, files: Cgroup):
        super().__init__(files.paths)
        self.place, self.files = place, files
        self.version = files.version
        self.needs_pid = False   # true from make() until start(): see container.fork_in
        self._systemd = None
        self._pending = None     # (resources, devices) to apply at start()

    @property
    def unit(self) -> str:
        return self.place.unit

    def __repr__(self):
        return f"<SystemdCgroup {self.unit} in {self.place.slice} {self.paths}>"

    def systemd(self):
        if self._systemd is None:
            from .systemd_dbus import Systemd
            self._systemd = Systemd()
        return self._systemd

    # -- create: make() and apply() only prepare; start(pid) asks systemd -----------

    def make(self, resources: dict) -> list[str]:
        self.systemd()            # no systemd or no bus: fail before any process exists
        self.needs_pid = not self.place.is_slice
        return []

    def apply(self, resources: dict, devices: list | None = None, creating: bool = False) -> None:
        if creating:
            self._pending = (resources, devices or [])
            # everything that can be refused is checked now, before a process exists
            self._properties(resources, devices or [], creating=True)
            if self.place.is_slice:
                self.start(None)
            return
        self.update(resources)

    def start(self, pid: int | None) -> None:
        """Start the unit with pid in it, wait for systemd's job, then write the files."""
        resources, devices = self._pending
        unit_props, file_resources = self._properties(resources, devices, creating=True)
        props_ = props.unit_properties(self.place.slice, pid, f"mocker container {self.unit}",
                                       self.place.is_slice, v2=self.version == 2) + unit_props
        sd = self.systemd()
        from .systemd_dbus import SystemdError
        try:
            sd.start_transient_unit(self.unit, props_)
        except SystemdError as err:
            if not err.name.endswith(".UnitExists"):
                raise
            # a failed unit of the same name lingers until reset; runc retries once
            sd.reset_failed_unit(self.unit)
            sd.start_transient_unit(self.unit, props_)
        self.needs_pid = False
        try:
            # as runc: the cgroupfs driver makes what systemd did not (v1
            # controllers systemd does not manage), joins pid there, and
            # writes every limit into the files
            self.files.make(file_resources)
            if pid is not None and self.version == 1:
                self.files.add(pid)
            self.files.apply(file_resources, devices=devices, creating=True)
        except BaseException:
            self.remove()
            raise

    def _properties(self, resources: dict, devices: list, creating: bool):
        from . import resources as res
        rules = None
        if creating or "devices" in resources:
            rules = res.device_rules(resources.get("devices") or [], devices)
        version = self.systemd().version()
        return props.resource_properties(resources, rules, v2=self.version == 2, version=version)

    # -- later verbs ------------------------------------------------------------------

    def update(self, resources: dict) -> None:
        """runc update: SetUnitProperties for what systemd knows, then the files."""
        unit_props, file_resources = self._properties(resources, [], creating=False)
        if unit_props:
            self.systemd().set_unit_properties(self.unit, unit_props)
        self.files.update(file_resources)

    def remove(self) -> None:
        """Stop the unit (systemd kills what is left and removes its cgroup), forget it
        if it failed, and remove any cgroup left below (as runc, for older systemd)."""
        sd = self.systemd()
        if sd.unit_active_state(self.unit):
            sd.stop_unit(self.unit)
            from .systemd_dbus import SystemdError
            try:
                sd.reset_failed_unit(self.unit)
            except SystemdError:
                pass   # not failed, or already gone: nothing to forget
        self.files.remove()

    def add(self, pid: int, only: list[str] | None = None) -> None:
        self.files.add(pid, only)

    def self_join_files(self) -> list[str]:
        # before start() the v1 directories do not exist yet: start() joins the pid itself
        return [] if self.needs_pid else self.files.self_join_files()

    def pids(self) -> list[int]:
        return self.files.pids()

    def kill_all(self, sig: int) -> None:
        self.files.kill_all(sig)   # v2: cgroup.kill, as with cgroupfs

    def freeze(self) -> None:
        self.files.freeze()

    def thaw(self) -> None:
        self.files.thaw()

    def state(self) -> str:
        return self.files.state()

    def stats(self) -> dict:
        return self.files.stats()

    def exists(self) -> bool:
        return self.files.exists()
