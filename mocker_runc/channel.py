"""The conversation between mocker-runc and the container's init process.

Two pipes, one each way, carrying one JSON object per line. runc uses the
same idea (its "sync pipe") to say "run the hooks now" and "I am ready".
A file descriptor (the pty master of process.terminal) cannot travel through
a pipe: for that a channel made with_fds=True also has a unix socketpair, and
the fds go over it (SCM_RIGHTS) just before the message that announces them.
(Only then is the socket module imported: with its enums it costs every
`run` ~3 ms and ~0.8 MiB.)
"""

import json
import os

from mocker_common.errors import MockerError

from . import narrate


class InitError(MockerError):
    """The container's init process reported a failure (the message says where)."""


class Channel:
    def __init__(self, read_fd: int, write_fd: int, sock=None):
        self.reader = open(read_fd, "rb")   # buffered: readline() gives one message
        self.write_fd = write_fd
        self.sock = sock

    @classmethod
    def pair(cls, with_fds: bool = False) -> tuple["Channel", "Channel"]:
        """Two connected ends: one for the runtime, one for the forked child."""
        ours_r, theirs_w = os.pipe()   # close-on-exec, as every fd Python makes
        theirs_r, ours_w = os.pipe()
        ours_sock = theirs_sock = None
        if with_fds:
            import socket   # only when an fd will travel (see above)
            ours_sock, theirs_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        return cls(ours_r, ours_w, ours_sock), cls(theirs_r, theirs_w, theirs_sock)

    def fds(self) -> set[int]:
        """The descriptors of this end (the child keeps them open, and no others)."""
        fds = {self.reader.fileno(), self.write_fd}
        if self.sock is not None:
            fds.add(self.sock.fileno())
        return fds

    def send(self, kind: str, fds: list[int] = (), **fields) -> None:
        if fds:
            import socket
            socket.send_fds(self.sock, [b"fds"], list(fds))
            fields["fds"] = len(fds)
        data = json.dumps({"type": kind, **fields}).encode() + b"\n"
        while data:   # a signal may cut a write short
            data = data[os.write(self.write_fd, data):]

    def recv(self) -> tuple[dict, list[int]]:
        """The next message and the fds it brought; an "error" message is raised as InitError."""
        while True:
            line = self.reader.readline()
            if not line:
                raise InitError("container init exited before it was ready")
            msg, fds = self._parse(line)
            if msg["type"] != "note":
                return msg, fds
            narrate.say("%s", msg["text"])   # -v from the container's side (narrate.py)

    def _parse(self, line: bytes) -> tuple[dict, list[int]]:
        msg = json.loads(line)
        fds = []
        if msg.get("fds"):
            import socket
            _, fds, _, _ = socket.recv_fds(self.sock, 16, msg["fds"])
        if msg["type"] == "error":
            for fd in fds:
                os.close(fd)
            raise InitError(msg["message"])
        return msg, fds

    def wait_closed(self) -> None:
        """Wait for the other side to close (e.g. by execve); raise if it sent an error,
        or if the exec trampoline wrote why its execve failed (trampoline.py)."""
        data = self.reader.read()
        if data:
            from .trampoline import failure_message
            message = failure_message(data)
            if message is not None:
                raise InitError(message)
            self._parse(data)

    def expect(self, kind: str) -> dict:
        msg, _ = self.recv()
        if msg["type"] != kind:
            raise InitError(f"protocol error: expected {kind}, got {msg['type']}")
        return msg

    def close(self) -> None:
        """Close this end (again is fine)."""
        self.reader.close()
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        if self.sock is not None:
            self.sock.close()
