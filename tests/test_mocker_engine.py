"""The engine behind bin/mocker (python3 -m mocker_engine), on hand-made bundles.

These drive real containers through a real runtime (runc, or mocker-runc), but
not the image pipeline: a bundle here is busybox-static plus a config.json, so
the monitor, records, ps, logs, stop and rm are tested on their own.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mocker_engine import logs, records, table
from mocker_engine.records import Record
from mocker_common.errors import ExitCode
from tests.conftest import REPO, need_root, need_tool
from tests.fixtures.wait import wait_until

RUNTIME = os.environ.get("MOCKER_TEST_RUNTIME", "runc")


def engine(*args, check=True, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MOCKER_RUNTIME": RUNTIME}
    done = subprocess.run([sys.executable, "-m", "mocker_engine", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def hand_bundle(directory: Path, args: list[str], container_id: str) -> Path:
    """busybox-static as rootfs, `runc spec` edited: no terminal, no network hooks."""
    rootfs = directory / "rootfs"
    for sub in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "/bin/busybox", rootfs / "bin/busybox"], check=True)
    for applet in ("sh", "echo", "sleep", "cat", "ls", "true"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    subprocess.run([need_tool("runc"), "spec", "--bundle", directory], check=True)
    config = json.loads((directory / "config.json").read_text())
    config["process"].update(terminal=False, args=args)
    config["root"]["readonly"] = False
    config["linux"]["cgroupsPath"] = f"/mocker/{container_id}"
    # What mocker-bundle writes, so that `mocker-bundle --remove` accepts it.
    config["annotations"] = {"org.mocker.network": "none",
                             "org.mocker.ports": "127.0.0.1:8080:80/tcp"}
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture
def container(tmp_path, unique):
    """create(args, detach) -> Record-like dict; everything removed afterwards."""
    need_root()
    made = []

    def create(args, detach=True, name=None, rm=False):
        """As bin/mocker runs it: `engine run OPTIONS BUNDLE`, the bundle named by the id."""
        name = name or unique
        cid = os.urandom(32).hex()
        made.append(cid)
        bundle = hand_bundle(tmp_path / cid, args, cid)
        run = engine("run", "--image", "busybox", "--name", name, *(["--rm"] if rm else []),
                     *(["--detach"] if detach else []), str(bundle), check=False)
        return cid, run

    yield create
    for cid in made:
        engine("rm", "--force", cid, check=False)
        subprocess.run([RUNTIME, "--root", os.environ["MOCKER_RUN"] + "/runc", "delete", "--force",
                        cid], capture_output=True)


def ps_rows(*flags) -> list[list[str]]:
    """`ps` output split into columns (3+ spaces apart), header dropped."""
    import re
    lines = engine("ps", *flags).stdout.splitlines()
    return [re.split(r"\s{3,}", line) for line in lines[1:]]


def test_foreground_exit_code_and_output(container):
    cid, done = container(["sh", "-c", "echo out; echo err >&2; exit 3"], detach=False)
    assert done.returncode == 3
    assert done.stdout == "out\n" and done.stderr == "err\n"
    row = next(r for r in ps_rows("-a") if r[0] == cid[:12])
    assert row[4].startswith("Exited (3)")
    assert row[5] == "127.0.0.1:8080->80/tcp"


def test_create_then_monitor_for_scripts(tmp_path, unique):
    """run's two halves, as scripts may call them: create prints an id, monitor runs it."""
    need_root()
    cid = engine("create", "--image", "busybox", "--name", unique).stdout.strip()
    try:
        bundle = hand_bundle(tmp_path / "bundle", ["sh", "-c", "echo made; exit 4"], cid)
        done = engine("monitor", "--bundle", str(bundle), cid, check=False)
        assert done.returncode == 4 and done.stdout == "made\n", done.stderr
        assert next(r for r in ps_rows("-a") if r[0] == cid[:12])[4].startswith("Exited (4)")
    finally:
        engine("rm", "--force", cid, check=False)


