"""Links, addresses and routes over netlink (pyroute2), and the sysctls they need.

The only module that talks to the kernel's network stack. Each step is logged
at -v as the `ip` command a learner would type for it. pyroute2 is imported
here, lazily, because mocker-net runs on every container start.
"""

import contextlib
import ipaddress
import logging
from pathlib import Path

from mocker_common.errors import MockerError

log = logging.getLogger("mocker.net")


def step(command: str) -> None:
    log.info("%s", command)


def preload() -> None:
    """Import pyroute2 now (it takes a while), e.g. before waiting for a lock."""
    import pyroute2  # noqa: F401


def _iproute(netns: str | None = None):
    from pyroute2 import IPRoute   # heavy: only when a link really changes
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    return IPRoute(netns=netns) if netns else IPRoute()


def _netlink_errors():
    from pyroute2 import NetlinkError
    return NetlinkError


@contextlib.contextmanager
def _failing_as(what: str):
    """Turn a netlink error into a one-line MockerError naming the step."""
    try:
        yield
    except _netlink_errors() as err:
        raise MockerError(f"{what}: {err.args[1] if len(err.args) > 1 else err}")


def _index(ipr, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def link_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()


def sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys", key.replace(".", "/"))
    if path.read_text().strip() != value:
        step(f"sysctl -w {key}={value}")
        path.write_text(value)


def ensure_bridge(bridge: str, gateway: ipaddress.IPv4Interface, mtu: int) -> None:
    """The bridge with the gateway address, up; created once, then reused."""
    with _iproute() as ipr, _failing_as(f"cannot set up bridge {bridge}"):
        index = _index(ipr, bridge)
        if index is None:
            step(f"ip link add {bridge} type bridge")
            ipr.link("add", ifname=bridge, kind="bridge")
            index = _index(ipr, bridge)
            step(f"ip link set {bridge} mtu {mtu}")
            ipr.link("set", index=index, mtu=mtu)
        have = {(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            step(f"ip addr add {gateway} dev {bridge}")
            ipr.addr("add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
        step(f"ip link set {bridge} up")
        ipr.link("set", index=index, state="up")
    # Containers reach other networks through the host: the host must route.
    sysctl("net.ipv4.ip_forward", "1")
    # Lets the host's own 127.0.0.1:PORT be DNATed out through the bridge.
    sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")


def add_veth(bridge: str, host_ifname: str, peer_ifname: str, netns: str, mtu: int) -> None:
    """A veth pair: one end on the bridge, the other moved into the container's namespace."""
    with _iproute() as ipr, _failing_as(f"cannot create veth {host_ifname}"):
        step(f"ip link add {host_ifname} mtu {mtu} type veth peer name {peer_ifname} mtu {mtu}")
        ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu,
                 peer={"ifname": peer_ifname, "mtu": mtu})
        host_index, peer_index = _index(ipr, host_ifname), _index(ipr, peer_ifname)
        step(f"ip link set {host_ifname} master {bridge} up")
        ipr.link("set", index=host_index, master=_index(ipr, bridge), state="up")
        step(f"ip link set {peer_ifname} netns {netns}")
        with open(netns, "rb") as ns:
            ipr.link("set", index=peer_index, net_ns_fd=ns.fileno())
    # A container reaching its own published port gets its packets back through
    # the port they came in by; a bridge only does that in hairpin mode.
    step(f"bridge link set dev {host_ifname} hairpin on")
    Path(f"/sys/class/net/{host_ifname}/brport/hairpin_mode").write_text("1")


def configure_container_side(netns: str, peer_ifname: str, ifname: str, mac: str,
                             address: ipaddress.IPv4Interface,
                             gateway: ipaddress.IPv4Address) -> None:
    """Inside the container's namespace: eth0 named, addressed, up, with a default route."""
    ns = f"ip -n {netns}"
    with _iproute(netns) as ipr, _failing_as(f"cannot configure {ifname} in {netns}"):
        index = _index(ipr, peer_ifname)
        step(f"{ns} link set {peer_ifname} name {ifname} address {mac}")
        ipr.link("set", index=index, ifname=ifname, address=mac)
        step(f"{ns} addr add {address} dev {ifname}")
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
        step(f"{ns} link set {ifname} up")
        ipr.link("set", index=index, state="up")
        _loopback_up(ipr, ns)
        step(f"{ns} route add default via {gateway}")
        ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway))


def loopback_up(netns: str) -> None:
    with _iproute(netns) as ipr, _failing_as(f"cannot bring lo up in {netns}"):
        _loopback_up(ipr, f"ip -n {netns}")


def _loopback_up(ipr, ns: str) -> None:
    step(f"{ns} link set lo up")
    ipr.link("set", index=_index(ipr, "lo"), state="up")


def delete_link(ifname: str) -> None:
    """Delete a link if it exists; deleting one end of a veth deletes both."""
    if not link_exists(ifname):
        return
    step(f"ip link del {ifname}")
    with _iproute() as ipr:
        with contextlib.suppress(_netlink_errors()):   # gone meanwhile: fine
            ipr.link("del", ifname=ifname)


def container_addresses(netns: str, ifname: str) -> list[str]:
    """The IPv4 addresses (CIDR) on ifname inside netns, for a CNI CHECK."""
    with _iproute(netns) as ipr:
        index = _index(ipr, ifname)
        if index is None:
            return []
        return [f"{a.get('address')}/{a['prefixlen']}" for a in ipr.get_addr(index=index, family=2)]


def has_default_route(netns: str, gateway: str) -> bool:
    with _iproute(netns) as ipr:
        return any(r.get("gateway") == gateway and r["dst_len"] == 0
                   for r in ipr.get_routes(family=2))
