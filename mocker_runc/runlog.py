"""runc's logging contract: errors on stderr, and in --log as JSON lines (or text).

containerd's shim and conmon read the last `{"level":"error","msg":…}` line
of the --log file to tell the user why the runtime failed.
"""

import json
import sys
import time

PROG = "mocker-runc"


def utc_now() -> str:
    """RFC 3339 time in UTC with microseconds, as runc prints (without datetime's import cost)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


class RunLog:
    def __init__(self, path: str | None, fmt: str = "text", debug: bool = False):
        self.path, self.fmt, self.debug_on = path, fmt, debug

    def _write(self, level: str, msg: str) -> None:
        if not self.path:
            return
        now = utc_now()
        if self.fmt == "json":
            line = json.dumps({"level": level, "msg": msg, "time": now})
        else:
            line = f'time="{now}" level={level} msg={json.dumps(msg)}'
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError as err:
            print(f"{PROG}: cannot write log {self.path}: {err.strerror}", file=sys.stderr)

    def error(self, msg: str) -> None:
        print(f"{PROG}: {msg}", file=sys.stderr)
        self._write("error", msg)

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self._write("debug", msg)
            if not self.path:
                print(f"{PROG}: debug: {msg}", file=sys.stderr)
