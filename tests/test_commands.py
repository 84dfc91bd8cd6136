"""Every command answers --help and --version, as a user first tries."""

import os
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


def completions(line: str, tmp_path) -> list[str]:
    """What the shell's argcomplete hook (register-python-argcomplete) offers for line."""
    out = tmp_path / "completions"
    env = dict(os.environ, _ARGCOMPLETE="1", _ARGCOMPLETE_SHELL="bash", _ARGCOMPLETE_IFS="\n",
               COMP_LINE=line, COMP_POINT=str(len(line)), _ARGCOMPLETE_STDOUT_FILENAME=str(out))
    done = subprocess.run([line.split()[0]], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [word.strip() for word in out.read_text().split("\n")]


@pytest.mark.parametrize("line, expected", [
    ("mocker-fetch --mi", "--mirror"),
    ("mocker-bundle --na", "--name"),
    ("mocker-net ins", "inspect"),
    ("mocker-runc cr", "create"),           # a verb
    ("mocker-runc run --bu", "--bundle"),   # a verb's flag: mocker-runc parses one verb's flags only
])
def test_commands_complete_through_argcomplete(line, expected, tmp_path):
    pytest.importorskip("argcomplete")
    assert completions(line, tmp_path) == [expected]
