"""stop, kill, start, restart, rm: what happens to a container after `run`.

The truth about a container is its monitor: while the monitor lives, the record
it keeps is right. A monitor can die (SIGKILL, OOM killer); then the container
may still run, and the record is corrected here from what /proc says.
"""

import os
import time
from pathlib import Path

from mocker_common import notes, paths
from mocker_common.errors import Conflict, MockerError

from . import procs, records, runtime
from .records import EXITED, RUNNING, Record
from .runtime import LOGGER

# The exit code recorded when nobody saw the container end (its monitor was
# killed first): docker reports the same 255 when it loses a shim.
LOST_EXIT = 255
POLL = 0.02
ENDING = 5.0   # seconds a monitor may take to record an end the runtime has seen


def refresh(record: Record) -> Record:
    """The record, corrected if its monitor died before recording the end."""
    if record.status != RUNNING or procs.alive(record.monitor_pid, record.monitor_start):
        return record
    if procs.alive(procs.read_pid(records.pid_path(record.id))):
        return record  # the monitor is gone, the container runs on
    current = records.load(record.id)
    if current.status != RUNNING or current.monitor_pid != record.monitor_pid:
        return current  # the monitor finished just now, or another one started
    return records.update(record.id, status=EXITED, exit_code=LOST_EXIT,
                          finished=time.time(), monitor_pid=0)


def is_running(record: Record) -> bool:
    return refresh(record).status == RUNNING


def wait_exit(record: Record, timeout: float) -> bool:
    """Wait until the container's end is recorded; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not is_running(records.load(record.id)):
                return True
        except MockerError:
            return True  # removed meanwhile (--rm)
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def _signal(record: Record, signal_name: str) -> None:
    """Send a signal through the runtime; a container that just ended is fine."""
    try:
        runtime.kill(record.id, signal_name)
    except MockerError:
        # The runtime forgets a container before its monitor records the end
        # (poststop hooks run in between): give the monitor a moment to do so.
        if not wait_exit(record, ENDING):
            raise


def kill(record: Record, signal_name: str = "KILL") -> None:
    if not is_running(record):
        raise Conflict(f"container {record.name} is not running")
    _signal(record, signal_name)


def stop(record: Record, timeout: float) -> None:
    """The stop signal, then SIGKILL after timeout seconds, as docker stop does."""
    if not is_running(record):
        return
    _signal(record, record.stop_signal or "TERM")
    if not wait_exit(record, timeout):
        notes.info(LOGGER, "container %s did not stop within %gs: SIGKILL", record.name, timeout)
        _signal(record, "KILL")
        wait_exit(record, 10)


def _wait_monitor_gone(record: Record, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while procs.alive(record.monitor_pid, record.monitor_start) and time.monotonic() < deadline:
        time.sleep(POLL)


def teardown(record: Record, delete_in_runtime: bool = True) -> None:
    """Remove everything the container has: runtime state, network, bundle, record."""
    if delete_in_runtime:
        runtime.delete(record.id)  # poststop hooks: mocker-net hook down
    # A container whose monitor never started has no bundle in its record yet:
    # mocker-bundle made it in its default place.
    bundle = record.bundle or str(paths.containers_dir() / record.id)
    if os.path.exists(bundle):
        try:
            remove_bundle(bundle)
        except MockerError as err:
            raise MockerError(f"cannot remove the bundle of {record.name}: {err}") from None
    records.remove(record.id)


def preload_remover() -> None:
    """Import mocker-bundle's remover ahead of remove_bundle() (a few ms)."""
    import mocker_bundle.remove  # noqa: F401


def remove_bundle(bundle: str) -> None:
    """`mocker-bundle --remove BUNDLE`, called as a function: the monitor of a
    `run --rm` does it on every run, and a new interpreter for it cost more
    (~50 ms) than importing mocker-bundle's remover here."""
    from mocker_bundle.remove import remove_bundle as remove
    notes.info(LOGGER, "+ mocker-bundle --remove %s", bundle)
    _bundle_call(remove, bundle)


def _bundle_call(function, bundle: str):
    """function(bundle), its OS errors as one-line mocker errors."""
    try:
        return function(Path(bundle))
    except OSError as err:
        raise MockerError(f"{err.strerror or err} ({err.filename})") from None


def remove(record: Record, force: bool = False) -> None:
    if is_running(record):
        if not force:
            raise Conflict(f"container {record.name} is running: stop it first, or use rm -f")
        _signal(record, "KILL")
        wait_exit(record, 10)
    _wait_monitor_gone(records.load(record.id))  # it may be removing (--rm) itself
    try:
        record = records.load(record.id)
    except MockerError:
        return  # the monitor's --rm did it
    teardown(record)


def mount_rootfs(record: Record) -> None:
    """`mocker-bundle --mount BUNDLE`, called as a function: after a reboot the
    bundle's overlay rootfs is gone (an empty directory); mount it again from
    the bundle's layer record, the container's own changes (upper/) kept."""
    from mocker_bundle.remount import mount_bundle
    bundle = record.bundle or str(paths.containers_dir() / record.id)
    if _bundle_call(mount_bundle, bundle):
        notes.info(LOGGER, "+ mocker-bundle --mount %s", bundle)
