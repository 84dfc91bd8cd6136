"""Shared helpers of the mocker-bundle tests (no tests here): run the command, read trees;
the fixtures `root` (a private MOCKER_ROOT) and `bundles` (removed after the test)."""

import os
import stat
import subprocess
from pathlib import Path

import pytest


def run_bundle(*args, root: Path, stdin: str | None = None, check: bool = True):
    """Run mocker-bundle with its own MOCKER_ROOT; return the CompletedProcess."""
    env = dict(os.environ, MOCKER_ROOT=str(root))
    result = subprocess.run(["mocker-bundle", *map(str, args)], input=stdin, env=env,
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        pytest.fail(f"mocker-bundle {' '.join(map(str, args))} failed: {result.stderr}")
    return result


def remove_bundle(bundle: Path, root: Path) -> None:
    if Path(bundle).exists():
        run_bundle("--remove", bundle, root=root, check=False)


@pytest.fixture
def root(tmp_path):
    """A private MOCKER_ROOT: its images/, containers/ and layers/ start empty."""
    return tmp_path / "root"


@pytest.fixture
def bundles(root):
    """Collects bundles a test makes and removes them (unmounting) even on failure."""
    made = []
    yield made
    for bundle in made:
        remove_bundle(bundle, root)


def make(bundles, root, *args, stdin=None) -> Path:
    """mocker-bundle --network none ARGS: the new bundle, removed after the test."""
    result = run_bundle("--network", "none", *args, root=root, stdin=stdin)
    bundle = Path(result.stdout.strip())
    bundles.append(bundle)
    return bundle


def snapshot(directory: Path) -> dict:
    """Every path under directory with its type, mode, size, mtime and content."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            result[str(path.relative_to(directory))] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                                        st.st_nlink, content)
    return result


def kind_of(st) -> str:
    for kind, test in (("dir", stat.S_ISDIR), ("file", stat.S_ISREG), ("symlink", stat.S_ISLNK),
                       ("fifo", stat.S_ISFIFO), ("chardev", stat.S_ISCHR)):
        if test(st.st_mode):
            return kind
    return "other"
