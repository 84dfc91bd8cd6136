"""Listing, removing and garbage-collecting stored images (mocker images / rmi / prune)."""

import json

import pytest

from mocker_common.errors import ExitCode
from mocker_common.mediatypes import REF_NAME
from tests.fixtures import images
from tests.test_fetch_pull import assert_all_blobs_verified, fetch, index_entries


def blob_names(layout) -> set[str]:
    return {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.fixture
def store(registry, tmp_path):
    """A layout holding busybox, layered and configured (which share busybox's layer)."""
    layout = tmp_path / "layout"
    for name in ("library/busybox", "layered", "configured"):
        fetch("-q", "--layout", layout, f"{registry.host}/{name}")
    return layout


def test_list_as_table_and_json(registry, store):
    table = fetch("--list", "--layout", store).stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    layered = registry.images["layered:latest"]
    # As `docker images`: the IMAGE ID is the config's digest, shortened to 12 hex digits.
    assert any(line.split()[:3] == [f"{registry.host}/layered", "latest", layered.config_digest[7:19]]
               for line in table[1:])
    listed = json.loads(fetch("--list", "--json", "--layout", store).stdout)
    by_ref = {image["refname"]: image for image in listed}
    busybox = registry.images["library/busybox:latest"]
    entry = by_ref[f"{registry.host}/library/busybox:latest"]
    assert entry["name"] == f"{registry.host}/library/busybox" and entry["tag"] == "latest"
    assert entry["digest"] == busybox.manifest_digest
    assert entry["size"] == len(busybox.manifest_bytes) + sum(map(len, busybox.blobs.values()))
    assert entry["created"] == busybox.config["created"]
    assert entry["image_id"] == busybox.config_digest


def test_rm_by_image_id_prefix(registry, store):
    configured = registry.images["configured:latest"]
    result = fetch("--rm", "--layout", store, configured.config_digest[7:19], check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Untagged: {registry.host}/configured:latest\n"


def test_rm_untags_and_collects_only_unshared_blobs(registry, store):
    layered = registry.images["layered:latest"]
    busybox_layer = registry.images["library/busybox:latest"].layers[0]["digest"]
    result = fetch("--rm", "--layout", store, f"{registry.host}/layered", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Untagged: {registry.host}/layered:latest\n"
    left = blob_names(store)
    assert busybox_layer in left                       # still used by busybox and configured
    assert layered.manifest_digest not in left
    assert not (set(layered.blobs) - {busybox_layer}) & left
    assert set(index_entries(store)) == {f"{registry.host}/library/busybox:latest",
                                         f"{registry.host}/configured:latest"}
    assert_all_blobs_verified(store)


def test_rm_by_digest_prefix_and_unknown_name(registry, store):
    before = blob_names(store)
    result = fetch("--rm", "--layout", store, "nosuch/image", f"{registry.host}/layered",
                   check=False)
    assert result.returncode == ExitCode.NOT_FOUND
    assert result.stderr.strip() == "mocker-fetch: no such image: nosuch/image"
    assert blob_names(store) == before and len(index_entries(store)) == 3   # nothing removed
    digest = registry.images["configured:latest"].manifest_digest
    fetch("--rm", "--layout", store, digest.split(":")[1][:12])
    assert f"{registry.host}/configured:latest" not in index_entries(store)


def test_prune_drops_unnamed_images_and_orphan_blobs(registry, store):
    index_path = store / "index.json"
    index = json.loads(index_path.read_text())
    for entry in index["manifests"]:
        if entry["annotations"][REF_NAME].endswith("/layered:latest"):
            del entry["annotations"]
    index_path.write_text(json.dumps(index))
    orphan = store / "blobs" / "sha256" / ("0" * 64)
    orphan.write_bytes(b"left over")
    result = fetch("--prune", "--layout", store, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Removed 1 unnamed images and")
    assert not orphan.exists()
    assert registry.images["layered:latest"].manifest_digest not in blob_names(store)
    assert len(index_entries(store)) == 2


def test_listing_a_layout_mocker_did_not_write(tmp_path):
    # Bare-tag ref names are what `skopeo copy … oci:DIR:TAG` writes.
    layout = images.write_layout(tmp_path / "foreign", {"v1": images.busybox_image(),
                                                        "multi": images.platform_index()})
    listed = {i["refname"]: i for i in json.loads(fetch("--list", "--json", "--layout", layout).stdout)}
    assert listed["v1"]["tag"] == "v1" and listed["v1"]["name"] == ""
    assert listed["multi"]["size"] > 1000 and listed["multi"]["created"]
    fetch("--rm", "--layout", layout, "v1")
    assert set(index_entries(layout)) == {"multi"}
    assert_all_blobs_verified(layout)


def test_listing_an_empty_or_missing_store(tmp_path):
    assert json.loads(fetch("--list", "--json", "--layout", tmp_path / "none").stdout) == []
