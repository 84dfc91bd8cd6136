"""runtime-spec config.md#posix-platform-hooks: run hooks with the state on stdin.

Which failures stop the container (runtime.md#lifecycle):
  prestart, createRuntime, createContainer, startContainer -> error: the runtime
      stops the container and goes on with delete (poststop hooks included);
  poststart, poststop -> a warning on stderr; the remaining hooks still run.
"""

import json
import os
import signal
import sys

from mocker_common.errors import MockerError

from . import narrate
from .spec import Hook

ABORTING = {"prestart", "createRuntime", "createContainer", "startContainer"}


class HookError(MockerError):
    pass


def run_hook(point: str, hook: Hook, state: dict, exe_fd: int | None = None) -> None:
    """Run one hook, feeding it the state JSON; raise HookError if it fails or times out.

    exe_fd: the sealed exec trampoline (trampoline.py), for a hook that is a file
    of the container's (startContainer): our fork must not execve it itself.
    """
    import subprocess  # only loaded when a bundle has hooks
    # Like runc, a hook without env gets the runtime's own environment.
    env = None if hook.env is None else dict(e.partition("=")[::2] for e in hook.env)
    what = f"{point} hook {hook.path}"
    narrate.say("hook %s: %s", point, " ".join([hook.path, *hook.args[1:]]))
    argv, executable, report = [hook.path, *hook.args[1:]], hook.path, None
    if exe_fd is not None:
        from . import linux, trampoline
        report, report_w = os.pipe()
        argv, executable = trampoline.argv(report_w, hook.path, argv), linux.fd_path(exe_fd)
    # Its own process group, so that a timeout kills what the hook started, too.
    try:
        proc = subprocess.Popen(argv, executable=executable, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                pass_fds=() if report is None else (exe_fd, report_w))
    except OSError as err:
        if report is not None:
            os.close(report)
        raise HookError(f"{what}: {err.strerror}") from None
    finally:
        if report is not None:
            os.close(report_w)
    try:
        _wait(proc, what, hook, state)
    finally:
        if report is not None:
            failed = trampoline.failure_errno(os.read(report, 4096))
            os.close(report)
            if failed:   # the trampoline could not execve the hook: say why, as before
                raise HookError(f"{what}: {os.strerror(failed)}")


def _wait(proc, what: str, hook: Hook, state: dict) -> None:
    import subprocess
    try:
        stdout, stderr = proc.communicate(json.dumps(state).encode(), timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise HookError(f"{what} timed out after {hook.timeout}s") from None
    if stdout:
        os.write(2, stdout)
    if narrate.on():   # the hook's own -v notes (mocker-net's ip and nft lines)
        for line in stderr.decode(errors="replace").splitlines():
            narrate.say("  %s", line)
    if proc.returncode != 0:
        detail = stderr.decode(errors="replace").strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        raise HookError(f"{what} exited with status {proc.returncode}{tail}")


def run_hooks(point: str, hooks: list[Hook], state: dict, exe_fd: int | None = None) -> None:
    """Run the hooks of one point in order, applying the spec's failure rule."""
    for hook in hooks:
        try:
            run_hook(point, hook, dict(state), exe_fd)
        except HookError as err:
            if point in ABORTING:
                raise
            print(f"mocker-runc: warning: {err}", file=sys.stderr)
