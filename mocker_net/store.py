"""What mocker-net remembers on disk, under mocker_common.paths.net_dir():

    lock                    flock held while leases, records or rules change
    networks/<bridge>.json  a bridge's subnet, gateway and MTU
    leases/<bridge>.json    address -> container id, the IPAM's leases
    containers/<id>.json    one record per attached container: everything
                            teardown needs after the container is gone

Teardown never asks the kernel what to remove: it reads the record written
at setup, so it works after the container's processes died with SIGKILL.
"""

import contextlib
import os
from pathlib import Path

from mocker_common import files, names, paths
from mocker_common.record import Record



class ContainerRecord(Record):
    id: str
    mode: str                     # bridge | none | host
    netns: str = ""               # path of the container's network namespace
    netns_inode: int = 0          # its inode, to tell it from a later one at the same path
    bridge: str = ""
    subnet: str = ""
    gateway: str = ""
    address: str = ""             # e.g. 10.0.0.2 (bridge mode only)
    mac: str = ""
    mtu: int = 0
    host_ifname: str = ""         # the veth end on the bridge
    ifname: str = "eth0"          # the veth end in the container
    ports: list[str] = []
    hostname: str = ""
    caller: str = "hook"          # hook | cni

    @classmethod
    def from_dict(cls, data: dict) -> "ContainerRecord":
        return cls(**{k: v for k, v in data.items() if k in cls.fields()})

    def is_alive(self) -> bool:
        """Does the network namespace this record was made for still exist?

        A dead container's /proc/PID/ns/net is gone; a recycled PID points to
        another namespace, with another inode.
        """
        if not self.netns:
            return False
        try:
            return os.stat(self.netns).st_ino == self.netns_inode
        except OSError:
            return False


def check_id(container_id: str) -> str:
    """A container id names its record file: the CNI spec's rule for CNI_CONTAINERID."""
    return names.container_name(container_id, "container id")


def lock():
    """Serialise every change of leases, records and rules across processes."""
    return files.locked(paths.net_dir() / "lock")


def _containers() -> Path:
    return paths.net_dir() / "containers"


def load_record(container_id: str) -> ContainerRecord | None:
    try:
        return ContainerRecord.from_dict(files.read_json(_containers() / f"{check_id(container_id)}.json"))
    except FileNotFoundError:
        return None


def save_record(record: ContainerRecord) -> None:
    _containers().mkdir(parents=True, exist_ok=True)
    files.atomic_write_json(_containers() / f"{check_id(record.id)}.json", record.as_dict())


def delete_record(container_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_containers() / f"{check_id(container_id)}.json").unlink()


def all_records() -> list[ContainerRecord]:
    records = []
    for path in sorted(_containers().glob("*.json")):
        with contextlib.suppress(FileNotFoundError, ValueError):
            records.append(ContainerRecord.from_dict(files.read_json(path)))
    return records


def _json_map(kind: str, bridge: str) -> Path:
    return paths.net_dir() / kind / f"{bridge}.json"


def read_map(kind: str, bridge: str) -> dict:
    try:
        return files.read_json(_json_map(kind, bridge))
    except FileNotFoundError:
        return {}


def write_map(kind: str, bridge: str, data: dict) -> None:
    path = _json_map(kind, bridge)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_json(path, data)


def delete_map(kind: str, bridge: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _json_map(kind, bridge).unlink()


def map_names(kind: str) -> list[str]:
    """The bridges that have a networks/ or leases/ file."""
    return sorted(p.stem for p in (paths.net_dir() / kind).glob("*.json"))
