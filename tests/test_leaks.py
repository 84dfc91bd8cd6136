"""The suite's leak check (tests/fixtures/leaks.py) on a brand-new machine.

Each case runs a small pytest session of its own, with the leak check on, in
private mount and network namespaces with a fresh tmpfs on /run: there, as on
a machine where no network test ever ran, /run/netns does not exist until the
first `ip netns add` bind-mounts it. What the inner session leaves dies with
its namespaces.
"""

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO, need_root, need_tool


def inner_session(tmp_path, body: str) -> subprocess.CompletedProcess:
    """Run one test whose body is `body` under the leak check; its output and exit status."""
    need_root()
    need_tool("ip")
    need_tool("unshare")
    test = tmp_path / "test_inner.py"
    test.write_text("import subprocess\n\n\ndef test_inner(tmp_path):\n" + textwrap.indent(body, "    "))
    env = {key: value for key, value in os.environ.items()
           if key not in ("MOCKER_LEAK_CHECK", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(REPO)
    # A machine where /run/netns was never made: the host's mounts on /run
    # detached (in this mount namespace only), an empty tmpfs in their place.
    script = ("umount -R -l /run 2>/dev/null; umount -R -l /run/netns 2>/dev/null; "
              'mount -t tmpfs tmpfs /run && ip link set lo up && exec "$@"')
    return subprocess.run(
        ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script, "sh",
         sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.fixtures.leaks",
         "--rootdir", str(tmp_path), "-c", "/dev/null", str(test)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def test_first_netns_on_a_new_machine_is_not_a_leak(tmp_path, unique):
    # iproute2 leaves its /run/netns mount point behind: the host's own, not the tests'.
    done = inner_session(tmp_path, f"""
        subprocess.run(["ip", "netns", "add", "{unique}"], check=True)
        subprocess.run(["ip", "netns", "delete", "{unique}"], check=True)
        assert "/run/netns" in open("/proc/self/mounts").read()
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left these behind" not in done.stdout


def test_a_leaked_netns_is_still_reported(tmp_path, unique):
    done = inner_session(tmp_path, f"""
        subprocess.run(["ip", "netns", "add", "{unique}"], check=True)
    """)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert f"network namespaces: {unique}" in done.stdout
    assert f"mounts: /run/netns/{unique}" in done.stdout
    assert "/run/netns," not in done.stdout, "the mount point itself is the host's"


def test_a_leaked_mount_is_still_reported(tmp_path):
    done = inner_session(tmp_path, """
        target = tmp_path / "leaked"
        target.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)
    """)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "mounts: " in done.stdout and "/leaked" in done.stdout
