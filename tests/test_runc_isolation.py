"""What a process sees from inside a mocker-runc container, checked from inside."""

import os
import resource
import shutil

import pytest

from tests.conftest import need_root
from tests.fixtures import cgroupfs
from tests.fixtures.bundles import busybox_template, leftover_mounts, new_bundle, runc_tool  # noqa: F401,E501


@pytest.fixture(autouse=True)
def root_only():
    need_root()


def run_in(runc_tool, bundle, cid, check=True):
    proc = runc_tool("run", "--bundle", str(bundle), cid)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def status_field(text, name):
    return next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith(name + ":"))


def test_pid_uts_and_default_namespaces(runc_tool, new_bundle, unique):
    # the shell's own glob: no other process exists while it runs
    bundle = new_bundle(["sh", "-c", "echo /proc/[0-9]*; hostname; "
                                     "cat /proc/sys/kernel/domainname; ip -o link | cut -d: -f2,3"],
                        edit=lambda c: c.update(hostname="box-" + unique, domainname="example"))
    out = run_in(runc_tool, bundle, unique).stdout.splitlines()
    assert out[0] == "/proc/1"   # pid 1 is the container's shell; no host process shows
    assert out[1] == "box-" + unique and out[2] == "example"
    links = " ".join(out[3:])
    assert "lo" in links and "UP" in links and "eth0" not in links


def test_capabilities_and_no_new_privs(runc_tool, new_bundle, unique):
    bundle = new_bundle(["cat", "/proc/self/status"])
    status = run_in(runc_tool, bundle, unique).stdout
    # runc's default set: AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10)
    assert int(status_field(status, "CapEff"), 16) == (1 << 29) | (1 << 5) | (1 << 10)
    assert int(status_field(status, "CapBnd"), 16) == (1 << 29) | (1 << 5) | (1 << 10)
    assert status_field(status, "NoNewPrivs") == "1"

    def more_caps(config):
        config["process"]["capabilities"]["effective"].append("CAP_NET_ADMIN")
        config["process"]["capabilities"]["permitted"].append("CAP_NET_ADMIN")
        config["process"]["capabilities"]["bounding"].append("CAP_NET_ADMIN")
        config["process"]["noNewPrivileges"] = False
    status = run_in(runc_tool, new_bundle(["cat", "/proc/self/status"], edit=more_caps),
                    unique + "b").stdout
    assert int(status_field(status, "CapEff"), 16) & (1 << 12)
    assert status_field(status, "NoNewPrivs") == "0"


def test_user_groups_umask_env_cwd(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "id -u; id -g; id -G; umask; pwd; echo $GREETING"],
                        user={"uid": 1000, "gid": 1001, "additionalGids": [10, 20],
                              "umask": 0o077},
                        env=["PATH=/bin", "GREETING=hello"], cwd="/work/dir")
    out = run_in(runc_tool, bundle, unique).stdout.split("\n")
    assert out[0] == "1000" and out[1] == "1001"
    assert sorted(out[2].split()) == ["10", "1001", "20"]
    assert out[3] == "0077" and out[4] == "/work/dir" and out[5] == "hello"


def test_read_only_root_masked_and_readonly_paths(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "touch /file 2>/dev/null && echo root-writable; "
                                     "echo 1 > /proc/sys/kernel/domainname 2>/dev/null "
                                     "&& echo procsys-writable; "
                                     "wc -c < /proc/keys; ls /sys/firmware | wc -l; "
                                     "touch /dev/shm/ok && echo shm-writable"])
    out = run_in(runc_tool, bundle, unique).stdout.split()
    assert out == ["0", "0", "shm-writable"], out


