"""mocker-bundle with its peers: runc runs our bundles; we read layouts skopeo writes."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.bundler import remove_bundle, run_bundle
from tests.conftest import need_root, need_tool
from tests.fixtures import images as fx

pytestmark = [pytest.mark.interop]


@pytest.fixture
def root(tmp_path):
    need_root()
    return tmp_path / "root"


@pytest.fixture
def runc(tmp_path):
    """runc with its own state directory; deletes every container it ran."""
    binary = need_tool("runc")
    state = tmp_path / "runc-state"
    started = []

    def run(bundle: Path, container_id: str):
        started.append(container_id)
        return subprocess.run([binary, "--root", str(state), "run", "--bundle", str(bundle),
                               container_id], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    yield run
    for container_id in started:
        subprocess.run([binary, "--root", str(state), "delete", "--force", container_id],
                       capture_output=True)


@pytest.fixture
def configured_layout(tmp_path):
    return fx.write_layout(tmp_path / "layout", {"configured": fx.configured_image()})


@pytest.mark.parametrize("copy", [False, True], ids=["overlay", "copy"])
def test_runc_runs_the_image_command(root, runc, configured_layout, unique, copy):
    """The image's Entrypoint + Cmd run as its config says."""
    made = run_bundle("--network", "none", "--name", unique, *(["--copy"] if copy else []),
                      f"oci:{configured_layout}:configured", root=root)
    bundle = Path(made.stdout.strip())
    try:
        result = runc(bundle, unique)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "entry from-cmd\n"
    finally:
        remove_bundle(bundle, root)


def test_runc_sees_env_workdir_user(root, runc, configured_layout, unique):
    script = 'echo "$GREETING"; pwd; id -u; id -g; id -G; echo "$HOME"; hostname'
    made = run_bundle("--network", "none", "--name", unique, "--hostname", "box",
                      "-e", "EXTRA=yes", "--entrypoint", "/bin/sh",
                      f"oci:{configured_layout}:configured", "-c", script + '; echo "$EXTRA"',
                      root=root)
    bundle = Path(made.stdout.strip())
    try:
        result = runc(bundle, unique)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "hello", "/srv/app", "1001", "1002", "1002 1003", "/home/app", "box", "yes"]
    finally:
        remove_bundle(bundle, root)


def test_runc_container_writes_stay_in_the_bundle(root, runc, configured_layout, unique,
                                                  tmp_path):
    """Writes inside an overlay rootfs land in the bundle's upper dir; a --volume is shared."""
    shared = tmp_path / "shared"
    shared.mkdir()
    made = run_bundle("--network", "none", "--name", unique, "--entrypoint", "/bin/sh",
                      "--volume", f"{shared}:/shared", "--user", "0",
                      f"oci:{configured_layout}:configured", "-c",
                      "echo hi > /etc/new.txt && echo out > /shared/out.txt && ls /data",
                      root=root)
    bundle = Path(made.stdout.strip())
    try:
        result = runc(bundle, unique)
        assert result.returncode == 0, result.stderr
        assert (bundle / "upper/etc/new.txt").read_text() == "hi\n"
        assert (shared / "out.txt").read_text() == "out\n"
        cached = root / "layers" / "sha256"
        assert not any((layer / "etc/new.txt").exists() for layer in cached.iterdir())
    finally:
        remove_bundle(bundle, root)


@pytest.mark.slow
def test_reads_a_layout_written_by_skopeo(registry, root, tmp_path):
    skopeo = need_tool("skopeo")
    directory = tmp_path / "skopeo-layout"
    copied = subprocess.run(
        [skopeo, "copy", "--src-tls-verify=false", f"docker://{registry.host}/layered:latest",
         f"oci:{directory}:layered"], capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    target = tmp_path / "bundle"
    made = run_bundle("--network", "none", "--bundle", target, f"oci:{directory}:layered",
                      root=root)
    try:
        assert Path(made.stdout.strip()) == target
        rootfs = target / "rootfs"
        assert (rootfs / "data/keep.txt").read_text() == "keep\n"
        assert not os.path.lexists(rootfs / "data/remove.txt")
        assert sorted(os.listdir(rootfs / "opaque")) == ["new.txt"]
        assert (rootfs / "bin/busybox").read_bytes() == Path(fx.BUSYBOX).read_bytes()
    finally:
        remove_bundle(target, root)


def _tree(root: Path) -> dict:
    """path -> (kind and mode, owner, content or link target, xattrs) for a whole tree."""
    import stat
    result = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            what = path.read_bytes()
        elif stat.S_ISLNK(st.st_mode):
            what = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            what = st.st_rdev
        else:
            what = None
        xattrs = {} if stat.S_ISLNK(st.st_mode) else {
            k: os.getxattr(path, k, follow_symlinks=False) for k in os.listxattr(path)}
        result[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, what, xattrs)
    return result


@pytest.mark.parametrize("copy", [False, True], ids=["overlay", "copy"])
def test_same_tree_as_umoci_unpack(root, tmp_path, copy):
    """The layered fixture image gives the tree umoci unpack gives, file for file."""
    umoci = need_tool("umoci")
    layout = fx.write_layout(tmp_path / "layout", {"layered": fx.layered_image()})
    theirs = tmp_path / "umoci-bundle"
    unpacked = subprocess.run([umoci, "--log", "error", "unpack", "--image", f"{layout}:layered",
                               str(theirs)], capture_output=True, text=True, timeout=120)
    assert unpacked.returncode == 0, unpacked.stderr
    ours = tmp_path / "ours"
    run_bundle("--network", "none", "--bundle", ours, *(["--copy"] if copy else []),
               f"oci:{layout}:layered", root=root)
    try:
        assert _tree(ours / "rootfs") == _tree(theirs / "rootfs")
    finally:
        remove_bundle(ours, root)


def test_reads_a_layer_umoci_repack_wrote(root, tmp_path):
    """umoci writes its own layers (its whiteouts, its tar): changes made in an
    unpacked rootfs and repacked by umoci show up in our bundle."""
    umoci = need_tool("umoci")
    layout = fx.write_layout(tmp_path / "layout", {"busybox": fx.busybox_image()})
    work = tmp_path / "umoci-bundle"
    subprocess.run([umoci, "--log", "error", "unpack", "--image", f"{layout}:busybox", str(work)],
                   check=True, capture_output=True)
    (work / "rootfs/etc/group").unlink()
    (work / "rootfs/tmp/new.txt").write_text("repacked\n")
    os.symlink("new.txt", work / "rootfs/tmp/link")
    repacked = subprocess.run([umoci, "--log", "error", "repack", "--image", f"{layout}:changed",
                               str(work)], capture_output=True, text=True)
    assert repacked.returncode == 0, repacked.stderr
    for copy in (False, True):
        target = tmp_path / f"ours-{copy}"
        run_bundle("--network", "none", "--bundle", target, *(["--copy"] if copy else []),
                   f"oci:{layout}:changed", root=root)
        try:
            rootfs = target / "rootfs"
            assert (rootfs / "tmp/new.txt").read_text() == "repacked\n"
            assert os.readlink(rootfs / "tmp/link") == "new.txt"
            assert not os.path.lexists(rootfs / "etc/group")
            assert (rootfs / "etc/passwd").read_text() == fx.PASSWD
        finally:
            remove_bundle(target, root)
