"""mocker-fetch against real registries (docker-registry on loopback): every fixture
image, both auth schemes, by tag and by digest, mirrors, and the errors a user sees."""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from mocker_common.errors import ExitCode
from mocker_common.mediatypes import OCI_MANIFEST, REF_NAME
from tests.conftest import need_root
from tests.fixtures.faulty_registry import FaultyRegistry
from tests.fixtures.registry import free_port


def fetch(*args, env=None, check=True):
    """Run mocker-fetch; with check, insist on success (and, for a pull, one stdout line)."""
    result = subprocess.run(["mocker-fetch", *map(str, args)], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
        if not {"--list", "--rm", "--prune"} & set(args):
            assert len(result.stdout.splitlines()) == 1, result.stdout
    return result


def index_entries(layout: Path) -> dict:
    """ref name -> descriptor, from the layout's index.json."""
    index = json.loads((layout / "index.json").read_text())
    return {m.get("annotations", {}).get(REF_NAME): m for m in index["manifests"]}


def stored_blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def assert_all_blobs_verified(layout: Path) -> None:
    """Every file under blobs/ holds exactly the content its name promises."""
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob


def host_image(image):
    """The image of an index that this host's platform selects (the whole image otherwise)."""
    from mocker_fetch.manifest import host_platform
    return image.for_platform("linux", host_platform().architecture) if hasattr(image, "images") else image


@pytest.fixture
def layout(tmp_path):
    return tmp_path / "layout"


SEEDED = ["library/busybox:latest", "library/busybox:schema2", "multiarch:oci",
          "multiarch:docker", "layered:latest", "configured:latest"]


@pytest.mark.parametrize("name", SEEDED)
def test_pull_every_fixture_image(registry, layout, name):
    result = fetch("--layout", layout, f"{registry.host}/{name}")
    refname = f"{registry.host}/{name}"
    assert result.stdout == f"oci:{layout}:{refname}\n"
    entry = index_entries(layout)[refname]
    assert entry["mediaType"] == OCI_MANIFEST
    manifest = json.loads(stored_blob(layout, entry["digest"]))
    image = host_image(registry.images[name])
    # Docker schema2 is stored as OCI, as skopeo does; the blobs are the same bytes.
    assert manifest["mediaType"] == OCI_MANIFEST
    assert [layer["digest"] for layer in manifest["layers"]] == [l["digest"] for l in image.layers]
    if image.media_type == OCI_MANIFEST:
        assert entry["digest"] == image.manifest_digest
    for digest, data in image.blobs.items():
        assert stored_blob(layout, digest) == data
    assert_all_blobs_verified(layout)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def _platform_file(layout: Path, manifest: dict) -> str:
    """/platform as the image's top layer holds it."""
    top = stored_blob(layout, manifest["layers"][-1]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(top))) as tar:
        return tar.extractfile("platform").read().decode()


@pytest.mark.parametrize("tag", ["oci", "docker"])
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_platform_choice_from_index_and_manifest_list(registry, layout, tag, arch):
    fetch("--layout", layout, "--platform", f"linux/{arch}", f"{registry.host}/multiarch:{tag}")
    entry = index_entries(layout)[f"{registry.host}/multiarch:{tag}"]
    assert entry["platform"]["architecture"] == arch
    manifest = json.loads(stored_blob(layout, entry["digest"]))
    assert _platform_file(layout, manifest) == f"{arch}\n"


def test_platform_not_in_index_is_not_found(registry, layout):
    result = fetch("--layout", layout, "--platform", "linux/s390x",
                   f"{registry.host}/multiarch:oci", check=False)
    assert result.returncode == ExitCode.NOT_FOUND
    assert "linux/s390x" in result.stderr and "linux/arm64" in result.stderr
    assert result.stdout == ""


