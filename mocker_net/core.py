"""The one core behind both front doors (runtime hook and CNI plugin):
setup() attaches a container to its network, teardown() undoes it from the
saved record, gc() reclaims what dead containers left, prune() removes an
unused bridge.

Every change happens under store.lock(): the lease, the record, the links and
the nftables table change together, and a failure midway undoes what was done.
"""

import contextlib
import hashlib
import ipaddress
import logging
import os
from pathlib import Path

from mocker_common.contract import PortMapping, parse_port
from mocker_common.errors import Conflict, MockerError, NotFound
from mocker_common.record import Record

from . import config, etcfiles, ipam, links, nat, store
from .config import NetConfig
from .ports import check_not_listening
from .store import ContainerRecord

log = logging.getLogger("mocker.net")


class Attachment(Record):
    """What a front door asks for: this container, in this namespace, this way."""
    id: str
    netns: str                                   # e.g. /proc/PID/ns/net
    mode: str = "bridge"
    ports: list[PortMapping] = []
    hostname: str = ""
    rootfs: Path | None = None                   # where to write /etc files; None: don't
    ifname: str = "eth0"
    caller: str = "hook"


def resolve_network(bridge=None, subnet=None, mtu=None) -> NetConfig:
    """config.resolve(), except that an existing bridge keeps the subnet it was made with."""
    net = config.resolve(bridge=bridge, subnet=subnet, mtu=mtu)
    saved = store.read_map("networks", net.bridge)
    if not saved:
        return net
    explicit = subnet or os.environ.get("MOCKER_SUBNET")
    if explicit and config.parse_subnet(explicit) != ipaddress.IPv4Network(saved["subnet"]):
        raise Conflict(f"bridge {net.bridge} already uses subnet {saved['subnet']}, not {explicit}; "
                       f"pick another bridge (MOCKER_BRIDGE) or `mocker-net prune` it first")
    return NetConfig(net.bridge, ipaddress.IPv4Network(saved["subnet"]), saved["mtu"], net.dns)


def host_ifname(net: NetConfig, container_id: str) -> str:
    """Name of the veth's host end: derived from bridge and id, so that it fits
    IFNAMSIZ and differs between networks."""
    tag = hashlib.sha256(f"{net.bridge}/{container_id}".encode()).hexdigest()[:8]
    return f"veth{tag}"


def setup(net: NetConfig, att: Attachment) -> ContainerRecord:
    if att.mode not in config.MODES:
        raise MockerError(f"unknown network mode {att.mode!r}: expected bridge, none or host")
    store.check_id(att.id)
    record = ContainerRecord(id=att.id, mode=att.mode, netns=att.netns, hostname=att.hostname,
                             ifname=att.ifname, caller=att.caller,
                             ports=[str(p) for p in att.ports])
    with store.lock():
        _reclaim_dead()
        if store.load_record(att.id):
            raise Conflict(f"container {att.id} is already attached to a network")
        record.netns_inode = _inode(att.netns)
        if att.mode == "bridge":
            _check_own_namespace(att.netns)
            _check_ports_free(att.ports)
            _ensure_network(net)
            _lease(net, record)
        store.save_record(record)
        try:
            _attach(net, att, record)
        except BaseException:
            _undo_quietly(record)
            raise
    return record


def _undo_quietly(record: ContainerRecord) -> None:
    """Undo a failed setup, keeping the original error the one the user sees."""
    try:
        _detach(record)
    except Exception as err:   # gc will finish the job; say so
        log.warning("mocker-net: could not undo the setup of %s (%s); run `mocker-net gc`",
                    record.id, err)


def _inode(netns: str) -> int:
    try:
        return os.stat(netns).st_ino
    except OSError as err:
        raise NotFound(f"network namespace {netns} does not exist ({err.strerror})")


def _check_own_namespace(netns: str) -> None:
    if os.stat(netns).st_ino == os.stat("/proc/self/ns/net").st_ino:
        raise MockerError("bridge mode needs the container in a network namespace of its own "
                          "(add a 'network' namespace to config.json, or use --network host)")


def _check_ports_free(ports: list[PortMapping]) -> None:
    for record in store.all_records():
        for published in map(parse_port, record.ports):
            for wanted in ports:
                if wanted.clashes_with(published):
                    raise Conflict(f"host port {wanted.host_port}/{wanted.protocol} is already "
                                   f"published by container {record.id}")
    for wanted in ports:
        check_not_listening(wanted)


def _ensure_network(net: NetConfig) -> None:
    saved = store.read_map("networks", net.bridge)
    if not saved or not links.link_exists(net.bridge):
        config.check_no_overlap(net)
    links.ensure_bridge(net.bridge, ipaddress.IPv4Interface(f"{net.gateway}/{net.subnet.prefixlen}"),
                        net.mtu)
    if not saved:
        store.write_map("networks", net.bridge, {"bridge": net.bridge, "subnet": str(net.subnet),
                                                 "gateway": str(net.gateway), "mtu": net.mtu,
                                                 "table": net.table})


