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

# suite -> the inner pytest selection (paths or node ids, with -k where needed)
SUITES = {
    "runc cgroups": ["tests/test_runc_cgroups.py", "tests/test_runc_cgroups_v2.py"],
    "runc resources": ["tests/test_runc_resources.py"],
    "runc isolation": ["tests/test_runc_isolation.py"],
    "runc lifecycle": ["tests/test_runc_lifecycle.py"],
}
INNER_TIMEOUT = 1500      # seconds for the whole inner run (TCG is several times slower)
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

    def of(self, paths: list[str]) -> list[InnerCase]:
        files = {p.split("::")[0] for p in paths}
        return [c for c in self.cases if c.nodeid.split("::")[0] in files]


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


def run_inner(selection: list[str], out_dir: str, *args: str) -> InnerRun:
    junit = os.path.join(out_dir, "inner.xml")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
            "--strict-markers", "--timeout", str(PER_TEST_TIMEOUT), f"--junitxml={junit}",
            "-o", "junit_family=xunit1", *args, *selection]
    result = vm.run(argv, options=vm.Options(rw=(out_dir,), timeout=INNER_TIMEOUT))
    cases = _cases(junit) if os.path.exists(junit) else []
    return InnerRun(result, cases)


@pytest.fixture(scope="module")
def inner(tmp_path_factory):
    skip_unless_bootable()
    selection = [path for paths in SUITES.values() for path in paths]
    out_dir = str(tmp_path_factory.mktemp("guest-suites"))
    return run_inner(selection, out_dir)


def _report(cases: list[InnerCase]) -> str:
    lines = []
    for case in cases:
        message = "\n      ".join(case.message.splitlines()[-12:])
        lines.append(f"  {case.nodeid}\n      {message}")
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("suite", list(SUITES))
def test_suite_passes_on_a_pure_cgroup_v2_host(inner, suite):
    result = inner.result
    assert inner.cases, (f"the inner pytest reported nothing (exit {result.returncode}) {result.failure}\n"
                         f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    cases = inner.of(SUITES[suite])
    failed = [c for c in cases if c.outcome == "failed"]
    passed = [c for c in cases if c.outcome == "passed"]
    assert not failed, f"{len(failed)} of {len(cases)} failed in the v2 guest:\n{_report(failed)}"
    assert passed, f"nothing of {suite} ran in the v2 guest:\n{_report(cases)}"
