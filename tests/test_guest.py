"""tests/guest, the pure cgroup v2 guest: its pure parts, then one real boot."""

import io
import os
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.guest import initramfs, vm


def test_newc_archive_is_what_cpio_reads(tmp_path):
    archive = initramfs.cpio_newc({
        "bin": (stat.S_IFDIR | 0o755, b""),
        "bin/hello": (stat.S_IFREG | 0o755, b"#!/bin/sh\necho hi\n"),
        "odd": (stat.S_IFREG | 0o644, b"abc"),
    })
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=archive, capture_output=True, check=True)
    names = [line.split()[-1] for line in listing.stdout.decode().splitlines()]
    assert names == ["bin", "bin/hello", "odd"]
    subprocess.run(["cpio", "-id", "--quiet"], input=archive, cwd=tmp_path, check=True)
    assert (tmp_path / "bin" / "hello").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (tmp_path / "odd").read_bytes() == b"abc"


def test_modules_come_after_their_dependencies(tmp_path):
    base = tmp_path / "6.1.0-x"
    base.mkdir()
    (base / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n")
    order = [p.name for p in initramfs.module_order("6.1.0-x", ["9pnet_virtio", "9p", "absent"], tmp_path)]
    assert order == ["9pnet.ko", "virtio_ring.ko", "9pnet_virtio.ko", "netfs.ko", "9p.ko"]


def test_exit_records_of_both_inits():
    assert vm._exit_status("exited 3\n") == 3
    assert vm._exit_status("exited 137") == 137
    assert vm._exit_status("killed KILL") == 128 + signal.SIGKILL
    assert vm._exit_status("dumped SEGV") == 128 + signal.SIGSEGV


def test_qemu_gets_no_network_and_the_root_read_only(tmp_path):
    options = vm.Options(disk_mib=8, rw=("/srv/x",))
    argv = vm.qemu_argv(Path("/k"), Path("/i"), "cmdline", tmp_path, options, microvm=True, accel="tcg")
    assert argv[argv.index("-nic") + 1] == "none" and "-netdev" not in argv
    fsdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-fsdev"]
    assert fsdevs[0] == "local,id=hostroot,path=/,security_model=none,multidevs=remap,readonly=on"
    assert [f for f in fsdevs if "readonly" in f] == fsdevs[:1]
    assert any(a.startswith("virtio-blk-device,") for a in argv)


def test_kernel_command_line_turns_v1_off_and_keeps_the_cwd_visible(tmp_path):
    line = vm.kernel_cmdline(tmp_path, "/tmp/ci/clone", vm.Options(), microvm=True, accel="tcg").split()
    assert "cgroup_no_v1=all" in line and "pci=off" in line
    keep = next(arg for arg in line if arg.startswith("guest.keep=")).removeprefix("guest.keep=")
    assert keep.split(":")[0] == "/tmp/ci/clone"
    assert vm.python_bin_dir() in keep.split(":")
    with pytest.raises(ValueError, match="no spaces"):
        vm.kernel_cmdline(tmp_path, "/tmp/a b", vm.Options(), microvm=True, accel="tcg")


def test_guest_env_uses_the_real_interpreter_and_drops_host_paths():
    env = vm.guest_env({"PATH": "/root/.pyenv/shims:/usr/bin", "MOCKER_ROOT": "/tmp/x", "HOME": "/root"})
    assert env["PATH"].split(":")[0] == os.path.dirname(os.path.abspath(os.sys.executable))
    assert "MOCKER_ROOT" not in env and env["MOCKER_GUEST"] == "1" and env["HOME"] == "/root"


@pytest.mark.slow
def test_the_guest_is_a_pure_cgroup_v2_host_without_network(guest):
    # a host dir the guest sees through its overlay (/tmp would be the guest's own tmpfs)
    with tempfile.TemporaryDirectory(dir="/srv") as host_dir:
        probe = Path(host_dir) / "written-in-guest"
        check_pure_v2_guest(guest, probe)


def check_pure_v2_guest(guest, probe):
    script = f"""
        set -e
        grep -c ' - cgroup ' /proc/self/mountinfo || true     # v1 hierarchies: none
        stat -f -c %T /sys/fs/cgroup
        cat /sys/fs/cgroup/cgroup.subtree_control
        cat /proc/self/cgroup
        ls /sys/class/net
        stat -f -c %T "$MOCKER_ROOT_PROBE_DIR"
        touch {probe}
        python3 -c 'import sys; print(sys.executable)'
        echo to-stderr >&2
        exit 7
    """
    result = guest(script, env={**os.environ, "MOCKER_ROOT_PROBE_DIR": "/var/lib/mocker"},
                   options=vm.Options(disk_mib=4))
    assert result.returncode == 7, result.failure or result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1] == "cgroup2fs"
    assert {"cpu", "memory", "pids", "io", "cpuset"} <= set(lines[2].split())
    assert lines[3] == "0::/"
    assert lines[4] == "lo"
    assert lines[5] == "tmpfs"
    assert not probe.exists()   # the guest's writes stay in the guest
    assert lines[6].startswith(os.path.dirname(os.path.abspath(os.sys.executable)))
    assert result.stderr == "to-stderr\n"


def test_inner_results_are_read_per_suite(tmp_path):
    from tests.test_guest_suites import InnerRun, _cases
    junit = tmp_path / "inner.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_a" name="test_one"/>'
        '<testcase classname="tests.test_a" name="test_two[runc]"><failure message="boom">trace</failure></testcase>'
        '<testcase classname="tests.test_b" name="test_three"><skipped message="v1 only"/></testcase>'
        '</testsuite></testsuites>')
    inner = InnerRun(result=None, cases=_cases(str(junit)))
    assert [(c.nodeid, c.outcome) for c in inner.of(["tests/test_a.py"])] == [
        ("tests/test_a.py::test_one", "passed"), ("tests/test_a.py::test_two[runc]", "failed")]
    assert [c.nodeid for c in inner.of(["tests/test_a.py::test_two"])] == ["tests/test_a.py::test_two[runc]"]
    assert inner.of(["tests/test_a.py::test_two"])[0].message == "boom\ntrace"
    assert [c.outcome for c in inner.of(["tests/test_b.py"])] == ["skipped"]
