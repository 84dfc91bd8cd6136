"""The kernel calls mocker-runc makes, and nothing else.

Every namespace, mount, capability and credential change of the runtime goes
through this module, so a reader can see the whole kernel surface in one place.
Python 3.11's os module lacks unshare/setns/mount, so they are called in libc
through ctypes. Each wrapper raises OSError (errno, strerror, the path or the
call's name) on failure, which the callers turn into one-line errors.
"""

import ctypes
import errno
import fcntl
import os
import resource
import struct

from mocker_common import mountcalls
from mocker_common.inroot import fd_path  # noqa: F401 (linux.fd_path for callers)
from mocker_common.mountcalls import MNT_DETACH  # noqa: F401 (linux.MNT_DETACH for callers)

# The kernel's numbers for namespaces and mounts live in flags.py (spec.py
# reads them too, without loading libc); linux.MS_BIND and co. stay valid here.
from .flags import (  # noqa: F401
    CLONE_NEWNS, CLONE_NEWUSER, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT,
    MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC, MS_SLAVE, MS_RELATIME,
)

_libc = ctypes.CDLL(None, use_errno=True)

# <linux/prctl.h>
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2

# <linux/capability.h>: the v3 capset(2) header version (64-bit sets)
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# asm/unistd_64.h: calls glibc does not wrap
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capset": 126, "keyctl": 250, "clone3": 435, "seccomp": 317,
               "bpf": 321},
    "aarch64": {"pivot_root": 41, "capset": 91, "keyctl": 219, "clone3": 435, "seccomp": 277,
                "bpf": 280},
}


def _check(result: int, what: str, path: str | None = None) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _syscall(name: str, *args) -> int:
    number = _SYSCALLS[os.uname().machine][name]
    return _libc.syscall(number, *args)


# --- namespaces ---------------------------------------------------------------

def unshare(flags: int) -> None:
    """Move this process into new namespaces (pid: its next child's)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that fd (an open /proc/PID/ns/* file) names."""
    _check(_libc.setns(fd, nstype), "setns")


# <linux/sched.h>: clone3(2)
CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17


class _CloneArgs(ctypes.Structure):
    """struct clone_args, up to the cgroup field (Linux 5.7)."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
        "tls", "set_tid", "set_tid_size", "cgroup")]


def fork_into_cgroup(cgroup_dir: str) -> int:
    """fork(), but the child starts in the cgroup2 directory cgroup_dir.

    clone3(2) with CLONE_INTO_CGROUP: 0 in the child, its pid in the parent;
    OSError where the kernel refuses (before 5.7, or a seccomp policy hiding
    clone3). Python is told of the fork as os.fork tells it (the C API's
    PyOS_BeforeFork / AfterFork_Child / AfterFork_Parent): the interpreter's
    locks and threads are set right in the child, and the at-fork hooks run
    (foreground.SignalForwarder gives the child its own signal handlers back).
    """
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    args = _CloneArgs(flags=CLONE_INTO_CGROUP, exit_signal=_SIGCHLD, cgroup=fd)
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = _syscall("clone3", ctypes.byref(args), ctypes.sizeof(args))
    errno = ctypes.get_errno()
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
    else:
        ctypes.pythonapi.PyOS_AfterFork_Parent()
    os.close(fd)
    if pid < 0:
        raise OSError(errno, f"clone3: {os.strerror(errno)}")
    return pid


# --- mounts -------------------------------------------------------------------

# mount(2), umount2(2): shared with mocker-bundle's overlays (mocker_common/mountcalls.py)
mount = mountcalls.mount
umount = mountcalls.umount


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall("pivot_root", _b(new_root), _b(put_old)), "pivot_root", new_root)


def chroot(path: str) -> None:
    os.chroot(path)


def mknod(path: str, mode: int, major: int, minor: int) -> None:
    os.mknod(path, mode, os.makedev(major, minor))


# --- identity of the container ------------------------------------------------

def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname")


def setdomainname(name: str) -> None:
    data = name.encode()
    _check(_libc.setdomainname(data, len(data)), "setdomainname")


def set_user(uid: int, gid: int, groups: list[int] | None) -> None:
    """Become uid:gid with the given supplementary groups (None: leave them)."""
    if groups is not None:
        os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def setrlimit(which: int, soft: int, hard: int) -> None:
    resource.setrlimit(which, (soft, hard))


# --- capabilities and prctl ---------------------------------------------------

def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), "prctl")


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def drop_bounding(keep: int) -> None:
    """Remove from the bounding set every capability whose bit is not in keep."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            prctl(PR_CAPBSET_DROP, cap)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = struct.pack("IIIIII",
                       effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       effective >> 32, permitted >> 32, inheritable >> 32)
    _check(_syscall("capset", header, data), "capset")


def raise_ambient(caps: int) -> None:
    for cap in range(last_cap() + 1):
        if caps & (1 << cap):
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def keep_caps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, int(on))


