"""`pip install .` gives the four commands and `mocker` on PATH."""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import COMMANDS, REPO


@pytest.mark.slow
def test_pip_install_gives_every_command(tmp_path):
    venv = tmp_path / "venv"
    # The venv sees the system's site-packages so the dependencies need no download.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    # Install from a copy: pip's in-tree build/ would otherwise litter the checkout,
    # and a stale one could hide a change.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache"))
    install = subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps",
                              str(source)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    for command in [*COMMANDS, "mocker"]:
        path = venv / "bin" / command
        assert path.exists(), f"{command} not installed"
        for flag in ("--version", "--help"):
            result = subprocess.run([path, flag], capture_output=True, text=True,
                                    env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin"})
            assert result.returncode == 0, f"{command} {flag}: {result.stderr}"
            assert result.stdout.strip()
    # Linked from elsewhere on PATH (as scripts/install does into /usr/local/bin), mocker
    # still finds its engine through the venv's Python, not whatever python3 PATH has.
    links = tmp_path / "links"
    links.mkdir()
    (links / "mocker").symlink_to(venv / "bin" / "mocker")
    listed = subprocess.run(["mocker", "ps", "-a"], capture_output=True, text=True, cwd=tmp_path,
                            env={"PATH": f"{links}:/usr/bin:/bin", "MOCKER_ROOT": str(tmp_path / "root")})
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:2] == ["CONTAINER", "ID"]
