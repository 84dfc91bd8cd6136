"""runtime-spec conformance cases, checked as opencontainers/runtime-tools'
validation programs check them, under runc and mocker-runc.

linux_ns_itype (config-linux.md#namespaces, "If a namespace type is not
specified in the namespaces array, the container MUST inherit the runtime
namespace of that type"): a config that lists no namespace at all, and no
hostname, is created; each of the container's /proc/PID/ns/* must be the
runtime's own. There is no mount namespace: the runtime chroots into the
rootfs, and the container's mounts are made in the runtime's namespace.
"""

import subprocess

import pytest

from tests.conftest import need_root, need_tool
from tests.fixtures.bundles import busybox_template, new_bundle  # noqa: F401

pytestmark = pytest.mark.interop

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")

# Run in a mount namespace of the test's own (so that what runc leaves there
# dies with it): create as linux_ns_itype does, compare the namespaces from
# outside, then start, exec, delete, and count the mounts left on the rootfs.
SCRIPT = r"""
rt() { "$RUNTIME" --root "$ROOT" "$@"; }
rt create --bundle "$BUNDLE" "$ID" </dev/null >/dev/null 2>&1 || { echo "create failed"; rt create --bundle "$BUNDLE" "$ID"; exit 1; }
pid=$(rt state "$ID" | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
for ns in %s; do
    echo "ns $ns $(readlink /proc/self/ns/$ns) $(readlink /proc/$pid/ns/$ns)"
done
rt start "$ID"
echo "exec-root $(rt exec "$ID" ls / | tr '\n' ' ')"
rt delete --force "$ID"
echo "left $(grep -c " $BUNDLE/rootfs" /proc/self/mountinfo)"
""" % " ".join(NAMESPACES)


def unmasked(config: dict) -> None:
    """What linux_ns_itype's config lacks too: a hostname (needs a UTS namespace),
    maskedPaths and readonlyPaths (need a mount namespace; both runtimes refuse)."""
    config.pop("hostname", None)
    config["linux"].pop("maskedPaths", None)
    config["linux"].pop("readonlyPaths", None)


def run_itype(runtime: str, bundle, root, cid) -> dict:
    env = {"RUNTIME": runtime, "ROOT": str(root), "BUNDLE": str(bundle), "ID": cid,
           "PATH": subprocess.os.environ["PATH"]}
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "create failed" not in done.stdout, done.stdout + done.stderr
    seen = {"ns": {}}
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "ns":
            name, ours, theirs = rest.split()
            seen["ns"][name] = (ours, theirs)
        else:
            seen[kind] = rest
    return seen


def test_linux_ns_itype_every_namespace_inherited(new_bundle, tmp_path, unique):
    need_root()
    runc = need_tool("runc")
    need_tool("unshare")

    def inherit_all(config):
        config["linux"]["namespaces"] = []
        unmasked(config)
    bundle = new_bundle(["sleep", "60"], edit=inherit_all)
    results = {name: run_itype(binary, bundle, tmp_path / f"{name}-state", unique)
               for name, binary in (("runc", runc), ("mocker-runc", "mocker-runc"))}
    for name, seen in results.items():
        for ns in NAMESPACES:
            ours, theirs = seen["ns"][ns]
            assert ours == theirs, f"{name}: {ns} is {theirs}, the runtime's is {ours}"
    # Both chroot into the rootfs. Where runc differs: its exec into such a
    # container runs on the host's /, and its mounts stay after delete; ours
    # execs in the container's root and takes its mounts away.
    assert "linuxrc" in results["mocker-runc"]["exec-root"]
    assert "linuxrc" not in results["runc"]["exec-root"]
    assert results["mocker-runc"]["left"] == "0"
    assert int(results["runc"]["left"]) > 0


def test_a_joined_namespace_without_a_mount_namespace(new_bundle, tmp_path, unique):
    """Namespaces given by path (here a network namespace made with ip netns) and
    no mount namespace: valid per the runtime-spec, created by both."""
    need_root()
    runc = need_tool("runc")
    netns = "mk" + unique
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        def join_net(config):
            config["linux"]["namespaces"] = [{"type": "network", "path": f"/run/netns/{netns}"},
                                             {"type": "pid"}]
            unmasked(config)
        bundle = new_bundle(["sleep", "60"], edit=join_net)
        for name, binary in (("runc", runc), ("mocker-runc", "mocker-runc")):
            seen = run_itype(binary, bundle, tmp_path / f"{name}-state", unique)
            ours, theirs = seen["ns"]["net"]
            assert ours != theirs, name
            assert seen["ns"]["mnt"][0] == seen["ns"]["mnt"][1], name
            assert seen["ns"]["pid"][0] != seen["ns"]["pid"][1], name
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=True)
