"""Published ports on this host: is the port free? (The mapping type and its parser,
shared with mocker-bundle and the engine, are in mocker_common.contract.)"""

import ipaddress
from pathlib import Path

from mocker_common.contract import PortMapping
from mocker_common.errors import Conflict


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
