"""linux.resources and linux.seccomp, seen from inside real mocker-runc containers.

The cgroups and seccomp modules have their own tests; these check that the
runtime wires them in: the limits bite the container's processes, the filter
is loaded in the container's program, and `update` changes a live container.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from mocker_bundle.seccomp_profile import build as docker_profile
from tests.conftest import need_root, need_tool
from tests.fixtures import cgroupfs
from tests.fixtures.bundles import busybox_template, new_bundle, runc_tool  # noqa: F401

MiB = 1 << 20


@pytest.fixture(autouse=True)
def root_only():
    need_root()


def with_resources(**resources):
    return lambda config: config["linux"]["resources"].update(resources)


def test_memory_limit_kills_a_hog(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); "
                                     "echo survived"],
                        edit=with_resources(memory={"limit": 32 * MiB, "swap": 32 * MiB}))
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert "survived" not in proc.stdout
    assert proc.returncode == 137


def test_pids_limit_stops_a_fork_bomb(runc_tool, new_bundle, unique):
    # A subshell forks until it fails (and dies of it); then the first shell,
    # which cannot fork either, counts the processes with builtins only.
    bundle = new_bundle(["sh", "-c", "(for i in $(seq 30); do sleep 5 & done) 2>/dev/null; "
                                     "set -- /proc/[0-9]*; echo $#"],
                        edit=with_resources(pids={"limit": 10}))
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert 2 <= int(proc.stdout) <= 10, proc.stderr   # not the 31 asked for


def test_cpu_quota_is_written_and_update_changes_it(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sleep", "60"],
                        edit=with_resources(cpu={"quota": 50000, "period": 100000}))
    runc_tool.detached("run", "-d", "--bundle", str(bundle), unique)
    # v1: cpu.cfs_quota_us and cpu.cfs_period_us; v2: both in cpu.max
    files = [cgroupfs.inside("cpu.quota")] + ([] if cgroupfs.is_v2() else ["/sys/fs/cgroup/cpu/cpu.cfs_period_us"])
    read = lambda: runc_tool("exec", unique, "cat", *files).stdout.split()  # noqa: E731
    assert read() == ["50000", "100000"]
    runc_tool("update", "--cpu-quota", "20000", unique, check=True)
    assert read() == ["20000", "100000"]


def test_update_takes_runcs_flags(runc_tool, new_bundle, unique):
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    # 512 shares are cpu.weight 59 on v2 (runc's mapping)
    files = {"memory.limit": "67108864", "cpu.shares": "59" if cgroupfs.is_v2() else "512",
             "pids.max": "20", "cpuset.cpus": "0"}
    runc_tool("update", "--memory", "64m", "--cpu-share", "512", "--pids-limit", "20",
              "--cpuset-cpus", "0", unique, check=True)
    for setting, value in files.items():
        assert cgroupfs.read(f"/mocker/{unique}", setting) == value, setting
    rdt = runc_tool("update", "--l3-cache-schema", "L3:0=ff", unique)
    assert rdt.returncode != 0 and "not supported" in rdt.stderr
    bad = runc_tool("update", "--memory", "lots", unique)
    assert bad.returncode != 0 and "not a size" in bad.stderr


def test_seccomp_filter_denies_a_syscall(runc_tool, new_bundle, unique):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 1}]}
    bundle = new_bundle(["sh", "-c", "grep Seccomp: /proc/self/status; mkdir /dev/shm/d; "
                                     "echo rc=$?"],
                        edit=lambda c: c["linux"].update(seccomp=profile))
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert proc.stdout.split()[:2] == ["Seccomp:", "2"]
    assert "rc=1" in proc.stdout and "Operation not permitted" in proc.stderr


def test_exec_gets_the_containers_seccomp_filter(runc_tool, new_bundle, unique):
    """exec loads the program create built and kept: the same filter, not none."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 1}]}
    bundle = new_bundle(["sleep", "60"], edit=lambda c: c["linux"].update(seccomp=profile))
    runc_tool.detached("run", "-d", "--bundle", str(bundle), unique)
    proc = runc_tool("exec", unique, "sh", "-c", "mkdir /dev/shm/d; echo rc=$?")
    assert "rc=1" in proc.stdout and "Operation not permitted" in proc.stderr


