"""One boot of the guest with systemd as PID 1, for everything that needs a systemd host.

This machine runs no systemd; the cases that need one (mocker-runc
--systemd-cgroup, podman and containerd in systemd mode, each beside runc)
skip here and run inside the guest of tests/guest, booted once with
Options.init="systemd" (everything there is several times slower: TCG).
SYSTEMD_SELECTION is the focused list; the whole set of those modules runs
with -m slow, by hand: tests/guest/run --systemd -- python3 -m pytest -q FILES.
"""

import os

import pytest

from tests.guest import vm

# The focused selection CI runs (each case under runc and mocker-runc).
SYSTEMD_SELECTION = [
    "tests/test_runc_systemd.py",
    "tests/test_engines_systemd.py",
]


@pytest.mark.slow
@pytest.mark.interop
@pytest.mark.timeout(1800)   # ~6 min on an idle 2-core machine, ~14 under load (TCG)
def test_systemd_cases_pass_in_a_systemd_booted_guest(request, guest):
    # Behind `-m slow` for real, as the full v2 run: ~9 min idle, and CI's budget is ~20.
    if "slow" not in (request.config.getoption("markexpr") or "").replace("not slow", ""):
        pytest.skip("the systemd guest takes ~9 min: run it with -m slow (docs/testing-v2.md)")
    result = guest(["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "",
                    *SYSTEMD_SELECTION],
                   env={**os.environ, "MOCKER_LEAK_CHECK": "0"},
                   options=vm.Options(init="systemd", timeout=1500))
    summary = result.stdout.strip().splitlines()[-1:] or [result.failure or result.stderr[-2000:]]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary[0] and "skipped" not in summary[0], summary
