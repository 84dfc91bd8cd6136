"""The container lifecycle (runtime-spec runtime.md), as the runtime sees it.

create  -> the init process waits in new namespaces, rootfs ready, cgroup joined
start   -> exec.fifo is written: init runs the user's program
kill    -> a signal to init (or, with --all, to every process of the cgroup)
delete  -> processes gone, cgroup removed, state removed, poststop hooks

run and exec, the verbs that stay with the container, are in foreground.py.
"""

import os
import signal
import sys
import time

from mocker_common.errors import Conflict, MockerError, NotFound
from mocker_common.files import atomic_write
from mocker_common.procfs import proc_start_time
from mocker_common.record import Record

from . import cgroups, hostmounts, init, linux, lsm, sysctls, trampoline
from . import spec as specs
from .channel import Channel, InitError
from .runlog import utc_now
from .state import ContainerState, Store


class NotRunning(MockerError):
    pass


class CreateOptions(Record):
    pid_file: str | None = None
    console_socket: str | None = None
    no_pivot: bool = False
    no_new_keyring: bool = False  # else the init joins a new session keyring, _ses.ID
    preserve_fds: list[int] = []  # our fds the container's process gets too (3, 4, ...)
    systemd_cgroup: bool = False  # --systemd-cgroup: systemd makes the cgroup (cgroups/systemd.py)
    keep_console: bool = False   # `run` without --console-socket: we proxy the pty


class Launched(Record):
    """What create hands to run: the init's pid and, if we proxy it, the pty master."""
    pid: int
    master: int | None = None


def preserved_fds(count: int) -> list[int]:
    """runc's --preserve-fds N: fds 3 .. 3+N-1, which must be open."""
    if count < 0:
        raise MockerError(f"--preserve-fds {count}: give a count of 0 or more")
    fds = list(range(3, 3 + count))
    for fd in fds:
        try:
            os.fstat(fd)
        except OSError:
            raise MockerError(f"--preserve-fds {count}: fd {fd} is not open") from None
    return fds


def write_pid_file(path: str | None, pid: int) -> None:
    if path:
        atomic_write(os.path.abspath(path), str(pid).encode(), durable=False)


# --- create ---------------------------------------------------------------------

def create(store: Store, cid: str, bundle: str, opts: CreateOptions) -> Launched:
    spec = specs.load(bundle)
    _check_host(spec)
    store.make(cid)
    st = ContainerState(id=cid, bundle=spec.bundle, rootfs=spec.rootfs, created=utc_now(),
                        cgroups_path=spec.cgroups_path, annotations=spec.annotations,
                        config=spec.raw, no_new_keyring=opts.no_new_keyring)
    if spec.namespace("mount") is None:
        # runtime-spec: an unlisted namespace is the runtime's; so are the mounts made in it
        st.premounted = hostmounts.snapshot(spec.rootfs)
    undo = _Undo(store, spec, st)
    try:
        with store.lock(cid):
            os.mkfifo(store.fifo(cid), 0o600)
            cgroup = cgroups.create(spec.cgroups_path, spec.resources, cid,
                                    devices=(spec.raw.get("linux") or {}).get("devices"),
                                    systemd=opts.systemd_cgroup)
            undo.cgroup = cgroup
            st.cgroup_paths = cgroup.paths
            if opts.systemd_cgroup:
                st.systemd_unit, st.systemd_slice = cgroup.unit, cgroup.place.slice
            launched = _launch_init(store, spec, st, opts, cgroup, undo)
            st.ready = True
            store.save(st)
            write_pid_file(opts.pid_file, st.pid)
            return launched
    except BaseException:
        undo.run()
        raise


def _check_host(spec: specs.Spec) -> None:
    """What runc's config validation refuses, checked before anything is made."""
    from .process import check_rlimits
    if (spec.hostname or spec.domainname) and spec.namespace("uts") is None:
        raise specs.SpecError("unable to set hostname without a private UTS namespace")
    if (spec.masked_paths or spec.readonly_paths) and spec.namespace("mount") is None:
        # the masks would be mounts in the runtime's namespace, seen by all (runc refuses too)
        raise specs.SpecError("maskedPaths and readonlyPaths need a mount namespace "
                              "(linux.namespaces)")
    check_rlimits(spec.process)
    sysctls.check(spec)
    lsm.check(spec)