def no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper() -> None:
    """Orphaned descendants (the container after the middle process exits) come to us."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


# <linux/seccomp.h>
_SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4
BPF_MAXINSNS = 4096   # <linux/bpf_common.h>: the longest program the kernel takes


class _SockFprog(ctypes.Structure):
    """struct sock_fprog: a classic BPF program, len instructions of 8 bytes."""
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """seccomp(2) SECCOMP_SET_MODE_FILTER: from now on the program judges every syscall.

    At most BPF_MAXINSNS instructions: the kernel refuses more, and a longer
    count would not fit sock_fprog's unsigned short (it would be cut short).
    """
    count = len(program) // 8
    if count > BPF_MAXINSNS:
        raise ValueError(f"a BPF program of {count} instructions")
    fprog = _SockFprog(count, program)
    _check(_syscall("seccomp", _SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(fprog)), "seccomp")


# --- eBPF programs on cgroups (bpf(2)) ----------------------------------------

# include/uapi/linux/bpf.h: commands, one program type, one attach type, flags
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_DETACH = 9
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_OBJ_GET_INFO_BY_FD = 15
_BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2   # several programs on one cgroup, all of which must allow (runc's flag)
_VERIFIER_LOG_SIZE = 1 << 16


def _bpf(cmd: int, attr: ctypes.Array, what: str) -> int:
    return _check(_syscall("bpf", cmd, attr, len(attr)), what)


def bpf_prog_load(prog_type: int, insns: bytes, license: str, name: str = "") -> int:
    """BPF_PROG_LOAD: the program's fd. The verifier's log is in the error if it refuses."""
    insns_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(license.encode())

    def load(log_buf=None) -> int:
        # union bpf_attr, the BPF_PROG_LOAD part: prog_type, insn_cnt, insns, license,
        # log_level, log_size, log_buf, kern_version, prog_flags, prog_name[16]
        attr = ctypes.create_string_buffer(struct.pack(
            "IIQQIIQII16s", prog_type, len(insns) // 8, ctypes.addressof(insns_buf),
            ctypes.addressof(license_buf), 1 if log_buf else 0, len(log_buf) if log_buf else 0,
            ctypes.addressof(log_buf) if log_buf else 0, 0, 0, name.encode()[:15]), 72)
        return _bpf(_BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)")

    try:
        return load()
    except OSError as err:
        log = ctypes.create_string_buffer(_VERIFIER_LOG_SIZE)
        try:
            return load(log)   # again, to have the verifier say why
        except OSError:
            text = log.value.decode(errors="replace").strip()
            if text:
                raise OSError(err.errno, f"{err.strerror}; verifier log: "
                                         f"{' | '.join(text.splitlines()[-8:])}") from None
            raise err from None


def _attach_attr(target_fd: int, prog_fd: int, attach_type: int, flags: int) -> ctypes.Array:
    # target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd
    return ctypes.create_string_buffer(struct.pack("IIIII", target_fd, prog_fd, attach_type,
                                                   flags, 0), 20)


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """BPF_PROG_ATTACH: prog_fd's program applies to the cgroup target_fd from now on."""
    _bpf(_BPF_PROG_ATTACH, _attach_attr(target_fd, prog_fd, attach_type, flags),
         "bpf(BPF_PROG_ATTACH)")


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    _bpf(_BPF_PROG_DETACH, _attach_attr(target_fd, prog_fd, attach_type, 0),
         "bpf(BPF_PROG_DETACH)")


def bpf_prog_query(target_fd: int, attach_type: int) -> list[int]:
    """BPF_PROG_QUERY: the ids of the programs attached to the cgroup itself."""
    count = 64   # the kernel's limit of programs per cgroup and attach type
    while True:
        ids = (ctypes.c_uint32 * count)()
        # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
        attr = ctypes.create_string_buffer(struct.pack(
            "IIIIQI4x", target_fd, attach_type, 0, 0, ctypes.addressof(ids), count), 32)
        try:
            _bpf(_BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY)")
        except OSError as err:
            if err.errno == 28 and count < 4096:   # ENOSPC: more than we made room for
                count *= 4
                continue
            raise
        found = struct.unpack_from("I", attr, 24)[0]
        return list(ids[:found])


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(struct.pack("III", prog_id, 0, 0), 12)
    return _bpf(_BPF_PROG_GET_FD_BY_ID, attr, "bpf(BPF_PROG_GET_FD_BY_ID)")


def bpf_prog_info(prog_fd: int) -> tuple[int, int, str, bytes]:
    """BPF_OBJ_GET_INFO_BY_FD: (type, id, name, the instructions as the kernel keeps them)."""
    # struct bpf_prog_info, up to name: type, id, tag[8], jited_prog_len, xlated_prog_len,
    # jited_prog_insns, xlated_prog_insns, load_time, created_by_uid, nr_map_ids, map_ids, name[16]
    def get(xlated=None) -> ctypes.Array:
        info = ctypes.create_string_buffer(80)
        if xlated is not None:
            struct.pack_into("I", info, 20, len(xlated))
            struct.pack_into("Q", info, 32, ctypes.addressof(xlated))
        attr = ctypes.create_string_buffer(struct.pack("IIQ", prog_fd, len(info),
                                                       ctypes.addressof(info)), 16)
        _bpf(_BPF_OBJ_GET_INFO_BY_FD, attr, "bpf(BPF_OBJ_GET_INFO_BY_FD)")
        return info
    size = struct.unpack_from("I", get(), 20)[0]
    xlated = ctypes.create_string_buffer(size)
    info = get(xlated)
    prog_type, prog_id = struct.unpack_from("II", info, 0)
    name = info.raw[64:80].split(b"\0")[0].decode(errors="replace")
    return prog_type, prog_id, name, xlated.raw


