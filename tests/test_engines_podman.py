"""podman drives mocker-runc exactly as it drives runc.

Each case runs twice: with runc, which proves the harness and the assertion,
and with mocker-runc, which is the point. podman gets private storage, config,
default network and cgroup parent (tests/fixtures/engines.py); the image is
imported from a busybox-static rootfs, nothing is pulled. The only traffic is
curl on the host to 127.0.0.1, forwarded by netavark into the container.
"""

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.engines import IMAGE, freezer_state, process_cgroups, recorded_argv
from tests.fixtures.wait import wait_until

pytestmark = [pytest.mark.interop, pytest.mark.slow]

# Known gaps of mocker-runc: test name -> precise reason. The fixtures mark
# those cases xfail(strict=True), so they fail loudly once fixed.
MOCKER_RUNC_GAPS: dict[str, str] = {}


@pytest.fixture
def name(podman, unique):
    """A container name; whatever the test leaves running is removed afterwards."""
    yield unique
    podman("rm", "--force", "--time", "0", unique, check=False)


def test_info_names_the_runtime(podman):
    # podman runs `RUNTIME --version` and shows it; runc's first line is "runc version X".
    info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}|{{.Host.OCIRuntime.Path}}|{{.Host.OCIRuntime.Version}}")
    name, path, version = info.stdout.strip().split("|", 2)
    assert (name, path) == (podman.runtime.name, str(podman.runtime))
    assert version.startswith(f"{podman.runtime.name} version ")


def test_run_rm_exit_code_and_stdio(podman):
    result = podman("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert result.returncode == 7, podman.explain(["run"], result)
    assert result.stdout == "out\n"
    assert "err" in result.stderr
    assert podman("ps", "--all", "--quiet").stdout == ""   # --rm removed it


def test_run_missing_command_is_127_and_named(podman):
    # podman reads the runtime's last JSON error (--log) and maps its wording:
    # "no such file or directory" / "executable file not found in" -> 127.
    result = podman("run", "--rm", IMAGE, "/no/such-command", check=False)
    assert result.returncode == 127, podman.explain(["run"], result)
    assert "/no/such-command" in result.stderr


def test_runtime_error_is_a_json_line_in_the_log_podman_gives(podman, name):
    podman("create", "--name", name, IMAGE, "/no/such-command")
    assert podman("start", name, check=False).returncode != 0
    create = next(argv for argv in recorded_argv(podman.runtime) if argv.endswith(" " + podman.container_id(name)))
    log = Path(create.split("--log ")[1].split()[0])
    last = json.loads(log.read_text().splitlines()[-1])      # runc's format: one JSON object a line
    assert last["level"] == "error" and "/no/such-command" in last["msg"] and last["time"]


def test_run_env_workdir_user(podman):
    result = podman("run", "--rm", "--env", "GREETING=hello", "--workdir", "/home/app", "--user", "app",
                    IMAGE, "sh", "-c", 'echo "$GREETING"; pwd; id')
    assert result.stdout.splitlines() == ["hello", "/home/app", "uid=1000(app) gid=1000(app) groups=1000(app)"]


def test_run_read_only_bind_mount(podman, tmp_path):
    (tmp_path / "note").write_text("from the host\n")
    result = podman("run", "--rm", "--volume", f"{tmp_path}:/data:ro", IMAGE,
                    "sh", "-c", "cat /data/note; echo x > /data/new", check=False)
    assert result.returncode != 0
    assert result.stdout == "from the host\n"
    assert "Read-only file system" in result.stderr
    assert not (tmp_path / "new").exists()


def test_run_read_only_rootfs(podman):
    result = podman("run", "--rm", "--read-only", IMAGE,
                    "sh", "-c", "touch /tmp/ok && echo tmp-writable; touch /etc/nope", check=False)
    assert result.returncode != 0
    assert result.stdout == "tmp-writable\n"            # podman mounts a tmpfs on /tmp
    assert "Read-only file system" in result.stderr


def test_detached_ps_exec_pause_stop_rm(podman, name):
    script = 'trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 0.1; done'
    podman("run", "--detach", "--name", name, IMAGE, "sh", "-c", script)
    ps = podman("ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.Status}}").stdout
    assert ps.startswith(f"{name} Up"), ps

    assert podman("exec", name, "cat", "/proc/1/cmdline").stdout.startswith("sh\0-c\0")
    result = podman("exec", "--user", "app", "--env", "X=42", "--workdir", "/tmp", name,
                    "sh", "-c", 'id -u; echo "$X"; pwd; exit 3', check=False)
    assert result.returncode == 3, podman.explain(["exec"], result)
    assert result.stdout.splitlines() == ["1000", "42", "/tmp"]
    missing = podman("exec", name, "no-such-binary", check=False)
    assert missing.returncode == 127 and "no-such-binary" in missing.stderr, podman.explain(["exec"], missing)

    pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
    cgroups = process_cgroups(pid)
    assert podman.cgroup_parent.strip("/") in cgroups.get("memory", cgroups[""]).parts

    podman("pause", name)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
    assert freezer_state(pid) == "FROZEN"
    podman("unpause", name)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
    assert freezer_state(pid) == "THAWED"

    podman("stop", "--time", "10", name)
    state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()
    assert state == ["exited", "0"]                    # SIGTERM reached the trap
    assert "got TERM" in podman("logs", name).stdout
    podman("rm", name)
    assert podman("ps", "--all", "--quiet", "--filter", f"name={name}").stdout == ""
    assert [path for path in cgroups.values() if path.exists()] == []   # delete removed the cgroup


def test_kill_then_start_again(podman, name):
    podman("run", "--detach", "--name", name, IMAGE, "sleep", "1000")
    podman("kill", "--signal", "KILL", name)
    podman("wait", name)
    state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()
    assert state == ["exited", "137"]
    # `start` creates the container again under the same id: delete left nothing behind.
    podman("start", name)
    assert podman("exec", name, "echo", "again").stdout == "again\n"


def test_run_and_exec_with_terminal(podman, name):
    status, screen = podman.pty("run", "--interactive", "--tty", "--rm", IMAGE,
                                "sh", "-c", "tty; echo READY; read line; echo got-$line", send=b"typed\r")
    assert status == 0, screen
    assert "/dev/pts/0" in screen and "got-typed" in screen

    podman("run", "--detach", "--name", name, IMAGE, "sleep", "1000")
    status, screen = podman.pty("exec", "--interactive", "--tty", name,
                                "sh", "-c", "tty; echo READY; read line; exit ${#line}", send=b"four\r")
    assert status == 4, screen
    assert "/dev/pts/" in screen


def test_network_none_has_only_loopback(podman):
    links = podman("run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link").stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]


