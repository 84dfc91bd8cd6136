"""Cgroup behaviour a user sees, under runc and mocker-runc, on the same bundle.

Each case runs once per runtime and asserts the same thing of both, so that a
difference between them shows as one runtime failing. They run on the hybrid
development host and, in CI, on a pure cgroup v2 guest (tests/guest), where
the kernel files differ (tests/fixtures/cgroupfs.py finds them).
"""

import json
import shutil

import pytest

from mocker_runc import libseccomp
from tests.conftest import need_root, need_tool
from tests.fixtures import cgroupfs
from tests.fixtures.bundles import Runtime, busybox_template, new_bundle  # noqa: F401
from tests.fixtures.syscalls import build_probe
from tests.fixtures.wait import wait_until

pytestmark = pytest.mark.interop
MiB = 1 << 20
CLONE_NEWCGROUP = 0x02000000
UNSHARE = libseccomp.syscall_number("unshare")   # the syscall's number on this machine


@pytest.fixture(params=["runc", "mocker-runc"])
def runtime(request, tmp_path):
    need_root()
    binary = need_tool("runc") if request.param == "runc" else "mocker-runc"
    tool = Runtime(binary, tmp_path / "state")
    yield tool
    tool.cleanup()
    assert not tool.containers(), "state left behind"


def resources(**values):
    return lambda config: config["linux"]["resources"].update(values)


def wait_for(predicate, timeout=60.0):
    return wait_until(predicate, timeout, step=0.05, what="the condition")


def cgroup_of(runtime, cid, controller="pids"):
    return cgroupfs.of_process(runtime.state(cid)["pid"], controller)


def test_a_memory_hog_is_killed_and_reported_as_137(runtime, new_bundle, unique):
    # busybox sh keeps the 100 MB it reads in one variable; the limit is 32 MiB, no swap
    bundle = new_bundle(["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"],
                        edit=resources(memory={"limit": 32 * MiB, "swap": 32 * MiB}))
    proc = runtime("run", "--bundle", str(bundle), unique, timeout=120)
    assert (proc.returncode, proc.stdout) == (137, ""), proc.stderr


def test_the_pids_limit_caps_a_fork_bomb(runtime, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "(for i in $(seq 30); do sleep 5 & done) 2>/dev/null; "
                                     "set -- /proc/[0-9]*; echo $#"],
                        edit=resources(pids={"limit": 10}))
    proc = runtime("run", "--bundle", str(bundle), unique, timeout=120)
    assert 2 <= int(proc.stdout) <= 10, proc.stderr


def test_limits_and_update_land_in_the_kernel_files(runtime, new_bundle, unique):
    bundle = new_bundle(["sleep", "120"], edit=resources(cpu={"quota": 50000, "period": 100000},
                                                         memory={"limit": 128 * MiB}))
    runtime.detached("run", "-d", "--bundle", str(bundle), unique)
    v2 = cgroupfs.is_v2()

    def kernel(setting):
        controller = cgroupfs.FILES[setting][0]
        return cgroupfs.read(cgroup_of(runtime, unique, controller), setting)

    assert kernel("cpu.quota") == ("50000 100000" if v2 else "50000")
    assert kernel("memory.limit") == str(128 * MiB)
    runtime("update", "--cpu-quota", "20000", "--memory", "64m", "--pids-limit", "20", unique,
            check=True, timeout=60)
    assert kernel("cpu.quota") == ("20000 100000" if v2 else "20000")
    assert kernel("memory.limit") == str(64 * MiB)
    assert kernel("pids.max") == "20"


def test_pause_freezes_the_cgroup_and_resume_thaws_it(runtime, new_bundle, unique):
    runtime.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "120"])), unique)
    freezer = cgroup_of(runtime, unique, "freezer")
    runtime("pause", unique, check=True, timeout=60)
    assert runtime.state(unique)["status"] == "paused"
    assert cgroupfs.frozen(freezer)
    runtime("resume", unique, check=True, timeout=60)
    assert runtime.state(unique)["status"] == "running"
    assert not cgroupfs.frozen(freezer)


def test_kill_all_kills_every_process_of_a_paused_container(runtime, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "sleep 120 & sleep 120 & wait"])
    runtime.detached("run", "-d", "--bundle", str(bundle), unique)
    wait_for(lambda: len(json.loads(runtime("ps", "--format", "json", unique).stdout or "[]")) == 3)
    cgroup = cgroup_of(runtime, unique)
    runtime("pause", unique, check=True, timeout=60)
    runtime("kill", "--all", unique, "KILL", check=True, timeout=60)
    wait_for(lambda: runtime.state(unique)["status"] == "stopped")
    with open(f"{cgroupfs.cgroup_dir(cgroup)}/cgroup.procs") as f:
        assert f.read() == ""


