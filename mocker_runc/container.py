"""The container lifecycle (runtime-spec runtime.md), as the runtime sees it.

create  -> the init process waits in new namespaces, rootfs ready, cgroup joined
start   -> exec.fifo is written: init runs the user's program
kill    -> a signal to init (or, with --all, to every process of the cgroup)
delete  -> processes gone, cgroup removed, state removed, poststop hooks
run     = create + start + wait (+ delete); exec = a new process in a running one
"""

import datetime
import os
import signal
import time
from dataclasses import dataclass

from mocker_common.errors import Conflict, MockerError
from mocker_common.files import atomic_write

from . import cgroups, init, linux
from . import spec as specs
from .channel import Channel
from .state import ContainerState, Store, proc_start_time

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


class NotRunning(MockerError):
    pass


@dataclass
class CreateOptions:
    pid_file: str | None = None
    console_socket: str | None = None
    no_pivot: bool = False
    keep_console: bool = False   # `run` without --console-socket: we proxy the pty


@dataclass
class Launched:
    """What create hands to run: the init's pid and, if we proxy it, the pty master."""
    pid: int
    master: int | None = None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _write_pid_file(path: str | None, pid: int) -> None:
    if path:
        atomic_write(os.path.abspath(path), str(pid).encode(), durable=False)


# --- create ---------------------------------------------------------------------

def create(store: Store, cid: str, bundle: str, opts: CreateOptions) -> Launched:
    spec = specs.load(bundle)
    _check_host(spec)
    store.make(cid)
    st = ContainerState(id=cid, bundle=spec.bundle, rootfs=spec.rootfs, created=_now(),
                        cgroups_path=spec.cgroups_path, annotations=spec.annotations,
                        config=spec.raw)
    undo = _Undo(store, spec, st)
    try:
        with store.lock(cid):
            os.mkfifo(store.fifo(cid), 0o600)
            cgroup = cgroups.create(spec.cgroups_path, spec.resources, cid,
                                    devices=(spec.raw.get("linux") or {}).get("devices"))
            undo.cgroup = cgroup
            st.cgroup_paths = cgroup.paths
            launched = _launch_init(store, spec, st, opts, cgroup, undo)
            st.ready = True
            store.save(st)
            _write_pid_file(opts.pid_file, st.pid)
            return launched
    except BaseException:
        undo.run()
        raise


def _check_host(spec: specs.Spec) -> None:
    """What runc's config validation refuses, checked before anything is made."""
    from .process import check_rlimits
    if spec.namespace("mount") is None:
        raise specs.SpecError("config.json needs a mount namespace (linux.namespaces)")
    if (spec.hostname or spec.domainname) and spec.namespace("uts") is None:
        raise specs.SpecError("unable to set hostname without a private UTS namespace")
    check_rlimits(spec.process)


def _launch_init(store, spec, st, opts, cgroup, undo) -> Launched:
    """Fork the middle process, then answer the init's requests until it is ready."""
    ours, theirs = Channel.pair()
    fifo_fd = os.open(store.fifo(st.id), os.O_RDWR)
    joins = [(ns.path, ns.flag) for ns in sorted(spec.namespaces, key=lambda n: n.type != "user")
             if ns.path]
    flags = sum(ns.flag for ns in spec.namespaces if not ns.path and ns.type != "user")
    init.preload(spec.process, bool(spec.hooks["createContainer"] or spec.hooks["startContainer"]))
    seccomp_filter = _seccomp_filter(spec.seccomp)
    middle = os.fork()
    if middle == 0:
        ours.close()
        init.guarded(theirs, init.middle, theirs, joins, spec.new_namespace("user"), flags,
                     init.container_init, theirs, spec, seccomp_filter, fifo_fd, opts.no_pivot)
    if seccomp_filter is not None:
        seccomp_filter.release()
    theirs.close()
    os.close(fifo_fd)
    undo.middle = middle
    launched = Launched(0)
    try:
        cgroup.add(middle)
        ours.send("go")
        while True:
            msg, fds = ours.recv()
            kind = msg["type"]
            if kind == "userns":
                _write_id_maps(middle, spec)
                ours.send("mapped")
            elif kind == "pid":
                os.waitpid(middle, 0)
                undo.middle = None
                st.pid, launched.pid = msg["pid"], msg["pid"]
                st.pid_start = proc_start_time(st.pid) or 0
                store.save(st)
            elif kind == "console":
                launched.master = _hand_over_console(fds[0], opts)
            elif kind == "hooks":
                state = store.spec_state(st, "creating")
                undo.poststop = True
                _run_hooks("prestart", spec, state)
                _run_hooks("createRuntime", spec, state)
                ours.send("hooks-done", state=state)
            elif kind == "ready":
                return launched
    finally:
        ours.close()


