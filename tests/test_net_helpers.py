"""A small network lab for the mocker-net tests (fixtures and helpers, no tests).

A test "container" is a process in a new network namespace (`unshare --net`)
with a bundle directory (config.json + rootfs/) beside it, driven through
`mocker-net hook up/down` with a runtime-spec state JSON on stdin, as a
runtime would. A "remote host" is another namespace joined to the host by a
veth pair the test makes. Every bridge, subnet and port is random per session,
and all traffic stays on this machine.
"""

import ipaddress
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mocker_net import config
from tests.conftest import need_root, need_tool

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""

# Answers each TCP connection with the address it came from, then closes.
TELL_PEER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
while True:
    conn, peer = s.accept()
    conn.sendall(peer[0].encode() + b"\\n")
    conn.close()
"""

_used_subnets: set = set()


def free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no host route and no earlier test uses."""
    routes = [r.network for r in config.host_routes() if r.prefixlen]
    while True:
        net = ipaddress.IPv4Network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if net not in _used_subnets and not any(net.overlaps(r) for r in routes):
            _used_subnets.add(net)
            return net


def free_port() -> int:
    from mocker_net.ports import host_listeners
    taken = {p for _, p in host_listeners("tcp") | host_listeners("udp")}
    while (port := random.randint(20000, 40000)) in taken:
        pass
    return port


def mocker_net(*args, stdin: str = "", env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["mocker-net", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=env)


def wait_listening(pid: int, port: int, proto: str = "tcp", timeout: float = 5.0) -> None:
    """Until a socket in pid's network namespace listens on port (read from /proc/PID/net)."""
    state = "0A" if proto == "tcp" else "07"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for table in (proto, proto + "6"):     # busybox httpd listens on :: (IPv4 too)
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == state:
                    return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {proto} port {port} in pid {pid}'s namespace")


def _netns_of(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


class Namespaced:
    """A `sleep` holding a new network namespace, and processes run inside it."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "600"])
        self.pid = self.holder.pid
        self.procs = [self.holder]
        host = _netns_of(os.getpid())
        deadline = time.monotonic() + 5
        while _netns_of(self.pid) == host:   # unshare has not run yet
            assert time.monotonic() < deadline, "unshare did not make a network namespace"
            time.sleep(0.01)

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def run(self, *cmd, timeout=10, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(self.pid), "-n", *cmd], capture_output=True,
                              text=True, timeout=timeout, **kw)

    def spawn(self, *cmd) -> subprocess.Popen:
        proc = subprocess.Popen(["nsenter", "-t", str(self.pid), "-n", *cmd],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def kill(self) -> None:
        """SIGKILL every process; the namespace goes with the last of them."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()

    def serve_http(self, port: int, www: Path, text: str) -> None:
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text(text)
        proc = self.spawn("busybox", "httpd", "-f", "-p", str(port), "-h", str(www))
        wait_listening(proc.pid, port)

    def serve_python(self, script: str, port: int, proto: str = "tcp") -> None:
        proc = self.spawn(sys.executable, "-c", script, str(port))
        wait_listening(proc.pid, port, proto)


class Container(Namespaced):
    """A namespace plus a bundle whose config.json carries mocker's annotations."""

    def __init__(self, cid: str, base: Path, ports: str = "", mode: str = "bridge",
                 hostname: str = ""):
        super().__init__()
        self.id = cid
        self.bundle = base / cid
        self.rootfs = self.bundle / "rootfs"
        self.rootfs.mkdir(parents=True)
        annotations = {"org.mocker.network": mode, "org.mocker.ports": ports}
        if hostname:
            annotations["org.mocker.hostname"] = hostname
        (self.bundle / "config.json").write_text(json.dumps(
            {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "annotations": annotations}))

    def state(self) -> str:
        return json.dumps({"ociVersion": "1.0.2", "id": self.id, "status": "creating",
                           "pid": self.pid, "bundle": str(self.bundle)})

    def hook(self, action: str, *flags: str) -> subprocess.CompletedProcess:
        return mocker_net(*flags, "hook", action, stdin=self.state())

    def up(self, *flags: str) -> dict:
        done = self.hook("up", *flags)
        assert done.returncode == 0, done.stderr
        return self.record()

    def record(self) -> dict:
        done = mocker_net("inspect", self.id, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@dataclass
class Network:
    bridge: str
    subnet: ipaddress.IPv4Network

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def table(self) -> str:
        return f"mocker_{self.bridge}"

    def rules(self) -> str:
        done = subprocess.run(["nft", "list", "table", "ip", self.table], capture_output=True, text=True)
        return done.stdout


@pytest.fixture(scope="session")
def network(mocker_env):
    """A bridge and subnet of this session's own, removed at the end."""
    need_root()
    need_tool("nft")
    need_tool("busybox")
    net = Network("mk" + secrets.token_hex(4), free_subnet())
    saved = {k: os.environ.get(k) for k in ("MOCKER_BRIDGE", "MOCKER_SUBNET")}
    os.environ["MOCKER_BRIDGE"], os.environ["MOCKER_SUBNET"] = net.bridge, str(net.subnet)
    try:
        yield net
    finally:
        mocker_net("gc")
        pruned = mocker_net("prune")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert pruned.returncode == 0, pruned.stderr
        assert not Path("/sys/class/net", net.bridge).exists()


@pytest.fixture
def containers(network, tmp_path):
    """A factory of test containers; every one is killed and torn down afterwards."""
    made = []

    def make(ports: str = "", mode: str = "bridge", hostname: str = "", cid: str = "") -> Container:
        container = Container(cid or "c" + secrets.token_hex(4), tmp_path, ports, mode, hostname)
        made.append(container)
        return container

    yield make
    for container in made:
        container.kill()
        container.hook("down")


class RemoteHost(Namespaced):
    """Another machine, as far as the host can tell: a namespace at the end of a veth pair."""

    def __init__(self):
        super().__init__()
        self.subnet = free_subnet()
        self.host_ip = str(self.subnet.network_address + 1)
        self.ip = str(self.subnet.network_address + 2)
        self.link = "mkr" + secrets.token_hex(4)
        for cmd in (f"ip link add {self.link} type veth peer name {self.link}p",
                    f"ip link set {self.link}p netns {self.pid}",
                    f"ip addr add {self.host_ip}/24 dev {self.link}",
                    f"ip link set {self.link} up"):
            subprocess.run(cmd.split(), check=True)
        for cmd in (f"ip link set {self.link}p name eth0", f"ip addr add {self.ip}/24 dev eth0",
                    "ip link set eth0 up", "ip link set lo up"):
            assert self.run(*cmd.split()).returncode == 0

    def remove(self) -> None:
        self.kill()
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)


@pytest.fixture
def remote_host(network):
    host = RemoteHost()
    try:
        yield host
    finally:
        host.remove()


def http_get(url: str, via: Namespaced | None = None) -> str:
    cmd = ["curl", "-s", "--noproxy", "*", "-m", "5", url]
    done = via.run(*cmd) if via else subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    return done.stdout


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def host_veth(network: "Network", container_id: str) -> set[str]:
    """The name mocker-net gives the container's veth end on the host (the other end
    is made in the container's namespace; other sessions' links vary)."""
    from mocker_net.core import host_ifname
    net = config.NetConfig(network.bridge, network.subnet, 1500)
    return {host_ifname(net, container_id)}