def test_mounts_and_their_options(runc_tool, new_bundle, unique, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from host\n")

    def mounts(config):
        config["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(shared),
             "options": ["rbind", "ro", "nosuid", "nodev"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m", "noexec", "mode=1777"]},
            {"destination": "/etc/hello", "type": "bind", "source": str(shared / "hello"),
             "options": ["bind", "rprivate"]},
        ]
    bundle = new_bundle(["sh", "-c", "cat /data/hello; touch /data/x 2>/dev/null || echo ro; "
                                     "grep -E ' /(data|scratch|etc/hello) ' /proc/mounts; "
                                     "cat /etc/hello"], edit=mounts)
    out = run_in(runc_tool, bundle, unique).stdout.splitlines()
    assert out[0] == "from host" and out[1] == "ro"
    table = {line.split()[1]: set(line.split()[3].split(",")) for line in out[2:5]}
    assert {"ro", "nosuid", "nodev"} <= table["/data"]
    assert {"rw", "noexec", "size=1024k"} <= table["/scratch"]
    assert "/etc/hello" in table and out[5] == "from host"
    assert not (shared / "x").exists()
    assert leftover_mounts(bundle) == []


def test_dev_has_the_default_devices_and_links(runc_tool, new_bundle, unique):
    def devices(config):
        config["linux"]["devices"] = [{"path": "/dev/fuse-like", "type": "c", "major": 1,
                                       "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 0}]
    bundle = new_bundle(["sh", "-c", "ls /dev | tr '\\n' ' '; echo; readlink /dev/ptmx; readlink /dev/fd; "
                                     "echo x > /dev/fuse-like && echo nullish; "
                                     "stat -c '%a %t,%T' /dev/fuse-like"], edit=devices)
    out = run_in(runc_tool, bundle, unique).stdout.splitlines()
    listing = set(out[0].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd",
            "stdin", "stdout", "stderr", "mqueue", "fuse-like"} <= listing
    assert out[1:3] == ["pts/ptmx", "/proc/self/fd"]
    assert out[3] == "nullish" and out[4] == "600 1,3"


CAP_SYS_RESOURCE = 24


def has_capability(number: int) -> bool:
    with open("/proc/self/status") as f:
        effective = int(status_field(f.read(), "CapEff"), 16)
    return bool(effective >> number & 1)


def test_rlimits_inside_and_above_the_host(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "ulimit -n; ulimit -Hn"],
                        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000}])
    assert run_in(runc_tool, bundle, unique).stdout.split() == ["512", "1000"]
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if host_hard == resource.RLIM_INFINITY:
        pytest.skip("the host has no hard RLIMIT_NOFILE")
    too_high = new_bundle(["sh", "-c", "ulimit -Hn"], rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024,
                                                                "hard": host_hard + 1}])
    proc = run_in(runc_tool, too_high, unique + "b", check=False)
    if has_capability(CAP_SYS_RESOURCE):
        # a root with CAP_SYS_RESOURCE (the v2 guest's, a host's) may raise a hard limit: runc does
        assert (proc.returncode, proc.stdout) == (0, f"{host_hard + 1}\n"), proc.stderr
        return
    assert proc.returncode != 0
    assert "RLIMIT_NOFILE" in proc.stderr and str(host_hard) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (runc_tool.root / (unique + "b")).exists()


def test_sysctl_and_oom_score_adj(runc_tool, new_bundle, unique):
    def edit(config):
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        config["process"]["oomScoreAdj"] = 500
    bundle = new_bundle(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj"],
                        edit=edit)
    assert run_in(runc_tool, bundle, unique).stdout.split() == ["1", "500"]
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_forward = f.read()
    assert host_forward in ("0\n", "1\n")   # the container's value stayed in its netns


@pytest.fixture
def open_tmp():
    """A world-searchable temp dir: a mapped root (host uid 100000) must reach the rootfs."""
    import shutil
    import tempfile
    path = tempfile.mkdtemp(prefix="mocker-userns-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_user_namespace_maps_ids(open_tmp, runc_tool, new_bundle, unique):
    def userns(config):
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    made = new_bundle(["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 60"], edit=userns)
    bundle = shutil.move(made, open_tmp)
    runc_tool.detached("run", "-d", "--bundle", str(bundle), unique)
    pid = runc_tool.state(unique)["pid"]
    with open(f"/proc/{pid}/status") as f:
        assert status_field(f.read(), "Uid").split()[0] == "100000"
    out = runc_tool("exec", unique, "sh", "-c", "id -u; cat /proc/self/uid_map").stdout.split()
    assert out == ["0", "0", "100000", "65536"]


@pytest.fixture
def nosuid_fs():
    """A tmpfs mounted nosuid,nodev, as /tmp or /var/lib are on many hosts (and in the v2 guest)."""
    import subprocess
    import tempfile
    path = tempfile.mkdtemp(prefix="mocker-nosuid-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,mode=755", "tmpfs", path], check=True)
    yield path
    subprocess.run(["umount", "-l", path], check=False)
    os.rmdir(path)


