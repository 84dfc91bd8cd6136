"""mocker-net as a CNI plugin, called the way libcni (podman, containerd, kubelet) calls it.

The caller below does what libcni does for a network config list: find the
plugin binary named by "type" in CNI_PATH, give it the network's name and
cniVersion, the runtimeConfig its capabilities ask for, and for CHECK and DEL
the prevResult that ADD returned; CNI_* variables in the environment.
"""

import ipaddress
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.network import free_port, host_links, http_get, mocker_net


class CniCaller:
    def __init__(self, plugin_dir: Path, conflist: dict):
        self.plugin_dir, self.conflist = plugin_dir, conflist

    def call(self, command: str, container_id: str, netns: str, runtime_config=None,
             prev_result=None, ifname: str = "eth0", name: str = "") -> tuple[int, dict | None]:
        plugin = dict(self.conflist["plugins"][0])
        plugin.update(name=name or self.conflist["name"], cniVersion=self.conflist["cniVersion"])
        wanted = plugin.get("capabilities", {})
        plugin["runtimeConfig"] = {k: v for k, v in (runtime_config or {}).items() if wanted.get(k)}
        if prev_result is not None:
            plugin["prevResult"] = prev_result
        env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
               "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_PATH": str(self.plugin_dir)}
        binary = self.plugin_dir / plugin["type"]
        done = subprocess.run([str(binary)], input=json.dumps(plugin), env=env,
                              capture_output=True, text=True, timeout=30)
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture
def cni(network, tmp_path):
    """A CNI_PATH holding mocker-net under the name its config's "type" says."""
    plugin_dir = tmp_path / "cni-bin"
    plugin_dir.mkdir()
    shim = subprocess.run(["sh", "-c", "command -v mocker-net"], capture_output=True, text=True)
    (plugin_dir / "mocker-net").symlink_to(shim.stdout.strip())
    conflist = {"cniVersion": "1.0.0", "name": "mockernet", "plugins": [{
        "type": "mocker-net", "bridge": network.bridge, "subnet": str(network.subnet),
        "capabilities": {"portMappings": True}}]}
    return CniCaller(plugin_dir, conflist)


@pytest.fixture
def netns():
    """A named network namespace, as CNI callers make them (ip netns add)."""
    name = "mk" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def in_netns(name: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", name, *cmd], capture_output=True, text=True, timeout=10)


def test_version_lists_the_spec_versions(cni):
    code, answer = cni.call("VERSION", "", "")
    assert code == 0
    assert answer["cniVersion"] == "1.0.0" and "1.0.0" in answer["supportedVersions"]


def test_add_check_del_as_a_cni_runtime_calls_them(cni, netns, network, tmp_path):
    cid, path, port = secrets.token_hex(16), f"/run/netns/{netns}", free_port()
    ports = {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]}
    code, result = cni.call("ADD", cid, path, ports)
    assert code == 0, result
    assert result["cniVersion"] == "1.0.0"
    ip = result["ips"][0]
    assert ipaddress.IPv4Interface(ip["address"]) in [ipaddress.IPv4Interface(
        f"{h}/{network.subnet.prefixlen}") for h in network.subnet.hosts()]
    assert ip["gateway"] == network.gateway
    assert result["interfaces"][ip["interface"]] == {
        "name": "eth0", "mac": result["interfaces"][ip["interface"]]["mac"], "sandbox": path}
    assert all(len(i["mac"]) == 17 for i in result["interfaces"])
    assert ip["address"] in in_netns(netns, "ip", "-4", "addr", "show", "eth0").stdout
    assert in_netns(netns, "ping", "-c", "1", "-W", "2", network.gateway).returncode == 0

    (tmp_path / "www").mkdir()
    (tmp_path / "www/index.html").write_text("via cni\n")
    server = subprocess.Popen(["ip", "netns", "exec", netns, "busybox", "httpd", "-f", "-p", "80",
                               "-h", str(tmp_path / "www")])
    try:
        from tests.fixtures.network import wait_listening
        wait_listening(server.pid, 80)
        assert http_get(f"http://127.0.0.1:{port}/") == "via cni\n"
    finally:
        server.kill()
        server.wait()

    assert cni.call("CHECK", cid, path, ports, prev_result=result) == (0, None)
    assert cni.call("DEL", cid, path, ports, prev_result=result) == (0, None)
    assert cni.call("DEL", cid, path, ports, prev_result=result) == (0, None)   # DEL twice: fine
    assert result["interfaces"][1]["name"] not in host_links()
    assert "eth0" not in in_netns(netns, "ip", "link").stdout
    assert "dnat to" not in network.rules()
    assert mocker_net("inspect", cid).returncode == 3


