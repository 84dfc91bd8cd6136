"""The CNI plugin front door, over the same core as the runtime hook.

CNI spec 1.0.0 (SPEC.md, "Section 2: Execution Protocol"): the runtime runs the
plugin binary named by the config's "type" with CNI_COMMAND, CNI_CONTAINERID,
CNI_NETNS, CNI_IFNAME and CNI_PATH in the environment, and the network config
JSON on stdin. ADD prints a result JSON on stdout; DEL and CHECK print nothing
on success; every failure prints an error JSON on stdout and exits non-zero.

A config mocker-net understands:
    {"cniVersion": "1.0.0", "name": "mocker", "type": "mocker-net",
     "bridge": "mocker0", "subnet": "10.0.0.0/24", "mtu": 1500,
     "capabilities": {"portMappings": true}}
Port forwards come from runtimeConfig.portMappings, as the runtime fills them in.
"""

import json
import os
from pathlib import Path

from mocker_common import names
from mocker_common.contract import PortMapping, parse_ports
from mocker_common.errors import MockerError, NotFound

from . import core, etcfiles

SPEC_VERSION = "1.0.0"
SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

# Error codes of the CNI spec ("Error" in Section 5).
INCOMPATIBLE_VERSION, UNKNOWN_CONTAINER, INVALID_ENV, IO_FAILURE, DECODE_FAILURE, INVALID_CONFIG = 1, 3, 4, 5, 6, 7


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def _env(name: str, required: bool = True) -> str:
    value = os.environ.get(name, "")
    if required and not value:
        raise CniError(INVALID_ENV, f"{name} is not set")
    return value


def _checked_env(name: str, check) -> str:
    """A variable that becomes a file name or `ip` text: checked by its rule first."""
    try:
        return check(_env(name))
    except names.InvalidName as err:
        raise CniError(INVALID_ENV, f"{name}: {err}")


def _container_id() -> str:
    return _checked_env("CNI_CONTAINERID", lambda v: names.container_name(v, "container id"))


def _read_config(text: str) -> dict:
    try:
        conf = json.loads(text)
    except ValueError as err:
        raise CniError(DECODE_FAILURE, f"the network config on stdin is not JSON: {err}")
    if not isinstance(conf, dict):
        raise CniError(DECODE_FAILURE, "the network config on stdin is not a JSON object")
    version = conf.get("cniVersion", "")
    if version not in SUPPORTED:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {version!r} is not supported",
                       f"supported: {', '.join(SUPPORTED)}")
    if "name" in conf:   # CNI spec: the network's name, [A-Za-z0-9][A-Za-z0-9_.-]*
        try:
            names.container_name(conf["name"], "network name")
        except names.InvalidName as err:
            raise CniError(INVALID_CONFIG, str(err))
    return conf


def _network(conf: dict):
    try:
        return core.resolve_network(bridge=conf.get("bridge"), subnet=conf.get("subnet"),
                                    mtu=conf.get("mtu"))
    except MockerError as err:
        raise CniError(INVALID_CONFIG, str(err))


def _port_mappings(conf: dict) -> list[PortMapping]:
    found = (conf.get("runtimeConfig") or {}).get("portMappings") or []
    try:
        # The same checks as a `-p` spec: "[hostIP:]hostPort:containerPort/proto".
        return parse_ports(",".join(
            f"{p['hostIP'] + ':' if p.get('hostIP') else ''}{p['hostPort']}:{p['containerPort']}"
            f"/{p.get('protocol') or 'tcp'}" for p in found))
    except (KeyError, TypeError) as err:
        raise CniError(INVALID_CONFIG, f"bad runtimeConfig.portMappings: missing {err}")
    except MockerError as err:
        raise CniError(INVALID_CONFIG, f"bad runtimeConfig.portMappings: {err}")


def add(conf: dict) -> dict:
    net = _network(conf)
    record = core.setup(net, core.Attachment(
        id=_container_id(), netns=_env("CNI_NETNS"),
        ifname=_checked_env("CNI_IFNAME", names.interface_name),
        ports=_port_mappings(conf), caller="cni"))
    return result(conf["cniVersion"], record, net.subnet.prefixlen, net.dns)


def result(version: str, record, prefixlen: int, dns=()) -> dict:
    """The ADD result (CNI spec "Success" result): interfaces, ips, routes, dns."""
    ip = {"address": f"{record.address}/{prefixlen}", "gateway": record.gateway, "interface": 2}
    if version != SPEC_VERSION:
        ip["version"] = "4"     # 0.3.x/0.4.0 results name the IP version
    servers = etcfiles.resolv_conf(*etcfiles.read_host_resolv(), configured=dns)
    return {
        "cniVersion": version,
        "interfaces": [
            {"name": record.bridge, "mac": _mac(record.bridge)},
            {"name": record.host_ifname, "mac": _mac(record.host_ifname)},
            {"name": record.ifname, "mac": record.mac, "sandbox": record.netns},
        ],
        "ips": [ip],
        "routes": [{"dst": "0.0.0.0/0", "gw": record.gateway}],
        "dns": {"nameservers": [line.split()[1] for line in servers.splitlines()
                                if line.startswith("nameserver")]},
    }


def _mac(ifname: str) -> str:
    try:
        return Path(f"/sys/class/net/{ifname}/address").read_text().strip()
    except OSError:
        return ""


def run(stdin_text: str) -> dict | None:
    """Do what CNI_COMMAND says; return the JSON to print, if any."""
    command = _env("CNI_COMMAND")
    if command == "VERSION":
        return {"cniVersion": SPEC_VERSION, "supportedVersions": SUPPORTED}
    conf = _read_config(stdin_text)
    try:
        if command == "ADD":
            return add(conf)
        if command == "DEL":
            # DEL must succeed when there is nothing (left) to delete.
            core.teardown(_container_id())
            return None
        if command == "CHECK":
            core.check(_container_id())
            return None
    except NotFound as err:
        raise CniError(UNKNOWN_CONTAINER, str(err))
    except MockerError as err:
        raise CniError(IO_FAILURE, str(err))
    raise CniError(INVALID_ENV, f"unknown CNI_COMMAND {command!r}")


def main(stdin_text: str) -> int:
    """Run as a CNI plugin; errors become the spec's error JSON on stdout."""
    try:
        output = run(stdin_text)
    except CniError as err:
        error = {"cniVersion": SPEC_VERSION, "code": err.code, "msg": err.msg}
        if err.details:
            error["details"] = err.details
        print(json.dumps(error))
        return 1
    if output is not None:
        print(json.dumps(output, indent=2))
    return 0

