"""The per-container monitor, mocker's containerd-shim (or podman's conmon).

It runs `mocker-runc run --bundle B ID` as its child and waits for it: the
runtime creates and starts the container, waits for its init, deletes it (the
poststop hooks take the network down) and exits with the container's status.
The monitor records that status and time, and removes the container for --rm.

- attach: in the foreground, the container's stdio are mocker's own.
- detach: the monitor leaves the terminal (fork, setsid, fork), sends the
  container's output to a log file, and tells the waiting `mocker run -d`
  whether the container started.

Its process name is "mocker monitor" (see `ps -e`, `pgrep 'mocker monitor'`).
"""

import os
import select
import signal
import subprocess
import sys
import time

from mocker_common import contract, notes
from mocker_common.errors import MockerError

from . import lifecycle, procs, records, runtime
from .records import EXITED, RUNNING, Record
from .runtime import LOGGER

TITLE = "mocker monitor"
# Signals a monitor passes on to the runtime (which passes them to the container).
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
# Signals the terminal sends to the whole foreground group, runtime included:
# the monitor only has to survive them, to record the end.
FROM_TERMINAL = (signal.SIGINT, signal.SIGQUIT)
START_TIMEOUT = 60.0
COPY_CHUNK = 1 << 16


def _spawn(record: Record, stdin, stdout, stderr, own_group: bool = False) -> subprocess.Popen:
    """Start `mocker-runc run`; own_group: in a process group of its own."""
    pid_file = records.pid_path(record.id)
    pid_file.unlink(missing_ok=True)
    runtime_log = records.runtime_log_path(record.id)
    runtime_log.unlink(missing_ok=True)
    command = runtime.run_argv(record.id, record.bundle, str(pid_file), str(runtime_log))
    notes.info(LOGGER, "+ %s", runtime.shown(command))
    env, narration = runtime.environment(), ()
    if os.environ.get("MOCKER_VERBOSE", "0") not in ("", "0"):
        # mocker -v: the runtime says its steps on our stderr, not on its own,
        # which is the container's and goes to its log (mocker_runc/narrate.py).
        narration = (os.dup(2),)
        env = {**(env or os.environ), "MOCKER_NARRATE_FD": str(narration[0])}
    try:
        child = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr,
                                 process_group=0 if own_group else None,
                                 env=env, pass_fds=narration)
    except FileNotFoundError:
        raise MockerError(f"the runtime {runtime.runtime()} is not installed (MOCKER_RUNTIME)") from None
    finally:
        for fd in narration:
            os.close(fd)
    records.update(record.id, status=RUNNING, started=time.time(), finished=0.0,
                   exit_code=None, monitor_pid=os.getpid(),
                   monitor_start=procs.start_time(os.getpid()))
    if record.auto_remove:
        # --rm: load the bundle remover now, while the runtime starts the
        # container, not after it ends, when the user waits for the teardown.
        lifecycle.preload_remover()
    return child


def _pass_signals(child: subprocess.Popen, terminal_shared: bool) -> None:
    """Signals sent to mocker go to the runtime, which passes them to the container.

    When the runtime shares our terminal's process group, the terminal's own
    signals (Ctrl-C) reach it directly: passing them on too would double them,
    so the monitor only survives them, to record the end.
    """
    passed = FORWARDED if terminal_shared else FORWARDED + FROM_TERMINAL
    for signum in passed:
        signal.signal(signum, lambda num, _frame: child.send_signal(num))
    if terminal_shared:
        for signum in FROM_TERMINAL:
            # A Python handler, not SIG_IGN: an ignored signal would stay ignored
            # in processes started later; a handled one is reset by exec.
            signal.signal(signum, lambda num, _frame: None)


def _started(record: Record) -> bool:
    """The runtime writes the pid file only once the container's process runs."""
    return records.pid_path(record.id).exists()


def start_failure_code(message: str) -> int:
    """Docker's codes for a process that could not be started: 127 when the
    executable is missing, 126 when it cannot be executed, 125 otherwise."""
    lowered = message.lower()
    if "exec" in lowered:
        if "permission denied" in lowered or "exec format error" in lowered:
            return contract.CANNOT_INVOKE
        if "not found" in lowered or "no such file" in lowered:
            return contract.COMMAND_NOT_FOUND
    return contract.RUN_FAILED


def _finish(record: Record, status: int) -> int:
    """Record the end; remove the container for --rm; return mocker's exit code."""
    code = status if status >= 0 else 128 - status  # killed by a signal: 128+N
    error = runtime.last_error(records.runtime_log_path(record.id))
    if error or not _started(record):  # the runtime failed: the container never ran
        code = start_failure_code(error)
    record = records.update(record.id, status=EXITED, exit_code=code,
                            finished=time.time(), monitor_pid=0)
    if record.auto_remove:
        # `mocker-runc run` has deleted it in the runtime already.
        lifecycle.teardown(record, delete_in_runtime=False)
    return code


