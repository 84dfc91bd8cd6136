"""`--explain`: the shell script each command prints really does the job.

`mocker run --explain busybox ifconfig` is run with sh against the fixture
registry; what the container prints is held to what `mocker run` prints,
and nothing the script made (namespace, veth, lease, cgroup, mount, scratch
directory) is left after it, also when it fails.
"""

import glob
import ipaddress
import os
import re
import subprocess

import pytest

from mocker_common import paths
from tests.conftest import need_tool
from tests.test_mocker import BUSYBOX, cleanup, mirror, mocker  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("cleanup")


def explained(*args) -> str:
    done = mocker("run", "--explain", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#!/bin/sh\n")
    return done.stdout


def run_script(text: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "run.sh"
    script.write_text(text)
    return subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=120)


def leftovers(container_id: str) -> list[str]:
    found = glob.glob("/tmp/mocker-explain.*")
    found += [f"netns {n}" for n in os.listdir("/run/netns")
              if n == f"mocker-x-{container_id[:12]}"] if os.path.isdir("/run/netns") else []
    found += glob.glob(str(paths.net_dir() / "containers" / f"{container_id}.json"))
    found += glob.glob(f"/sys/fs/cgroup/*/mocker/{container_id}") + \
        glob.glob(f"/sys/fs/cgroup/mocker/{container_id}")
    with open("/proc/self/mountinfo") as f:
        found += [line for line in f if "mocker-explain." in line]
    return found


def user_xattrs_work(directory) -> bool:
    """Can files under directory carry user.* xattrs? (Not on the v2 guest's tmpfs.)"""
    probe = os.path.join(directory, f".xattr-probe-{os.getpid()}")
    os.makedirs(directory, exist_ok=True)
    try:
        with open(probe, "w"):
            pass
        os.setxattr(probe, "user.mocker", b"1")
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(probe):
            os.unlink(probe)


def interfaces(output: str) -> dict:
    """ifconfig's output: interface -> its block."""
    blocks = re.split(r"\n(?=\S)", output.strip())
    return {block.split()[0]: block for block in blocks}


def test_explained_run_prints_what_mocker_run_prints(network, tmp_path):  # noqa: F811
    for tool in ("curl", "jq", "capsh", "nft", "ip", "unshare", "nsenter"):
        need_tool(tool)
    name = f"explain-{os.getpid()}"
    script = explained("--name", name, BUSYBOX, "ifconfig")
    # Every step says where it comes from.
    for part in ("mocker-fetch", "mocker-bundle", "mocker-net", "mocker-runc"):
        assert f"# ==== {part}:" in script
    assert "mocker_runc/cgroups/" in script and "distribution-spec" in script

    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    ours = mocker("run", "--rm", BUSYBOX, "ifconfig")
    assert ours.returncode == 0, ours.stderr

    theirs, mine = interfaces(done.stdout), interfaces(ours.stdout)
    assert sorted(theirs) == sorted(mine) == ["eth0", "lo"]
    for block in (theirs["eth0"], mine["eth0"]):
        address = re.search(r"inet addr:(\S+)", block).group(1)
        assert ipaddress.ip_address(address) in network.subnet
    # Same mask, broadcast, MTU and flags; only the address and MAC differ.
    same = r"Bcast:\S+|Mask:\S+|MTU:\d+|UP [A-Z ]+"
    assert re.findall(same, theirs["eth0"]) == re.findall(same, mine["eth0"])
    assert re.findall(same, theirs["lo"]) == re.findall(same, mine["lo"])
    assert leftovers(name) == []


def test_a_failed_script_leaves_nothing(network, tmp_path):  # noqa: F811
    name = f"explain-bad-{os.getpid()}"
    done = run_script(explained("--name", name, f"{BUSYBOX}:no-such-tag", "true"), tmp_path)
    assert done.returncode != 0
    assert leftovers(name) == []


def test_network_none_and_the_container_s_limits(network, tmp_path):  # noqa: F811
    name = f"explain-none-{os.getpid()}"
    script = explained("--name", name, "--network", "none", "--hostname", "learner",
                       "-e", "GREETING=ni hao", BUSYBOX,
                       "sh", "-c", 'ifconfig -a | grep -c "Link encap"; hostname; echo "$GREETING"; '
                                   'cat /proc/self/status | grep CapBnd; id -u')
    done = run_script(script, tmp_path)
    ours = mocker("run", "--rm", "--network", "none", "--hostname", "learner",
                  "-e", "GREETING=ni hao", BUSYBOX,
                  "sh", "-c", 'ifconfig -a | grep -c "Link encap"; hostname; echo "$GREETING"; '
                              'cat /proc/self/status | grep CapBnd; id -u')
    assert done.returncode == ours.returncode == 0, done.stderr + ours.stderr
    expected = ours.stdout
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        # No device program from a shell: the script's container has no CAP_MKNOD.
        bounding = int(re.search(r"CapBnd:\s+(\w+)", expected).group(1), 16) & ~(1 << 27)
        expected = re.sub(r"(CapBnd:\s+)\w+", rf"\g<1>{bounding:016x}", expected)
    assert done.stdout == expected
    assert leftovers(name) == []


def test_the_image_s_config_and_layers_as_mocker_run_sees_them(mirror, network, tmp_path):  # noqa: F811
    # configured: Entrypoint + Cmd, Env, a WorkingDir the rootfs lacks, User "app"
    # with a supplementary group; layered: every whiteout rule of layer.md.
    configured = f"{mirror.host}/configured:latest"
    layered = f"{mirror.host}/layered:latest"
    show_tree = ("cd / && find data opaque dir-becomes-file file-becomes-dir | sort && "
                 "cat opaque/new.txt dir-becomes-file && ls -ln home/user | tail -n +2")
    cases = [(configured,), (configured, "id"),
             ("--entrypoint", "sh", configured, "-c", 'pwd; echo "$GREETING|$HOME"; id')]
    if user_xattrs_work(paths.root()):   # the layered image holds a user.* xattr
        cases.append((layered, "sh", "-c", show_tree))
    for number, args in enumerate(cases):
        name = f"explain-img{number}-{os.getpid()}"
        done = run_script(explained("--name", name, "--network", "none", *args), tmp_path)
        ours = mocker("run", "--rm", "--network", "none", *args)
        assert ours.returncode == 0, ours.stderr
        assert (done.returncode, done.stdout) == (0, ours.stdout), (args, done.stderr)
        assert leftovers(name) == []


def test_options_explain_cannot_show_are_refused():
    done = mocker("run", "--explain", "-p", "8080:80", BUSYBOX)
    assert done.returncode != 0 and "-p" in done.stderr and done.stdout == ""
    done = mocker("run", "--explain", "-d", BUSYBOX)
    assert done.returncode != 0 and done.stdout == ""


# --- -v: the same steps, said as they happen ------------------------------------

def test_verbose_run_says_each_runtime_step_in_order(network):  # noqa: F811
    name = f"narrated-{os.getpid()}"
    done = mocker("-v", "run", "--name", name, "-m", "64m", BUSYBOX, "echo", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n", "stdout holds only the container's output"
    said = [line.removeprefix("mocker-runc: ") for line in done.stderr.splitlines()
            if line.startswith("mocker-runc: ")]
    steps = ["echo 67108864 > ", "unshare ", "mount -t proc", "mknod ", "hostname ",
             "hook createRuntime:", "  ip link add", "pivot_root ", "mount --bind /dev/null",
             "capabilities kept", "seccomp: a filter of", "user 0:0, cwd /; exec /bin/echo hi",
             "hook poststop:"]
    where = []
    for step in steps:
        found = [i for i, line in enumerate(said) if line.startswith(step)]
        assert found, f"-v does not say {step!r}:\n" + "\n".join(said)
        where.append(found[0])
    assert where == sorted(where), "the steps are said out of order:\n" + "\n".join(said)
    # The narration goes to the user, not into the container's log.
    assert mocker("logs", name).stdout == "hi\n"


def test_without_v_the_runtime_says_nothing(network):  # noqa: F811
    done = mocker("run", "--rm", BUSYBOX, "true")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_mocker_runc_explain_runs_a_bundle_like_mocker_runc(mirror, tmp_path):  # noqa: F811
    # Any bundle: here one mocker-bundle made, without a network hook.
    bundle = tmp_path / "bundle"
    made = subprocess.run(["mocker-bundle", "--network", "none", "--hostname", "alone", "-o",
                           str(bundle), BUSYBOX, "sh", "-c", "ifconfig | grep -c Link; hostname; id"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    try:
        name = f"explain-runc-{os.getpid()}"
        script = subprocess.run(["mocker-runc", "--explain", "run", "--bundle", str(bundle), name],
                                capture_output=True, text=True, timeout=30)
        assert script.returncode == 0, script.stderr
        done = run_script(script.stdout, tmp_path)
        ours = subprocess.run(["mocker-runc", "run", "--bundle", str(bundle), name],
                              capture_output=True, text=True, timeout=60)
        assert ours.returncode == 0, ours.stderr
        assert (done.returncode, done.stdout) == (0, ours.stdout), done.stderr
        assert ours.stdout.splitlines()[:2] == ["1", "alone"]
        assert leftovers(name) == []
    finally:
        subprocess.run(["mocker-bundle", "--remove", str(bundle)], capture_output=True)
