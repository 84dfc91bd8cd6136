"""IP address management: which container holds which address of a bridge's subnet.

Leases persist in leases/<bridge>.json (see store.py). Callers hold
store.lock(), so two containers started at once never get the same address.
"""

import ipaddress
import logging

from mocker_common.errors import Conflict

from . import store
from .config import NetConfig

log = logging.getLogger("mocker.net")


def leases(net: NetConfig) -> dict[str, str]:
    """address -> container id."""
    return store.read_map("leases", net.bridge)


def allocate(net: NetConfig, container_id: str) -> ipaddress.IPv4Address:
    """The lowest free address (the gateway and broadcast are never free)."""
    taken = leases(net)
    for address, holder in taken.items():
        if holder == container_id:
            return ipaddress.IPv4Address(address)
    for host in net.subnet.hosts():
        if host != net.gateway and str(host) not in taken:
            taken[str(host)] = container_id
            store.write_map("leases", net.bridge, taken)
            log.debug("lease %s -> %s", host, container_id)
            return host
    raise Conflict(f"no free address left in {net.subnet} (run `mocker-net gc` to reclaim leases)")


def release(bridge: str, container_id: str) -> None:
    """Forget every lease the container holds; releasing twice is fine."""
    taken = store.read_map("leases", bridge)
    kept = {a: h for a, h in taken.items() if h != container_id}
    if not kept:
        store.delete_map("leases", bridge)
    elif kept != taken:
        store.write_map("leases", bridge, kept)
        log.debug("released the lease of %s", container_id)


def mac_for(address: ipaddress.IPv4Address) -> str:
    """A locally administered MAC derived from the address, as Docker does (02:42:<ip>).

    The same address always gets the same MAC, so neighbours' stale ARP
    entries stay right when an address is reused.
    """
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)
