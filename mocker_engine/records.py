"""Container records: what `mocker ps` lists, kept as one JSON file per container.

A record lives in MOCKER_ROOT/engine/<id>/ beside the container's log and the
pid file the runtime writes. The bundle (rootfs, config.json) is mocker-bundle's
and lives elsewhere; the record only remembers its path. Names are unique: they
are reserved under a lock when the record is created.
"""

import contextlib
import json
import os
import re
import time
from pathlib import Path

from mocker_common import names, paths
from mocker_common.errors import Conflict, MockerError, NotFound
from mocker_common.files import atomic_write, locked, read_json
from mocker_common.record import FrozenRecord

from .names import generate_name

ID_RE = re.compile(r"^[0-9a-f]{64}$")
SHORT_ID = 12

CREATED, RUNNING, EXITED = "created", "running", "exited"
DEAD = "dead"   # docker's word: the record is unreadable; `rm` still removes what it had


class Record(FrozenRecord):
    """One container, as record.json keeps it. Never changed in place: update()
    writes a changed copy."""

    id: str
    name: str
    image: str
    created: float          # a time.time()
    bundle: str = ""
    auto_remove: bool = False
    interactive: bool = False
    tty: bool = False
    init: bool = False          # --init: a reaper as pid 1
    stop_signal: str = ""       # --stop-signal; else the image's; else SIGTERM
    command: tuple = ()         # the process's args
    ports: tuple = ()           # "[ip:]host:ctr[/proto]"
    network: str = ""
    hostname: str = ""
    status: str = CREATED
    started: float = 0.0
    finished: float = 0.0
    exit_code: int | None = None    # an int once it exited
    monitor_pid: int = 0
    monitor_start: str = ""     # the monitor's start time, against pid reuse

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]


def engine_dir() -> Path:
    return paths.engine_dir()


def record_dir(container_id: str) -> Path:
    return engine_dir() / container_id


def log_path(container_id: str) -> Path:
    return record_dir(container_id) / "container.log"


def pid_path(container_id: str) -> Path:
    """Where the runtime writes the container's pid (`mocker-runc run --pid-file`)."""
    return record_dir(container_id) / "container.pid"


def runtime_log_path(container_id: str) -> Path:
    """The runtime's own log (--log): why it failed to start the container."""
    return record_dir(container_id) / "runtime.log"


def _record_file(container_id: str) -> Path:
    return record_dir(container_id) / "record.json"


def load(container_id: str) -> Record:
    try:
        data = read_json(_record_file(container_id))
    except FileNotFoundError:
        raise NotFound(f"no such container: {container_id}") from None
    except ValueError:
        return _dead(container_id)
    try:
        return Record(**{k: v for k, v in data.items() if k in Record.fields()})
    except TypeError:       # not an object, or a given field missing
        return _dead(container_id)


def _dead(container_id: str) -> Record:
    """A record cut short (saves are renames without fsync: a crash can leave an
    empty file). Shown by `ps -a` as Dead, not hidden, so that `rm` can remove its
    bundle (and overlay mount) from their default place instead of leaking them."""
    created = os.stat(record_dir(container_id)).st_mtime
    return Record(id=container_id, name=container_id[:SHORT_ID], image="", created=created,
                  bundle=str(paths.containers_dir() / container_id), status=DEAD)


def save(record: Record) -> None:
    """Write the record whole (rename). Without fsync: `mocker run` writes it four
    times, and a sync each is felt; a record that a crash left empty is loaded as
    dead (see _dead), not lost. Callers hold a lock."""
    data = json.dumps(record.as_dict(), indent=2).encode() + b"\n"
    atomic_write(_record_file(record.id), data, durable=False)


def update(container_id: str, **changes) -> Record:
    """Change some fields of a record, under the container's lock."""
    with locked(record_dir(container_id) / ".lock"):
        record = load(container_id)
        record = record.replace(**changes)
        save(record)
    return record


def all_records() -> list[Record]:
    """Every container, newest first (as `docker ps` lists them)."""
    records = []
    base = engine_dir()
    if base.is_dir():
        for entry in os.scandir(base):
            if entry.is_dir() and not entry.name.startswith("."):
                try:
                    records.append(load(entry.name))
                except NotFound:
                    continue  # being created or removed right now
    return sorted(records, key=lambda r: r.created, reverse=True)


def create(image: str, name: str = "", container_id: str = "", **fields) -> Record:
    """A new record with a unique name (generated if empty) and the given 64-hex
    id (mocker-bundle's choice for the bundle), or a fresh one."""
    if name:
        names.container_name(name)   # Docker's rule for names
    if container_id and not ID_RE.fullmatch(container_id):
        raise MockerError(f"invalid container id {container_id!r}: expected 64 hex digits")
    engine_dir().mkdir(parents=True, exist_ok=True)
    with locked(engine_dir() / ".lock"):  # two runs cannot take the same name
        records = all_records()
        taken = {r.name for r in records}
        if name in taken:
            raise Conflict(f"the container name {name!r} is already in use; "
                           f"remove that container or choose another name")
        if container_id in {r.id for r in records}:
            raise Conflict(f"a container with id {container_id} exists already")
        record = Record(id=container_id or os.urandom(32).hex(), name=name or generate_name(taken),
                        image=image, created=time.time(), **fields)
        record_dir(record.id).mkdir()
        save(record)
    return record


def remove(container_id: str) -> None:
    # mocker-bundle's remover, loaded for --rm already; shutil would cost ~2 ms more.
    from mocker_bundle.rootdir import remove_tree
    with contextlib.suppress(OSError):
        remove_tree(record_dir(container_id))


def resolve(ref: str) -> Record:
    """The container a user means by a name, a full id or a unique id prefix."""
    records = all_records()
    for record in records:
        if ref in (record.name, record.id):
            return record
    matches = [r for r in records if ref and r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(r.name for r in matches)
        raise MockerError(f"{ref!r} is ambiguous: it matches {names}; give more of the id")
    raise NotFound(f"no such container: {ref}")