def test_pull_by_digest_names_the_digest(registry, layout):
    digest = registry.images["configured:latest"].manifest_digest
    result = fetch("--layout", layout, f"{registry.host}/configured@{digest}")
    assert result.stdout.strip() == f"oci:{layout}:{registry.host}/configured@{digest}"
    assert index_entries(layout)[f"{registry.host}/configured@{digest}"]["digest"] == digest


def test_default_store_is_mocker_root_images(registry):
    result = fetch("-q", f"{registry.host}/library/busybox")
    store = Path(os.environ["MOCKER_ROOT"]) / "images"
    assert result.stdout == f"oci:{store}:{registry.host}/library/busybox:latest\n"
    assert result.stderr == ""   # -q: no progress
    assert f"{registry.host}/library/busybox:latest" in index_entries(store)


def test_progress_goes_to_stderr_and_verbose_logs_http(registry, layout):
    result = fetch("-v", "--layout", layout, f"{registry.host}/layered")
    assert f"GET http://{registry.host}/v2/layered/manifests/latest" in result.stderr
    assert "Pull complete" in result.stderr
    assert result.stdout.startswith("oci:")


def test_repull_downloads_nothing(registry, layout):
    with FaultyRegistry(registry.url) as proxy:
        fetch("--layout", layout, f"{proxy.host}/layered")
        first = len(proxy.blob_requests())
        again = fetch("--layout", layout, f"{proxy.host}/layered")
    assert first == 4   # config and three layers
    assert len(proxy.blob_requests()) == first
    assert "Already exists" in again.stderr


# ---- authentication --------------------------------------------------------

def test_basic_auth_with_creds(basic_registry, layout):
    reg = basic_registry
    fetch("--layout", layout, "--creds", f"{reg.username}:{reg.password}",
          f"{reg.host}/library/busybox")
    assert f"{reg.host}/library/busybox:latest" in index_entries(layout)


def test_basic_auth_from_docker_config(basic_registry, layout, tmp_path):
    import base64
    reg = basic_registry
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {f"http://{reg.host}": {"auth": auth}}}))
    fetch("--layout", layout, f"{reg.host}/layered", env={"DOCKER_CONFIG": str(tmp_path)})
    fetch("--layout", layout, "--authfile", tmp_path / "config.json", f"{reg.host}/configured")
    assert {f"{reg.host}/layered:latest", f"{reg.host}/configured:latest"} <= set(index_entries(layout))


@pytest.mark.parametrize("creds", [None, "tester:wrong"])
def test_basic_auth_refused(basic_registry, layout, creds):
    args = ["--creds", creds] if creds else []
    result = fetch("-q", "--layout", layout, *args, f"{basic_registry.host}/library/busybox",
                   check=False)
    assert result.returncode == ExitCode.UNAUTHORIZED, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (layout / "index.json").exists() or index_entries(layout) == {}


def test_token_auth_with_creds_gets_one_token_per_scope(token_registry, layout):
    reg = token_registry
    before = len(reg.token_server.requests)
    fetch("--layout", layout, "--creds", f"{reg.username}:{reg.password}", f"{reg.host}/layered")
    asked = reg.token_server.requests[before:]
    assert asked == [(reg.username, ["repository:layered:pull"])]
    assert_all_blobs_verified(layout)


def test_token_auth_anonymous_where_allowed(token_registry, layout):
    result = fetch("--layout", layout, f"{token_registry.host}/public/busybox")
    assert result.stdout.strip().endswith("/public/busybox:latest")


@pytest.mark.parametrize("creds", [None, "tester:wrong"])
def test_token_auth_refused(token_registry, layout, creds):
    args = ["--creds", creds] if creds else []
    result = fetch("--layout", layout, *args, f"{token_registry.host}/library/busybox",
                   check=False)
    assert result.returncode == ExitCode.UNAUTHORIZED, result.stderr
    assert result.stdout == ""


# ---- mirrors -----------------------------------------------------------------

