"""One exit-code policy for the five commands, written down once and held to.

The codes are ExitCode (mocker_common/errors.py) and Docker's run/exec codes
(mocker_common/contract.py); docs/architecture.md lists them; bin/mocker, a
shell script, names the ones it acts on. These tests keep the three in step;
the behaviour behind each code is tested where it happens (test_fetch_*,
test_bundle_*, test_mocker*), and mocker-bundle's NOT_PULLED here.
"""

import os
import re
import subprocess
import sys

from mocker_common import contract
from mocker_common.errors import ExitCode
from tests.conftest import REPO


def _documented() -> dict[int, str]:
    text = (REPO / "docs/architecture.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(code): meaning for code, meaning in re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M)}


def test_every_code_is_in_the_architecture_page():
    documented = _documented()
    wanted = {int(c) for c in ExitCode} | {contract.RUN_FAILED, contract.CANNOT_INVOKE,
                                           contract.COMMAND_NOT_FOUND}
    assert wanted == set(documented), "docs/architecture.md's exit code table and the code differ"


def test_the_wrapper_names_the_same_numbers():
    line = next(l for l in (REPO / "bin/mocker").read_text().splitlines() if l.startswith("USAGE="))
    named = dict(pair.split("=") for pair in line.split())
    assert named == {"USAGE": str(ExitCode.USAGE.value), "NOT_PULLED": str(ExitCode.NOT_PULLED.value),
                     "RUN_FAILED": str(contract.RUN_FAILED)}


def _bundle(*args, root) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MOCKER_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "mocker_bundle", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_only_an_image_missing_from_the_store_is_not_pulled(tmp_path):
    empty_store = _bundle("busybox", str(tmp_path / "b1"), root=tmp_path / "root")
    assert empty_store.returncode == ExitCode.NOT_PULLED, empty_store.stderr
    assert "not in the store" in empty_store.stderr
    assert len(empty_store.stderr.strip().splitlines()) == 1
    elsewhere = _bundle(f"oci:{tmp_path}/nothing:latest", str(tmp_path / "b2"), root=tmp_path / "root")
    assert elsewhere.returncode == ExitCode.NOT_FOUND, elsewhere.stderr
    assert not (tmp_path / "b1").exists() and not (tmp_path / "b2").exists()


def test_a_bug_is_one_line_and_exit_1_in_every_command(capsys, monkeypatch):
    """mocker_common.cli.run, which the Python commands share (mocker-runc too, for
    its --log): an exception no module expected is a bug, said in one line."""
    from types import SimpleNamespace

    from mocker_common import cli

    def buggy(args):
        return {}["missing"]

    monkeypatch.delenv("MOCKER_VERBOSE", raising=False)
    assert cli.run("mocker-fetch", buggy, SimpleNamespace(verbose=0)) == 1
    err = capsys.readouterr().err
    assert err == ("mocker-fetch: internal error: KeyError: 'missing' "
                   "(run with -v for the traceback)\n")
    assert cli.run("mocker-fetch", buggy, SimpleNamespace(verbose=1)) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in buggy" in err
    assert err.splitlines()[-1] == "mocker-fetch: internal error: KeyError: 'missing'"
