"""linux.resources and linux.seccomp, seen from inside real mocker-runc containers.

The cgroups and seccomp modules have their own tests; these check that the
runtime wires them in: the limits bite the container's processes, the filter
is loaded in the container's program, and `update` changes a live container.
"""

import json

import pytest

from mocker_runc import seccomp
from tests.conftest import need_root
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
    read = lambda: runc_tool("exec", unique, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",  # noqa: E731
                             "/sys/fs/cgroup/cpu/cpu.cfs_period_us").stdout.split()
    assert read() == ["50000", "100000"]
    runc_tool("update", "--cpu-quota", "20000", unique, check=True)
    assert read() == ["20000", "100000"]


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


def test_dockers_default_profile_runs_busybox(runc_tool, new_bundle, unique):
    profile = seccomp.default_profile(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
    bundle = new_bundle(["sh", "-c", "ls / >/dev/null && echo listed; unshare -n true "
                                     "2>/dev/null || echo no-unshare"],
                        edit=lambda c: c["linux"].update(seccomp=profile))
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["listed", "no-unshare"]


def test_bad_seccomp_profile_is_refused_before_anything_runs(runc_tool, new_bundle, unique):
    bundle = new_bundle(["true"], edit=lambda c: c["linux"].update(
        seccomp={"defaultAction": "SCMP_ACT_NOPE"}))
    proc = runc_tool("create", "--bundle", str(bundle), unique)
    assert proc.returncode != 0 and "SCMP_ACT_NOPE" in proc.stderr
    assert not (runc_tool.root / unique).exists()
    assert json.loads(runc_tool("list", "--format", "json").stdout) == []
