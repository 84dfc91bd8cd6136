"""Which devices a container can open, under mocker-runc and runc side by side.

The same checks run on this hybrid host (mocker-runc writes the v1 devices
controller) and in the pure cgroup v2 guest (an eBPF program on the cgroup).
With Docker's capabilities (CAP_MKNOD among them) a container may mknod any
node, so the cgroup is all that stands between it and the host's disk or
console: each probe makes a node and opens it.

The probes only open for reading (and write /dev/null): if the cgroup ever
let one through, nothing on the host is changed. A probe that is let
through reports "ok" (or the driver's own error, e.g. ENXIO), never EPERM,
and test_an_allow_all_program_is_caught shows the checks notice.
"""

import json
import os
from pathlib import Path

import pytest

from mocker_bundle import profile
from mocker_runc.cgroups import hierarchies
from tests.conftest import need_root, need_tool
from tests.fixtures.bundles import (Runtime, busybox_template, default_config,  # noqa: F401
                                    make_bundle, runc_tool)
from tests.fixtures.wait import wait_until

pytestmark = [pytest.mark.usefixtures("root"), pytest.mark.interop]   # runc side by side

# name, type, major, minor, what Docker's rules under runc give ("ok" or "EPERM")
PROBES = [
    ("null", "c", 1, 3, "ok"),
    ("zero", "c", 1, 5, "ok"),
    ("full", "c", 1, 7, "ok"),
    ("urandom", "c", 1, 9, "ok"),
    ("random", "c", 1, 8, "ok"),
    ("ttyS0", "c", 4, 64, "EPERM"),      # the host's serial console
    ("mem", "c", 1, 1, "EPERM"),         # /dev/mem and friends
    ("kmem", "c", 1, 2, "EPERM"),
    ("port", "c", 1, 4, "EPERM"),
    ("fuse", "c", 10, 229, "EPERM"),
    ("loop0", "b", 7, 0, "EPERM"),
    ("sda", "b", 8, 0, "EPERM"),
    ("vda", "b", 254, 0, "EPERM"),       # the disk of this host and of the guest
]

# mknod then open; the open is in a child shell under `timeout`, as a tty
# that was let through might wait for its carrier.
PROBE_SCRIPT = r"""
mkdir -p /dev/probe; cd /dev/probe   # /dev: a tmpfs without nodev (the rootfs may have it)
probe() {
    if ! mknod "$1" "$2" "$3" "$4" 2>err; then echo "$1 mknod:$(cat err)"; return; fi
    if timeout -s KILL 3 sh -c "exec 3<$1" 2>err; then result=ok
    else case $(cat err) in *"not permitted"*) result=EPERM ;; *) result="error:$(cat err)" ;; esac
    fi
    echo "$1 $result"
}
""" + "".join(f"probe {name} {kind} {major} {minor}\n" for name, kind, major, minor, _ in PROBES) + \
    "echo written > /dev/null && echo write-null ok\n"

EXPECTED = {name: verdict for name, _, _, _, verdict in PROBES} | {"write-null": "ok"}


@pytest.fixture
def root():
    need_root()
    yield
    # the runtimes leave the parent of a cgroupsPath (/mocker-test) behind: ours to remove
    layout = hierarchies.detect()
    for mount in ([layout.unified] if layout.unified else []) + list(layout.v1.values()):
        try:
            os.rmdir(mount.dir_for("/mocker-test"))
        except OSError:
            pass   # absent, or in use by a parallel run


def docker_config(runtime: str = "mocker-runc") -> dict:
    """`spec`'s config with Docker's device rules and capabilities (CAP_MKNOD)."""
    config = default_config()
    config["root"]["readonly"] = False   # the probes write their report into the rootfs
    config["linux"]["resources"] = {"devices": json.loads(json.dumps(profile.DEFAULT_DEVICE_RULES))}
    caps = list(profile.DEFAULT_CAPABILITIES)
    config["process"]["capabilities"] = {key: caps for key in ("bounding", "effective", "permitted")}
    return config


def report(text: str) -> dict:
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def run_probes(tool: Runtime, bundle: Path, cid: str, tamper=None) -> dict:
    """create; tamper(cid) if given (between create and start); start; the probes' report."""
    out = bundle / "rootfs/tmp/report"
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["sh", "-c", "{\n" + PROBE_SCRIPT + "} > /tmp/report 2>&1"]
    (bundle / "config.json").write_text(json.dumps(config))
    tool.detached("create", "--bundle", str(bundle), cid)
    try:
        if tamper:
            tamper(tool, cid)
        tool("start", cid, check=True)
        wait_until(lambda: tool.state(cid)["status"] == "stopped", 60, step=0.05,
                   what="the probes finished")
    finally:
        tool("delete", "--force", cid)
    return report(out.read_text())


