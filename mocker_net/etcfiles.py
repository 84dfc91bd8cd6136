"""/etc/resolv.conf, /etc/hosts and /etc/hostname for a container's root filesystem.

Written into the bundle's rootfs from the host, before the runtime's
pivot_root. The rootfs belongs to the image, so a symlink in it must never
make us write outside it: every open below refuses to follow links.
"""

import contextlib
import ipaddress
import os
from pathlib import Path

from mocker_common.errors import MockerError

from .config import FALLBACK_DNS

HOST_RESOLV = Path("/etc/resolv.conf")
# systemd-resolved's list of the real upstream servers, when /etc/resolv.conf is its stub.
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")


def resolv_conf(host_text: str, upstream_text: str = "", configured=()) -> str:
    """The container's resolv.conf: configured servers, else the host's, minus 127.x stubs.

    A 127.x server is the host's own loopback, unreachable from the container's
    namespace; then systemd-resolved's upstream list, and last FALLBACK_DNS.
    """
    servers = list(configured)
    other = [line for line in host_text.splitlines()
             if line.split()[:1] in (["search"], ["domain"], ["options"])]
    for text in (host_text, upstream_text):
        if servers:
            break
        servers = [s for s in _nameservers(text) if not ipaddress.ip_address(s).is_loopback]
    servers = servers or list(FALLBACK_DNS)
    return "".join(f"nameserver {s}\n" for s in servers) + "".join(f"{line}\n" for line in other)


def _nameservers(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(str(ipaddress.ip_address(words[1].split("%")[0])))
    return found


def hosts(hostname: str, address: str = "") -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if hostname:
        lines.append(f"{address or '127.0.1.1'}\t{hostname}")
    return "\n".join(lines) + "\n"


def read_host_resolv() -> tuple[str, str]:
    texts = []
    for path in (HOST_RESOLV, RESOLVED_UPSTREAM):
        try:
            texts.append(path.read_text())
        except OSError:
            texts.append("")
    return texts[0], texts[1]


def write_etc_files(rootfs: Path, hostname: str, address: str, dns=()) -> None:
    """Write the three files into rootfs/etc, never through a symlink."""
    resolv = resolv_conf(*read_host_resolv(), configured=dns)
    contents = {"resolv.conf": resolv, "hosts": hosts(hostname, address)}
    if hostname:
        contents["hostname"] = hostname + "\n"
    try:
        root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise MockerError(f"cannot open the container's rootfs {rootfs}: {err.strerror}")
    try:
        etc_fd = _open_etc(root_fd, rootfs)
        try:
            for name, text in contents.items():
                _replace_file(etc_fd, name, text.encode())
        finally:
            os.close(etc_fd)
    finally:
        os.close(root_fd)


def _open_etc(root_fd: int, rootfs: Path) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir("etc", 0o755, dir_fd=root_fd)
    try:
        return os.open("etc", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=root_fd)
    except OSError:
        raise MockerError(f"{rootfs}/etc is not a directory (a symlink is refused)")


def _replace_file(dir_fd: int, name: str, data: bytes) -> None:
    """Write a temp file and rename it over name: a symlink there is replaced, not followed."""
    tmp = f".{name}.mocker-net"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
