"""Links, addresses and routes with iproute2's `ip`, and the sysctls they need.

The only module that touches the kernel's network stack. Each change is the
`ip` command a learner would type, and -v prints it as run. Why `ip` and not a
netlink library: the hook runs on every container start, and importing
pyroute2 took ~170 ms there, while one `ip -batch` run takes a few ms.
Commands for a container's namespace run in it through nsenter(1), as
`nsenter --net=/proc/PID/ns/net ip ...` (`ip -n` takes only names in
/run/netns, not a /proc path).
"""

import ipaddress
import json
import logging
import subprocess
from pathlib import Path

from mocker_common.errors import MockerError

log = logging.getLogger("mocker.net")


def step(command: str) -> None:
    log.info("%s", command)


def _ip_argv(netns: str | None) -> list[str]:
    return (["nsenter", f"--net={netns}"] if netns else []) + ["ip"]


def ip(what: str, *commands: str | tuple[str, str], netns: str | None = None) -> str:
    """Run `ip` commands (one `ip -batch` run for several); a failure is one line
    saying what failed, at which line, and what the kernel answered. Returns ip's output.

    A command may come with its undo, as (command, undo): when a later line of
    the batch fails, the undos of the lines that ran are run, last first, so a
    failed batch leaves nothing of itself behind.
    """
    pairs = [c if isinstance(c, tuple) else (c, "") for c in commands]
    argv = _ip_argv(netns)
    for command, _ in pairs:
        step(" ".join(argv + [command]))
    if len(pairs) == 1:
        done = _run(what, argv + pairs[0][0].split())
    else:
        done = _run(what, argv + ["-batch", "-"], "".join(c + "\n" for c, _ in pairs))
    if done.returncode == 0:
        return done.stdout
    # ip -batch stops at the first failure and says "Command failed -:N" after
    # the kernel's answer; lines 1..N-1 took effect.
    answers = [line for line in done.stderr.splitlines() if line.strip()]
    failed = next((int(line.rsplit(":", 1)[1]) for line in answers
                   if line.startswith("Command failed -:")), 0)
    answers = [line for line in answers if not line.startswith("Command failed")]
    answer = answers[-1] if answers else f"ip exited with {done.returncode}"
    if failed:
        _undo([undo for _, undo in pairs[:failed - 1] if undo], argv)
        answer += f" (line {failed}: {pairs[failed - 1][0]})"
    raise MockerError(f"{what}: {answer}")


