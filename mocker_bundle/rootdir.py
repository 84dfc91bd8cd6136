"""Openat-style access to a directory tree that never leaves it.

Every path a layer names is resolved here, one component at a time, with
directory file descriptors and O_NOFOLLOW, the way a kernel walk inside a
chroot would go: a component that is a symlink is followed only when its
target stays inside the tree, and refused otherwise. So no later string trick
(`..`, an absolute path, a symlink planted by an earlier entry or layer) can
make a write land outside. All path-safety rules for unpacking live in this
module and in extract.py, which uses it.
"""

import errno
import os
import stat

from mocker_common.errors import Corrupt

# A path walk follows at most this many symlinks, as the kernel's ELOOP limit.
MAX_SYMLINKS = 40
# Directory descriptors kept open between entries (tar entries come in tree order).
FD_CACHE_SIZE = 128

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(Corrupt):
    """An entry would create, change or delete something outside the root."""


def split_entry_path(name: str) -> list[str]:
    """The components of a path named inside a layer, refusing ones that could escape.

    Absolute paths and `..` are refused outright rather than cleaned up: a
    well-formed layer never contains them, so they are an attack or a bug.
    """
    if name.startswith("/"):
        raise UnsafePath(f"absolute path {name!r}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"'..' in path {name!r}")
    return parts


class RootDir:
    """A directory opened once; layer entries under it are resolved without leaving it.

    A symlink with an absolute target, or a `..` above the root, is refused: a
    layer that needs them is hostile. (Paths as the container will see them,
    as if chrooted, where an absolute target starts again at the root and `..`
    stops there, are mocker_common/inroot.py's: /etc/passwd, WorkingDir, Volumes.)
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.fd = os.open(self.path, _DIR_FLAGS)
        self._dir_fds: dict[tuple, int] = {}

    def close(self) -> None:
        self.forget_dirs()
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def forget_dirs(self, keep: list[str] | None = None) -> None:
        """Drop cached directory descriptors, except the one of directory `keep`.

        Call after removing a directory or a symlink: a cached descriptor may name
        what is gone, or a path that now resolves differently. The directory in
        which the removal happened is still the same one, so it may stay.
        """
        kept = self._dir_fds.pop(tuple(keep), None) if keep is not None else None
        for fd in self._dir_fds.values():
            os.close(fd)
        self._dir_fds.clear()
        if kept is not None:
            self._dir_fds[tuple(keep)] = kept

    def trim_cache(self) -> None:
        """Bound the descriptor cache (oldest out first); call between entries, never
        while holding a borrowed descriptor."""
        while len(self._dir_fds) >= FD_CACHE_SIZE:
            os.close(self._dir_fds.pop(next(iter(self._dir_fds))))

    def open_dir(self, parts: list[str], create: bool) -> int:
        """A descriptor of the directory `parts` names (borrowed; do not close).

        Missing directories are made (mode 0755, as tar does) when create is true,
        else FileNotFoundError is raised.
        """
        key = tuple(parts)
        fd = self._dir_fds.get(key)
        if fd is None:
            fd = self._walk(parts, create)
            self._dir_fds[key] = fd
        return fd

    def parent(self, name: str, create: bool = True) -> tuple[int, str, list[str]]:
        """(fd of the parent directory, last component, all components) for an entry path."""
        parts = split_entry_path(name)
        if not parts:
            return self.fd, ".", parts
        return self.open_dir(parts[:-1], create), parts[-1], parts

    def _walk(self, parts: list[str], create: bool) -> int:
        # `stack` holds descriptors of the real directories walked so far, so a
        # `..` from a symlink target goes back to the real parent, never above fd.
        stack = [os.dup(self.fd)]
        pending = list(reversed(parts))
        followed = 0
        shown = "/".join(parts)
        try:
            while pending:
                part = pending.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    else:
                        raise UnsafePath(f"path {shown!r} leads out of the root through a symlink")
                    continue
                fd, link = _open_component(stack[-1], part, create)
                if link is None:
                    stack.append(fd)
                    continue
                followed += 1
                if followed > MAX_SYMLINKS:
                    raise Corrupt(f"too many levels of symlinks in {shown!r}")
                if link.startswith("/"):
                    raise UnsafePath(f"path {shown!r} goes through symlink {part!r} -> "
                                     f"{link!r}, an absolute path outside the root")
                pending.extend(reversed(link.split("/")))
            result = stack.pop()
        finally:
            for fd in stack:
                os.close(fd)
        return result


def _open_component(dir_fd: int, name: str, create: bool) -> tuple[int | None, str | None]:
    """Open directory `name` under dir_fd without following it: (fd, None), or (None, symlink target)."""
    for _ in range(2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd), None
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(name, 0o755, dir_fd=dir_fd)
            except FileExistsError:
                pass  # made by someone else meanwhile; open it on the next turn
        except OSError as err:
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                return None, os.readlink(name, dir_fd=dir_fd)
            raise Corrupt(f"{name!r} is not a directory, but an entry is placed under it") from None
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd), None


def lstat_at(dir_fd: int, name: str):
    """os.lstat relative to dir_fd, or None when nothing is there."""
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str) -> None:
    """Remove name under dir_fd, recursively for a directory, never following symlinks."""
    st = lstat_at(dir_fd, name)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            remove_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def remove_tree(path) -> None:
    """Delete a directory tree without following symlinks (whiteout devices included)."""
    path = os.fspath(path)
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_at(dir_fd, os.path.basename(path))
    finally:
        os.close(dir_fd)
