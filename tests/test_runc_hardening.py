"""mocker-runc fails closed where runc does: the same config or command line,
run under both, must be refused by both (or give both the same, least, power).

Each case runs runc first (the reference) and mocker-runc second; where runc's
answer differs in form (its exit code, its words), the test says how.
"""

import json
import os
import stat
import subprocess

import pytest

from tests.conftest import need_root, need_tool
from tests.fixtures.bundles import (Runtime, busybox_template, new_bundle,  # noqa: F401
                                    runc_tool)

pytestmark = pytest.mark.interop


@pytest.fixture
def runc(tmp_path):
    need_root()
    tool = Runtime(need_tool("runc"), tmp_path / "runc-state")
    yield tool
    tool.cleanup()


def both(runc, runc_tool):
    return (("runc", runc), ("mocker-runc", runc_tool))


def one_line_refusal(done, *words) -> str:
    """The last line of stderr, asserted to be the only error line and to say words."""
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- hostile container ids -------------------------------------------------------

@pytest.mark.parametrize("cid", ["../escape", "a\nb", "a b", "a/b", ".", ".."])
def test_hostile_container_ids_are_refused_by_both(runc, runc_tool, new_bundle, cid):
    bundle = new_bundle(["true"])
    for name, tool in both(runc, runc_tool):
        done = tool("create", "--bundle", str(bundle), cid)
        one_line_refusal(done, "invalid container" if name == "mocker-runc" else "invalid")
        assert tool.containers() == [], name
    assert not (runc.root.parent / "escape").exists()


# --- capabilities: none asked, none given -------------------------------------------

CAPS = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status"


def test_no_capabilities_in_config_gives_none_under_run(runc, runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", CAPS], edit=lambda c: c["process"].pop("capabilities"))
    seen = {}
    for name, tool in both(runc, runc_tool):
        done = tool("run", "--bundle", str(bundle), unique)
        assert done.returncode == 0, done.stderr
        seen[name] = done.stdout
    assert seen["mocker-runc"] == seen["runc"]
    assert seen["runc"].count("0000000000000000") == 5, seen


@pytest.mark.parametrize("container_caps", [True, False])
def test_exec_process_without_capabilities_gets_the_containers_own(
        runc, runc_tool, new_bundle, tmp_path, unique, container_caps):
    """runc: an exec'd process.json without capabilities gets the container's
    config.json capabilities (none if it has none either), never all of them."""
    def edit(config):
        if not container_caps:
            config["process"].pop("capabilities")
    bundle = new_bundle(["sleep", "60"], edit=edit)
    process = json.loads((bundle / "config.json").read_text())["process"]
    process.pop("capabilities", None)
    process["args"] = ["sh", "-c", CAPS]
    (tmp_path / "process.json").write_text(json.dumps(process))
    seen = {}
    for name, tool in both(runc, runc_tool):
        tool.detached("run", "-d", "--bundle", str(bundle), unique)
        done = tool("exec", "--process", str(tmp_path / "process.json"), unique)
        tool("delete", "--force", unique)
        assert done.returncode == 0, done.stderr
        seen[name] = done.stdout
    assert seen["mocker-runc"] == seen["runc"]
    assert "CapEff:\t000001ff" not in seen["runc"]


# --- sysctls the container does not own --------------------------------------------

SYSCTL_CASES = [
    # (key, namespaces to keep of the default pid/network/ipc/uts/mount, refused)
    ("vm.swappiness", "all", True),
    ("kernel.pid_max", "all", True),
    ("kernel.msgmax", "no-ipc", True),
    ("fs.mqueue.msg_max", "no-ipc", True),
    ("net.ipv4.ip_forward", "no-network", True),
    ("net.ipv4.ip_forward", "host-network", True),
    ("kernel.hostname", "all", True),
    ("kernel.domainname", "no-uts", True),
    ("kernel.msgmax", "all", False),
    ("kernel.domainname", "all", False),
    ("net.ipv4.ip_forward", "all", False),
]


@pytest.mark.parametrize("key, namespaces, refused", SYSCTL_CASES)
def test_sysctl_outside_the_containers_namespaces_is_refused_as_by_runc(
        runc, runc_tool, new_bundle, unique, key, namespaces, refused):
    path = "/proc/sys/" + key.replace(".", "/")
    with open(path) as f:
        before = f.read()

    def edit(config):
        linux = config["linux"]
        linux["sysctl"] = {key: before.strip() if key != "kernel.domainname" else "mk.test"}
        kind = namespaces.split("-", 1)[-1]
        if namespaces.startswith("no-"):
            linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != kind]
        if namespaces == "host-network":
            for n in linux["namespaces"]:
                if n["type"] == "network":
                    n["path"] = f"/proc/{os.getpid()}/ns/net"
        if kind == "uts":
            config.pop("hostname", None)
    bundle = new_bundle(["true"], edit=edit)
    for name, tool in both(runc, runc_tool):
        done = tool("run", "--bundle", str(bundle), unique)
        if refused:
            one_line_refusal(done, "sysctl", key)
        else:
            assert done.returncode == 0, (name, done.stderr)
        assert tool.containers() == [], name
    with open(path) as f:
        assert f.read() == before


