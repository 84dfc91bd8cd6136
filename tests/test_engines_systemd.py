"""podman and containerd in systemd mode drive mocker-runc as they drive runc.

On a systemd host the engines do not hand the runtime a cgroupfs path:
podman (cgroup_manager = "systemd") and containerd's runc shim
(SystemdCgroup = true) call it with --systemd-cgroup and a cgroupsPath
"slice:prefix:name". These cases need systemd as PID 1 on cgroup v2, so they
skip elsewhere; test_guest_systemd.py runs them in the systemd guest. Each
runs under runc and under mocker-runc (the fixtures' parameter).
"""

import os
import subprocess

import pytest

from tests.fixtures.engines import (IMAGE, Containerd, Podman, _need, logging_runtime, recorded_argv,
                                    short_temp_dir, unused_subnet_octet, write_oci_archive, write_rootfs_tar)
from tests.test_engines_containerd import wait_status
from tests.test_runc_systemd import scopes, unit_properties

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.skipif(
    not os.path.isdir("/run/systemd/system") or not os.path.exists("/sys/fs/cgroup/cgroup.subtree_control"),
    reason="needs systemd as PID 1 on a cgroup v2 host (test_guest_systemd.py boots one)")]

MiB = 1 << 20
RUNTIMES = ["runc", "mocker-runc"]


@pytest.fixture(scope="module", params=RUNTIMES)
def podman(request, busybox_rootfs):
    """podman --cgroup-manager systemd, with the runtime of the parameter."""
    _need("podman", "conmon")
    name = "mk" + os.urandom(4).hex()
    base = short_temp_dir("podman")
    engine = Podman(base=base, runtime=logging_runtime(base / "wrap", request.param), name=name,
                    subnet_octet=unused_subnet_octet(), cgroup_manager="systemd")
    try:
        engine("import", "--change", "CMD=/bin/sh", "--change", "ENV=PATH=/bin",
               write_rootfs_tar(busybox_rootfs, base / "rootfs.tar"), IMAGE, timeout=300)
        yield engine
    finally:
        engine.close()


def test_podman_runs_execs_limits_stops_and_removes_in_a_scope(podman, unique):
    run = podman("run", "-d", "--name", unique, "--network", "none", "-m", "64m", IMAGE,
                 "sleep", "1000", timeout=300)
    cid = run.stdout.strip()
    unit = f"libpod-{cid}.scope"
    props = unit_properties(unit)
    assert props["ActiveState"] == "active" and props["Delegate"] == "yes"
    assert props["MemoryMax"] == str(64 * MiB)
    assert props["ControlGroup"] == f"/{podman.cgroup_parent}/{unit}"
    # the runtime was told to use systemd, with podman's slice:prefix:name
    create = next(argv for argv in recorded_argv(podman.runtime) if " create " in f" {argv} ")
    assert "--systemd-cgroup" in create.split()
    assert podman("exec", unique, "cat", "/proc/self/cgroup", timeout=120).stdout.strip() == "0::/"
    assert podman("inspect", "--format", "{{.HostConfig.Memory}}", unique).stdout.strip() == str(64 * MiB)
    podman("stop", "--time", "0", unique, timeout=120)
    assert podman("inspect", "--format", "{{.State.Status}}", unique).stdout.strip() == "exited"
    podman("rm", unique, timeout=120)
    left = {u for u in scopes() if cid in u}
    assert left == set(), left          # neither libpod-ID.scope nor libpod-conmon-ID.scope


@pytest.fixture(scope="module", params=RUNTIMES)
def containerd(request, busybox_rootfs):
    """A private containerd; ctr runs tasks through the runc shim with SystemdCgroup = true."""
    _need("containerd", "ctr", "containerd-shim-runc-v2")
    base = short_temp_dir("ctrd")
    engine = Containerd(base=base, runtime=logging_runtime(base / "wrap", request.param),
                        namespace="mk" + os.urandom(4).hex())
    try:
        engine.start()
        engine("image", "import", write_oci_archive(busybox_rootfs, base / "busybox.oci.tar", IMAGE),
               timeout=300)
        yield engine
    finally:
        engine.close()


def test_containerd_shim_with_systemd_cgroup_uses_a_cri_style_path(containerd, unique):
    # what the CRI plugin gives the shim for a BestEffort pod's container
    # (under a top slice of this run's own, stopped at the end: never a node's kubepods.slice)
    top, pod = f"kubepods{unique}.slice", f"kubepods{unique}-besteffort-pod{unique}.slice"
    unit = f"cri-containerd-{unique}.scope"
    containerd(*containerd.run_args("-d", "--runc-systemd-cgroup", "--cgroup", f"{pod}:cri-containerd:{unique}",
                                    "--memory-limit", str(64 * MiB), IMAGE, unique, "sleep", "1000"),
               timeout=300)
    try:
        props = unit_properties(unit)
        assert props["ActiveState"] == "active" and props["MemoryMax"] == str(64 * MiB)
        assert props["ControlGroup"] == f"/kubepods{unique}.slice/kubepods{unique}-besteffort.slice/{pod}/{unit}"
        assert all("--systemd-cgroup" in argv.split() for argv in recorded_argv(containerd.runtime)
                   if " create " in f" {argv} ")
        out = containerd(*containerd.exec_args("--exec-id", "e1", unique, "cat", "/proc/self/cgroup"),
                         timeout=120)
        assert out.stdout.strip() == "0::" + props["ControlGroup"]   # ctr makes no cgroup namespace
        containerd("task", "kill", "--signal", "SIGKILL", unique)
        assert wait_status(containerd, unique, "STOPPED", timeout=60) == "STOPPED"
        containerd("task", "delete", unique, timeout=120)
        containerd("container", "delete", unique)
        assert unit not in scopes()
    finally:
        containerd("task", "delete", "--force", unique, check=False, timeout=120)
        containerd("container", "delete", unique, check=False)
        subprocess.run(["systemctl", "stop", top], capture_output=True)
