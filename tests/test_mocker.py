"""bin/mocker end to end: the docker-like verbs over the four commands.

Every test runs `mocker` from PATH (this checkout's), against the fixture
registry as Docker Hub mirror, with a bridge and subnet of this session's own.
Containers are real (namespaces, cgroups, overlay mounts, veths, nft rules) and
removed by the `cleanup` fixture even when a test fails.
"""

import fcntl
import ipaddress
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from mocker_common import contract, paths
from mocker_common.errors import ExitCode
from tests.conftest import need_root, need_tool
from tests.fixtures import cgroupfs
from tests.fixtures.network import free_port
from tests.fixtures.syscalls import build_probe
from tests.fixtures.wait import wait_until

BUSYBOX = "busybox"  # docker.io/library/busybox:latest, served by the mirror


def mocker(*args, check=False, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(["mocker", *args], capture_output=True, text=True, timeout=timeout,
                          **kwargs)
    if check:
        assert done.returncode == 0, f"mocker {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture(scope="session")
def mirror(registry, network, mocker_env):  # noqa: F811 - network is a fixture
    """The fixture registry as Docker Hub mirror; the engine run by this Python."""
    need_root()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOCKER_REGISTRY_MIRROR", registry.url)
        patch.setenv("MOCKER_PYTHON", sys.executable)
        mocker("pull", BUSYBOX, check=True)
        yield registry


@pytest.fixture
def cleanup(mirror):
    """Remove every container a test made, whatever happened."""
    before = set(mocker("ps", "-aq", "--no-trunc").stdout.split())
    yield
    made = set(mocker("ps", "-aq", "--no-trunc").stdout.split()) - before
    if made:
        mocker("rm", "-f", *made)


def ps_rows(*flags) -> list[dict]:
    """`mocker ps` as dicts by column name (columns are 3+ spaces apart)."""
    lines = mocker("ps", *flags, check=True).stdout.splitlines()
    header = re.split(r"\s{3,}", lines[0])
    rows = []
    for line in lines[1:]:
        starts = [lines[0].index(name) for name in header] + [None]
        rows.append({name: line[starts[i]:starts[i + 1]].strip() for i, name in enumerate(header)})
    return rows


# --- run: output, command, exit codes -------------------------------------------

def test_ifconfig_shows_lo_and_eth0_in_the_subnet(cleanup, network):  # noqa: F811
    done = mocker("run", BUSYBOX, "ifconfig")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "without -v, run prints only what the container prints"
    assert "No such file or directory" not in done.stdout
    interfaces = re.findall(r"^(\S+)\s+Link encap", done.stdout, re.M)
    assert sorted(interfaces) == ["eth0", "lo"]
    eth0 = done.stdout.split("eth0", 1)[1]
    address = re.search(r"inet addr:(\S+)", eth0).group(1)
    assert ipaddress.ip_address(address) in network.subnet
    # As in Docker's containers: the subnet's broadcast address, not Bcast:0.0.0.0.
    assert f"Bcast:{network.subnet.broadcast_address} " in eth0
    assert f"Mask:{network.subnet.netmask}\n" in eth0


def test_network_none_and_host(cleanup, network):  # noqa: F811
    none = mocker("run", "--network", "none", BUSYBOX, "ifconfig", "-a")
    assert re.findall(r"^(\S+)\s+Link encap", none.stdout, re.M) == ["lo"]
    host = mocker("run", "--network", "host", BUSYBOX, "ls", "/sys/class/net")
    default = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True)
    uplink = default.stdout.split(" dev ")[1].split()[0]
    assert uplink in host.stdout.split(), "host mode sees the host's interfaces"


def test_default_command_and_command_line(cleanup, mirror):
    # busybox's Cmd is ["sh"]: with -i it reads the script from stdin.
    done = mocker("run", "-i", BUSYBOX, input="echo $((6*7))\n")
    assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr
    configured = f"{mirror.host}/configured:latest"
    assert mocker("run", configured).stdout == "entry from-cmd\n"
    assert mocker("run", configured, "given", "args").stdout == "entry given args\n"
    entry = mocker("run", "--entrypoint", "/bin/sh", configured, "-c", "echo $GREETING; id -u; pwd")
    assert entry.stdout.split() == ["hello", "1001", "/srv/app"]


