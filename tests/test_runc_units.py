"""mocker-runc's pieces without a kernel or root: the config parser, the init
channel's protocol, and the rollback of a failed create.

The rest of mocker-runc's tests run real containers as root; these run
anywhere in a second, and say exactly which piece broke. The rollback's kernel
calls (kill, reap, cgroup removal, unmounts, hooks) are module-level functions
of container.py: a recording fake stands in for each.
"""

import copy
import json
import os

import pytest

from mocker_runc import container, spec
from mocker_runc.channel import Channel, InitError
from mocker_runc.state import ContainerState


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def config(**changes) -> dict:
    doc = copy.deepcopy(spec.default_config())
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return doc


# --- spec.parse: config.json into records, bad configs into one line ---------------

def test_the_default_config_parses_into_records(bundle):
    parsed = spec.parse(config(), str(bundle))
    assert parsed.rootfs == str(bundle / "rootfs")
    assert parsed.process.args == ["sh"] and parsed.process.cwd == "/"
    assert {ns.type for ns in parsed.namespaces} >= {"pid", "mount", "network", "ipc", "uts"}
    assert all(ns.path == "" or ns.path is None for ns in parsed.namespaces)
    proc = next(m for m in parsed.mounts if m.destination == "/proc")
    assert proc.type == "proc" and not proc.is_bind
    assert parsed.namespace("mount") is not None and parsed.namespace("time") is None


