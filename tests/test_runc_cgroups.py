"""mocker_runc.cgroups on this host's real cgroups, v1 or v2.

The development machines are hybrid hosts: v1 controllers under
/sys/fs/cgroup/<ctrl> and a controller-less cgroup2 tree at
/sys/fs/cgroup/unified, which a hybrid host joins too. Our users' machines are
pure cgroup v2: CI runs this module again in a pure v2 guest (tests/guest,
tests/test_guest_suites.py). Tests without a host fixture run on both; those
that need v1 files take `v1_host`, their v2 twins are in test_runc_cgroups_v2.py.
"""

import os
import signal
import subprocess
import time

import pytest

from mocker_common.errors import MockerError
from mocker_runc import cgroups
from mocker_runc.cgroups import hierarchies
from tests.conftest import need_root
from tests.fixtures.wait import wait_until

MiB = 1 << 20
BUSYBOX = "/bin/busybox"


def spawn_in(cg, argv, **kwargs) -> subprocess.Popen:
    """Start argv already inside cg (it joins between fork and exec)."""
    return subprocess.Popen(argv, preexec_fn=lambda: cg.add(os.getpid()), **kwargs)


def kill_all_and_remove(cg) -> None:
    """Stop everything in cg and remove it, whatever state a test left it in."""
    try:
        if cg.exists():
            cg.kill_all(signal.SIGKILL)
            if cg.state() == "paused":
                cg.thaw()
            wait_until(lambda: not cg.pids())
    finally:
        cg.remove()


@pytest.fixture
def v1_host():
    need_root()
    layout = cgroups.detect()
    if layout.mode not in ("v1", "hybrid"):
        pytest.skip(f"needs cgroup v1 controllers; this host is {layout.mode}")
    return layout


@pytest.fixture
def host():
    """This host's cgroup layout (v1, hybrid or v2)."""
    need_root()
    layout = cgroups.detect()
    if layout.mode == "none":
        pytest.skip("no cgroup hierarchy mounted")
    return layout


@pytest.fixture
def made(host):
    """Cgroups a test creates; all removed afterwards, with their processes killed."""
    groups = []
    yield groups
    for cg in groups:
        kill_all_and_remove(cg)


def _read(cg, controller, filename):
    """A file of a controller: in its own hierarchy on v1, in the one directory on v2."""
    with open(os.path.join(cg.paths.get(controller) or cg.paths["unified"], filename)) as f:
        return f.read().strip()


