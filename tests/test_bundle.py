"""mocker-bundle end to end: image layouts in, bundles out, layer semantics, cache, removal."""

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from mocker_common.errors import ExitCode
from tests.fixtures.bundler import kind_of, make, run_bundle
from tests.conftest import need_root
from tests.fixtures import images as fx


# The same layer twice in one image (as identical empty RUN steps give).
_TMP_LAYER = fx.make_layer([fx.directory("tmp", mode=0o1777), fx.file("tmp/t", "t\n")])


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """An OCI layout with the fixture images, plus gzip, zstd and plain-tar variants."""
    need_root()
    mixed = fx.make_image([
        fx.make_layer(fx.busybox_entries(), "zstd"),
        fx.make_layer([fx.directory("plain"), fx.file("plain/tar.txt", "plain\n")], ""),
        fx.make_layer([fx.file("plain/gzip.txt", "gzip\n")], "gzip"),
    ])
    return fx.write_layout(tmp_path_factory.mktemp("layout"), {
        "layered": fx.layered_image(), "configured": fx.configured_image(),
        "busybox": fx.busybox_image(), "schema2": fx.busybox_image(docker=True),
        "mixed": mixed, "multiarch": fx.platform_index(),
        "repeated": fx.make_image([fx.busybox_layer(), _TMP_LAYER,
                                   fx.make_layer([fx.whiteout("tmp"), fx.file("x", "x\n")]),
                                   _TMP_LAYER]),
        "volume": fx.make_image(
            [fx.busybox_layer(), fx.make_layer([
                fx.directory("seeded", mode=0o750, uid=7, gid=8),
                fx.file("seeded/data.txt", "seed\n", uid=7, gid=8),
                fx.symlink("seeded/passwd", "/etc/passwd"),
                fx.symlink("escape", "/etc")])],
            config={"Volumes": {"/seeded": {}, "/empty": {}, "/escape": {}}}),
    })


def check_layered_tree(rootfs: Path) -> None:
    """The rootfs holds exactly what tests/fixtures/images.py says the layered image holds."""
    for path, expected in fx.LAYERED_EXPECTED.items():
        full = rootfs / path
        st = full.lstat()
        assert kind_of(st) == expected[0], path
        if expected[0] == "file":
            assert full.read_text() == expected[1], path
            assert stat.S_IMODE(st.st_mode) == expected[2], path
        elif expected[0] == "dir":
            assert stat.S_IMODE(st.st_mode) == expected[1], path
        elif expected[0] == "symlink":
            assert os.readlink(full) == expected[1], path
        elif expected[0] == "chardev":
            assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == expected[1:], path
    for path in fx.LAYERED_ABSENT:
        assert not os.path.lexists(rootfs / path), f"{path} should be gone"
    for path, xattrs in fx.LAYERED_XATTRS.items():
        for key, value in xattrs.items():
            assert os.getxattr(rootfs / path, key, follow_symlinks=False) == value, (path, key)
    for path, owner in fx.LAYERED_OWNERS.items():
        st = (rootfs / path).lstat()
        assert (st.st_uid, st.st_gid) == owner, path
    keep, hard = (rootfs / "data/keep.txt").lstat(), (rootfs / "data/hard.txt").lstat()
    assert keep.st_ino == hard.st_ino and keep.st_nlink == 2
    assert keep.st_mtime == fx.KEEP_MTIME
    # Directory mtimes are set after their entries were written into them.
    assert (rootfs / "home").lstat().st_mtime == fx.MTIME
    assert (rootfs / "home/user").lstat().st_mtime == fx.MTIME
    assert (rootfs / "data/link.txt").lstat().st_mtime == fx.MTIME
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"
    assert (rootfs / "bin/busybox").read_bytes() == Path(fx.BUSYBOX).read_bytes()
    assert stat.S_IMODE((rootfs / "tmp").lstat().st_mode) == 0o1777
    assert sorted(os.listdir(rootfs / "opaque")) == ["new.txt"]


def test_layered_image_overlay(layout, root, bundles):
    bundle = make(bundles, root, f"oci:{layout}:layered")
    assert bundle.parent == root / "containers"
    assert os.path.ismount(bundle / "rootfs")
    check_layered_tree(bundle / "rootfs")
    # The cache keeps layer 3 in overlayfs form: whiteouts as 0:0 devices, opaque by xattr.
    layer3 = root / "layers" / "sha256" / fx.layered_image().diff_ids[2].split(":")[1]
    whiteout = (layer3 / "data/remove.txt").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(layer3 / "opaque", "trusted.overlay.opaque") == b"y"
    # The container's writes go to the bundle's upper directory, never into the cache.
    (bundle / "rootfs/data/keep.txt").unlink()
    assert (layer3.parent / fx.layered_image().diff_ids[1].split(":")[1] / "data/keep.txt").exists()