def test_docker_hub_mirror_from_env_and_config(registry, layout):
    # The fixture registry stands in for a Docker Hub mirror (library/busybox is seeded).
    result = fetch("--layout", layout, "busybox", env={"MOCKER_REGISTRY_MIRROR": registry.host})
    assert result.stdout == f"oci:{layout}:docker.io/library/busybox:latest\n"
    config = Path(os.environ["MOCKER_ROOT"]) / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"registry-mirrors": [registry.url]}))
    try:
        result = fetch("--layout", layout, "busybox:schema2")
    finally:
        config.unlink()
    assert result.stdout == f"oci:{layout}:docker.io/library/busybox:schema2\n"


def test_mirror_failure_falls_back_to_the_registry(registry, tmp_path):
    from mocker_fetch.layout import Layout
    from mocker_fetch.progress import Progress
    from mocker_fetch.pull import PullOptions, pull
    from mocker_common.reference import parse_reference
    dead = f"127.0.0.1:{free_port()}"
    ref = parse_reference(f"{registry.host}/library/busybox")
    options = PullOptions(mirrors=[dead, f"http://{registry.host}/nothing-here"])
    assert pull(ref, Layout(tmp_path), options, Progress(quiet=True)) == ref.refname
    assert ref.refname in index_entries(tmp_path)


# ---- what goes wrong ---------------------------------------------------------

def test_unknown_tag_is_not_found(registry, layout):
    result = fetch("-q", "--layout", layout, f"{registry.host}/library/busybox:nope", check=False)
    assert result.returncode == ExitCode.NOT_FOUND
    assert result.stderr.strip() == (f"mocker-fetch: manifest unknown: "
                                     f"{registry.host}/library/busybox:nope")
    assert index_entries(layout) == {}


def test_unreachable_registry(layout):
    result = fetch("-q", "--layout", layout, f"127.0.0.1:{free_port()}/x/y", check=False)
    assert result.returncode == ExitCode.UNREACHABLE
    assert "cannot reach registry" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "MOCKER_REGISTRY_MIRROR" not in result.stderr, "mirrors serve Docker Hub only"


