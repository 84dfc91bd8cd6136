"""What a user asks of a bundle (docker-run-like flags), parsed into plain values.

Pure functions: no I/O, so convert.py and its tests get exact, typed inputs.
"""

import re

from mocker_common.errors import MockerError
from mocker_common.record import FrozenRecord

from .profile import DEFAULT_NOFILE

NETWORK_MODES = ("bridge", "none", "host")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class Bind(FrozenRecord):
    """-v SOURCE:DESTINATION[:ro]"""

    source: str
    destination: str
    readonly: bool = False


class Device(FrozenRecord):
    """--device HOST[:CONTAINER][:PERMS], and what the host's node is (host_device fills it)."""

    host: str
    container: str
    access: str = "rwm"
    type: str = ""            # "c" or "b", from the host's node
    major: int = 0
    minor: int = 0
    mode: int = 0o666         # the node's permission bits
    uid: int = 0
    gid: int = 0


# FrozenRecords (mocker_common/record.py), not dataclasses or NamedTuples: their
# imports would cost every bundle 5-9 ms.
class BundleOptions(FrozenRecord):
    container_id: str
    command: list | tuple = ()                   # replaces the image's Cmd
    entrypoint: str | None = None                # None: the image's; "": none
    env: list | tuple = ()                       # KEY=VALUE, override the image's Env
    user: str | None = None
    workdir: str | None = None
    hostname: str | None = None
    tty: bool = False
    read_only: bool = False
    memory: int | None = None                    # bytes
    cpus: float | None = None
    pids_limit: int | None = None
    binds: list | tuple = ()                     # [Bind]
    network: str = "bridge"
    ports: list | tuple = ()                     # contract.PortMapping, from -p
    net_command: str | None = None               # absolute path of mocker-net (bridge mode)
    volumes_dir: str | None = None               # where the image's Volumes get directories
    seccomp: dict | None = None
    nofile: int = DEFAULT_NOFILE
    devices: list | tuple = ()                   # [Device], from host_device


def parse_memory(text: str) -> int:
    """"512m" -> 536870912 (docker's units: b, k, m, g, t; binary multiples)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmgt]?)b?", text.strip().lower())
    if not match:
        raise MockerError(f"invalid memory size {text!r} (e.g. 512m, 1g)")
    value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value < 6 << 20:
        raise MockerError(f"memory limit {text!r} is too small (at least 6m)")
    return value


def parse_cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise MockerError(f"invalid --cpus {text!r} (a positive number, e.g. 1.5)")
    return value


def parse_bind(text: str) -> Bind:
    """"/host:/ctr[:ro|rw]" -> Bind; both paths must be absolute."""
    parts = text.split(":")
    readonly = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        readonly = parts.pop() == "ro"
    if len(parts) != 2 or not parts[0].startswith("/") or not parts[1].startswith("/"):
        raise MockerError(f"invalid volume {text!r}: expected /host/path:/container/path[:ro]")
    return Bind(parts[0], parts[1], readonly)


def parse_env(items: list, environ: dict) -> list:
    """-e KEY=VALUE as given; -e KEY takes KEY's value from environ (skipped if unset)."""
    result = []
    for item in items:
        key, eq, _ = item.partition("=")
        if not key:
            raise MockerError(f"invalid environment variable {item!r}")
        if eq:
            result.append(item)
        elif key in environ:
            result.append(f"{key}={environ[key]}")
    return result


def parse_network(mode: str, ports: list) -> str:
    if mode not in NETWORK_MODES:
        raise MockerError(f"invalid --network {mode!r}: one of {', '.join(NETWORK_MODES)}")
    if ports and mode != "bridge":
        raise MockerError(f"port mappings need --network bridge (not {mode})")
    return mode


def parse_device(text: str) -> Device:
    """docker run's --device: HOST[:CONTAINER][:PERMS]; PERMS some of rwm (default all).

    A middle part made only of r, w and m is PERMS, as Docker reads it.
    """
    parts = text.split(":")
    access = "rwm"
    if len(parts) > 1 and parts[-1] and not set(parts[-1]) - set("rwm"):
        access = parts.pop()
    if len(parts) > 2 or not parts[0].startswith("/") or (len(parts) == 2 and not parts[1].startswith("/")):
        raise MockerError(f"invalid --device {text!r}: expected /host/path[:/container/path][:rwm]")
    return Device(parts[0], parts[-1], "".join(bit for bit in "rwm" if bit in access))
