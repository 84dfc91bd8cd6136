"""The container's filesystem view: mounts, /dev, pivot_root, masked paths.

Runs inside the container's new mount namespace, as its init process, in this
order (runtime-spec config.md#mounts, config-linux.md):

  prepare()   / made private, rootfs bound on itself, every mount of config.json,
              /dev's devices and links, /dev/console
  enter()     pivot_root into the rootfs (chroot with --no-pivot)
  finish()    sysctl, readonlyPaths, maskedPaths, read-only root
"""

import errno
import os
import stat

from mocker_common.errors import MockerError

from . import linux
from .spec import Device, Mount, Spec

# runc's default devices (config-linux.md#default-devices)
DEFAULT_DEVICES = [
    Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    Device("/dev/zero", "c", 1, 5, 0o666, 0, 0),
    Device("/dev/full", "c", 1, 7, 0o666, 0, 0),
    Device("/dev/random", "c", 1, 8, 0o666, 0, 0),
    Device("/dev/urandom", "c", 1, 9, 0o666, 0, 0),
    Device("/dev/tty", "c", 5, 0, 0o666, 0, 0),
]
DEV_LINKS = [
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
]
_STATVFS_LOCKED = {  # statvfs f_flag bit -> mount flag a user namespace cannot clear
    1: linux.MS_RDONLY, 2: linux.MS_NOSUID, 4: linux.MS_NODEV, 8: linux.MS_NOEXEC,
    1024: linux.MS_NOATIME, 2048: linux.MS_NODIRATIME, 4096: linux.MS_RELATIME,
}


class RootfsError(MockerError):
    pass


def secure_join(root: str, path: str) -> str:
    """root + path with symlinks resolved as if root were /: never leads outside root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        current = os.path.join(root, *done, part)
        if os.path.islink(current):
            hops += 1
            if hops > 40:
                raise RootfsError(f"too many symlinks in {path}")
            target = os.readlink(current)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


def _fail(what: str, err: OSError) -> RootfsError:
    return RootfsError(f"{what}: {os.strerror(err.errno) if err.errno else err}")


def _make_target(target: str, like_file: bool) -> None:
    if like_file:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    else:
        os.makedirs(target, exist_ok=True)


def _locked_flags(target: str) -> int:
    flags = os.statvfs(target).f_flag
    return sum(ms for st, ms in _STATVFS_LOCKED.items() if flags & st)


def mount_one(rootfs: str, m: Mount, in_userns: bool, in_cgroupns: bool = False) -> None:
    """Mount one entry of config.json's mounts, with its flags and propagation."""
    target = secure_join(rootfs, m.destination)
    what = f"mount {m.source or m.type} on {m.destination}"
    try:
        if m.type == "cgroup":
            return _mount_cgroups(target, m, in_cgroupns)
        if m.is_bind:
            if not os.path.exists(m.source):
                raise RootfsError(f"{what}: source {m.source} does not exist")
            _make_target(target, not os.path.isdir(m.source))
            linux.mount(m.source, target, None, m.flags & (linux.MS_BIND | linux.MS_REC))
            extra = m.flags & ~(linux.MS_BIND | linux.MS_REC)
            if extra:
                # A bind mount ignores flags: they take effect on a remount (mount(8) does this too).
                if in_userns:
                    extra |= _locked_flags(target)
                linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | extra)
        else:
            _make_target(target, False)
            linux.mount(m.source, target, m.type, m.flags, m.data or None)
        for prop in m.propagation:
            linux.mount(None, target, None, prop)
    except OSError as err:
        raise _fail(what, err) from None


def _own_cgroups() -> list[tuple[str, str, str]]:
    """(directory under /sys/fs/cgroup, controllers, our path), from /proc/self/cgroup."""
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            name = controllers.removeprefix("name=") if controllers else "unified"
            out.append((name, controllers, path))
    return out


def _mount_cgroups(target: str, m: Mount, own_namespace: bool) -> None:
    """A `cgroup` mount. On a v1 or hybrid host: a tmpfs holding, per v1
    hierarchy, the container's own cgroup; on a pure v2 host, cgroup2 itself.

    Like runc on this kind of host (v1 controllers plus an empty v2 tree at
    unified, which it leaves out), the container sees only its own cgroup:
    in a cgroup namespace, a fresh cgroup mount (the kernel roots it at the
    namespace's root); without one, a bind mount of our directory. The tmpfs
    itself stays writable, as under runc 1.1.
    """
    _make_target(target, False)
    own = _own_cgroups()
    if all(controllers == "" for _, controllers, _ in own):
        return _mount_cgroup2(target, m)
    linux.mount("tmpfs", target, "tmpfs", m.flags & ~linux.MS_RDONLY, "mode=755")
    for name, controllers, path in own:
        host = os.path.join("/sys/fs/cgroup", name, path.lstrip("/"))
        if name == "unified" or not os.path.isdir(host):
            continue
        inside = os.path.join(target, name)
        os.makedirs(inside, exist_ok=True)
        if own_namespace:
            data = controllers if not controllers.startswith("name=") else "none," + controllers
            linux.mount("cgroup", inside, "cgroup", m.flags, data)
        else:
            linux.mount(host, inside, None, linux.MS_BIND | linux.MS_REC)
            linux.mount(None, inside, None, linux.MS_BIND | linux.MS_REMOUNT | m.flags)


