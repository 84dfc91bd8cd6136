"""Garbage collection of the layer cache (`mocker-bundle --prune`).

A cached layer is kept while
- an image in the shared store (mocker-fetch's layout) lists it among its
  config's rootfs.diff_ids, on any platform of an index; or
- an overlay mount, in any mount namespace, has it among its lower
  directories: a bundle's rootfs, whose image may have been removed already; or
- a bundle under the containers directory names it in its layer record
  (remount.py): a stopped container after a reboot has no mount, but
  `mocker start` mounts its overlay again from these layers.
Everything else under the cache goes: unused layers with their short links and
lock files, and what interrupted unpacks left in tmp/. Layers of images used
from other layouts (oci:DIR) are kept only while mounted; a later bundle
unpacks them again.

Bundles being made hold the cache's gc lock shared; we hold it exclusively,
so no layer is unpacked, chosen or mounted while we decide. A layer is first
renamed out of sha256/ (atomically), then deleted: an error midway leaves its
rest in tmp/, for the next prune to finish, never a half layer in the cache.
"""

import json
import os
from pathlib import Path

from mocker_common import paths
from mocker_common.errors import Corrupt, MockerError, NotFound

from . import log
from .cache import gc_lock
from .image import read_json_blob
from .mount import overlay_lower_dirs
from .remount import recorded_diff_ids
from .rootdir import remove_tree


def prune_cache() -> list[tuple[str, int]]:
    """Delete the cached layers nothing uses; return [(diff_id, bytes freed)]."""
    cache = paths.layer_cache()
    if not cache.is_dir():
        return []
    removed = []
    with gc_lock(exclusive=True):
        _clear_scratch(cache / "tmp")
        keep = image_diff_ids(paths.image_layout()) | recorded_diff_ids(paths.containers_dir())
        lowers = overlay_lower_dirs()
        for entry in _cached_layers(cache):
            diff_id = f"{entry.parent.name}:{entry.name}"
            if diff_id in keep or _is_mounted(entry, lowers):
                continue
            removed.append((diff_id, _remove_layer(cache, entry)))
        _remove_dangling_links(cache / "l")
    return removed


def image_diff_ids(layout: Path) -> set[str]:
    """Every diff_id of every image in an OCI layout, all platforms of an index."""
    try:
        index = json.loads((layout / "index.json").read_bytes())
    except FileNotFoundError:
        return set()        # nothing pulled yet
    except ValueError as err:
        raise Corrupt(f"{layout}/index.json is not valid JSON, so not pruning: {err}") from None
    diff_ids, todo = set(), list(index.get("manifests", []))
    while todo:
        try:
            document = read_json_blob(layout, todo.pop())
            if "manifests" in document:         # an index: every platform's manifest
                todo += document["manifests"]
            elif "config" in document:
                config = read_json_blob(layout, document["config"])
                diff_ids.update((config.get("rootfs") or {}).get("diff_ids") or [])
        except (NotFound, Corrupt):
            continue    # a platform never pulled, or an image being removed
    return diff_ids


def _cached_layers(cache: Path) -> list[Path]:
    """layers/<algorithm>/<hex> directories (the cache's entries)."""
    return sorted(entry for algorithm in ("sha256", "sha512") if (cache / algorithm).is_dir()
                  for entry in (cache / algorithm).iterdir())


def _is_mounted(entry: Path, lowers: set[str]) -> bool:
    """Does an overlay name this entry, by its short link (l/<12 hex>) or itself?"""
    for lower in lowers:
        parent, _, name = lower.rstrip("/").rpartition("/")
        parent = parent.rpartition("/")[2]
        if parent == "l" and name and entry.name.startswith(name):
            return True     # a short link of another cache may name it too: keep it then
        if parent == entry.parent.name and name == entry.name:
            return True
    return False


def _remove_layer(cache: Path, entry: Path) -> int:
    diff_id = f"{entry.parent.name}:{entry.name}"
    size = _tree_size(entry)
    doomed = cache / "tmp" / f"prune-{entry.name}"
    doomed.parent.mkdir(exist_ok=True)
    try:
        os.rename(entry, doomed)        # the cache no longer has it, whole or in part
    except OSError as err:
        raise MockerError(f"cannot delete cached layer {diff_id}: {err.strerror}") from None
    link = cache / "l" / entry.name[:12]
    if os.path.islink(link) and os.readlink(link) == f"../{entry.parent.name}/{entry.name}":
        link.unlink()
    (cache / "locks" / f"{entry.name}.lock").unlink(missing_ok=True)  # nobody holds it: gc lock
    try:
        remove_tree(doomed)
    except OSError as err:
        raise MockerError(f"cached layer {diff_id} is out of the cache, but deleting it failed "
                          f"({err.strerror}: {err.filename}); the next --prune retries") from None
    log.info("deleted cached layer %s (%d bytes)", diff_id, size)
    return size


def _clear_scratch(tmp: Path) -> None:
    """Leftovers of interrupted unpacks and prunes (no unpack runs while we hold the lock)."""
    for leftover in tmp.iterdir() if tmp.is_dir() else []:
        log.info("removing %s, left by an interrupted unpack or prune", leftover)
        remove_tree(leftover)


def _remove_dangling_links(links: Path) -> None:
    for link in links.iterdir() if links.is_dir() else []:
        if link.is_symlink() and not link.exists():
            link.unlink()


def _tree_size(top: Path) -> int:
    """Disk space a directory tree takes (blocks; hard links counted once)."""
    seen, total = set(), 0
    for directory, dirs, files in os.walk(top):
        names = [os.path.join(directory, name) for name in dirs + files]
        for name in names + ([directory] if directory == str(top) else []):
            st = os.lstat(name)
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