def _launch_init(store, spec, st, opts, cgroup, undo) -> Launched:
    """Fork the middle process, then answer the init's requests until it is ready."""
    ours, theirs = Channel.pair(with_fds=spec.process.terminal)
    # close-on-exec: `start` learns that the program runs when this fd goes away
    fifo_fd = os.open(store.fifo(st.id), os.O_RDWR | os.O_CLOEXEC)
    joins = [(ns.path, ns.flag) for ns in sorted(spec.namespaces, key=lambda n: n.type != "user")
             if ns.path]
    flags = sum(ns.flag for ns in spec.namespaces if not ns.path and ns.type != "user")
    init.preload(spec.process, bool(spec.hooks["createContainer"] or spec.hooks["startContainer"]))
    seccomp_filter = build_seccomp_filter(spec.seccomp, store)
    exe_fd = trampoline.sealed_fd()   # the init's last execve goes through it (CVE-2019-5736)
    middle = fork_in(cgroup)
    if middle == 0:
        ours.close()
        init.guarded(theirs, init.middle, theirs, cgroup.self_join_files(), joins,
                     spec.new_namespace("user"), flags,
                     init.container_init, theirs, spec, seccomp_filter, fifo_fd, exe_fd,
                     st.id, opts)
    theirs.close()
    os.close(fifo_fd)
    os.close(exe_fd)
    undo.middle = middle
    launched = Launched(0)
    try:
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
                launched.master = hand_over_console(fds[0], opts)
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


def fork_in(cgroup) -> int:
    """os.fork() of the middle process, which starts in (or joins) the container's cgroup.

    No process is moved into a cgroup by pid, which waits for the kernel (see
    cgroups.join_self): the child starts in the cgroup2 directory, if there is
    one (clone3 CLONE_INTO_CGROUP), and joins the v1 hierarchies itself
    (init.middle). A kernel without clone3 gets the old way: cgroup.procs.
    systemd makes its unit's cgroup only around a process: the middle process
    starts in ours, and waits for "go" until systemd has moved it.
    """
    if cgroup.needs_pid:
        pid = os.fork()
        if pid:
            try:
                cgroup.start(pid)
            except BaseException:
                kill_and_wait([pid])
                reap(pid)
                raise
        return pid
    unified = cgroup.paths.get("unified")
    if unified:
        try:
            return linux.fork_into_cgroup(unified)
        except OSError:
            pass
    pid = os.fork()
    if pid and unified:
        try:
            cgroup.add(pid, only=["unified"])
        except BaseException:
            kill_and_wait([pid])
            reap(pid)
            raise
    return pid


def build_seccomp_filter(config: dict | None, store: Store):
    """Build the linux.seccomp filter here, where errors are clear; the child only loads it."""
    if not config:
        return None
    from . import seccomp   # loads libseccomp: only for bundles that ask for seccomp
    return seccomp.prepare(config, cache_root=store.root)


def cgroup_of(st: ContainerState):
    """The container's cgroup, from the directories create saved (or its cgroupsPath)."""
    if st.cgroup_paths:
        return cgroups.from_paths(st.cgroup_paths, st.systemd_unit, st.systemd_slice)
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


def hand_over_console(master: int, opts: CreateOptions) -> int | None:
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


def _run_saved_hooks(point: str, st: ContainerState, state: dict) -> None:
    """The hooks of point from the config saved at create (parsed again only if there are any)."""
    if (st.config.get("hooks") or {}).get(point):
        _run_hooks(point, specs.parse(st.config, st.bundle), state)


class _Undo:
    """What a failed create has made so far, taken apart in reverse.

    Every step is tried whatever the ones before did, so that one failure
    (a process that will not die) leaves no more behind than it must; what
    failed is warned about, and the error that made create fail stays the one
    raised (create re-raises it after run()).
    """

    def __init__(self, store: Store, spec: specs.Spec, st: ContainerState):
        self.store, self.spec, self.st = store, spec, st
        self.middle = None
        self.cgroup = None
        self.poststop = False
        self.failed: list[str] = []

    def run(self) -> None:
        for what, step in self._steps():
            try:
                step()
            except Exception as err:   # the next steps still run
                self.failed.append(f"{what}: {err}")
                print(f"mocker-runc: warning: after a failed create, {what}: {err}",
                      file=sys.stderr)

    def _steps(self):
        if self.middle:
            yield "the middle process", lambda: (kill_and_wait([self.middle]), reap(self.middle))
        if self.st.pid:
            yield "the init process", lambda: kill_and_wait([self.st.pid])
        if self.cgroup is not None:
            yield "the cgroup", lambda: (kill_and_wait(self.cgroup.pids()), self.cgroup.remove())
        yield "the mounts", lambda: release_mounts(self.st)
        yield "the state", lambda: self.store.remove(self.st.id)
        if self.poststop:   # runtime-spec: a failed create goes on with delete's poststop
            yield "the poststop hooks", lambda: _run_hooks(
                "poststop", self.spec, self.store.spec_state(self.st, "stopped"))