def test_docker_hub_unreachable_says_how_to_pull_offline(layout):
    # A network namespace with nothing but lo: Docker Hub has no name, no route.
    need_root()
    env = {key: value for key, value in os.environ.items() if key != "MOCKER_REGISTRY_MIRROR"}
    result = subprocess.run(["unshare", "--net", "mocker-fetch", "-q", "--layout", layout, "busybox"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == ExitCode.UNREACHABLE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mocker-fetch: cannot reach registry registry-1.docker.io: ")
    assert "export MOCKER_REGISTRY_MIRROR=" in lines[0] and "scripts/local-registry start" in lines[0]
    if layout.exists():
        assert index_entries(layout) == {}, "nothing half-pulled is listed"


def test_invalid_reference_names_the_rule(layout):
    result = fetch("--layout", layout, "Library/BusyBox", check=False)
    assert result.returncode == ExitCode.USAGE
    assert "must be lowercase" in result.stderr
    assert not layout.exists()


def test_schema1_is_refused_clearly(registry, layout):
    schema1 = json.dumps({"schemaVersion": 1, "name": "library/busybox", "tag": "old",
                          "fsLayers": [], "history": []}).encode()
    media = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    with FaultyRegistry(registry.url, manifests={"old": (media, schema1)}) as proxy:
        result = fetch("--layout", layout, f"{proxy.host}/library/busybox:old", check=False)
    assert result.returncode == ExitCode.ERROR
    assert "schema1" in result.stderr


def test_invalid_manifest_is_corrupt_and_names_the_field(registry, layout):
    image = registry.images["library/busybox:latest"]
    bad = dict(image.manifest, layers=[dict(image.layers[0], size="big")])
    with FaultyRegistry(registry.url,
                        manifests={"bad": (OCI_MANIFEST, json.dumps(bad).encode())}) as proxy:
        result = fetch("--layout", layout, f"{proxy.host}/library/busybox:bad", check=False)
    assert result.returncode == ExitCode.CORRUPT
    assert "layers/0/size" in result.stderr
    assert index_entries(layout) == {}


def test_invalid_manifest_whose_blobs_download_is_still_not_stored(registry, layout):
    # Validation runs while the blobs download: the blobs may arrive, the image must not.
    image = registry.images["library/busybox:latest"]
    bad = dict(image.manifest, annotations={"org.example.count": 3})   # must be a string
    with FaultyRegistry(registry.url,
                        manifests={"bad": (OCI_MANIFEST, json.dumps(bad).encode())}) as proxy:
        result = fetch("--layout", layout, f"{proxy.host}/library/busybox:bad", check=False)
    assert result.returncode == ExitCode.CORRUPT, result.stderr
    assert "invalid manifest at annotations/org.example.count" in result.stderr
    assert index_entries(layout) == {}
    bad_digest = hashlib.sha256(json.dumps(bad).encode()).hexdigest()
    assert not (layout / "blobs" / "sha256" / bad_digest).exists()
    assert_all_blobs_verified(layout)


def test_invalid_config_is_corrupt_and_the_image_not_named(registry, layout):
    from tests.fixtures.images import Image, busybox_layer, make_image
    from tests.fixtures.registry import push_image
    good = make_image([busybox_layer()])
    config = dict(good.config, rootfs={"type": "layers"})   # no diff_ids
    config_bytes = json.dumps(config).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest = dict(good.manifest, config=dict(good.manifest["config"], digest=config_digest,
                                               size=len(config_bytes)))
    blobs = {**good.blobs, config_digest: config_bytes}
    push_image(registry, "badconfig", "latest", Image(manifest, config, blobs, good.layer_tars))
    result = fetch("--layout", layout, f"{registry.host}/badconfig", check=False)
    assert result.returncode == ExitCode.CORRUPT, result.stderr
    assert "invalid image config at rootfs" in result.stderr
    assert index_entries(layout) == {}
    manifest_hex = hashlib.sha256(Image(manifest, config, blobs, []).manifest_bytes).hexdigest()
    assert not (layout / "blobs" / "sha256" / manifest_hex).exists()


def test_by_digest_pull_checks_the_manifest_digest(registry, layout):
    image = registry.images["library/busybox:latest"]
    other = registry.images["configured:latest"]
    # A registry that answers a digest request with other content must be caught.
    with FaultyRegistry(registry.url,
                        manifests={image.manifest_digest: (OCI_MANIFEST, other.manifest_bytes)}) as proxy:
        result = fetch("--layout", layout, f"{proxy.host}/library/busybox@{image.manifest_digest}",
                       check=False)
    assert result.returncode == ExitCode.CORRUPT
    assert "digest mismatch" in result.stderr
    assert index_entries(layout) == {}


def test_stored_digest_needs_no_registry(registry, layout):
    digest = registry.images["layered:latest"].manifest_digest
    with FaultyRegistry(registry.url) as proxy:
        fetch("--layout", layout, f"{proxy.host}/layered@{digest}")
    # The proxy is gone: a pinned digest that is stored whole is served from the store.
    again = fetch("--layout", layout, f"{proxy.host}/layered@{digest}")
    assert again.stdout == f"oci:{layout}:{proxy.host}/layered@{digest}\n"
    (layout / "blobs" / "sha256" / registry.images["layered:latest"].layers[-1]["digest"][7:]).unlink()
    missing = fetch("-q", "--layout", layout, f"{proxy.host}/layered@{digest}", check=False)
    assert missing.returncode == ExitCode.UNREACHABLE


def test_layout_path_with_a_colon_is_refused(tmp_path):
    result = fetch("-q", "--layout", tmp_path / "a:b", "127.0.0.1:1/x", check=False)
    assert result.returncode == ExitCode.USAGE and "cannot contain ':'" in result.stderr
    assert not (tmp_path / "a:b").exists()