# --- the pid file and the state directory ------------------------------------------

def _plant(link, target) -> None:
    os.symlink(target, link)
    os.lchown(link, 65534, 65534)   # planted by another user (nobody)


def _create_quietly(tool, tmp_path, *args):
    """create, with the container's stdio away from our pipes (it keeps them open)."""
    with open(tmp_path / "create.err", "w+") as err:
        done = tool("create", *args, capture_output=False, stdout=subprocess.DEVNULL,
                    stderr=err)
        err.seek(0)
        done.stderr = err.read()
    return done


def test_pid_file_never_writes_through_a_planted_symlink(runc, runc_tool, new_bundle, tmp_path,
                                                        unique):
    """A sticky, world-writable directory (like /tmp) where another user planted
    symlinks to a root-owned file: at the pid file's name, at runc's temp name
    (.NAME), and at the next few thousand names of the form NAME.PID.tmp."""
    bundle = new_bundle(["sleep", "60"])
    shared = tmp_path / "sticky"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    with open("/proc/sys/kernel/ns_last_pid") as f:
        last = int(f.read())
    for name, tool in both(runc, runc_tool):
        pid_file = shared / f"{name}.pid"
        _plant(pid_file, victim)
        _plant(shared / f".{name}.pid", victim)
        for pid in range(last + 1, last + 3000):
            _plant(shared / f"{name}.pid.{pid}.tmp", victim)
        done = _create_quietly(tool, tmp_path, "--bundle", str(bundle), "--pid-file",
                               str(pid_file), unique)
        assert victim.read_text() == "precious\n", name
        if name == "runc":   # runc's O_EXCL on its fixed temp name refuses: no overwrite
            one_line_refusal(done, "file exists")
        else:                # ours picks a name no one can predict: the pid file is written
            assert done.returncode == 0, done.stderr
            assert not pid_file.is_symlink()
            assert pid_file.read_text() == str(tool.state(unique)["pid"])
            assert stat.S_IMODE(pid_file.stat().st_mode) == 0o644
        tool("delete", "--force", unique)


@pytest.mark.parametrize("mode, uid", [(0o777, 0), (0o775, 0), (0o1777, 0), (0o700, 65534)])
def test_a_root_directory_others_may_write_is_refused(runc, runc_tool, new_bundle, tmp_path,
                                                      unique, mode, uid):
    """Where runc differs: runc 1.1 takes such a --root and runs the container;
    mocker-runc refuses it (its state decides which hooks run as root)."""
    bundle = new_bundle(["true"])
    root = tmp_path / "shared-root"
    root.mkdir()
    root.chmod(mode)
    os.chown(root, uid, 0)
    theirs = Runtime(runc.binary, root)("run", "--bundle", str(bundle), unique)
    assert theirs.returncode == 0, theirs.stderr
    for verb in (["run", "--bundle", str(bundle), unique], ["list"], ["delete", unique]):
        ours = Runtime(runc_tool.binary, root)(*verb)
        assert ours.returncode == 6
        one_line_refusal(ours, "writable by others", "chmod go-w")
    assert os.listdir(root) == []


# --- what a missing namespace forbids ------------------------------------------------

@pytest.mark.parametrize("missing, words", [
    ("mount", []),
    ("uts", ["hostname"]),
])
def test_what_needs_a_namespace_is_refused_without_it(runc, runc_tool, new_bundle, unique,
                                                      missing, words):
    """runc: masked and read-only paths need a mount namespace, a hostname a UTS one."""
    def edit(config):
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                         if n["type"] != missing]
    bundle = new_bundle(["true"], edit=edit)
    for name, tool in both(runc, runc_tool):
        line = one_line_refusal(tool("run", "--bundle", str(bundle), unique), *words)
        if missing == "mount":
            assert ("MNT namespace" if name == "runc" else "need a mount namespace") in line
        assert tool.containers() == [], name


# --- no fd, cwd or root from outside (the CVE-2024-21626 class) ----------------------

# What the container's program holds, seen by the programs it starts (they
# inherit every fd not marked close-on-exec): fds and targets, cwd, root.
FD_PROBE = ("ls -l /proc/self/fd/; echo cwd; readlink /proc/self/cwd; echo root; "
            "readlink /proc/self/root; echo same; stat -L -c %d:%i / /proc/self/cwd")


