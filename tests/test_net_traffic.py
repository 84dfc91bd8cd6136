"""Real traffic through mocker-net: gateway, neighbours, published ports, NAT.

Every packet stays on this machine: between the host, network namespaces the
tests create, and loopback.
"""

import ipaddress
import socket

import pytest

from tests.fixtures.network import TELL_PEER, UDP_ECHO, free_port, http_get


def ping(container, address: str) -> bool:
    return container.run("ping", "-c", "1", "-W", "2", address).returncode == 0


def test_container_gets_eth0_address_route_and_etc_files(containers, network):
    c = containers(hostname="web")
    record = c.up()
    links = c.run("ip", "-o", "link", "show").stdout
    assert "eth0" in links and "lo" in links
    assert "state UP" in c.run("ip", "link", "show", "eth0").stdout
    eth0 = c.run("ip", "link", "show", "eth0").stdout
    assert record["mac"] in eth0 and f"mtu {record['mtu']} " in eth0
    assert f"{record['address']}/24" in c.run("ip", "-4", "addr", "show", "eth0").stdout
    assert f"default via {network.gateway} dev eth0" in c.run("ip", "route").stdout
    assert ipaddress.IPv4Address(record["address"]) in network.subnet
    hosts = (c.rootfs / "etc/hosts").read_text()
    assert f"{record['address']}\tweb" in hosts and "localhost" in hosts
    assert (c.rootfs / "etc/hostname").read_text() == "web\n"
    assert "nameserver" in (c.rootfs / "etc/resolv.conf").read_text()


def test_container_reaches_gateway_and_its_neighbour(containers, network):
    a, b = containers(), containers()
    b_address = (a.up(), b.up())[1]["address"]
    assert ping(a, network.gateway)
    assert ping(a, b_address)


def test_host_reaches_container_and_its_published_tcp_port_on_localhost(containers, tmp_path):
    port = free_port()
    c = containers(ports=f"{port}:80")
    address = c.up()["address"]
    c.serve_http(80, tmp_path / "www", "hello from the container\n")
    assert http_get(f"http://{address}:80/") == "hello from the container\n"
    assert http_get(f"http://127.0.0.1:{port}/") == "hello from the container\n"


def test_udp_port_published_on_localhost_echoes(containers):
    port = free_port()
    c = containers(ports=f"127.0.0.1:{port}:7/udp")
    c.up()
    c.serve_python(UDP_ECHO, 7, "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"ping over udp", ("127.0.0.1", port))
        assert s.recvfrom(100)[0] == b"ping over udp"


def test_remote_client_reaches_published_port_through_host_address(containers, remote_host, tmp_path):
    port = free_port()
    c = containers(ports=f"{port}:8080")
    c.up()
    c.serve_http(8080, tmp_path / "www", "served to a remote client\n")
    url = f"http://{remote_host.host_ip}:{port}/"
    assert http_get(url, via=remote_host) == "served to a remote client\n"


def test_container_reaches_its_own_published_port_hairpin(containers, network, tmp_path):
    port = free_port()
    c = containers(ports=f"{port}:80")
    c.up()
    c.serve_http(80, tmp_path / "www", "myself\n")
    assert http_get(f"http://{network.gateway}:{port}/", via=c) == "myself\n"


def test_neighbour_reaches_published_port_through_gateway(containers, network, tmp_path):
    port = free_port()
    server, client = containers(ports=f"{port}:80"), containers()
    server.up(), client.up()
    server.serve_http(80, tmp_path / "www", "neighbour\n")
    assert http_get(f"http://{network.gateway}:{port}/", via=client) == "neighbour\n"


def test_outbound_traffic_is_masqueraded_to_the_host_address(containers, remote_host):
    c = containers()
    c.up()
    remote_host.serve_python(TELL_PEER, 9000)
    seen = c.run("busybox", "nc", remote_host.ip, "9000").stdout.strip()
    assert seen == remote_host.host_ip   # the remote host sees the host, not 10.x container


def test_container_cannot_reach_the_host_loopback_services(containers, network):
    """route_localnet on the bridge (for 127.0.0.1:PORT forwards) must not let a
    container route packets to the host's 127.0.0.1 (cf. CVE-2020-8558)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        port = listener.getsockname()[1]
        c = containers()
        c.up()
        # What a root process in the container could do to aim at the host's loopback.
        for cmd in ("ip addr flush dev lo",
                    "sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1",
                    f"ip route add 127.0.0.1/32 via {network.gateway} dev eth0"):
            assert c.run(*cmd.split()).returncode == 0
        c.run("busybox", "nc", "-w", "2", "127.0.0.1", str(port), timeout=10, input="")
        with pytest.raises(TimeoutError):
            listener.accept()
