"""The fixtures themselves are spec-correct: a real registry speaks the
distribution API, a third-party client (skopeo) reads every fixture image,
and both auth schemes refuse anonymous pulls and accept the right user."""

import json
import subprocess

import pytest
import requests

from tests.conftest import need_tool
from tests.fixtures import images


def skopeo_inspect(registry, ref, *extra):
    need_tool("skopeo")
    result = subprocess.run(["skopeo", "inspect", "--tls-verify=false", *extra,
                             f"docker://{registry.host}/{ref}"], capture_output=True, text=True, timeout=60)
    return result


def test_registry_speaks_the_distribution_api(registry):
    assert requests.get(f"{registry.url}/v2/").status_code == 200
    catalog = requests.get(f"{registry.url}/v2/_catalog").json()["repositories"]
    assert {"library/busybox", "multiarch", "layered", "configured"} <= set(catalog)
    tags = requests.get(f"{registry.url}/v2/library/busybox/tags/list").json()["tags"]
    assert sorted(tags) == ["latest", "schema2"]


@pytest.mark.interop
@pytest.mark.parametrize("ref", ["library/busybox:latest", "library/busybox:schema2",
                                 "layered:latest", "configured:latest"])
def test_skopeo_reads_every_image(registry, ref):
    result = skopeo_inspect(registry, ref, "--raw")
    assert result.returncode == 0, result.stderr
    image = registry.images[ref]
    assert json.loads(result.stdout) == image.manifest
    config = skopeo_inspect(registry, ref, "--config")
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout)["rootfs"]["diff_ids"] == image.diff_ids


@pytest.mark.interop
@pytest.mark.parametrize("ref", ["multiarch:oci", "multiarch:docker"])
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_skopeo_chooses_each_platform(registry, ref, arch):
    result = skopeo_inspect(registry, ref, "--override-arch", arch, "--override-os", "linux")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    expected = registry.images[ref].for_platform("linux", arch)
    assert info["Architecture"] == arch
    assert info["Digest"] == registry.images[ref].manifest_digest   # skopeo names the index
    assert info["Layers"] == [layer["digest"] for layer in expected.layers]
    # The two platforms differ in content, so a wrong choice is visible.
    assert info["Layers"][-1] == expected.layers[-1]["digest"]


def test_configured_image_carries_every_field(registry):
    config = registry.images["configured:latest"].config["config"]
    for key in ("Entrypoint", "Cmd", "Env", "WorkingDir", "User", "ExposedPorts", "Volumes",
                "Labels", "StopSignal"):
        assert key in config


def test_basic_auth_refuses_anonymous_and_accepts_the_user(basic_registry):
    url = f"{basic_registry.url}/v2/library/busybox/manifests/latest"
    anonymous = requests.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    wrong = requests.get(url, auth=(basic_registry.username, "wrong"))
    assert wrong.status_code == 401
    good = requests.get(url, auth=(basic_registry.username, basic_registry.password),
                        headers={"Accept": images.busybox_image().media_type})
    assert good.status_code == 200
    assert good.headers["Docker-Content-Digest"] == basic_registry.images["library/busybox:latest"].manifest_digest


def _challenge(header: str) -> dict:
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer"
    return dict(part.split("=", 1) for part in params.replace('"', "").split(","))


def test_token_auth_flow(token_registry):
    url = f"{token_registry.url}/v2/library/busybox/manifests/latest"
    first = requests.get(url)
    assert first.status_code == 401
    challenge = _challenge(first.headers["WWW-Authenticate"])
    assert challenge["scope"] == "repository:library/busybox:pull"
    params = {"service": challenge["service"], "scope": challenge["scope"]}
    # Anonymous: a token comes back, but it grants nothing for library/.
    anon = requests.get(challenge["realm"], params=params).json()["token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {anon}"}).status_code == 401
    # The user: the token opens the manifest.
    token = requests.get(challenge["realm"], params=params,
                         auth=(token_registry.username, token_registry.password)).json()["token"]
    good = requests.get(url, headers={"Authorization": f"Bearer {token}",
                                      "Accept": images.busybox_image().media_type})
    assert good.status_code == 200
    # Wrong credentials get no token at all.
    assert requests.get(challenge["realm"], params=params, auth=(token_registry.username, "x")).status_code == 401


def test_token_auth_lets_anonymous_pull_public_images(token_registry):
    url = f"{token_registry.url}/v2/public/busybox/manifests/latest"
    challenge = _challenge(requests.get(url).headers["WWW-Authenticate"])
    token = requests.get(challenge["realm"], params={"service": challenge["service"],
                                                     "scope": challenge["scope"]}).json()["token"]
    response = requests.get(url, headers={"Authorization": f"Bearer {token}",
                                          "Accept": images.busybox_image().media_type})
    assert response.status_code == 200


@pytest.mark.interop
@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_skopeo_authenticates(request, which):
    reg = request.getfixturevalue(which)
    anonymous = skopeo_inspect(reg, "library/busybox:latest")
    assert anonymous.returncode != 0
    good = skopeo_inspect(reg, "library/busybox:latest", "--creds", f"{reg.username}:{reg.password}")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["Digest"] == reg.images["library/busybox:latest"].manifest_digest


def test_layout_writer_is_readable_by_skopeo(tmp_path):
    need_tool("skopeo")
    layout = images.write_layout(tmp_path / "layout", {"busybox": images.busybox_image(),
                                                       "multi": images.platform_index()})
    result = subprocess.run(["skopeo", "inspect", f"oci:{layout}:busybox"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Digest"] == images.busybox_image().manifest_digest
