"""mocker-bundle --mount: a bundle's overlay mounted again from its layer record
(what a reboot takes away), and --prune keeping the layers a record names."""

import os
import subprocess
from pathlib import Path

import pytest

from mocker_common.errors import ExitCode
from tests.conftest import need_root
from tests.fixtures import images as fx
from tests.fixtures.bundler import make, remove_bundle, run_bundle


@pytest.fixture(autouse=True)
def as_root():
    need_root()


def two_layer_image(unique: str) -> fx.Image:
    return fx.make_image([fx.make_layer([fx.file("base.txt", f"base {unique}\n")]),
                          fx.make_layer([fx.file("top.txt", f"top {unique}\n")])])


def reboot(bundle: Path) -> None:
    """What a reboot does to a bundle: its overlay is gone, rootfs/ is empty."""
    subprocess.run(["umount", "-l", bundle / "rootfs"], check=True)
    assert list((bundle / "rootfs").iterdir()) == []


def is_mounted(path: Path) -> bool:
    return os.path.ismount(path)


def test_layer_record_names_the_layers_topmost_first(root, bundles, tmp_path, unique):
    image = two_layer_image(unique)
    layout = fx.write_layout(tmp_path / "layout", {"img": image})
    bundle = make(bundles, root, f"oci:{layout}:img")
    assert (bundle / "layers").read_text().split() == image.diff_ids[::-1]


def test_mount_again_keeps_the_containers_changes_and_is_idempotent(root, bundles, tmp_path,
                                                                    unique):
    layout = fx.write_layout(tmp_path / "layout", {"img": two_layer_image(unique)})
    bundle = make(bundles, root, f"oci:{layout}:img")
    (bundle / "rootfs/mine.txt").write_text("changed\n")
    (bundle / "rootfs/base.txt").unlink()
    reboot(bundle)

    run_bundle("--mount", bundle, root=root)
    assert is_mounted(bundle / "rootfs")
    assert (bundle / "rootfs/top.txt").read_text() == f"top {unique}\n"
    assert (bundle / "rootfs/mine.txt").read_text() == "changed\n"
    assert not (bundle / "rootfs/base.txt").exists(), "the container's whiteout is kept"

    again = run_bundle("--mount", bundle, root=root)
    assert again.stdout == again.stderr == ""
    mounts = Path("/proc/self/mountinfo").read_text().count(f" {bundle}/rootfs ")
    assert mounts == 1, "mounted once, not stacked"


def test_a_missing_layer_is_one_line_and_mounts_nothing(root, bundles, tmp_path, unique):
    image = two_layer_image(unique)
    layout = fx.write_layout(tmp_path / "layout", {"img": image})
    bundle = make(bundles, root, f"oci:{layout}:img")
    reboot(bundle)
    # The image came from another layout and is not mounted: prune would keep
    # it for the record, so delete the layer by hand, as a lost cache would.
    layer = root / "layers/sha256" / image.diff_ids[0].split(":")[1]
    subprocess.run(["rm", "-rf", layer], check=True)

    failed = run_bundle("--mount", bundle, root=root, check=False)
    assert failed.returncode == ExitCode.NOT_FOUND
    assert len(failed.stderr.splitlines()) == 1, failed.stderr
    assert image.diff_ids[0] in failed.stderr and "pull" in failed.stderr
    assert not is_mounted(bundle / "rootfs")
    assert list((bundle / "rootfs").iterdir()) == []


def test_a_volatile_bundle_is_not_mounted_again(root, bundles, tmp_path, unique):
    layout = fx.write_layout(tmp_path / "layout", {"img": two_layer_image(unique)})
    bundle = make(bundles, root, "--volatile", f"oci:{layout}:img")
    if not (bundle / "work/work/incompat/volatile").exists():
        pytest.skip("this kernel mounts no volatile overlay")
    reboot(bundle)
    failed = run_bundle("--mount", bundle, root=root, check=False)
    assert failed.returncode == ExitCode.CONFLICT
    assert len(failed.stderr.splitlines()) == 1 and "volatile" in failed.stderr, failed.stderr
    assert not is_mounted(bundle / "rootfs")


def test_a_copy_bundle_needs_no_mount(root, bundles, tmp_path, unique):
    layout = fx.write_layout(tmp_path / "layout", {"img": two_layer_image(unique)})
    bundle = make(bundles, root, "--copy", f"oci:{layout}:img")
    run_bundle("--mount", bundle, root=root)
    assert not is_mounted(bundle / "rootfs")
    assert (bundle / "rootfs/top.txt").read_text() == f"top {unique}\n"


def test_prune_keeps_the_layers_of_an_unmounted_bundle_whose_image_is_gone(root, bundles,
                                                                          unique):
    image = two_layer_image(unique)
    fx.write_layout(root / "images", {"docker.io/library/kept:latest": image})
    bundle = make(bundles, root, "kept")
    env = dict(os.environ, MOCKER_ROOT=str(root))
    subprocess.run(["mocker-fetch", "--rm", "kept"], env=env, check=True, capture_output=True)
    reboot(bundle)      # no image, no mount: only the bundle's record names the layers

    assert "Removed 0 cached layers" in run_bundle("--prune", root=root).stdout
    run_bundle("--mount", bundle, root=root)
    assert (bundle / "rootfs/base.txt").read_text() == f"base {unique}\n"

    remove_bundle(bundle, root)
    out = run_bundle("--prune", root=root).stdout
    assert all(f"deleted: {diff_id}" in out for diff_id in image.diff_ids), out