def _lease(net: NetConfig, record: ContainerRecord) -> None:
    address = ipam.allocate(net, record.id)
    record.bridge, record.subnet, record.gateway = net.bridge, str(net.subnet), str(net.gateway)
    record.address, record.mac, record.mtu = str(address), ipam.mac_for(address), net.mtu
    record.host_ifname = host_ifname(net, record.id)


def _attach(net: NetConfig, att: Attachment, record: ContainerRecord) -> None:
    if att.mode == "bridge":
        links.add_veth(net.bridge, record.host_ifname, att.netns, att.ifname, record.mac, net.mtu)
        links.configure_container_side(
            att.netns, att.ifname,
            ipaddress.IPv4Interface(f"{record.address}/{net.subnet.prefixlen}"), net.gateway)
        if att.ports:
            nat.apply(net, _forwards(net.bridge))
        else:
            _ensure_table(net)
    elif att.mode == "none":
        links.loopback_up(att.netns)
    if att.rootfs is not None:
        etcfiles.write_etc_files(att.rootfs, att.hostname, record.address, net.dns)


def _ensure_table(net: NetConfig) -> None:
    """The masquerade rules exist as soon as one container is on the bridge."""
    if not nat.list_table(net):
        nat.apply(net, _forwards(net.bridge))


def _forwards(bridge: str, without: str = "") -> list[nat.Forward]:
    return [nat.Forward(r.id, r.address, parse_port(p))
            for r in store.all_records()
            if r.bridge == bridge and r.address and r.id != without for p in r.ports]


def _record_network(record: ContainerRecord) -> NetConfig:
    return NetConfig(record.bridge, ipaddress.IPv4Network(record.subnet), record.mtu)


def _detach(record: ContainerRecord) -> None:
    """Undo setup from the record alone; each step is idempotent. Caller holds the lock."""
    if record.host_ifname:
        links.delete_link(record.host_ifname)
    if record.ports and record.bridge:
        nat.apply(_record_network(record), _forwards(record.bridge, without=record.id))
    if record.bridge:
        ipam.release(record.bridge, record.id)
    store.delete_record(record.id)


def teardown(container_id: str) -> bool:
    """Detach a container; True if there was something to undo. Safe to repeat."""
    store.check_id(container_id)
    with store.lock():
        record = store.load_record(container_id)
        if record is None:
            return False
        _detach(record)
        return True


def _reclaim_dead() -> list[str]:
    """Detach containers whose namespace is gone, and drop leases nobody records."""
    reclaimed = []
    for record in store.all_records():
        if not record.is_alive():
            log.info("# reclaiming %s: its network namespace is gone", record.id)
            _detach(record)
            reclaimed.append(record.id)
    known = {r.id for r in store.all_records()}
    for bridge in store.map_names("leases"):
        for holder in set(store.read_map("leases", bridge).values()) - known:
            ipam.release(bridge, holder)
            reclaimed.append(holder)
    return reclaimed


def gc() -> list[str]:
    """`mocker-net gc`: clean up after containers that died without a teardown."""
    with store.lock():
        return _reclaim_dead()


def prune(net: NetConfig) -> bool:
    """Remove a bridge, its table and its records, if no container uses it."""
    with store.lock():
        _reclaim_dead()
        users = [r.id for r in store.all_records() if r.bridge == net.bridge]
        if users:
            raise Conflict(f"bridge {net.bridge} is in use by {', '.join(users)}")
        existed = links.link_exists(net.bridge) or bool(store.read_map("networks", net.bridge))
        links.delete_link(net.bridge)
        with contextlib.suppress(MockerError):
            nat.delete_table(net)
        store.delete_map("networks", net.bridge)
        store.delete_map("leases", net.bridge)
        return existed


def check(container_id: str) -> ContainerRecord:
    """CNI CHECK: is the container still attached as setup left it?"""
    record = store.load_record(container_id)
    if record is None:
        raise NotFound(f"container {container_id} is not attached to a network")
    if not record.is_alive():
        raise NotFound(f"the network namespace of {container_id} is gone")
    if record.mode == "bridge":
        cidr = f"{record.address}/{ipaddress.IPv4Network(record.subnet).prefixlen}"
        if not links.link_exists(record.host_ifname):
            raise MockerError(f"veth {record.host_ifname} of {container_id} is missing")
        if cidr not in links.container_addresses(record.netns, record.ifname):
            raise MockerError(f"{record.ifname} of {container_id} lacks its address {cidr}")
        if not links.has_default_route(record.netns, record.gateway):
            raise MockerError(f"{container_id} lacks its default route via {record.gateway}")
    return record


def find(container_id: str) -> ContainerRecord:
    record = store.load_record(store.check_id(container_id))
    if record is None:
        raise NotFound(f"no network record for container {container_id}")
    return record
