"""scripts/local-registry gives an offline machine a registry holding busybox."""

import json
import os
import subprocess

import pytest

from tests.conftest import REPO, need_tool
from tests.fixtures.registry import free_port
from tests.fixtures import images


@pytest.mark.interop
def test_start_seed_then_skopeo_pulls_busybox(tmp_path):
    need_tool("skopeo")
    env = dict(os.environ, LOCAL_REGISTRY_PORT=str(free_port()), LOCAL_REGISTRY_DIR=str(tmp_path / "reg"))
    script = str(REPO / "scripts" / "local-registry")
    try:
        subprocess.run([script, "start"], env=env, check=True, timeout=60)
        subprocess.run([script, "seed"], env=env, check=True, timeout=60, capture_output=True)
        host = f"127.0.0.1:{env['LOCAL_REGISTRY_PORT']}"
        copy = subprocess.run(["skopeo", "copy", "--src-tls-verify=false",
                               f"docker://{host}/library/busybox:latest", f"oci:{tmp_path}/out:busybox"],
                              capture_output=True, text=True, timeout=120)
        assert copy.returncode == 0, copy.stderr
        index = json.loads((tmp_path / "out" / "index.json").read_text())
        assert index["manifests"][0]["digest"] == images.busybox_image().manifest_digest
    finally:
        subprocess.run([script, "stop"], env=env, timeout=30)
    assert not (tmp_path / "reg" / "registry.pid").exists()
