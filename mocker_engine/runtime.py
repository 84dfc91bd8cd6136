"""How the engine calls the OCI runtime: mocker-runc by default.

Any runtime with runc's command line works (MOCKER_RUNTIME=runc), because the
bundles mocker-bundle writes are plain OCI bundles. The engine passes --root so
that runc and mocker-runc keep their state where mocker looks for it.
"""

import json
import os
import subprocess
import sys

from mocker_common import notes, paths
from mocker_common.errors import MockerError

LOGGER = "mocker"   # -v notes: mocker_common.notes, or logging once set up


def runtime() -> str:
    return os.environ.get("MOCKER_RUNTIME") or "mocker-runc"


def _program() -> list[str]:
    """How to start the runtime. mocker-runc is this package's own command, so
    the engine starts it as `python -m mocker_runc`, with its own interpreter
    and its own -S (see environment()). Another runtime is run by name."""
    if runtime() != "mocker-runc":
        return [runtime()]
    # -P: not from the current directory (the user's), which `-m` would search first.
    return [sys.executable, "-P", *(["-S"] if sys.flags.no_site else []), "-m", "mocker_runc"]


def environment() -> dict | None:
    """The runtime's environment: ours, except that a runtime started with -S
    (the engine runs from a checkout without site: site's .pth files cost
    ~35 ms per process on a host with many) gets site-packages, where cgroupspy
    lives, on PYTHONPATH instead. None: ours, unchanged."""
    if runtime() != "mocker-runc" or not sys.flags.no_site:
        return None
    import site  # not run under -S, only its functions: lighter than sysconfig (~3 ms)
    extra = site.getsitepackages()
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    path += [p for p in dict.fromkeys(extra) if p not in path]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def argv(*args: str) -> list[str]:
    """The runtime's command line for one verb, with mocker's state root."""
    return [*_program(), "--root", str(paths.runc_state_dir()), *args]


def shown(command: list[str]) -> str:
    """A runtime command line as a user would type it: `mocker-runc ...`."""
    return " ".join([runtime(), *command[len(_program()):]])


def run_argv(container_id: str, bundle: str, pid_file: str, log_file: str) -> list[str]:
    # runc run: create + start + wait; it deletes the container when it ends,
    # which runs the poststop hooks (mocker-net hook down). Its errors also go
    # to log_file as JSON lines, where the monitor reads why a start failed.
    command = argv("run", "--bundle", bundle, "--pid-file", pid_file, container_id)
    where = len(_program())
    command[where:where] = ["--log", log_file, "--log-format", "json"]
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
    notes.info(LOGGER, "+ %s", shown(command))
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=environment())
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
        notes.info(LOGGER, "%s", done.stderr.strip())
