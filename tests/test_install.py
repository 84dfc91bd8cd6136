"""`pip install .` gives the four commands and `mocker` on PATH."""

import subprocess
import sys

import pytest

from tests.conftest import COMMANDS, REPO


@pytest.mark.slow
def test_pip_install_gives_every_command(tmp_path):
    venv = tmp_path / "venv"
    # The venv sees the system's site-packages so the dependencies need no download.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    install = subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps",
                              str(REPO)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    for command in [*COMMANDS, "mocker"]:
        path = venv / "bin" / command
        assert path.exists(), f"{command} not installed"
        for flag in ("--version", "--help"):
            result = subprocess.run([path, flag], capture_output=True, text=True,
                                    env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin"})
            assert result.returncode == 0, f"{command} {flag}: {result.stderr}"
            assert result.stdout.strip()
