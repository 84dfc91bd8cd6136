"""Every command answers --help and --version, as a user first tries."""

import subprocess

import pytest

from tests.conftest import COMMANDS


@pytest.mark.parametrize("command", [*COMMANDS, "mocker"])
def test_version_and_help(command):
    version = subprocess.run([command, "--version"], capture_output=True, text=True)
    assert version.returncode == 0, version.stderr
    assert "0.1.0" in version.stdout
    helptext = subprocess.run([command, "--help"], capture_output=True, text=True)
    assert helptext.returncode == 0, helptext.stderr
    assert "usage" in helptext.stdout.lower()
