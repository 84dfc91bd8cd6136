"""run and exec: the verbs that stay until the container's process exits.

run  = create + start + wait + delete (container.py does the first two and the last)
exec = a new process in a running container's namespaces and cgroup

While they wait they forward the signals a user sends (INT, TERM, HUP, QUIT,
USR1, USR2, WINCH), proxy the terminal if there is one, and finally exit with
the process's code, or 128 + the signal that killed it.
"""

import os
import signal

from . import init, linux, lsm, trampoline
from . import spec as specs
from .channel import Channel
from .container import (CreateOptions, NotRunning, cgroup_of, create, delete,
                        build_seccomp_filter, fork_in, hand_over_console, kill_and_wait, reap,
                        start, write_pid_file)
from mocker_common.record import Record
from .state import Store

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def exit_code(status: int) -> int:
    """The shell's convention: the exit code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


class SignalForwarder:
    """The signals a user sends us go to the container's process (runc does the same).

    Installed before anything is created: a signal that arrived while the
    container was being made would otherwise kill us half-way and leave it
    behind. Until the process runs, signals wait in a list. Processes we fork
    (the middle process, the init) get back the handlers they had before.
    """

    def __init__(self):
        self.pid = 0
        self.pending: list[int] = []
        self.before = {sig: signal.signal(sig, self._received) for sig in FORWARDED}
        os.register_at_fork(after_in_child=self._restore)

    def _received(self, signum, _frame):
        if self.pid:
            self._send(signum)
        else:
            self.pending.append(signum)

    def _send(self, signum):
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _restore(self):
        for sig, handler in self.before.items():
            signal.signal(sig, handler)

    def forward_to(self, pid: int) -> None:
        """From now on signals go to pid; so do those that came meanwhile."""
        self.pid = pid
        while self.pending:
            self._send(self.pending.pop(0))


def wait_for(pid: int, master: int | None) -> int:
    """Wait for pid (proxying its terminal, if any) to exit; its exit code."""
    if master is None:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                return exit_code(status)
            except InterruptedError:
                continue
    from .terminal import Proxy
    with Proxy(master) as proxy:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                while proxy.pump(0):   # drain what the container wrote last
                    pass
                return exit_code(status)
            if not proxy.pump(0.05):
                _, status = os.waitpid(pid, 0)
                return exit_code(status)


def run(store: Store, cid: str, bundle: str, opts: CreateOptions, detach: bool) -> int:
    forwarder = None
    if not detach:
        forwarder = SignalForwarder()
        # The container's init is our grandchild: as subreaper we can wait for it.
        linux.set_child_subreaper()
        opts.keep_console = not opts.console_socket
    launched = create(store, cid, bundle, opts)
    try:
        start(store, cid)
    except BaseException:
        delete(store, cid, force=True)
        raise
    if detach:
        return 0
    forwarder.forward_to(launched.pid)
    try:
        return wait_for(launched.pid, launched.master)
    finally:
        delete(store, cid, force=True)


class ExecOptions(Record):
    pid_file: str | None = None
    console_socket: str | None = None
    detach: bool = False
    preserve_fds: list[int] = []


def exec_(store: Store, cid: str, proc: specs.Process, opts: ExecOptions) -> int:
    st = store.load(cid)
    cg = cgroup_of(st)
    status = store.status(st, cg)
    if status != "running":
        raise NotRunning(f"cannot exec in a {status} container" if status != "stopped"
                         else "container not running")
    lsm.check_process(proc)
    if proc.capabilities is None:
        # as runc: a process.json without capabilities gets the container's own
        # (and a container that has none gives none)
        proc.capabilities = specs.parse_process(st.config["process"]).capabilities
    forwarder = None
    if not opts.detach:
        forwarder = SignalForwarder()
        linux.set_child_subreaper()
    ours, theirs = Channel.pair(with_fds=proc.terminal)
    joins = _namespaces_of(st.pid)
    root_fd = None
    if not any(flag == linux.CLONE_NEWNS for _, flag in joins):   # it shares our mounts
        root_fd = os.open(f"/proc/{st.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    init.preload(proc, False)
    seccomp_filter = build_seccomp_filter((st.config.get("linux") or {}).get("seccomp"), store)
    exe_fd = trampoline.sealed_fd()   # the last execve goes through it (CVE-2019-5736)
    middle = fork_in(cg)
    if middle == 0:
        ours.close()
        init.guarded(theirs, init.middle, theirs, cg.self_join_files(), joins, False, 0,
                     init.exec_process, theirs, proc, seccomp_filter, exe_fd,
                     None if st.no_new_keyring else st.id, opts.preserve_fds, root_fd)
    theirs.close()
    os.close(exe_fd)
    if root_fd is not None:
        os.close(root_fd)
    pid, master = 0, None
    try:
        ours.send("go")
        while True:
            msg, fds = ours.recv()
            if msg["type"] == "pid":
                os.waitpid(middle, 0)
                middle, pid = 0, msg["pid"]
            elif msg["type"] == "console":
                master = hand_over_console(
                    fds[0], CreateOptions(console_socket=opts.console_socket,
                                          keep_console=not opts.detach))
            elif msg["type"] == "ready":
                break
        ours.wait_closed()   # closed on execve, or an error message saying why not
    except BaseException:
        for child in (middle, pid):
            if child:
                kill_and_wait([child])
                reap(child)
        raise
    finally:
        ours.close()
    write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    forwarder.forward_to(pid)
    return wait_for(pid, master)


def _namespaces_of(pid: int) -> list[tuple[str, int]]:
    """The namespaces of pid that differ from ours, the user namespace first."""
    joins = []
    for kind, (flag, name) in sorted(specs.NAMESPACES.items(), key=lambda kv: kv[0] != "user"):
        theirs, mine = f"/proc/{pid}/ns/{name}", f"/proc/self/ns/{name}"
        try:
            if os.stat(theirs).st_ino != os.stat(mine).st_ino:
                joins.append((theirs, flag))
        except FileNotFoundError:
            continue
    return joins
