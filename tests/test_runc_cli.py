"""runc's command-line contract as conmon and containerd's shim use it, and
one-line errors that leave nothing behind."""

import json
import os
import subprocess

import pytest

from tests.conftest import need_root
from tests.fixtures.bundles import (busybox_template, leftover_mounts, new_bundle,  # noqa: F401
                                    runc_tool)
from tests.fixtures.wait import wait_until


def mocker_runc(*args, **kwargs):
    return subprocess.run(["mocker-runc", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)


def test_version_in_runcs_format():
    out = mocker_runc("--version").stdout.splitlines()
    assert out[0].startswith("mocker-runc version ") and out[1].startswith("spec: 1.")


def test_help_names_every_verb_and_each_verb_its_flags():
    # argparse builds only the verb on the command line (cli.chosen_verb); help
    # and a wrong verb must still see all of them
    from mocker_runc.verbs import NAMES as VERB_ARGS
    listing = mocker_runc("--help").stdout
    assert all(verb in listing for verb in VERB_ARGS)
    wrong = mocker_runc("--root", "/tmp", "stat", "x")
    assert wrong.returncode == 2 and "invalid choice: 'stat'" in wrong.stderr
    # the word after --root is its value, not the verb
    state = mocker_runc("--root", "run", "--log-format=json", "state", "--help").stdout
    assert "usage: mocker-runc state" in state
    update = mocker_runc("update", "--help").stdout
    assert "--cpu-share" in update and "--blkio-weight" in update


def test_spec_writes_a_runnable_default(tmp_path):
    assert mocker_runc("spec", "--bundle", str(tmp_path)).returncode == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["process"]["args"] == ["sh"] and config["root"]["path"] == "rootfs"
    again = mocker_runc("spec", "-b", str(tmp_path))
    assert again.returncode != 0 and "exists" in again.stderr


def test_features_is_json():
    features = json.loads(mocker_runc("features").stdout)
    assert "createRuntime" in features["hooks"] and "user" in features["linux"]["namespaces"]


def test_errors_go_to_the_log_as_json_lines(tmp_path):
    log = tmp_path / "log.json"
    for form in (["--root", str(tmp_path / "state")], [f"--root={tmp_path / 'state'}"]):
        proc = mocker_runc(*form, "--log", str(log), "--log-format", "json", "state", "nosuch")
        assert proc.returncode != 0
        assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2
    assert lines[-1]["level"] == "error" and "does not exist" in lines[-1]["msg"]
    assert lines[-1]["time"].endswith("Z")


def test_systemd_cgroup_flag_is_taken_by_every_verb(tmp_path):
    # containerd's shim passes it to each call; only create asks systemd anything
    # (test_runc_systemd_units.py: without systemd, create fails in one line)
    proc = mocker_runc("--systemd-cgroup", "--root", str(tmp_path), "list")
    assert proc.returncode == 0 and proc.stdout.startswith("ID")


@pytest.mark.parametrize("problem", ["mount-source", "binary", "cwd-as-file"])
def test_failed_create_leaves_nothing(runc_tool, new_bundle, unique, tmp_path, problem):
    need_root()
    (tmp_path / "afile").write_text("x")
    edits = {
        "mount-source": lambda c: c["mounts"].append(
            {"destination": "/x", "type": "bind", "source": str(tmp_path / "missing"),
             "options": ["rbind"]}),
        "binary": lambda c: None,
        "cwd-as-file": lambda c: c["process"].update(cwd="/etc/passwd"),
    }
    args = ["no-such-program"] if problem == "binary" else ["true"]
    bundle = new_bundle(args, edit=edits[problem])
    proc = runc_tool("create", "--bundle", str(bundle), unique)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert {"mount-source": "missing", "binary": "no-such-program",
            "cwd-as-file": "/etc/passwd"}[problem] in proc.stderr
    assert not (runc_tool.root / unique).exists()
    assert leftover_mounts(bundle) == []
    assert not os.path.exists(f"/sys/fs/cgroup/pids/mocker/{unique}")
    assert runc_tool("list", "-q").stdout == ""


def too_big_a_filter(no_new_privileges: bool):
    """A valid profile whose BPF program exceeds the kernel's 4096 instructions: it
    builds, and only loading it fails (before the user changes without
    no_new_privs, as the last step before execve with it)."""
    rules = [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]} for i in range(6000)]

    def edit(config):
        config["process"]["noNewPrivileges"] = no_new_privileges
        config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    return edit


