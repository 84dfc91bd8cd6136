"""How the engine calls the OCI runtime: mocker-runc by default.

Any runtime with runc's command line works (MOCKER_RUNTIME=runc), because the
bundles mocker-bundle writes are plain OCI bundles. The engine passes --root so
that runc and mocker-runc keep their state where mocker looks for it.
"""

import json
import logging
import os
import subprocess

from mocker_common import paths
from mocker_common.errors import MockerError

log = logging.getLogger("mocker")


def runtime() -> str:
    return os.environ.get("MOCKER_RUNTIME") or "mocker-runc"


def argv(*args: str) -> list[str]:
    """The runtime's command line for one verb, with mocker's state root."""
    return [runtime(), "--root", str(paths.runc_state_dir()), *args]


def run_argv(container_id: str, bundle: str, pid_file: str, log_file: str) -> list[str]:
    # runc run: create + start + wait; it deletes the container when it ends,
    # which runs the poststop hooks (mocker-net hook down). Its errors also go
    # to log_file as JSON lines, where the monitor reads why a start failed.
    command = argv("run", "--bundle", bundle, "--pid-file", pid_file, container_id)
    command[1:1] = ["--log", log_file, "--log-format", "json"]
    return command


def last_error(log_file: str) -> str:
    """The runtime's last error message in its --log file ("" if none)."""
    message = ""
    try:
        with open(log_file) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = str(entry.get("msg", ""))
    except FileNotFoundError:
        pass
    return message


def call(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """Run one runtime verb; its stderr is kept for the caller's error message."""
    command = argv(*args)
    log.info("+ %s", " ".join(command))
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and done.returncode != 0:
        message = done.stderr.strip().splitlines()
        raise MockerError(message[-1] if message else f"{runtime()} {args[0]} failed")
    return done


def kill(container_id: str, signal_name: str) -> None:
    call("kill", container_id, signal_name, check=True)


def delete(container_id: str) -> None:
    """Forget the container in the runtime (runs poststop hooks); fine if already gone."""
    done = call("delete", "--force", container_id)
    if done.returncode != 0:
        log.info("%s", done.stderr.strip())
