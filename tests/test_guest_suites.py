"""The suites where cgroups matter, run again on a pure cgroup v2 host.

Users' machines are cgroup v2 only; the development hosts are hybrid. This
module boots ONE guest (tests/guest: Debian's kernel, cgroup_no_v1=all, every
controller enabled) and runs an inner pytest there over the selections below,
with runc side by side where a test runs both. Each outer test then reports
one suite: its inner failures with their messages, and a failure too when the
guest ran nothing of it (all skipped would prove nothing).

Inside the guest these test modules see a v2 host: the tests that need one
(`v2_host`, MOCKER_GUEST) run, the v1-only ones skip.
"""

import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import pytest

from tests.guest import vm
from tests.guest.fixture import skip_unless_bootable

# suite -> the inner pytest selection (paths or node ids). EVERY_RUN boots in
# every CI run (.ci/run); FULL only when asked for with `-m slow` (see
# docs/testing-v2.md: what runs where, and why).
EVERY_RUN = {
    "runc cgroups": ["tests/test_runc_cgroups.py", "tests/test_runc_cgroups_v2.py"],
    "cgroup namespaces": ["tests/test_runc_isolation.py::test_the_container_sees_only_its_own_cgroup"],
    "runc lifecycle (pause, kill --all)": [
        "tests/test_runc_lifecycle.py::test_pause_and_resume",
        "tests/test_runc_lifecycle.py::test_delete_force_of_a_paused_container",
        "tests/test_runc_lifecycle.py::test_kill_all_and_signal_names",
        "tests/test_runc_resources.py::test_update_takes_runcs_flags",
    ],
    "mocker run": [
        "tests/test_mocker.py::test_detached_web_server",
        "tests/test_mocker.py::test_memory_limit_kills_a_hog",
        "tests/test_mocker.py::test_pids_and_cpu_limits",
    ],
    # what only a v2 host shows, each beside runc (the whole module is in FULL)
    "runc and mocker-runc side by side (v2 only)": [
        "tests/test_runc_cgroups_side_by_side.py::test_nested_cgroup_namespaces_see_their_own_root",
        "tests/test_runc_cgroups_side_by_side.py::test_the_cgroup_mount_and_cgroup_are_the_ones_runc_gives",
        "tests/test_runc_cgroups_side_by_side.py::test_events_stats_give_the_kernels_figures",
    ],
    # the takeovers of issue 17, one of each kind (all of them: FULL, ~9 min in the guest)
    "host attacks": [
        "tests/test_runc_host_attacks.py::test_image_cannot_overwrite_the_runtime_binary[mocker-runc-run-root]",
        "tests/test_runc_host_attacks.py::test_exec_process_cannot_be_reached_from_inside[mocker-runc-user]",
        "tests/test_runc_host_attacks.py::test_fake_dev_null_is_refused_for_masking",
    ],
    # a v2 host's kernel (Debian's 6.1) beside this one's: the same answers as runc
    "runtime hardening (fds, seccomp)": [
        "tests/test_runc_hardening.py::test_no_fd_or_cwd_from_outside_in_run_and_exec",
        "tests/test_seccomp_docker.py::test_dockers_profile_gives_what_runc_gives",
    ],
    # the --explain script's cgroup v2 branch (no device program: no CAP_MKNOD)
    "--explain": ["tests/test_explain.py::test_network_none_and_the_container_s_limits"],
}
FULL = {
    "runc and mocker-runc side by side": ["tests/test_runc_cgroups_side_by_side.py"],
    "runc resources": ["tests/test_runc_resources.py"],
    "runc isolation": ["tests/test_runc_isolation.py"],
    "runc lifecycle": ["tests/test_runc_lifecycle.py"],
    "runc and mocker-runc, same view": ["tests/test_runc_interop.py"],
    "mocker run, all": ["tests/test_mocker.py"],
    "podman with mocker-runc": ["tests/test_engines_podman.py"],
    "containerd with mocker-runc": ["tests/test_engines_containerd.py"],
    "host attacks, all": ["tests/test_runc_host_attacks.py"],
    "--explain and -v, all": ["tests/test_explain.py"],
    "runtime hardening, all": ["tests/test_runc_hardening.py", "tests/test_seccomp_docker.py",
                               "tests/test_runc_seccomp.py"],
}
INNER_TIMEOUT = 1800      # seconds for the whole inner run (TCG is several times slower)
PER_TEST_TIMEOUT = 300


@dataclass
class InnerCase:
    nodeid: str
    outcome: str          # passed, failed, skipped
    message: str = ""