NEVER_STARTS = {   # problem -> (args, edit of config.json, what the error names)
    "missing binary": (["/bin/no-such-program"], None, "no-such-program"),
    "not executable": (["/etc/passwd"], None, "Exec format error"),
    "createRuntime hook": (["true"], lambda c: c.update(hooks={"createRuntime": [
        {"path": "/bin/false", "args": ["false"]}]}), "createRuntime hook /bin/false"),
    "seccomp load, early": (["true"], too_big_a_filter(False), "cannot load the filter"),
    "seccomp load, late": (["true"], too_big_a_filter(True), "cannot load the filter"),
}


def assert_nothing_left(runc_tool, bundle, cid):
    assert not (runc_tool.root / cid).exists()
    assert leftover_mounts(bundle) == []
    assert not os.path.exists(f"/sys/fs/cgroup/pids/mocker/{cid}")
    assert runc_tool("list", "-q").stdout == ""


def never_starting_bundle(new_bundle, problem):
    args, edit, named = NEVER_STARTS[problem]
    bundle = new_bundle(args, edit=edit)
    os.chmod(bundle / "rootfs/etc/passwd", 0o755)   # a text file without #!: ENOEXEC
    return bundle, named


# `create` cannot know what happens after `start`: only the problems it can see.
@pytest.mark.parametrize("verb, problem", [
    *(("run -d", problem) for problem in NEVER_STARTS),
    *(("create", problem) for problem in ("missing binary", "createRuntime hook",
                                          "seccomp load, early"))])
def test_container_that_never_starts_fails_and_leaves_nothing(runc_tool, new_bundle, unique,
                                                              verb, problem):
    need_root()
    bundle, named = never_starting_bundle(new_bundle, problem)
    proc = runc_tool(*verb.split(), "--bundle", str(bundle), unique)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and named in proc.stderr, proc.stderr
    assert_nothing_left(runc_tool, bundle, unique)


@pytest.mark.parametrize("problem", ["not executable", "seccomp load, late"])
def test_start_reports_a_program_that_never_ran(runc_tool, new_bundle, unique, problem):
    """Failures after create, in the init's last steps: `start` says why, and the
    container is stopped (as with runc, `delete` then removes it)."""
    need_root()
    bundle, named = never_starting_bundle(new_bundle, problem)
    runc_tool.detached("create", "--bundle", str(bundle), unique)
    proc = runc_tool("start", unique)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and named in proc.stderr, proc.stderr
    assert runc_tool.state(unique)["status"] == "stopped"
    runc_tool("delete", unique, check=True)
    assert_nothing_left(runc_tool, bundle, unique)


def test_missing_bundle_and_duplicate_id(runc_tool, new_bundle, unique, tmp_path):
    need_root()
    proc = runc_tool("create", "--bundle", str(tmp_path / "nothing"), unique)
    assert proc.returncode != 0 and "config.json" in proc.stderr
    runc_tool.detached("run", "-d", "--bundle", str(new_bundle(["sleep", "60"])), unique)
    twice = runc_tool("create", "--bundle", str(new_bundle(["true"])), unique)
    assert twice.returncode != 0 and "exists" in twice.stderr
    assert runc_tool.state(unique)["status"] == "running"


def test_text_log_and_debug_lines(tmp_path):
    log = tmp_path / "log.txt"
    proc = mocker_runc("--root", str(tmp_path), "--log", str(log), "--debug", "kill", "nosuch")
    assert proc.returncode != 0
    lines = log.read_text().splitlines()
    assert lines[0].startswith('time="') and "level=debug" in lines[0]
    assert "level=error" in lines[-1] and "does not exist" in lines[-1]


def test_verbs_on_a_stopped_container_say_not_running(runc_tool, new_bundle, unique):
    need_root()
    runc_tool.detached("create", "--bundle", str(new_bundle(["true"])), unique)
    runc_tool("kill", unique, "KILL", check=True)   # a created container can be killed
    wait_until(lambda: runc_tool.state(unique)["status"] == "stopped", 30, what=f"{unique} stopped")
    for verb in (["exec", unique, "true"], ["pause", unique], ["kill", unique]):
        proc = runc_tool(*verb)
        assert proc.returncode != 0 and "container not running" in proc.stderr, verb
    start = runc_tool("start", unique)
    assert start.returncode != 0 and "stopped" in start.stderr
