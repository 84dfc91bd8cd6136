"""Per-container state under --root: what survives between mocker-runc calls.

ROOT/ID/state.json   written atomically; the spec's state plus what later verbs need
ROOT/ID/exec.fifo    exists from create until start (runc's name); the container's
                     init process blocks reading it

The status is never stored, it is observed (runtime-spec runtime.md#state):
the init process is alive (same pid AND same start time, so a recycled pid is
not mistaken for it), the fifo still exists (created), the freezer says paused.
"""

import contextlib
import fcntl
import json
import os

from mocker_common import names
from mocker_common.files import atomic_write
from mocker_common.procfs import proc_start_time
from mocker_common.errors import Conflict, ExitCode, MockerError, NotFound

from mocker_common.record import Record
from .spec import SPEC_VERSION

FIFO = "exec.fifo"


class ContainerState(Record):
    id: str
    bundle: str
    rootfs: str
    created: str
    pid: int = 0
    pid_start: int = 0         # field 22 of /proc/PID/stat when we started it
    ready: bool = False        # create finished: init waits on the fifo
    cgroups_path: str = ""
    cgroup_paths: dict = {}   # controller -> directory, from create
    systemd_unit: str = ""    # --systemd-cgroup: the unit systemd made (and its slice)
    systemd_slice: str = ""
    annotations: dict = {}
    config: dict = {}
    owner: str = ""
    no_new_keyring: bool = False   # create's --no-new-keyring: exec joins no keyring either
    # no mount namespace of its own: the ids of the mounts at or under the rootfs
    # before create (hostmounts.py); delete detaches the container's others
    premounted: list | None = None


class Store:
    """The state directory of one --root."""

    def __init__(self, root: str):
        self.root = root

    def check_owner(self) -> None:
        """Refuse a --root that others may write: its state.json decides which
        hooks `delete` runs as root (poststop), and which pid `kill` signals.
        runc 1.1 takes any directory; we fail closed."""
        try:
            info = os.stat(self.root)
        except FileNotFoundError:
            return   # made by us, 0711, on the first create
        if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
            raise MockerError(f"--root {self.root} is writable by others (mode "
                              f"{info.st_mode & 0o7777:04o}, owner uid {info.st_uid}): its state "
                              f"decides what runs as root; chmod go-w it", ExitCode.CORRUPT)

    def dir(self, cid: str) -> str:
        names.runtime_id(cid)
        if cid.startswith("."):   # runc takes ".x"; our --root keeps its .seccomp cache there
            raise names.InvalidName(f"invalid container id {cid!r}: it may not start with '.'")
        return os.path.join(self.root, cid)

    def fifo(self, cid: str) -> str:
        return os.path.join(self.dir(cid), FIFO)

    def ids(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if os.path.exists(os.path.join(self.root, n, "state.json"))]

    def make(self, cid: str) -> str:
        """Create the directory of a new container (fails if the id is taken)."""
        path = self.dir(cid)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise Conflict(f"container with id exists: {cid}") from None
        return path

    def save(self, st: ContainerState) -> None:
        # One line, as runc writes it: without indent, json uses its C encoder
        # (the config is most of it; indenting it in Python costs ~1 ms a save).
        atomic_write(os.path.join(self.dir(st.id), "state.json"),
                     json.dumps(st.as_dict()).encode(), 0o600, durable=False)

    def load(self, cid: str) -> ContainerState:
        try:
            with open(os.path.join(self.dir(cid), "state.json"), "rb") as f:
                return ContainerState(**json.load(f))
        except FileNotFoundError:
            raise NotFound(f"container {cid} does not exist") from None

    def remove(self, cid: str) -> None:
        """Remove the container's directory (it holds only flat files)."""
        path = self.dir(cid)
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(path, name))
            os.rmdir(path)

    @contextlib.contextmanager
    def lock(self, cid: str):
        """Serialise operations on one container: flock on its directory."""
        try:
            fd = os.open(self.dir(cid), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"container {cid} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def alive(self, st: ContainerState) -> bool:
        return st.pid > 0 and proc_start_time(st.pid) == st.pid_start

    def status(self, st: ContainerState, cgroup=None) -> str:
        """creating, created, running, paused or stopped: observed, not remembered."""
        if not self.alive(st):
            return "stopped"
        if not st.ready:
            return "creating"
        if os.path.exists(self.fifo(st.id)):
            return "created"
        if cgroup is not None and cgroup.state() == "paused":
            return "paused"
        return "running"

    def spec_state(self, st: ContainerState, status: str) -> dict:
        """runtime-spec state JSON (what hooks read and `state` prints), plus runc's extras."""
        return {
            "ociVersion": SPEC_VERSION,
            "id": st.id,
            "pid": st.pid if status != "stopped" else 0,
            "status": status,
            "bundle": st.bundle,
            "rootfs": st.rootfs,
            "created": st.created,
            "annotations": st.annotations,
            "owner": st.owner,
        }
