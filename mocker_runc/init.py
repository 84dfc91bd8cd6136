"""The container side: what runs in the forked processes (runc's `runc init`).

  middle process   joins/creates namespaces, forks the container's first
                   process (pid 1 of a new pid namespace lives only in a child
                   of the unsharer), reports its pid, exits.
  container init   builds the rootfs, asks the runtime to run the
                   createRuntime hooks, pivots, becomes the user, says
                   "ready", and blocks on exec.fifo until `start`.
  exec process     for `exec`: joins a running container's namespaces instead.

Every failure is sent to the runtime as one message and the process exits;
the runtime turns it into the command's one-line error.
"""

import errno
import os

from mocker_common.errors import MockerError

from . import linux, lsm, narrate, process, rootfs
from .cgroups.base import join_self
from .channel import Channel
from .spec import NAMESPACES, Process, Spec


def describe(err: BaseException) -> str:
    """An exception as the one line the runtime will print."""
    if isinstance(err, MockerError):
        return str(err)
    if isinstance(err, OSError):
        where = f" ({err.filename})" if err.filename else ""
        return f"{err.strerror or err}{where}"
    if isinstance(err, KeyboardInterrupt):   # Ctrl-C reached the whole process group
        return "interrupted"
    return f"{type(err).__name__}: {err}"


def _report(chan: Channel, err: BaseException) -> None:
    try:
        chan.send("error", message=describe(err))
    except OSError:
        pass   # the runtime is gone (it failed or was killed): it reports for itself


def guarded(chan: Channel, step, *args) -> None:
    """Run a child's whole life; never return into the parent's code."""
    code = 1
    try:
        step(*args)
        code = 0
    except BaseException as err:   # noqa: BLE001 - a forked child must not unwind into the CLI
        _report(chan, err)
    finally:
        os._exit(code)