def release_mounts(st: ContainerState) -> None:
    """A container without a mount namespace of its own made its mounts in ours:
    take them away with it (runc leaves them)."""
    if st.premounted is not None:
        hostmounts.release(st.rootfs, st.premounted)


def kill_and_wait(pids: list[int], timeout: float = 5.0) -> None:
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
            reap(pid)
            if time.monotonic() > deadline:
                raise MockerError(f"process {pid} did not die after SIGKILL")
            time.sleep(0.005)


def reap(pid: int) -> None:
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
        _release_init(store.fifo(cid))
        # runtime-spec: poststart hooks run after the program started, before `start`
        # returns; their failures are only warnings.
        _run_saved_hooks("poststart", st, store.spec_state(st, "running"))


_START = b"0"   # what `start` writes on exec.fifo


def _release_init(fifo: str, timeout_ms: int = 30_000) -> None:
    """Write the byte the init waits for on exec.fifo, then wait for its execve.

    The init holds the fifo open (close-on-exec) until its execve: a reader of
    ours gets POLLHUP when that last writer is gone. An init that fails before
    execve (startContainer hook, seccomp, exec itself) first writes why.
    """
    import select
    try:
        watch = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        poke = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise NotRunning("container not running: its init is not waiting on exec.fifo")
    try:
        os.write(poke, _START)
        os.close(poke)
        os.unlink(fifo)
        poller = select.poll()
        poller.register(watch, select.POLLHUP)
        if not poller.poll(timeout_ms):
            return   # still busy (a slow startContainer hook): it runs, as far as we know
        failure = os.read(watch, 4096)
    finally:
        os.close(watch)
    if failure == _START:
        raise NotRunning("the container's init died before it could start the program")
    if failure:
        raise InitError(trampoline.failure_message(failure) or failure.decode(errors="replace"))


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
    if all_processes and cg.pids():
        # runc kill --all: every process of the cgroup, frozen meanwhile so that
        # none forks away; SIGKILL on cgroup v2 is one write to cgroup.kill.
        cg.kill_all(sig)
        if sig == signal.SIGKILL and cg.state() == "paused":
            cg.thaw()   # a process frozen by the v1 freezer cannot die
        return
    try:
        os.kill(st.pid, sig)
    except ProcessLookupError:
        if not all_processes:
            raise NotRunning("no such process") from None


def delete(store: Store, cid: str, force: bool = False) -> None:
    with store.lock(cid):
        try:
            st = store.load(cid)
        except NotFound:
            store.remove(cid)   # a create killed before it wrote any state: nothing to stop
            raise
        cg = cgroup_of(st)
        status = store.status(st, cg)
        if status in ("running", "paused") and not force:
            raise Conflict(f"cannot delete container {cid} that is not stopped: {status}")
        if status == "paused":
            cg.kill_all(signal.SIGKILL)
            cg.thaw()   # a frozen process dies of SIGKILL only once thawed
        kill_and_wait([st.pid] if store.alive(st) else [])
        pids = cg.pids()
        if pids:
            kill_and_wait(pids)
        cg.remove()
        release_mounts(st)
        store.remove(cid)
    # runtime-spec: poststop runs after the container is deleted; failures are warnings.
    _run_saved_hooks("poststop", st, store.spec_state(st, "stopped"))


def update(store: Store, cid: str, resources: dict) -> None:
    with store.lock(cid):
        st = store.load(cid)
        cg = cgroup_of(st)
        if store.status(st, cg) == "stopped":
            raise NotRunning("container not running")
        # runc update never changes device rules (it sets SkipDevices): neither do we.
        cg.update({key: value for key, value in resources.items() if key != "devices"})
        if cg.version == 2:
            # The config's own rules again, in a fresh program: attached before the
            # old one is detached (devicefilter.install), so never a moment without.
            linux_config = st.config.get("linux") or {}
            cg.apply_devices((linux_config.get("resources") or {}).get("devices") or [],
                             linux_config.get("devices") or [])


def stats_event(store: Store, cid: str) -> dict:
    """runc events --stats: the cgroup's usage figures (cpu, memory, pids)."""
    st = store.load(cid)
    cg = cgroup_of(st)
    if store.status(st, cg) == "stopped":
        raise NotRunning("container not running")
    return {"type": "stats", "id": cid, "data": cg.stats()}


def events(store: Store, cid: str, interval: float):
    """runc events: a stats event every interval, and an "oom" event when the
    kernel's OOM killer has struck in the container since the last look, until
    the container stops."""
    ooms = None
    while True:
        try:
            event = stats_event(store, cid)
        except NotRunning:
            return
        count = event["data"].get("memory", {}).get("oom_kill", 0)
        if ooms is not None and count > ooms:
            yield {"type": "oom", "id": cid}
        ooms = count
        yield event
        time.sleep(interval)


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
