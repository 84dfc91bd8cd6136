"""mocker_runc.cgroups on cgroup v2.

On the hybrid development hosts a v2 hierarchy WITH controllers cannot exist:
the controllers are bound to v1 hierarchies, and the cgroup2 tree at
/sys/fs/cgroup/unified has none (but hugetlb). So:
- the v2 limit files (memory.max, cpu.weight, cpu.max, pids.max, ...) are
  tested on a FAKE cgroup tree in a temp dir: plain files laid out as the
  kernel would (cgroup.controllers, cgroup.subtree_control, the leaf's files);
- what v2 does without controllers (mkdir, cgroup.procs, cgroup.freeze and
  cgroup.events, rmdir) is tested on the REAL unified tree, used as if it were
  a pure v2 host;
- on a pure v2 host, which CI boots (tests/guest, tests/test_guest_suites.py),
  the `v2_host` tests at the end check the same against the kernel's files.
"""

import os
import signal
import subprocess
import time

import pytest

from mocker_common.errors import MockerError
from mocker_runc import cgroups
from mocker_runc.cgroups import hierarchies, v2
from tests.conftest import need_root
from tests.fixtures.wait import wait_until
from tests.test_runc_cgroups import check_freeze_and_thaw, kill_all_and_remove, spawn_in

MiB = 1 << 20
CONTROLLERS = "cpuset cpu io memory hugetlb pids"
LEAF_FILES = ["cgroup.procs", "cgroup.freeze", "memory.max", "memory.swap.max", "memory.low",
              "memory.high", "cpu.weight", "cpu.max", "cpu.max.burst", "cpuset.cpus", "cpuset.mems",
              "pids.max", "io.weight", "io.max", "hugetlb.2MB.max"]


# -- pure conversions ---------------------------------------------------------

@pytest.mark.parametrize("shares, weight", [(0, 0), (2, 1), (1024, 100), (262144, 10000), (512, 59)])
def test_cpu_shares_become_cpu_weight_as_in_runc(shares, weight):
    assert v2.cpu_weight(shares) == weight


@pytest.mark.parametrize("quota, period, expected", [
    (None, None, None), (50000, None, "50000 100000"), (-1, 100000, "max 100000"),
    (20000, 50000, "20000 50000"), (None, 200000, "max 200000")])
def test_cpu_quota_and_period_become_cpu_max(quota, period, expected):
    assert v2.cpu_max(quota, period) == expected


def test_spec_swap_is_memory_plus_swap():
    assert v2.swap_max(64 * MiB, 96 * MiB) == str(32 * MiB)
    assert v2.swap_max(64 * MiB, -1) == "max"
    assert v2.swap_max(64 * MiB, None) is None
    with pytest.raises(MockerError, match="below the memory limit"):
        v2.swap_max(64 * MiB, 32 * MiB)
    with pytest.raises(MockerError, match="without a memory limit"):
        v2.swap_max(None, 32 * MiB)


def test_detect_tells_v1_v2_and_hybrid_apart(tmp_path):
    v1_line = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,xattr,cpu,cpuacct\n"
    v2_line = "41 31 0:38 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
    other = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
    named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
    for lines, mode in (([other, v1_line], "v1"), ([other, v2_line], "v2"), ([named, v2_line], "v2"),
                        ([v1_line, v2_line], "hybrid"), ([other], "none")):
        (tmp_path / "mountinfo").write_text("".join(lines))
        layout = cgroups.detect(str(tmp_path / "mountinfo"))
        assert layout.mode == mode
    (tmp_path / "mountinfo").write_text(v1_line)
    assert set(cgroups.detect(str(tmp_path / "mountinfo")).v1) == {"cpu", "cpuacct"}


def test_cgroups_path_cannot_climb_out_of_the_hierarchy():
    assert hierarchies.cgroup_path("/a/../../../etc", "x") == "/etc"
    assert hierarchies.cgroup_path("", "abc") == "/mocker/abc"
    mount = hierarchies.Mount("/sys/fs/cgroup/unified")
    assert mount.dir_for(hierarchies.cgroup_path("/../x", "id")) == "/sys/fs/cgroup/unified/x"
    relative = hierarchies.cgroup_path("sub/c1", "id", controller="")
    assert relative.endswith("/sub/c1") and relative.startswith("/")


# -- a fake v2 tree -------------------------------------------------------------

@pytest.fixture
def fake_v2(tmp_path):
    """A fake cgroup2 tree: root with every controller, /mocker/c1 pre-made with
    the files the kernel would give it (a fake tree cannot grow files on mkdir)."""
    root = tmp_path / "cgroup"
    leaf = root / "mocker" / "c1"
    leaf.mkdir(parents=True)
    for directory in (root, root / "mocker", leaf):
        (directory / "cgroup.controllers").write_text(CONTROLLERS + "\n")
        (directory / "cgroup.subtree_control").write_text("")
    for name in LEAF_FILES:
        (leaf / name).write_text("")
    (leaf / "memory.max").write_text("max\n")
    layout = hierarchies.Layout(unified=hierarchies.Mount(str(root)))
    return layout, leaf