@pytest.fixture
def runc(tmp_path):
    need_tool("runc")
    tool = Runtime("runc", tmp_path / "runc-state")
    yield tool
    tool.cleanup()


def test_docker_rules_let_a_container_open_what_runc_lets_it(runc_tool, runc, tmp_path,
                                                             busybox_template, unique):
    results = {}
    for name, tool in (("mocker-runc", runc_tool), ("runc", runc)):
        bundle = make_bundle(tmp_path / name, config=docker_config(), rootfs=busybox_template)
        results[name] = run_probes(tool, bundle, f"{unique}{name[0]}")
    assert results["runc"] == EXPECTED, "runc itself disagrees with the table"
    assert results["mocker-runc"] == results["runc"]


def _allow_all(tool: Runtime, cid: str) -> None:
    """Break the container's device control as a buggy runtime would: allow everything."""
    state = json.loads((tool.root / cid / "state.json").read_text())
    paths = state.get("cgroup_paths") or {}
    if set(paths) == {"unified"}:
        from mocker_runc.cgroups import devicefilter, devices
        devicefilter.install(paths["unified"], devices.RuleSet(True, ()))
    else:
        Path(paths["devices"], "devices.allow").write_text("a")


def test_an_allow_all_program_is_caught(runc_tool, tmp_path, busybox_template, unique):
    """The probes above are not blind: with the device control broken, they fail."""
    bundle = make_bundle(tmp_path / "broken", config=docker_config(), rootfs=busybox_template)
    got = run_probes(runc_tool, bundle, unique, tamper=_allow_all)
    leaks = sorted(name for name, verdict in EXPECTED.items()
                   if verdict == "EPERM" and got[name] != "EPERM")
    # these nodes need no capability to open: only the cgroup refuses them (a
    # missing driver answers ENXIO, which is not EPERM either). /dev/mem-like
    # nodes may still fail for want of CAP_SYS_RAWIO, and this host's own disk
    # is refused to the host's root too.
    assert {"fuse", "loop0", "sda", "ttyS0"} <= set(leaks), got


