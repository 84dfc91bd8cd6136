"""mocker-runc --systemd-cgroup against a real systemd, side by side with runc.

These tests need systemd as PID 1 on a pure cgroup v2 host: they skip
elsewhere, and test_guest_systemd.py runs them in the systemd guest of
tests/guest (one boot for all). Each case runs the same steps under runc and
under mocker-runc and compares what a user of systemd would see: the unit and
its properties, the cgroup files, pause, ps, update, kill --all and delete.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.bundles import Runtime, busybox_template, default_config, make_bundle  # noqa: F401

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/run/systemd/system") or not os.path.exists("/sys/fs/cgroup/cgroup.subtree_control"),
    reason="needs systemd as PID 1 on a cgroup v2 host (test_guest_systemd.py boots one)")

MiB = 1 << 20
CGROUP = Path("/sys/fs/cgroup")
SHOWN = ["ActiveState", "Delegate", "MemoryMax", "MemoryLow", "CPUWeight", "CPUQuotaPerSecUSec",
         "TasksMax", "DevicePolicy", "ControlGroup"]


def unit_properties(unit: str) -> dict:
    """systemctl show's KEY=VALUE lines (its machine-readable form), for the properties we check."""
    out = subprocess.run(["systemctl", "show", unit, *[f"--property={p}" for p in SHOWN]],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def scopes() -> set[str]:
    """The scope units systemd has loaded, whatever their state."""
    out = subprocess.run(["systemctl", "list-units", "--type=scope", "--all", "--plain", "--no-legend",
                          "--no-pager"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def read(path: Path) -> str:
    return path.read_text().strip() if path.exists() else "(none)"


@pytest.fixture(params=["runc", "mocker-runc"])
def runtime(request, tmp_path):
    tool = Runtime(request.param, tmp_path / "state")
    tool.name = request.param
    yield tool
    for cid in tool.containers():
        tool("--systemd-cgroup", "delete", "--force", cid, timeout=120)


def create(runtime, tmp_path, *args) -> None:
    """`--systemd-cgroup create`, its stdio away from our pipes (the container keeps them)."""
    with open(tmp_path / "create.err", "w+") as err:
        proc = runtime("--systemd-cgroup", "create", *args, capture_output=False,
                       stdout=subprocess.DEVNULL, stderr=err, timeout=120)
        err.seek(0)
        assert proc.returncode == 0, err.read()


def _bundle(tmp_path, template, cgroups_path, resources, args=("sleep", "1000")):
    config = default_config()
    config["linux"]["cgroupsPath"] = cgroups_path
    config["linux"]["resources"] = {**config["linux"].get("resources", {}), **resources}
    return make_bundle(tmp_path / "bundle", list(args), config, rootfs=template)


def test_a_container_is_a_delegated_scope_with_its_limits_and_leaves_nothing(runtime, tmp_path,
                                                                               busybox_template):
    tag = "mk" + os.urandom(3).hex()
    # a pod slice that does not exist yet, under a top slice of this run's own
    # (kubepodsTAG.slice: stopped at the end, and never a real node's kubepods.slice)
    top, pod = f"kubepods{tag}.slice", f"kubepods{tag}-besteffort-pod{tag}.slice"
    try:
        _scope_lifecycle(runtime, tmp_path, busybox_template, tag, pod)
    finally:
        subprocess.run(["systemctl", "stop", top], capture_output=True)
    assert not (CGROUP / top).exists()


def _scope_lifecycle(runtime, tmp_path, busybox_template, tag, pod):
    unit, cid = f"cri-{tag}-c1.scope", f"{tag}c1"
    resources = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 20},
                 "cpu": {"shares": 512, "quota": 12345, "period": 100000}}
    bundle = _bundle(tmp_path, busybox_template, f"{pod}:cri-{tag}:c1", resources)
    sd = ("--systemd-cgroup",)

    create(runtime, tmp_path, "-b", str(bundle), cid)
    props = unit_properties(unit)
    directory = CGROUP / props["ControlGroup"].lstrip("/")
    assert props["ControlGroup"] == f"/kubepods{tag}.slice/kubepods{tag}-besteffort.slice/{pod}/{unit}"
    assert props["ActiveState"] == "active" and props["Delegate"] == "yes"
    assert props["MemoryMax"] == str(64 * MiB) and props["TasksMax"] == "20"
    # cpu.shares 512 -> cpu.weight: runc 1.1 (Debian 12) still maps it on a line
    # (20); mocker-runc follows runc >= 1.3.2, whose curve keeps 1024 -> 100 (59)
    weight = "20" if runtime.name == "runc" else "59"
    assert props["CPUWeight"] == weight
    assert props["CPUQuotaPerSecUSec"] == "130ms"        # 12.345 % rounded up to systemd's 13 %
    assert props["DevicePolicy"] == "strict"
    assert read(directory / "memory.max") == str(64 * MiB)
    assert read(directory / "pids.max") == "20" and read(directory / "cpu.weight") == weight
    # systemd keeps whole percents; runc >= 1.2 (and mocker-runc) write the rounded quota
    # into cpu.max too, so that file and unit agree; runc 1.1 left the file at the request
    assert read(directory / "cpu.max") == ("12345 100000" if runtime.name == "runc" else "13000 100000")
    pid = runtime.state(cid)["pid"]
    assert str(pid) in read(directory / "cgroup.procs").split()

    runtime(*sd, "start", cid, check=True)
    runtime(*sd, "pause", cid, check=True)
    assert runtime.state(cid)["status"] == "paused" and read(directory / "cgroup.freeze") == "1"
    runtime(*sd, "resume", cid, check=True)
    assert read(directory / "cgroup.freeze") == "0"
    assert pid in json.loads(runtime(*sd, "ps", "--format", "json", cid, check=True).stdout)

    # exec joins the scope too; the device policy is systemd's (DevicePolicy=strict):
    # a device node not in the allow list cannot be opened, even by root
    probe = runtime(*sd, "exec", cid, "sh", "-c",
                    "cat /proc/self/cgroup; mknod /dev/kmsg2 c 1 11 && echo x > /dev/kmsg2 && echo opened",
                    timeout=60)
    assert f"0::/{unit}" in probe.stdout or props["ControlGroup"] in probe.stdout, probe.stdout
    assert "opened" not in probe.stdout and "Operation not permitted" in probe.stderr, probe.stderr

    runtime(*sd, "update", "--memory", "32m", "--pids-limit", "30", cid, check=True, timeout=60)
    props = unit_properties(unit)
    assert props["MemoryMax"] == str(32 * MiB) and props["TasksMax"] == "30"
    assert read(directory / "memory.max") == str(32 * MiB) and read(directory / "pids.max") == "30"

    runtime(*sd, "kill", "--all", cid, "KILL", check=True)
    deadline = time.monotonic() + 30
    while runtime.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runtime.state(cid)["status"] == "stopped"
    runtime(*sd, "delete", cid, check=True, timeout=120)
    assert unit not in scopes()
    assert not directory.exists()
    assert runtime.containers() == []


def test_a_failed_create_leaves_no_unit(runtime, tmp_path, busybox_template):
    tag = "mk" + os.urandom(3).hex()
    unit, cid = f"mocker-{tag}.scope", f"{tag}f"
    bundle = _bundle(tmp_path, busybox_template, f"system.slice:mocker:{tag}", {}, args=("/nonexistent",))
    proc = runtime("--systemd-cgroup", "create", "-b", str(bundle), cid, capture_output=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode != 0 and "/nonexistent" in proc.stderr   # the scope had started
    assert unit not in scopes()
    assert runtime.containers() == []


def test_without_the_flag_the_cgroupfs_driver_still_works_on_a_systemd_host(runtime, tmp_path,
                                                                           busybox_template):
    # what `mocker run` does (bin/mocker passes no --systemd-cgroup): a cgroup of our own
    cid = "mk" + os.urandom(3).hex()
    bundle = _bundle(tmp_path, busybox_template, f"/mocker-test/{cid}", {"pids": {"limit": 10}},
                     args=("true",))
    proc = runtime("run", "-b", str(bundle), cid, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not (CGROUP / "mocker-test" / cid).exists()
    if (CGROUP / "mocker-test").exists():     # the parent: runc leaves it, as its parent
        (CGROUP / "mocker-test").rmdir()


def test_a_bad_cgroups_path_is_refused_in_one_line_and_makes_nothing(runtime, tmp_path, busybox_template):
    before = scopes()
    bundle = _bundle(tmp_path, busybox_template, "/not/systemd/form", {})
    proc = runtime("--systemd-cgroup", "create", "-b", str(bundle), "badpath", timeout=120)
    assert proc.returncode != 0 and "slice:prefix:name" in proc.stderr, proc.stderr
    if runtime.name == "mocker-runc":
        assert proc.stderr.count("\n") == 1
    assert scopes() == before and runtime.containers() == []
