"""An untrusted image must not take over the host: the attacks themselves.

Each test runs a hostile image against a THROWAWAY COPY of the runtime
(tests/fixtures/attacks: a venv --copies interpreter for mocker-runc, a copy
of runc), and checks that nothing outside the container's rootfs was written
or mounted:

- CVE-2019-5736 through the image: its program starts with
  `#!/proc/self/exe` and its /lib64/ld-linux-x86-64.so.2 is evil_ldso.c, which
  tries to reopen the runtime's binary for writing (run, create/start, exec);
- CVE-2019-5736 through `exec`: exe_watcher.c, in the container, opens
  /proc/<pid>/exe of every process it sees while the runtime execs into it;
- CVE-2021-30465: rename_racer.c swaps a directory and a symlink to a host
  directory on a volume, while containers mounting onto that directory start.

The same tests run against runc (marked interop and slow).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_root
from tests.fixtures.attacks import build, digest, throwaway_mocker_runc, throwaway_runc
from tests.fixtures.bundles import (Runtime, busybox_template, default_config,  # noqa: F401
                                    leftover_mounts, make_bundle, write_config)
from tests.fixtures.wait import wait_until

ROOT, USER = "root", "user"
STARTS = 20   # containers started while the racer swaps
SLOW = 180    # seconds a runtime command may take: the TCG guest and a loaded CI host are slow
UID = 1000


@pytest.fixture(autouse=True)
def root_only():
    need_root()


@pytest.fixture(scope="module")
def mocker_copy(tmp_path_factory):
    return throwaway_mocker_runc(tmp_path_factory.mktemp("mocker-copy"))


@pytest.fixture(scope="module")
def runc_copy(tmp_path_factory):
    return throwaway_runc(tmp_path_factory.mktemp("runc-copy"))


RUNTIMES = [pytest.param("mocker", id="mocker-runc"),
            pytest.param("runc", id="runc", marks=[pytest.mark.interop, pytest.mark.slow])]


@pytest.fixture(params=RUNTIMES)
def attacked(request, tmp_path):
    """("mocker" or "runc", the throwaway runtime, a Runtime calling it with a private --root)."""
    copy = request.getfixturevalue("mocker_copy" if request.param == "mocker" else "runc_copy")
    copy.digest = digest(copy.target)   # as this test finds it
    tool = Runtime(str(copy.command), tmp_path / "state")
    yield request.param, copy, tool
    for cid in tool.containers():   # generously: a loaded host or a TCG guest is slow
        tool("delete", "--force", cid, timeout=SLOW)
    assert not tool.containers(), "state left behind"
    assert not leftover_mounts(tmp_path), "mounts left behind"


def _bundle(path: Path, template: Path, args, user: str, mounts=()) -> Path:
    config = default_config()
    config["root"]["readonly"] = False
    config["mounts"] += list(mounts)
    if user == USER:
        config["process"]["user"] = {"uid": UID, "gid": UID}
    bundle = make_bundle(path, args, config, rootfs=template)
    result = bundle / "rootfs/result"
    result.touch()
    result.chmod(0o666)   # the attack's report, whoever it runs as
    return bundle


def _detached(tool: Runtime, *args) -> None:
    """As Runtime.detached (the container keeps no pipe of ours), with SLOW's patience."""
    tool(*args, check=True, capture_output=False, stdout=subprocess.DEVNULL,
         stderr=subprocess.DEVNULL, timeout=SLOW)


def _wait_stopped(tool: Runtime, cid: str, timeout: float = 20) -> None:
    wait_until(lambda: tool.state(cid)["status"] == "stopped", timeout, step=0.1,
               what=f"{cid} stopped")


def _wait_gone(pid: int, timeout: float = 20) -> None:
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout, step=0.1)


# --- CVE-2019-5736: the image's #!/proc/self/exe ------------------------------------

def _evil_rootfs(tmp_path: Path, template: Path, copy) -> Path:
    """The busybox rootfs plus the hostile /bin/evil and /lib64/ld-linux-x86-64.so.2."""
    rootfs = tmp_path / "evil-rootfs"
    shutil.copytree(template, rootfs, symlinks=True)
    (rootfs / "lib64").mkdir()
    build("evil_ldso", rootfs / "lib64/ld-linux-x86-64.so.2", copy)
    evil = rootfs / "bin/evil"
    evil.write_text("#!/proc/self/exe\n")
    evil.chmod(0o755)
    return rootfs


@pytest.mark.parametrize("user", [ROOT, USER])
@pytest.mark.parametrize("verb", ["run", "create-start", "exec", "startContainer-hook"])
def test_image_cannot_overwrite_the_runtime_binary(attacked, tmp_path, busybox_template, unique,
                                                   verb, user):
    runtime, copy, tool = attacked
    rootfs = _evil_rootfs(tmp_path, busybox_template, copy)
    args = ["/bin/evil"] if verb in ("run", "create-start") else ["sleep", "60"]
    bundle = _bundle(tmp_path / "bundle", rootfs, args, user)
    if verb == "startContainer-hook":   # run by the runtime, inside, after pivot_root
        config = json.loads((bundle / "config.json").read_text())
        config["hooks"] = {"startContainer": [{"path": "/bin/evil"}]}
        write_config(bundle, config)
        _detached(tool, "create", "--bundle", str(bundle), unique)
        # The hook may fail: what matters is what it reached. start returns once
        # the hooks are done (the attack's second stage gives up after 10 s).
        tool("start", unique, timeout=SLOW)
    elif verb == "run":
        tool("run", "--bundle", str(bundle), unique, timeout=SLOW)
    elif verb == "create-start":
        _detached(tool, "create", "--bundle", str(bundle), unique)
        tool("start", unique, check=True, timeout=SLOW)
        _wait_stopped(tool, unique)   # the attack's second stage has given up or won
    else:
        _detached(tool, "run", "-d", "--bundle", str(bundle), unique)
        pid_file = tmp_path / "exec.pid"
        as_user = ["--user", f"{UID}:{UID}"] if user == USER else []
        _detached(tool, "exec", "-d", "--pid-file", str(pid_file), *as_user, unique, "/bin/evil")
        _wait_gone(int(pid_file.read_text()))
    report = (bundle / "rootfs/result").read_text()
    assert copy.untouched() and "WROTE" not in report, \
        f"the image wrote the runtime's binary: {report}"
    if runtime == "mocker":
        # Stronger: the image's code never even ran with the binary. (runc 1.1.5
        # execs from a read-only bind mount of its binary: the image can open it,
        # and reopening it for writing fails with EROFS.)
        assert "TARGET" not in report, f"the image's code held the runtime's binary: {report}"


