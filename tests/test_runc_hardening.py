"""mocker-runc fails closed where runc does: the same config or command line,
run under both, must be refused by both (or give both the same, least, power).

Each case runs runc first (the reference) and mocker-runc second; where runc's
answer differs in form (its exit code, its words), the test says how.
"""

import json
import os
import stat

import pytest

from tests.conftest import need_root, need_tool
from tests.fixtures.bundles import (Runtime, busybox_template, new_bundle,  # noqa: F401
                                    runc_tool)

pytestmark = pytest.mark.interop


@pytest.fixture
def runc(tmp_path):
    need_root()
    tool = Runtime(need_tool("runc"), tmp_path / "runc-state")
    yield tool
    tool.cleanup()


def both(runc, runc_tool):
    return (("runc", runc), ("mocker-runc", runc_tool))


def one_line_refusal(done, *words) -> str:
    """The last line of stderr, asserted to be the only error line and to say words."""
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- hostile container ids -------------------------------------------------------

@pytest.mark.parametrize("cid", ["../escape", "a\nb", "a b", "a/b", ".", ".."])
def test_hostile_container_ids_are_refused_by_both(runc, runc_tool, new_bundle, cid):
    bundle = new_bundle(["true"])
    for name, tool in both(runc, runc_tool):
        done = tool("create", "--bundle", str(bundle), cid)
        one_line_refusal(done, "invalid container" if name == "mocker-runc" else "invalid")
        assert tool.containers() == [], name
    assert not (runc.root.parent / "escape").exists()
