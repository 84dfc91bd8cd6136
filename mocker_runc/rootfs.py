"""The container's filesystem view: mounts, /dev, pivot_root, masked paths.

Runs inside the container's new mount namespace, as its init process, in this
order (runtime-spec config.md#mounts, config-linux.md):

  prepare()   / made private, rootfs bound on itself, every mount of config.json,
              /dev's devices and links, /dev/console
  enter()     pivot_root into the rootfs (chroot with --no-pivot)
  finish()    sysctl, readonlyPaths, maskedPaths, read-only root

No path inside the rootfs is looked up twice: each is an O_PATH fd from
inroot.resolve(), and mounts go onto its /proc/self/fd link (CVE-2021-30465).
"""

import errno
import os
import stat

from mocker_common import inroot
from mocker_common.errors import MockerError

from . import linux, narrate
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


def _fail(what: str, err: OSError) -> RootfsError:
    return RootfsError(f"{what}: {os.strerror(err.errno) if err.errno else err}")


# --- acting on a place, not on a name ------------------------------------------------
# Every destination is an O_PATH fd from inroot.resolve(); mount(2) is given the
# fd's /proc/self/fd link, which the kernel follows to exactly that file.

_proc_fds = True   # False after pivot_root into a rootfs without its own procfs


def _on(fd: int, path: str) -> str:
    """What to hand mount(2) for the place fd holds (path: where it is, in the rootfs)."""
    return linux.fd_path(fd) if _proc_fds else path


def _mounted(root: int, dest: str, below: int) -> int:
    """An fd of the mount just made on below's place, to remount or re-propagate it.

    below still holds the directory under the new mount, so dest is resolved
    again, and the answer is refused unless it is the same place with another
    mount on it: a destination swapped meanwhile is an error, not a remount of
    something else (runc checks the same way).
    """
    top = inroot.resolve(root, dest)
    if _proc_fds and (inroot.where(top) != inroot.where(below)
                      or linux.mount_id(top) == linux.mount_id(below)):
        os.close(top)
        raise RootfsError(f"mount {dest}: the destination changed while it was mounted")
    return top


def _locked_flags(where: int | str) -> int:
    """The flags of where's mount (an fd, or a path) that a user namespace cannot drop."""
    flags = os.statvfs(linux.fd_path(where) if isinstance(where, int) else where).f_flag
    return sum(ms for st, ms in _STATVFS_LOCKED.items() if flags & st)


def mount_one(root: int, m: Mount, in_userns: bool, in_cgroupns: bool = False) -> None:
    """Mount one entry of config.json's mounts, with its flags and propagation."""
    what = f"mount {m.source or m.type} on {m.destination}"
    target = top = None
    try:
        if m.is_bind and not os.path.exists(m.source):
            raise RootfsError(f"{what}: source {m.source} does not exist")
        like_file = m.is_bind and not os.path.isdir(m.source)
        target = inroot.resolve(root, m.destination, "file" if like_file else "dir")
        if narrate.on():
            _narrate_mount(m)
        if m.type == "cgroup":
            return _mount_cgroups(root, target, m, in_cgroupns)
        if m.is_bind:
            linux.mount(m.source, linux.fd_path(target), None,
                        m.flags & (linux.MS_BIND | linux.MS_REC))
            extra = m.flags & ~(linux.MS_BIND | linux.MS_REC)
            if extra or m.propagation:
                top = _mounted(root, m.destination, target)
            if extra:
                # A bind mount ignores flags: they take effect on a remount (as in mount(8)).
                if in_userns:
                    extra |= _locked_flags(top)
                linux.mount(None, linux.fd_path(top), None,
                            linux.MS_BIND | linux.MS_REMOUNT | extra)
        else:
            linux.mount(m.source, linux.fd_path(target), m.type, m.flags, m.data or None)
            if m.propagation:
                top = _mounted(root, m.destination, target)
        for prop in m.propagation:
            linux.mount(None, linux.fd_path(top), None, prop)
    except OSError as err:
        raise _fail(what, err) from None
    finally:
        for fd in (target, top):
            if fd is not None:
                os.close(fd)


