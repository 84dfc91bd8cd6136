"""Paths inside a rootfs as the container sees them, resolved from an fd, never looked up twice.

mocker-runc resolves mount destinations, device nodes and the cwd here;
mocker-bundle the image's /etc/passwd, WorkingDir and Volumes: both as if the
rootfs were / (absolute symlinks start again at the root, `..` stops there).
(Layer entries are another matter: mocker_bundle/rootdir.py refuses, rather
than clamps, whatever would leave the root.)

A mount destination such as /vol/dir can sit on a volume that a running
container shares: between "resolve the path" and "mount there" it can swap a
directory for a symlink to a host path (CVE-2021-30465). So nothing here
returns a string. Each function returns an O_PATH fd of the very file it
found or made, and the callers act on that fd: mount(2) onto
linux.fd_path(fd), chmod/chown through it, mkdirat/openat relative to it.

How a path is resolved, as if the rootfs were / (symlinks included, `..`
stopping at the root, never a /proc "magic link" that could point anywhere):
  - openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (Linux 5.6);
  - where it is missing, or a component must be created, the same walk in
    user space: one component at a time, each opened O_PATH|O_NOFOLLOW
    relative to the fd of the one before, symlinks read (readlinkat) and
    spliced into the rest of the path, `..` taken off our own stack of fds.
    The kernel never follows a link for us, so a swap can only redirect
    the walk to another place inside the root.
"""

import ctypes
import errno
import os
import stat

_O_PATH = os.O_PATH | os.O_CLOEXEC
_MAX_LINKS = 40   # as the kernel's own limit (ELOOP)
_openat2_missing = False


def open_root(path: str) -> int:
    """An O_PATH fd of the rootfs (a host path from config.json: trusted)."""
    return os.open(path, _O_PATH | os.O_DIRECTORY)


def resolve(root: int, path: str, create: str | None = None) -> int:
    """An O_PATH fd of path inside root. create: None (it must exist), "dir"
    (mkdir what is missing, as mkdir -p), "file" (an empty file at the end)."""
    global _openat2_missing
    if not _openat2_missing:
        try:
            return _openat2(root, path)
        except OSError as err:
            if err.errno == errno.ENOSYS:
                _openat2_missing = True
            elif err.errno != errno.ENOENT or create is None:
                raise
    return _walk(root, path, create)


# <linux/openat2.h>: how openat2(2) resolves a path
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_OPENAT2 = 437    # the same number on every architecture
_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2) (Linux 5.6): open path below dirfd, resolved as `resolve` says.
    OSError ENOSYS on an older kernel (or where seccomp hides it)."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(_OPENAT2, dirfd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"openat2: {os.strerror(err)}", path)
    return fd


def _openat2(root: int, path: str) -> int:
    for _ in range(16):
        try:
            return openat2(root, path, os.O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except OSError as err:
            # EAGAIN: a rename elsewhere raced with a `..`; the kernel asks to try again
            if err.errno != errno.EAGAIN:
                raise
    raise OSError(errno.EAGAIN, f"{path}: renamed under us again and again", path)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _walk(root: int, path: str, create: str | None) -> int:
    parts = _parts(path)
    stack: list[int] = []          # fds of the directories below root we are in
    links = 0
    try:
        while parts:
            part = parts.pop(0)
            if part == "..":
                if stack:          # at the root, `..` is the root itself
                    os.close(stack.pop())
                continue
            here = stack[-1] if stack else root
            fd = _open_or_make(here, part, create, last=not parts)
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                target = os.readlink("", dir_fd=fd)   # this very link, not a name again
                os.close(fd)
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                parts = _parts(target) + parts
                continue
            if parts and not stat.S_ISDIR(mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return stack.pop() if stack else os.dup(root)
    finally:
        for fd in stack:
            os.close(fd)


def _open_or_make(here: int, name: str, create: str | None, last: bool) -> int:
    try:
        return os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=here)
    except FileNotFoundError:
        if create is None:
            raise
    try:
        if last and create == "file":
            # O_EXCL|O_NOFOLLOW: never opens (and so never follows) what is there
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
                             | os.O_CLOEXEC, 0o644, dir_fd=here))
        else:
            os.mkdir(name, 0o755, dir_fd=here)          # mkdirat: never follows either
    except FileExistsError:
        pass   # made meanwhile (by anyone): opened below without following it
    return os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=here)


def fd_path(fd: int) -> str:
    """A path the kernel resolves to exactly fd's file (a /proc magic link): where
    mount(2) and friends act on what fd holds, not on a name looked up again."""
    return f"/proc/self/fd/{fd}"


def where(fd: int) -> str:
    """Where fd is, as our mount namespace names it (its /proc/self/fd link)."""
    return os.readlink(fd_path(fd))


def read_file(root_path, path: str, limit: int = 1 << 20) -> bytes | None:
    """The content of the file at path inside root_path, as the container sees it,
    or None if it is missing or not a file. Symlinks on the way, the file's own
    included, resolve inside the root: a rootfs whose /etc/passwd links to
    /etc/shadow reads the rootfs's /etc/shadow, never the host's."""
    root = open_root(os.fspath(root_path))
    try:
        fd = resolve(root, path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(root)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        # Reopened through its magic link: the very file resolved, now readable.
        with open(fd_path(fd), "rb") as f:
            return f.read(limit)
    finally:
        os.close(fd)


def make_dirs(root_path, path: str) -> None:
    """mkdir -p path inside root_path, as the container would."""
    root = open_root(os.fspath(root_path))
    try:
        os.close(resolve(root, path, "dir"))
    finally:
        os.close(root)