def _run(what: str, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise MockerError(f"{what}: {argv[0]} is not installed (iproute2, util-linux)") from None


def _undo(undos: list[str], argv: list[str]) -> None:
    """Take back what the first lines of a failed batch did, last first; -force goes
    on past an undo that fails (the original failure is the one to report)."""
    if undos:
        for command in reversed(undos):
            step(" ".join(argv + [command]) + "   # undo")
        _run("undo", argv + ["-force", "-batch", "-"], "".join(c + "\n" for c in reversed(undos)))


def link_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()


def sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys", key.replace(".", "/"))
    if path.read_text().strip() != value:
        step(f"sysctl -w {key}={value}")
        path.write_text(value)


def with_broadcast(address: ipaddress.IPv4Interface) -> str:
    """`ADDR/LEN broadcast BCAST`: `ip addr add` sets no broadcast address unless
    told (ifconfig then shows Bcast:0.0.0.0); Docker's show their subnet's last
    address. /31 and /32 have none (RFC 3021)."""
    if address.network.prefixlen >= 31:
        return str(address)
    return f"{address} broadcast {address.network.broadcast_address}"


# The `ip` commands themselves, apart from running them: `mocker-net --explain`
# prints the same words the hook runs.

def bridge_create_command(bridge: str, mtu: int) -> str:
    # `name` and `dev` before each name: a name such as "up" or "type" is not read as a keyword.
    return f"link add name {bridge} mtu {mtu} type bridge"


def bridge_up_commands(bridge: str, gateway: ipaddress.IPv4Interface) -> list[str]:
    # `addr replace` adds the address, or leaves it as it is: no need to look first.
    return [f"addr replace {with_broadcast(gateway)} dev {bridge}", f"link set dev {bridge} up"]


def veth_command(bridge: str, host_ifname: str, netns: str, ifname: str, mac: str, mtu: int) -> str:
    return (f"link add name {host_ifname} mtu {mtu} master {bridge} up type veth "
            f"peer name {ifname} mtu {mtu} address {mac} netns {netns}")


def container_side_commands(ifname: str, address: str, gateway) -> list[str]:
    """address: as with_broadcast() writes it."""
    return [f"addr add {address} dev {ifname}", f"link set dev {ifname} up",
            "link set dev lo up", f"route add default via {gateway}"]


def ensure_bridge(bridge: str, gateway: ipaddress.IPv4Interface, mtu: int) -> None:
    """The bridge with the gateway address, up; created once, then reused."""
    commands = [] if link_exists(bridge) else [(bridge_create_command(bridge, mtu), f"link del dev {bridge}")]
    ip(f"cannot set up bridge {bridge}", *commands, *bridge_up_commands(bridge, gateway))
    # Containers reach other networks through the host: the host must route.
    sysctl("net.ipv4.ip_forward", "1")
    # Lets the host's own 127.0.0.1:PORT be DNATed out through the bridge.
    sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")


def add_veth(bridge: str, host_ifname: str, netns: str, ifname: str, mac: str, mtu: int) -> None:
    """A veth pair: one end on the bridge, up; the other made right in the
    container's namespace, with its final name and MAC (veth(4): `peer ... netns`)."""
    ip(f"cannot create veth {host_ifname}", veth_command(bridge, host_ifname, netns, ifname, mac, mtu))
    # A container reaching its own published port gets its packets back through
    # the port they came in by; a bridge only does that in hairpin mode.
    step(f"bridge link set dev {host_ifname} hairpin on")
    Path(f"/sys/class/net/{host_ifname}/brport/hairpin_mode").write_text("1")


def configure_container_side(netns: str, ifname: str, address: ipaddress.IPv4Interface,
                             gateway: ipaddress.IPv4Address) -> None:
    """Inside the container's namespace: eth0 addressed and up, lo up, a default route."""
    add_address, set_up, lo_up, route = container_side_commands(ifname, with_broadcast(address), gateway)
    ip(f"cannot configure {ifname} in {netns}",
       (add_address, f"addr del {address} dev {ifname}"),
       (set_up, f"link set dev {ifname} down"),
       lo_up, route, netns=netns)


def loopback_up(netns: str) -> None:
    ip(f"cannot bring lo up in {netns}", "link set lo up", netns=netns)


def delete_link(ifname: str) -> None:
    """Delete a link if it exists; deleting one end of a veth deletes both."""
    if not link_exists(ifname):
        return
    try:
        ip(f"cannot delete {ifname}", f"link del dev {ifname}")
    except MockerError:
        if link_exists(ifname):
            raise
        # gone meanwhile (its namespace was being destroyed): fine


def _show(netns: str, what: str) -> list:
    """`ip -json -4 WHAT` in netns, parsed."""
    return json.loads(ip(f"cannot show {what} in {netns}", f"-json -4 {what}", netns=netns) or "[]")


def container_addresses(netns: str, ifname: str) -> list[str]:
    """The IPv4 addresses (CIDR) on ifname inside netns, for a CNI CHECK."""
    try:
        shown = _show(netns, f"addr show dev {ifname}")
    except MockerError:
        return []  # no such interface
    return [f"{a['local']}/{a['prefixlen']}" for link in shown for a in link.get("addr_info", [])]


def has_default_route(netns: str, gateway: str) -> bool:
    return any(route.get("gateway") == gateway for route in _show(netns, "route show default"))
