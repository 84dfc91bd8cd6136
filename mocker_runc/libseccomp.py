"""A ctypes binding to the few libseccomp calls that build a filter.

libseccomp (seccomp_init(3), seccomp_rule_add(3), seccomp_export_bpf(3)) turns
a list of "syscall -> action" rules into a BPF program for the kernel's
seccomp(2), for each CPU architecture the filter covers. runc links the same
library; it is installed with runc (libseccomp.so.2). mocker-runc takes the
program and loads it itself (linux.seccomp_set_filter), as runc does too, so
that a program once built can be kept (seccomp_cache.py).

libseccomp functions return a negative errno on failure.
"""

import ctypes
import errno
import os

from mocker_common.errors import MockerError

LIBRARY = "libseccomp.so.2"

# Actions (seccomp.h): the top 16 bits choose the action, the low 16 bits carry
# its data (an errno for ERRNO, a message for TRACE).
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def act_trace(code: int) -> int:
    return 0x7FF00000 | (code & 0xFFFF)


# Argument comparisons (enum scmp_compare)
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = range(1, 8)

# Filter attributes (enum scmp_filter_attr)
ATTR_CTL_NNP = 3     # set no_new_privs when loading (on by default!)
ATTR_CTL_TSYNC = 4   # apply to every thread of the process
ATTR_CTL_LOG = 6     # log every action but ALLOW (SECCOMP_FILTER_FLAG_LOG)
ATTR_CTL_SSB = 7     # keep speculative store bypass allowed (SECCOMP_FILTER_FLAG_SPEC_ALLOW)
ATTR_API_SYSRAWRC = 9  # report the kernel's own errno (else libseccomp says ECANCELED)


class ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp: compare syscall argument `arg` using `op`."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_lib = None


def lib() -> ctypes.CDLL:
    """The loaded library, with argument and result types declared."""
    global _lib
    if _lib is None:
        try:
            handle = ctypes.CDLL(LIBRARY, use_errno=True)
        except OSError:
            raise MockerError(f"cannot load {LIBRARY}: install libseccomp (Debian: libseccomp2)") from None
        ctx = ctypes.c_void_p
        for name, restype, argtypes in (
            ("seccomp_init", ctx, [ctypes.c_uint32]),
            ("seccomp_release", None, [ctx]),
            ("seccomp_attr_set", ctypes.c_int, [ctx, ctypes.c_int, ctypes.c_uint32]),
            ("seccomp_arch_add", ctypes.c_int, [ctx, ctypes.c_uint32]),
            ("seccomp_arch_resolve_name", ctypes.c_uint32, [ctypes.c_char_p]),
            ("seccomp_syscall_resolve_name", ctypes.c_int, [ctypes.c_char_p]),
            ("seccomp_syscall_resolve_name_arch", ctypes.c_int, [ctypes.c_uint32, ctypes.c_char_p]),
            ("seccomp_arch_native", ctypes.c_uint32, []),
            ("seccomp_rule_add_array", ctypes.c_int,
             [ctx, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)]),
            ("seccomp_export_bpf", ctypes.c_int, [ctx, ctypes.c_int]),
            ("seccomp_version", ctypes.POINTER(ctypes.c_uint * 3), []),
        ):
            func = getattr(handle, name)
            func.restype, func.argtypes = restype, argtypes
        _lib = handle
    return _lib


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise MockerError(f"seccomp: {what}: {os.strerror(-rc)}")
    return rc


NR_SCMP_ERROR = -1   # the name is unknown to libseccomp


def syscall_number(name: str) -> int | None:
    """libseccomp's number for a syscall, or None if it does not know the name.

    A syscall this architecture lacks but another has (socketcall, ipc, ...)
    gets a negative pseudo-number (below -10000). Its rule must still be added:
    libseccomp applies it to the filter's other architectures (x86 reaches
    `socket` through socketcall), and without it their rules can conflict.
    """
    number = lib().seccomp_syscall_resolve_name(name.encode())
    return None if number == NR_SCMP_ERROR else number


def syscall_number_in(arch: int, name: str) -> int | None:
    """The number of a syscall in architecture arch (a token), or None if unknown there.

    For x32 the number carries the x32 bit (0x40000000), as the kernel sees it.
    """
    number = lib().seccomp_syscall_resolve_name_arch(arch, name.encode())
    return None if number == NR_SCMP_ERROR else number


def native_arch() -> int:
    """The token of the architecture libseccomp was built for (this process's)."""
    return lib().seccomp_arch_native()


def version() -> str:
    """The library's version, "2.5.4": its syscall tables and code generator decide the program."""
    return ".".join(map(str, lib().seccomp_version().contents))


def arch_token(name: str) -> int | None:
    """libseccomp's token for an architecture name ("x86_64", "aarch64", ...)."""
    return lib().seccomp_arch_resolve_name(name.encode()) or None


class Filter:
    """A seccomp filter being built; load() installs it in the calling process."""

    def __init__(self, default_action: int):
        self._ctx = lib().seccomp_init(default_action)
        if not self._ctx:
            raise MockerError(f"seccomp: invalid default action {default_action:#x}")
        lib().seccomp_attr_set(self._ctx, ATTR_API_SYSRAWRC, 1)  # libseccomp < 2.5 lacks it: fine

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self) -> None:
        if self._ctx:
            lib().seccomp_release(self._ctx)
            self._ctx = None

    def set_attr(self, attr: int, value: int, what: str) -> None:
        _check(lib().seccomp_attr_set(self._ctx, attr, value), what)

    def add_arch(self, token: int, name: str) -> None:
        rc = lib().seccomp_arch_add(self._ctx, token)
        if rc != -errno.EEXIST:  # the native architecture is there from the start
            _check(rc, f"cannot add architecture {name}")

    def add_rule(self, action: int, syscall: int, name: str, args: list[tuple] = ()) -> None:
        """Add `action` for syscall when all of args (index, op, a, b) match."""
        array = (ArgCmp * len(args))(*(ArgCmp(*arg) for arg in args)) if args else None
        rc = lib().seccomp_rule_add_array(self._ctx, action, syscall, len(args), array)
        _check(rc, f"cannot add the rule for {name}")

    def export_bpf(self) -> bytes:
        """The BPF program seccomp_load(3) would give the kernel (struct sock_filter[])."""
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib().seccomp_export_bpf(self._ctx, fd), "cannot generate the filter")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
