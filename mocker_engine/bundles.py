"""What the engine reads from, and adds to, a bundle's config.json.

mocker-bundle writes the bundle; the engine copies into its record what `ps`
and `inspect` show (command, ports, network, hostname, stop signal), and adds
what mocker-bundle has no option for (--init).
"""

import os

from mocker_common import contract
from mocker_common.errors import MockerError
from mocker_common.files import atomic_write_json, read_json

from . import records
from .records import Record

INIT_PATH = "/dev/init"   # on the container's /dev tmpfs: the image is not touched


def adopt_bundle(record: Record, bundle: str) -> Record:
    """Copy into the record what `ps` and `inspect` show from the bundle's config.json."""
    config = read_json(os.path.join(bundle, "config.json"))
    if record.init:
        config = add_init(bundle, config)
    notes = config.get("annotations") or {}
    return records.update(
        record.id, bundle=os.path.abspath(bundle),
        command=_user_command((config.get("process") or {}).get("args") or []),
        ports=[p for p in notes.get(contract.PORTS, "").split(",") if p],
        network=notes.get(contract.NETWORK, ""),
        hostname=notes.get(contract.HOSTNAME) or config.get("hostname", ""),
        stop_signal=record.stop_signal or notes.get(contract.STOP_SIGNAL, ""))


def _user_command(args: list) -> list:
    """The command as the user gave it, without --init's wrapper."""
    return args[2:] if args[:2] == [INIT_PATH, "--"] else args


def add_init(bundle: str, config: dict) -> dict:
    """--init: catatonit, bind-mounted from the host, becomes pid 1 and runs the
    command as its child; it forwards signals and reaps orphaned zombies."""
    import shutil  # only for --init
    init = shutil.which("catatonit") or shutil.which("tini")
    if not init:
        raise MockerError("--init needs catatonit or tini on the host (apt install catatonit)")
    process = config.setdefault("process", {})
    if process.get("args", [None])[0] == INIT_PATH:
        return config  # a restart: the bundle has it already
    config.setdefault("mounts", []).append(
        {"destination": INIT_PATH, "type": "bind", "source": os.path.realpath(init),
         "options": ["bind", "ro", "nosuid", "nodev"]})
    process["args"] = [INIT_PATH, "--", *process.get("args", [])]
    atomic_write_json(os.path.join(bundle, "config.json"), config)
    return config
