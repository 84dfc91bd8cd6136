"""mocker-runc's lifecycle, seen as a user and as conmon/containerd see it:
create, start, state, kill, delete, run, exec, list, ps, pause/resume."""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import need_root
from tests.fixtures import cgroupfs
from tests.fixtures.bundles import busybox_template, new_bundle, runc_tool  # noqa: F401
from tests.fixtures.wait import wait_until

pytestmark = pytest.mark.usefixtures("root_only")


@pytest.fixture
def root_only():
    need_root()


def cgroup_dir(cid):
    return cgroupfs.cgroup_dir(f"/mocker/{cid}")


def wait_status(tool, cid, status, timeout=30.0):
    wait_until(lambda: tool.state(cid)["status"] == status, timeout, what=f"{cid} is {status}")


def test_run_gives_the_exit_code_and_cleans_up(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "echo out; echo err >&2; exit 7"])
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    assert proc.returncode == 7
    assert proc.stdout == "out\n" and proc.stderr == "err\n"
    assert runc_tool("list", "-q").stdout == ""
    assert not os.path.exists(cgroup_dir(unique))


def test_create_waits_until_start(runc_tool, new_bundle, unique, tmp_path):
    marker = tmp_path / "marker"
    bundle = new_bundle(["sh", "-c", "echo started > /mnt/marker; sleep 60"],
                        edit=lambda c: c["mounts"].append(
                            {"destination": "/mnt", "type": "bind", "source": str(tmp_path),
                             "options": ["rbind"]}))
    pid_file = tmp_path / "init.pid"
    runc_tool.detached("create", "--bundle", str(bundle), "--pid-file", str(pid_file), unique)
    state = runc_tool.state(unique)
    assert state["status"] == "created"
    assert state["pid"] == int(pid_file.read_text())
    assert os.path.exists(f"/proc/{state['pid']}")
    time.sleep(0.2)     # a short look for what must NOT happen (no event to wait for)
    assert not marker.exists(), "the process ran before start"
    runc_tool("start", unique, check=True)
    wait_until(marker.exists, what="the started process wrote its marker")
    assert marker.read_text() == "started\n"
    assert runc_tool.state(unique)["status"] == "running"
    again = runc_tool("start", unique)
    assert again.returncode != 0 and "already running" in again.stderr


def test_kill_then_delete(runc_tool, new_bundle, unique):
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    busy = runc_tool("delete", unique)
    assert busy.returncode != 0 and "not stopped" in busy.stderr
    runc_tool("kill", unique, "KILL", check=True)
    wait_status(runc_tool, unique, "stopped")
    assert runc_tool.state(unique)["pid"] == 0
    gone = runc_tool("kill", unique, "9")
    assert gone.returncode != 0 and "container not running" in gone.stderr
    runc_tool("delete", unique, check=True)
    missing = runc_tool("state", unique)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    assert not os.path.exists(cgroup_dir(unique))


def test_delete_force_kills_every_process(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    runc_tool.detached("run", "-d", "--bundle", str(bundle), unique)
    pid = runc_tool.state(unique)["pid"]
    def three_processes():
        ps = json.loads(runc_tool("ps", "--format", "json", unique, check=True).stdout)
        return ps if len(ps) >= 3 else None
    ps = wait_until(three_processes, what="sh and its two sleeps run")
    assert pid in ps and len(ps) == 3
    runc_tool("delete", "--force", unique, check=True)
    assert not any(os.path.exists(f"/proc/{p}/stat") and
                   open(f"/proc/{p}/stat").read().split(") ")[1][0] != "Z" for p in ps)
    assert not os.path.exists(cgroup_dir(unique))


def test_kill_all_and_signal_names(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "trap 'echo usr1' USR1; trap 'exit 0' TERM; "
                                     "while true; do sleep 0.05; done"])
    runc_tool.detached("run", "-d", "--bundle", str(bundle), unique)
    runc_tool("kill", "--all", unique, "SIGTERM", check=True)
    wait_status(runc_tool, unique, "stopped")
    bad = runc_tool("kill", unique, "NOTASIGNAL")
    assert bad.returncode != 0


def read_line(stream, timeout=30.0) -> str:
    """The next line on an unbuffered pipe; fails, instead of hanging, if none comes."""
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            raise AssertionError(f"no line within {timeout:.0f}s (so far: {line!r})")
        byte = stream.read(1)
        if not byte:
            break   # end of file: the container and mocker-runc are gone
        line += byte
    return line.decode()


def test_run_forwards_signals(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "trap 'echo got-hup' HUP; trap 'echo got-term; exit 3' TERM; "
                                     "echo ready; while true; do sleep 0.05; done"])
    run = subprocess.Popen(["mocker-runc", "--root", str(runc_tool.root), "run", "-b", str(bundle),
                            unique], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0)
    try:
        assert read_line(run.stdout) == "ready\n"
        run.send_signal(signal.SIGHUP)
        assert read_line(run.stdout) == "got-hup\n"
        run.send_signal(signal.SIGTERM)
        assert read_line(run.stdout) == "got-term\n"
        assert run.wait(10) == 3
    finally:
        run.kill()
        run.wait()