def _seccomp_filter(config: dict | None):
    """Build the linux.seccomp filter here, where errors are clear; the child only loads it."""
    if not config:
        return None
    from . import seccomp   # loads libseccomp: only for bundles that ask for seccomp
    return seccomp.prepare(config)


def cgroup_of(st: ContainerState):
    """The container's cgroup, from the directories create saved (or its cgroupsPath)."""
    if st.cgroup_paths:
        return cgroups.from_paths(st.cgroup_paths)
    return cgroups.load(st.cgroups_path, st.id)


def _write_id_maps(pid: int, spec: specs.Spec) -> None:
    """user_namespaces(7): the runtime, outside, maps the ids of the new namespace."""
    for name, maps in (("uid_map", spec.uid_mappings), ("gid_map", spec.gid_mappings)):
        lines = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(lines)
        except OSError as err:
            raise MockerError(f"write /proc/{pid}/{name}: {err.strerror}") from None


def _hand_over_console(master: int, opts: CreateOptions) -> int | None:
    from . import terminal
    if opts.console_socket:
        try:
            terminal.send_to_console_socket(opts.console_socket, master)
        finally:
            os.close(master)
        return None
    if opts.keep_console:
        # Size the pty now: the program may ask (stty size) before the proxy starts.
        if os.isatty(0):
            terminal.copy_window_size(0, master)
        return master
    os.close(master)
    raise MockerError("process.terminal is set: use --console-socket (or `run`)")


def _run_hooks(point: str, spec: specs.Spec, state: dict) -> None:
    if spec.hooks[point]:
        from . import hooks
        hooks.run_hooks(point, spec.hooks[point], state)


class _Undo:
    """What a failed create has made so far, taken apart in reverse."""

    def __init__(self, store: Store, spec: specs.Spec, st: ContainerState):
        self.store, self.spec, self.st = store, spec, st
        self.middle = None
        self.cgroup = None
        self.poststop = False

    def run(self) -> None:
        if self.middle:
            _kill_and_wait([self.middle])
            os.waitpid(self.middle, 0)
        if self.st.pid:
            _kill_and_wait([self.st.pid])
        if self.cgroup is not None:
            _kill_and_wait(self.cgroup.pids())
            self.cgroup.remove()
        self.store.remove(self.st.id)
        if self.poststop:   # runtime-spec: a failed create goes on with delete's poststop
            _run_hooks("poststop", self.spec, self.store.spec_state(self.st, "stopped"))


def _kill_and_wait(pids: list[int], timeout: float = 5.0) -> None:
    """SIGKILL each pid and wait until it is gone or a zombie (we may not be its parent)."""
    starts = {pid: proc_start_time(pid) for pid in pids}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid, start in starts.items():
        while start is not None and proc_start_time(pid) == start:
            _reap(pid)
            if time.monotonic() > deadline:
                raise MockerError(f"process {pid} did not die after SIGKILL")
            time.sleep(0.005)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# --- start, kill, delete, pause ----------------------------------------------------