def attach(record: Record) -> int:
    """Run the container in the foreground; return its exit code."""
    procs.set_title(TITLE)
    # With -i or -t the container reads our terminal, so it must stay in the
    # terminal's foreground process group. Otherwise it gets a group of its own,
    # and Ctrl-C reaches it once, through the runtime, as docker's sig-proxy does.
    terminal_shared = record.interactive or record.tty
    stdin = None if terminal_shared else subprocess.DEVNULL
    if record.tty:  # the runtime copies between our terminal and the container's
        child = _spawn(record, stdin, None, None, own_group=False)
        _pass_signals(child, terminal_shared)
        return _finish(record, child.wait())
    # Without a terminal, the output passes through the monitor into the log
    # too, so that `mocker logs` shows it later, as docker's does.
    child = _spawn(record, stdin, subprocess.PIPE, subprocess.PIPE,
                   own_group=not terminal_shared)
    _pass_signals(child, terminal_shared)
    with open(records.log_path(record.id), "ab") as logfile:
        _copy_output(child, logfile.fileno())
    return _finish(record, child.wait())


def _copy_output(child: subprocess.Popen, log_fd: int) -> None:
    """Copy the runtime's stdout and stderr to ours, and both to the log, until both end."""
    targets = {child.stdout.fileno(): sys.stdout.fileno(), child.stderr.fileno(): sys.stderr.fileno()}
    while targets:
        ready, _, _ = select.select(list(targets), [], [])
        for source in ready:
            data = os.read(source, COPY_CHUNK)
            if not data:
                del targets[source]
                continue
            os.write(log_fd, data)
            if targets[source] >= 0:
                try:
                    _write_all(targets[source], data)
                except BrokenPipeError:
                    targets[source] = -1  # our reader left (| head): keep logging
    child.stdout.close()
    child.stderr.close()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _wait_started(record: Record, child: subprocess.Popen) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while child.poll() is None and time.monotonic() < deadline:
        if _started(record):
            return True
        time.sleep(0.005)
    return _started(record)


def _daemonize(record: Record) -> None:
    """Leave the caller's session and terminal, as daemons do (double fork)."""
    os.setsid()
    if os.fork():
        os._exit(0)
    procs.set_title(TITLE)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    monitor_log = os.open(records.record_dir(record.id) / "monitor.log",
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(monitor_log, 2)


def _monitor_detached(record: Record, report: int) -> None:
    """In the daemon: start the container, report to the caller, wait, record."""
    output = os.open(records.log_path(record.id),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    child = _spawn(record, subprocess.DEVNULL, output, output)
    _pass_signals(child, terminal_shared=False)
    os.close(output)
    if _wait_started(record, child):
        os.write(report, b"started\n")
        os.close(report)
        _finish(record, child.wait())
        return
    status = child.wait()
    message = runtime.last_error(records.runtime_log_path(record.id))
    if not message:
        lines = records.log_path(record.id).read_text(errors="replace").strip().splitlines()
        message = lines[-1] if lines else "the runtime failed to start it"
    code = _finish(record, status)  # before the report: --rm is done when mocker returns
    os.write(report, f"{code} {message}\n".encode())
    os.close(report)


def detach(record: Record, print_id: bool = True) -> int:
    """Start the container in the background; return once it runs (or failed)."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 0
        try:
            _daemonize(record)
            _monitor_detached(record, write_end)
        except BaseException:  # noqa: BLE001 - a daemon has nobody to raise to
            import logging  # its stderr is monitor.log
            logging.getLogger(LOGGER).exception("monitor of %s failed", record.id)
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode(errors="replace").strip()
    os.waitpid(pid, 0)  # the first child exits at once (double fork)
    if answer == "started":
        if print_id:
            print(record.id)
        return 0
    code, _, message = answer.partition(" ")
    print(f"mocker: container {record.name} did not start: "
          f"{message or 'its monitor failed'}", file=sys.stderr)
    return int(code) if code.isdigit() else contract.RUN_FAILED


def start(record: Record) -> int:
    """`mocker start`: run an existing container again, under a new detached monitor."""
    if lifecycle.is_running(record):
        return 0
    record = records.load(record.id)
    if record.exit_code == lifecycle.LOST_EXIT:
        runtime.delete(record.id)  # nobody deleted it when it ended
    lifecycle.mount_rootfs(record)
    return detach(record, print_id=False)
