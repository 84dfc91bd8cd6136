"""The layer cache: each layer unpacked once, in overlay form, keyed by its diff_id.

    layers/sha256/<hex>/     one layer's files, whiteouts as overlayfs markers
    layers/locks/<hex>.lock  held while that layer is being unpacked
    layers/gc.lock           held shared by bundles being made, exclusively by --prune
    layers/tmp/unpack-<hex>  a scratch directory, renamed into place when complete
    layers/l/<hex[:12]>      a short symlink to sha256/<hex>: more layers fit in the one
                             page of mount options (as Docker's overlay2 does)

A cache entry appears by rename(2) only after its digests were checked, so a
directory under sha256/ is always a whole, verified layer.
"""

import os
from pathlib import Path

from mocker_common import paths
from mocker_common.digest import parse_digest
from mocker_common.files import locked

from . import log
from .rootdir import remove_tree


def gc_lock(exclusive: bool = False):
    """A bundle being made holds this shared, from choosing its layers until its
    overlay is mounted (from then on, mountinfo names them); prune.py holds it
    exclusively, so it never deletes a layer a bundle is about to mount."""
    return locked(paths.layer_cache() / "gc.lock", shared=not exclusive)


def cached_layer_path(diff_id: str) -> Path:
    algorithm, hexpart = parse_digest(diff_id)
    return paths.layer_cache() / algorithm / hexpart


def ensure_layer(blob: Path, descriptor: dict, diff_id: str) -> Path:
    """A path (short link) to this layer's cache directory, unpacking it first if needed."""
    final = cached_layer_path(diff_id)
    if final.is_dir():
        log.info("layer %s: cached in %s", descriptor["digest"], final)
    else:
        _unpack_into_cache(blob, descriptor, diff_id, final)
    return short_link(final)


def short_link(final: Path) -> Path:
    """layers/l/<first 12 hex> -> ../sha256/<hex>, or final itself if that name is taken."""
    link = paths.layer_cache() / "l" / final.name[:12]
    target = f"../{final.parent.name}/{final.name}"
    link.parent.mkdir(exist_ok=True)
    try:
        os.symlink(target, link)
    except FileExistsError:
        if os.readlink(link) != target:      # another layer with the same 48-bit prefix
            return final
    return link


def _unpack_into_cache(blob: Path, descriptor: dict, diff_id: str, final: Path) -> None:
    with locked(paths.layer_cache() / "locks" / f"{final.name}.lock"):
        if final.is_dir():      # another mocker-bundle unpacked it while we waited
            return
        from .layerstream import unpack_verified   # tarfile, subprocess: only when unpacking
        log.info("unpacking layer %s into the cache", descriptor["digest"])
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = _scratch_dir(final.name)
        try:
            os.chmod(scratch, 0o755)    # the layer's own "./" entry may change this
            unpack_verified(blob, descriptor, diff_id, scratch, overlay=True)
            os.rename(scratch, final)
        except BaseException:
            remove_tree(scratch)
            raise


def _scratch_dir(hexpart: str) -> Path:
    """A new, empty scratch directory for this layer; call with the layer's lock held.

    Holding the lock, we are the only one unpacking this layer, so one fixed
    name is enough; one left by a killed mocker-bundle is removed first.
    """
    tmp = paths.layer_cache() / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for stale in tmp.glob(f"unpack-{hexpart}*"):
        log.info("removing %s, left by an interrupted unpack", stale)
        remove_tree(stale)
    scratch = tmp / f"unpack-{hexpart}"
    scratch.mkdir()
    return scratch