def start(store: Store, cid: str) -> None:
    with store.lock(cid):
        st = store.load(cid)
        status = store.status(st)
        if status == "stopped":
            raise NotRunning("cannot start a container that has stopped")
        if status != "created":
            raise Conflict(f"cannot start an already {status} container")
        try:
            fd = os.open(store.fifo(cid), os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            raise NotRunning("container not running: its init is not waiting on exec.fifo")
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
        os.unlink(store.fifo(cid))
        spec = specs.parse(st.config, st.bundle)
        # runtime-spec: poststart failures are warnings; start still succeeds.
        _run_hooks("poststart", spec, store.spec_state(st, "running"))


def parse_signal(text: str) -> int:
    """kill's signal argument: 9, KILL or SIGKILL."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise MockerError(f"unknown signal {text!r}") from None


def kill(store: Store, cid: str, sig: int, all_processes: bool = False) -> None:
    st = store.load(cid)
    cg = cgroup_of(st)
    if store.status(st, cg) == "stopped":
        raise NotRunning("container not running")
    pids = cg.pids() if all_processes else [st.pid]
    for pid in pids or [st.pid]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            if not all_processes:
                raise NotRunning("no such process") from None
    if all_processes and sig == signal.SIGKILL and cg.state() == "paused":
        cg.thaw()   # a frozen process cannot die


def delete(store: Store, cid: str, force: bool = False) -> None:
    with store.lock(cid):
        st = store.load(cid)
        cg = cgroup_of(st)
        status = store.status(st, cg)
        if status in ("running", "paused") and not force:
            raise Conflict(f"cannot delete container {cid} that is not stopped: {status}")
        _kill_and_wait([st.pid] if store.alive(st) else [])
        pids = cg.pids()
        if pids:
            _kill_and_wait(pids)
            if cg.state() == "paused":
                cg.thaw()
        cg.remove()
        store.remove(cid)
    spec = specs.parse(st.config, st.bundle)
    # runtime-spec: poststop runs after the container is deleted; failures are warnings.
    _run_hooks("poststop", spec, store.spec_state(st, "stopped"))


def update(store: Store, cid: str, resources: dict) -> None:
    with store.lock(cid):
        st = store.load(cid)
        cg = cgroup_of(st)
        if store.status(st, cg) == "stopped":
            raise NotRunning("container not running")
        cg.update(resources)


def pause(store: Store, cid: str, freeze: bool) -> None:
    with store.lock(cid):
        st = store.load(cid)
        cg = cgroup_of(st)
        status = store.status(st, cg)
        if freeze:
            if status != "running":
                raise NotRunning("container not running")
            cg.freeze()
        else:
            if status != "paused":
                raise NotRunning("container not paused")
            cg.thaw()


# --- run and exec: we stay, forward signals, and report the exit code -------------

def exit_code(status: int) -> int:
    """The shell's convention: the exit code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def wait_for(pid: int, master: int | None) -> int:
    """Forward signals to pid (or proxy its terminal) until it exits; its exit code."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    for sig in FORWARDED:
        signal.signal(sig, forward)
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
    if not detach:
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
    try:
        return wait_for(launched.pid, launched.master)
    finally:
        delete(store, cid, force=True)


@dataclass
class ExecOptions:
    pid_file: str | None = None
    console_socket: str | None = None
    detach: bool = False


def exec_(store: Store, cid: str, proc: specs.Process, opts: ExecOptions) -> int:
    st = store.load(cid)
    cg = cgroup_of(st)
    status = store.status(st, cg)
    if status != "running":
        raise NotRunning(f"cannot exec in a {status} container" if status != "stopped"
                         else "container not running")
    if not opts.detach:
        linux.set_child_subreaper()
    ours, theirs = Channel.pair()
    joins = _namespaces_of(st.pid)
    init.preload(proc, False)
    seccomp_filter = _seccomp_filter((st.config.get("linux") or {}).get("seccomp"))
    middle = os.fork()
    if middle == 0:
        ours.close()
        init.guarded(theirs, init.middle, theirs, joins, False, 0,
                     init.exec_process, theirs, proc, seccomp_filter)
    theirs.close()
    if seccomp_filter is not None:
        seccomp_filter.release()
    pid, master = 0, None
    try:
        cg.add(middle)
        ours.send("go")
        while True:
            msg, fds = ours.recv()
            if msg["type"] == "pid":
                os.waitpid(middle, 0)
                middle, pid = 0, msg["pid"]
            elif msg["type"] == "console":
                master = _hand_over_console(
                    fds[0], CreateOptions(console_socket=opts.console_socket,
                                          keep_console=not opts.detach))
            elif msg["type"] == "ready":
                break
        ours.wait_closed()   # closed on execve, or an error message saying why not
    except BaseException:
        for child in (middle, pid):
            if child:
                _kill_and_wait([child])
                _reap(child)
        raise
    finally:
        ours.close()
    _write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
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
