"""Malicious layers: no entry may create, change or delete anything outside the rootfs.

Each test aims a hand-crafted layer (tests/fixtures/evil_layers.py) at a sentinel
directory outside the rootfs and proves the layer is refused with a one-line
error naming the entry, the sentinel is byte-for-byte unchanged, and neither a
bundle nor a cache entry is left behind.
"""

import pytest

from mocker_common.errors import ExitCode
from tests.fixtures.bundler import remove_bundle, run_bundle, snapshot
from tests.conftest import need_root
from tests.fixtures import evil_layers
from tests.fixtures import images as fx

MODES = pytest.mark.parametrize("copy", [False, True], ids=["overlay", "copy"])


@pytest.fixture
def sentinel(tmp_path):
    need_root()
    outside = tmp_path / "sentinel"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not touch\n")
    (outside / "sub").mkdir()
    (outside / "sub" / "keep.txt").write_text("keep\n")
    return outside


def bundle_of(tmp_path, layers, copy, root):
    layout = fx.write_layout(tmp_path / "layout", {"evil": fx.make_image(layers)})
    target = tmp_path / "bundle"
    result = run_bundle("--network", "none", "--bundle", target, *(["--copy"] if copy else []),
                        f"oci:{layout}:evil", root=root, check=False)
    return result, target


def assert_nothing_left(root, target):
    assert not target.exists()
    for sub in ("sha256", "tmp"):
        directory = root / "layers" / sub
        assert not directory.exists() or not any(directory.iterdir()), sub


@MODES
@pytest.mark.parametrize("escape", sorted(evil_layers.ESCAPES))
def test_escape_refused_and_nothing_outside_changed(tmp_path, sentinel, escape, copy):
    root = tmp_path / "root"
    before = snapshot(sentinel)
    entries = evil_layers.ESCAPES[escape](str(sentinel))
    layers = [fx.busybox_layer(), fx.make_layer(entries)]
    result, target = bundle_of(tmp_path, layers, copy, root)
    try:
        assert result.returncode == ExitCode.CORRUPT, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "refusing entry" in lines[0] or "hardlink target" in lines[0], lines[0]
        bad_entry = entries[-1].path
        assert repr(bad_entry) in lines[0] or bad_entry in lines[0], lines[0]
        assert snapshot(sentinel) == before
        assert not any(p.name.startswith(("dotdot", "absolute", "via-")) for p in tmp_path.rglob("*")
                       if "layout" not in p.parts)
        # Only the refused layer is missing from the cache: the busybox layer below is kept.
        cached = list((root / "layers" / "sha256").iterdir()) if not copy else []
        assert [p.name for p in cached] in ([], [fx.busybox_layer().diff_id.split(":")[1]])
        assert not target.exists()
        tmp = root / "layers" / "tmp"
        assert not tmp.exists() or not any(tmp.iterdir())
    finally:
        remove_bundle(target, root)


@MODES
def test_symlink_planted_by_a_lower_layer(tmp_path, sentinel, copy):
    """Layer 1 plants out -> sentinel; layer 2 writes out/x and replaces file f (a symlink out)."""
    root = tmp_path / "root"
    before = snapshot(sentinel)
    lower = fx.make_layer([fx.symlink("out", str(sentinel)),
                           fx.symlink("f", str(sentinel / "secret.txt"))])
    upper = fx.make_layer([fx.file("f", "replaced\n"), fx.file("out/x.txt", "escaped\n")])
    result, target = bundle_of(tmp_path, [lower, upper], copy, root)
    try:
        assert snapshot(sentinel) == before
        if copy:
            # Applying onto the merged tree meets the symlink: refused.
            assert result.returncode == ExitCode.CORRUPT
            assert "'out/x.txt'" in result.stderr and "symlink" in result.stderr
            assert_nothing_left(root, target)
        else:
            # In overlay form each layer is unpacked alone: layer 2's out/ is a real
            # directory that hides the symlink below it, as overlayfs merges them.
            assert result.returncode == 0, result.stderr
            rootfs = target / "rootfs"
            assert (rootfs / "out" / "x.txt").read_text() == "escaped\n"
            assert (rootfs / "f").read_text() == "replaced\n"
            assert not (rootfs / "out" / "secret.txt").exists()
    finally:
        remove_bundle(target, root)


def test_file_replacing_symlink_does_not_write_through_it(tmp_path, sentinel):
    """--copy: a regular file over a lower layer's symlink replaces the link itself."""
    root = tmp_path / "root"
    before = snapshot(sentinel)
    lower = fx.make_layer([fx.symlink("f", str(sentinel / "secret.txt"))])
    upper = fx.make_layer([fx.file("f", "replaced\n")])
    result, target = bundle_of(tmp_path, [lower, upper], True, root)
    try:
        assert result.returncode == 0, result.stderr
        assert (target / "rootfs" / "f").read_text() == "replaced\n"
        assert not (target / "rootfs" / "f").is_symlink()
        assert snapshot(sentinel) == before
    finally:
        remove_bundle(target, root)
