"""mocker_runc.seccomp: real filters loaded in forked children.

Each test forks; the child loads a filter (which can never be removed again)
and reports what its syscalls did through a pipe, so the test process itself
stays unfiltered.
"""

import ctypes
import errno
import json
import os
import re
import signal
import subprocess

import pytest

from mocker_common.errors import MockerError
from mocker_bundle.profile import DEFAULT_CAPABILITIES
from mocker_bundle.seccomp_profile import build as docker_profile
from mocker_runc import seccomp
from mocker_runc import libseccomp, seccomp_cache, seccomp_enosys
from tests.conftest import need_root

BUSYBOX = "/bin/busybox"
# A default errno no kernel path returns for these calls, so that a test can
# tell the filter's refusal from the kernel's own.
MARK = errno.ENOTRECOVERABLE


def in_child(func):
    """Run func in a forked child; returns (wait status, what func returned)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            result = {"ok": func()}
        except BaseException as e:  # report everything; never return into pytest
            result = {"error": f"{type(e).__name__}: {e}"}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    return status, (json.loads(data) if data else None)


def errno_of(call, *args):
    """The errno a call fails with, or 0 if it succeeds."""
    try:
        call(*args)
        return 0
    except OSError as e:
        return e.errno


def status_field(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return line.split()[1]


CLONE_NEWNS, CLONE_NEWUTS = 0x00020000, 0x04000000
PR_SET_NO_NEW_PRIVS = 38


def unshare(flags):
    """errno of unshare(2) (0 if it succeeds); os.unshare needs Python 3.12."""
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def raw_syscall(name, *args):
    """errno of a raw syscall by name (0 if it succeeds)."""
    libc = ctypes.CDLL(None, use_errno=True)
    number = libseccomp.syscall_number(name)
    return 0 if libc.syscall(number, *args) >= 0 else ctypes.get_errno()


def test_denied_syscalls_fail_with_the_configured_errno(tmp_path):
    need_root()
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTSUP},
            # only mode 0600 is refused: a condition on an argument
            {"names": ["fchmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS,
             "args": [{"index": 1, "value": 0o600, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    target = tmp_path / "f"
    target.write_text("")

    def child():
        seccomp.apply(profile)
        fd = os.open(target, os.O_RDONLY)
        return {
            "mkdir": errno_of(os.mkdir, tmp_path / "d"),
            "uname": errno_of(os.uname),
            "fchmod 600": errno_of(os.fchmod, fd, 0o600),
            "fchmod 644": errno_of(os.fchmod, fd, 0o644),
            "Seccomp": status_field("Seccomp"),
            "NoNewPrivs": status_field("NoNewPrivs"),
        }

    status, result = in_child(child)
    assert os.waitstatus_to_exitcode(status) == 0
    assert result["ok"] == {
        "mkdir": errno.EPERM, "uname": errno.ENOTSUP, "fchmod 600": errno.EROFS, "fchmod 644": 0,
        "Seccomp": "2",        # SECCOMP_MODE_FILTER
        "NoNewPrivs": "0",     # left to the runtime (process.noNewPrivileges)
    }
    assert not (tmp_path / "d").exists()
    # the test process itself is not filtered
    assert status_field("Seccomp") == "0" and os.uname().sysname == "Linux"


def test_kill_process_action_kills_with_sigsys():
    need_root()
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}

    def child():
        seccomp.apply(profile)
        os.getppid()
        return "survived"

    status, result = in_child(child)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
    assert result is None


def test_the_default_profile_runs_busybox_commands(tmp_path):
    need_root()
    script = ("set -e; echo hello | tr a-z A-Z; mkdir d; echo x > d/f; cat d/f; ls d; "
              "rm -r d; sleep 0.01; date +%Y >/dev/null; id -u; wc -l < /proc/self/status >/dev/null; "
              "sort < /dev/null; ps >/dev/null; sh -c 'exit 3' || echo sub=$?; "
              "grep Seccomp: /proc/self/status")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(tmp_path)
            os.dup2(write_end, 1)
            seccomp.apply(docker_profile(DEFAULT_CAPABILITIES))
            os.execv(BUSYBOX, ["sh", "-c", script])
        finally:
            os._exit(127)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out.split("\n")[:5] == ["HELLO", "x", "f", "0", "sub=3"]
    assert "Seccomp:\t2" in out


def test_the_default_profile_denies_namespaces_mount_and_kexec(tmp_path):
    need_root()
    profile = docker_profile(DEFAULT_CAPABILITIES)
    profile["defaultErrnoRet"] = MARK

    def child():
        assert unshare(CLONE_NEWNS) == 0  # before the filter: a private mount table to try mount in
        libc = ctypes.CDLL(None, use_errno=True)
        seccomp.apply(profile)
        mounted = libc.mount(b"none", str(tmp_path).encode(), b"tmpfs", 0, None)
        return {
            "unshare": unshare(CLONE_NEWUTS),
            "mount": 0 if mounted == 0 else ctypes.get_errno(),
            "kexec_load": raw_syscall("kexec_load", 0, 0, 0, 0),
            "clone3": raw_syscall("clone3", 0, 0),
            "getpid": raw_syscall("getpid"),
        }

    status, result = in_child(child)
    assert result["ok"] == {"unshare": MARK, "mount": MARK, "kexec_load": MARK,
                            "clone3": errno.ENOSYS, "getpid": 0}
    # without the filter, the same process could do all of it (or got another errno)
    status, result = in_child(lambda: {"unshare": unshare(CLONE_NEWUTS),
                                       "kexec_load": raw_syscall("kexec_load", 0, 0, 0, 0)})
    assert result["ok"]["unshare"] == 0 and result["ok"]["kexec_load"] != MARK


def test_the_default_profile_refuses_clone_into_new_namespaces():
    need_root()
    profile = docker_profile(DEFAULT_CAPABILITIES)
    profile["defaultErrnoRet"] = MARK

    def child():
        seccomp.apply(profile)
        # busybox unshare calls unshare(2); busybox's own fork uses plain clone
        out = subprocess.run([BUSYBOX, "sh", "-c", "echo forked; unshare -u true"],
                             capture_output=True, text=True)
        return [out.stdout, out.stderr]

    _, result = in_child(child)
    stdout, stderr = result["ok"]
    assert stdout == "forked\n"
    assert "unshare" in stderr and os.strerror(MARK) in stderr


def test_without_no_new_privs_an_unprivileged_process_cannot_load_a_filter():
    """Why the runtime loads the filter before dropping privileges unless
    process.noNewPrivileges is set (as runc does)."""
    need_root()
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}

    def as_nobody(no_new_privs):
        def child():
            flt = seccomp.prepare(profile)
            os.setgid(65534)
            os.setuid(65534)
            if no_new_privs:
                ctypes.CDLL(None).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            flt.load()
            return status_field("Seccomp")
        return in_child(child)[1]

    assert as_nobody(no_new_privs=True) == {"ok": "2"}
    refused = as_nobody(no_new_privs=False)["error"]
    assert "without no_new_privs it needs CAP_SYS_ADMIN" in refused


def raw_number(number, *args):
    """errno of the raw syscall numbered number (0 if it succeeds)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.syscall(number, *args) >= 0 else ctypes.get_errno()


