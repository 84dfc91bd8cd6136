"""overlayfs mounts for bundle root filesystems (mount(2)/umount2(2) through libc)."""

import errno
import os
from pathlib import Path

from mocker_common import mountcalls
from mocker_common.errors import MockerError

from . import log

# mount(2) takes its options as one page: this bounds the lowerdir list.
MAX_OPTIONS = 4095
# overlayfs's volatile: no sync of the upper filesystem when the overlay goes
# (a container's end waited 7-25 ms for it while others wrote to the disk), and
# none for the container's fsyncs. Only for a container whose changes are
# thrown away when it ends (`mocker run --rm`, as podman does for --rm): after
# a crash, overlayfs refuses the upper until work/ is cleared.
VOLATILE = ",volatile"

def mount_overlay(target: Path, lowers: list[Path], upper: Path, work: Path,
                  volatile: bool = False) -> None:
    """mount -t overlay overlay -o lowerdir=TOP:...:BASE,upperdir=..,workdir=.. target.

    overlayfs lists lower directories topmost first, the reverse of manifest order.
    The lower paths (layers/l/<short> links, or layers/sha256/<hex>) are given
    relative to the layer cache, with the current directory there while mounting,
    as Docker's overlay2 does, so that more layers fit in the one page mount(2)
    accepts. volatile: see VOLATILE.
    """
    lowers = [Path(p) for p in lowers]
    base = lowers[0].parent.parent if lowers else Path("/")
    relative = [str(p.relative_to(base)) for p in reversed(lowers)]
    options = f"lowerdir={':'.join(relative)},upperdir={upper},workdir={work}"
    extra = VOLATILE if volatile else ""
    if len(options) + len(extra) > MAX_OPTIONS:
        raise MockerError(f"image has too many layers ({len(lowers)}) for one overlay mount; "
                          "use --copy")
    log.info("cd %s && mount -t overlay overlay -o %s%s %s", base, options, extra, target)
    saved = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(base)
        err = _mount(target, options + extra)
        if err == errno.EINVAL and extra:   # a kernel before 5.10: no volatile
            err = _mount(target, options)
        if err:
            raise MockerError(f"cannot mount overlay on {target}: {os.strerror(err)} "
                              "(use --copy where overlayfs is unavailable)")
    finally:
        os.fchdir(saved)
        os.close(saved)


def _mount(target: Path, options: str) -> int:
    """mount(2) of an overlay; 0 or the errno."""
    try:
        mountcalls.mount("overlay", target, "overlay", 0, options)
    except OSError as err:
        return err.errno
    return 0


def unmount(target: Path) -> None:
    log.info("umount --lazy %s", target)
    try:
        mountcalls.umount(target, mountcalls.MNT_DETACH)
    except OSError as err:
        raise MockerError(f"cannot unmount {target}: {os.strerror(err.errno)}") from None


def _mount_points() -> list[str]:
    """Every mount point this process sees (/proc/self/mountinfo also lists bind mounts)."""
    with open("/proc/self/mountinfo") as f:
        # Field 5 is the mount point, with spaces and such escaped as \ooo octal.
        return [line.split()[4].encode().decode("unicode_escape") for line in f]


def is_mountpoint(path: Path) -> bool:
    return os.path.realpath(path) in _mount_points()


def mounts_under(path: Path) -> list[str]:
    """Mount points inside directory path (not path itself)."""
    prefix = os.path.realpath(path).rstrip("/") + "/"
    return [point for point in _mount_points() if point.startswith(prefix)]


def overlay_lower_dirs() -> set[str]:
    """The lower directories of every overlay mount on the host, as the mounts
    name them (ours: `l/<12 hex>`, relative to the layer cache).

    Every mount namespace is read, not only ours: a container's own namespace
    keeps its rootfs overlay after the bundle's mount was lazily unmounted.
    """
    lowers = set()
    for table in _mount_tables():
        for line in table.splitlines():
            # mountinfo: ... - FSTYPE SOURCE SUPER_OPTIONS
            _, separator, tail = line.partition(" - ")
            fields = tail.split()
            if not separator or len(fields) < 3 or fields[0] != "overlay":
                continue
            for option in fields[2].split(","):
                if option.startswith("lowerdir="):
                    lowers.update(p for p in option[len("lowerdir="):].split(":") if p)
    return lowers


def _mount_tables():
    """/proc/PID/mountinfo once for each mount namespace that a process is in."""
    seen = set()
    for pid in ["self"] + [name for name in os.listdir("/proc") if name.isdigit()]:
        try:
            namespace = os.stat(f"/proc/{pid}/ns/mnt").st_ino
            if namespace in seen:
                continue
            with open(f"/proc/{pid}/mountinfo") as f:
                table = f.read()
        except OSError:
            continue    # the process exited meanwhile
        seen.add(namespace)
        yield table
