"""Which network a container joins: bridge name, subnet, gateway, MTU, DNS.

Each setting comes from the first of: a command-line flag, the environment
(MOCKER_BRIDGE, MOCKER_SUBNET, MOCKER_MTU), the config file
<mocker root>/net/config.json, and the defaults below. Pure policy: the only
I/O is reading that file and the host's routing table (/proc/net/route).
"""

import ipaddress
import json
import os
import re
from pathlib import Path

from mocker_common import names, paths
from mocker_common.errors import MockerError
from mocker_common.record import FrozenRecord

DEFAULT_BRIDGE = "mocker0"
# Docker takes 172.17.0.0/16 and podman 10.88.0.0/16; 10.0.0.0/24 is neither,
# and a /24 keeps addresses short to read (10.0.0.2, 10.0.0.3, ...).
DEFAULT_SUBNET = "10.0.0.0/24"
DEFAULT_MTU = 1500
# Used only when the host's resolv.conf names nothing but a 127.x stub resolver
# (systemd-resolved, dnsmasq), which a container cannot reach from its own
# network namespace. Docker falls back to the same public resolvers.
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")
MODES = ("bridge", "none", "host")
IFNAMSIZ = 15  # a Linux interface name has at most 15 characters
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


class NetConfig(FrozenRecord):
    bridge: str
    subnet: ipaddress.IPv4Network
    mtu: int
    dns: tuple[str, ...] = ()   # empty: derive from the host

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's own address: the first host of the subnet."""
        return self.subnet.network_address + 1

    @property
    def table(self) -> str:
        """The nftables table this network owns (one per bridge, so networks never clash)."""
        return "mocker_" + re.sub(r"[^A-Za-z0-9_]", "_", self.bridge)


def config_file() -> Path:
    return paths.net_dir() / "config.json"


def _file_settings() -> dict:
    try:
        with open(config_file(), "rb") as f:
            settings = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise MockerError(f"cannot read {config_file()}: {err}")
    if not isinstance(settings, dict):
        raise MockerError(f"{config_file()}: expected a JSON object")
    return settings


def resolve(bridge: str | None = None, subnet: str | None = None,
            mtu: int | None = None) -> NetConfig:
    """The network to use: flags first, then environment, config file, defaults."""
    settings = _file_settings()

    def pick(flag, env, key, default):
        for value in (flag, os.environ.get(env), settings.get(key)):
            if value not in (None, ""):
                return value
        return default

    dns = settings.get("dns") or ()
    return NetConfig(
        bridge=parse_ifname(str(pick(bridge, "MOCKER_BRIDGE", "bridge", DEFAULT_BRIDGE))),
        subnet=parse_subnet(str(pick(subnet, "MOCKER_SUBNET", "subnet", DEFAULT_SUBNET))),
        mtu=parse_mtu(pick(mtu, "MOCKER_MTU", "mtu", None)),
        dns=tuple(str(ipaddress.IPv4Address(s)) for s in dns),
    )


def parse_ifname(name: str) -> str:
    """A bridge name: the kernel's rule, and only the characters an nftables
    table name (mocker_<bridge>) and our file names can hold."""
    names.interface_name(name, "bridge name")
    if not _IFNAME_RE.fullmatch(name):
        raise names.InvalidName(f"invalid bridge name {name!r}: 1-{IFNAMSIZ} letters, digits, "
                                f"'_', '-', '.'")
    return name


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        subnet = ipaddress.IPv4Network(text, strict=True)
    except ValueError as err:
        raise MockerError(f"invalid subnet {text!r}: {err}")
    if subnet.prefixlen > 30:
        raise MockerError(f"subnet {subnet} is too small: it needs room for a gateway and containers")
    if not subnet.is_private:
        raise MockerError(f"subnet {subnet} is not a private range (10/8, 172.16/12, 192.168/16)")
    return subnet


def parse_mtu(value) -> int:
    if value in (None, ""):
        return default_mtu()
    try:
        mtu = int(value)
    except (TypeError, ValueError):
        raise MockerError(f"invalid MTU {value!r}: expected a number")
    if not 68 <= mtu <= 65535:
        raise MockerError(f"invalid MTU {mtu}: expected 68..65535")
    return mtu


def default_mtu() -> int:
    """1500, or less when the host's uplink is smaller (then bigger packets would be dropped)."""
    for route in host_routes():
        if route.prefixlen == 0:
            try:
                uplink = int(Path(f"/sys/class/net/{route.iface}/mtu").read_text())
            except (OSError, ValueError):
                continue
            return min(DEFAULT_MTU, uplink)
    return DEFAULT_MTU


class HostRoute(FrozenRecord):
    iface: str
    network: ipaddress.IPv4Network

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen


def host_routes() -> list[HostRoute]:
    """The IPv4 routes of the host's main table, as the kernel lists them in /proc/net/route."""
    routes = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return routes
    for line in lines:
        cols = line.split()
        # The kernel prints addresses as little-endian hex words.
        dest = ipaddress.IPv4Address(bytes.fromhex(cols[1])[::-1])
        mask = ipaddress.IPv4Address(bytes.fromhex(cols[7])[::-1])
        routes.append(HostRoute(cols[0], ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)))
    return routes


def check_no_overlap(net: NetConfig) -> None:
    """Refuse a subnet that a host route already covers: packets to it would go astray."""
    for route in host_routes():
        if route.prefixlen and route.iface != net.bridge and route.network.overlaps(net.subnet):
            raise MockerError(
                f"subnet {net.subnet} overlaps the host route {route.network} on {route.iface}; "
                f"choose another with --subnet or MOCKER_SUBNET")