def test_syscalls_newer_than_the_profile_are_not_implemented():
    """runc's ENOSYS stub: above the highest number the profile names, a call is
    "not implemented" (libc falls back to an older one), not the default EPERM."""
    need_root()
    profile = docker_profile(DEFAULT_CAPABILITIES)
    native = libseccomp.native_arch()
    highest = seccomp_enosys.highest_numbers(profile)[native][native]
    assert highest >= libseccomp.syscall_number("futex_waitv")

    def child():
        seccomp.apply(profile)
        return {"above": raw_number(highest + 1, 0, 0), "far above": raw_number(1000),
                "acct": raw_syscall("acct", 0), "getpid": raw_syscall("getpid")}

    _, result = in_child(child)
    assert result["ok"] == {"above": errno.ENOSYS, "far above": errno.ENOSYS,
                            "acct": errno.EPERM, "getpid": 0}


@pytest.mark.parametrize("profile", [
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS,
     "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]},
])
def test_no_stub_where_the_default_already_allows_or_says_enosys(profile):
    assert seccomp_enosys.stub(profile) == b""


def test_the_stub_sends_each_architecture_to_its_own_limit():
    """x86_64 and x32 share one AUDIT_ARCH (x32 numbers carry bit 30); i386 has its own."""
    if os.uname().machine != "x86_64":
        pytest.skip("x86_64's three architectures")
    profile = docker_profile(DEFAULT_CAPABILITIES, machine="x86_64")
    highest = seccomp_enosys.highest_numbers(profile)
    x86_64, x32, i386 = (libseccomp.arch_token(n) for n in ("x86_64", "x32", "x86"))
    assert set(highest) == {x86_64, i386} and set(highest[x86_64]) == {x86_64, x32}
    assert highest[x86_64][x32] & seccomp_enosys.X32_SYSCALL_BIT
    code = seccomp_enosys.stub(profile)
    assert len(code) % 8 == 0 and 8 < len(code) // 8 < 32


