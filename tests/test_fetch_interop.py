"""Interop, both ways: skopeo and umoci read what mocker-fetch writes, and
mocker-fetch lists, extends and prunes a layout that skopeo wrote."""

import json
import subprocess

import pytest

from tests.conftest import need_tool
from tests.test_fetch_pull import assert_all_blobs_verified, fetch, index_entries

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def pulled(registry, tmp_path_factory):
    """A layout mocker-fetch filled with every kind of fixture image."""
    layout = tmp_path_factory.mktemp("interop") / "layout"
    for name in ("library/busybox:schema2", "multiarch:docker", "layered:latest",
                 "configured:latest"):
        fetch("-q", "--layout", layout, "--platform", "linux/arm64", f"{registry.host}/{name}")
    return layout


@pytest.mark.parametrize("name", ["library/busybox:schema2", "multiarch:docker",
                                  "layered:latest", "configured:latest"])
def test_skopeo_inspects_what_mocker_fetch_wrote(registry, pulled, name):
    need_tool("skopeo")
    refname = f"{registry.host}/{name}"
    out = subprocess.run(["skopeo", "inspect", f"oci:{pulled}:{refname}"],
                         capture_output=True, text=True, check=True).stdout
    inspected = json.loads(out)
    assert inspected["Digest"] == index_entries(pulled)[refname]["digest"]
    assert inspected["Architecture"] == ("arm64" if name.startswith("multiarch") else "amd64")


def test_umoci_unpacks_what_mocker_fetch_wrote(registry, pulled, tmp_path):
    need_tool("umoci")
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{pulled}:{registry.host}/multiarch:docker",
                    str(bundle)], capture_output=True, check=True)
    assert (bundle / "rootfs" / "platform").read_text() == "arm64\n"
    assert (bundle / "rootfs" / "bin" / "busybox").stat().st_size > 100_000
    configured = tmp_path / "configured"
    subprocess.run(["umoci", "unpack", "--image", f"{pulled}:{registry.host}/configured:latest",
                    str(configured)], capture_output=True, check=True)
    assert json.loads((configured / "config.json").read_text())["process"]["args"]


def test_mocker_fetch_uses_a_layout_skopeo_wrote(registry, tmp_path):
    need_tool("skopeo")
    layout = tmp_path / "skopeo"
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                    f"docker://{registry.host}/library/busybox:latest", f"oci:{layout}:busybox"],
                   capture_output=True, check=True)
    listed = json.loads(fetch("--list", "--json", "--layout", layout).stdout)
    assert [(i["refname"], i["tag"]) for i in listed] == [("busybox", "busybox")]
    # Pull into the same layout: the layer skopeo stored is reused, not fetched again.
    result = fetch("--layout", layout, f"{registry.host}/configured")
    assert "Already exists" in result.stderr
    fetch("--rm", "--layout", layout, "busybox")
    assert set(index_entries(layout)) == {f"{registry.host}/configured:latest"}
    assert_all_blobs_verified(layout)
    subprocess.run(["skopeo", "inspect", f"oci:{layout}:{registry.host}/configured:latest"],
                   capture_output=True, check=True)
