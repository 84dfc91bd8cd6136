"""mount(2) and umount2(2) through the C library: mocker-bundle mounts the
overlays of bundles, mocker-runc the container's filesystems; both call these.

Each raises OSError (errno, "mount: <strerror>", the target) on failure.
libc is loaded at the first call: a command that mounts nothing pays nothing.
"""

import os

MNT_DETACH = 2   # <sys/mount.h>: umount2's lazy unmount (umount --lazy)

_libc = None


def _lib():
    global _libc
    if _libc is None:
        import ctypes
        # The C library Python itself runs on; find_library("c") would run ldconfig.
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _fail(what: str, target) -> OSError:
    import ctypes
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}", os.fspath(target))


def mount(source: str | None, target, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    import ctypes
    if _lib().mount(_b(source), _b(os.fspath(target)), _b(fstype), ctypes.c_ulong(flags),
                    _b(data)) != 0:
        raise _fail("mount", target)


def umount(target, flags: int = 0) -> None:
    if _lib().umount2(_b(os.fspath(target)), flags) != 0:
        raise _fail("umount", target)
