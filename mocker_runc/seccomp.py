"""seccomp from runtime-spec `linux.seccomp`, through libseccomp.

runtime-spec config-linux.md "Seccomp": a default action, the architectures
the filter covers, and rules (syscall names, an action, optional argument
comparisons). The runtime loads it in the container's process just before
execve, so the filter governs the container's program, not the runtime.

    program = seccomp.prepare(cfg, root)   # before fork: errors are clear there
    program.load()                          # in the child, last thing before execve
    seccomp.apply(cfg)                      # both at once

prepare() has libseccomp build the BPF program (unless it was built before
with this very config: seccomp_cache.py, under --root); load() is one
seccomp(2) call, which needs neither libseccomp nor the host's files, so it
works after pivot_root.

Syscall names libseccomp does not know (newer than the library, or for other
architectures) are skipped, as runc does. A syscall numbered above every one
the profile names fails with ENOSYS, not the default action, as under runc
(seccomp_enosys.py). Which profile to apply is config.json's business: Docker's
default is written by mocker-bundle (mocker_bundle/seccomp_profile.py).
"""

import errno
import os

from mocker_common.errors import MockerError

from . import libseccomp as ls
from . import linux, seccomp_cache, seccomp_enosys

_ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
            "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
        "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
_MAX_ARGS = 6  # a syscall has at most six arguments
# linux.seccomp.flags: (seccomp(2) flag, the same for libseccomp's filter attribute)
_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": (linux.SECCOMP_FILTER_FLAG_TSYNC, ls.ATTR_CTL_TSYNC),
          "SECCOMP_FILTER_FLAG_LOG": (linux.SECCOMP_FILTER_FLAG_LOG, ls.ATTR_CTL_LOG),
          "SECCOMP_FILTER_FLAG_SPEC_ALLOW": (linux.SECCOMP_FILTER_FLAG_SPEC_ALLOW, ls.ATTR_CTL_SSB)}


class Program:
    """A built filter: BPF instructions (struct sock_filter[]) and seccomp(2) flags."""

    def __init__(self, bpf: bytes, flags: int):
        self.bpf, self.flags = bpf, flags

    def load(self) -> None:
        """seccomp(2) SECCOMP_SET_MODE_FILTER: from now on the filter is enforced."""
        count = len(self.bpf) // 8
        if count > linux.BPF_MAXINSNS:
            raise MockerError(f"seccomp: cannot load the filter: {count} BPF instructions, "
                              f"more than the kernel's {linux.BPF_MAXINSNS}")
        try:
            linux.seccomp_set_filter(self.bpf, self.flags)
        except OSError as err:
            if err.errno == errno.EACCES:
                raise MockerError("seccomp: cannot load the filter: without no_new_privs it "
                                  "needs CAP_SYS_ADMIN, so load it before dropping "
                                  "capabilities") from None
            raise MockerError(f"seccomp: cannot load the filter: {os.strerror(err.errno)}") from None


def apply(cfg: dict | None) -> None:
    """Install the linux.seccomp filter cfg in the calling process (nothing if empty)."""
    if cfg:
        prepare(cfg).load()


def prepare(cfg: dict, cache_root: str | None = None) -> Program:
    """The program for cfg, ready to load(); raises MockerError if cfg is invalid.

    With cache_root (mocker-runc's --root), a program built before for this
    very cfg is used again, and a new one kept.
    """
    flags = 0
    for name in cfg.get("flags") or []:
        if name not in _FLAGS:
            raise MockerError(f"seccomp: unsupported flag {name!r}")
        flags |= _FLAGS[name][0]
    key = seccomp_cache.cache_key(cfg, ls.version())
    bpf = seccomp_cache.read(cache_root, key) if cache_root else None
    if bpf is None:
        bpf = build(cfg)
        if cache_root:
            seccomp_cache.write(cache_root, key, bpf)
    return Program(bpf, flags)


def build(cfg: dict) -> bytes:
    """The BPF program for cfg: runc's ENOSYS stub, then what libseccomp builds."""
    default = _action(cfg.get("defaultAction"), cfg.get("defaultErrnoRet"), "defaultAction")
    with ls.Filter(default) as flt:
        # The runtime sets no_new_privs itself when process.noNewPrivileges asks;
        # libseccomp would otherwise always set it.
        flt.set_attr(ls.ATTR_CTL_NNP, 0, "cannot leave no_new_privs to the runtime")
        for flag in cfg.get("flags") or []:
            flt.set_attr(_FLAGS[flag][1], 1, f"flag {flag} is not supported by this kernel")
        for name in cfg.get("architectures") or []:
            _add_arch(flt, name)
        for rule in cfg.get("syscalls") or []:
            _add_syscall_rule(flt, rule, default)
        return seccomp_enosys.stub(cfg) + flt.export_bpf()


def _action(name: str | None, errno_ret: int | None, where: str) -> int:
    if name not in _ACTIONS:
        if name == "SCMP_ACT_NOTIFY":
            raise MockerError("seccomp: SCMP_ACT_NOTIFY (a user-space listener) is not supported")
        raise MockerError(f"seccomp: invalid action {name!r} in {where}")
    code = errno.EPERM if errno_ret is None else errno_ret  # runc's default errno
    return {
        "SCMP_ACT_KILL": ls.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": ls.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": ls.ACT_KILL_PROCESS,
        "SCMP_ACT_TRAP": ls.ACT_TRAP,
        "SCMP_ACT_ERRNO": ls.act_errno(code),
        "SCMP_ACT_TRACE": ls.act_trace(code),
        "SCMP_ACT_ALLOW": ls.ACT_ALLOW,
        "SCMP_ACT_LOG": ls.ACT_LOG,
    }[name]


def _add_arch(flt, name: str) -> None:
    if not isinstance(name, str) or not name.startswith("SCMP_ARCH_"):
        raise MockerError(f"seccomp: invalid architecture {name!r}")
    # SCMP_ARCH_X86_64 -> "x86_64", SCMP_ARCH_AARCH64 -> "aarch64"
    token = ls.arch_token(name[len("SCMP_ARCH_"):].lower())
    if token is not None:   # else unknown to libseccomp: skipped
        flt.add_arch(token, name)


def _add_syscall_rule(flt, rule: dict, default: int) -> None:
    names = rule.get("names") or []
    action = _action(rule.get("action"), rule.get("errnoRet"), f"the rule for {names}")
    if action == default:
        return  # libseccomp refuses a rule that repeats the default; it changes nothing
    conditions = [_condition(arg, names) for arg in rule.get("args") or []]
    # The spec ANDs a rule's conditions, but libseccomp allows one condition per
    # argument in a rule; with several on one argument, add one rule per
    # condition (ORed), as runc does.
    indexes = [c[0] for c in conditions]
    groups = [[c] for c in conditions] if len(set(indexes)) < len(indexes) else [conditions]
    for name in names:
        number = ls.syscall_number(name)
        if number is None:
            continue   # unknown to libseccomp: skipped
        for group in groups:
            flt.add_rule(action, number, name, group)


def _condition(arg: dict, names: list) -> tuple:
    index, op = arg.get("index"), arg.get("op")
    if not isinstance(index, int) or not 0 <= index < _MAX_ARGS or op not in _OPS:
        raise MockerError(f"seccomp: invalid argument condition {arg} for {names}")
    op_code = getattr(ls, op.removeprefix("SCMP_"))  # SCMP_CMP_EQ -> ls.CMP_EQ
    # for MASKED_EQ, value is the mask and valueTwo the expected masked value
    return (index, op_code, arg.get("value", 0) & (2**64 - 1), arg.get("valueTwo", 0) & (2**64 - 1))