def _close_other_fds(keep: set[int]) -> None:
    """The container must not inherit our sockets and files: only stdio and `keep`."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _pass_on(fds: list[int]) -> None:
    """--preserve-fds: these fds stay open across execve, for the program."""
    for fd in fds:
        os.set_inheritable(fd, True)


def _new_session_keyring(cid: str) -> None:
    """Like runc: the container gets its own session keyring, _ses.ID, not ours
    (keyrings(7): a process's keys are found through its session keyring)."""
    try:
        serial = linux.join_session_keyring(f"_ses.{cid}")
        # a user the process becomes later may still search it (runc does the same)
        linux.add_key_permission(serial, linux.KEY_USR_SEARCH)
    except OSError as err:
        if err.errno != errno.ENOSYS:   # a kernel without keyrings: nothing to leave behind
            raise MockerError(f"join a new session keyring _ses.{cid}: {err.strerror}") from None


# --- middle process ---------------------------------------------------------------

def middle(chan: Channel, tasks_files: list[str], joins: list[tuple[str, int]], user_ns: bool,
           unshare_flags: int, next_step, *args) -> None:
    """Join the cgroup and the namespaces, fork the container's process, report its pid."""
    # Before any namespace is joined: from inside, no one may open our /proc/PID/exe
    # (the host's Python), mem, environ or fds. Our children inherit it, until execve.
    linux.set_dumpable(False)
    narrate.via(chan)
    join_self(tasks_files)         # v1; the cgroup2 one we were forked into (container.fork_in)
    chan.expect("go")
    # Open them all first: once in the container's mount namespace, /proc is its own.
    fds = [(os.open(path, os.O_RDONLY | os.O_CLOEXEC), flag, path) for path, flag in joins]
    for fd, flag, path in fds:     # user namespace first: it owns the others
        narrate.say("nsenter --%s=%s", _NS_NAMES.get(flag, flag), path)
        try:
            linux.setns(fd, flag)
        except OSError as err:
            raise MockerError(f"join namespace {path}: {os.strerror(err.errno)}") from None
        os.close(fd)
    if user_ns:
        linux.unshare(linux.CLONE_NEWUSER)
        chan.send("userns")        # the runtime writes uid_map and gid_map
        chan.expect("mapped")
        linux.set_user(0, 0, [])   # root of the new namespace, all its capabilities
        linux.set_dumpable(False)  # the change of user reset it
    if unshare_flags:
        narrate.say("unshare %s --fork   (namespaces: config-linux.md)", " ".join(
            f"--{name}" for flag, name in _NS_NAMES.items() if unshare_flags & flag))
        try:
            linux.unshare(unshare_flags)
        except OSError as err:
            raise MockerError(f"unshare namespaces: {os.strerror(err.errno)}") from None
    # The child waits on a pipe until its pid is sent: the runtime must know it
    # before any message of the child's (e.g. "hooks", whose state carries the pid).
    wait_r, wait_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(wait_w)
        if not os.read(wait_r, 1):   # the middle process died first: the runtime gave up
            os._exit(1)
        os.close(wait_r)
        guarded(chan, next_step, *args)
    os.close(wait_r)
    chan.send("pid", pid=pid)
    os.write(wait_w, b"1")


# --- container init (create) ---------------------------------------------------

# CLONE_* flag -> the option unshare(1) and nsenter(1) name it by, for -v
_NS_NAMES = {flag: "net" if name == "network" else name for name, (flag, _) in NAMESPACES.items()}

def container_init(chan: Channel, spec: Spec, seccomp_filter, fifo_fd: int, exe_fd: int,
                   cid: str, opts) -> None:
    """runtime-spec runtime.md#lifecycle steps 2-6, inside the new namespaces.

    exe_fd is the sealed exec trampoline (trampoline.py); opts is create's
    container.CreateOptions.
    """
    _close_other_fds(chan.fds() | {fifo_fd, exe_fd} | set(opts.preserve_fds))
    _pass_on(opts.preserve_fds)
    if not opts.no_new_keyring:
        _new_session_keyring(cid)
    os.umask(0)
    in_userns = spec.namespace("user") is not None
    if spec.new_namespace("network"):
        linux.link_up("lo")
    rootfs.prepare(spec, in_userns)
    slave = None
    if spec.process.terminal:
        slave = _make_console(chan, spec)
    if spec.hostname is not None:
        narrate.say("hostname %s", spec.hostname)
        linux.sethostname(spec.hostname)
    if spec.domainname is not None:
        linux.setdomainname(spec.domainname)

    # runtime-spec: prestart and createRuntime hooks run (in the runtime's namespaces)
    # after the container's namespaces exist, before pivot_root.
    chan.send("hooks")
    state = chan.expect("hooks-done")["state"]
    # runtime-spec: createContainer hooks run in the container's namespaces, before pivot_root.
    _run_hooks("createContainer", spec, state)

    rootfs.enter(spec.rootfs, opts.no_pivot, spec.namespace("mount") is not None)
    rootfs.finish(spec)
    if slave is not None:
        _attach_terminal(slave)     # setsid, and the pty as controlling terminal
    else:
        linux.new_session()         # as under runc: the container's init leads its session
    process.set_limits(spec.process)
    lsm.apply_on_exec(spec.process)   # as runc: while root, for the execve to come
    program = process.lookup(spec.process)
    if narrate.on():
        _narrate_process(spec.process, seccomp_filter, program)
    seccomp_filter = process.load_seccomp_if_privileged(spec.process, seccomp_filter)
    process.become_user(spec.process)
    chan.send("ready")
    chan.close()

    # runtime-spec: the process waits here until `start` (runc: exec.fifo). The fd
    # stays open (close-on-exec) so that `start` can see the execve happen; if
    # we fail instead, `start` reads why from the fifo.
    os.read(fifo_fd, 1)
    try:
        state["status"] = "running"
        # files of the container, started through the trampoline like the program
        _run_hooks("startContainer", spec, state, exe_fd)
        process.lock_privileges(spec.process, seccomp_filter)
        # the trampoline reports a failed execve on the fifo itself
        process.execute(program, spec.process, exe_fd, report_fd=fifo_fd)
    except BaseException as err:  # noqa: BLE001 - never unwind into the runtime's code
        os.write(fifo_fd, describe(err).encode())
        os._exit(127)


def _narrate_process(proc: Process, seccomp_filter, program: str) -> None:
    from .spec import CAPABILITIES
    caps = proc.capabilities
    kept = [f"cap_{name.lower()}" for bit, name in enumerate(CAPABILITIES)
            if caps and caps.bounding >> bit & 1]
    narrate.say("capabilities kept (bounding): %s", ",".join(kept) or "none")
    if seccomp_filter is not None:
        narrate.say("seccomp: a filter of %d BPF instructions, loaded before execve",
                    len(seccomp_filter.bpf) // 8)
    narrate.say("user %d:%d, cwd %s; exec %s %s", proc.uid, proc.gid, proc.cwd, program,
                " ".join(proc.args[1:]))


def preload(proc: Process, container_hooks: bool) -> None:
    """Import, before forking, every module the container side may need.

    After pivot_root (or setns into the container's mount namespace) the host's
    Python library is gone, and in a user namespace even before that: the
    mapped root may not read /root or /usr/local. So nothing is imported there.
    """
    import fcntl  # noqa: F401  (terminal and network ioctls)
    if proc.terminal:
        import termios  # noqa: F401

        from . import terminal  # noqa: F401
    if container_hooks:
        import subprocess  # noqa: F401

        from . import hooks  # noqa: F401


def _run_hooks(point: str, spec: Spec, state: dict, exe_fd: int | None = None) -> None:
    if spec.hooks[point]:
        from . import hooks
        hooks.run_hooks(point, spec.hooks[point], state, exe_fd)


def _make_console(chan: Channel, spec: Spec) -> str:
    """A pty on the container's own devpts; the master goes to the runtime."""
    ptmx = rootfs.console_ptmx(spec.rootfs)
    try:
        # through the fd's /proc/self/fd link: that very node, opened again
        master, slave = linux.open_pty_master(linux.fd_path(ptmx) if ptmx is not None
                                              else "/dev/ptmx")
    finally:
        if ptmx is not None:
            os.close(ptmx)
    if spec.process.console_size:
        from .terminal import set_window_size
        set_window_size(master, *spec.process.console_size)
    rootfs.bind_console(spec.rootfs, slave)
    chan.send("console", fds=[master])
    os.close(master)
    # the slave's path as the container will see it after pivot_root
    return "/dev/pts/" + os.path.basename(slave) if ptmx is not None else slave


def _attach_terminal(slave_path: str) -> None:
    fd = os.open(slave_path, os.O_RDWR)
    linux.make_controlling_tty(fd)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


# --- exec process ------------------------------------------------------------------

def exec_process(chan: Channel, proc: Process, seccomp_filter, exe_fd: int, cid: str | None,
                 preserve_fds: list[int], root_fd: int | None = None) -> None:
    """Inside a running container's namespaces: become its process and execve.

    exe_fd is the sealed exec trampoline; cid names the container's session
    keyring to join (None: join none). root_fd, when the container shares our
    mount namespace: its init's root (/proc/PID/root), to chroot into; joining
    a mount namespace sets the root by itself, sharing one does not (runc then
    leaves exec on the host's /).
    """
    _close_other_fds(chan.fds() | {exe_fd} | set(preserve_fds) | ({root_fd} - {None}))
    _pass_on(preserve_fds)
    if root_fd is not None:
        os.fchdir(root_fd)
        linux.chroot(".")
        os.close(root_fd)
    if cid is not None:
        _new_session_keyring(cid)   # the container's own, found by its name
    if proc.terminal:
        master, slave = linux.open_pty_master("/dev/ptmx")
        if proc.console_size:
            from .terminal import set_window_size
            set_window_size(master, *proc.console_size)
        chan.send("console", fds=[master])
        os.close(master)
        _attach_terminal(slave)
    process.set_limits(proc)
    lsm.apply_on_exec(proc)
    program = process.lookup(proc)
    if narrate.on():
        _narrate_process(proc, seccomp_filter, program)
    seccomp_filter = process.load_seccomp_if_privileged(proc, seccomp_filter)
    process.become_user(proc)
    chan.send("ready")             # from here, only execve errors remain (reported below)
    process.lock_privileges(proc, seccomp_filter)
    # a failed execve: the trampoline writes why on the channel (Channel.wait_closed)
    process.execute(program, proc, exe_fd, report_fd=chan.write_fd)
