"""HTTP/1.1 messages on a socket (RFC 9112): just what a registry client needs.

http.client would do, but importing it costs ~15 ms: it loads the email
package to parse headers, and ssl even for plain HTTP. For a small pull that
is a fifth of our time. What a pull needs is small: send a request, read a
status line and headers, then a body framed by Content-Length, by chunks, or
by the end of the connection. Bodies are read with recv_into straight into
the caller's buffer, with no buffered reader in between.

Errors are OSErrors, as the socket's own are: ConnectionError subclasses for
an answer cut short or not HTTP.
"""

MAX_LINE = 64 << 10           # a status, header or chunk-size line
MAX_HEADERS = 200
_PIECE = 64 << 10             # how much to ask recv for when reading a head


class RemoteDisconnected(ConnectionResetError):
    """The server closed the connection without answering (e.g. an idle keep-alive one)."""


class ProtocolError(ConnectionError):
    """An answer that is not HTTP/1.x, or is cut short."""


class Headers:
    """Response header fields, looked up case-insensitively; the first of repeated ones."""

    def __init__(self, fields: list[tuple[str, str]]):
        self._fields = {}
        for name, value in fields:
            self._fields.setdefault(name.lower(), value)

    def get(self, name: str, default=None):
        return self._fields.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._fields


class Connection:
    """One socket carrying requests and their responses, one after the other."""

    def __init__(self, sock):
        self.sock = sock
        self._pending = bytearray()   # bytes received beyond what has been parsed

    def send(self, method: str, target: str, headers: dict) -> None:
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        if any(c in line for line in lines for c in "\r\n\0"):
            # e.g. a redirect's Location with a CR: it must not add a line of its own
            raise ProtocolError(f"refusing a request with a line break in it: {lines[0][:80]!r}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def response(self, method: str) -> "Response":
        """Read a response's status line and headers; its body is left for Response."""
        while True:
            status, fields = self._read_head()
            if not 100 <= status < 200:   # skip interim answers (100 Continue)
                return Response(self, method, status, fields)

    def close(self) -> None:
        self.sock.close()

    # -- reading -------------------------------------------------------------------------

    def recv_into(self, view) -> int:
        """Fill part of view: from bytes already received, else from the socket. 0 at EOF."""
        if self._pending:
            count = min(len(view), len(self._pending))
            view[:count] = self._pending[:count]
            del self._pending[:count]
            return count
        return self.sock.recv_into(view)

    def readline(self) -> bytes:
        """One CRLF-terminated line, without its line end; b"" if the peer closed first."""
        while (end := self._pending.find(b"\n")) < 0:
            if len(self._pending) > MAX_LINE:
                raise ProtocolError("a line of the answer is too long")
            piece = self.sock.recv(_PIECE)
            if not piece:
                if self._pending:
                    raise ProtocolError("the connection closed in the middle of a line")
                return b""
            self._pending += piece
        line = bytes(self._pending[:end]).rstrip(b"\r")
        del self._pending[:end + 1]
        return line

    def _read_head(self) -> tuple[int, list]:
        status_line = self.readline()
        if not status_line:
            raise RemoteDisconnected("the server closed the connection without an answer")
        version, _, rest = status_line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        fields = []
        while line := self.readline():
            if len(fields) >= MAX_HEADERS:
                raise ProtocolError("too many header fields")
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                fields.append((name.strip(), value.strip()))
        if version == "HTTP/1.0":   # no keep-alive unless asked; we never ask
            fields.append(("connection", "close"))
        return int(code), fields


class Response:
    """A response's status and headers; its body read on demand (RFC 9112 section 6.3)."""

    def __init__(self, connection: Connection, method: str, status: int, fields: list):
        self._connection = connection
        self.status = status
        self.headers = Headers(fields)
        encoding = self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length")
        self._chunked = "chunked" in encoding
        if method == "HEAD" or status in (204, 304):
            self._left = 0                    # no body, whatever the headers say
        elif self._chunked:
            self._left = 0                    # of the current chunk; the first is read next
        elif length is not None and not encoding:
            self._left = _content_length(length)
        else:
            self._left = None                 # the body ends when the connection does
        self.finished = self._left == 0 and not self._chunked
        self.will_close = (self._left is None or
                           "close" in self.headers.get("Connection", "").lower())

    def readinto(self, buffer) -> int:
        """Fill buffer from the body as far as it goes; 0 at the body's end."""
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and not self.finished:
            count = self._read_some(view[filled:])
            if not count:
                break
            filled += count
        return filled

    def read(self, limit: int = -1) -> bytes:
        """The rest of the body, or at most limit bytes of it."""
        out = bytearray()
        piece = memoryview(bytearray(_PIECE))
        while not self.finished and (limit < 0 or len(out) < limit):
            want = _PIECE if limit < 0 else min(_PIECE, limit - len(out))
            count = self.readinto(piece[:want])
            if not count:
                break
            out += piece[:count]
        return bytes(out)

    def _read_some(self, view) -> int:
        if self._chunked and self._left == 0:
            self._left = self._next_chunk()
            if self._left == 0:
                self.finished = True
                return 0
        want = len(view) if self._left is None else min(len(view), self._left)
        count = self._connection.recv_into(view[:want])
        if self._left is None:
            self.finished = count == 0
            return count
        if not count:
            raise ProtocolError(f"the connection closed with {self._left} bytes of the body unsent")
        self._left -= count
        if self._left == 0:
            if self._chunked:
                self._connection.readline()   # the CRLF after a chunk's data
            else:
                self.finished = True
        return count

    def _next_chunk(self) -> int:
        """Read a chunk-size line; at the last (empty) chunk, read the trailer too."""
        line = self._connection.readline()
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            raise ProtocolError(f"a bad chunk size line: {line[:40]!r}") from None
        if size == 0:
            while self._connection.readline():
                pass   # trailer fields: not needed
        return size


def _content_length(value: str) -> int:
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise ProtocolError(f"a bad Content-Length: {value[:40]!r}")
    return length
