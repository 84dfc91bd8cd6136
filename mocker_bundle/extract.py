"""Apply one layer (a tar stream) to a directory by the image-spec's changeset rules.

image-spec layer.md: a layer is a tar of changes. An entry adds or replaces a
path (a file replaces a directory and the other way round); `.wh.NAME` deletes
NAME from the layers below; `.wh..wh..opq` hides everything below in its
directory. Whiteouts only ever hide lower layers, never entries of their own.

Two ways to apply a layer:
- overlay form (`overlay=True`): the layer alone, into an empty directory, with
  whiteouts kept as overlayfs understands them (a 0:0 character device; the
  xattr trusted.overlay.opaque=y), so the kernel merges the layers at mount time;
- merged form (`overlay=False`): onto the tree of the layers below, whiteouts
  deleting what they name (for --copy bundles).

Every path goes through rootdir.RootDir, so no entry can reach outside `dest`.
"""

import errno
import os
import stat

from mocker_common.errors import Corrupt, MockerError

from .rootdir import RootDir, UnsafePath, lstat_at, remove_at, split_entry_path
from .tarstream import TarEntry, TarReader

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# overlayfs (Documentation/filesystems/overlayfs.rst): an opaque upper directory.
OVERLAY_OPAQUE = "trusted.overlay.opaque"
# xattrs a layer may not set: they steer overlayfs itself (redirects, opaque, metacopy).
FORBIDDEN_XATTR_PREFIX = "trusted.overlay."
COPY_CHUNK = 1 << 20
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def unpack_layer(stream, dest, overlay: bool, what: str = "layer") -> None:
    """Apply the tar read from `stream` to directory dest; `what` names the layer in errors."""
    # Files are created with their final permission bits: no umask may narrow them.
    saved_umask = os.umask(0)
    with RootDir(dest) as root:
        writer = LayerWriter(root, overlay)
        member = None
        try:
            tar = TarReader(stream)
            for member in tar:
                writer.add(member, tar)
            writer.finish()
        except UnsafePath as err:
            raise UnsafePath(f"{what}: refusing entry {_entry_name(member)}: {err}") from None
        except Corrupt as err:
            where = f"entry {_entry_name(member)}: " if member is not None else ""
            raise Corrupt(f"{what}: {where}{err}") from None
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise
            # Not the layer's fault as far as we know (e.g. no xattr support here).
            raise MockerError(f"{what}: cannot apply entry {_entry_name(member)}: "
                              f"{err.strerror or err}") from None
        finally:
            os.umask(saved_umask)


def _entry_name(member) -> str:
    return repr(member.name) if member is not None else "(none)"