@dataclass
class InnerRun:
    result: vm.Result
    cases: list[InnerCase] = field(default_factory=list)

    def of(self, selection: list[str]) -> list[InnerCase]:
        """The cases a selection (files or node ids) picked."""
        def picked(case: InnerCase, item: str) -> bool:
            if "::" not in item:
                return case.nodeid.split("::")[0] == item
            return case.nodeid == item or case.nodeid.startswith(item + "[")
        return [c for c in self.cases if any(picked(c, item) for item in selection)]


def _cases(junit_xml: str) -> list[InnerCase]:
    cases = []
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        # junit's classname is the module path in dots: tests.test_x
        module = case.get("classname", "").replace(".", "/") + ".py"
        nodeid = f"{module}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = (child.get("message") or "") + "\n" + (child.text or "")
            elif child.tag == "skipped":
                outcome = "skipped"
                message = child.get("message") or ""
        cases.append(InnerCase(nodeid, outcome, message.strip()))
    return cases


def run_inner(selection: list[str], out_dir: str, *args: str, stream: bool = False) -> InnerRun:
    junit = os.path.join(out_dir, "inner.xml")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            "--strict-markers", "--timeout", str(PER_TEST_TIMEOUT), f"--junitxml={junit}",
            "-o", "junit_family=xunit1", *args, *selection]
    # The guest is a machine of its own: the leak check sees only this run, always on.
    env = {**os.environ, "MOCKER_LEAK_CHECK": "1"}
    result = vm.run(argv, env=env, options=vm.Options(rw=(out_dir,), timeout=INNER_TIMEOUT), stream=stream)
    cases = _cases(junit) if os.path.exists(junit) else []
    return InnerRun(result, cases)


def _selection(suites: dict) -> list[str]:
    return [path for paths in suites.values() for path in paths]


def _streaming(config) -> bool:
    """With -s, the inner pytest's output shows as it comes."""
    return config.getoption("capture") == "no"


@pytest.fixture(scope="module")
def every_run(request, tmp_path_factory):
    skip_unless_bootable()
    return run_inner(_selection(EVERY_RUN), str(tmp_path_factory.mktemp("guest-every-run")),
                     stream=_streaming(request.config))


@pytest.fixture(scope="module")
def full(request, tmp_path_factory):
    # Behind `-m slow` for real: a plain run (CI's) has no -m and skips it.
    if "slow" not in (request.config.getoption("markexpr") or "").replace("not slow", ""):
        pytest.skip("the full v2 guest run takes long: run it with -m slow (docs/testing-v2.md)")
    skip_unless_bootable()
    return run_inner(_selection(FULL), str(tmp_path_factory.mktemp("guest-full")),
                     stream=_streaming(request.config))


def _report(cases: list[InnerCase]) -> str:
    lines = []
    for case in cases:
        message = "\n      ".join(case.message.splitlines()[-12:])
        lines.append(f"  {case.nodeid}\n      {message}")
    return "\n".join(lines)


def check_suite(inner: InnerRun, suite: str, paths: list[str]) -> None:
    result = inner.result
    assert inner.cases, (f"the inner pytest reported nothing (exit {result.returncode}) {result.failure}\n"
                         f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    cases = inner.of(paths)
    failed = [c for c in cases if c.outcome == "failed"]
    passed = [c for c in cases if c.outcome == "passed"]
    assert not failed, f"{len(failed)} of {len(cases)} failed in the v2 guest:\n{_report(failed)}"
    assert passed, f"nothing of {suite} ran in the v2 guest:\n{_report(cases)}"


# the first test pays for the boot and the whole inner run (pytest-timeout counts setup)
@pytest.mark.slow
@pytest.mark.timeout(INNER_TIMEOUT + 300)
@pytest.mark.parametrize("suite", list(EVERY_RUN))
def test_on_a_pure_cgroup_v2_host(every_run, suite):
    check_suite(every_run, suite, EVERY_RUN[suite])


@pytest.mark.slow
@pytest.mark.timeout(INNER_TIMEOUT + 300)
@pytest.mark.parametrize("suite", list(FULL))
def test_all_of_it_on_a_pure_cgroup_v2_host(full, suite):
    check_suite(full, suite, FULL[suite])


@pytest.mark.slow
@pytest.mark.timeout(INNER_TIMEOUT + 300)
def test_the_guest_run_left_nothing_behind(every_run):
    # the guest is a machine of its own: its leak check (tests/fixtures/leaks.py) sees only this run
    out = every_run.result.stdout
    assert "left these behind" not in out, out[out.find("left these behind") - 40:][:2000]
