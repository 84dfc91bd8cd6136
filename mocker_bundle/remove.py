"""Removing a bundle: `mocker-bundle --remove DIR`.

Apart from bundle.py, which makes bundles, so that a caller that only removes
them (the engine's monitor, after every `mocker run --rm`) imports a few small
modules, not the image reader and the config conversion (~40 ms).
"""

import json
from pathlib import Path

from mocker_common import contract
from mocker_common.errors import Conflict, MockerError, NotFound

from . import mount
from .rootdir import remove_tree


def remove_bundle(bundle_dir: Path) -> None:
    """Unmount and delete a bundle made by mocker-bundle; refuse other directories."""
    bundle_dir = Path(bundle_dir).absolute()
    config_path = bundle_dir / "config.json"
    try:
        config = json.loads(config_path.read_bytes())
    except FileNotFoundError:
        raise NotFound(f"{bundle_dir} is not a bundle (no config.json)") from None
    except ValueError:
        config = {}
    if contract.NETWORK not in (config.get("annotations") or {}):
        raise MockerError(f"{bundle_dir} was not made by mocker-bundle; not removing it")
    rootfs = bundle_dir / "rootfs"
    if mount.is_mountpoint(rootfs):
        mount.unmount(rootfs)
    left = mount.mounts_under(bundle_dir)
    if left:
        raise Conflict(f"{bundle_dir}: {left[0]} is still mounted; unmount it first")
    remove_tree(bundle_dir)
