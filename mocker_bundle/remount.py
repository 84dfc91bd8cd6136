"""A bundle's layer record, and mounting its overlay again from it (`mocker-bundle --mount DIR`).

An overlay mount does not outlive the host: after a reboot a kept container's
rootfs/ is an empty directory. So each overlay bundle records, in its file
`layers`, the diff_ids of the cached layers its overlay stacks, topmost first
(as Docker's overlay2 keeps a `lower` file per layer), and `mocker start`
mounts the overlay again from it, the container's upper/ (its own changes)
kept. prune.py keeps every layer a record names.

Apart from bundle.py (the image reader, the config conversion: ~40 ms) so that
the engine imports only a few small modules for `start`.
"""

import os
from pathlib import Path

from mocker_common.errors import Conflict, MockerError, NotFound

from . import mount
from .cache import cached_layer_path, gc_lock, short_link

LAYER_RECORD = "layers"
# overlayfs creates this at every volatile mount and refuses the upper while it
# exists: nobody knows whether the upper's writes reached the disk.
VOLATILE_MARK = Path("work/work/incompat/volatile")


def write_layer_record(bundle_dir: Path, diff_ids: list[str]) -> None:
    """The layers of this bundle's overlay, topmost first, one diff_id a line.

    Written before the mount, without fsync: a failure deletes the bundle whole.
    """
    (Path(bundle_dir) / LAYER_RECORD).write_text("".join(f"{d}\n" for d in diff_ids))


def read_layer_record(bundle_dir: Path) -> list[str] | None:
    """The diff_ids a bundle's overlay stacks (topmost first); None without a record."""
    try:
        return (Path(bundle_dir) / LAYER_RECORD).read_text().split()
    except (FileNotFoundError, NotADirectoryError):     # not a bundle, or not an overlay one
        return None


def mount_bundle(bundle_dir: Path) -> bool:
    """Mount a bundle's overlay rootfs again from its record; False when nothing
    was to do (mounted already, or a --copy bundle's plain rootfs)."""
    bundle_dir = Path(bundle_dir).absolute()
    rootfs = bundle_dir / "rootfs"
    if mount.is_mountpoint(rootfs):
        return False
    diff_ids = read_layer_record(bundle_dir)
    if diff_ids is None:
        if (bundle_dir / "upper").is_dir():
            raise NotFound(f"{bundle_dir} has no layer record (made by an older mocker-bundle): "
                           "cannot mount its rootfs again; remove it and create it anew")
        if not (bundle_dir / "config.json").is_file():
            raise NotFound(f"{bundle_dir} is not a bundle (no config.json)")
        return False     # --copy: the rootfs is a plain directory
    if (bundle_dir / VOLATILE_MARK).exists():
        raise Conflict(f"{bundle_dir} has a volatile overlay (a --rm container's) that was not "
                       "removed when it ended; overlayfs will not mount it again: remove it")
    if rootfs.is_dir() and any(rootfs.iterdir()):
        raise Conflict(f"{rootfs} is not mounted but not empty; not mounting over it")
    # Shared, as a bundle being made: no --prune deletes a layer between check and mount.
    with gc_lock():
        lowers = []
        for diff_id in reversed(diff_ids):      # mount_overlay takes them base first
            layer = cached_layer_path(diff_id)
            if not layer.is_dir():
                raise NotFound(f"layer {diff_id} of {bundle_dir} is no longer in the layer "
                               "cache: pull its image and create a container of it (that "
                               "unpacks the layer again), or remove this container")
            lowers.append(short_link(layer))
        rootfs.mkdir(mode=0o755, exist_ok=True)
        mount.mount_overlay(rootfs, lowers, bundle_dir / "upper", bundle_dir / "work")
    return True


def recorded_diff_ids(containers_dir: Path) -> set[str]:
    """Every layer a bundle under containers_dir records (for --prune)."""
    found = set()
    for entry in os.scandir(containers_dir) if os.path.isdir(containers_dir) else []:
        found.update(read_layer_record(Path(entry.path)) or [])
    return found