def test_events_stats_give_the_kernels_figures(runtime, new_bundle, unique):
    # ~8 MB held in a shell variable, then a sleep
    bundle = new_bundle(["sh", "-c", "x=$(head -c 8000000 /dev/zero | tr '\\0' a); sleep 120"],
                        edit=resources(memory={"limit": 256 * MiB}, pids={"limit": 50}))
    runtime.detached("run", "-d", "--bundle", str(bundle), unique)

    def stats():
        proc = runtime("events", "--stats", unique, check=True, timeout=60)
        return json.loads(proc.stdout)["data"]

    def settled():
        """The pipeline done (sh execs its last command, sleep): ps lists what pids counts."""
        data, ps = stats(), json.loads(runtime("ps", "--format", "json", unique).stdout)
        return data["pids"]["current"] == len(ps) == 1 and data

    data = wait_for(settled)
    usage = data["memory"]["usage"]
    assert usage["limit"] == 256 * MiB and usage["usage"] > 0
    assert data["pids"]["limit"] == 50
    assert data["cpu"]["usage"]["total"] > 0
    # the peak saw the 8 MB: v1's max_usage_in_bytes, v2's memory.peak (runc reads
    # that from 1.2 on; 1.1.5 leaves it out on v2, mocker-runc gives it)
    if "max" in usage or runtime.binary == "mocker-runc":
        assert usage["max"] > 8_000_000


def test_nested_cgroup_namespaces_see_their_own_root(runtime, new_bundle, unique, tmp_path):
    """cgroup v2 delegation as systemd in a container uses it: the container's
    cgroup namespace shows 0::/, a sub-cgroup it makes shows 0::/inner, and a
    namespace made there (unshare -C) shows 0::/ again."""
    if not cgroupfs.is_v2():
        pytest.skip("needs a pure cgroup v2 host (tests/guest boots one)")

    def edit(config):
        config["linux"]["namespaces"].append({"type": "cgroup"})
        for mount in config["mounts"]:
            if mount["type"] == "cgroup":
                mount["options"] = [o for o in mount["options"] if o != "ro"] + ["rw"]
        for kind in ("bounding", "effective", "permitted"):
            config["process"]["capabilities"][kind].append("CAP_SYS_ADMIN")

    # busybox's unshare has no -C: the probe makes the unshare(CLONE_NEWCGROUP) call
    script = ("cat /proc/self/cgroup; mkdir /sys/fs/cgroup/inner; echo $$ > /sys/fs/cgroup/inner/cgroup.procs; "
              f"cat /proc/self/cgroup; /probe unshare={UNSHARE},{CLONE_NEWCGROUP:#x} /proc/self/cgroup; "
              "echo 0 > /sys/fs/cgroup/cgroup.procs; rmdir /sys/fs/cgroup/inner")
    bundle = new_bundle(["sh", "-c", script], edit=edit)
    shutil.copy(build_probe(tmp_path / "probe"), bundle / "rootfs/probe")
    proc = runtime("run", "--bundle", str(bundle), unique, timeout=60)
    assert proc.stdout.split() == ["0::/", "0::/inner", "unshare", "0", "0::/"], proc.stderr
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "cgroupns"])
def test_the_cgroup_mount_and_cgroup_are_the_ones_runc_gives(new_bundle, unique, tmp_path, cgroupns):
    """/sys/fs/cgroup inside: its root, options, type and source, and /proc/self/cgroup."""
    need_root()
    runc = Runtime(need_tool("runc"), tmp_path / "runc-state")
    ours = Runtime("mocker-runc", tmp_path / "state")

    def edit(config):
        config["linux"]["cgroupsPath"] = f"/mocker/{unique}"   # runc's default path is another
        if cgroupns:
            config["linux"]["namespaces"].append({"type": "cgroup"})
    probe = ("grep ' /sys/fs/cgroup' /proc/self/mountinfo | while read -r _ _ _ root point opts rest; do "
             "echo $root $point $opts ${rest#* - }; done; cat /proc/self/cgroup")
    bundle = new_bundle(["sh", "-c", probe], edit=edit)
    try:
        theirs = runc("run", "--bundle", str(bundle), unique, timeout=60)
        mine = ours("run", "--bundle", str(bundle), unique, timeout=60)
    finally:
        runc.cleanup()
        ours.cleanup()
    assert theirs.returncode == 0, theirs.stderr
    assert mine.returncode == 0, mine.stderr
    if cgroupfs.is_v2():
        assert mine.stdout == theirs.stdout
    else:   # v1: runc puts each hierarchy under a tmpfs; both show the container's own cgroups
        assert mine.stdout.splitlines()[-1] == theirs.stdout.splitlines()[-1]
