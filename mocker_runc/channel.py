"""The conversation between mocker-runc and the container's init process.

A SOCK_SEQPACKET socketpair: one JSON object per message (boundaries kept by
the kernel), optionally carrying file descriptors (the pty master). runc uses
the same idea (its "sync pipe") to say "run the hooks now" and "I am ready".
"""

import json
import os
import socket

from mocker_common.errors import MockerError


class InitError(MockerError):
    """The container's init process reported a failure (the message says where)."""


class Channel:
    def __init__(self, sock: socket.socket):
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: str, fds: list[int] = (), **fields) -> None:
        data = json.dumps({"type": kind, **fields}).encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def recv(self) -> tuple[dict, list[int]]:
        """The next message; an "error" message is raised as InitError."""
        data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
        if not data:
            raise InitError("container init exited before it was ready")
        return self._parse(data, fds)

    @staticmethod
    def _parse(data: bytes, fds: list[int]) -> tuple[dict, list[int]]:
        msg = json.loads(data)
        if msg["type"] == "error":
            for fd in fds:
                os.close(fd)
            raise InitError(msg["message"])
        return msg, fds

    def wait_closed(self) -> None:
        """Wait for the other side to close (e.g. by execve); raise if it sent an error."""
        data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
        if data:
            self._parse(data, fds)

    def expect(self, kind: str) -> dict:
        msg, _ = self.recv()
        if msg["type"] != kind:
            raise InitError(f"protocol error: expected {kind}, got {msg['type']}")
        return msg

    def close(self) -> None:
        self.sock.close()