def test_dockers_default_profile_runs_busybox(runc_tool, new_bundle, unique):
    profile = docker_profile(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
    bundle = new_bundle(["sh", "-c", "ls / >/dev/null && echo listed; unshare -n true "
                                     "2>/dev/null || echo no-unshare"],
                        edit=lambda c: c["linux"].update(seccomp=profile))
    # the second run loads the program the first one built and kept under --root
    for run in (unique, unique + "b"):
        proc = runc_tool("run", "--bundle", str(bundle), run)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["listed", "no-unshare"]
    assert len(os.listdir(runc_tool.root / ".seccomp")) == 1


PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")


def with_architectures(profile: dict) -> dict:
    """podman's file names architectures in archMap; the runtime gets this machine's list."""
    native = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}[os.uname().machine]
    for entry in profile.pop("archMap"):
        if entry["architecture"] == native:
            profile["architectures"] = [native, *entry["subArchitectures"]]
    return profile


def test_podmans_seccomp_profile_loads(runc_tool, new_bundle, unique):
    """The real file: on x86_64 it also covers x86, where `socket` goes through
    socketcall, and its several conditional rules for socket must all be added."""
    if not PODMAN_PROFILE.exists():
        pytest.skip("podman's seccomp.json is not installed")
    profile = with_architectures(json.loads(PODMAN_PROFILE.read_text()))
    bundle = new_bundle(["sh", "-c", "grep Seccomp: /proc/self/status; ls /bin/sh"],
                        edit=lambda c: c["linux"].update(seccomp=profile))
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Seccomp:", "2", "/bin/sh"]


@pytest.fixture(scope="module")
def busybox_layout(tmp_path_factory) -> Path:
    from tests.fixtures import images
    return images.write_layout(tmp_path_factory.mktemp("layout"), {"busybox": images.busybox_image()})


SHOW_PRIVILEGES = ["sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status"]


@pytest.mark.parametrize("user", ["0", "65534:65534"])
def test_mocker_bundle_bundles_run_with_their_seccomp_profile(runc_tool, busybox_layout, tmp_path,
                                                             unique, user):
    """mocker-bundle writes Docker's way: noNewPrivileges off, capabilities dropped, and
    its default seccomp profile. Without no_new_privs, loading a filter needs
    CAP_SYS_ADMIN, so the runtime loads it before it changes user and capabilities;
    the result is runc's, for root and for an unprivileged user, in run and in exec."""
    need_tool("runc")
    # --name: the bundle's cgroupsPath is /mocker/<name>. Without it the id comes from
    # the directory ("bundle"), shared with any other run of this test on the host:
    # deleting theirs would kill the processes in ours.
    made = subprocess.run(["mocker-bundle", "--copy", "-o", str(tmp_path / "bundle"),
                           "--name", unique, "--network", "none", "-u", user,
                           f"oci:{busybox_layout}:busybox", *SHOW_PRIVILEGES],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    bundle = made.stdout.strip()
    config = json.loads(Path(bundle, "config.json").read_text())
    assert config["linux"]["cgroupsPath"] == f"/mocker/{unique}"
    assert config["process"]["noNewPrivileges"] is False and config["linux"]["seccomp"]

    ours = runc_tool("run", "--bundle", bundle, unique)
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(["runc", "--root", str(tmp_path / "runc"), "run", "--bundle", bundle,
                             unique], capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.stdout == theirs.stdout
    uid, *status = ours.stdout.splitlines()
    assert uid == user.partition(":")[0]
    assert status[1:] == ["NoNewPrivs:\t0", "Seccomp:\t2"]

    config["process"]["args"] = ["sleep", "60"]
    Path(bundle, "config.json").write_text(json.dumps(config))
    runc_tool.detached("run", "-d", "--bundle", bundle, unique)
    inside = runc_tool("exec", unique, *SHOW_PRIVILEGES)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout == ours.stdout


def test_bad_seccomp_profile_is_refused_before_anything_runs(runc_tool, new_bundle, unique):
    bundle = new_bundle(["true"], edit=lambda c: c["linux"].update(
        seccomp={"defaultAction": "SCMP_ACT_NOPE"}))
    proc = runc_tool("create", "--bundle", str(bundle), unique)
    assert proc.returncode != 0 and "SCMP_ACT_NOPE" in proc.stderr
    assert not (runc_tool.root / unique).exists()
    assert json.loads(runc_tool("list", "--format", "json").stdout) == []