def test_detached_ps_logs_stop(container, unique):
    cid, done = container(["sh", "-c", "echo hello; while true; do sleep 0.1; done"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == cid
    rows = ps_rows()
    assert [r[0] for r in rows] == [cid[:12]]
    assert rows[0][4].startswith("Up ") and rows[0][-1] == unique
    assert rows[0][2] == '"sh -c echo hello; w…"'
    assert engine("logs", unique).stdout == "hello\n"
    comm = subprocess.run(["pgrep", "-x", "mocker monitor"], capture_output=True, text=True)
    assert comm.stdout.split(), "the monitor is named 'mocker monitor'"
    started = time.monotonic()
    assert engine("stop", "-t", "1", cid[:6]).stdout.strip() == cid[:6]
    assert 1 <= time.monotonic() - started < 8, "sh as pid 1 ignores SIGTERM: SIGKILL after 1 s"
    assert ps_rows() == []
    assert ps_rows("-a")[0][4].startswith("Exited (137)")


def test_logs_follow_and_tail(container, unique):
    cid, _ = container(["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done"])
    followed = engine("logs", "-f", unique)
    assert followed.stdout.split() == ["line1", "line2", "line3", "line4", "line5"]
    assert engine("logs", "--tail", "2", unique).stdout.split() == ["line4", "line5"]


def test_killed_monitor_is_noticed_and_removable(container, unique):
    cid, _ = container(["sh", "-c", "while true; do sleep 0.1; done"])
    record = json.loads(Path(os.environ["MOCKER_ROOT"], "engine", cid, "record.json").read_text())
    os.kill(record["monitor_pid"], signal.SIGKILL)
    wait_until(lambda: not _alive(record["monitor_pid"]), what="the monitor is gone")
    assert ps_rows()[0][4].startswith("Up "), "the container outlives its monitor"
    inspected = json.loads(engine("inspect", unique).stdout)[0]
    assert inspected["State"]["Running"] and inspected["State"]["Pid"] > 0
    pid = inspected["State"]["Pid"]
    assert engine("rm", "-f", unique).returncode == 0
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert ps_rows("-a") == []
    assert not Path(os.environ["MOCKER_ROOT"], "engine", cid).exists()
    state = subprocess.run([RUNTIME, "--root", os.environ["MOCKER_RUN"] + "/runc", "state", cid],
                           capture_output=True, text=True)
    assert state.returncode != 0, "the runtime forgot the container"


def test_container_exits_while_monitor_dead(container, unique):
    cid, _ = container(["sh", "-c", "sleep 1"])
    record = json.loads(Path(os.environ["MOCKER_ROOT"], "engine", cid, "record.json").read_text())
    os.kill(record["monitor_pid"], signal.SIGKILL)
    status = wait_until(lambda: next((s for s in [ps_rows("-a")[0][4]] if s.startswith("Exited")), ""),
                        timeout=15)
    assert status.startswith("Exited (255)"), status  # as docker reports a lost shim
    engine("rm", unique)


def _alive(pid: int) -> bool:
    """pid runs (a zombie has ended: its parent just has not reaped it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_rm_refuses_running_and_names_are_unique(container, unique):
    container(["sh", "-c", "while true; do sleep 0.1; done"])
    refused = engine("rm", unique, check=False)
    assert refused.returncode == ExitCode.CONFLICT and "is running" in refused.stderr
    taken = engine("create", "--image", "busybox", "--name", unique, check=False)
    assert taken.returncode == 125 and "already in use" in taken.stderr
    assert len(taken.stderr.strip().splitlines()) == 1


def test_unknown_and_ambiguous_references(unique):
    missing = engine("stop", "nosuchname", check=False)
    assert missing.returncode == ExitCode.NOT_FOUND and "no such container: nosuchname" in missing.stderr
    prefix = unique[2:]  # 8 hex digits
    made = [Record(id=f"{prefix}{digit}".ljust(64, "0"), name=f"{unique}{digit}", image="busybox",
                   created=time.time()) for digit in "12"]
    for record in made:
        records.record_dir(record.id).mkdir(parents=True)
        records.save(record)
    try:
        ambiguous = engine("inspect", prefix, check=False)
        assert ambiguous.returncode == 1 and "ambiguous" in ambiguous.stderr
        assert f"{unique}1" in ambiguous.stderr and f"{unique}2" in ambiguous.stderr
        by_prefix = json.loads(engine("inspect", prefix + "2").stdout)
        assert by_prefix[0]["Name"] == f"/{unique}2"
        by_name = json.loads(engine("inspect", f"{unique}1").stdout)
        assert by_name[0]["Id"] == made[0].id
    finally:
        for record in made:
            records.remove(record.id)


def test_start_again_logs_both_runs(container, unique):
    cid, done = container(["sh", "-c", "echo run"], detach=False)
    assert done.stdout == "run\n"
    assert engine("logs", unique).stdout == "run\n", "a foreground run is logged too"
    assert engine("start", unique).returncode == 0
    wait_until(lambda: engine("logs", unique).stdout == "run\nrun\n", timeout=10, step=0.1)
    assert engine("logs", unique).stdout == "run\nrun\n"


def test_rm_flag_removes_after_exit(container, unique):
    cid, done = container(["true"], detach=False, rm=True)
    assert done.returncode == 0, done.stderr
    assert ps_rows("-a") == []
    assert not Path(os.environ["MOCKER_ROOT"], "engine", cid).exists()


def test_command_not_found_is_127(container):
    cid, done = container(["/no/such/program"])
    assert done.returncode in (125, 127), done.stderr
    assert "did not start" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# --- pure pieces ---

@pytest.mark.parametrize("seconds, text", [
    (0.2, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (61, "About a minute"),
    (180, "3 minutes"), (3600, "About an hour"), (7200, "2 hours"), (3 * 86400, "3 days"),
    (15 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years")])
def test_human_duration(seconds, text):
    assert table.human_duration(seconds) == text


def test_status_and_ports_columns():
    record = Record(id="a" * 64, name="web", image="busybox", created=0, status="exited",
                    exit_code=0, finished=98, ports=["8080:80/tcp", "127.0.0.1:5353:53/udp"])
    assert table.status_text(record, 100) == "Exited (0) 2 seconds ago"
    assert table.ports_text(record) == "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"
    assert table.port_lines(record) == ["80/tcp -> 0.0.0.0:8080", "53/udp -> 127.0.0.1:5353"]


@pytest.mark.parametrize("content, n, expected", [
    (b"a\nb\nc\n", 2, b"b\nc\n"), (b"a\nb\nc", 2, b"b\nc"), (b"a\nb\n", 5, b"a\nb\n"),
    (b"a\nb\n", 0, b""), (b"", 3, b"")])
def test_tail_offset(tmp_path, content, n, expected):
    path = tmp_path / "log"
    path.write_bytes(content)
    with open(path, "rb") as f:
        f.seek(logs.tail_offset(f, n))
        assert f.read() == expected


def test_concurrent_creates_of_one_name(unique):
    """Names are reserved under a lock: of five racing creates, one wins."""
    command = [sys.executable, "-m", "mocker_engine", "create", "--image", "busybox",
               "--name", unique]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(5)]
    results = [(r.wait(), r.stdout.read(), r.stderr.read()) for r in racers]
    winners = [out.strip() for code, out, _ in results if code == 0]
    assert len(winners) == 1
    assert all(code == 125 and "already in use" in err for code, _, err in results if code)
    engine("rm", winners[0])


def test_format_templates():
    record = Record(id="b" * 64, name="web", image="busybox", created=0, status="running",
                    started=40, command=["httpd", "-f"])
    assert table.format_row("{{.Names}}\\t{{.ID}} {{.Status}}", record, 100) == \
        f"web\t{'b' * 12} Up About a minute"
    document = {"State": {"Pid": 7, "Running": True}, "Name": "/web", "Args": ["-f"]}
    assert table.fill_paths("{{.State.Pid}} {{ .Name }} {{.State.Running}} {{.Args}} [{{.No.Such}}]",
                            document) == '7 /web true ["-f"] []'