def test_mount_options_become_flags_and_data(bundle):
    doc = config(mounts=[{"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "ro", "size=64k", "rprivate"]}])
    mount, = spec.parse(doc, str(bundle)).mounts
    assert mount.flags & spec.k.MS_NOSUID and mount.flags & spec.k.MS_RDONLY
    assert mount.data == "size=64k" and mount.propagation


@pytest.mark.parametrize("changes, message", [
    ({"process": None}, "config.json has no process"),
    ({"process__args": []}, "process.args must name the program to run"),
    ({"linux__namespaces": [{"type": "pid"}, {"type": "pid"}]}, "namespace pid is listed twice"),
    ({"linux__namespaces": [{"type": "bogus"}]}, "unknown namespace type 'bogus'"),
    ({"mounts": [{"destination": "relative", "type": "tmpfs"}]}, "must be an absolute path"),
    ({"process__capabilities": {"bounding": ["CAP_FLY"]}}, "unknown capability 'CAP_FLY'"),
    ({"process__rlimits": [{"type": "RLIMIT_NOPE", "hard": 1, "soft": 1}]}, "unknown rlimit type"),
    ({"hooks": {"prestart": [{"path": "bin/true"}]}}, "hook path 'bin/true' must be absolute"),
])
def test_a_bad_config_is_one_line_naming_the_field(bundle, changes, message):
    doc = config(**changes)
    if changes.get("process", 1) is None:
        del doc["process"]
    with pytest.raises(spec.SpecError) as caught:
        spec.parse(doc, str(bundle))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_rootfs_is_not_found(tmp_path):
    with pytest.raises(spec.NotFound, match="is not a directory"):
        spec.parse(config(), str(tmp_path))


# --- the channel between the runtime and the container's init ----------------------

@pytest.fixture
def channel():
    ours, theirs = Channel.pair(with_fds=True)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_messages_cross_in_order_with_their_fields(channel):
    ours, theirs = channel
    theirs.send("hooks", point="createRuntime")
    theirs.send("ready", pid=42)
    assert ours.recv() == ({"type": "hooks", "point": "createRuntime"}, [])
    assert ours.expect("ready") == {"type": "ready", "pid": 42}


def test_an_fd_travels_with_the_message_that_announces_it(channel, tmp_path):
    ours, theirs = channel
    path = tmp_path / "f"
    path.write_text("through the socket\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        theirs.send("console", fds=[fd])
    finally:
        os.close(fd)
    msg, fds = ours.recv()
    assert msg == {"type": "console", "fds": 1}
    with os.fdopen(fds[0]) as f:
        assert f.read() == "through the socket\n"


def test_an_error_from_init_is_raised_with_its_message(channel):
    ours, theirs = channel
    theirs.send("error", message="pivot_root: Invalid argument")
    with pytest.raises(InitError, match="^pivot_root: Invalid argument$"):
        ours.recv()


def test_a_message_out_of_turn_is_a_protocol_error(channel):
    ours, theirs = channel
    theirs.send("ready", pid=1)
    with pytest.raises(InitError, match="expected hooks, got ready"):
        ours.expect("hooks")


def test_an_init_gone_before_ready_is_said(channel):
    ours, theirs = channel
    theirs.close()
    with pytest.raises(InitError, match="exited before it was ready"):
        ours.recv()


def test_wait_closed_returns_at_execve_and_raises_a_last_error(channel):
    ours, theirs = channel
    theirs.send("error", message="exec: no such file")
    theirs.close()
    with pytest.raises(InitError, match="exec: no such file"):
        ours.wait_closed()


def test_messages_are_json_lines():
    """What goes down the pipe: one JSON object a line (runc's sync pipe, the same idea)."""
    read_fd, write_fd = os.pipe()
    sender = Channel(os.open(os.devnull, os.O_RDONLY), write_fd)
    sender.send("hooks", point="poststart")
    sender.close()
    with os.fdopen(read_fd, "rb") as f:
        assert [json.loads(line) for line in f] == [{"type": "hooks", "point": "poststart"}]


# --- _Undo: a failed create taken apart in reverse ---------------------------------

class Recorder:
    """Stands in for container.py's kernel calls; remembers them in order."""

    def __init__(self, fail: set[str] = frozenset()):
        self.calls, self.fail = [], fail

    def __call__(self, name):
        def call(*args):
            self.calls.append((name, *args))
            if name in self.fail:
                raise OSError(f"{name} failed")
        return call


class FakeCgroup:
    paths: dict = {}

    def __init__(self, record):
        self.record = record

    def pids(self):
        return [7, 8]

    def remove(self):
        self.record("cgroup.remove")()


class FakeStore:
    def __init__(self, record):
        self.record = record

    def remove(self, cid):
        self.record("store.remove")(cid)

    def spec_state(self, st, status):
        return {"id": st.id, "status": status}


@pytest.fixture
def undo(monkeypatch):
    def make(fail=frozenset(), poststop=True):
        record = Recorder(fail)
        for name in ("kill_and_wait", "reap", "release_mounts", "_run_hooks"):
            monkeypatch.setattr(container, name, record(name))
        st = ContainerState(id="c1", bundle="/b", rootfs="/b/rootfs", created="now", pid=5)
        rollback = container._Undo(FakeStore(record), "SPEC", st)
        rollback.middle, rollback.cgroup, rollback.poststop = 4, FakeCgroup(record), poststop
        return rollback, record
    return make


def test_undo_takes_everything_apart_in_reverse(undo):
    rollback, record = undo()
    rollback.run()
    assert [call[0] for call in record.calls] == [
        "kill_and_wait", "reap",           # the middle process
        "kill_and_wait",                   # the init
        "kill_and_wait", "cgroup.remove",  # what is left in the cgroup, then the cgroup
        "release_mounts", "store.remove", "_run_hooks"]
    assert record.calls[0] == ("kill_and_wait", [4]) and record.calls[2] == ("kill_and_wait", [5])
    assert record.calls[3] == ("kill_and_wait", [7, 8])
    assert record.calls[-1] == ("_run_hooks", "poststop", "SPEC", {"id": "c1", "status": "stopped"})
    assert rollback.failed == []


def test_a_failing_step_does_not_stop_the_others(undo, capsys):
    rollback, record = undo(fail={"cgroup.remove"}, poststop=False)
    rollback.run()
    names = [call[0] for call in record.calls]
    assert names[-2:] == ["release_mounts", "store.remove"]    # still done
    assert rollback.failed == ["the cgroup: cgroup.remove failed"]
    assert "warning: after a failed create, the cgroup: cgroup.remove failed" in capsys.readouterr().err


def test_create_raises_its_own_error_not_the_undos(undo, monkeypatch, bundle):
    """The first error is what the user sees; the rollback's own only as a warning."""
    rollback, record = undo(fail={"store.remove"})

    class Made(Exception):
        pass

    def broken_launch(*args):
        raise Made("the init could not start")

    monkeypatch.setattr(container, "_Undo", lambda *args: rollback)
    monkeypatch.setattr(container, "_check_host", lambda spec: None)
    monkeypatch.setattr(container.cgroups, "create", lambda *a, **k: FakeCgroup(record))
    monkeypatch.setattr(container, "_launch_init", broken_launch)

    class Store(FakeStore):
        def make(self, cid):
            (bundle / "state").mkdir()

        def lock(self, cid):
            import contextlib
            return contextlib.nullcontext()

        def fifo(self, cid):
            return str(bundle / "state" / "exec.fifo")

    (bundle / "config.json").write_text(json.dumps(config()))
    with pytest.raises(Made, match="the init could not start"):
        container.create(Store(record), "c1", str(bundle), container.CreateOptions())
    assert "store.remove" in [call[0] for call in record.calls]
