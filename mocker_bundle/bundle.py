"""Making and removing runtime bundles: the steps, in order, over the other modules.

A bundle (runtime-spec bundle.md) is a directory with config.json and rootfs/.
remove.py deletes them.
Ours also keeps, for the default overlay rootfs, upper/ (the container's own
changes) and work/ (overlayfs scratch), and volumes/ for the image's
Volumes.
"""

import json
import os
import resource
import shutil
import stat
from pathlib import Path

from mocker_common import inroot, names
from mocker_common.errors import Conflict, MockerError

from . import log, mount, seccomp_profile
from .cache import ensure_layer, gc_lock
from .convert import runtime_config
from .image import Image
from .options import BundleOptions
from .profile import DEFAULT_CAPABILITIES, DEFAULT_NOFILE
from .remount import write_layer_record
from .rootdir import remove_tree

def container_id(name: str | None, bundle_dir: Path | None) -> str:
    """--name, else the bundle directory's name if it makes a good id, else a new
    random id (64 hex digits, as Docker's)."""
    if name:
        return names.container_name(name)
    dir_name = Path(bundle_dir).resolve().name if bundle_dir else ""
    try:
        return names.container_name(dir_name)
    except names.InvalidName:
        return os.urandom(32).hex()


def host_defaults(opts: BundleOptions, bundle_dir: Path) -> BundleOptions:
    """Fill in what depends on this host: rlimits, mocker-net's path, the seccomp profile."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    filled = {"nofile": DEFAULT_NOFILE if hard == resource.RLIM_INFINITY
              else min(DEFAULT_NOFILE, hard),
              "volumes_dir": str(bundle_dir / "volumes")}
    if opts.network == "bridge" and opts.net_command is None:
        found = shutil.which("mocker-net")
        filled["net_command"] = os.path.abspath(found) if found else None
    if opts.seccomp is None:
        filled["seccomp"] = seccomp_profile.build(DEFAULT_CAPABILITIES)
    return opts.replace(**filled)


def create_bundle(image: Image, opts: BundleOptions, bundle_dir: Path, copy: bool = False,
                  validate: bool = False, volatile: bool = False) -> Path:
    """Make bundle_dir (new or empty) into a bundle of image; on failure leave nothing."""
    bundle_dir = Path(bundle_dir).absolute()
    log.info("image %s: manifest %s, %d layers", image.ref, image.manifest_digest,
             len(image.layers))
    made_dir = _claim_dir(bundle_dir)
    try:
        rootfs = bundle_dir / "rootfs"
        rootfs.mkdir(mode=0o755)
        if copy:
            _copy_rootfs(image, rootfs)
        else:
            _overlay_rootfs(image, bundle_dir, rootfs, volatile)
        _write_config(image, host_defaults(opts, bundle_dir), bundle_dir, rootfs, validate)
    except BaseException:
        _discard(bundle_dir, made_dir)
        raise
    return bundle_dir


def _claim_dir(bundle_dir: Path) -> bool:
    """Create bundle_dir, or accept it if empty; True when we created it."""
    try:
        bundle_dir.mkdir(parents=True)
        return True
    except FileExistsError:
        if not bundle_dir.is_dir() or any(bundle_dir.iterdir()):
            raise Conflict(f"{bundle_dir} already exists and is not an empty directory") from None
        return False


def _overlay_rootfs(image: Image, bundle_dir: Path, rootfs: Path, volatile: bool) -> None:
    if not image.layers:
        raise MockerError(f"{image.ref} has no layers")
    upper, work = bundle_dir / "upper", bundle_dir / "work"
    upper.mkdir()
    work.mkdir()
    os.chmod(upper, 0o755)      # the rootfs's "/" as the container sees it
    with gc_lock():
        layers = [(ensure_layer(image.blob(descriptor), descriptor, diff_id), diff_id)
                  for descriptor, diff_id in image.layers]
        # overlayfs refuses a directory twice among its lowers. A layer that comes
        # again (e.g. the same empty layer) decides every path it names at its top
        # position, so its lower occurrences change nothing: keep the topmost one.
        layers = [layer for i, layer in enumerate(layers) if layer not in layers[i + 1:]]
        # The record `mocker start` mounts the overlay again from after a reboot.
        write_layer_record(bundle_dir, [diff_id for _, diff_id in reversed(layers)])
        mount.mount_overlay(rootfs, [path for path, _ in layers], upper, work, volatile)


def _copy_rootfs(image: Image, rootfs: Path) -> None:
    """--copy: apply every layer onto one plain directory, whiteouts deleting."""
    from .layerstream import unpack_verified
    for descriptor, diff_id in image.layers:
        unpack_verified(image.blob(descriptor), descriptor, diff_id, rootfs, overlay=False)


def _write_config(image: Image, opts: BundleOptions, bundle_dir: Path, rootfs: Path,
                  validate: bool) -> None:
    passwd = inroot.read_file(rootfs, "/etc/passwd")
    group = inroot.read_file(rootfs, "/etc/group")
    config = runtime_config(image.config, opts, _text(passwd), _text(group))
    # Docker creates a WorkingDir the image lacks, so the process can start there.
    inroot.make_dirs(rootfs, config["process"]["cwd"])
    for mnt in config["mounts"]:
        if mnt["type"] == "bind" and mnt["source"].startswith(opts.volumes_dir + "/"):
            _make_volume(rootfs, mnt["destination"], Path(mnt["source"]))
    if validate:
        from .validate import validate_config
        validate_config(config)
    # No temp file and fsync: nobody knows of this bundle before we print its
    # path, and a failure deletes it whole.
    with open(bundle_dir / "config.json", "x") as f:
        f.write(json.dumps(config, indent=2) + "\n")
    log.info("wrote %s: %s as uid %d in %s", bundle_dir / "config.json",
             " ".join(config["process"]["args"]), config["process"]["user"]["uid"],
             config["process"]["cwd"])


def _make_volume(rootfs: Path, destination: str, source: Path) -> None:
    """A directory for one of the image's Volumes, seeded (as Docker does) with
    what the image has at that path: files, owners, modes, links, xattrs."""
    source.parent.mkdir(exist_ok=True)
    root = inroot.open_root(str(rootfs))
    try:
        fd = inroot.resolve(root, destination)
    except (FileNotFoundError, NotADirectoryError):
        fd = None
    finally:
        os.close(root)
    try:
        if fd is None or not stat.S_ISDIR(os.fstat(fd).st_mode):
            source.mkdir(mode=0o755)
            return
        # The directory was resolved inside the rootfs (as the container sees it);
        # cp reads it through our fd, so a symlink cannot point the copy at the host.
        import subprocess   # only for images with Volumes
        subprocess.run(["cp", "-a", "--", f"{inroot.fd_path(fd)}/.", str(source)],
                       pass_fds=[fd], check=True, capture_output=True)
    finally:
        if fd is not None:
            os.close(fd)


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8", "replace") if data is not None else None


def _discard(bundle_dir: Path, made_dir: bool) -> None:
    rootfs = bundle_dir / "rootfs"
    if rootfs.exists() and mount.is_mountpoint(rootfs):
        mount.unmount(rootfs)
    if made_dir:
        remove_tree(bundle_dir)
    else:
        for child in bundle_dir.iterdir():
            remove_tree(child)

