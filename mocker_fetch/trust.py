"""How far a registry is trusted, read from where Docker's and podman's users
already set it up:

    /etc/docker/certs.d/HOST[:PORT]/       Docker's per-registry TLS files
    /etc/containers/certs.d/HOST[:PORT]/   podman's and skopeo's (both are read)
        *.crt                   CAs trusted for this registry, beside the system's
        NAME.cert + NAME.key    a client certificate, for registries that ask for one
    /etc/containers/registries.conf        [[registry]] location = "HOST" ... insecure = true
                                           (or $CONTAINERS_REGISTRIES_CONF, as podman reads)
    /etc/docker/daemon.json                "insecure-registries": ["HOST:PORT", "10.0.0.0/8"]
    $MOCKER_ROOT/config.json               the same key, for mocker alone

An insecure registry may answer over plain HTTP, or HTTPS with any certificate;
loopback registries (127.0.0.0/8, ::1, localhost) always are, as in Docker.

$MOCKER_ETC moves the /etc these are read under (the tests point it at a
temporary directory, never writing the real /etc).
"""

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from mocker_common import paths
from mocker_common.errors import MockerError
from mocker_common.record import FrozenRecord

ETC_ENV = "MOCKER_ETC"
CERTS_DIRS = ("docker/certs.d", "containers/certs.d")


class TLSFiles(FrozenRecord):
    cas: tuple[Path, ...] = ()                  # *.crt
    client: tuple[Path, Path] | None = None     # (cert, key)


def etc() -> Path:
    return Path(os.environ.get(ETC_ENV) or "/etc")


def certs_dirs(host: str) -> list[Path]:
    """The certs.d directories that would hold host's files (host as in the image name)."""
    return [etc() / d / host for d in CERTS_DIRS]


def tls_files(host: str) -> TLSFiles:
    """host's CAs and client certificate from every certs.d directory that has them."""
    cas, clients = [], []
    for directory in certs_dirs(host):
        try:
            names = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as err:
            raise MockerError(f"cannot read {directory}: {err.strerror}") from None
        for name in names:
            path = directory / name
            if name.endswith(".crt"):
                cas.append(path)
            elif name.endswith(".cert"):
                key = path.with_suffix(".key")
                if not key.exists():
                    raise MockerError(f"{path} has no key beside it (want {key.name})")
                clients.append((path, key))
            elif name.endswith(".key") and not path.with_suffix(".cert").exists():
                raise MockerError(f"{path} has no certificate beside it "
                                  f"(want {path.with_suffix('.cert').name})")
    return TLSFiles(tuple(cas), clients[0] if clients else None)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: Docker lets these speak plain HTTP."""
    hostname = urlsplit(f"//{host}").hostname or ""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def is_insecure(host: str) -> bool:
    """May host skip TLS verification: loopback, or named insecure in the configuration?"""
    if is_loopback(host):
        return True
    return _registries_conf_insecure(host) or _daemon_json_insecure(host)


# -- registries.conf (containers-registries.conf(5), version 2) --------------------------

def registries_conf() -> Path:
    return Path(os.environ.get("CONTAINERS_REGISTRIES_CONF")
                or etc() / "containers" / "registries.conf")


def _registries_conf_insecure(host: str) -> bool:
    """Does registries.conf mark host insecure?"""
    path = registries_conf()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as err:
        raise MockerError(f"cannot read {path}: {err.strerror}") from None
    import tomllib
    try:
        config = tomllib.loads(data.decode())
    except (ValueError, UnicodeDecodeError) as err:
        raise MockerError(f"{path} is not valid TOML: {err}") from None
    # The location that matches most closely decides, as in containers/image:
    # the longest one that is host itself, host/namespace, or a *.domain wildcard.
    best, insecure = -1, False
    for entry in config.get("registry", []) if isinstance(config, dict) else []:
        if not isinstance(entry, dict):
            continue
        location = str(entry.get("location") or entry.get("prefix") or "")
        if _location_matches(location, host) and len(location) > best:
            best, insecure = len(location), entry.get("insecure") is True
    # The version 1 format: [registries.insecure] registries = ["host", ...]
    v1 = config.get("registries", {}).get("insecure", {}) if isinstance(
        config.get("registries"), dict) else {}
    if isinstance(v1, dict) and host in (v1.get("registries") or []):
        insecure = True
    return insecure


def _location_matches(location: str, host: str) -> bool:
    registry = location.split("/", 1)[0]
    if registry.startswith("*."):
        return host.endswith(registry[1:])
    return registry == host


# -- daemon.json ------------------------------------------------------------------------

def _daemon_json_insecure(host: str) -> bool:
    """Is host among "insecure-registries" (by name, or its address by CIDR)?"""
    entries = []
    for path in (etc() / "docker" / "daemon.json", paths.root() / "config.json"):
        entries += _insecure_entries(path)
    if not entries:
        return False
    if host in entries:
        return True
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return bool(networks) and any(ip in net for ip in _addresses(host) for net in networks
                                  if ip.version == net.version)


def _insecure_entries(path: Path) -> list[str]:
    from mocker_common.files import read_json
    try:
        config = read_json(path)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise MockerError(f"cannot read {path}: {err}") from None
    entries = config.get("insecure-registries", []) if isinstance(config, dict) else []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise MockerError(f"{path}: insecure-registries must be a list of strings")
    # Docker accepts "http://host:port" there too, and strips the scheme.
    return [e.split("://", 1)[-1].rstrip("/") for e in entries]


def _addresses(host: str) -> list:
    """host's IP addresses: itself if it is one, else what it resolves to (as Docker does)."""
    hostname = urlsplit(f"//{host}").hostname or host
    try:
        return [ipaddress.ip_address(hostname)]
    except ValueError:
        pass
    import socket
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


# -- for error messages -----------------------------------------------------------------

def certificate_hint(host: str, reason: str) -> str:
    """What would fix a failed verification of host's certificate, in a few words."""
    docker_dir, containers_dir = certs_dirs(host)
    lowered = reason.lower()
    if "certificate required" in lowered:
        return (f"if it wants a client certificate, put client.cert and client.key in "
                f"{docker_dir}/ (or {containers_dir}/)")
    if "hostname mismatch" in lowered or "ip address mismatch" in lowered:
        return f"its certificate is for another name than {host}"
    return f"to trust its CA, put it in {docker_dir}/ca.crt (or {containers_dir}/ca.crt)"
