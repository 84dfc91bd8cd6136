"""README.md's quick start, followed to the letter as a new user without internet would.

From a fresh clone of this checkout (its committed HEAD): `scripts/install`
into a temporary prefix, then, in a network namespace that holds nothing but
lo (no route anywhere, as on a machine with no internet; its own 127.0.0.1:5000,
mocker0 bridge and nftables, so other tests are not disturbed):

    mocker run busybox ifconfig         fails, and its one line says the offline route
    <the README's offline block>        run verbatim, as parsed from README.md

then `scripts/local-registry stop` and `mocker rm` leave nothing running or mounted.
The commands are read from README.md, so the README and this test cannot drift apart.
"""

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO, need_root, need_tool
from tests.fixtures.wait import wait_until

pytestmark = pytest.mark.slow


def readme_quick_start() -> tuple[str, str]:
    """The quick start's install line and its offline block, from README.md."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    offline = [block for block in blocks if "scripts/local-registry" in block]
    assert blocks and len(offline) == 1, "README.md's quick start changed shape"
    return blocks[0].strip(), offline[0]


class Offline:
    """A `sleep` holding a network namespace with only lo, and commands run in it.

    As `ip netns exec` does, a mount namespace of its own shows the new network
    namespace's /sys (sysfs shows the links of the namespace that mounted it);
    mounts made in it (the container's overlay) die with it."""

    def __init__(self, env: dict, cwd, stash):
        self.env, self.cwd = env, cwd
        # A new sysfs on /sys, with the host's cgroup mounts moved over onto it.
        stash.mkdir()
        script = ('mount --rbind /sys/fs/cgroup "$1" && mount -t sysfs sysfs /sys && '
                  'mount --move "$1" /sys/fs/cgroup && exec sleep 900')
        self.holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "--",
                                        "sh", "-c", script, "sh", str(stash)])
        host = os.stat("/proc/self/ns/net").st_ino
        wait_until(lambda: (os.stat(f"/proc/{self.holder.pid}/ns/net").st_ino != host
                            and "sleep" in open(f"/proc/{self.holder.pid}/cmdline").read()),
                   10, step=0.01, what="unshare made a network namespace")
        self.sh("ip link set lo up", check=True)

    def sh(self, script: str, check=False, timeout=180) -> subprocess.CompletedProcess:
        done = subprocess.run(["nsenter", f"--target={self.holder.pid}", "--net", "--mount",
                               f"--wd={self.cwd}", "sh", "-ec", script],
                              capture_output=True, text=True, env=self.env, timeout=timeout)
        assert not check or done.returncode == 0, f"{script}: {done.stderr}"
        return done

    def mounts_under(self, path) -> list[str]:
        return mounts_under(path, f"/proc/{self.holder.pid}/mounts")

    def close(self):
        self.holder.kill()
        self.holder.wait()


def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(f"{pid} {cmdline[:100]}")
    return found


def mounts_under(path, table="/proc/self/mounts") -> list[str]:
    with open(table) as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(str(path))]


def test_readme_quick_start_offline_from_a_fresh_clone(tmp_path):
    need_root()
    for tool in ("git", "unshare", "nsenter", "ip"):
        need_tool(tool)
    if not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to clone")
    install_line, offline_block = readme_quick_start()
    install, first_run = (part.strip() for part in install_line.split("&&"))

    clone, prefix, bindir = tmp_path / "clone", tmp_path / "prefix", tmp_path / "bin"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    # A new user's environment: nothing of this session's (shims, MOCKER_* variables);
    # pip's settings (the package index to use) as they are.
    env = {key: value for key, value in os.environ.items()
           if key.startswith("PIP_") or key in ("HOME", "LANG", "TERM")}
    env.update(PATH=f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               MOCKER_PREFIX=str(prefix), MOCKER_BINDIR=str(bindir),
               MOCKER_ROOT=str(tmp_path / "root"), MOCKER_RUN=str(tmp_path / "run"))
    offline = None
    try:
        installed = subprocess.run(install, shell=True, cwd=clone, env=env, capture_output=True,
                                   text=True, timeout=600)
        assert installed.returncode == 0, installed.stderr
        assert os.readlink(bindir / "mocker") == str(prefix / "bin" / "mocker")

        offline = Offline(env, clone, tmp_path / "cgroups")
        # No internet: the failing pull names the way out, in its one error line.
        failed = offline.sh(first_run)
        assert failed.returncode != 0
        errors = [line for line in failed.stderr.splitlines() if "cannot reach" in line]
        assert len(errors) == 1, failed.stderr
        assert "export MOCKER_REGISTRY_MIRROR=" in errors[0], errors[0]
        assert "scripts/local-registry start" in errors[0], errors[0]

        done = offline.sh(offline_block)
        assert done.returncode == 0, done.stderr
        eth0 = done.stdout.split("eth0", 1)[1] if "eth0" in done.stdout else ""
        assert re.search(r"inet addr:\d+\.\d+\.\d+\.\d+", eth0), done.stdout
    finally:
        if offline:
            offline.sh('ids=$(mocker ps -aq); [ -z "$ids" ] || mocker rm -f $ids')
            stopped = offline.sh("scripts/local-registry stop")
            left_mounted = offline.mounts_under(tmp_path)
            offline.close()
        else:
            stopped = None
    assert stopped and stopped.returncode == 0, stopped and stopped.stderr
    # Stopped and removed: nothing of it runs, nothing is mounted, no state is left.
    assert processes_mentioning(str(tmp_path)) == []
    assert left_mounted == [] and mounts_under(tmp_path) == []
    assert not (tmp_path / "root" / "local-registry" / "registry.pid").exists()
    assert list((tmp_path / "root" / "containers").iterdir()) == []
    for path in (clone, prefix, bindir, tmp_path / "root", tmp_path / "run", tmp_path / "cgroups"):
        shutil.rmtree(path)
    assert list(tmp_path.iterdir()) == []
