"""A small, strict reader of tar streams (POSIX ustar/pax and GNU long names).

Python's tarfile spends most of an unpack parsing headers through several
layers of buffering; layers only need one forward pass, so this reader parses
each 512-byte header with one struct call and hands out file data by slicing
one buffer. Formats: POSIX.1-2001 pax (extended headers 'x' and 'g': path,
linkpath, size, uid, gid, mtime, SCHILY.xattr.*), ustar prefixes, GNU 'L'/'K'
long names, base-256 numbers. Sparse files and multi-volume archives are refused.
"""

import struct

from mocker_common.errors import Corrupt

BLOCK = 512
READ_SIZE = 1 << 20
# ustar header fields (POSIX.1-1988): name mode uid gid size mtime chksum type
# linkname magic version uname gname devmajor devminor prefix.
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_USTAR = b"ustar\x00"
_REGULAR, _HARDLINK, _SYMLINK, _CHAR, _BLOCK, _DIR, _FIFO, _CONTIGUOUS = b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7"
_PAX, _PAX_GLOBAL, _GNU_LONGNAME, _GNU_LONGLINK = b"x", b"g", b"L", b"K"


class TarEntry:
    """One member: the attributes extract.py reads (as tarfile.TarInfo names them)."""

    __slots__ = ("name", "linkname", "type", "mode", "uid", "gid", "size", "mtime",
                 "devmajor", "devminor", "pax_headers")

    def isreg(self):
        return self.type in (_REGULAR, b"\x00", _CONTIGUOUS)

    def isdir(self):
        return self.type == _DIR

    def issym(self):
        return self.type == _SYMLINK

    def islnk(self):
        return self.type == _HARDLINK

    def ischr(self):
        return self.type == _CHAR

    def isblk(self):
        return self.type == _BLOCK

    def isfifo(self):
        return self.type == _FIFO


class TarReader:
    """Iterate entries of the tar read from stream; read(n) gives the current entry's data."""

    def __init__(self, stream):
        self._stream = stream
        self._buffer = b""
        self._pos = 0
        self._data_left = 0      # unread data bytes of the current entry
        self._padding = 0        # bytes after them, up to the next block
        self._global_pax: dict = {}

    def __iter__(self):
        while True:
            entry = self._next()
            if entry is None:
                return
            yield entry

    def read(self, size: int) -> bytes:
        size = min(size, self._data_left)
        data = self._take(size)
        self._data_left -= len(data)
        return data

    # -- internals ------------------------------------------------------------------

    def _fill(self, size: int) -> None:
        while len(self._buffer) - self._pos < size:
            chunk = self._stream.read(READ_SIZE)
            if not chunk:
                return
            self._buffer = self._buffer[self._pos:] + chunk
            self._pos = 0

    def _take(self, size: int) -> bytes:
        if len(self._buffer) - self._pos < size:
            self._fill(size)
        data = self._buffer[self._pos:self._pos + size]
        self._pos += len(data)
        return data

    def _skip_rest(self) -> None:
        left = self._data_left + self._padding
        while left:
            chunk = self._take(min(left, READ_SIZE))
            if not chunk:
                raise Corrupt("the tar stream ends inside an entry")
            left -= len(chunk)
        self._data_left = self._padding = 0

    def _next(self) -> TarEntry | None:
        self._skip_rest()
        pax = dict(self._global_pax)
        long_name = long_link = None
        while True:
            header = self._take(BLOCK)
            if len(header) < BLOCK or header.count(0) == BLOCK:
                return None                      # end of archive (or of the stream)
            fields = _HEADER.unpack(header)
            _check_checksum(header, fields[6])
            kind = fields[7]
            size = _number(fields[4])
            if kind in (_PAX, _PAX_GLOBAL, _GNU_LONGNAME, _GNU_LONGLINK):
                data = self._take(size)
                if len(data) < size:
                    raise Corrupt("the tar stream ends inside an extended header")
                self._take(-size % BLOCK)
                if kind == _PAX:
                    pax.update(_parse_pax(data))
                elif kind == _PAX_GLOBAL:
                    self._global_pax.update(_parse_pax(data))
                    pax.update(self._global_pax)
                elif kind == _GNU_LONGNAME:
                    long_name = _text(data.rstrip(b"\x00"))
                else:
                    long_link = _text(data.rstrip(b"\x00"))
                continue
            return self._entry(fields, kind, size, pax, long_name, long_link)

    def _entry(self, fields, kind, size, pax, long_name, long_link) -> TarEntry:
        if kind not in (_REGULAR, b"\x00", _CONTIGUOUS, _HARDLINK, _SYMLINK, _CHAR, _BLOCK,
                        _DIR, _FIFO):
            raise Corrupt(f"unsupported tar entry type {kind.decode(errors='replace')!r}")
        entry = TarEntry()
        name = _text(_cstr(fields[0]))
        if fields[9] == _USTAR and fields[15][:1] != b"\x00":
            name = _text(_cstr(fields[15])) + "/" + name
        entry.name = pax.get("path", long_name or name)
        entry.linkname = pax.get("linkpath", long_link or _text(_cstr(fields[8])))
        entry.type = kind
        entry.mode = _number(fields[1])
        entry.uid = int(pax["uid"]) if "uid" in pax else _number(fields[2])
        entry.gid = int(pax["gid"]) if "gid" in pax else _number(fields[3])
        entry.size = int(pax["size"]) if "size" in pax else size
        entry.mtime = float(pax["mtime"]) if "mtime" in pax else _number(fields[5])
        is_device = kind in (_CHAR, _BLOCK)
        entry.devmajor = _number(fields[13]) if is_device else 0
        entry.devminor = _number(fields[14]) if is_device else 0
        entry.pax_headers = pax
        # Only regular files carry data (as tarfile and GNU tar read it).
        self._data_left = entry.size if entry.isreg() else 0
        self._padding = -self._data_left % BLOCK
        return entry


def _cstr(field: bytes) -> bytes:
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def _text(raw: bytes) -> str:
    # Like the kernel, tar names are bytes; surrogateescape keeps any that are not UTF-8.
    return raw.decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """An octal ASCII number, or GNU base-256 (high bit of the first byte set)."""
    if field[:1] == b"\xff":                       # negative, two's complement
        return int.from_bytes(field, "big", signed=True)
    if field[:1] and field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    digits = field.strip(b" \x00")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise Corrupt(f"bad number {field!r} in a tar header") from None


def _check_checksum(header: bytes, field: bytes) -> None:
    # ustar: the sum of all header bytes, the checksum field counted as spaces.
    try:
        expected = _number(field)
    except Corrupt:
        expected = None
    actual = sum(header) - sum(header[148:156]) + 8 * 32
    if expected != actual:
        raise Corrupt("not a tar archive (bad header checksum)")


def _parse_pax(data: bytes) -> dict:
    """Records "LENGTH KEY=VALUE\\n" (POSIX.1-2001 pax extended headers)."""
    result, pos = {}, 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise Corrupt("bad pax extended header") from None
        if length <= 0:
            raise Corrupt("bad pax extended header")
        record = data[space + 1:pos + length - 1]
        key, _, value = record.partition(b"=")
        result[_text(key)] = _text(value)
        pos += length
    return result