def test_exit_codes(cleanup, mirror):
    assert mocker("run", BUSYBOX, "sh", "-c", "exit 7").returncode == 7
    # pid 1 cannot be SIGKILLed from inside; a child killed so is reported by sh as 137.
    assert mocker("run", BUSYBOX, "sh", "-c", "sleep 5 & kill -9 $!; wait $!").returncode == 137
    missing = mocker("run", BUSYBOX, "/no/such/program")
    assert missing.returncode == 127, missing.stderr
    detached = mocker("run", "-d", BUSYBOX, "/no/such/program")
    assert detached.returncode == 127 and detached.stdout == "", "no id: it did not start"
    assert "did not start" in detached.stderr and len(detached.stderr.splitlines()) == 1
    # An image the fixture registry lacks (named with its host: nothing leaves this machine).
    for args in (["run", f"{mirror.host}/no-such-image"], ["run", "--no-such-option", BUSYBOX],
                 ["run", "--memory", "lots", BUSYBOX, "true"], ["run"]):
        failed = mocker(*args)
        assert failed.returncode == 125, (args, failed.stderr)
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert all("no-such-image" not in r["IMAGE"] for r in ps_rows("-a")), "no record is left"


def test_not_executable_is_126(cleanup):
    not_exec = mocker("run", BUSYBOX, "/etc/passwd")
    assert not_exec.returncode == 126, not_exec.stderr
    assert "permission denied" in not_exec.stderr