# --- CVE-2019-5736 through exec: /proc/<pid>/exe of the exec process -------------------

@pytest.mark.slow
@pytest.mark.parametrize("user", [ROOT, USER])
def test_exec_process_cannot_be_reached_from_inside(attacked, tmp_path, busybox_template, unique,
                                                    user):
    _, copy, tool = attacked
    rootfs = tmp_path / "watch-rootfs"
    shutil.copytree(busybox_template, rootfs, symlinks=True)
    build("exe_watcher", rootfs / "watcher", copy)
    bundle = _bundle(tmp_path / "bundle", rootfs, ["/watcher"], user)
    _detached(tool, "create", "--bundle", str(bundle), unique)
    tool("start", unique, check=True, timeout=SLOW)
    as_user = ["--user", f"{UID}:{UID}"] if user == USER else []
    for _ in range(10):
        done = tool("exec", *as_user, unique, "true", timeout=SLOW)
        assert done.returncode == 0, done.stderr
    (bundle / "rootfs/stop").touch()
    _wait_stopped(tool, unique)
    report = (bundle / "rootfs/result").read_text()
    assert copy.untouched(), f"the watcher wrote the runtime's binary: {report}"
    assert report.strip() == "seen=0 wrote=0", report


# --- CVE-2021-30465: a mount destination swapped for a symlink -------------------------

def _bind(source, destination, *options) -> dict:
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": ["rbind", *options]}


@pytest.mark.slow
@pytest.mark.parametrize("user", [ROOT, USER])
def test_mount_destination_race_stays_in_rootfs(attacked, tmp_path, busybox_template, unique, user,
                                                request):
    runtime, copy, tool = attacked
    if runtime == "runc":
        # Seen here: runc 1.1.5 made a directory in the host's canary (it creates
        # missing destinations by path: CVE-2024-45310, fixed in runc 1.1.14).
        request.applymarker(pytest.mark.xfail(reason="runc 1.1.5: CVE-2024-45310", strict=False))
    volume, canary = tmp_path / "volume", tmp_path / "host-canary"
    canary.mkdir()
    volume.mkdir()
    volume.chmod(0o777)   # the racer may run as a user
    (volume / "dir").mkdir()
    (volume / "link").symlink_to(canary)   # as the runtime would read it: a host path
    host_file = tmp_path / "host-file"
    host_file.write_text("mounted from the host\n")

    racer_rootfs = tmp_path / "racer-rootfs"
    shutil.copytree(busybox_template, racer_rootfs, symlinks=True)
    build("rename_racer", racer_rootfs / "racer")
    racer = _bundle(tmp_path / "racer", racer_rootfs, ["/racer"], user,
                    [_bind(volume, "/vol", "rw")])
    _detached(tool, "run", "-d", "--bundle", str(racer), unique + "r")

    # Many destinations below the swapped directory: many windows per start.
    victim = _bundle(tmp_path / "victim", busybox_template, ["true"], ROOT, [
        _bind(volume, "/vol", "rw"),
        *({"destination": f"/vol/dir/sub{n}/in", "type": "tmpfs", "source": "tmpfs",
           "options": ["nosuid"]} for n in range(8)),
        _bind(host_file, "/vol/dir/file", "ro"),
    ])
    outcomes = []
    for i in range(STARTS):
        done = tool("run", "--bundle", str(victim), f"{unique}v{i}", timeout=SLOW)
        # a start that saw the swap may fail, but with one line
        assert done.returncode == 0 or len(done.stderr.strip().splitlines()) == 1, done.stderr
        outcomes.append(done.returncode)
    (volume / "stop").touch()
    _wait_stopped(tool, unique + "r")
    assert os.listdir(canary) == [], "a directory or file was made outside the rootfs"
    assert not leftover_mounts(canary)
    assert copy.untouched()
    assert outcomes.count(0) >= 1, "no container started at all"


# --- the /dev/null that masks paths ---------------------------------------------------

def test_fake_dev_null_is_refused_for_masking(tmp_path, busybox_template, unique):
    """Without a /dev tmpfs of ours, /dev/null is the image's: a regular file (or
    any other device) there must not be bound over the masked paths."""
    tool = Runtime("mocker-runc", tmp_path / "state")
    config = default_config()
    config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/dev")]
    bundle = make_bundle(tmp_path / "bundle", ["true"], config, rootfs=busybox_template)
    (bundle / "rootfs/dev/null").write_text("not a device\n")
    try:
        done = tool("run", "--bundle", str(bundle), unique, timeout=SLOW)
        assert done.returncode != 0
        assert done.stderr.strip().splitlines() == [
            "mocker-runc: mask paths: /dev/null in the container is not the null device (1:3)"]
    finally:
        tool.cleanup()
    assert not tool.containers() and not leftover_mounts(tmp_path)