def test_check_reports_a_broken_attachment_as_a_cni_error(cni, netns):
    cid, path = secrets.token_hex(16), f"/run/netns/{netns}"
    code, result = cni.call("ADD", cid, path)
    assert code == 0, result
    in_netns(netns, "ip", "addr", "flush", "dev", "eth0")
    code, error = cni.call("CHECK", cid, path, prev_result=result)
    assert code != 0 and error["code"] == 5 and "lacks its address" in error["msg"]
    assert cni.call("DEL", cid, path, prev_result=result) == (0, None)


def test_del_after_the_namespace_is_gone_cleans_up(cni, network):
    name = "mk" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True)
    cid, path = secrets.token_hex(16), f"/run/netns/{name}"
    code, result = cni.call("ADD", cid, path)
    assert code == 0, result
    subprocess.run(["ip", "netns", "del", name], check=True)
    assert cni.call("DEL", cid, path, prev_result=result) == (0, None)
    assert result["interfaces"][1]["name"] not in host_links()
    assert mocker_net("inspect", cid).returncode == 3


def test_unsupported_version_and_bad_config_are_cni_errors(cni, netns):
    cni.conflist["cniVersion"] = "9.9.9"
    code, error = cni.call("ADD", "x" * 8, f"/run/netns/{netns}")
    assert code != 0 and error["code"] == 1 and "not supported" in error["msg"]
    cni.conflist["cniVersion"] = "1.0.0"
    cni.conflist["plugins"][0]["subnet"] = "not-a-subnet"
    code, error = cni.call("ADD", "x" * 8, f"/run/netns/{netns}")
    assert code != 0 and error["code"] == 7 and "invalid subnet" in error["msg"]
    del cni.conflist["plugins"][0]["subnet"]
    bad_ports = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "sctp"}]}
    code, error = cni.call("ADD", "x" * 8, f"/run/netns/{netns}", bad_ports)
    assert code != 0 and error["code"] == 7 and "protocol must be tcp or udp" in error["msg"]
    assert mocker_net("inspect", "x" * 8).returncode == 3


# Names that would become `ip -batch` lines, file names or /etc/hosts lines.
HOSTILE_IFNAMES = ["eth0\nlink add injected type bridge", "eth0 type bridge", "../../x",
                   "a:b", "", ".", "x" * 16, "eth0#", 'e"th0']
HOSTILE_IDS = ["../injected", "a/b", "x\nlink add injected type bridge", "-rf", ".hidden"]


def _left_behind(netns: str) -> list[str]:
    """Links named by an injection, in the host or the namespace; records and leases."""
    found = [name for name in host_links() if "inject" in name]
    inside = in_netns(netns, "ip", "-o", "link").stdout
    found += ["netns:" + line for line in inside.splitlines() if "inject" in line or "eth0" in line]
    net_dir = Path(os.environ["MOCKER_ROOT"], "net")
    found += [str(p) for p in net_dir.glob("containers/*.json")]
    found += [str(p) for p in net_dir.rglob("*") if "inject" in p.name]
    rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    found += ["nft:" + line for line in rules.splitlines() if "inject" in line]
    return found


@pytest.mark.parametrize("ifname", HOSTILE_IFNAMES)
def test_hostile_cni_ifname_is_refused_and_leaves_nothing(cni, netns, ifname):
    code, answer = cni.call("ADD", secrets.token_hex(8), f"/run/netns/{netns}", ifname=ifname)
    assert code != 0 and answer["code"] == 4, answer   # CNI: invalid environment variables
    assert "CNI_IFNAME" in answer["msg"] and "\n" not in answer["msg"], answer
    assert _left_behind(netns) == []


@pytest.mark.parametrize("cid", HOSTILE_IDS)
def test_hostile_cni_containerid_is_refused_and_leaves_nothing(cni, netns, cid):
    for command in ("ADD", "DEL", "CHECK"):
        code, answer = cni.call(command, cid, f"/run/netns/{netns}")
        assert code != 0 and answer["code"] == 4, answer
        assert "CNI_CONTAINERID" in answer["msg"] and "\n" not in answer["msg"], answer
    assert _left_behind(netns) == []


@pytest.mark.parametrize("name", ["../net", "a b", "net\nx", "-net"])
def test_hostile_network_name_is_refused(cni, netns, name):
    code, answer = cni.call("ADD", secrets.token_hex(8), f"/run/netns/{netns}", name=name)
    assert code != 0 and answer["code"] == 7, answer   # CNI: invalid network config
    assert "network name" in answer["msg"] and "\n" not in answer["msg"], answer
    assert _left_behind(netns) == []