def test_create_writes_the_limits_of_linux_resources(made, unique, v1_host):
    resources = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
    }
    cg = cgroups.create(f"/mocker/{unique}", resources, unique)
    made.append(cg)

    assert cg.paths["memory"] == f"/sys/fs/cgroup/memory/mocker/{unique}"
    assert _read(cg, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert _read(cg, "memory", "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert _read(cg, "memory", "memory.memsw.limit_in_bytes") == str(96 * MiB)
    assert _read(cg, "cpu", "cpu.shares") == "512"
    assert _read(cg, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _read(cg, "cpu", "cpu.cfs_period_us") == "100000"
    assert _read(cg, "cpuset", "cpuset.cpus") == "0"
    assert _read(cg, "pids", "pids.max") == "42"
    if v1_host.mode == "hybrid":
        assert os.path.isdir(cg.paths["unified"])


def test_empty_cgroups_path_means_mocker_slash_id_and_new_cpuset_gets_parent_cpus(made, unique, v1_host):
    cg = cgroups.create("", {}, unique)
    made.append(cg)
    assert cg.paths["pids"] == f"/sys/fs/cgroup/pids/mocker/{unique}"
    # a v1 cpuset starts empty; the container could not even join it so
    parent_cpus = open("/sys/fs/cgroup/cpuset/cpuset.cpus").read().strip()
    assert _read(cg, "cpuset", "cpuset.cpus") == parent_cpus
    assert _read(cg, "cpuset", "cpuset.mems") != ""


def test_a_process_added_is_listed_and_sees_its_cgroup(made, unique, host):
    cg = cgroups.create(f"/mocker/{unique}", {}, unique)
    made.append(cg)
    proc = spawn_in(cg, [BUSYBOX, "sleep", "30"])
    try:
        assert cg.pids() == [proc.pid]
        own = open(f"/proc/{proc.pid}/cgroup").read().splitlines()
        if host.mode != "v2":
            assert any(line.endswith(f":memory:/mocker/{unique}") for line in own)
        if host.mode != "v1":
            assert f"0::/mocker/{unique}" in own  # the unified tree is joined too
        assert cgroups.load(f"/mocker/{unique}", unique).pids() == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert cg.pids() == []


@pytest.mark.parametrize("clone3", [True, False], ids=["clone3", "fork"])
def test_the_middle_process_starts_in_every_hierarchy(made, unique, monkeypatch, clone3):
    # container.fork_in moves nothing by pid (cgroups.join_self says why): the
    # child starts in the cgroup2 directory (clone3) or is added there after a
    # plain fork (kernels without clone3), and joins the v1 hierarchies itself.
    from mocker_runc import container, linux
    from mocker_runc.cgroups.base import join_self
    calls = []

    def spy(directory):
        calls.append(directory)
        if not clone3:
            raise OSError(38, "clone3: Function not implemented")   # an older kernel
        return real(directory)
    real = linux.fork_into_cgroup
    monkeypatch.setattr(linux, "fork_into_cgroup", spy)
    cg = cgroups.create(f"/mocker/{unique}", {}, unique)
    made.append(cg)
    reader, writer = os.pipe()
    pid = container.fork_in(cg)
    if pid == 0:   # the child: report where it is, and never return into pytest
        try:
            join_self(cg.self_join_files())
            with open("/proc/self/cgroup", "rb") as f:
                os.write(writer, f.read())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as f:
        own = f.read().decode().splitlines()
    os.waitpid(pid, 0)
    assert calls == ([cg.paths["unified"]] if "unified" in cg.paths else [])
    assert own and all(line.endswith(f":/mocker/{unique}") for line in own), own


def check_freeze_and_thaw(cg, tmp_path, extra_check=lambda proc: None) -> None:
    """A counting loop in cg stops counting while frozen, and counts again when thawed."""
    counter = tmp_path / "counter"
    script = f"i=0; while true; do i=$((i+1)); echo $i > {counter}; usleep 20000; done"
    proc = spawn_in(cg, [BUSYBOX, "sh", "-c", script])
    try:
        extra_check(proc)
        assert wait_until(lambda: counter.exists() and counter.read_text().strip())
        cg.freeze()
        assert cg.state() == "paused"
        frozen_at = counter.read_text()
        time.sleep(0.3)
        assert counter.read_text() == frozen_at  # no progress while frozen

        cg.thaw()
        assert cg.state() == "running"
        assert wait_until(lambda: counter.read_text() != frozen_at)
    finally:
        proc.kill()
        proc.wait()


def test_freeze_stops_a_process_and_thaw_resumes_it(made, unique, tmp_path):
    cg = cgroups.create(f"/mocker/{unique}", {}, unique)
    made.append(cg)

    def frozen_as_the_kernel_says(proc):
        cg.freeze()
        if cg.version == 1:
            assert _read(cg, "freezer", "freezer.state") == "FROZEN"
        else:   # v2: cgroup.freeze asks, cgroup.events tells when every process stopped
            assert "frozen 1" in _read(cg, "unified", "cgroup.events").splitlines()
        cg.thaw()
        if cg.version == 1:
            assert _read(cg, "freezer", "freezer.state") == "THAWED"
        else:
            assert "frozen 0" in _read(cg, "unified", "cgroup.events").splitlines()

    check_freeze_and_thaw(cg, tmp_path, frozen_as_the_kernel_says)


def test_remove_leaves_no_directory_and_is_idempotent(made, unique):
    cg = cgroups.create(f"/mocker/{unique}", {"pids": {"limit": 10}}, unique)
    made.append(cg)
    assert all(os.path.isdir(p) for p in cg.paths.values())
    cg.remove()
    assert not any(os.path.exists(p) for p in cg.paths.values())
    cg.remove()  # already gone: fine
    assert cgroups.load(f"/mocker/{unique}", unique).pids() == []


def test_kill_all_signals_every_process_and_keeps_a_paused_cgroup_paused(made, unique):
    cg = cgroups.create(f"/mocker/{unique}", {}, unique)
    made.append(cg)
    procs = [spawn_in(cg, [BUSYBOX, "sleep", "30"]) for _ in range(3)]
    same = cgroups.from_paths(dict(cg.paths))  # as saved in a container's state
    assert sorted(same.pids()) == sorted(p.pid for p in procs)
    same.freeze()
    same.kill_all(signal.SIGTERM)
    assert same.state() == "paused"  # pause is the user's: kill --all does not undo it
    same.thaw()
    assert [p.wait(timeout=30) for p in procs] == [-signal.SIGTERM] * 3
    assert wait_until(lambda: same.pids() == [])


def test_remove_refuses_while_a_process_is_inside_and_kills_nothing(made, unique):
    cg = cgroups.create(f"/mocker/{unique}", {}, unique)
    made.append(cg)
    proc = spawn_in(cg, [BUSYBOX, "sleep", "30"])
    try:
        with pytest.raises(MockerError, match=r"cannot remove cgroup .*/mocker/.*: Device or resource busy"):
            cg.remove()
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_update_changes_limits_of_a_live_cgroup(made, unique):
    cg = cgroups.create(f"/mocker/{unique}", {"memory": {"limit": 64 * MiB}, "pids": {"limit": 10}}, unique)
    made.append(cg)
    cg.update({"memory": {"limit": 128 * MiB}, "pids": {"limit": -1}, "cpu": {"quota": 20000}})
    assert _read(cg, "pids", "pids.max") == "max"
    if cg.version == 2:
        assert _read(cg, "memory", "memory.max") == str(128 * MiB)
        assert _read(cg, "cpu", "cpu.max") == "20000 100000"
        # v2 keeps swap apart (memory.swap.max): the spec's memory+swap minus memory
        cg.update({"memory": {"limit": 32 * MiB, "swap": 48 * MiB}})
        assert _read(cg, "memory", "memory.swap.max") == str(16 * MiB)
        return
    assert _read(cg, "memory", "memory.limit_in_bytes") == str(128 * MiB)
    assert _read(cg, "cpu", "cpu.cfs_quota_us") == "20000"

    # the kernel wants limit <= memory+swap at every step: growing both, the
    # swap limit must go first; shrinking both, last
    cg.update({"memory": {"limit": 256 * MiB, "swap": 512 * MiB}})
    cg.update({"memory": {"limit": 32 * MiB, "swap": 48 * MiB}})
    cg.update({"memory": {"limit": 300 * MiB, "swap": 600 * MiB}})
    assert _read(cg, "memory", "memory.limit_in_bytes") == str(300 * MiB)
    assert _read(cg, "memory", "memory.memsw.limit_in_bytes") == str(600 * MiB)


def test_a_failed_create_names_the_file_and_leaves_nothing(made, unique):
    bad = {"memory": {"limit": 64 * MiB}, "cpu": {"cpus": "99"}}
    with pytest.raises(MockerError) as err:
        cgroups.create(f"/mocker/{unique}/inner", bad, unique)
    message = str(err.value)
    assert message.startswith("cannot set cpuset cpus to 99: /sys/fs/cgroup/")
    assert f"/mocker/{unique}/inner/cpuset.cpus: " in message
    assert "\n" not in message
    leftovers = [p for p in cgroups.load(f"/mocker/{unique}", unique).paths.values() if os.path.exists(p)]
    assert leftovers == []


def test_a_limit_in_a_missing_controller_is_a_clear_error(made, unique, v1_host):
    without_pids = hierarchies.Layout({k: m for k, m in v1_host.v1.items() if k != "pids"}, v1_host.unified)
    # a controller the config does not use is skipped silently
    cg = cgroups.create(f"/mocker/{unique}", {"memory": {"limit": 64 * MiB}}, unique, layout=without_pids)
    made.append(cg)
    assert "pids" not in cg.paths
    with pytest.raises(MockerError, match="sets a pids limit, but the pids cgroup controller is not available"):
        cgroups.create(f"/mocker/{unique}x", {"pids": {"limit": 5}}, unique, layout=without_pids)
    assert not os.path.exists(f"/sys/fs/cgroup/memory/mocker/{unique}x")


def test_unified_resources_are_refused_on_v1(made, unique, v1_host):
    with pytest.raises(MockerError, match="unified needs cgroup v2"):
        cgroups.create(f"/mocker/{unique}", {"unified": {"memory.high": "10M"}}, unique)
    assert not os.path.exists(f"/sys/fs/cgroup/memory/mocker/{unique}")


def test_device_rules_deny_by_default(made, unique, v1_host):
    rules = [{"allow": False, "access": "rwm"}]
    cg = cgroups.create(f"/mocker/{unique}", {"devices": rules}, unique,
                        devices=[{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}])
    made.append(cg)
    listed = _read(cg, "devices", "devices.list").splitlines()
    # runc's defaults are there; a linux.devices entry gets no rule (runc gives it none)
    assert "c 1:3 rwm" in listed and "c *:* m" in listed and "a *:* rwm" not in listed
    assert "c 1:11 rwm" not in listed

    strict = cgroups.create(f"/mocker/{unique}s", {"devices": rules}, f"{unique}s")
    made.append(strict)
    proc = spawn_in(strict, [BUSYBOX, "sh", "-c", "cat /dev/null && echo ok; head -c 1 /dev/kmsg"],
                    stdout=-1, stderr=-1)
    out, err = proc.communicate(timeout=10)
    assert out == b"ok\n"
    assert b"Operation not permitted" in err  # /dev/kmsg (1:11) is not on the list


def test_a_memory_hog_is_oom_killed_at_32m(made, unique):
    cg = cgroups.create(f"/mocker/{unique}", {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}, unique)
    made.append(cg)
    # busybox sh keeps the 100 MB it reads in one variable
    proc = spawn_in(cg, [BUSYBOX, "sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"],
                    stdout=-1)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert b"survived" not in out
    assert cg.stats()["memory"]["oom_kill"] >= 1


def test_a_fork_bomb_is_stopped_by_the_pids_limit(made, unique):
    cg = cgroups.create(f"/mocker/{unique}", {"pids": {"limit": 20}}, unique)
    made.append(cg)
    bomb = spawn_in(cg, [BUSYBOX, "sh", "-c", "b() { b | b & }; b; sleep 30"],
                    stdout=-1, stderr=-1)
    try:
        counts = []
        for _ in range(20):
            counts.append(cg.stats()["pids"]["current"])
            time.sleep(0.03)
        assert max(counts) <= 20
        events = _read(cg, "pids", "pids.events")
        assert wait_until(lambda: int(_read(cg, "pids", "pids.events").split()[1]) > 0), events
    finally:
        kill_all_and_remove(cg)
        bomb.wait()
    assert not any(os.path.exists(p) for p in cg.paths.values())