def test_env_workdir_user(cleanup, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=yes\n\nINHERITED\n")
    tricky = "it's \"quoted\" $HOME `x` \\"
    done = mocker("run", "-e", "A=1", "--env=B=two words", "-e", "INHERITED", "--env-file",
                  str(env_file), "-e", f"Q={tricky}", "-w", "/tmp", "-u", "1000:1001", BUSYBOX,
                  "sh", "-c", 'echo "$A|$B|$FROM_FILE|$INHERITED"; pwd; id -u; id -g; echo "$Q"',
                  env={**os.environ, "INHERITED": "from-host"})
    assert done.stdout.splitlines() == ["1|two words|yes|from-host", "/tmp", "1000", "1001",
                                        tricky], done.stderr


def test_bind_mounts_and_read_only(cleanup, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    done = mocker("run", "-v", f"{tmp_path}:/data", BUSYBOX,
                  "sh", "-c", "cat /data/in.txt; echo from the container > /data/out.txt")
    assert done.stdout == "from the host\n", done.stderr
    assert (tmp_path / "out.txt").read_text() == "from the container\n"
    readonly = mocker("run", "-v", f"{tmp_path}:/data:ro", BUSYBOX, "touch", "/data/new")
    assert readonly.returncode != 0 and not (tmp_path / "new").exists()
    rootfs = mocker("run", "--read-only", BUSYBOX, "sh", "-c", "touch /x || echo refused; touch /tmp/y")
    assert "refused" in rootfs.stdout


def test_memory_limit_kills_a_hog(cleanup):
    # dd allocates a 256 MiB buffer: over a 32 MiB limit the OOM killer ends it.
    done = mocker("run", "-m", "32m", BUSYBOX, "dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1")
    assert done.returncode == 137, (done.returncode, done.stderr)
    fits = mocker("run", "-m", "32m", BUSYBOX, "dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1")
    assert fits.returncode == 0, fits.stderr


def test_hostname_and_init(cleanup):
    done = mocker("run", "--hostname", "box1", "--init", BUSYBOX,
                  "sh", "-c", "hostname; ps -o pid,args | sed -n 2p")
    lines = done.stdout.splitlines()
    assert lines[0] == "box1", done.stderr
    assert lines[1].split()[:2] == ["1", "/dev/init"], "--init runs a reaper as pid 1"
    assert ps_rows("-a")[0]["COMMAND"].startswith('"sh -c hostname'), "ps shows the user's command"


def test_pids_and_cpu_limits(cleanup, unique):
    cid = mocker("run", "-d", "--name", unique, "--pids-limit", "12", "--cpus", "0.5", BUSYBOX,
                 "sleep", "60", check=True).stdout.strip()
    if cgroupfs.is_v2():   # one directory; cpu.max holds "QUOTA PERIOD"
        pids = list(Path("/sys/fs/cgroup").glob(f"**/{cid}/pids.max"))
        quota = [p.with_name("cpu.max").read_text().split() for p in pids]
        assert [int(q) / int(p) for q, p in quota] == [0.5]
    else:
        pids = list(Path("/sys/fs/cgroup/pids").glob(f"**/{cid}/pids.max"))
        quota = list(Path("/sys/fs/cgroup/cpu").glob(f"**/{cid}/cpu.cfs_quota_us"))
        period = [int(p.with_name("cpu.cfs_period_us").read_text()) for p in quota]
        assert [int(q.read_text()) / p for q, p in zip(quota, period)] == [0.5]
    assert [p.read_text().strip() for p in pids] == ["12"]
    # Over the limit, fork fails inside the container.
    forks = mocker("exec", unique, "sh", "-c", "for i in $(seq 20); do sleep 5 & done; wait")
    assert "can't fork" in forks.stderr or forks.returncode != 0, forks


def bundles() -> set[str]:
    """The bundle directories mocker-bundle has made (named by container id)."""
    where = Path(os.environ["MOCKER_ROOT"], "containers")
    return {p.name for p in where.iterdir()} if where.is_dir() else set()


def test_rm_flag_leaves_nothing(cleanup):
    before, made = ps_rows("-a"), bundles()
    done = mocker("run", "--rm", "--name", "gone-soon", BUSYBOX, "true")
    assert done.returncode == 0, done.stderr
    assert ps_rows("-a") == before
    assert bundles() == made, "the bundle is removed"


def test_names_are_unique_and_generated(cleanup, unique):
    mocker("run", "--name", unique, BUSYBOX, "true", check=True)
    made = bundles()
    again = mocker("run", "--name", unique, BUSYBOX, "true")
    assert again.returncode == 125 and "already in use" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert bundles() == made, "the bundle made for the refused name is removed"
    mocker("run", BUSYBOX, "true", check=True)
    names = [r["NAMES"] for r in ps_rows("-a")]
    assert unique in names
    assert any(re.fullmatch(r"[a-z]+_[a-z]+\d*", n) for n in names), names


@pytest.mark.parametrize("flag, value, message", [
    ("--name", "../../etc", "invalid container name"),
    ("--name", "web\nx", "invalid container name"),
    ("--hostname", "web\n6.6.6.6 bank.example", "invalid hostname"),
    ("--hostname", "web_1", "invalid hostname"),
])
def test_hostile_names_are_one_line_and_leave_nothing(cleanup, flag, value, message):
    before, made = ps_rows("-a"), bundles()
    done = mocker("run", flag, value, BUSYBOX, "true")
    assert done.returncode == 125, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert ps_rows("-a") == before and bundles() == made


def test_a_hostile_image_reference_is_one_line(cleanup):
    made = bundles()
    for image in ("busybox:la\ntest", "../../busybox", "busybox;id"):
        done = mocker("run", image, "true")
        assert done.returncode == 125, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "invalid reference" in lines[0], done.stderr
    assert bundles() == made


def test_verbose_narrates_each_step(cleanup):
    done = mocker("-v", "run", "--rm", BUSYBOX, "true")
    runtime = os.environ.get("MOCKER_RUNTIME") or "mocker-runc"
    for tool in ("mocker-bundle", "engine run", f"+ {runtime} "):
        assert tool in done.stderr, done.stderr
    quiet = mocker("run", "--rm", BUSYBOX, "true", env={**os.environ, "MOCKER_VERBOSE": "1"})
    assert "mocker-bundle" in quiet.stderr


# --- a detached web server: ps, logs, exec, stop, rm ---------------------------------

def _get(port: int, path: str = "/") -> str:
    return subprocess.run(["curl", "-s", "--max-time", "5", f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True).stdout


def _leftovers(cid: str, network, port: int | None) -> list[str]:  # noqa: F811
    left = []
    if cid in Path("/proc/mounts").read_text():
        left.append("mount")
    brif = Path("/sys/class/net", network.bridge, "brif")
    if brif.exists() and list(brif.iterdir()):
        left.append(f"link {list(brif.iterdir())}")
    if port and f"dport {port}" in network.rules():
        left.append("nft rule")
    if cid[:12] in subprocess.run(["mocker-net", "ls"], capture_output=True, text=True).stdout:
        left.append("lease")
    if list(Path("/sys/fs/cgroup").glob(f"*/mocker/{cid}")) + list(Path("/sys/fs/cgroup").glob(f"mocker/{cid}")):
        left.append("cgroup")
    for base in (os.environ["MOCKER_ROOT"], os.environ["MOCKER_RUN"]):
        left += [f"state {p}" for p in Path(base).rglob(f"*{cid}*")]
    return left


def test_detached_web_server(cleanup, network, tmp_path, unique):  # noqa: F811
    port = free_port()
    (tmp_path / "index.html").write_text("hello from mocker\n")
    started = mocker("run", "-d", "--name", unique, "-p", f"127.0.0.1:{port}:80",
                     "-v", f"{tmp_path}:/www:ro", BUSYBOX, "httpd", "-f", "-v", "-p", "80", "-h", "/www")
    assert started.returncode == 0, started.stderr
    cid = started.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)

    body = wait_until(lambda: _get(port), timeout=10, step=0.1)
    assert body == "hello from mocker\n"

    row = next(r for r in ps_rows() if r["NAMES"] == unique)
    assert row["CONTAINER ID"] == cid[:12] and row["STATUS"].startswith("Up ")
    assert row["PORTS"] == f"127.0.0.1:{port}->80/tcp"
    assert row["COMMAND"] == '"httpd -f -v -p 80 -…"'
    assert mocker("port", unique).stdout == f"80/tcp -> 127.0.0.1:{port}\n"
    assert "response:200" in mocker("logs", unique).stdout, "httpd -v logs each request"

    listing = mocker("exec", unique, "ls", "/")
    assert "bin" in listing.stdout.split() and "www" in listing.stdout.split()
    assert mocker("exec", cid[:7], "sh", "-c", "exit 5").returncode == 5
    inspected = json.loads(mocker("inspect", unique).stdout)[0]
    assert inspected["State"]["Running"] and inspected["Name"] == f"/{unique}"
    address = inspected["NetworkSettings"]["IPAddress"]
    assert ipaddress.ip_address(address) in network.subnet
    assert mocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", unique).stdout == f"{address}\n"
    assert inspected["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1",
                                                                 "HostPort": str(port)}]}

    assert mocker("stop", "-t", "1", unique).stdout.strip() == unique
    row = next(r for r in ps_rows("-a") if r["NAMES"] == unique)
    assert row["STATUS"].startswith("Exited ("), row
    assert unique not in [r["NAMES"] for r in ps_rows()]

    assert mocker("rm", unique).returncode == 0
    assert _leftovers(cid, network, port) == []


