"""Mounts a container made in a mount namespace that is not its own.

runtime-spec config-linux.md#namespaces: a namespace the config does not list
is inherited from the runtime. Without a mount namespace of its own, the
container's mounts (its /proc, /dev, binds, the rootfs bound on itself) are
made in ours, and outlive its processes: runc leaves them there. We note
which mounts at or under the rootfs existed before create, and `delete`
detaches the others (proc(5), /proc/self/mountinfo).
"""

import errno
import re

from . import linux

_ESCAPE = re.compile(r"\\([0-7]{3})")   # mountinfo writes ' ', '\t', '\n', '\\' as \NNN


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mounts_at_or_under(path: str) -> list[tuple[int, str]]:
    """(mount id, mount point) of every mount at or under path, oldest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ", 5)
            point = _unescape(fields[4])
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append((int(fields[0]), point))
    return found


def snapshot(path: str) -> list[int]:
    """The ids of the mounts at or under path now, to keep at release()."""
    return [mount_id for mount_id, _ in mounts_at_or_under(path)]


def release(path: str, keep: list[int]) -> None:
    """Detach, newest first, every mount at or under path that is not in keep."""
    for mount_id, point in reversed(mounts_at_or_under(path)):
        if mount_id in keep:
            continue
        try:
            linux.umount(point, linux.MNT_DETACH)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOENT):   # gone with its parent
                raise