def test_v2_limits_land_in_the_unified_files(fake_v2, monkeypatch):
    layout, leaf = fake_v2
    # a fake tree cannot take an eBPF program (test_runc_devices.py attaches real ones)
    installed = []
    monkeypatch.setattr(v2.V2Cgroup, "apply_devices", lambda self, *rules: installed.append(rules))
    resources = {
        "memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 16 * MiB},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 20},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}],
        "unified": {"memory.high": "48M"},
    }
    cg = cgroups.create("/mocker/c1", resources, "c1", layout=layout)
    assert cg.version == 2 and cg.paths == {"unified": str(leaf)}

    def read(name):
        return (leaf / name).read_text()

    assert read("memory.max") == str(64 * MiB)
    assert read("memory.swap.max") == str(32 * MiB)
    assert read("memory.low") == str(16 * MiB)
    assert read("cpu.weight") == "100"
    assert read("cpu.max") == "50000 100000"
    assert read("cpuset.cpus") == "0-1"
    assert read("pids.max") == "20"
    assert read("io.weight") == "default 500"
    assert read("io.max") == "8:0 rbps=1000"
    assert read("hugetlb.2MB.max") == str(4 * MiB)
    assert read("memory.high") == "48M"
    # every level above the container lets its children use the controllers
    for directory in (leaf.parent.parent, leaf.parent):
        assert (directory / "cgroup.subtree_control").read_text() == "+cpuset +cpu +io +memory +hugetlb +pids"
    assert (leaf / "cgroup.subtree_control").read_text() == ""
    assert installed == [([], [])]   # at create, even with no rules: runc's defaults, default deny

    cg.update({"pids": {"limit": -1}, "memory": {"limit": -1}})
    assert read("pids.max") == "max" and read("memory.max") == "max"


def test_v2_limit_in_a_controller_the_tree_lacks_is_a_clear_error(fake_v2):
    layout, leaf = fake_v2
    (leaf.parent / "cgroup.controllers").write_text("cpu memory\n")
    with pytest.raises(MockerError, match=r"sets a pids limit, but the pids cgroup controller is not available"):
        cgroups.create("/mocker/c1", {"pids": {"limit": 5}}, "c1", layout=layout)


@pytest.mark.parametrize("key, message", [
    ("../escape", "not a cgroup file name"),
    ("rdma.max", "the rdma cgroup controller is not available"),
])
def test_v2_bad_unified_keys_are_refused(fake_v2, key, message):
    layout, _ = fake_v2
    with pytest.raises(MockerError, match=message):
        cgroups.create("/mocker/c1", {"unified": {key: "1"}}, "c1", layout=layout)


def test_v2_realtime_cpu_is_refused(fake_v2):
    layout, _ = fake_v2
    with pytest.raises(MockerError, match="realtime cpu limits .* need cgroup v1"):
        cgroups.create("/mocker/c1", {"cpu": {"realtimeRuntime": 1000}}, "c1", layout=layout)


def test_v2_a_failed_create_removes_the_directories_it_made(fake_v2):
    layout, leaf = fake_v2
    # /mocker/new does not exist: create makes it, then writing memory.max fails
    # (a fake tree has no files in a new directory), and the directory goes again.
    with pytest.raises(MockerError, match=r"cannot set memory limit to 1048576: .*/mocker/new/memory.max: No such file"):
        cgroups.create("/mocker/new", {"memory": {"limit": MiB}}, "new", layout=layout)
    assert not (leaf.parent / "new").exists()


# -- the real (controller-less) unified tree ----------------------------------------

def only_v2_layout() -> hierarchies.Layout:
    """This host's real cgroup2 tree, used as if the host were pure v2."""
    need_root()
    layout = cgroups.detect()
    if layout.unified is None:
        pytest.skip("no cgroup2 tree mounted")
    return hierarchies.Layout(unified=layout.unified)


@pytest.fixture
def unified(unique):
    cg = cgroups.create(f"/mocker/{unique}", {}, unique, layout=only_v2_layout())
    yield cg
    kill_all_and_remove(cg)


def test_v2_add_pids_freeze_thaw_remove_on_the_real_unified_tree(unified, unique, tmp_path):
    cg = unified
    assert cg.version == 2 and os.path.isdir(cg.paths["unified"])

    def joined(proc):
        assert proc.pid in cg.pids()  # with the loop's usleep, now and then
        assert f"0::/mocker/{unique}" in open(f"/proc/{proc.pid}/cgroup").read().splitlines()

    check_freeze_and_thaw(cg, tmp_path, joined)
    cg.remove()
    assert not os.path.exists(cg.paths["unified"])


