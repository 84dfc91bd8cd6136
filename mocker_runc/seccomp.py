"""seccomp from runtime-spec `linux.seccomp`, through libseccomp.

runtime-spec config-linux.md "Seccomp": a default action, the architectures
the filter covers, and rules (syscall names, an action, optional argument
comparisons). The runtime loads it in the container's process just before
execve, so the filter governs the container's program, not the runtime.

    flt = seccomp.prepare(cfg)   # parse and build (may run before fork: errors are clear there)
    flt.load(); flt.release()    # in the child, last thing before execve
    seccomp.apply(cfg)           # both at once

Importing this module loads libseccomp, so import it while the host's
libraries are still visible (before pivot_root): afterwards only the
container's files are, and neither this package nor libseccomp can be found.

Syscall names libseccomp does not know (newer than the library, or for other
architectures) are skipped, as runc does.
"""

import errno
import logging

from mocker_common.errors import MockerError

from . import libseccomp as ls

log = logging.getLogger(__name__)

try:
    ls.lib()
except MockerError:
    pass  # no libseccomp here: building a filter will say so

_ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
            "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
        "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
_MAX_ARGS = 6  # a syscall has at most six arguments


def apply(cfg: dict | None) -> None:
    """Install the linux.seccomp filter cfg in the calling process (nothing if empty)."""
    if not cfg:
        return
    flt = prepare(cfg)
    try:
        flt.load()
    finally:
        flt.release()


def prepare(cfg: dict):
    """Build a libseccomp filter for cfg, ready to load(); raises MockerError if invalid."""
    default = _action(cfg.get("defaultAction"), cfg.get("defaultErrnoRet"), "defaultAction")
    flt = ls.Filter(default)
    try:
        # The runtime sets no_new_privs itself when process.noNewPrivileges asks;
        # libseccomp would otherwise always set it.
        flt.set_attr(ls.ATTR_CTL_NNP, 0, "cannot leave no_new_privs to the runtime")
        for flag in cfg.get("flags") or []:
            flt.set_attr(_flag_attr(flag), 1, f"flag {flag} is not supported by this kernel")
        for name in cfg.get("architectures") or []:
            _add_arch(flt, name)
        for rule in cfg.get("syscalls") or []:
            _add_syscall_rule(flt, rule, default)
    except BaseException:
        flt.release()
        raise
    return flt


def default_profile(capabilities: list[str] | None = None) -> dict:
    """A Docker-like default linux.seccomp: allow a list, fail the rest with EPERM.

    capabilities (e.g. ["CAP_SYS_ADMIN"]) also allow the syscalls that need them.
    """
    from . import seccomp_profile  # only mocker-bundle needs it

    return seccomp_profile.build(capabilities or [])


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


def _flag_attr(flag: str) -> int:
    attrs = {"SECCOMP_FILTER_FLAG_TSYNC": ls.ATTR_CTL_TSYNC,
             "SECCOMP_FILTER_FLAG_LOG": ls.ATTR_CTL_LOG,
             "SECCOMP_FILTER_FLAG_SPEC_ALLOW": ls.ATTR_CTL_SSB}
    if flag not in attrs:
        raise MockerError(f"seccomp: unsupported flag {flag!r}")
    return attrs[flag]


def _add_arch(flt, name: str) -> None:
    if not isinstance(name, str) or not name.startswith("SCMP_ARCH_"):
        raise MockerError(f"seccomp: invalid architecture {name!r}")
    # SCMP_ARCH_X86_64 -> "x86_64", SCMP_ARCH_AARCH64 -> "aarch64"
    token = ls.arch_token(name[len("SCMP_ARCH_"):].lower())
    if token is None:
        log.debug("seccomp: skipping architecture %s, unknown to libseccomp", name)
        return
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
            log.debug("seccomp: skipping syscall %s, unknown to libseccomp", name)
            continue
        for group in groups:
            flt.add_rule(action, number, name, group)


def _condition(arg: dict, names: list) -> tuple:
    index, op = arg.get("index"), arg.get("op")
    if not isinstance(index, int) or not 0 <= index < _MAX_ARGS or op not in _OPS:
        raise MockerError(f"seccomp: invalid argument condition {arg} for {names}")
    op_code = getattr(ls, op.removeprefix("SCMP_"))  # SCMP_CMP_EQ -> ls.CMP_EQ
    # for MASKED_EQ, value is the mask and valueTwo the expected masked value
    return (index, op_code, arg.get("value", 0) & (2**64 - 1), arg.get("valueTwo", 0) & (2**64 - 1))
