"""The guest's initramfs: static busybox, a few kernel modules, two scripts.

The kernel unpacks it into its initial root and runs /init (init.sh), which
mounts the real root and switch_root's to pid1.sh. The archive is a "newc"
cpio (the kernel's initramfs format, Documentation/driver-api/early-userspace),
written here directly: thirteen hex fields and a name per file.
"""

import hashlib
import os
import stat
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUSYBOX = Path("/bin/busybox")
# What the root needs before it exists: virtio over MMIO or PCI, the virtio
# console (the command's stdout/stderr ports), 9p over virtio, overlayfs, and
# virtio-blk for the optional disk.
BOOT_MODULES = ["virtio_mmio", "virtio_pci", "virtio_console", "virtio_blk", "9pnet_virtio", "9p", "overlay"]


def module_order(version: str, wanted=BOOT_MODULES, modules_dir=Path("/lib/modules")) -> list[Path]:
    """Module files to insmod, each after the modules it depends on (modules.dep)."""
    base = modules_dir / version
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        path, _, needs = line.partition(":")
        deps[path] = needs.split()
        by_name[Path(path).name.split(".ko")[0].replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        if name in by_name:  # built into this kernel when absent
            visit(by_name[name])
    return [base / path for path in order]


def _uncompressed(path: Path) -> tuple[str, bytes]:
    """The module's name as insmod wants it (.ko) and its bytes (busybox insmod cannot unpack)."""
    data = path.read_bytes()
    name = path.name
    if name.endswith(".xz"):
        import lzma
        return name[:-3], lzma.decompress(data)
    if name.endswith(".gz"):
        import gzip
        return name[:-3], gzip.decompress(data)
    if name.endswith(".zst"):
        raise RuntimeError(f"{path}: zstd-compressed modules are not supported")
    return name, data


def _newc_entry(name: str, mode: int, data: bytes = b"", ino: int = 0) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    # header+name, then data, each padded to a multiple of 4 bytes
    out = header + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    return out + data + b"\0" * (-len(data) % 4)


def cpio_newc(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A newc archive of {path: (mode, content)}; directories have no content."""
    entries = [_newc_entry(name, mode, data, ino) for ino, (name, (mode, data))
               in enumerate(sorted(files.items()), start=1)]
    return b"".join(entries) + _newc_entry("TRAILER!!!", 0)


def contents(version: str) -> dict[str, tuple[int, bytes]]:
    directory = stat.S_IFDIR | 0o755
    files = {d: (directory, b"") for d in ("bin", "dev", "proc", "sys", "modules")}
    files["bin/busybox"] = (stat.S_IFREG | 0o755, BUSYBOX.read_bytes())
    files["init"] = (stat.S_IFREG | 0o755, (HERE / "init.sh").read_bytes())
    files["pid1.sh"] = (stat.S_IFREG | 0o755, (HERE / "pid1.sh").read_bytes())
    names = []
    for path in module_order(version):
        name, data = _uncompressed(path)
        files[f"modules/{name}"] = (stat.S_IFREG | 0o644, data)
        names.append(name)
    files["modules/order"] = (stat.S_IFREG | 0o644, "".join(f"{n}\n" for n in names).encode())
    return files


def build(version: str, cache: Path) -> Path:
    """The initramfs for this kernel and these scripts, cached under a content key."""
    key = hashlib.sha256()
    for part in (version.encode(), (HERE / "init.sh").read_bytes(), (HERE / "pid1.sh").read_bytes(),
                 " ".join(BOOT_MODULES).encode(), str(BUSYBOX.stat().st_mtime_ns).encode()):
        key.update(part)
    target = cache / f"initramfs-{version}-{key.hexdigest()[:12]}.cpio"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        tmp.write_bytes(cpio_newc(contents(version)))
        tmp.rename(target)
    return target
