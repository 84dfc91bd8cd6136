"""process.terminal: the pty's master goes to the caller.

Either over --console-socket (a unix socket; the fd rides in SCM_RIGHTS, as
runc, conmon and containerd's shim expect), or, in `run` without a socket,
this process proxies it to the user's terminal, in raw mode, passing on
window-size changes.
"""

import os
import select
import signal
import socket

from mocker_common.errors import MockerError


def send_to_console_socket(path: str, master: int) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            socket.send_fds(sock, [b"/dev/ptmx"], [master])
    except OSError as err:
        raise MockerError(f"console socket {path}: {err.strerror or err}") from None


def copy_window_size(src: int, dst: int) -> None:
    import fcntl
    import termios
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def set_window_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Proxy:
    """Copy bytes between the user's terminal (stdin/stdout) and the pty master."""

    def __init__(self, master: int):
        self.master = master
        self.saved = None
        self.stdin_open = True

    def __enter__(self):
        if os.isatty(0):
            import termios
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
            copy_window_size(0, self.master)
            signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(0, self.master))
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)

    def pump(self, timeout: float) -> bool:
        """Move what is ready; False once the container side has hung up."""
        fds = [self.master] + ([0] if self.stdin_open else [])
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            return True
        if 0 in ready:
            data = os.read(0, 4096)
            if data:
                os.write(self.master, data)
            else:
                self.stdin_open = False
        if self.master in ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:   # EIO: every slave fd is closed
                return False
            if not data:
                return False
            os.write(1, data)
        return True
