"""containerd (through its runc v2 shim) drives mocker-runc exactly as it drives runc.

Each case runs twice: with runc, which proves the harness and the assertion,
and with mocker-runc, which is the point. The test starts its own containerd
(config, root, state and socket in a temp dir; tests/fixtures/engines.py),
imports an OCI archive made from busybox-static, and runs tasks with
`ctr run --runc-binary`: the path containerd's shim, and so a Kubernetes
RuntimeClass, uses.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.engines import IMAGE, freezer_state, process_cgroups
from tests.fixtures.wait import wait_until

pytestmark = [pytest.mark.interop, pytest.mark.slow]

# Known gaps of mocker-runc: test name -> precise reason. The fixtures mark
# those cases xfail(strict=True), so they fail loudly once fixed.
MOCKER_RUNC_GAPS: dict[str, str] = {}


@pytest.fixture
def cid(containerd, unique):
    """A container id; its task and container are removed afterwards, whatever happened."""
    yield unique
    containerd("task", "kill", "--signal", "SIGKILL", "--all", unique, check=False)
    wait_until(lambda: containerd("task", "delete", unique, check=False).returncode != 0, 5, step=0.1)
    containerd("container", "delete", unique, check=False)


def task_status(containerd, cid) -> str:
    for line in containerd("task", "list").stdout.splitlines()[1:]:
        task, pid, status = line.split()
        if task == cid:
            return status
    return "absent"


def wait_status(containerd, cid, wanted, timeout=30) -> str:
    """The task's status once it is wanted, or whatever it is after timeout."""
    wait_until(lambda: task_status(containerd, cid) == wanted, timeout, step=0.1)
    return task_status(containerd, cid)


def test_run_rm_exit_code_env_cwd(containerd, cid):
    result = containerd(*containerd.run_args("--rm", "--env", "GREETING=hello", "--cwd", "/tmp", IMAGE, cid,
                                             "sh", "-c", 'echo "$GREETING"; pwd; echo err >&2; exit 5'), check=False)
    assert result.returncode == 5, containerd.explain(["run"], result)
    assert result.stdout.splitlines() == ["hello", "/tmp"]
    assert "err" in result.stderr
    assert cid not in containerd("container", "list", "--quiet").stdout   # --rm removed it


def test_run_missing_command_names_it(containerd, cid):
    # The shim reports the last error of the runtime's --log JSON file.
    result = containerd(*containerd.run_args("--rm", IMAGE, cid, "/no/such-command"), check=False)
    assert result.returncode != 0
    assert "/no/such-command" in result.stderr, containerd.explain(["run"], result)
    assert cid not in containerd("container", "list", "--quiet").stdout


def test_run_read_only_bind_mount(containerd, cid, tmp_path):
    (tmp_path / "note").write_text("from the host\n")
    result = containerd(*containerd.run_args(
        "--rm", "--mount", f"type=bind,src={tmp_path},dst=/data,options=rbind:ro", IMAGE, cid,
        "sh", "-c", "cat /data/note; echo x > /data/new"), check=False)
    assert result.returncode != 0
    assert result.stdout == "from the host\n"
    assert "Read-only file system" in result.stderr
    assert not (tmp_path / "new").exists()


def test_run_read_only_rootfs(containerd, cid):
    result = containerd(*containerd.run_args("--rm", "--read-only", IMAGE, cid,
                                             "sh", "-c", "echo started; touch /etc/nope"), check=False)
    assert result.returncode != 0
    assert result.stdout == "started\n"
    assert "Read-only file system" in result.stderr


def test_detached_exec_pause_ps_kill_rm(containerd, cid):
    containerd(*containerd.run_args("--detach", IMAGE, cid, "sleep", "1000"))
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"

    result = containerd(*containerd.exec_args("--exec-id", "probe", "--user", "1000", "--cwd", "/home/app", cid,
                        "sh", "-c", "id -u; pwd; exit 3"), check=False)
    assert result.returncode == 3, containerd.explain(["task", "exec"], result)
    assert result.stdout.splitlines() == ["1000", "/home/app"]

    # task ps: the host pids of the container's processes (the shim's `ps --format json`).
    init_pid = next(line.split()[1] for line in containerd("task", "list").stdout.splitlines()
                    if line.startswith(cid))
    pids = [line.split()[0] for line in containerd("task", "ps", cid).stdout.splitlines()[1:]]
    assert pids == [init_pid]
    assert "sleep" in open(f"/proc/{init_pid}/cmdline").read()

    cgroups = process_cgroups(int(init_pid))
    assert any(path.name == cid for path in cgroups.values())   # ctr's cgroupsPath: /<namespace>/<id>

    containerd("task", "pause", cid)
    assert wait_status(containerd, cid, "PAUSED") == "PAUSED"
    assert freezer_state(init_pid) == "FROZEN"
    containerd("task", "resume", cid)
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"
    assert freezer_state(init_pid) == "THAWED"

    containerd("task", "kill", "--signal", "SIGKILL", cid)
    assert wait_status(containerd, cid, "STOPPED") == "STOPPED"
    containerd("task", "delete", cid)
    assert task_status(containerd, cid) == "absent"
    assert [path for path in cgroups.values() if path.exists()] == []   # delete removed the cgroup

    # A new task for the same container: the runtime creates the same id again.
    containerd("task", "start", "--detach", "--fifo-dir", containerd.base / "fifo", cid)
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"
    containerd("task", "kill", "--signal", "SIGKILL", cid)
    assert wait_status(containerd, cid, "STOPPED") == "STOPPED"
    containerd("task", "delete", cid)
    containerd("container", "delete", cid)
    assert cid not in containerd("container", "list", "--quiet").stdout


