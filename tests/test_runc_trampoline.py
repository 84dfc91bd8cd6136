"""The pieces that keep a hostile image away from the host, one by one:
the sealed exec trampoline (mocker_runc/trampoline.py) and path resolution
inside the rootfs from an fd (mocker_runc/inroot.py). The attacks themselves
are in test_runc_host_attacks.py."""

import errno
import fcntl
import os
import platform
import shutil
import subprocess

import pytest

from mocker_common import inroot
from mocker_runc import linux, trampoline


def _run_trampoline(command_prefix, exe_path, program, args, pass_fds=()):
    """Run the trampoline; (exit code, what it wrote on its report fd, stdout)."""
    read_end, write_end = os.pipe()
    try:
        argv = trampoline.argv(write_end, program, args)
        proc = subprocess.Popen([*command_prefix(argv[0]), *argv[1:]] if command_prefix
                                else argv, executable=None if command_prefix else exe_path,
                                pass_fds=(write_end, *pass_fds), stdout=subprocess.PIPE,
                                env={"GREETING": "hello"})
        os.close(write_end)
        write_end = -1
        report = b""
        while chunk := os.read(read_end, 4096):
            report += chunk
        out = proc.stdout.read()
        return proc.wait(), report, out
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_trampoline_is_sealed_and_runs_the_program():
    if platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the trampoline exists for x86_64 and aarch64")
    fd = trampoline.sealed_fd()
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL
        with pytest.raises(PermissionError):
            os.write(fd, b"x")   # sealed: nobody can change it, not even root
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
        again = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)   # as a process inside might try
        try:
            with pytest.raises(PermissionError):
                os.write(again, b"x")
        finally:
            os.close(again)   # (while a file is open for writing, execve refuses it: ETXTBSY)
        exe = f"/proc/self/fd/{fd}"
        # The program gets its argv and env; the report fd closes at its execve.
        code, report, out = _run_trampoline(None, exe, "/bin/sh",
                                            ["sh", "-c", 'echo "$0 $GREETING"; ls /proc/self/fd'],
                                            pass_fds=(fd,))
        assert (code, report) == (0, b"")
        lines = out.decode().split()
        assert lines[:2] == ["sh", "hello"]
        # A failed execve: the prefix, the errno as one byte, exit 127.
        code, report, out = _run_trampoline(None, exe, "/no/such", ["such"], pass_fds=(fd,))
        assert code == 127 and report == trampoline.MARK + b'exec: "/no/such": ' + bytes([2])
        assert trampoline.failure_message(report) == 'exec: "/no/such": No such file or directory'
    finally:
        os.close(fd)


def test_aarch64_trampoline_under_qemu(tmp_path):
    """The aarch64 machine code, run by qemu-user where it is installed."""
    qemu = shutil.which("qemu-aarch64")
    if not qemu:
        pytest.skip("qemu-aarch64 (qemu-user) is not installed")
    exe = tmp_path / "trampoline-aarch64"
    exe.write_bytes(trampoline.elf("aarch64"))
    exe.chmod(0o755)
    # qemu cannot run an x86-64 program for it: a missing one shows the failure path,
    # and its own argv handling (argv[0] given with -0).
    code, report, _ = _run_trampoline(lambda argv0: [qemu, "-0", argv0, str(exe)], None,
                                      "/no/such", ["such"])
    assert code == 127 and trampoline.failure_message(report) == \
        'exec: "/no/such": No such file or directory'


def test_other_machines_are_refused_clearly():
    with pytest.raises(trampoline.TrampolineError, match="x86_64 and aarch64 only"):
        trampoline.elf("riscv64")


def test_failure_message_leaves_other_text_alone():
    assert trampoline.failure_message(b"startContainer hook failed") is None
    assert trampoline.failure_message(b"") is None


# --- inroot: resolving as if the rootfs were / -------------------------------------

@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """Each test runs with the kernel's openat2 and with the user-space walk."""
    if request.param == "walk":
        monkeypatch.setattr(inroot, "_openat2_missing", True)
    else:
        try:
            os.close(inroot.openat2(-100, "/", os.O_PATH, 0))
        except OSError as err:
            if err.errno == errno.ENOSYS:
                pytest.skip("this kernel has no openat2")
    return request.param


@pytest.fixture
def tree(tmp_path):
    """A rootfs whose links try to leave it in every way."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("inside\n")
    (root / "abs").symlink_to("/etc")                    # absolute: means root/etc
    (root / "up").symlink_to("../../../../../../etc")    # .. stops at the root
    (root / "magic").symlink_to("/proc/self/root")       # a magic link: never followed as one
    (root / "dangling").symlink_to("/made/by/us")
    (root / "loop").symlink_to("loop")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "host").symlink_to(outside)                  # a host path: means root + that path
    fd = inroot.open_root(str(root))
    yield root, fd, outside
    os.close(fd)


def _where(root, fd):
    try:
        return os.path.relpath(inroot.where(fd), root)
    finally:
        os.close(fd)


def test_links_resolve_inside_the_root(tree, resolver):
    root, fd, _ = tree
    assert _where(root, inroot.resolve(fd, "/abs/passwd")) == "etc/passwd"
    assert _where(root, inroot.resolve(fd, "up/passwd")) == "etc/passwd"
    assert _where(root, inroot.resolve(fd, "/../../etc/./passwd")) == "etc/passwd"
    with pytest.raises(OSError) as err:
        inroot.resolve(fd, "/loop/x")
    assert err.value.errno == errno.ELOOP


def test_magic_links_are_never_followed(tree, resolver):
    root, fd, _ = tree
    # openat2 refuses it (ELOOP); the walk reads "/proc/self/root" as text, inside the root
    try:
        place = inroot.resolve(fd, "/magic/etc")
    except OSError as err:
        assert err.errno in (errno.ELOOP, errno.ENOENT, errno.EXDEV)
    else:
        pytest.fail(f"resolved to {inroot.where(place)}")


def test_creating_through_links_stays_inside(tree, resolver):
    root, fd, outside = tree
    assert _where(root, inroot.resolve(fd, "/host/sub/dir", "dir")) == \
        os.path.relpath(str(root) + str(outside) + "/sub/dir", root)
    assert os.listdir(outside) == []
    assert _where(root, inroot.resolve(fd, "/dangling", "file")) == "made/by/us"
    assert (root / "made/by/us").is_file() and not os.path.lexists("/made")
