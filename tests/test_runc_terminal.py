"""process.terminal: the pty master over --console-socket (conmon, containerd's shim),
and `run` proxying the user's own terminal."""

import fcntl
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios
import time

import pytest

from tests.conftest import need_root
from tests.fixtures.bundles import busybox_template, new_bundle, runc_tool  # noqa: F401


@pytest.fixture(autouse=True)
def root_only():
    need_root()


def read_until(fd, needle: bytes, timeout=30.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture
def console_socket(tmp_path):
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)
    yield path, server
    server.close()


def receive_master(server) -> int:
    conn, _ = server.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    return fds[0]


def test_console_socket_receives_the_pty_master(runc_tool, new_bundle, unique, console_socket):
    path, server = console_socket
    bundle = new_bundle(["sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; read line; "
                                     "echo got:$line"],
                        edit=lambda c: c["process"].update(
                            consoleSize={"height": 33, "width": 101}))
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    runc_tool.detached("create", "--bundle", str(bundle), "--console-socket", path, unique)
    master = receive_master(server)
    try:
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(master, termios.TIOCGWINSZ,
                                                       b"\0" * 8))[:2]
        assert (rows, cols) == (33, 101)
        runc_tool("start", unique, check=True)
        out = read_until(master, b"stdin-is-a-tty")
        assert b"/dev/pts/0" in out and b"stdin-is-a-tty" in out
        os.write(master, b"hello\n")
        assert b"got:hello" in read_until(master, b"got:hello")
    finally:
        os.close(master)


def test_exec_tty_through_console_socket(runc_tool, new_bundle, unique, console_socket):
    path, server = console_socket
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    exec_ = subprocess.Popen(["mocker-runc", "--root", str(runc_tool.root), "exec", "--tty",
                              "--detach", "--console-socket", path, unique,
                              "sh", "-c", "[ -t 1 ] && echo exec-tty; sleep 1"],
                             stdin=subprocess.DEVNULL)
    master = receive_master(server)
    try:
        assert exec_.wait(10) == 0
        assert b"exec-tty" in read_until(master, b"exec-tty")
    finally:
        os.close(master)


def test_run_proxies_the_users_terminal(runc_tool, new_bundle, unique):
    # After the line, the shell waits for the new size instead of the test sleeping:
    # run resizes the container's pty when it handles SIGWINCH, at a time we cannot see.
    bundle = new_bundle(["sh", "-c", "stty size; read line; echo got:$line; "
                                     "while [ \"$(stty size)\" = '24 77' ]; do sleep 0.05; done; "
                                     "stty size; exit 4"])
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 77, 0, 0))
    run = subprocess.Popen(["mocker-runc", "--root", str(runc_tool.root), "run", "-b",
                            str(bundle), unique], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        assert b"24 77" in read_until(master, b"24 77")
        # the user's window changes size: run hears SIGWINCH and resizes the container's pty
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))
        run.send_signal(signal.SIGWINCH)
        os.write(master, b"typed\r")
        out = read_until(master, b"30 90")
        assert b"got:typed" in out and b"30 90" in out
        assert run.wait(10) == 4
    finally:
        run.kill()
        run.wait()
        os.close(master)