def _held(output: str) -> dict:
    seen, key = {"fds": {}}, None
    for line in output.splitlines():
        if " -> " in line:
            number, target = line.split(" -> ", 1)
            seen["fds"][int(number.split()[-1])] = target
        elif line in ("cwd", "root", "same"):
            key = line
        elif key:
            seen.setdefault(key, []).append(line)
    return seen


def _only_stdio(seen: dict, name: str) -> None:
    """stdio are the caller's (/dev/null, our pipes), and ls's own /proc/N/fd;
    nothing else may be open, and cwd and root are the container's /."""
    fds = {n: t for n, t in seen["fds"].items() if not (t.startswith("/proc/") and
                                                        t.endswith("/fd"))}
    assert sorted(fds) == [0, 1, 2], (name, seen)
    assert all(t == "/dev/null" or t.startswith("pipe:") for t in fds.values()), (name, seen)
    assert seen["cwd"] == ["/"] and seen["root"] == ["/"], (name, seen)
    assert len(set(seen["same"])) == 1, (name, seen)   # cwd is the root's very inode


def test_no_fd_or_cwd_from_outside_in_run_and_exec(runc, runc_tool, new_bundle, unique):
    probe = new_bundle(["sh", "-c", FD_PROBE])
    sleeper = new_bundle(["sleep", "60"])
    for name, tool in both(runc, runc_tool):
        done = tool("run", "--bundle", str(probe), unique)
        assert done.returncode == 0, done.stderr
        _only_stdio(_held(done.stdout), f"{name} run")
        tool.detached("run", "-d", "--bundle", str(sleeper), unique)
        done = tool("exec", unique, "sh", "-c", FD_PROBE)
        tool("delete", "--force", unique)
        assert done.returncode == 0, done.stderr
        _only_stdio(_held(done.stdout), f"{name} exec")


@pytest.mark.parametrize("fd", range(3, 10))
def test_cwd_through_a_runtime_fd_is_refused(runc, runc_tool, new_bundle, unique, fd):
    """The CVE-2024-21626 attack: process.cwd /proc/self/fd/N, N a directory fd the
    runtime forgot to close, put the process in the host's filesystem."""
    bundle = new_bundle(["sh", "-c", FD_PROBE], cwd=f"/proc/self/fd/{fd}")
    for name, tool in both(runc, runc_tool):
        done = tool("run", "--bundle", str(bundle), unique)
        if done.returncode == 0:   # then it must be inside
            seen = _held(done.stdout)
            assert len(set(seen["same"])) == 1 or not seen["cwd"][0].startswith(
                ("/sys", "/tmp", "/run", "/work")), (name, seen)
        assert tool.containers() == [], name


# --- security modules the host does not run ------------------------------------------

LSM_CASES = [
    ("apparmor", lambda c: c["process"].update(apparmorProfile="docker-default")),
    ("selinux", lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0")),
    ("selinux", lambda c: c["linux"].update(mountLabel="system_u:object_r:container_file_t:s0")),
]


@pytest.mark.parametrize("module, edit", LSM_CASES, ids=["apparmorProfile", "selinuxLabel",
                                                          "mountLabel"])
def test_a_label_the_host_cannot_apply_is_refused(runc, runc_tool, new_bundle, unique,
                                                  module, edit):
    """Never run a program with less confinement than its config asks for. runc
    refuses these too, in its own words: selinuxLabel up front ("selinux is
    disabled"), apparmorProfile when its init writes /proc/self/attr/exec
    ("invalid argument"), mountLabel when the kernel refuses a mount's context=."""
    from mocker_runc import lsm
    if lsm.enabled(module):
        pytest.skip(f"{module} is enabled on this host")
    bundle = new_bundle(["true"], edit=edit)
    for name, tool in both(runc, runc_tool):
        line = one_line_refusal(tool("run", "--bundle", str(bundle), unique))
        if name == "mocker-runc":
            assert "not enabled on this host" in line, line
        assert tool.containers() == [], name


def test_an_apparmor_profile_is_applied_where_apparmor_runs(runc, runc_tool, new_bundle, unique):
    """Where AppArmor is enabled (the cgroup v2 guest's Debian kernel; no profile
    loaded there): "unconfined" is entered by both; a profile the kernel has
    not loaded fails both, before the program runs."""
    from mocker_runc import lsm
    if not lsm.enabled("apparmor"):
        pytest.skip("AppArmor is not enabled on this host")
    for profile in ("unconfined", f"mocker-missing-{unique}"):
        bundle = new_bundle(["cat", "/proc/self/attr/current"],
                            edit=lambda c: c["process"].update(apparmorProfile=profile))
        for name, tool in both(runc, runc_tool):
            done = tool("run", "--bundle", str(bundle), unique)
            if profile == "unconfined":
                assert done.returncode == 0 and done.stdout.strip() == "unconfined", \
                    (name, done.stderr)
            else:
                one_line_refusal(done, "apparmor", "/proc/self/attr/apparmor/exec")
            assert tool.containers() == [], name
