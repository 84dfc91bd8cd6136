"""NAT and port forwards with nftables, in one table per bridge that mocker owns.

The whole table is rebuilt from the records in a single `nft -f -` run: nft
applies a file as one transaction, so packets see the old rules or the new
ones, never a half-made set, and a crash cannot leave a stray rule behind.
"""

import logging
import os
import subprocess

from mocker_common.contract import PortMapping
from mocker_common.errors import MockerError
from mocker_common.record import FrozenRecord

from .config import NetConfig

log = logging.getLogger("mocker.net")


class Forward(FrozenRecord):
    """One published port of one container."""
    container_id: str
    address: str
    mapping: PortMapping


def ruleset(net: NetConfig, forwards: list[Forward]) -> list[str]:
    """The nft commands that (re)build the table, one per line. Pure: no I/O."""
    t = f"ip {net.table}"
    br, subnet = net.bridge, net.subnet
    lines = [
        # "add" then "delete" then "add": the table is replaced whether or not it existed.
        f"add table {t}",
        f"delete table {t}",
        f"add table {t}",
        # A packet for the host itself ("fib daddr type local") may be a published port.
        f"add chain {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}",
        f"add chain {t} output {{ type nat hook output priority -100; policy accept; }}",
        f"add chain {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"add chain {t} published",
        f"add rule {t} prerouting fib daddr type local jump published",
        f"add rule {t} output fib daddr type local jump published",
        # Outbound: containers leave with the host's address on other interfaces.
        f"add rule {t} postrouting ip saddr {subnet} oifname != {br} masquerade",
        # Host 127.0.0.1 -> container: the container cannot answer a loopback source.
        f"add rule {t} postrouting oifname {br} ip saddr 127.0.0.0/8 masquerade",
        # Hairpin: a container reaching a published port (maybe its own) via the host
        # must see the gateway as source, or its reply would skip the NAT.
        f"add rule {t} postrouting oifname {br} ip saddr {subnet} ct status dnat masquerade",
        # route_localnet lets 127.0.0.1 be routed to the bridge; never let a
        # container use it to reach the host's loopback services or spoof them.
        f"add chain {t} guard {{ type filter hook prerouting priority raw; policy accept; }}",
        f"add rule {t} guard iifname {br} ip daddr 127.0.0.0/8 drop",
        f"add rule {t} guard iifname {br} ip saddr 127.0.0.0/8 drop",
    ]
    for fwd in forwards:
        m = fwd.mapping
        match = f"ip daddr {m.host_ip} " if m.host_ip else ""
        lines.append(f"add rule {t} published {match}{m.protocol} dport {m.host_port} "
                     f"dnat to {fwd.address}:{m.container_port} comment \"{fwd.container_id}\"")
    return lines


def apply(net: NetConfig, forwards: list[Forward]) -> None:
    """Replace the network's table with one that forwards exactly these ports."""
    run_nft(ruleset(net, forwards))


def delete_table(net: NetConfig) -> None:
    t = f"ip {net.table}"
    run_nft([f"add table {t}", f"delete table {t}"])


def nft_binary() -> str:
    """nft's path: PATH first, then /usr/sbin and /sbin, which the PATH a runtime
    gives its hooks (or a non-login shell) may lack."""
    for directory in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]:
        candidate = os.path.join(directory or ".", "nft")
        if os.access(candidate, os.X_OK):
            return candidate
    raise MockerError("nft is not installed (it is in the nftables package)")


def run_nft(lines: list[str]) -> None:
    log.info("nft -f - <<EOF")
    for line in lines:
        log.info("  %s", line)
    log.info("EOF")
    done = subprocess.run([nft_binary(), "-f", "-"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True)
    if done.returncode:
        first = (done.stderr.strip().splitlines() or ["failed"])[0]
        raise MockerError(f"nft refused the rules: {first}")


def list_table(net: NetConfig) -> str:
    """The table as `nft list table` prints it, or "" when it does not exist."""
    done = subprocess.run([nft_binary(), "list", "table", "ip", net.table],
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""