def _mount_cgroup2(target: str, m: Mount) -> None:
    """A pure cgroup v2 host: the one hierarchy, as runc mounts it.

    A fresh cgroup2 mount, which the kernel roots at the root of our cgroup
    namespace: the container's own cgroup in a cgroup namespace, the host's
    root without one. Where the kernel refuses (a user namespace without a
    cgroup namespace), runc binds the host's tree instead: so do we.
    """
    try:
        linux.mount("cgroup2", target, "cgroup2", m.flags)
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EBUSY):
            raise
        linux.mount("/sys/fs/cgroup", target, None, linux.MS_BIND | linux.MS_REC)
        flags = m.flags & ~(linux.MS_BIND | linux.MS_REC)
        linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | flags | _locked_flags(target))


def make_device(rootfs: str, dev: Device, in_userns: bool) -> None:
    """mknod a device, or in a user namespace (where mknod is refused) bind the host's."""
    target = secure_join(rootfs, dev.path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        return
    try:
        if in_userns:
            _make_target(target, True)
            linux.mount(dev.path, target, None, linux.MS_BIND)
            return
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[dev.type]
        linux.mknod(target, kind | (dev.mode & 0o7777), dev.major, dev.minor)
        os.chmod(target, dev.mode & 0o7777)
        os.chown(target, dev.uid, dev.gid)
    except OSError as err:
        raise _fail(f"create device {dev.path}", err) from None


def setup_dev(rootfs: str, devices: list[Device], in_userns: bool) -> None:
    """Default devices, linux.devices, and the /dev links every program expects."""
    for dev in DEFAULT_DEVICES + devices:
        make_device(rootfs, dev, in_userns)
    for source, link in DEV_LINKS:
        path = secure_join(rootfs, link)
        if not os.path.lexists(path):
            os.symlink(source, path)


def bind_console(rootfs: str, slave: str) -> None:
    """runtime-spec: with process.terminal, /dev/console is the pty's slave."""
    target = secure_join(rootfs, "/dev/console")
    try:
        _make_target(target, True)
        linux.mount(slave, target, None, linux.MS_BIND)
    except OSError as err:
        raise _fail("bind /dev/console", err) from None


def prepare(spec: Spec, in_userns: bool) -> None:
    """Everything that happens while the host's filesystem is still visible."""
    rootfs = spec.rootfs
    try:
        # Mounts made from here on must not propagate to the host.
        linux.mount(None, "/", None, spec.rootfs_propagation)
        # pivot_root needs the new root to be a mount point.
        linux.mount(rootfs, rootfs, None, linux.MS_BIND | linux.MS_REC)
    except OSError as err:
        raise _fail(f"prepare rootfs {rootfs}", err) from None
    in_cgroupns = spec.namespace("cgroup") is not None
    for m in spec.mounts:
        mount_one(rootfs, m, in_userns, in_cgroupns)
    if any(m.destination == "/dev" for m in spec.mounts):
        setup_dev(rootfs, spec.devices, in_userns)
    else:
        for dev in spec.devices:
            make_device(rootfs, dev, in_userns)


def enter(rootfs: str, no_pivot: bool) -> None:
    """Make the rootfs our /, and the host's filesystem unreachable."""
    try:
        os.chdir(rootfs)
        if no_pivot:
            linux.mount(rootfs, "/", None, linux.MS_MOVE)
            linux.chroot(".")
        else:
            # pivot_root(".", "."): the old root ends up stacked under the new one;
            # made a slave so unmounting it cannot propagate, then detached.
            linux.pivot_root(".", ".")
            linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC)
            linux.umount(".", linux.MNT_DETACH)
        os.chdir("/")
    except OSError as err:
        raise _fail(f"{'chroot' if no_pivot else 'pivot_root'} into {rootfs}", err) from None


def write_sysctl(sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as err:
            raise _fail(f"sysctl {key}", err) from None


def readonly_path(path: str) -> None:
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, path, None,
                    linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_REC)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise _fail(f"make {path} read-only", err) from None


def mask_path(path: str) -> None:
    """Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        if os.path.isdir(path):
            linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY)
        else:
            linux.mount("/dev/null", path, None, linux.MS_BIND)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise _fail(f"mask {path}", err) from None


def finish(spec: Spec) -> None:
    """Steps on the container's own / (after pivot_root)."""
    write_sysctl(spec.sysctl)
    for path in spec.readonly_paths:
        readonly_path(path)
    for path in spec.masked_paths:
        mask_path(path)
    if spec.readonly_root:
        try:
            # The flags / already has go along: in a user namespace the kernel
            # refuses a remount that would drop a locked one (the rootfs of a
            # host whose /var/lib or /tmp is nosuid,nodev), as runc knows too.
            linux.mount(None, "/", None,
                        linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _locked_flags("/"))
        except OSError as err:
            raise _fail("remount / read-only", err) from None