class LayerWriter:
    """Applies tar entries one by one; see the module docstring for the two forms."""

    def __init__(self, root: RootDir, overlay: bool):
        self.root = root
        self.overlay = overlay
        self.seen: set[str] = set()          # paths this layer wrote: its whiteouts spare them
        self.dir_times: list[tuple[list[str], int]] = []

    def add(self, member: TarEntry, data) -> None:
        self.root.trim_cache()
        base = member.name.rstrip("/").rsplit("/", 1)[-1]
        if base.startswith(WHITEOUT):
            self._whiteout(split_entry_path(member.name))
            return
        dir_fd, name, parts = self.root.parent(member.name)
        if not parts:                       # "./": the layer's root directory itself
            self._set_owner_mode(self.root.fd, None, member)
            self.dir_times.append(([], _mtime_ns(member)))
            return
        self.seen.add("/".join(parts))
        if member.isdir():
            self._make_dir(dir_fd, name, parts, member)
        elif member.isreg():
            self._write_file(dir_fd, name, parts, member, data)
        elif member.issym():
            self._create(os.symlink, member.linkname, name, dir_fd=dir_fd, parts=parts)
            self._set_metadata(dir_fd, name, member)
        elif member.islnk():
            self._hardlink(dir_fd, name, parts, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            self._create(os.mknod, name, kind | 0o600, os.makedev(member.devmajor, member.devminor),
                         dir_fd=dir_fd, parts=parts)
            self._set_metadata(dir_fd, name, member)
        else:
            raise Corrupt(f"unsupported tar entry type {member.type!r}")

    def finish(self) -> None:
        """Set directory mtimes last: writing their entries changed them meanwhile."""
        for parts, mtime in reversed(self.dir_times):
            try:
                if not parts:
                    os.utime(self.root.fd, ns=(mtime, mtime))
                    continue
                dir_fd = self.root.open_dir(parts[:-1], create=False)
                os.utime(parts[-1], ns=(mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                pass  # removed again later in the same layer

    # -- entries ----------------------------------------------------------------

    def _make_dir(self, dir_fd, name, parts, member) -> None:
        try:
            os.mkdir(name, member.mode & 0o777, dir_fd=dir_fd)
        except FileExistsError:
            existing = os.lstat(name, dir_fd=dir_fd)
            if not stat.S_ISDIR(existing.st_mode):
                self._clear(dir_fd, name, parts)
                os.mkdir(name, member.mode & 0o777, dir_fd=dir_fd)
        self._set_metadata(dir_fd, name, member, set_time=False)
        self.dir_times.append((parts, _mtime_ns(member)))

    def _create(self, make, *args, dir_fd, parts):
        """make(*args, dir_fd=dir_fd); if something is in the way, remove it and retry.

        Trying first saves an lstat per entry in the common case, an empty place.
        make never follows a symlink that is in the way (O_EXCL, symlinkat, mknodat).
        """
        try:
            return make(*args, dir_fd=dir_fd)
        except FileExistsError:
            self._clear(dir_fd, parts[-1], parts)
            return make(*args, dir_fd=dir_fd)

    def _write_file(self, dir_fd, name, parts, member, data) -> None:
        fd = self._create(os.open, name, _CREATE_FLAGS, member.mode & 0o777, dir_fd=dir_fd,
                          parts=parts)
        try:
            remaining = member.size
            while remaining:
                chunk = data.read(min(remaining, COPY_CHUNK))
                if not chunk:
                    raise Corrupt("the tar stream ends inside this file")
                _write_all(fd, chunk)
                remaining -= len(chunk)
            os.fchown(fd, member.uid, member.gid)
            if member.mode & 0o7000:
                os.fchmod(fd, member.mode & 0o7777)   # after chown, which clears setuid bits
            for key, value in _xattrs(member):
                os.setxattr(fd, key, value)       # after chown, which drops security.capability
            mtime = _mtime_ns(member)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _hardlink(self, dir_fd, name, parts, member) -> None:
        if split_entry_path(member.linkname) == parts:
            return                                 # a link to itself: already there
        self._clear(dir_fd, name, parts)
        try:
            target_fd, target_name, _ = self.root.parent(member.linkname, create=False)
            os.link(target_name, name, src_dir_fd=target_fd, dst_dir_fd=dir_fd,
                    follow_symlinks=False)
        except FileNotFoundError:
            where = "in this layer" if self.overlay else "in the layers so far"
            raise Corrupt(f"hardlink target {member.linkname!r} does not exist {where}") from None

    def _whiteout(self, parts: list[str]) -> None:
        parent, base = parts[:-1], parts[-1]
        if base == OPAQUE:
            self._opaque(parent)
            return
        if base.startswith(WHITEOUT + WHITEOUT):
            return  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the change
        victim = base[len(WHITEOUT):]
        if victim in ("", ".", ".."):
            raise UnsafePath(f"whiteout {base!r} names no file in its directory")
        if "/".join(parent + [victim]) in self.seen:
            return  # image-spec: a whiteout never hides an entry of its own layer
        if self.overlay:
            dir_fd = self.root.open_dir(parent, create=True)
            self._clear(dir_fd, victim, parent + [victim])
            os.mknod(victim, stat.S_IFCHR, os.makedev(0, 0), dir_fd=dir_fd)
            return
        try:
            dir_fd = self.root.open_dir(parent, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing there to delete
        self._clear(dir_fd, victim, parent + [victim])

    def _opaque(self, parent: list[str]) -> None:
        if self.overlay:
            dir_fd = self.root.open_dir(parent, create=True)
            os.setxattr(dir_fd, OVERLAY_OPAQUE, b"y")
            return
        try:
            dir_fd = self.root.open_dir(parent, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        self._remove_unseen(dir_fd, "/".join(parent))
        self.root.forget_dirs(keep=parent)

    def _remove_unseen(self, dir_fd: int, prefix: str) -> None:
        """Delete what lower layers put under dir_fd, keeping this layer's own entries."""
        for child in os.listdir(dir_fd):
            path = f"{prefix}/{child}" if prefix else child
            if path not in self.seen:
                remove_at(dir_fd, child)
                continue
            st = os.lstat(child, dir_fd=dir_fd)
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             dir_fd=dir_fd)
                try:
                    self._remove_unseen(fd, path)
                finally:
                    os.close(fd)

    # -- helpers ----------------------------------------------------------------

    def _clear(self, dir_fd: int, name: str, parts: list[str]) -> None:
        """Remove what is at name (a lower layer's file, or a directory a file replaces)."""
        existing = lstat_at(dir_fd, name)
        if existing is None:
            return
        remove_at(dir_fd, name)
        if stat.S_ISDIR(existing.st_mode) or stat.S_ISLNK(existing.st_mode):
            self.root.forget_dirs(keep=parts[:-1])

    def _set_metadata(self, dir_fd, name, member, set_time=True) -> None:
        self._set_owner_mode(dir_fd, name, member)
        if set_time:
            mtime = _mtime_ns(member)
            os.utime(name, ns=(mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)

    def _set_owner_mode(self, dir_fd, name, member) -> None:
        """chown, then chmod (chown clears setuid bits), then xattrs (chown drops capabilities)."""
        if name is None:
            os.fchown(dir_fd, member.uid, member.gid)
            os.fchmod(dir_fd, member.mode & 0o7777)
            return
        os.chown(name, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
        if member.issym():
            return  # a symlink's own mode means nothing on Linux; its xattrs are not settable
        os.chmod(name, member.mode & 0o7777, dir_fd=dir_fd)
        # setxattr has no *at form: go through the directory's /proc/self/fd link.
        for key, value in _xattrs(member):
            os.setxattr(f"/proc/self/fd/{dir_fd}/{name}", key, value, follow_symlinks=False)


def _xattrs(member):
    """(name, bytes) of the entry's extended attributes (PAX SCHILY.xattr.*)."""
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        if name.startswith(FORBIDDEN_XATTR_PREFIX):
            continue  # a layer must not steer overlayfs
        yield name, value.encode("utf-8", "surrogateescape")


def _mtime_ns(member) -> int:
    return int(member.mtime * 1_000_000_000)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