def test_exec_options(cleanup, mirror, unique):
    mocker("run", "-d", "--name", unique, "--entrypoint", "sleep", f"{mirror.host}/configured:latest",
           "60", check=True)
    done = mocker("exec", "-u", "root", "-e", "X=1", "-w", "/tmp", unique, "sh", "-c", 'id -u; echo $X; pwd')
    assert done.stdout.split() == ["0", "1", "/tmp"], done.stderr
    assert mocker("exec", unique, "id", "-u").stdout.strip() == "1001", "the image's User by default"
    groups = mocker("exec", "-u", "app", unique, "id", "-G").stdout.split()
    assert "1003" in groups, "a user by name gets its supplementary groups"
    piped = mocker("exec", "-i", unique, "cat", input="through stdin\n")
    assert piped.stdout == "through stdin\n"
    assert mocker("exec", unique, "cat", input="ignored\n").stdout == "", "no stdin without -i"
    missing = mocker("exec", "nosuchcontainer", "true")
    assert missing.returncode == 125 and "no such container" in missing.stderr


def test_stop_signal_and_restart(cleanup, unique):
    script = 'trap "echo got USR1; exit 0" USR1; echo up; while :; do sleep 0.1; done'
    mocker("run", "-d", "--name", unique, "--stop-signal", "USR1", BUSYBOX, "sh", "-c", script,
           check=True)
    wait_until(lambda: mocker("logs", unique).stdout == "up\n", what="its USR1 trap is set")
    mocker("stop", "-t", "5", unique, check=True)
    assert mocker("logs", unique).stdout.split("\n")[:2] == ["up", "got USR1"]
    assert next(r for r in ps_rows("-a") if r["NAMES"] == unique)["STATUS"].startswith("Exited (0)")
    mocker("restart", unique, check=True)
    assert next(r for r in ps_rows() if r["NAMES"] == unique)["STATUS"].startswith("Up ")
    assert mocker("kill", "-s", "USR1", unique).returncode == 0
    # rm -f while it ends by itself: the runtime may have forgotten it already,
    # its monitor not yet recorded the end.
    removed = mocker("rm", "-f", unique)
    assert removed.returncode == 0, removed.stderr
    assert unique not in [r["NAMES"] for r in ps_rows("-a")]


