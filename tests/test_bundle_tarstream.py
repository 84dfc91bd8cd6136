"""mocker_bundle.tarstream reads what tar writers write, as Python's tarfile reads it."""

import io
import tarfile

import pytest

from mocker_bundle.tarstream import TarReader
from mocker_common.errors import Corrupt

LONG = "very/" * 30 + "long-name.txt"          # > 100 bytes: needs prefix, 'L' or pax


def _archive(fmt) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        def add(name, kind=tarfile.REGTYPE, data=b"", **attrs):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data)
            for key, value in attrs.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if data else None)
        add("dir/", tarfile.DIRTYPE, mode=0o2775, uid=1000, gid=1000, mtime=1_000_000_000)
        add("dir/file.txt", data=b"x" * 1000, mode=0o4755)
        add(LONG, data=b"long\n")
        add("dir/link", tarfile.SYMTYPE,
            linkname=("../" + LONG) if fmt != tarfile.USTAR_FORMAT else "file.txt")
        add("dir/hard", tarfile.LNKTYPE, linkname="dir/file.txt")
        add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("fifo", tarfile.FIFOTYPE)
        add("big-uid", data=b"y", uid=3_000_000 if fmt != tarfile.USTAR_FORMAT else 7)
        add("empty")
    return out.getvalue()


def _as_tuples(entries_and_data):
    return [(e.name.rstrip("/"), e.linkname, e.mode, e.uid, e.gid, int(e.mtime),
             e.devmajor, e.devminor, data) for e, data in entries_and_data]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT],
                         ids=["gnu", "pax", "ustar"])
def test_reads_like_tarfile(fmt):
    raw = _archive(fmt) + b"trailing bytes after the end blocks are ignored"
    theirs = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for member in tar:
            data = tar.extractfile(member).read() if member.isreg() else b""
            theirs.append((member, data))
    reader = TarReader(io.BytesIO(raw))
    ours = [(entry, reader.read(entry.size) if entry.isreg() else b"") for entry in reader]
    assert _as_tuples(ours) == _as_tuples(theirs)
    kinds = [(e.isdir(), e.isreg(), e.issym(), e.islnk(), e.ischr(), e.isfifo()) for e, _ in ours]
    assert kinds == [(m.isdir(), m.isreg(), m.issym(), m.islnk(), m.ischr(), m.isfifo())
                     for m, _ in theirs]


def test_unread_data_is_skipped():
    reader = TarReader(io.BytesIO(_archive(tarfile.PAX_FORMAT)))
    assert [e.name for e in reader][:3] == ["dir/", "dir/file.txt", LONG]


def test_pax_xattrs_keep_their_bytes():
    out = io.BytesIO()
    value = bytes([1, 0, 0, 2, 0, 0x20, 0, 0, 0xff])
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.pax_headers = {"SCHILY.xattr.security.capability": value.decode("utf-8", "surrogateescape")}
        tar.addfile(info)
    entry = next(iter(TarReader(io.BytesIO(out.getvalue()))))
    assert entry.pax_headers["SCHILY.xattr.security.capability"].encode(
        "utf-8", "surrogateescape") == value


@pytest.mark.parametrize("garbage", [b"not a tar at all" * 64, b"\x01" * 512], ids=["text", "ones"])
def test_garbage_is_refused(garbage):
    with pytest.raises(Corrupt, match="not a tar"):
        list(TarReader(io.BytesIO(garbage)))


def test_truncated_entry_is_refused():
    raw = _archive(tarfile.PAX_FORMAT)
    reader = TarReader(io.BytesIO(raw[:1024 + 600]))
    with pytest.raises(Corrupt, match="ends inside"):
        list(reader)
