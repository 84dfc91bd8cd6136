"""The `guest` fixture: run a command in a fresh pure cgroup v2 guest.

    def test_x(guest):
        result = guest(["cat", "/proc/self/cgroup"])        # tests.guest.run
        assert result.returncode == 0, result.stderr

Each call boots its own guest (3-8 s before the command starts): batch work
into one command. Skips when QEMU or a kernel is missing, when not root, and
inside a guest already (no guest in a guest).
"""

import os
import shutil

import pytest

from tests.guest import kernel, vm


def in_guest() -> bool:
    return os.environ.get("MOCKER_GUEST") == "1"


def skip_unless_bootable() -> None:
    if in_guest():
        pytest.skip("already inside the test guest")
    if os.geteuid() != 0:
        pytest.skip("needs root: the guest shares the host's / over 9p as root")
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86 is not installed (.ci/run installs it)")
    try:
        kernel.find_version()
    except kernel.NoKernel as e:
        pytest.skip(str(e))


@pytest.fixture
def guest():
    skip_unless_bootable()
    return vm.run
