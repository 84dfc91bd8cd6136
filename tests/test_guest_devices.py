"""Device control on a pure cgroup v2 host: the device tests, run again in the guest.

This hybrid host enforces device rules through the v1 devices controller;
on a v2 host it is the eBPF program mocker-runc attaches to the container's
cgroup. One guest (tests/guest, with a blank virtio disk, /dev/vda) runs the
device tests of both modules, mocker-runc and runc side by side, the
allow-all program that they must catch included. Every inner test must pass:
a skip there (e.g. a v2-only test that found no v2) fails here.
"""

import os
import shlex
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.guest import vm
from tests.guest.fixture import skip_unless_bootable

# one guest for all, under TCG; .ci/run runs slow tests too
pytestmark = [pytest.mark.slow, pytest.mark.interop, pytest.mark.timeout(1500)]

# the device tests, `mocker run`'s, and podman and containerd driving
# mocker-runc (and runc);
# the pure tests of test_runc_devices.py need no kernel: they run on the host
SELECTION = ["tests/test_runc_device_access.py", "tests/test_runc_devices.py",
             "tests/test_mocker_devices.py",
             "tests/test_engines_podman.py", "tests/test_engines_containerd.py",
             "-k", "device_access or mocker_devices or judges or replaces or verifier "
                   "or no_device_beyond_runcs"]


MARK = "----- junit -----"


@pytest.fixture(scope="module")
def inner():
    skip_unless_bootable()
    pytest_cmd = shlex.join([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--durations=0", "--junitxml=/tmp/junit.xml", *SELECTION])
    # the report comes back on stdout, after the inner pytest's own output
    command = f"{pytest_cmd} > /tmp/pytest.out 2>&1; tail -c 4000 /tmp/pytest.out; " \
              f"echo '{MARK}'; cat /tmp/junit.xml"
    env = dict(os.environ, MOCKER_LEAK_CHECK="0")
    result = vm.run(command, env=env, options=vm.Options(disk_mib=16, timeout=1200))
    output, _, xml = result.stdout.partition(MARK)
    cases = {}
    if xml.strip():
        for case in ET.fromstring(xml.strip()).iter("testcase"):
            outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            cases[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return result, output, cases


def test_every_device_test_passes_in_the_v2_guest(inner):
    result, output, cases = inner
    assert cases, f"the guest ran no test: {result.failure or output or result.stderr[-2000:]}"
    bad = {name: outcome for name, outcome in cases.items() if outcome != "passed"}
    engines = [name for name in cases if "::test_no_device_beyond_runcs" in name]
    assert len(engines) == 4, f"podman and containerd, each with both runtimes: {engines}"
    assert not bad, f"{bad}\n{output}"
    # the v2-only ones ran: the program runc loads is ours, update/delete keep no stale one
    for name in ("test_runc_loads_the_very_program_we_load",
                 "test_update_replaces_the_program_and_delete_leaves_none",
                 "test_an_allow_all_program_is_caught",
                 "test_docker_rules_let_a_container_open_what_runc_lets_it",
                 "test_the_program_judges_the_cgroups_processes",
                 "test_a_container_cannot_open_the_hosts_console_or_disk",
                 "test_device_opens_exactly_the_given_device"):
        assert [outcome for case, outcome in cases.items() if case.endswith(f"::{name}")] == \
            ["passed"], name
