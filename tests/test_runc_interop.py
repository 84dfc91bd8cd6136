"""The same bundle gives the same view from inside under runc and mocker-runc:
one unpacked by umoci from an OCI layout of busybox-static, one written by
`mocker-runc spec` by hand."""

import json
import subprocess

import pytest

from tests.conftest import need_root, need_tool
from tests.fixtures.bundles import (Runtime, busybox_template, make_bundle,  # noqa: F401
                                    new_bundle, runc_tool, write_config)

pytestmark = pytest.mark.interop

# What a process can observe of its isolation; sizes and inode counts vary by run.
PROBE = r"""id; hostname; echo /proc/[0-9]*
grep -E '^(Cap|NoNewPrivs|Seccomp:|Sig(Ign|Blk))' /proc/self/status; ulimit -n; ulimit -Hn; umask
ls /dev | tr '\n' ' '; echo
awk '{print $2, $3, $4}' /proc/mounts | sed 's/,size=[0-9a-z]*//; s/,nr_inodes=[0-9]*//; s/,inode64//' | sort
touch /written 2>&1; ls /sys/firmware | wc -l; ip -o link | cut -d: -f2
pwd; echo $PATH $HOME; readlink /dev/fd; cut -d' ' -f5,6 /proc/1/stat"""


@pytest.fixture
def runc(tmp_path):
    need_root()
    tool = Runtime(need_tool("runc"), tmp_path / "runc-state")
    yield tool
    tool.cleanup()


def same_view(bundle, runc, runc_tool, cid):
    theirs = runc("run", "--bundle", str(bundle), cid)
    ours = runc_tool("run", "--bundle", str(bundle), cid)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert ours.stdout.count("\n") > 30   # the probe really ran


def test_umoci_bundle_looks_the_same(runc, runc_tool, busybox_template, tmp_path, unique):
    need_tool("umoci")
    layout = tmp_path / "oci"
    for cmd in (["init", "--layout", str(layout)],
                ["new", "--image", f"{layout}:busybox"],
                ["insert", "--image", f"{layout}:busybox", str(busybox_template), "/"],
                ["unpack", "--image", f"{layout}:busybox", str(tmp_path / "bundle")]):
        subprocess.run(["umoci", *cmd], check=True, capture_output=True)
    bundle = tmp_path / "bundle"
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["sh", "-c", PROBE])
    write_config(bundle, config)
    same_view(bundle, runc, runc_tool, unique)


def test_spec_bundle_looks_the_same(runc, runc_tool, new_bundle, unique):
    need_root()

    def edit(config):   # a hand-edited bundle: a user, groups, an extra mount, a sysctl
        config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
        config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["nosuid", "nodev", "mode=1777"]})
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        config["process"]["cwd"] = "/scratch"
    bundle = new_bundle(["sh", "-c", PROBE + "; cat /proc/sys/net/ipv4/ip_forward"], edit=edit)
    same_view(bundle, runc, runc_tool, unique)
