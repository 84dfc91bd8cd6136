"""The guest's kernel: Debian's linux-image-amd64, as the host installed it.

Any kernel in /boot whose modules are in /lib/modules will do: the guest loads
its 9p and overlay drivers from the initramfs and every other module from the
host's /lib/modules, which it sees over 9p.
"""

import lzma
import os
import re
from pathlib import Path

BOOT = Path("/boot")
MODULES = Path("/lib/modules")
XZ_MAGIC = b"\xfd7zXZ\x00"
ELF_MAGIC = b"\x7fELF"


class NoKernel(Exception):
    """No kernel in /boot can boot the guest."""


def _version_key(version: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", version)]


def find_version() -> str:
    """The newest kernel in /boot that has its 9p module (the guest's root needs it)."""
    versions = [p.name.removeprefix("vmlinuz-") for p in BOOT.glob("vmlinuz-*")]
    for version in sorted(versions, key=_version_key, reverse=True):
        if list((MODULES / version / "kernel" / "fs" / "9p").glob("9p.ko*")):
            return version
    raise NoKernel("no kernel in /boot with its modules in /lib/modules "
                   "(apt-get install linux-image-amd64)")


def bzimage(version: str) -> Path:
    return BOOT / f"vmlinuz-{version}"


def vmlinux(version: str, cache: Path) -> Path | None:
    """The uncompressed ELF kernel inside the bzImage, cached.

    QEMU boots an ELF vmlinux through its PVH entry point (Xen's direct boot
    protocol, CONFIG_PVH), which skips the real-mode setup and the kernel's
    own decompression: about 3 s less under TCG, and it lets us use the
    'microvm' machine. None when the image is not xz-compressed ELF.
    """
    target = cache / f"vmlinux-{version}"
    if target.exists():
        return target
    image = bzimage(version).read_bytes()
    start = image.find(XZ_MAGIC)
    if start < 0:
        return None
    try:
        # The payload is followed by other data: decompress the first stream only.
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(image[start:])
    except lzma.LZMAError:
        return None
    if not elf.startswith(ELF_MAGIC):
        return None
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    tmp.write_bytes(elf)
    tmp.rename(target)
    return target