def test_v2_memory_limit_without_the_controller_is_refused_on_the_real_tree(unique):
    layout = only_v2_layout()
    if "memory" in open(f"{layout.unified.mountpoint}/cgroup.controllers").read().split():
        pytest.skip("the memory controller is available here: a pure v2 host")
    with pytest.raises(MockerError, match="memory cgroup controller is not available"):
        cgroups.create(f"/mocker/{unique}", {"memory": {"limit": 64 * MiB}}, unique, layout=layout)
    assert not os.path.exists(f"{layout.unified.mountpoint}/mocker/{unique}")


# -- a pure cgroup v2 host (the guest of tests/guest, or any v2 machine) ------------

@pytest.fixture
def v2_host():
    """This host's layout, when it is pure cgroup v2 with controllers, as users' hosts are."""
    need_root()
    layout = cgroups.detect()
    if layout.mode != "v2":
        pytest.skip(f"needs a pure cgroup v2 host (tests/guest boots one); this host is {layout.mode}")
    return layout


@pytest.fixture
def made_v2(v2_host):
    groups = []
    yield groups
    for cg in groups:
        kill_all_and_remove(cg)


def _kernel_file(cg, name):
    with open(os.path.join(cg.paths["unified"], name)) as f:
        return f.read().strip()


def test_v2_create_writes_the_limits_the_kernel_keeps(made_v2, unique):
    resources = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "unified": {"memory.high": str(48 * MiB)},
    }
    cg = cgroups.create(f"/mocker/{unique}", resources, unique)
    made_v2.append(cg)
    assert cg.paths == {"unified": f"/sys/fs/cgroup/mocker/{unique}"}
    assert _kernel_file(cg, "memory.max") == str(64 * MiB)
    assert _kernel_file(cg, "memory.swap.max") == str(32 * MiB)
    assert _kernel_file(cg, "memory.low") == str(32 * MiB)
    assert _kernel_file(cg, "memory.high") == str(48 * MiB)
    assert _kernel_file(cg, "cpu.weight") == "59"          # runc's mapping of 512 shares
    assert _kernel_file(cg, "cpu.max") == "50000 100000"
    assert _kernel_file(cg, "cpuset.cpus") == "0"
    assert _kernel_file(cg, "pids.max") == "42"
    # every controller reaches the container: its parent delegates them all
    wanted = {"cpu", "cpuset", "memory", "pids", "io"}
    assert wanted <= set(_kernel_file(cg, "cgroup.controllers").split())


def test_v2_empty_cgroups_path_means_mocker_slash_id_with_the_parent_cpus(made_v2, unique):
    cg = cgroups.create("", {}, unique)
    made_v2.append(cg)
    assert cg.paths["unified"] == f"/sys/fs/cgroup/mocker/{unique}"
    # v2 cpusets inherit the parent's (unlike v1's empty ones): nothing to copy
    root_cpus = open("/sys/fs/cgroup/cpuset.cpus.effective").read().strip()
    assert _kernel_file(cg, "cpuset.cpus.effective") == root_cpus


def test_v2_sigkill_to_all_goes_through_cgroup_kill_even_frozen_and_forking(made_v2, unique):
    # cgroup.kill (Linux 5.14): one write kills the subtree; a fork loop cannot
    # outrun it, and frozen processes die without a thaw.
    cg = cgroups.create(f"/mocker/{unique}", {}, unique)
    made_v2.append(cg)
    assert os.path.exists(os.path.join(cg.paths["unified"], "cgroup.kill"))
    forker = spawn_in(cg, [BUSYBOX, "sh", "-c", "while true; do sleep 30 & usleep 10000; done"])
    sleeper = spawn_in(cg, [BUSYBOX, "sleep", "30"])
    assert wait_until(lambda: len(cg.pids()) >= 4)
    cg.freeze()
    cg.kill_all(signal.SIGKILL)
    assert forker.wait(timeout=30) == -signal.SIGKILL
    assert sleeper.wait(timeout=30) == -signal.SIGKILL
    assert wait_until(lambda: cg.pids() == [])
    assert _kernel_file(cg, "cgroup.freeze") == "1"   # still the user's pause; the cgroup is empty


def test_v2_stats_are_the_kernels_figures(made_v2, unique):
    cg = cgroups.create(f"/mocker/{unique}", {"memory": {"limit": 64 * MiB}, "pids": {"limit": 10}}, unique)
    made_v2.append(cg)
    # a process that holds ~8 MB in a shell variable, then sleeps
    proc = spawn_in(cg, [BUSYBOX, "sh", "-c", "x=$(head -c 8000000 /dev/zero | tr '\\0' a); sleep 30"])
    try:
        assert wait_until(lambda: cg.stats()["memory"]["usage"]["usage"] > 8_000_000, timeout=60)
        stats = cg.stats()
        assert stats["memory"]["usage"]["limit"] == 64 * MiB
        assert stats["memory"]["usage"]["max"] >= stats["memory"]["usage"]["usage"]
        assert stats["pids"] == {"current": len(cg.pids()), "limit": 10}
        assert stats["cpu"]["usage"]["total"] > 0
    finally:
        proc.kill()
        proc.wait()


BUSYBOX = "/bin/busybox"