def test_packages_in_the_current_directory_are_not_run(cleanup, tmp_path):
    """`python -m` searches the current directory first: mocker, run as root,
    must not import a mocker_bundle/ or mocker_runc/ that happens to be there."""
    for package in ("mocker_bundle", "mocker_runc", "mocker_common"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f'raise SystemExit("imported {package}")\n')
    done = mocker("run", "--rm", "--network", "none", BUSYBOX, "echo", "ours", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "ours\n"), done.stderr


def _rootfs_mount_options(bundle: str) -> list[str]:
    mounts = [line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return next(m for m in mounts if m[4] == f"{bundle}/rootfs")[-1].split(",")


def _is_volatile(options: list[str]) -> bool:
    return "volatile" in options or "fsync=volatile" in options   # kernel 6.6+: fsync=


def test_rm_container_overlay_is_volatile(cleanup, unique):
    """--rm: the container's changes go when it ends, so its overlay skips
    syncs (volatile, as podman mounts --rm containers)."""
    mocker("run", "-d", "--rm", "--name", unique, "--network", "none", BUSYBOX,
           "sleep", "600", check=True)
    try:
        bundle = json.loads(mocker("inspect", unique, check=True).stdout)[0]["Bundle"]
        assert _is_volatile(_rootfs_mount_options(bundle))
    finally:
        mocker("rm", "-f", unique)
    assert not Path(bundle).exists()


def test_kept_container_overlay_syncs_and_starts_again(cleanup, unique):
    """A container kept after it ends has an ordinary overlay (its fsyncs
    reach the disk), and starts again on it, its own changes kept."""
    script = "echo run >> /runs; cat /runs"
    first = mocker("run", "--name", unique, "--network", "none", BUSYBOX, "sh", "-c", script)
    assert first.stdout == "run\n", first.stderr
    bundle = json.loads(mocker("inspect", unique, check=True).stdout)[0]["Bundle"]
    assert not _is_volatile(_rootfs_mount_options(bundle))
    mocker("start", unique, check=True)
    wait_until(lambda: mocker("logs", unique).stdout == "run\nrun\nrun\n", timeout=10, step=0.1)
    assert mocker("logs", unique).stdout == "run\nrun\nrun\n", "the second run saw the first's file"
    mocker("rm", unique, check=True)
    assert not Path(bundle).exists()


def test_a_record_cut_short_shows_as_dead_and_rm_removes_everything(cleanup, unique):
    """Records are saved without fsync; after a crash one can be empty. It must
    not hide its container: its bundle and overlay mount would leak."""
    mocker("run", "--name", unique, "--network", "none", BUSYBOX, "true", check=True)
    cid = json.loads(mocker("inspect", unique, check=True).stdout)[0]["Id"]
    bundle = json.loads(mocker("inspect", unique, check=True).stdout)[0]["Bundle"]
    Path(os.environ["MOCKER_ROOT"], "engine", cid, "record.json").write_text("")
    row = next(r for r in ps_rows("-a") if r["CONTAINER ID"] == cid[:12])
    assert row["STATUS"] == "Dead"
    mocker("rm", cid[:12], check=True)
    assert not Path(bundle).exists()
    assert f"{bundle}/rootfs" not in Path("/proc/self/mountinfo").read_text()
    assert all(r["CONTAINER ID"] != cid[:12] for r in ps_rows("-a"))


def test_kept_container_starts_again_after_a_reboot(cleanup, unique):
    """A reboot (simulated: the rootfs overlay unmounted, the runtime's state gone)
    leaves an empty rootfs/; `mocker start` mounts the overlay again from the
    bundle's layer record, and the container sees its own earlier changes."""
    script = "echo run >> /runs; cat /runs"
    first = mocker("run", "--name", unique, "--network", "none", BUSYBOX, "sh", "-c", script)
    assert first.stdout == "run\n", first.stderr
    info = json.loads(mocker("inspect", unique, check=True).stdout)[0]
    bundle = Path(info["Bundle"])
    subprocess.run(["umount", "-l", bundle / "rootfs"], check=True)
    shutil.rmtree(paths.runc_state_dir() / info["Id"], ignore_errors=True)
    assert list((bundle / "rootfs").iterdir()) == []

    mocker("start", unique, check=True)
    wait_until(lambda: mocker("logs", unique).stdout == "run\nrun\nrun\n", timeout=10, step=0.1)
    assert mocker("logs", unique).stdout == "run\nrun\nrun\n", "the second run saw the first's file"
    assert not _is_volatile(_rootfs_mount_options(str(bundle)))
    mocker("rm", unique, check=True)
    assert not bundle.exists()


def test_killed_monitor_container_still_listed_and_removable(cleanup, network, unique):  # noqa: F811
    cid = mocker("run", "-d", "--name", unique, BUSYBOX, "sleep", "600", check=True).stdout.strip()
    monitors = subprocess.run(["pgrep", "-x", "mocker monitor", "-a"], capture_output=True, text=True)
    pid = next(int(line.split()[0]) for line in monitors.stdout.splitlines() if cid in line)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{pid}").exists()
               or Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "Z",
               what="the monitor is gone")
    row = next(r for r in ps_rows() if r["NAMES"] == unique)
    assert row["STATUS"].startswith("Up ")
    assert mocker("rm", "-f", unique).returncode == 0
    assert unique not in [r["NAMES"] for r in ps_rows("-a")]
    assert _leftovers(cid, network, None) == []