def _narrate_mount(m: Mount) -> None:
    """-v: the mount as mount(8) would be asked for it."""
    options = [name for flag, name in ((linux.MS_RDONLY, "ro"), (linux.MS_NOSUID, "nosuid"),
                                       (linux.MS_NODEV, "nodev"), (linux.MS_NOEXEC, "noexec"))
               if m.flags & flag] + ([m.data] if m.data else [])
    narrate.say("mount %s%s %s %s", "--bind" if m.is_bind else f"-t {m.type}",
                f" -o {','.join(options)}" if options else "", m.source or m.type, m.destination)


def _own_cgroups() -> list[tuple[str, str, str]]:
    """(directory under /sys/fs/cgroup, controllers, our path), from /proc/self/cgroup."""
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            name = controllers.removeprefix("name=") if controllers else "unified"
            out.append((name, controllers, path))
    return out


def _mount_cgroups(root: int, target: int, m: Mount, own_namespace: bool) -> None:
    """A `cgroup` mount. On a v1 or hybrid host: a tmpfs holding, per v1
    hierarchy, the container's own cgroup; on a pure v2 host, cgroup2 itself.

    Like runc on this kind of host (v1 controllers plus an empty v2 tree at
    unified, which it leaves out), the container sees only its own cgroup:
    in a cgroup namespace, a fresh cgroup mount (the kernel roots it at the
    namespace's root); without one, a bind mount of our directory. The tmpfs
    itself stays writable, as under runc 1.1.
    """
    own = _own_cgroups()
    if all(controllers == "" for _, controllers, _ in own):
        return _mount_cgroup2(root, target, m)
    linux.mount("tmpfs", linux.fd_path(target), "tmpfs", m.flags & ~linux.MS_RDONLY, "mode=755")
    tmpfs = _mounted(root, m.destination, target)   # ours alone from here: a fresh tmpfs
    try:
        for name, controllers, path in own:
            host = os.path.join("/sys/fs/cgroup", name, path.lstrip("/"))
            if name == "unified" or not os.path.isdir(host):
                continue
            inside = inroot.resolve(tmpfs, name, "dir")
            try:
                if own_namespace:
                    data = (controllers if not controllers.startswith("name=")
                            else "none," + controllers)
                    linux.mount("cgroup", linux.fd_path(inside), "cgroup", m.flags, data)
                else:
                    linux.mount(host, linux.fd_path(inside), None, linux.MS_BIND | linux.MS_REC)
                    bound = _mounted(tmpfs, name, inside)
                    try:
                        linux.mount(None, linux.fd_path(bound), None,
                                    linux.MS_BIND | linux.MS_REMOUNT | m.flags)
                    finally:
                        os.close(bound)
            finally:
                os.close(inside)
    finally:
        os.close(tmpfs)


def _mount_cgroup2(root: int, target: int, m: Mount) -> None:
    """A pure cgroup v2 host: the one hierarchy, as runc mounts it.

    A fresh cgroup2 mount, which the kernel roots at the root of our cgroup
    namespace: the container's own cgroup in a cgroup namespace, the host's
    root without one. Where the kernel refuses (a user namespace without a
    cgroup namespace), runc binds the host's tree instead: so do we.
    """
    try:
        # the source is only a name in mountinfo: the config's, as runc writes it
        linux.mount(m.source or "cgroup", linux.fd_path(target), "cgroup2", m.flags)
        return
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EBUSY):
            raise
    linux.mount("/sys/fs/cgroup", linux.fd_path(target), None, linux.MS_BIND | linux.MS_REC)
    top = _mounted(root, m.destination, target)
    try:
        flags = m.flags & ~(linux.MS_BIND | linux.MS_REC)
        linux.mount(None, linux.fd_path(top), None,
                    linux.MS_BIND | linux.MS_REMOUNT | flags | _locked_flags(top))
    finally:
        os.close(top)