def test_user_namespace_with_a_read_only_root_on_a_nosuid_filesystem(nosuid_fs, runc_tool, new_bundle,
                                                                     unique):
    # In a user namespace nosuid and nodev of the bind-mounted rootfs are locked:
    # remounting it read-only must keep them, or the kernel says EPERM (runc keeps them).
    def userns(config):
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
        config["root"]["readonly"] = True
    made = new_bundle(["sh", "-c", "id -u; touch /x 2>/dev/null || echo read-only"], edit=userns)
    bundle = shutil.move(made, nosuid_fs)
    proc = run_in(runc_tool, bundle, unique)
    assert proc.stdout.split() == ["0", "read-only"]


def test_no_pivot_uses_chroot(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "ls /; hostname"])
    proc = runc_tool("run", "--no-pivot", "--bundle", str(bundle), unique)
    assert proc.returncode == 0, proc.stderr
    assert "busybox" not in proc.stdout.split() and "bin" in proc.stdout.split()


def test_joining_a_namespace_by_path(runc_tool, new_bundle, unique):
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    pid = runc_tool.state(unique)["pid"]

    def join(config):
        config["linux"]["namespaces"] = [
            ns if ns["type"] != "uts" else {"type": "uts", "path": f"/proc/{pid}/ns/uts"}
            for ns in config["linux"]["namespaces"]]
        config["hostname"] = None
        del config["hostname"]
    bundle = new_bundle(["hostname"], edit=join)
    assert run_in(runc_tool, bundle, unique + "b").stdout.strip() == "mocker"


@pytest.mark.parametrize("cgroupns", [False, True])
def test_the_container_sees_only_its_own_cgroup(runc_tool, new_bundle, unique, cgroupns):
    def edit(config):
        if cgroupns:
            config["linux"]["namespaces"].append({"type": "cgroup"})
        config["linux"]["resources"]["pids"] = {"limit": 77}
    # pids.max exists in a child cgroup only, never in a hierarchy's root
    v2 = cgroupfs.is_v2()
    line = "^0::" if v2 else ":pids:"   # v2: one line, hierarchy 0, no controller names
    # v2 without a cgroup namespace: cgroup2 shows the whole tree, as runc mounts it
    # (test_runc_cgroups_side_by_side.py compares the mounts)
    where = f"/sys/fs/cgroup/mocker/{unique}/pids.max" if v2 and not cgroupns else cgroupfs.inside("pids.max")
    bundle = new_bundle(["sh", "-c", f"cat {where}; grep {line} /proc/self/cgroup"], edit=edit)
    out = run_in(runc_tool, bundle, unique).stdout.split()
    assert out[0] == "77"
    prefix = "0::" if v2 else ":pids:"
    assert out[1].endswith(f"{prefix}/" if cgroupns else f"{prefix}/mocker/{unique}"), out


def test_mount_destinations_cannot_escape_through_symlinks(runc_tool, new_bundle, unique,
                                                           tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()

    def edit(config):
        config["mounts"].append({"destination": "/escape/sub", "type": "tmpfs",
                                 "source": "tmpfs", "options": ["size=1m"]})
    bundle = new_bundle(["sh", "-c", f"grep -c ' {outside}/sub tmpfs ' /proc/mounts"],
                        edit=edit)
    # a symlink in the image that points at a host path: it must resolve inside the rootfs
    (bundle / "rootfs" / "escape").symlink_to(outside)
    proc = run_in(runc_tool, bundle, unique, check=False)
    assert list(outside.iterdir()) == [], "a mount point was created on the host"
    assert proc.returncode == 0 and proc.stdout == "1\n", proc.stderr
    assert (bundle / "rootfs" / str(outside).lstrip("/") / "sub").is_dir()


def _unmask_keys(config):
    config["linux"]["maskedPaths"].remove("/proc/keys")   # runc's default masks it


def test_a_new_session_keyring_per_container(runc_tool, new_bundle, unique):
    # keyrings(7): /proc/keys lists the keys a process can view; its session keyring
    # is one. runc names a container's _ses.<id>; --no-new-keyring keeps the caller's.
    bundle = new_bundle(["cat", "/proc/keys"], edit=_unmask_keys)
    own = run_in(runc_tool, bundle, unique).stdout
    assert f" _ses.{unique}: " in own
    kept = runc_tool("run", "--no-new-keyring", "--bundle", str(bundle), unique + "k")
    assert kept.returncode == 0, kept.stderr
    assert f" _ses.{unique}k: " not in kept.stdout
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"], edit=_unmask_keys)),
                       unique + "e")
    inside = runc_tool("exec", unique + "e", "cat", "/proc/keys", check=True).stdout
    assert f" _ses.{unique}e: " in inside   # exec joins the container's keyring
