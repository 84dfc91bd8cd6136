"""The runtime-hook front door: `mocker-net hook up` and `mocker-net hook down`.

runtime-spec (config.md, "POSIX-platform Hooks"): a hook gets the container's
state JSON on stdin: ociVersion, id, status, pid, bundle, annotations.
- createRuntime runs after the namespaces exist, before pivot_root: the init
  process (pid) already sits in its own network namespace, /proc/PID/ns/net,
  and the rootfs can still be written from the host.
- poststop runs after the container's processes are gone: teardown uses only
  the record saved at setup.

Annotations read (from the state, else from the bundle's config.json):
    org.mocker.network   bridge (default) | none | host
    org.mocker.ports     comma-separated [hostIP:]hostPort:containerPort[/tcp|udp]
    org.mocker.hostname  the container's hostname (else config.json's hostname)
"""

import json
from pathlib import Path

from mocker_common import files, names
from mocker_common.contract import HOSTNAME, NETWORK, PORTS, parse_ports
from mocker_common.errors import MockerError

from . import core
from .config import NetConfig


def read_state(text: str) -> dict:
    try:
        state = json.loads(text)
    except ValueError as err:
        raise MockerError(f"the hook's stdin is not a runtime-spec state JSON: {err}")
    if not isinstance(state, dict) or not state.get("id"):
        raise MockerError("the hook's stdin is not a runtime-spec state JSON: no \"id\"")
    return state


def _bundle_config(state: dict) -> dict:
    bundle = state.get("bundle")
    if not bundle:
        return {}
    try:
        return files.read_json(Path(bundle) / "config.json")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise MockerError(f"cannot read {bundle}/config.json: {err}")


def attachment(state: dict) -> core.Attachment:
    """Turn a runtime state (and its bundle's config.json) into what core.setup wants."""
    spec = _bundle_config(state)
    annotations = {**(spec.get("annotations") or {}), **(state.get("annotations") or {})}
    pid = state.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise MockerError(f"the state of {state['id']} has no pid: is this a createRuntime hook?")
    root = (spec.get("root") or {}).get("path")
    rootfs = Path(state["bundle"], root) if root else None
    return core.Attachment(
        id=state["id"],
        netns=f"/proc/{pid}/ns/net",
        mode=annotations.get(NETWORK) or "bridge",
        ports=parse_ports(annotations.get(PORTS)),
        hostname=_hostname(annotations.get(HOSTNAME) or spec.get("hostname"), state["id"]),
        rootfs=rootfs,
    )


def _hostname(given: str | None, container_id: str) -> str:
    """The name written into the container's /etc/hosts and /etc/hostname: a given one
    must be a hostname (RFC 1123), or a newline in it would add lines of its own."""
    if given:
        return names.hostname(given)
    return core.store.check_id(container_id)[:12]


def up(net: NetConfig, stdin_text: str) -> None:
    core.setup(net, attachment(read_state(stdin_text)))


def down(stdin_text: str) -> None:
    core.teardown(read_state(stdin_text)["id"])