_DEVICE_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_device(root: int, dev: Device, in_userns: bool) -> None:
    """mknod a device, or in a user namespace (where mknod is refused) bind the host's."""
    parent = node = None
    try:
        parent = inroot.resolve(root, os.path.dirname(dev.path), "dir")
        name = os.path.basename(dev.path)
        try:
            os.stat(name, dir_fd=parent, follow_symlinks=False)
            return   # already there (the image's, or a mount's)
        except FileNotFoundError:
            pass
        if in_userns:
            node = inroot.resolve(parent, name, "file")
            linux.mount(dev.path, linux.fd_path(node), None, linux.MS_BIND)
            return
        # mknodat: creates, never follows; then the mode and owner of that very
        # node, through its fd (chmod/chown of the magic link act on the inode).
        narrate.say("mknod -m %o %s %s %d %d", dev.mode & 0o7777, dev.path, dev.type,
                    dev.major, dev.minor)
        os.mknod(name, _DEVICE_KINDS[dev.type] | (dev.mode & 0o7777),
                 os.makedev(dev.major, dev.minor), dir_fd=parent)
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        if stat.S_IFMT(os.fstat(node).st_mode) != _DEVICE_KINDS[dev.type]:
            raise RootfsError(f"create device {dev.path}: replaced while it was made")
        os.chmod(linux.fd_path(node), dev.mode & 0o7777)
        os.chown(linux.fd_path(node), dev.uid, dev.gid)
    except OSError as err:
        raise _fail(f"create device {dev.path}", err) from None
    finally:
        for fd in (parent, node):
            if fd is not None:
                os.close(fd)


def setup_dev(root: int, devices: list[Device], in_userns: bool) -> None:
    """Default devices, linux.devices, and the /dev links every program expects."""
    for dev in DEFAULT_DEVICES + devices:
        make_device(root, dev, in_userns)
    dev_dir = inroot.resolve(root, "/dev", "dir")
    try:
        for source, link in DEV_LINKS:
            try:
                os.symlink(source, os.path.basename(link), dir_fd=dev_dir)   # symlinkat
            except FileExistsError:
                pass
    finally:
        os.close(dev_dir)


def console_ptmx(rootfs: str) -> int | None:
    """An O_PATH fd of the container's own /dev/pts/ptmx, None if it has none."""
    root = inroot.open_root(rootfs)
    try:
        return inroot.resolve(root, "/dev/pts/ptmx")
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(root)


def bind_console(rootfs: str, slave: str) -> None:
    """runtime-spec: with process.terminal, /dev/console is the pty's slave."""
    root = inroot.open_root(rootfs)
    target = None
    try:
        target = inroot.resolve(root, "/dev/console", "file")
        linux.mount(slave, linux.fd_path(target), None, linux.MS_BIND)
    except OSError as err:
        raise _fail("bind /dev/console", err) from None
    finally:
        os.close(root)
        if target is not None:
            os.close(target)


def prepare(spec: Spec, in_userns: bool) -> None:
    """Everything that happens while the host's filesystem is still visible."""
    rootfs = spec.rootfs
    try:
        if spec.namespace("mount") is not None:
            # Mounts made from here on must not propagate to the host. (Without a
            # mount namespace of our own, this one is the runtime's: leave it as it is.)
            linux.mount(None, "/", None, spec.rootfs_propagation)
        # pivot_root needs the new root to be a mount point; so does a read-only root.
        linux.mount(rootfs, rootfs, None, linux.MS_BIND | linux.MS_REC)
        root = inroot.open_root(rootfs)   # the bind mount just made
    except OSError as err:
        raise _fail(f"prepare rootfs {rootfs}", err) from None
    try:
        in_cgroupns = spec.namespace("cgroup") is not None
        for m in spec.mounts:
            mount_one(root, m, in_userns, in_cgroupns)
        if any(m.destination == "/dev" for m in spec.mounts):
            setup_dev(root, spec.devices, in_userns)
        else:
            for dev in spec.devices:
                make_device(root, dev, in_userns)
        try:
            os.close(inroot.resolve(root, spec.process.cwd, "dir"))
        except OSError as err:
            raise _fail(f"create cwd {spec.process.cwd}", err) from None
    finally:
        os.close(root)