def test_run_survives_a_signal_while_creating(runc_tool, new_bundle, unique):
    # A createRuntime hook runs while `run` is still creating the container; it
    # sends `run` (its parent) SIGTERM. The signal must not kill `run` half-way:
    # it reaches the program once it runs, and everything is cleaned up.
    # (No pid namespace: the kernel drops a signal sent to a namespace's pid 1
    # before that has a handler for it, and this one may come that early.)
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "kill -TERM $PPID"]}

    def edit(config):
        config.setdefault("hooks", {})["createRuntime"] = [hook]
        config["linux"]["namespaces"].remove({"type": "pid"})
    bundle = new_bundle(["sh", "-c", "trap 'echo got-term; exit 3' TERM; "
                                     "while true; do sleep 0.05; done"], edit=edit)
    proc = runc_tool("run", "--bundle", str(bundle), unique)
    # 3 if the shell had set its trap when the signal came, else 128 + SIGTERM
    assert proc.returncode in (3, 128 + signal.SIGTERM), (proc.returncode, proc.stderr)
    assert runc_tool("list", "-q").stdout == ""
    assert not os.path.exists(cgroup_dir(unique))


def test_run_reports_128_plus_signal(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sleep", "60"])
    run = subprocess.Popen(["mocker-runc", "--root", str(runc_tool.root), "run", "-b", str(bundle),
                            unique], stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: runc_tool("state", unique).returncode == 0
                   and runc_tool.state(unique)["status"] == "running", what="running")
        runc_tool("kill", unique, "KILL", check=True)
        assert run.wait(10) == 137
    finally:
        run.kill()
        run.wait()


def test_exec_joins_the_container(runc_tool, new_bundle, unique, tmp_path):
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    inside = runc_tool("exec", unique, "sh", "-c", "ps -o pid,args; hostname", check=True).stdout
    assert "1 sleep 60" in inside and inside.strip().endswith("mocker")
    who = runc_tool("exec", "--user", "1000:1000", "-e", "FOO=bar", "--cwd", "/tmp", unique,
                    "sh", "-c", "id -u; id -g; echo $FOO; pwd; exit 5")
    assert who.returncode == 5
    assert who.stdout.split() == ["1000", "1000", "bar", "/tmp"]
    missing = runc_tool("exec", unique, "no-such-binary")
    assert missing.returncode != 0 and "no-such-binary" in missing.stderr
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", "echo $X > /dev/shm/x; sleep 60"],
                                   "env": ["X=from-process-file"], "cwd": "/"}))
    pid_file = tmp_path / "exec.pid"
    runc_tool.detached("exec", "--process", str(process), "--detach", "--pid-file",
                       str(pid_file), unique)
    pid = int(pid_file.read_text())
    assert pid in json.loads(runc_tool("ps", "--format", "json", unique).stdout)
    out = wait_until(lambda: runc_tool("exec", unique, "cat", "/dev/shm/x").stdout,
                     timeout=120, step=0.05)   # each exec takes seconds in the v2 guest (TCG)
    assert out == "from-process-file\n"


def test_preserve_fds_passes_our_fds_on(runc_tool, new_bundle, unique, tmp_path):
    (tmp_path / "three").write_text("three\n")
    (tmp_path / "four").write_text("four\n")

    def with_fds(*args):
        """mocker-runc ARGS with fd 3 open on ./three and fd 4 on ./four."""
        # subprocess passes fds under their own numbers: a small Python moves
        # them to 3 and 4, then becomes mocker-runc
        move = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                "os.execvp(sys.argv[3], sys.argv[3:])")
        with open(tmp_path / "three") as three, open(tmp_path / "four") as four:
            fds = (three.fileno(), four.fileno())
            return subprocess.run([sys.executable, "-c", move, *map(str, fds), "mocker-runc",
                                   "--root", str(runc_tool.root), *args], pass_fds=fds,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=30)

    bundle = new_bundle(["sh", "-c", "cat <&3; cat <&4"])
    ran = with_fds("run", "--preserve-fds", "2", "--bundle", str(bundle), unique)
    assert (ran.returncode, ran.stdout) == (0, "three\nfour\n"), ran.stderr
    unasked = with_fds("run", "--bundle", str(bundle), unique)
    assert unasked.returncode != 0 and unasked.stdout == ""   # fd 3 is not the container's
    too_many = with_fds("run", "--preserve-fds", "5", "--bundle", str(bundle), unique)
    assert too_many.returncode != 0 and "fd 5 is not open" in too_many.stderr
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    execd = with_fds("exec", "--preserve-fds", "1", unique, "sh", "-c", "cat <&3; cat <&4")
    assert (execd.returncode, execd.stdout) == (1, "three\n"), execd.stderr