# --- keyrings -----------------------------------------------------------------

# <linux/keyctl.h>
_KEYCTL_JOIN_SESSION_KEYRING = 1
_KEYCTL_SETPERM = 5
_KEYCTL_DESCRIBE = 6
KEY_USR_SEARCH = 0x00080000


def join_session_keyring(name: str) -> int:
    """keyctl(2): join the session keyring called name (made if there is none); its serial."""
    return _check(_syscall("keyctl", _KEYCTL_JOIN_SESSION_KEYRING, _b(name)), "keyctl")


def add_key_permission(serial: int, bits: int) -> None:
    """Add permission bits to a key's (its description: "type;uid;gid;perm;name")."""
    description = ctypes.create_string_buffer(4096)
    _check(_syscall("keyctl", _KEYCTL_DESCRIBE, serial, description, len(description)), "keyctl")
    perm = int(description.value.split(b";")[3], 16)
    _check(_syscall("keyctl", _KEYCTL_SETPERM, serial, ctypes.c_uint32(perm | bits)), "keyctl")


# --- terminals and network ----------------------------------------------------

_TIOCSPTLCK = 0x40045431
_TIOCGPTN = 0x80045430
_TIOCSCTTY = 0x540E
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def open_pty_master(ptmx: str) -> tuple[int, str]:
    """Open a new pty on the devpts instance of ptmx; return (master fd, slave path)."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, b"\0" * 4))[0]
    return master, os.path.join(os.path.dirname(os.path.realpath(ptmx)), str(number))


def new_session() -> None:
    os.setsid()


def make_controlling_tty(fd: int) -> None:
    new_session()
    fcntl.ioctl(fd, _TIOCSCTTY, 0)


_AF_INET = 2
_SOCK_DGRAM = 2


def link_up(name: str) -> None:
    """Set a network interface up (here: lo of a new network namespace)."""
    # Interface ioctls want any socket's fd: libc's socket(2), as the socket
    # module would cost every `run` ~3 ms to import.
    sock = _check(_libc.socket(_AF_INET, _SOCK_DGRAM, 0), "socket")
    try:
        ifreq = struct.pack("16sh14x", name.encode(), 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh14x", name.encode(), flags | _IFF_UP))
    finally:
        os.close(sock)


# --- what a hostile image must not reach: our binary, paths outside the rootfs ---
# (CVE-2019-5736 and CVE-2021-30465; docs/runc.md "An image that attacks the host")

PR_SET_DUMPABLE = 4
# <linux/memfd.h>: MFD_EXEC (Linux 6.3) says "this memfd is meant to be executed",
# which a host with vm.memfd_noexec = 1 otherwise refuses
_MFD_EXEC = 0x0010
_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


def set_dumpable(on: bool) -> None:
    """prctl(PR_SET_DUMPABLE): a non-dumpable process's /proc/PID/exe, mem, environ
    and fd/* open only for a process with CAP_SYS_PTRACE over the host (ptrace(2))."""
    prctl(PR_SET_DUMPABLE, int(on))


def sealed_memfd(name: str, data: bytes) -> int:
    """A close-on-exec memfd holding data; its seals forbid any write, resize or new seal."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create(name, flags | _MFD_EXEC)
    except OSError:   # EINVAL: a kernel before 6.3 knows no MFD_EXEC
        fd = os.memfd_create(name, flags)
    try:
        os.write(fd, data)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def exec_fd(fd: int, argv: list[str], env: dict[str, str]) -> None:
    """execveat(fd, "", AT_EMPTY_PATH) (glibc's fexecve): run the file fd holds.

    Where the kernel or a seccomp filter refuses execveat, execve of
    /proc/self/fd/N; only if that names the same file: a /proc the container
    mounted over could name another (it would still run with the user's creds).
    """
    try:
        os.execve(fd, argv, env)
    except OSError as err:
        if err.errno not in (errno.ENOSYS, errno.EPERM):
            raise
        proc_path = f"/proc/self/fd/{fd}"
        if not os.path.samestat(os.stat(proc_path), os.fstat(fd)):
            raise
        os.execve(proc_path, argv, env)


def mount_id(fd: int) -> int:
    """The id of the mount fd is on (proc(5): /proc/self/fdinfo's mnt_id)."""
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError(errno.ENOENT, "no mnt_id in fdinfo", f"/proc/self/fdinfo/{fd}")