def enter(rootfs: str, no_pivot: bool, own_mount_ns: bool = True) -> None:
    """Make the rootfs our /, and the host's filesystem unreachable.

    Without a mount namespace of our own, only chroot: pivot_root or MS_MOVE
    would change the root of every process in the runtime's namespace (runc
    chroots then too).
    """
    try:
        os.chdir(rootfs)
        if not own_mount_ns:
            linux.chroot(".")
        elif no_pivot:
            linux.mount(rootfs, "/", None, linux.MS_MOVE)
            linux.chroot(".")
        else:
            narrate.say("pivot_root %s (the host's root detached)", rootfs)
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
        narrate.say("sysctl %s=%s", key, value)
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as err:
            raise _fail(f"sysctl {key}", err) from None


def readonly_path(root: int, path: str) -> None:
    try:
        place = inroot.resolve(root, path)
    except (FileNotFoundError, NotADirectoryError):
        return
    top = None
    narrate.say("mount --bind -o ro %s %s", path, path)
    try:
        linux.mount(_on(place, path), _on(place, path), None, linux.MS_BIND | linux.MS_REC)
        top = _mounted(root, path, place)
        linux.mount(None, _on(top, path), None,
                    linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_REC)
    except OSError as err:
        raise _fail(f"make {path} read-only", err) from None
    finally:
        for fd in (place, top):
            if fd is not None:
                os.close(fd)


def null_device(root: int) -> int:
    """The container's /dev/null, which masks files: refused unless it is the real
    null device (char 1:3), not a file or another device the image put there."""
    try:
        fd = inroot.resolve(root, "/dev/null")
    except OSError as err:
        raise _fail("mask paths with /dev/null", err) from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise RootfsError("mask paths: /dev/null in the container is not the null device (1:3)")
    return fd


def mask_path(root: int, path: str, null: int) -> None:
    """Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        place = inroot.resolve(root, path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        if stat.S_ISDIR(os.fstat(place).st_mode):
            narrate.say("mount -t tmpfs -o ro tmpfs %s   (masked)", path)
            linux.mount("tmpfs", _on(place, path), "tmpfs", linux.MS_RDONLY)
        else:
            narrate.say("mount --bind /dev/null %s   (masked)", path)
            linux.mount(_on(null, "/dev/null"), _on(place, path), None, linux.MS_BIND)
    except OSError as err:
        raise _fail(f"mask {path}", err) from None
    finally:
        os.close(place)


def _proc_fds_usable(fd: int) -> bool:
    """Does /proc/self/fd/N name our fd N? Not after pivot_root into a rootfs that
    mounts no procfs at /proc. Then paths are used as they are: with no procfs
    in sight there is no magic link to follow, and only we are in this mount
    namespace (create), so nothing leads outside the new root."""
    try:
        return os.path.samestat(os.stat(linux.fd_path(fd)), os.fstat(fd))
    except OSError:
        return False


def finish(spec: Spec) -> None:
    """Steps on the container's own / (after pivot_root)."""
    global _proc_fds
    write_sysctl(spec.sysctl)
    root = inroot.open_root("/")
    null = None
    try:
        _proc_fds = _proc_fds_usable(root)
        for path in spec.readonly_paths:
            readonly_path(root, path)
        for path in spec.masked_paths:
            if null is None:
                null = null_device(root)
            mask_path(root, path, null)
    finally:
        os.close(root)
        if null is not None:
            os.close(null)
    if spec.readonly_root:
        try:
            # The flags / already has go along: in a user namespace the kernel
            # refuses a remount that would drop a locked one (the rootfs of a
            # host whose /var/lib or /tmp is nosuid,nodev), as runc knows too.
            linux.mount(None, "/", None,
                        linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _locked_flags("/"))
        except OSError as err:
            raise _fail("remount / read-only", err) from None
