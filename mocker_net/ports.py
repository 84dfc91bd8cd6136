"""Published ports: `[hostIP:]hostPort:containerPort[/tcp|udp]`, as `docker run -p` takes them."""

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from mocker_common.errors import Conflict, MockerError

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""          # "" means every address of the host

    def __str__(self) -> str:
        prefix = f"{self.host_ip}:" if self.host_ip else ""
        return f"{prefix}{self.host_port}:{self.container_port}/{self.protocol}"

    def clashes_with(self, other: "PortMapping") -> bool:
        """Both would catch the same packets: same port and protocol, overlapping addresses."""
        return (self.protocol == other.protocol and self.host_port == other.host_port
                and (not self.host_ip or not other.host_ip or self.host_ip == other.host_ip))


def parse_port(text: str) -> PortMapping:
    spec, _, protocol = text.strip().partition("/")
    protocol = (protocol or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise MockerError(f"invalid port {text!r}: protocol must be tcp or udp")
    host_ip, _, ports = spec.partition(":") if spec.count(":") == 2 else ("", "", spec)
    host_port, sep, container_port = ports.partition(":")
    if not sep:
        raise MockerError(f"invalid port {text!r}: expected [hostIP:]hostPort:containerPort[/tcp|udp]")
    if host_ip:
        try:
            host_ip = str(ipaddress.IPv4Address(host_ip))
        except ValueError:
            raise MockerError(f"invalid port {text!r}: {host_ip!r} is not an IPv4 address")
    return PortMapping(_port_number(host_port, text), _port_number(container_port, text),
                       protocol, host_ip)


def parse_ports(text: str | None) -> list[PortMapping]:
    """A comma-separated list, as in the org.mocker.ports annotation."""
    mappings = [parse_port(item) for item in (text or "").split(",") if item.strip()]
    for i, mapping in enumerate(mappings):
        for earlier in mappings[:i]:
            if mapping.clashes_with(earlier):
                raise Conflict(f"port {mapping} is given twice")
    return mappings


def _port_number(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise MockerError(f"invalid port {whole!r}: {text!r} is not a port number 1-65535")
    return int(text)


def host_listeners(protocol: str) -> set[tuple[str, int]]:
    """(address, port) of the host's listening TCP or bound UDP sockets, from /proc/net/*.

    Only the hook's own network namespace (the host's) is seen, which is the
    one the published port lives in.
    """
    found = set()
    for name in (protocol, protocol + "6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state = cols[1], cols[3]
            # TCP state 0A is LISTEN; an unconnected UDP socket shows 07 (CLOSE).
            if state != ("0A" if protocol == "tcp" else "07"):
                continue
            addr_hex, port_hex = local.rsplit(":", 1)
            found.add((_proc_addr(addr_hex), int(port_hex, 16)))
    return found


def _proc_addr(hex_addr: str) -> str:
    if len(hex_addr) == 8:  # IPv4, little-endian
        return str(ipaddress.IPv4Address(bytes.fromhex(hex_addr)[::-1]))
    words = [bytes.fromhex(hex_addr[i:i + 8])[::-1] for i in range(0, 32, 8)]
    addr = ipaddress.IPv6Address(b"".join(words))
    return str(addr.ipv4_mapped or addr)


def check_not_listening(mapping: PortMapping) -> None:
    """Refuse a host port that a host process already listens on: DNAT would silently steal it."""
    for addr, port in host_listeners(mapping.protocol):
        if port != mapping.host_port:
            continue
        wildcard = addr in ("0.0.0.0", "::")
        if wildcard or not mapping.host_ip or addr == mapping.host_ip:
            raise Conflict(f"host port {mapping.host_port}/{mapping.protocol} is already "
                           f"in use by a process listening on {addr}")
