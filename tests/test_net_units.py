"""mocker-net's pure parts: port specs, settings, resolv.conf, the nft ruleset, the IPAM."""

import ipaddress
import json

import pytest

from mocker_common.errors import Conflict, MockerError
from mocker_net import config, etcfiles, ipam, nat
from mocker_common.contract import PortMapping, parse_port, parse_ports


@pytest.mark.parametrize("text, expected", [
    ("8080:80", PortMapping(8080, 80, "tcp", "")),
    ("127.0.0.1:8080:80/udp", PortMapping(8080, 80, "udp", "127.0.0.1")),
    ("53:53/UDP", PortMapping(53, 53, "udp", "")),
])
def test_port_specs_parse_as_docker_run_p_does(text, expected):
    assert parse_port(text) == expected
    assert parse_port(str(expected)) == expected


@pytest.mark.parametrize("text, message", [
    ("80", "expected .hostIP:.hostPort:containerPort"),
    ("0:80", "not a port number"),
    ("8080:80/sctp", "protocol must be tcp or udp"),
    ("example.com:8080:80", "not an IPv4 address"),
])
def test_bad_port_specs_say_what_is_wrong(text, message):
    with pytest.raises(MockerError, match=message):
        parse_port(text)


def test_the_same_host_port_twice_is_a_conflict_but_other_protocols_are_not():
    assert len(parse_ports("8080:80,8080:80/udp,127.0.0.1:8081:81,127.0.0.2:8081:81")) == 4
    with pytest.raises(Conflict):
        parse_ports("8080:80, 127.0.0.1:8080:81")


def test_settings_come_from_flag_then_environment_then_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("MOCKER_ROOT", str(tmp_path))
    for name in ("MOCKER_BRIDGE", "MOCKER_SUBNET", "MOCKER_MTU"):
        monkeypatch.delenv(name, raising=False)
    default = config.resolve()
    assert (default.bridge, str(default.subnet)) == ("mocker0", "10.0.0.0/24")
    assert str(default.gateway) == "10.0.0.1" and default.table == "mocker_mocker0"
    (tmp_path / "net").mkdir()
    (tmp_path / "net/config.json").write_text(json.dumps(
        {"bridge": "filebr", "subnet": "10.5.0.0/16", "mtu": 1400, "dns": ["10.5.0.53"]}))
    from_file = config.resolve()
    assert (from_file.bridge, str(from_file.subnet), from_file.mtu, from_file.dns) == (
        "filebr", "10.5.0.0/16", 1400, ("10.5.0.53",))
    monkeypatch.setenv("MOCKER_SUBNET", "192.168.7.0/24")
    assert str(config.resolve().subnet) == "192.168.7.0/24"
    assert str(config.resolve(subnet="172.30.0.0/24").subnet) == "172.30.0.0/24"


@pytest.mark.parametrize("subnet, message", [
    ("10.0.0.1/24", "host bits set"),
    ("10.0.0.0/31", "too small"),
    ("8.8.8.0/24", "not a private range"),
])
def test_bad_subnets_are_refused(subnet, message):
    with pytest.raises(MockerError, match=message):
        config.parse_subnet(subnet)


@pytest.mark.parametrize("name", ["a-name-longer-than-15", "br0\nlink add x type bridge",
                                  "br 0", "../br", "br:0", ".", "", "br#0"])
def test_bad_bridge_names_are_refused(name):
    """A bridge name goes into ip -batch lines, nft table names and file names."""
    with pytest.raises(MockerError, match="invalid bridge name"):
        config.parse_ifname(name)


def test_resolv_conf_copies_host_servers_but_never_a_loopback_stub():
    host = "nameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n"
    assert etcfiles.resolv_conf(host) == (
        "nameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n")
    stub = "nameserver 127.0.0.53\nsearch lan\n"
    upstream = "nameserver 198.51.100.1\n"
    assert etcfiles.resolv_conf(stub, upstream) == "nameserver 198.51.100.1\nsearch lan\n"
    assert etcfiles.resolv_conf(stub) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\n"
    assert etcfiles.resolv_conf(host, configured=["10.1.1.1"]).startswith("nameserver 10.1.1.1\n")


def test_hosts_names_the_container_at_its_address():
    assert "10.0.0.2\tweb\n" in etcfiles.hosts("web", "10.0.0.2")
    assert "127.0.1.1\tweb\n" in etcfiles.hosts("web")        # none mode: no address


def test_ruleset_replaces_the_table_and_forwards_each_published_port():
    net = config.NetConfig("mk0", ipaddress.IPv4Network("10.9.0.0/24"), 1500)
    rules = nat.ruleset(net, [nat.Forward("c1", "10.9.0.2", parse_port("127.0.0.1:8080:80")),
                              nat.Forward("c2", "10.9.0.3", parse_port("53:53/udp"))])
    assert rules[:3] == ["add table ip mocker_mk0", "delete table ip mocker_mk0",
                         "add table ip mocker_mk0"]
    assert ("add rule ip mocker_mk0 published ip daddr 127.0.0.1 tcp dport 8080 "
            'dnat to 10.9.0.2:80 comment "c1"') in rules
    assert 'add rule ip mocker_mk0 published udp dport 53 dnat to 10.9.0.3:53 comment "c2"' in rules
    assert "add rule ip mocker_mk0 postrouting ip saddr 10.9.0.0/24 oifname != mk0 masquerade" in rules


def test_ipam_hands_out_the_lowest_free_address_and_reuses_released_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("MOCKER_ROOT", str(tmp_path))
    net = config.NetConfig("mk0", ipaddress.IPv4Network("10.9.0.0/29"), 1500)
    got = [str(ipam.allocate(net, f"c{i}")) for i in range(5)]
    assert got == ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    assert str(ipam.allocate(net, "c1")) == "10.9.0.3"           # same holder, same lease
    with pytest.raises(Conflict, match="no free address left in 10.9.0.0/29"):
        ipam.allocate(net, "c5")
    ipam.release("mk0", "c2")
    ipam.release("mk0", "c2")                                   # twice is fine
    assert str(ipam.allocate(net, "c6")) == "10.9.0.4"
    assert ipam.mac_for(ipaddress.IPv4Address("10.9.0.4")) == "02:42:0a:09:00:04"


def test_nft_is_found_in_sbin_when_path_lacks_it(monkeypatch):
    # A runtime hands its hooks its own PATH, which may lack /usr/sbin where nft lives.
    monkeypatch.setenv("PATH", "/nonexistent")
    assert nat.nft_binary() in ("/usr/sbin/nft", "/sbin/nft")
