"""`mocker run` and devices: Docker's rules by default, and --device as Docker has it.

The image is put straight into mocker's store (an OCI image layout) from a
busybox-static rootfs: no registry, so that these tests run as they are in
the pure cgroup v2 guest too (tests/test_guest_devices.py). Nodes are made
in /dev (the container's own tmpfs), not in the rootfs: a rootfs on a nodev
mount would refuse them with EACCES whatever the cgroup says.
"""

import json
import os
import subprocess
import tarfile

import pytest

from mocker_common import paths
from tests.conftest import need_root
from tests.fixtures.engines import busybox_rootfs, write_oci_archive  # noqa: F401 - a fixture
from tests.test_mocker import mocker

BUSYBOX = "mkdevices-busybox"


@pytest.fixture(scope="module")
def image(busybox_rootfs, tmp_path_factory):  # noqa: F811 - a fixture
    """BUSYBOX in mocker's image store; every container made meanwhile removed after."""
    need_root()
    work = tmp_path_factory.mktemp("devices-image")
    refname = f"docker.io/library/{BUSYBOX}:latest"
    with tarfile.open(write_oci_archive(busybox_rootfs, work / "image.tar", refname)) as tar:
        tar.extractall(work / "layout")
    store = paths.image_layout()
    (store / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    for blob in (work / "layout/blobs/sha256").iterdir():
        os.replace(blob, store / "blobs/sha256" / blob.name)
    index_path = store / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2,
                                                                             "manifests": []}
    index["manifests"] += json.loads((work / "layout/index.json").read_text())["manifests"]
    (store / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_path.write_text(json.dumps(index))
    before = set(mocker("ps", "-aq", "--no-trunc").stdout.split())
    yield BUSYBOX
    made = set(mocker("ps", "-aq", "--no-trunc").stdout.split()) - before
    if made:
        mocker("rm", "-f", *made)
    mocker("rmi", BUSYBOX)


@pytest.fixture
def cleanup(image):
    yield

# The case: the host's serial console, then its first disk.
ESCAPE = ("mknod /dev/d c 4 64 && (echo hello > /dev/d) 2>&1; "
          "mknod /dev/s b 8 0 && (exec 3</dev/s) 2>&1; echo done")


def test_a_container_cannot_open_the_hosts_console_or_disk(cleanup):
    out = mocker("run", "--rm", "--network", "none", BUSYBOX, "sh", "-c", ESCAPE, check=True).stdout
    assert out.count("Operation not permitted") == 2 and out.endswith("done\n"), out


def test_device_opens_exactly_the_given_device(cleanup):
    if not os.path.exists("/dev/loop0"):   # the guest loads the loop driver on demand
        subprocess.run(["modprobe", "loop"], check=False)
    if not os.path.exists("/dev/loop0"):
        pytest.skip("no /dev/loop0 and no loop driver")
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