def test_layered_image_copy(layout, root, bundles):
    bundle = make(bundles, root, "--copy", f"oci:{layout}:layered")
    assert not os.path.ismount(bundle / "rootfs")
    check_layered_tree(bundle / "rootfs")
    assert not (root / "layers" / "sha256").exists()   # --copy does not fill the cache


def test_second_bundle_reuses_cached_layers(layout, root, bundles):
    first = make(bundles, root, f"oci:{layout}:busybox")
    cached = list((root / "layers" / "sha256").iterdir())
    before = {p: p.stat().st_ino for p in cached}
    second = make(bundles, root, f"oci:{layout}:busybox")
    assert first != second
    assert {p: p.stat().st_ino for p in (root / "layers" / "sha256").iterdir()} == before
    assert (second / "rootfs/bin/busybox").exists()


def test_parallel_bundles_unpack_each_layer_once(layout, root, bundles):
    env = dict(os.environ, MOCKER_ROOT=str(root))
    procs = [subprocess.Popen(["mocker-bundle", "--network", "none", f"oci:{layout}:layered"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    bundles.extend(Path(out.strip()) for out, _ in outputs if out.strip())
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err for _, err in outputs]
    assert len(list((root / "layers" / "sha256").iterdir())) == 3
    assert list((root / "layers" / "tmp").iterdir()) == []
    for bundle in bundles:
        check_layered_tree(bundle / "rootfs")


@pytest.mark.parametrize("copy", [False, True], ids=["overlay", "copy"])
def test_gzip_zstd_and_plain_layers(layout, root, bundles, copy):
    bundle = make(bundles, root, *(["--copy"] if copy else []), f"oci:{layout}:mixed")
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin/busybox").read_bytes() == Path(fx.BUSYBOX).read_bytes()
    assert (rootfs / "plain/tar.txt").read_text() == "plain\n"
    assert (rootfs / "plain/gzip.txt").read_text() == "gzip\n"


def test_input_from_stdin_and_docker_schema2(layout, root, bundles):
    bundle = make(bundles, root, stdin=f"oci:{layout}:schema2\n")
    assert (bundle / "rootfs/bin/busybox").exists()


def test_image_name_from_the_shared_store(root, bundles):
    """`mocker-bundle busybox` finds docker.io/library/busybox:latest in MOCKER_ROOT/images."""
    fx.write_layout(root / "images", {"docker.io/library/busybox:latest": fx.busybox_image()})
    bundle = make(bundles, root, "--name", "named", "busybox")
    assert bundle == root / "containers" / "named"
    config = json.loads((bundle / "config.json").read_text())
    assert config["linux"]["cgroupsPath"] == "/mocker/named"
    missing = run_bundle("--network", "none", "alpine", root=root, check=False)
    assert missing.returncode == ExitCode.NOT_PULLED    # bin/mocker pulls on this code only
    assert "docker.io/library/alpine:latest is not in the store" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_platform_chosen_from_an_index(layout, root, bundles):
    bundle = make(bundles, root, "--copy", f"oci:{layout}:multiarch")
    assert (bundle / "rootfs/platform").read_text() == "amd64\n"
    bundle = make(bundles, root, "--copy", "--platform", "linux/arm64", f"oci:{layout}:multiarch")
    assert (bundle / "rootfs/platform").read_text() == "arm64\n"


def test_bundle_into_a_given_directory_and_remove(layout, root, bundles, tmp_path):
    target = tmp_path / "mybundle"
    bundle = make(bundles, root, "--bundle", target, f"oci:{layout}:busybox")
    assert bundle == target
    assert json.loads((target / "config.json").read_text())["linux"]["cgroupsPath"] == "/mocker/mybundle"
    taken = run_bundle("--network", "none", "--bundle", target, f"oci:{layout}:busybox",
                       root=root, check=False)
    assert taken.returncode == ExitCode.CONFLICT
    assert "already exists" in taken.stderr
    removed = run_bundle("--remove", target, root=root)
    assert removed.returncode == 0
    assert not target.exists()
    assert not any(str(target) in line for line in open("/proc/self/mountinfo"))


def test_validate_checks_the_config_against_the_runtime_spec_schema(layout, root, bundles):
    # make() asks for --network none; a later --network bridge wins, as argparse does.
    bundle = make(bundles, root, "--validate", "--network", "bridge", "-p", "8080:80",
                  "-e", "A=1", f"oci:{layout}:configured")
    config = json.loads((bundle / "config.json").read_text())
    assert config["ociVersion"].startswith("1.")
    assert "A=1" in config["process"]["env"]
    assert config["annotations"]["org.mocker.ports"].startswith("8080:80")


def test_remove_refuses_a_directory_that_is_not_a_bundle(root, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "config.json").write_text("{}")
    result = run_bundle("--remove", precious, root=root, check=False)
    assert result.returncode != 0 and "not made by mocker-bundle" in result.stderr
    assert (precious / "config.json").exists()


def _wrong_diff_id(tmp_path):
    """A layer whose config diff_id is not the digest of its tar (the blob digest is right)."""
    real = fx.make_layer([fx.file("hello.txt", "hello\n")])
    lying = fx.Layer(tar=b"not the tar", blob=real.blob, media_type=real.media_type)
    return fx.write_layout(tmp_path / "tampered", {"img": fx.make_image([lying])})


def _corrupt_blob(tmp_path):
    """A layer blob changed after its descriptor was written."""
    image = fx.make_image([fx.make_layer([fx.file("hello.txt", "hello\n")])])
    directory = fx.write_layout(tmp_path / "tampered", {"img": image})
    blob = directory / "blobs/sha256" / image.layers[0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[20] ^= 0x01
    blob.write_bytes(bytes(data))
    return directory


@pytest.mark.parametrize("copy", [False, True], ids=["overlay", "copy"])
@pytest.mark.parametrize("tamper", [_wrong_diff_id, _corrupt_blob], ids=["diff_id", "blob"])
def test_digest_mismatch_refused_nothing_cached(tmp_path, root, tamper, copy):
    directory = tamper(tmp_path)
    target = tmp_path / "bundle"
    result = run_bundle("--network", "none", "--bundle", target, *(["--copy"] if copy else []),
                        f"oci:{directory}:img", root=root, check=False)
    assert result.returncode == ExitCode.CORRUPT, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not target.exists()
    assert not (root / "layers" / "sha256").exists() or not any((root / "layers/sha256").iterdir())
    assert not (root / "layers" / "tmp").exists() or not any((root / "layers/tmp").iterdir())


def test_bridge_mode_hooks_call_mocker_net_by_absolute_path(layout, root, bundles):
    result = run_bundle("-p", "8080:80", f"oci:{layout}:busybox", root=root)
    bundle = Path(result.stdout.strip())
    bundles.append(bundle)
    config = json.loads((bundle / "config.json").read_text())
    net = config["hooks"]["createRuntime"][0]["path"]
    assert os.path.isabs(net) and os.access(net, os.X_OK) and net.endswith("/mocker-net")
    assert config["hooks"]["createRuntime"][0]["args"] == ["mocker-net", "hook", "up"]
    assert config["hooks"]["poststop"][0]["args"] == ["mocker-net", "hook", "down"]
    assert config["annotations"]["org.mocker.ports"] == "8080:80/tcp"
    assert config["annotations"]["org.mocker.network"] == "bridge"


@pytest.mark.parametrize("args, code, message", [
    (["oci:/nonexistent/layout:x"], ExitCode.NOT_FOUND, "not an OCI image layout"),
    (["oci:{layout}"], ExitCode.ERROR, "say which, as oci:"),
    (["oci:{layout}:nosuchref"], ExitCode.NOT_FOUND, "image nosuchref not found"),
    (["--memory", "lots", "oci:{layout}:busybox"], ExitCode.ERROR, "invalid memory size"),
    (["--network", "none", "-p", "80:80", "oci:{layout}:busybox"], ExitCode.ERROR,
     "need --network bridge"),
    (["--user", "nobody-here", "oci:{layout}:busybox"], ExitCode.ERROR, "not found in the image"),
    (["--name", "../escape", "oci:{layout}:busybox"], ExitCode.USAGE, "invalid container name"),
    (["--name", "a\nb", "oci:{layout}:busybox"], ExitCode.USAGE, "invalid container name"),
    (["--hostname", "web\n10.0.0.9 bank", "oci:{layout}:busybox"], ExitCode.USAGE,
     "invalid hostname"),
    (["--hostname", "web-", "oci:{layout}:busybox"], ExitCode.USAGE, "invalid hostname"),
    (["--hostname", "a" * 64, "oci:{layout}:busybox"], ExitCode.USAGE, "invalid hostname"),
    (["busybox:la\ntest"], ExitCode.USAGE, "invalid reference"),
    (["../../busybox"], ExitCode.USAGE, "invalid reference"),
])
def test_bad_input_one_line_error_nothing_left(layout, root, args, code, message):
    args = [a.replace("{layout}", str(layout)) for a in args]
    result = run_bundle("--network", "none", *args, root=root, check=False) \
        if "--network" not in args else run_bundle(*args, root=root, check=False)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    containers = root / "containers"
    assert not containers.exists() or not any(containers.iterdir())
    assert not any(str(root) in line for line in open("/proc/self/mountinfo"))


def test_interrupted_unpack_leaves_no_cache_entry(layout, root, bundles):
    """SIGKILL in the middle of unpacking: no half layer in the cache; the next run cleans up."""
    import signal
    import time
    env = dict(os.environ, MOCKER_ROOT=str(root))
    proc = subprocess.Popen(["mocker-bundle", "--network", "none", f"oci:{layout}:layered"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tmp = root / "layers" / "tmp"
    deadline = time.monotonic() + 30
    while not (tmp.exists() and any(tmp.iterdir())) and time.monotonic() < deadline \
            and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    if out.strip():                       # it finished first: nothing to test this time
        bundles.append(Path(out.decode().strip()))
        pytest.skip("mocker-bundle finished before it could be killed")
    # Cache entries appear only by rename of a whole, checked layer: none is named otherwise.
    diff_ids = {d.split(":")[1] for d in fx.layered_image().diff_ids}
    assert {p.name for p in (root / "layers" / "sha256").glob("*")} <= diff_ids
    bundle = make(bundles, root, f"oci:{layout}:layered")
    check_layered_tree(bundle / "rootfs")
    assert list(tmp.iterdir()) == []


def test_volumes_are_seeded_from_the_image(layout, root, bundles):
    """Volumes become bind mounts of bundle/volumes/N, holding what the image has there."""
    bundle = make(bundles, root, f"oci:{layout}:volume")
    config = json.loads((bundle / "config.json").read_text())
    sources = {m["destination"]: Path(m["source"]) for m in config["mounts"] if m["type"] == "bind"}
    assert set(sources) == {"/empty", "/escape", "/seeded"}
    seeded = sources["/seeded"]
    assert seeded.parent == bundle / "volumes"
    assert (seeded / "data.txt").read_text() == "seed\n"
    st = seeded.lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (7, 8, 0o750)
    assert os.readlink(seeded / "passwd") == "/etc/passwd"      # copied as a link
    assert list(sources["/empty"].iterdir()) == []
    # /escape is a symlink to /etc in the image: as the container sees it, that is
    # the image's /etc, seeded from the rootfs, never the host's.
    assert (sources["/escape"] / "passwd").read_text() == fx.PASSWD


@pytest.mark.parametrize("copy", [False, True], ids=["overlay", "copy"])
def test_a_layer_repeated_in_one_image(layout, root, bundles, copy):
    bundle = make(bundles, root, *(["--copy"] if copy else []), f"oci:{layout}:repeated")
    rootfs = bundle / "rootfs"
    assert (rootfs / "tmp/t").read_text() == "t\n"          # re-added after the whiteout
    assert (rootfs / "x").read_text() == "x\n"
    assert stat.S_IMODE((rootfs / "tmp").lstat().st_mode) == 0o1777


def test_many_layers_fit_one_overlay_mount(root, bundles, tmp_path):
    """100 layers: full cache paths would overflow mount(2)'s one page of options;
    the short links under layers/l/ keep them in."""
    layers = [fx.make_layer([fx.file(f"layer{i:03d}", f"{i}\n")]) for i in range(100)]
    directory = fx.write_layout(tmp_path / "many", {"many": fx.make_image(layers)})
    bundle = make(bundles, root, f"oci:{directory}:many")
    assert os.path.ismount(bundle / "rootfs")
    assert len(os.listdir(bundle / "rootfs")) == 100
    assert (bundle / "rootfs/layer099").read_text() == "99\n"
    links = list((root / "layers" / "l").iterdir())
    assert len(links) == 100 and all(len(p.name) == 12 and p.is_symlink() for p in links)
