"""mocker-bundle --prune: the layer cache loses what no image and no mounted bundle uses."""

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

from mocker_common.errors import ExitCode
from tests.conftest import need_root, need_tool
from tests.fixtures import images as fx
from tests.fixtures.bundler import make, remove_bundle, run_bundle


@pytest.fixture(autouse=True)
def as_root():
    need_root()


def one_layer_image(unique: str, name: str) -> fx.Image:
    """An image whose one layer no other test has (its file names this run)."""
    return fx.make_image([fx.make_layer([fx.file(f"{name}.txt", f"{name} {unique}\n")])])


def cached(root: Path, image: fx.Image) -> Path:
    return root / "layers" / "sha256" / image.diff_ids[0].split(":")[1]


def prune(root: Path, check: bool = True):
    return run_bundle("--prune", root=root, check=check)


def test_prune_removes_unused_layers_and_keeps_the_stores(root, bundles, tmp_path, unique):
    stored = one_layer_image(unique, "stored")
    elsewhere = one_layer_image(unique, "elsewhere")
    fx.write_layout(root / "images", {"docker.io/library/stored:latest": stored})
    other = fx.write_layout(tmp_path / "other", {"elsewhere": elsewhere})
    for source in ("stored", f"oci:{other}:elsewhere"):
        remove_bundle(make(bundles, root, source), root)
    assert cached(root, stored).is_dir() and cached(root, elsewhere).is_dir()
    kept_inode = cached(root, stored).stat().st_ino

    out = prune(root).stdout
    assert f"deleted: {elsewhere.diff_ids[0]}" in out
    assert "Removed 1 cached layers" in out
    assert not cached(root, elsewhere).exists()
    assert not (root / "layers/l" / elsewhere.diff_ids[0].split(":")[1][:12]).is_symlink()
    assert cached(root, stored).stat().st_ino == kept_inode   # untouched, not unpacked again
    # Both images still make bundles: the pruned layer is simply unpacked again.
    assert (make(bundles, root, f"oci:{other}:elsewhere") / "rootfs/elsewhere.txt").read_text() \
        == f"elsewhere {unique}\n"
    assert (make(bundles, root, "stored") / "rootfs/stored.txt").read_text() == f"stored {unique}\n"


def test_prune_keeps_a_layer_a_live_bundle_mounts_after_its_image_is_gone(root, bundles, unique):
    image = one_layer_image(unique, "live")
    fx.write_layout(root / "images", {"docker.io/library/live:latest": image})
    bundle = make(bundles, root, "live")
    env = dict(os.environ, MOCKER_ROOT=str(root))
    subprocess.run(["mocker-fetch", "--rm", "live"], env=env, check=True, capture_output=True)
    assert "Removed 0 cached layers" in prune(root).stdout
    assert cached(root, image).is_dir()
    assert (bundle / "rootfs/live.txt").read_text() == f"live {unique}\n"

    remove_bundle(bundle, root)
    assert f"deleted: {image.diff_ids[0]}" in prune(root).stdout
    assert not cached(root, image).exists()


def test_prune_that_fails_midway_leaves_no_half_layer(root, bundles, tmp_path, unique):
    """A file that cannot be deleted (immutable): one line, non-zero exit, and the layer is
    out of the cache whole; the next bundle unpacks it again, the next prune finishes."""
    image = fx.make_image([fx.make_layer([fx.file("a.txt", "a\n"), fx.file("b.txt", unique)])])
    layout = fx.write_layout(tmp_path / "layout", {"img": image})
    remove_bundle(make(bundles, root, f"oci:{layout}:img"), root)
    stuck = cached(root, image) / "b.txt"
    if subprocess.run([need_tool("chattr"), "+i", stuck], capture_output=True).returncode:
        pytest.skip(f"{stuck.parent.parent} cannot make a file immutable")
    moved = root / "layers/tmp" / f"prune-{cached(root, image).name}"
    try:
        result = prune(root, check=False)
        assert result.returncode == ExitCode.ERROR
        assert len(result.stderr.strip().splitlines()) == 1
        assert "deleting it failed" in result.stderr and "next --prune" in result.stderr
        assert not cached(root, image).exists()
        bundle = make(bundles, root, f"oci:{layout}:img")
        assert (bundle / "rootfs/b.txt").read_text() == unique
        assert (bundle / "rootfs/a.txt").read_text() == "a\n"
    finally:
        subprocess.run(["chattr", "-i", moved / "b.txt"], check=False, capture_output=True)
        subprocess.run(["chattr", "-i", stuck], check=False, capture_output=True)
    remove_bundle(bundle, root)
    assert "Removed 1 cached layers" in prune(root).stdout
    assert list((root / "layers/tmp").iterdir()) == []


def hold_gc_lock(root: Path, mode: int):
    """Take the cache's gc lock as a bundle being made (LOCK_SH) or a prune (LOCK_EX) does."""
    lock_path = root / "layers" / "gc.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(lock_path, "w")
    fcntl.flock(lock, mode)
    return lock


def run_holding(root: Path, lock, *args) -> tuple[bool, subprocess.CompletedProcess]:
    """Run mocker-bundle ARGS while we hold lock; after a second, release it and let the
    command finish. (Was it still waiting then?, its result.)"""
    env = dict(os.environ, MOCKER_ROOT=str(root))
    proc = subprocess.Popen(["mocker-bundle", *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        waited = proc.poll() is None
    finally:
        lock.close()
        out, err = proc.communicate(timeout=60)
    return waited, subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_prune_waits_for_a_bundle_being_made(root):
    """A bundle being made holds the gc lock shared until its overlay is mounted."""
    waited, result = run_holding(root, hold_gc_lock(root, fcntl.LOCK_SH), "--prune")
    assert waited, "prune did not wait for the bundle being made"
    assert result.returncode == 0, result.stderr
    assert "Removed 0 cached layers" in result.stdout


def test_a_bundle_waits_for_a_prune(root, bundles, tmp_path, unique):
    """...and waits while a prune holds it, so no layer goes between choosing and mounting."""
    image = one_layer_image(unique, "waiting")
    layout = fx.write_layout(tmp_path / "layout", {"img": image})
    waited, result = run_holding(root, hold_gc_lock(root, fcntl.LOCK_EX),
                                 "--network", "none", f"oci:{layout}:img")
    assert result.returncode == 0, result.stderr
    bundles.append(Path(result.stdout.strip()))
    assert waited, "the bundle was made while a prune held the gc lock"
    assert (bundles[0] / "rootfs/waiting.txt").read_text() == f"waiting {unique}\n"


def test_prune_refuses_a_corrupt_store(root):
    (root / "images").mkdir(parents=True)
    (root / "images/index.json").write_text("{not json")
    (root / "layers/sha256").mkdir(parents=True)
    result = prune(root, check=False)
    assert result.returncode == ExitCode.CORRUPT
    assert "not pruning" in result.stderr