# --- a terminal ---------------------------------------------------------------------

def _read_until(fd: int, pattern: bytes, seen: bytearray, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while pattern not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return pattern in seen


def _set_window(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def test_interactive_terminal(cleanup):
    pid, fd = pty.fork()
    if pid == 0:  # the child: mocker on a terminal, as a user types it
        os.execvp("mocker", ["mocker", "run", "-it", "--rm", BUSYBOX, "sh"])
    seen = bytearray()
    try:
        _set_window(fd, 30, 100)
        assert _read_until(fd, b"# ", seen), bytes(seen)
        os.write(fd, b"tty; echo $((6*7)); stty size\n")
        assert _read_until(fd, b"30 100", seen), bytes(seen)
        assert b"/dev/pts/" in seen and b"42" in seen
        _set_window(fd, 40, 120)  # the terminal is resized: the container's follows

        def resized() -> bool:   # SIGWINCH travels through the monitor and the runtime
            os.write(fd, b"stty size\n")
            return _read_until(fd, b"40 120", seen, timeout=1)
        assert wait_until(resized, timeout=15), bytes(seen)
        os.write(fd, b"sleep 30 &\njobs\n")  # job control works in the container's shell
        assert _read_until(fd, b"Running", seen), bytes(seen)
        os.write(fd, b"exit 3\n")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3
    finally:
        os.close(fd)


def test_ctrl_c_reaches_the_container_once(cleanup):
    pid, fd = pty.fork()
    if pid == 0:
        script = 'trap "echo got INT; exit 9" INT; echo ready; while :; do sleep 0.1; done'
        os.execvp("mocker", ["mocker", "run", "--rm", BUSYBOX, "sh", "-c", script])
    seen = bytearray()
    try:
        assert _read_until(fd, b"ready", seen), bytes(seen)
        os.write(fd, b"\x03")  # Ctrl-C, as the terminal sends it
        assert _read_until(fd, b"got INT", seen), bytes(seen)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 9
        _read_until(fd, b"never", seen, timeout=0.5)   # a look for a second one (none must come)
        assert seen.count(b"got INT") == 1, bytes(seen)
    finally:
        os.close(fd)


def test_foreground_output_is_logged(cleanup, unique):
    done = mocker("run", "--name", unique, BUSYBOX, "sh", "-c", "echo out; echo err >&2")
    assert (done.stdout, done.stderr) == ("out\n", "err\n")
    assert sorted(mocker("logs", unique).stdout.split()) == ["err", "out"]
    assert mocker("logs", "--tail", "1", unique).stdout in ("out\n", "err\n")


# --- images, help ------------------------------------------------------------------

def test_images_and_rmi(mirror):
    listing = mocker("images", check=True).stdout
    assert "busybox" in listing
    tagged = f"{mirror.host}/library/busybox:schema2"
    mocker("pull", tagged, check=True)
    assert "schema2" in mocker("images", check=True).stdout
    mocker("rmi", tagged, check=True)
    assert "schema2" not in mocker("images", check=True).stdout
    assert mocker("image", "prune").returncode == 0


def test_image_prune_frees_the_layers_of_removed_images(cleanup, mirror, unique):
    """rmi + image prune: the image's cached layers go, a running container's stay."""
    from tests.fixtures.images import busybox_layer, file, make_image, make_layer
    from tests.fixtures.registry import push_image
    images = {}
    for role in ("kept", "gone"):   # busybox and a layer of their own
        image = make_image([busybox_layer(), make_layer([file(role, f"{unique}\n")])])
        push_image(mirror, f"{unique}/{role}", "latest", image)
        images[role] = (f"{mirror.host}/{unique}/{role}:latest", image)
    cache = Path(os.environ["MOCKER_ROOT"], "layers", "sha256")

    def cached(role):
        return (cache / images[role][1].diff_ids[-1].split(":")[1]).is_dir()
    kept, gone = images["kept"][0], images["gone"][0]
    mocker("run", "-d", "--name", unique, "--network", "none", kept, "sleep", "600", check=True)
    assert mocker("run", "--rm", "--network", "none", gone, "cat", "/gone").stdout == f"{unique}\n"
    assert cached("kept") and cached("gone")
    mocker("rmi", kept, gone, check=True)
    pruned = mocker("image", "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "Removed 1 cached layers" in pruned.stdout
    assert not cached("gone"), "the removed image's own layer is pruned"
    assert cached("kept"), "a running container's layer is kept, though its image is gone"
    assert mocker("exec", unique, "cat", "/kept").stdout == f"{unique}\n"
    mocker("rm", "-f", unique, check=True)
    mocker("image", "prune", check=True)
    assert not cached("kept"), "with its container gone, so is its layer"
    assert "cached layers" in mocker("image", "prune", "--help", check=True).stdout
    assert (cache / busybox_layer().diff_id.split(":")[1]).is_dir(), "busybox's image remains"


@pytest.mark.parametrize("verb", ["run", "ps", "logs", "exec", "stop", "kill", "start", "restart",
                                  "rm", "inspect", "port", "pull", "images", "login", "logout"])
def test_help(verb):
    done = mocker(verb, "--help")
    assert done.returncode == 0 and "usage" in done.stdout.lower(), done.stderr


def test_unknown_verb_and_image_subcommand_are_usage_errors():
    done = mocker("frobnicate")
    assert done.returncode == ExitCode.USAGE and "unknown command" in done.stderr
    done = mocker("image", "frobnicate")
    assert done.returncode == ExitCode.USAGE and "unknown image command" in done.stderr


def test_only_a_missing_image_makes_run_pull(cleanup, tmp_path):
    """bin/mocker pulls when mocker-bundle says NOT_PULLED, and only then: any other
    not-found is shown as it is, with docker's 125, and nothing is fetched."""
    done = mocker("-v", "run", "--rm", f"oci:{tmp_path}/no-layout:latest", "true")
    assert done.returncode == contract.RUN_FAILED
    assert "is not an OCI image layout" in done.stderr
    assert "+ mocker-fetch" not in done.stderr


def test_engine_verbs_exit_with_the_errors_code(cleanup, mirror, unique):
    missing = mocker("stop", "nosuchcontainer")
    assert missing.returncode == ExitCode.NOT_FOUND and "no such container" in missing.stderr
    mocker("run", "-d", "--name", unique, "--network", "none", BUSYBOX, "sleep", "60", check=True)
    busy = mocker("rm", unique)
    assert busy.returncode == ExitCode.CONFLICT and "is running" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1
    pulled = mocker("pull", f"{mirror.host}/library/busybox:no-such-tag")   # the mirror: loopback only
    assert pulled.returncode == ExitCode.NOT_FOUND, pulled.stderr


def _complete(*words: str) -> list[str]:
    """What bash completion offers after `mocker WORDS...` (the last word is being typed)."""
    script = (f"source {Path(__file__).parent.parent / 'completions/mocker.bash'}; "
              f"COMP_WORDS=(mocker {' '.join(repr(w) for w in words)}); COMP_CWORD={len(words)}; "
              "_mocker; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completion(cleanup, unique):
    assert _complete("r") == ["run", "restart", "rm", "rmi"]
    assert _complete("run", "--net") == ["--network"]
    assert _complete("run", "--network", "") == ["bridge", "none", "host"]
    mocker("run", "-d", "--name", unique, BUSYBOX, "sleep", "30", check=True)
    assert unique in _complete("stop", "")
    assert "busybox:latest" in _complete("run", "")
    formatted = mocker("ps", "--format", "{{.Names}}\\t{{.Image}}", check=True).stdout
    assert f"{unique}\tbusybox\n" in formatted


def test_a_program_installs_its_own_seccomp_filter(cleanup, tmp_path):
    """As under Docker: seccomp(2) is allowed, so sshd's sandbox, Chromium and
    systemd can install filters of their own (no_new_privs first)."""
    probe = build_probe(tmp_path / "probe")
    done = mocker("run", "--rm", "--network", "none", "-v", f"{tmp_path}:/t", BUSYBOX,
                  "/t/probe", "own-filter")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["own-filter", "0"]


def test_every_run_option_reaches_the_container(cleanup, tmp_path, unique):
    """The options of mocker_common/runopts.py in one `mocker run` (-d, -t, -p and
    --device have tests of their own above and in test_runc_device_access.py)."""
    env_file = tmp_path / "env"
    env_file.write_text("# docker's env-file\nFROM_FILE=yes\n")
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "f").write_text("shared\n")
    script = ("echo $A $FROM_FILE; pwd; id -u; hostname; cat /v/f; touch /x 2>/dev/null || echo ro; "
              "tr '\\0' ' ' < /proc/1/cmdline; echo; "
              "(cat /sys/fs/cgroup/pids.max || cat /sys/fs/cgroup/pids/pids.max) 2>/dev/null")
    done = mocker("run", "--rm", "--name", unique, "-i", "-e", "A=1", "--env-file", str(env_file),
                  "-v", f"{tmp_path / 'vol'}:/v:ro", "-w", "/tmp", "-u", "65534", "--entrypoint", "sh",
                  "-h", "box", "--network", "none", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20",
                  "--read-only", "--init", "--stop-signal", "SIGINT", BUSYBOX, "-c", script,
                  stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert lines[:6] == ["1 yes", "/tmp", "65534", "box", "shared", "ro"]
    assert lines[6].startswith("/dev/init -- sh -c")       # --init: pid 1 is the reaper
    assert lines[7] == "20"