@pytest.mark.parametrize("cfg, message", [
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "invalid action 'SCMP_ACT_BOGUS'"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "SCMP_ACT_NOTIFY .* not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}, "invalid architecture"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}, "unsupported flag"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "op": "SCMP_CMP_EQ"}]}]},
     "invalid argument condition"),
])
def test_bad_profiles_are_refused_before_anything_is_loaded(cfg, message):
    with pytest.raises(MockerError, match=message):
        seccomp.prepare(cfg)
    assert status_field("Seccomp") == "0"


# --- built programs kept under --root (seccomp_cache) -----------------------------

DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                            "errnoRet": MARK}]}


def mkdir_errno_under(program, directory):
    """The errno mkdir fails with in a child that loaded program (0: it worked)."""
    def child():
        program.load()
        return errno_of(os.mkdir, directory / "d")
    return in_child(child)[1]["ok"]


def cache_entries(root):
    return sorted((root / seccomp_cache.DIRNAME).iterdir())


def test_a_built_program_is_kept_and_used_again(tmp_path):
    need_root()
    first = seccomp.prepare(DENY_MKDIR, cache_root=str(tmp_path))
    [entry] = cache_entries(tmp_path)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / seccomp_cache.DIRNAME).stat().st_mode & 0o777 == 0o700
    again = seccomp.prepare(DENY_MKDIR, cache_root=str(tmp_path))
    assert again.bpf == first.bpf == seccomp.build(DENY_MKDIR)
    assert mkdir_errno_under(again, tmp_path) == MARK
    # another profile gets its own entry; the first one is still there
    other = {**DENY_MKDIR, "syscalls": [{**DENY_MKDIR["syscalls"][0], "errnoRet": errno.EROFS}]}
    assert mkdir_errno_under(seccomp.prepare(other, cache_root=str(tmp_path)), tmp_path) == errno.EROFS
    assert len(cache_entries(tmp_path)) == 2


ALLOW_ALL = seccomp.build({"defaultAction": "SCMP_ACT_ALLOW"})


@pytest.mark.parametrize("tamper", ["another config's key", "writable by others", "a symlink"])
def test_an_entry_not_built_for_this_config_or_not_ours_is_not_loaded(tmp_path, tamper):
    """An allow-all program planted under the profile's entry name never replaces the
    profile: the entry must hold this exact config and be writable by us alone."""
    need_root()
    seccomp.prepare(DENY_MKDIR, cache_root=str(tmp_path))
    [entry] = cache_entries(tmp_path)
    key, _, _ = entry.read_bytes().partition(b"\n")
    if tamper == "another config's key":
        entry.write_bytes(key.replace(b'"mkdir"', b'"rmdir"') + b"\n" + ALLOW_ALL)
    elif tamper == "writable by others":
        entry.write_bytes(key + b"\n" + ALLOW_ALL)
        entry.chmod(0o666)
    else:
        planted = tmp_path / "planted"
        planted.write_bytes(key + b"\n" + ALLOW_ALL)
        entry.unlink()
        entry.symlink_to(planted)
    program = seccomp.prepare(DENY_MKDIR, cache_root=str(tmp_path))
    assert program.bpf != ALLOW_ALL
    assert mkdir_errno_under(program, tmp_path) == MARK


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path):
    need_root()
    (tmp_path / seccomp_cache.DIRNAME).write_text("not a directory")
    program = seccomp.prepare(DENY_MKDIR, cache_root=str(tmp_path))
    assert mkdir_errno_under(program, tmp_path) == MARK


def test_a_program_longer_than_the_kernel_takes_is_refused_with_its_length():
    rules = [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]} for i in range(5000)]
    program = seccomp.prepare({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
    _, result = in_child(program.load)   # in a child: were it loaded, only the child is filtered
    assert re.fullmatch(r"MockerError: seccomp: cannot load the filter: 50\d\d BPF "
                        r"instructions, more than the kernel's 4096", result["error"]), result
