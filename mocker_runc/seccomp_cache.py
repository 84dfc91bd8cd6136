"""Built seccomp programs, kept under --root so that a profile is compiled once.

libseccomp takes ~10 ms to turn Docker's default profile (~360 syscalls, three
architectures) into BPF, the same program every time. So the program is kept,
keyed by exactly what decides it:

    ROOT/.seccomp/<crc32 of the key>    the key, a newline, the program

The key is the whole linux.seccomp object (canonical JSON), libseccomp's
version and the kernel's release and machine; an entry is used only if the key
it holds equals ours byte for byte (the crc32 only names the file), so a
program is never loaded for a config other than the one it was built from.
The directory is ours alone (0700, owned by our uid) and lives on tmpfs like
the containers' state (/run/mocker/runc): gone at reboot, with a kernel that may
have changed. A directory or file we cannot trust is not used, only rebuilt.
"""

import json
import os
import stat
import zlib

from mocker_common.files import atomic_write

DIRNAME = ".seccomp"   # container ids cannot start with a dot (state.Store.dir)
_FORMAT = b"mocker-runc seccomp cache 2"   # 2: programs start with the ENOSYS stub


def cache_key(config: dict, library_version: str) -> bytes:
    uname = os.uname()
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return b" ".join([_FORMAT, library_version.encode(), uname.release.encode(),
                      uname.machine.encode(), text.encode()])


def read(root: str, key: bytes) -> bytes | None:
    """The program kept for key, or None (no entry, another key's, or not to be trusted)."""
    directory = os.path.join(root, DIRNAME)
    try:
        with open(_entry(directory, key), "rb", opener=_open_no_symlink) as f:
            if not (_ours(os.stat(directory, follow_symlinks=False)) and _ours(os.fstat(f.fileno()))):
                return None
            data = f.read()
    except OSError:
        return None
    stored_key, _, program = data.partition(b"\n")
    if stored_key != key or not program or len(program) % 8:
        return None
    return program


def write(root: str, key: bytes, program: bytes) -> None:
    """Keep program for key; quietly nothing where the directory cannot be ours."""
    directory = os.path.join(root, DIRNAME)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _ours(os.stat(directory, follow_symlinks=False)):
            return
        atomic_write(_entry(directory, key), key + b"\n" + program, 0o600, durable=False)
    except OSError:
        pass   # a read-only or full --root: the next run builds the program again


def _entry(directory: str, key: bytes) -> str:
    return os.path.join(directory, f"{zlib.crc32(key):08x}")


def _open_no_symlink(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _ours(st: os.stat_result) -> bool:
    """Owned by us and writable by nobody else (nor a symlink: lstat'ed or O_NOFOLLOW)."""
    kind_ok = stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.geteuid() and not st.st_mode & 0o022
