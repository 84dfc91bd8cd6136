"""`mocker run` and devices: Docker's rules by default, and --device as Docker has it.

Nodes are made in /dev (the container's own tmpfs), not in the rootfs: a
rootfs on a nodev mount would refuse them with EACCES whatever the cgroup says.
"""

from tests.test_mocker import BUSYBOX, cleanup, mirror, mocker  # noqa: F401 - fixtures
from tests.test_net_helpers import network  # noqa: F401 - a fixture

# The case: the host's serial console, then its first disk.
ESCAPE = ("mknod /dev/d c 4 64 && (echo hello > /dev/d) 2>&1; "
          "mknod /dev/s b 8 0 && (exec 3</dev/s) 2>&1; echo done")


def test_a_container_cannot_open_the_hosts_console_or_disk(cleanup):
    out = mocker("run", "--rm", "--network", "none", BUSYBOX, "sh", "-c", ESCAPE, check=True).stdout
    assert out.count("Operation not permitted") == 2 and out.endswith("done\n"), out


def test_device_opens_exactly_the_given_device(cleanup):
    script = ("(exec 3</dev/xvda) && echo read-ok; (exec 3>/dev/xvda) 2>&1; "
              "mknod /dev/l1 b 7 1 && (exec 3</dev/l1) 2>&1; ls -l /dev/xvda")
    out = mocker("run", "--rm", "--network", "none", "--device", "/dev/loop0:/dev/xvda:r",
                 BUSYBOX, "sh", "-c", script, check=True).stdout.splitlines()
    assert out[0] == "read-ok"
    assert "can't create /dev/xvda: Operation not permitted" in out[1]   # r only: no write
    assert "can't open /dev/l1: Operation not permitted" in out[2]       # loop1: no rule
    assert out[3].startswith("b") and "7,   0" in out[3]


def test_a_bad_device_is_one_line_and_leaves_nothing(cleanup):
    before = mocker("ps", "-aq").stdout
    done = mocker("run", "--rm", "--device", "/etc/passwd", BUSYBOX, "true")
    assert done.returncode == 125
    assert done.stderr.strip().splitlines() == [
        "mocker-bundle: --device /etc/passwd: not a character or block device"]
    assert mocker("ps", "-aq").stdout == before
