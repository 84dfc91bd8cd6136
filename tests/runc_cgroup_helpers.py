"""Helpers for the cgroup tests: processes placed in a cgroup, and cleanup."""

import os
import signal
import subprocess
import time

BUSYBOX = "/bin/busybox"


def spawn_in(cg, argv, **kwargs) -> subprocess.Popen:
    """Start argv already inside cg (it joins between fork and exec)."""
    return subprocess.Popen(argv, preexec_fn=lambda: cg.add(os.getpid()), **kwargs)


def kill_all_and_remove(cg) -> None:
    """Stop everything in cg and remove it, whatever state a test left it in."""
    try:
        if cg.exists():
            frozen = _try(cg.freeze)  # a frozen fork bomb cannot fork while we kill it
            for pid in cg.pids():
                _try(os.kill, pid, signal.SIGKILL)
            if frozen:
                _try(cg.thaw)
            deadline = time.monotonic() + 5
            while cg.pids() and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        cg.remove()


def wait_until(predicate, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def _try(func, *args) -> bool:
    try:
        func(*args)
        return True
    except Exception:
        return False
