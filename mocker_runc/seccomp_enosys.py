"""The ENOSYS stub: a syscall newer than the profile is "not implemented", not refused.

A seccomp profile names the syscalls known when it was written; its default
action (EPERM in Docker's) also catches every syscall the kernel has gained
since. A program that tries a new call (glibc tries clone3, faccessat2, ...)
and gets EPERM takes it as a refusal and fails; with ENOSYS it falls back to
the older call, as it would on an older kernel. So runc puts a short BPF
program in front of libseccomp's (libcontainer/seccomp/patchbpf), and
mocker-runc does the same:

    A = seccomp_data.arch
    for each architecture of the filter:
        if A is it:
            A = seccomp_data.nr
            if A > the highest number the profile names there: return ERRNO(ENOSYS)
    go on to libseccomp's program (which loads what it needs itself)

"The highest number the profile names" counts every rule, whatever its action,
as libseccomp numbers it. x86_64 and x32 share one AUDIT_ARCH value: an x32
syscall number has bit 30 set. s390's syscall 0 multiplexes others, which the
filter cannot see through: it is "not implemented" too.

No stub when the profile's default lets calls through (nothing to soften) or
already answers ENOSYS.
"""

import errno
import struct

from mocker_common.errors import MockerError

from . import libseccomp as ls

# classic BPF opcodes (linux/bpf_common.h) and the fields of struct seccomp_data
_LOAD = 0x20        # BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k
_JUMP_EQ = 0x15     # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_GT = 0x25     # BPF_JMP | BPF_JGT | BPF_K
_JUMP_SET = 0x45    # BPF_JMP | BPF_JSET | BPF_K: A & k != 0
_JUMP = 0x05        # BPF_JMP | BPF_JA: always, k instructions ahead
_RETURN = 0x06      # BPF_RET | BPF_K
_NR, _ARCH = 0, 4   # offsets of seccomp_data.nr and .arch

X32_SYSCALL_BIT = 0x40000000
_ALLOWING = {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"}


def stub(cfg: dict) -> bytes:
    """The instructions (struct sock_filter[]) to put before libseccomp's program."""
    if cfg.get("defaultAction") in _ALLOWING or cfg.get("defaultErrnoRet") == errno.ENOSYS:
        return b""
    highest = highest_numbers(cfg)
    return assemble(program(highest)) if highest else b""


def highest_numbers(cfg: dict) -> dict[int, dict[int, int]]:
    """{audit arch: {libseccomp arch token: highest syscall number the rules name}}."""
    tokens = [ls.arch_token(name.removeprefix("SCMP_ARCH_").lower())
              for name in cfg.get("architectures") or []]
    tokens.append(ls.native_arch())   # the filter always covers it
    names = {name for rule in cfg.get("syscalls") or [] for name in rule.get("names") or []}
    highest: dict[int, dict[int, int]] = {}
    for token in dict.fromkeys(t for t in tokens if t):
        numbers = [ls.syscall_number_in(token, name) for name in names]
        top = max((n for n in numbers if n is not None and n > 0), default=0)
        if top:
            highest.setdefault(_audit_arch(token), {})[token] = top
    return highest


def _audit_arch(token: int) -> int:
    """libseccomp's tokens are the kernel's AUDIT_ARCH_* values, except x32's."""
    return _X86_64 if token == _X32 else token


_X86_64, _X32 = 0xC000003E, 0x4000003E
_S390, _S390X = 0x00000016, 0x80000016


def program(highest: dict[int, dict[int, int]]) -> list[tuple]:
    """The stub as (opcode, k, where to go if true, if false) and "label:" strings."""
    code = [(_LOAD, _ARCH, None, None)]
    code += [(_JUMP_EQ, arch, f"arch {arch:#x}:", None) for arch in highest]
    code.append((_JUMP, "filter:", None, None))
    for arch, by_token in highest.items():
        code += [f"arch {arch:#x}:", (_LOAD, _NR, None, None)]
        if arch in (_S390, _S390X):
            code.append((_JUMP_EQ, 0, "enosys:", None))
        if arch == _X86_64:
            code += _x86_64_checks(by_token.get(_X86_64), by_token.get(_X32))
        else:
            code += _above(max(by_token.values()))
    code += ["enosys:", (_RETURN, ls.act_errno(errno.ENOSYS), None, None), "filter:"]
    return code


def _x86_64_checks(native: int | None, x32: int | None) -> list:
    code = [(_JUMP_SET, X32_SYSCALL_BIT, "x32:" if x32 else "filter:", None)]
    code += _above(native) if native else [(_JUMP, "filter:", None, None)]
    return code + (["x32:"] + _above(x32) if x32 else [])


def _above(number: int) -> list:
    return [(_JUMP_GT, number, "enosys:", None), (_JUMP, "filter:", None, None)]


def assemble(code: list) -> bytes:
    """Labels to offsets (BPF jumps go forward only), then struct sock_filter[]."""
    where, position = {}, 0
    for item in code:
        if isinstance(item, str):
            where[item] = position
        else:
            position += 1
    out, position = [], 0
    for item in code:
        if isinstance(item, str):
            continue
        op, k, if_true, if_false = item
        position += 1
        if op == _JUMP:
            k, if_true = where[k] - position, None
        jt, jf = (where[label] - position if label else 0 for label in (if_true, if_false))
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise MockerError("seccomp: the ENOSYS stub has a jump too far")  # cannot happen: a few arches
        out.append(struct.pack("=HBBI", op, jt, jf, k))
    return b"".join(out)