def test_a_config_rule_opens_exactly_its_device(runc_tool, runc, tmp_path, busybox_template, unique):
    """As `docker run --device /dev/loop0`: the node in linux.devices, one allow rule."""
    def config():
        cfg = docker_config()
        cfg["linux"]["devices"] = [{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0,
                                    "fileMode": 0o600, "uid": 0, "gid": 0}]
        cfg["linux"]["resources"]["devices"].append(
            {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"})
        return cfg
    results = {}
    for name, tool in (("mocker-runc", runc_tool), ("runc", runc)):
        bundle = make_bundle(tmp_path / name, config=config(), rootfs=busybox_template)
        results[name] = run_probes(tool, bundle, f"{unique}{name[0]}")
    assert results["mocker-runc"] == results["runc"]
    # loop0 opens (or its driver answers), every other disk is still refused
    assert results["mocker-runc"]["loop0"] != "EPERM"
    assert {k: v for k, v in results["mocker-runc"].items() if k != "loop0"} == \
        {k: v for k, v in EXPECTED.items() if k != "loop0"}


def test_a_linux_device_without_a_rule_is_made_but_not_opened(runc_tool, runc, tmp_path,
                                                              busybox_template, unique):
    """runc gives linux.devices no rule of their own: the node is there, opening it fails."""
    def config():
        cfg = docker_config()
        cfg["linux"]["devices"] = [{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0,
                                    "fileMode": 0o600, "uid": 0, "gid": 0}]
        return cfg
    args = ["sh", "-c", "ls -l /dev/loop0 >/dev/null && echo made; (exec 3</dev/loop0) 2>&1"]
    outs = {}
    for name, tool in (("mocker-runc", runc_tool), ("runc", runc)):
        bundle = make_bundle(tmp_path / name, args, config=config(), rootfs=busybox_template)
        outs[name] = tool("run", "--bundle", str(bundle), f"{unique}{name[0]}").stdout
    assert "made" in outs["runc"] and "Operation not permitted" in outs["runc"]
    assert outs["mocker-runc"] == outs["runc"]


# -- cgroup v2 only: the program's life on the container's cgroup -----------------------

def _v2_only():
    if hierarchies.detect().mode != "v2":
        pytest.skip("cgroup v2 only (run in the guest: tests/test_guest_devices.py)")


def _programs(cid: str) -> list[int]:
    from mocker_runc.cgroups import devicefilter
    return devicefilter.attached(f"/sys/fs/cgroup/mocker-test/{cid}")


def _in_test_cgroup(config: dict, cid: str) -> dict:
    config["linux"]["cgroupsPath"] = f"/mocker-test/{cid}"
    return config


def test_runc_loads_the_very_program_we_load(runc_tool, runc, tmp_path, busybox_template, unique):
    """Same config, same rules: the kernel holds the same instructions for both runtimes."""
    _v2_only()
    from mocker_runc.cgroups import devicefilter
    held = {}
    for name, tool in (("mocker-runc", runc_tool), ("runc", runc)):
        cid = f"{unique}{name[0]}"
        config = _in_test_cgroup(docker_config(), cid)
        bundle = make_bundle(tmp_path / name, ["sleep", "30"], config=config, rootfs=busybox_template)
        tool.detached("create", "--bundle", str(bundle), cid)
        try:
            (prog_id,) = _programs(cid)
            held[name] = devicefilter.dump(prog_id)[1]
        finally:
            tool("delete", "--force", cid)
    assert held["mocker-runc"] == held["runc"]


def test_update_replaces_the_program_and_delete_leaves_none(runc_tool, tmp_path, busybox_template,
                                                            unique):
    _v2_only()
    from mocker_runc.cgroups import devicefilter
    config = _in_test_cgroup(docker_config(), unique)
    bundle = make_bundle(tmp_path / "b", ["sleep", "30"], config=config, rootfs=busybox_template)
    runc_tool.detached("run", "-d", "--bundle", str(bundle), unique)
    try:
        (first,) = _programs(unique)
        # runc update never changes device rules: a file that asks for all is ignored
        resources = tmp_path / "resources.json"
        resources.write_text(json.dumps({"devices": [{"allow": True, "access": "rwm"}],
                                         "pids": {"limit": 100}}))
        runc_tool("update", "--resources", str(resources), unique, check=True)
        (second,) = _programs(unique)
        assert second != first and not devicefilter.program_exists(first)
        out = runc_tool("exec", unique, "sh", "-c", "mknod /dev/m c 1 1; (exec 3</dev/m) 2>&1",
                        check=False).stdout
        assert "Operation not permitted" in out
    finally:
        runc_tool("delete", "--force", unique)
    # freed with the cgroup, from a work queue
    wait_until(lambda: not devicefilter.program_exists(second), 5,
               what="the program freed with the container")
    assert not os.path.exists(f"/sys/fs/cgroup/mocker-test/{unique}")


@pytest.mark.parametrize("rule, message", [
    ({"allow": True, "type": "c", "major": 1, "minor": 3, "access": ""},
     "linux.resources.devices[1]: device access cannot be empty"),
    ({"allow": False, "type": "c", "major": 1, "minor": 3, "access": "r"},
     "device rule deny c 1:3 r cannot punch a hole in the wider rule c 1:* rwm"),
])
def test_a_bad_rule_is_refused_like_runc_and_leaves_nothing(runc_tool, runc, tmp_path,
                                                            busybox_template, unique, rule, message):
    def config():
        cfg = docker_config()
        cfg["linux"]["cgroupsPath"] = f"/mocker-test/{unique}"
        cfg["linux"]["resources"]["devices"][1:1] = [
            {"allow": True, "type": "c", "major": 1, "access": "rwm"}] if "hole" in message else []
        cfg["linux"]["resources"]["devices"].insert(1 if "hole" not in message else 2, rule)
        return cfg
    for name, tool in (("mocker-runc", runc_tool), ("runc", runc)):
        bundle = make_bundle(tmp_path / name, config=config(), rootfs=busybox_template)
        done = tool("create", "--bundle", str(bundle), unique)
        assert done.returncode != 0, f"{name} took {rule}"
        assert not tool.containers()
        if name == "mocker-runc":
            (line,) = done.stderr.strip().splitlines()
            assert line.startswith(f"mocker-runc: {message}")
    layout = hierarchies.detect()
    for mount in ([layout.unified] if layout.unified else []) + list(layout.v1.values()):
        assert not os.path.exists(mount.dir_for(f"/mocker-test/{unique}")), "cgroup left behind"