def test_default_network_has_eth0(podman):
    addrs = podman("run", "--rm", IMAGE, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"10.89.{podman.subnet_octet}." in addrs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_published_port_reaches_httpd(podman, name):
    port = _free_port()
    podman("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:80", IMAGE,
           "httpd", "-f", "-p", "80", "-h", "/www")
    def fetched():
        return subprocess.run(["curl", "-sS", "--max-time", "2", f"http://127.0.0.1:{port}/index.html"],
                              capture_output=True, text=True)
    curl = wait_until(lambda: (c := fetched()).returncode == 0 and c, 15, step=0.2) or fetched()
    assert curl.stdout == "hello from mocker httpd\n", curl.stderr


def test_no_device_beyond_runcs(podman):
    """mknod is allowed (CAP_MKNOD), opening the host's console or disk is not; --device
    opens exactly its device, with its access."""
    escape = ("mknod /dev/d c 4 64 && (echo hello > /dev/d) 2>&1; "
              "mknod /dev/s b 8 0 && (exec 3</dev/s) 2>&1; "
              "(exec 3</dev/xvda) && echo read-ok; (exec 3>/dev/xvda) 2>&1; "
              "mknod /dev/l1 b 7 1 && (exec 3</dev/l1) 2>&1; echo done")
    result = podman("run", "--rm", "--device", "/dev/loop0:/dev/xvda:r", IMAGE, "sh", "-c", escape)
    out = result.stdout
    assert out.count("Operation not permitted") == 4 and "read-ok" in out, podman.explain(["run"], result)
