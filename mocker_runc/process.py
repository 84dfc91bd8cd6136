"""The last steps before the container's program runs (runtime-spec config.md#process).

Order matters, as in runc:
  rlimits, oom_score_adj   while we are still root with all capabilities
  bounding set             dropped while CAP_SETPCAP is still ours
  user and groups          with keep-caps, so the permitted set survives setuid
  capset, ambient          the five sets exactly as config.json says
  umask, cwd               then no_new_privs, seccomp, execve
The seccomp filter goes in before the user and capabilities change when
noNewPrivileges is off (the kernel then wants CAP_SYS_ADMIN to load it).
"""

import os
import resource
import signal

from mocker_common.errors import MockerError

from . import linux, trampoline
from .spec import Capabilities, Process

# host caps of this process, read once: can we raise a hard rlimit?
_CAP_SYS_RESOURCE = 24


class ProcessError(MockerError):
    pass


def check_rlimits(process: Process) -> None:
    """Fail early and clearly on a hard limit above the host's: only CAP_SYS_RESOURCE could."""
    if _have_cap(_CAP_SYS_RESOURCE):
        return
    for rl in process.rlimits:
        host_soft, host_hard = resource.getrlimit(rl.resource)
        if host_hard != resource.RLIM_INFINITY and (rl.hard > host_hard or rl.hard < 0):
            raise ProcessError(
                f"{rl.name}: hard limit {rl.hard} is above the host's {host_hard} "
                f"(raising it needs CAP_SYS_RESOURCE, which this host does not grant)")
        if rl.soft > rl.hard:
            raise ProcessError(f"{rl.name}: soft limit {rl.soft} is above hard limit {rl.hard}")


def _have_cap(cap: int) -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << cap))
    return False


def lookup(process: Process) -> str:
    """The program to execve, found in the container's PATH (call after pivot_root)."""
    name = process.args[0]
    if "/" in name:
        candidates = [name if name.startswith("/") else os.path.join(process.cwd, name)]
    else:
        path = process.getenv("PATH", "/usr/local/bin:/usr/bin:/bin")
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if "/" in name:
        if os.path.exists(candidates[0]):
            # As runc and execve(2): a file that is there but cannot be run is EACCES.
            raise ProcessError(f'exec: "{name}": permission denied')
        raise ProcessError(f'exec: "{name}": stat {name}: no such file or directory')
    raise ProcessError(f'exec: "{name}": executable file not found in $PATH')


def set_limits(process: Process) -> None:
    for rl in process.rlimits:
        try:
            linux.setrlimit(rl.resource, rl.soft, rl.hard)
        except (OSError, ValueError) as err:
            raise ProcessError(f"setrlimit {rl.name}: {err}") from None
    if process.oom_score_adj is not None:
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(process.oom_score_adj))
        except OSError as err:
            raise ProcessError(f"oomScoreAdj {process.oom_score_adj}: {err.strerror}") from None


def become_user(process: Process) -> None:
    """Switch to process.user and set the capability sets (config.md#linux-process).

    No process.capabilities means no capabilities at all, as under runc: a
    config must ask for each one (fail closed)."""
    caps = process.capabilities or Capabilities()
    try:
        linux.drop_bounding(caps.bounding)
        linux.keep_caps(True)
        linux.set_user(process.uid, process.gid, process.additional_gids)
        linux.set_dumpable(False)   # a change of user resets it to fs.suid_dumpable
        linux.keep_caps(False)
        linux.capset(caps.effective, caps.permitted, caps.inheritable)
        if caps.ambient:
            linux.raise_ambient(caps.ambient & caps.permitted & caps.inheritable)
    except OSError as err:
        raise ProcessError(f"set user {process.uid}:{process.gid} and capabilities: "
                           f"{err.strerror}") from None
    if process.umask is not None:
        os.umask(int(process.umask))
    else:
        os.umask(0o022)
    try:
        os.chdir(process.cwd)
    except OSError as err:
        raise ProcessError(f"chdir to cwd {process.cwd!r} set in config.json: "
                           f"{err.strerror}") from None


def load_seccomp_if_privileged(process: Process, seccomp_filter):
    """Without no_new_privs, loading a seccomp filter needs CAP_SYS_ADMIN: load it
    now, before become_user drops capabilities (runc's order). Returns the filter
    still to load, just before execve (with no_new_privs), or None."""
    if process.no_new_privileges or seccomp_filter is None:
        return seccomp_filter
    seccomp_filter.load()
    return None


def lock_privileges(process: Process, seccomp_filter) -> None:
    """no_new_privs, then the seccomp filter if still to load: the last things before
    execve, so the filter need not allow the runtime's own remaining syscalls."""
    if process.no_new_privileges:
        linux.no_new_privs()
    if seccomp_filter is not None:
        seccomp_filter.load()


def home_of(uid: int) -> str:
    """The user's home from the container's /etc/passwd, "/" if it has none (as runc)."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def execute(program: str, process: Process, exe_fd: int, report_fd: int) -> None:
    """Become the program, through the sealed trampoline (trampoline.py): the last
    execve is made by a process whose /proc/self/exe cannot be written.

    report_fd learns why, if the trampoline's execve fails (trampoline.argv).
    """
    # execve keeps a signal "ignored": Python ignores SIGPIPE and SIGXFSZ, and a
    # runtime started in the background by a shell inherits SIGINT and SIGQUIT
    # ignored. The program starts with every signal at its default, as under runc
    # (whose Go runtime catches them all, and a caught signal is reset by execve):
    # else `yes | head -1` never ends by SIGPIPE, and Ctrl-C never reaches it.
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):   # glibc's own real-time signals
                pass
    env = dict(e.partition("=")[::2] for e in process.env)
    env.setdefault("HOME", home_of(process.uid))
    os.set_inheritable(report_fd, True)   # the trampoline closes it at its own execve
    try:
        linux.exec_fd(exe_fd, trampoline.argv(report_fd, program, process.args), env)
    except OSError as err:
        raise ProcessError(f'exec: "{program}": {err.strerror}') from None