def test_pause_and_resume(runc_tool, new_bundle, unique):
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    runc_tool("pause", unique, check=True)
    assert runc_tool.state(unique)["status"] == "paused"
    # The kernel's word for it: freezer.state FROZEN (v1), cgroup.events "frozen 1" (v2).
    assert cgroupfs.frozen(cgroupfs.of_process(runc_tool.state(unique)["pid"], "freezer"))
    runc_tool("resume", unique, check=True)
    assert runc_tool.state(unique)["status"] == "running"
    not_paused = runc_tool("resume", unique)
    assert not_paused.returncode != 0 and "not paused" in not_paused.stderr


def test_delete_force_of_a_paused_container(runc_tool, new_bundle, unique):
    bundle = new_bundle(["sh", "-c", "sleep 60 & wait"])
    runc_tool.detached("run", "-d", "--bundle", str(bundle), unique)
    runc_tool("pause", unique, check=True)
    pids = json.loads(runc_tool("ps", "--format", "json", unique, check=True).stdout)
    runc_tool("delete", "--force", unique, check=True)
    assert not any(os.path.exists(f"/proc/{p}/stat") and
                   open(f"/proc/{p}/stat").read().split(") ")[1][0] != "Z" for p in pids)
    assert not os.path.exists(cgroup_dir(unique))
    assert not os.path.exists(cgroupfs.cgroup_dir(f"/mocker/{unique}", "freezer"))


def test_list_formats(runc_tool, new_bundle, unique):
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    table = runc_tool("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:3] == [unique, str(runc_tool.state(unique)["pid"]), "running"]
    assert runc_tool("list", "-q").stdout == unique + "\n"
    listed = json.loads(runc_tool("list", "--format", "json").stdout)
    assert [c["id"] for c in listed] == [unique] and listed[0]["status"] == "running"


def test_stopped_is_observed_not_remembered(runc_tool, new_bundle, unique):
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    pid = runc_tool.state(unique)["pid"]
    os.kill(pid, signal.SIGKILL)   # behind the runtime's back
    wait_status(runc_tool, unique, "stopped")


def test_a_clone3_child_is_forked_as_python_forks():
    """fork_into_cgroup (clone3 CLONE_INTO_CGROUP) tells Python of the fork as
    os.fork does: the at-fork hooks run in the child (the runtime's signal
    forwarder gives its children their handlers back through one), and the
    child starts in the cgroup."""
    need_root()
    from mocker_runc import linux
    unified = "/sys/fs/cgroup" if cgroupfs.is_v2() else "/sys/fs/cgroup/unified"
    if not os.path.exists(f"{unified}/cgroup.procs"):
        pytest.skip("no cgroup2 hierarchy on this host")
    cgroup = Path(unified, f"mocker-test-clone3-{os.getpid()}")
    cgroup.mkdir()
    read, write = os.pipe()
    armed = [True]     # the hook stays registered for the pytest process: it must go quiet

    def hook():
        if armed[0]:
            os.write(write, b"hook ran\n")
    os.register_at_fork(after_in_child=hook)
    try:
        pid = linux.fork_into_cgroup(str(cgroup))
        if pid == 0:
            os.write(write, Path("/proc/self/cgroup").read_bytes())
            os._exit(0)
        os.waitpid(pid, 0)
        armed[0] = False
        os.close(write)
        said = os.read(read, 4096).decode()
        assert said.startswith("hook ran\n"), said
        assert any(line.startswith("0::") and line.endswith("/" + cgroup.name)
                   for line in said.splitlines()), said
    finally:
        armed[0] = False
        os.close(read)
        cgroup.rmdir()


def test_the_program_starts_with_every_signal_at_its_default(runc_tool, new_bundle, unique, tmp_path):
    """A shell that starts the runtime in the background leaves SIGINT and SIGQUIT
    ignored, and "ignored" survives execve: the container's program must not
    inherit it (Ctrl-C would never reach it). runc's program starts clean too."""
    from tests.conftest import need_tool

    def ignoring():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)

    bundle = new_bundle(["grep", "SigIgn", "/proc/self/status"])
    ours = subprocess.run(["mocker-runc", "--root", str(runc_tool.root), "run", "--bundle", str(bundle),
                           unique], capture_output=True, text=True, preexec_fn=ignoring,
                          stdin=subprocess.DEVNULL, timeout=30)
    theirs = subprocess.run([need_tool("runc"), "--root", str(tmp_path / "runc"), "run", "--bundle",
                             str(bundle), unique], capture_output=True, text=True,
                            preexec_fn=ignoring, stdin=subprocess.DEVNULL, timeout=30)
    assert ours.stdout == theirs.stdout == "SigIgn:\t0000000000000000\n", (ours.stderr, theirs.stderr)