def test_kill_all(containerd, cid):
    containerd(*containerd.run_args("--detach", IMAGE, cid, "sh", "-c", "sleep 1000 & sleep 1000 & wait"))
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"
    wait_until(lambda: len(containerd("task", "ps", cid).stdout.splitlines()) >= 4, step=0.1)
    pids = [int(line.split()[0]) for line in containerd("task", "ps", cid).stdout.splitlines()[1:]]
    assert len(pids) == 3
    containerd("task", "kill", "--all", "--signal", "SIGKILL", cid)
    assert wait_status(containerd, cid, "STOPPED") == "STOPPED"
    # the init's exit is reported first; the others may still be dying: wait, with a limit
    wait_until(lambda: not [pid for pid in pids if _alive(pid)], step=0.05)
    assert not [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def test_terminal_run_and_exec(containerd, cid):
    status, screen = containerd.pty(*containerd.run_args("--rm", "--tty", IMAGE, cid,
                                                         "sh", "-c", "tty; echo READY; read line; echo got-$line"),
                                    send=b"typed\r")
    assert status == 0, screen
    assert "/dev/pts/0" in screen and "got-typed" in screen

    detached = cid + "d"
    try:
        containerd(*containerd.run_args("--detach", IMAGE, detached, "sleep", "1000"))
        status, screen = containerd.pty(*containerd.exec_args("--tty", "--exec-id", "term", detached,
                                        "sh", "-c", "tty; echo READY; read line; exit ${#line}"), send=b"four\r")
        assert status == 4, screen
        assert "/dev/pts/" in screen
    finally:
        containerd("task", "kill", "--signal", "SIGKILL", detached, check=False)
        wait_status(containerd, detached, "STOPPED")
        containerd("task", "delete", detached, check=False)
        containerd("container", "delete", detached, check=False)


def _link_names(ip_output: str) -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in ip_output.splitlines()}


def test_net_host_shares_host_links_and_default_is_isolated(containerd, cid):
    # Other tests may add and remove host links meanwhile: compare the stable
    # loopback and the host's eth0 (its MAC address), not the whole list.
    host_eth0 = subprocess.run(["ip", "-o", "link", "show", "eth0"], capture_output=True, text=True).stdout
    shared = containerd(*containerd.run_args("--rm", "--net-host", IMAGE, cid, "ip", "-o", "link")).stdout
    assert {"lo", "eth0"} <= _link_names(shared)
    assert host_eth0.split("link/ether ")[1].split()[0] in shared
    private = containerd(*containerd.run_args("--rm", IMAGE, cid + "n", "ip", "-o", "link")).stdout
    assert _link_names(private) == {"lo"}


def test_systemd_cgroup_request_fails_clearly(containerd, cid):
    # No systemd here: the runtime must refuse --systemd-cgroup with an error
    # that says so, and leave no task behind.
    result = containerd(*containerd.run_args("--rm", "--runc-systemd-cgroup", "--cgroup", f"system.slice:{cid}:x",
                                             IMAGE, cid, "true"), check=False)
    assert result.returncode != 0
    assert "systemd" in result.stderr.lower(), containerd.explain(["run"], result)
    assert task_status(containerd, cid) == "absent"


def test_documented_runtime_class_handler_is_valid_containerd_config(tmp_path):
    """The CRI snippet in docs/engines.md parses, and declares the handler with our binary."""
    if not shutil.which("containerd"):
        pytest.skip("containerd is not installed (.ci/run installs it)")
    docs = (Path(__file__).parent.parent / "docs" / "engines.md").read_text()
    snippet = next(block for block in re.findall(r"```toml\n(.*?)```", docs, re.S)
                   if "io.containerd.grpc.v1.cri" in block)
    (tmp_path / "config.toml").write_text(snippet)
    dump = subprocess.run(["containerd", "--config", tmp_path / "config.toml", "config", "dump"],
                          capture_output=True, text=True, timeout=30)
    assert dump.returncode == 0, dump.stderr
    table = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.mocker'
    handler = dump.stdout.split(table + "]")[1].split(table + ".options]")
    assert 'runtime_type = "io.containerd.runc.v2"' in handler[0]
    assert 'BinaryName = "/usr/local/bin/mocker-runc"' in handler[1].split("\n\n")[0]


def test_no_device_beyond_runcs(containerd, cid):
    """mknod is allowed (CAP_MKNOD), opening the host's console or disk is not."""
    escape = ("mknod /dev/d c 4 64 && (echo hello > /dev/d) 2>&1; "
              "mknod /dev/s b 8 0 && (exec 3</dev/s) 2>&1; "
              "mknod /dev/m c 1 1 && (exec 3</dev/m) 2>&1; echo done")
    result = containerd(*containerd.run_args("--rm", IMAGE, cid, "sh", "-c", escape), check=False)
    assert result.stdout.count("Operation not permitted") == 3, containerd.explain(["run"], result)
    assert result.stdout.endswith("done\n")
