"""runtime-spec hooks: their order, the state on their stdin, timeouts, and which
failures abort (config.md#posix-platform-hooks, runtime.md#lifecycle)."""

import json
import subprocess
import os

import pytest

from tests.conftest import need_root
from tests.fixtures.bundles import busybox_template, leftover_mounts, new_bundle, runc_tool  # noqa: F401,E501
from tests.fixtures.wait import wait_until

POINTS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop"]


@pytest.fixture(autouse=True)
def root_only():
    need_root()


def recording_hooks(logdir, fail=None, slow=None):
    """Each hook appends its name to order and saves its stdin (the state) as NAME.json.

    startContainer runs inside the container after pivot_root: it logs to /hooks,
    where logdir is bind-mounted.
    """
    def edit(config):
        config["root"]["readonly"] = False
        config["mounts"].append({"destination": "/hooks", "type": "bind", "source": str(logdir),
                                 "options": ["rbind"]})
        config["hooks"] = {}
        for point in POINTS:
            where = "/hooks" if point == "startContainer" else str(logdir)
            script = f"cat > {where}/{point}.json; echo {point} >> {where}/order"
            if point == fail:
                script += "; echo broken >&2; exit 1"
            hook = {"path": "/bin/sh", "args": ["sh", "-c", script]}
            if point == slow:
                hook["args"] = ["sh", "-c", "sleep 5"]
                hook["timeout"] = 1
            config["hooks"][point] = [hook]
        config["annotations"] = {"org.mocker.test": "yes"}
    return edit


def test_hooks_run_in_order_with_the_state(runc_tool, new_bundle, unique, tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    bundle = new_bundle(["sh", "-c", "echo main >> /hooks/order"],
                        edit=recording_hooks(logdir))
    runc_tool.detached("create", "--bundle", str(bundle), unique)
    order = lambda: (logdir / "order").read_text().split()  # noqa: E731
    assert order() == POINTS[:3]
    runc_tool("start", unique, check=True)
    pid = json.loads((logdir / "createRuntime.json").read_text())["pid"]
    # the program's line comes after start returns (it races poststart): wait for it,
    # generously (a loaded CI host), and say so if it never comes
    wait_until(lambda: "main" in order(), 30, what=f"the container's program ran: {order()}")
    runc_tool("delete", "--force", unique, check=True)
    assert order() == POINTS[:5] + ["main", "poststop"] or \
        order() == POINTS[:4] + ["main", "poststart", "poststop"]
    for point in ("createRuntime", "poststart", "poststop"):
        state = json.loads((logdir / f"{point}.json").read_text())
        assert state["id"] == unique and state["bundle"] == str(bundle)
        assert state["annotations"] == {"org.mocker.test": "yes"}
    assert json.loads((logdir / "prestart.json").read_text())["status"] == "creating"
    assert json.loads((logdir / "createContainer.json").read_text())["pid"] == pid
    assert json.loads((logdir / "poststop.json").read_text())["status"] == "stopped"


def test_failing_create_runtime_hook_aborts_and_leaves_nothing(runc_tool, new_bundle, unique,
                                                                tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    bundle = new_bundle(["true"], edit=recording_hooks(logdir, fail="createRuntime"))
    proc = runc_tool("create", "--bundle", str(bundle), unique)
    assert proc.returncode != 0
    assert "createRuntime hook" in proc.stderr and "broken" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # runtime-spec: the container is stopped and deleted, poststop hooks included
    assert (logdir / "order").read_text().split() == ["prestart", "createRuntime", "poststop"]
    assert not (runc_tool.root / unique).exists()
    assert not os.path.exists(f"/sys/fs/cgroup/pids/mocker/{unique}")
    assert leftover_mounts(bundle) == []


def test_failing_poststart_hook_is_only_a_warning(runc_tool, new_bundle, unique, tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    bundle = new_bundle(["true"], edit=recording_hooks(logdir, fail="poststart"))
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert proc.returncode == 0
    assert "poststart hook" in proc.stderr and "warning" in proc.stderr
    assert (logdir / "order").read_text().split()[-1] == "poststop"


def test_hook_timeout(runc_tool, new_bundle, unique, tmp_path):
    logdir = tmp_path / "log"
    logdir.mkdir()
    bundle = new_bundle(["true"], edit=recording_hooks(logdir, slow="prestart"))
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert proc.returncode != 0 and "timed out after 1s" in proc.stderr
    assert not (runc_tool.root / unique).exists()


NET_UP = r"""
import json, subprocess, sys
state = json.load(sys.stdin)
pid, host = state["pid"], state["annotations"]["test.veth"]
# the contract mocker-net relies on: pid is the container's init, in its own netns, not started yet
subprocess.run(["ip", "link", "add", host, "type", "veth", "peer", "name", "eth0",
                "netns", str(pid)], check=True)
subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "addr", "add", "192.0.2.2/24",
                "dev", "eth0"], check=True)
subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "link", "set", "eth0", "up"], check=True)
"""
NET_DOWN = r"""
import json, subprocess, sys
state = json.load(sys.stdin)
subprocess.run(["ip", "link", "del", state["annotations"]["test.veth"]], capture_output=True)
with open(state["annotations"]["test.log"], "w") as f:
    f.write(state["status"])
"""


def test_network_hook_contract(runc_tool, new_bundle, unique, tmp_path):
    """A createRuntime hook wires a veth into the container's netns, as `mocker-net hook up`."""
    import shutil
    import sys
    need = [shutil.which(tool) for tool in ("ip", "nsenter")]
    if not all(need):
        pytest.skip("needs ip and nsenter")
    veth = "v" + unique   # 11 characters: fits IFNAMSIZ

    def edit(config):
        config["annotations"] = {"test.veth": veth, "test.log": str(tmp_path / "down")}
        config["hooks"] = {
            "createRuntime": [{"path": sys.executable, "args": ["python3", "-c", NET_UP]}],
            "poststop": [{"path": sys.executable, "args": ["python3", "-c", NET_DOWN]}]}
    bundle = new_bundle(["sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'"], edit=edit)
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "192.0.2.2/24"
    assert (tmp_path / "down").read_text() == "stopped"
    links = subprocess.run(["ip", "-o", "link", "show", veth], capture_output=True)
    assert links.returncode != 0, "the host end of the veth is left"
