"""mocker-net under real callers: runc runs its hooks, podman calls it as a CNI plugin."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import need_tool
from tests.fixtures import images
from tests.fixtures.network import free_port, host_links, http_get, mocker_net

pytestmark = [pytest.mark.interop]


def busybox_rootfs(rootfs: Path, page: str) -> None:
    """The fixtures' busybox root filesystem, and a web page in /www."""
    images.rootfs_from_busybox(rootfs)
    (rootfs / "www").mkdir()
    (rootfs / "www/index.html").write_text(page)


def which(command: str) -> str:
    return subprocess.run(["sh", "-c", f"command -v {command}"], capture_output=True,
                          text=True).stdout.strip()


def hook(action: str) -> dict:
    # runtime-spec: hooks get the state on stdin; env is given explicitly so the
    # hook sees this test session's bridge and store whatever runc's own env is.
    keep = ("PATH", "MOCKER_ROOT", "MOCKER_RUN", "MOCKER_BRIDGE", "MOCKER_SUBNET")
    return {"path": which("mocker-net"), "args": ["mocker-net", "hook", action],
            "env": [f"{k}={os.environ[k]}" for k in keep if k in os.environ]}


def check_started(started, output: Path) -> None:
    assert started.returncode == 0, output.read_text()


def runc_bundle(bundle: Path, port: int) -> None:
    busybox_rootfs(bundle / "rootfs", "hello from runc\n")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["httpd", "-f", "-p", "80", "-h", "/www"])
    spec["root"]["readonly"] = False
    for kind in ("bounding", "effective", "permitted"):
        spec["process"]["capabilities"][kind].append("CAP_NET_RAW")   # for ping
    spec["hostname"] = "webhost"
    spec["annotations"] = {"org.mocker.network": "bridge", "org.mocker.ports": f"{port}:80"}
    spec["hooks"] = {"createRuntime": [hook("up")], "poststop": [hook("down")]}
    (bundle / "config.json").write_text(json.dumps(spec, indent=2))


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["runc", "mocker-runc"])
def test_runtime_runs_the_hooks_and_the_container_gets_the_network(runtime, network, tmp_path, unique):
    need_tool("runc")      # also for `runc spec`
    port, root = free_port(), tmp_path / "runc-root"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    runc_bundle(bundle, port)
    runc = [runtime, "--root", str(root)]
    # The detached container keeps runc's stdout/stderr: hand it a file, not a pipe.
    with open(tmp_path / "runc.out", "w+") as out:
        started = subprocess.run([*runc, "run", "-d", "--bundle", str(bundle), unique],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
    try:
        check_started(started, tmp_path / "runc.out")
        record = json.loads(mocker_net("inspect", unique, "--json").stdout)
        assert http_get(f"http://127.0.0.1:{port}/") == "hello from runc\n"
        assert http_get(f"http://{record['address']}/") == "hello from runc\n"
        inside = subprocess.run([*runc, "exec", unique, "ip", "-4", "addr", "show", "eth0"],
                                capture_output=True, text=True, timeout=30)
        assert f"{record['address']}/24" in inside.stdout
        ping = subprocess.run([*runc, "exec", unique, "ping", "-c", "1", "-W", "2", network.gateway],
                              capture_output=True, timeout=30)
        assert ping.returncode == 0
        assert f"{record['address']}\twebhost" in (bundle / "rootfs/etc/hosts").read_text()
    finally:
        subprocess.run([*runc, "kill", unique, "KILL"], capture_output=True, timeout=30)
        deleted = subprocess.run([*runc, "delete", "--force", unique], capture_output=True,
                                 text=True, timeout=30)
    assert deleted.returncode == 0, deleted.stderr
    assert mocker_net("inspect", unique).returncode == 3   # poststop tore it down
    assert record["host_ifname"] not in host_links()
    assert "dnat to" not in network.rules()


@pytest.mark.slow
def test_podman_uses_mocker_net_as_its_cni_plugin(network, tmp_path, unique):
    need_tool("podman")
    need_tool("runc")
    port = free_port()
    busybox_rootfs(tmp_path / "rootfs", "hello from podman\n")
    (tmp_path / "plugins").mkdir()
    # podman's cleanup process runs the plugin with its own environment: pin this
    # session's store, as an installed mocker-net would use the default one.
    plugin = tmp_path / "plugins/mocker-net"
    plugin.write_text(f"#!/bin/sh\nexport MOCKER_ROOT={os.environ['MOCKER_ROOT']}\n"
                      f"exec {which('mocker-net')} \"$@\"\n")
    plugin.chmod(0o755)
    (tmp_path / "cni").mkdir()
    (tmp_path / "cni/mocker.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": unique, "plugins": [{
            "type": "mocker-net", "bridge": network.bridge, "subnet": str(network.subnet),
            "capabilities": {"portMappings": True}}]}))
    (tmp_path / "containers.conf").write_text(
        f'[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["{tmp_path}/plugins"]\n'
        f'network_config_dir = "{tmp_path}/cni"\n')
    env = {**os.environ, "CONTAINERS_CONF": str(tmp_path / "containers.conf")}
    runroot = tempfile.mkdtemp(prefix="mk", dir="/tmp")   # podman wants a short runroot
    podman = ["podman", "--root", str(tmp_path / "storage"), "--runroot", runroot,
              "--storage-driver", "vfs", "--runtime", "runc"]

    def run(*args):
        return subprocess.run([*podman, *args], env=env, capture_output=True, text=True, timeout=90)

    # This host's hard limits are lower than podman's defaults: ask for less.
    started = run("run", "-d", "--name", unique, "--ulimit", "nofile=1024:1024",
                  "--ulimit", "nproc=1024:1024", "--network", unique, "-p", f"127.0.0.1:{port}:80",
                  "--rootfs", str(tmp_path / "rootfs"), "/usr/sbin/httpd", "-f", "-p", "80", "-h", "/www")
    try:
        assert started.returncode == 0, started.stderr
        container_id = started.stdout.strip()
        record = json.loads(mocker_net("inspect", container_id, "--json").stdout)
        assert record["caller"] == "cni" and record["ports"] == [f"127.0.0.1:{port}:80/tcp"]
        assert http_get(f"http://127.0.0.1:{port}/") == "hello from podman\n"
    finally:
        removed = run("rm", "-f", "-t", "0", unique)
        shutil.rmtree(runroot, ignore_errors=True)
    assert removed.returncode == 0, removed.stderr
    assert mocker_net("inspect", container_id).returncode == 3   # podman called DEL
    assert record["host_ifname"] not in host_links()


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["runc", "mocker-runc"])
def test_bundle_made_by_mocker_bundle_gets_its_network(runtime, network, tmp_path, unique):
    """mocker-bundle -p/--hostname -> runtime run: the hooks it wrote give the container
    its address, its published port and its /etc/hostname, under either runtime."""
    need_tool("runc")
    port, root = free_port(), tmp_path / "runc-root"
    layout = images.write_layout(tmp_path / "layout", {"busybox": images.busybox_image()})
    made = subprocess.run(
        # --name: cgroupsPath /mocker/<unique>, not /mocker/bundle shared with other runs
        ["mocker-bundle", "--copy", "-o", str(tmp_path / "bundle"), "--name", unique,
         "--network", "bridge",
         "-p", f"{port}:80", "--hostname", "web", f"oci:{layout}:busybox",
         "httpd", "-f", "-p", "80", "-h", "/etc"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    bundle = made.stdout.strip()
    runc = [runtime, "--root", str(root)]
    with open(tmp_path / "runtime.out", "w+") as out:
        started = subprocess.run([*runc, "run", "-d", "--bundle", bundle, unique],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
    try:
        check_started(started, tmp_path / "runtime.out")
        record = json.loads(mocker_net("inspect", unique, "--json").stdout)
        assert record["hostname"] == "web" and record["ports"] == [f"{port}:80/tcp"]
        assert http_get(f"http://127.0.0.1:{port}/hostname") == "web\n"
        assert http_get(f"http://{record['address']}/hostname") == "web\n"
    finally:
        subprocess.run([*runc, "kill", unique, "KILL"], capture_output=True, timeout=30)
        deleted = subprocess.run([*runc, "delete", "--force", unique], capture_output=True,
                                 text=True, timeout=30)
    assert deleted.returncode == 0, deleted.stderr
    assert mocker_net("inspect", unique).returncode == 3
    assert record["host_ifname"] not in host_links()
