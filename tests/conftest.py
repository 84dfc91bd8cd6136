"""Fixtures every test may use.

Tests run the commands of *this* checkout: a session-wide bin directory of
small shims (python -m <package>) goes first on PATH, whatever is installed.
Each session gets its own MOCKER_ROOT and MOCKER_RUN, so tests never touch a
user's images or containers, and parallel or crashed runs do not collide.
"""

import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "mocker-fetch": "mocker_fetch",
    "mocker-bundle": "mocker_bundle",
    "mocker-runc": "mocker_runc",
    "mocker-net": "mocker_net",
}

# Registry fixtures, engine harnesses, the cgroup v2 guest, and the check that the suite leaves nothing behind.
pytest_plugins = ["tests.fixtures.plugin", "tests.fixtures.engines", "tests.fixtures.leaks", "tests.guest.fixture",
                  "tests.fixtures.bundler", "tests.fixtures.network"]


def pytest_configure(config):
    """The commands under test start with SIGINT and SIGQUIT at their defaults,
    however the suite was started: a shell running it in the background (`&`)
    makes both ignored, and every child would inherit that (Ctrl-C tests would
    then test nothing). A handler of ours, unlike "ignored", is reset by execve."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, lambda *_: None)


def _write_shims(bindir: Path) -> None:
    for name, package in COMMANDS.items():
        shim = bindir / name
        shim.write_text(
            "#!/bin/sh\n"
            f'PYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -m {package} "$@"\n'
        )
        shim.chmod(0o755)
    os.symlink(REPO / "bin" / "mocker", bindir / "mocker")


@pytest.fixture(scope="session", autouse=True)
def mocker_env(tmp_path_factory):
    """Shims on PATH and a private MOCKER_ROOT / MOCKER_RUN for the session."""
    base = tmp_path_factory.mktemp("mocker")
    bindir = base / "bin"
    bindir.mkdir()
    _write_shims(bindir)
    saved = {k: os.environ.get(k) for k in ("PATH", "MOCKER_ROOT", "MOCKER_RUN")}
    os.environ["PATH"] = f"{bindir}:{os.environ['PATH']}"
    os.environ["MOCKER_ROOT"] = str(base / "root")
    os.environ["MOCKER_RUN"] = str(base / "run")
    yield base
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def unique():
    """A short name unique to this test run, safe for links (15 chars max) and cgroups."""
    return "mk" + secrets.token_hex(4)


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: creates namespaces, mounts and cgroups")


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path
