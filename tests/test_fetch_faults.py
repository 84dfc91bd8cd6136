"""Pulls through a misbehaving registry: corrupt blobs, cut connections, 5xx,
redirects, Ctrl-C, a full disk, and concurrent pulls into one store."""

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from mocker_common.errors import ExitCode
from tests.conftest import need_root
from tests.fixtures import images
from tests.fixtures.faulty_registry import FaultyRegistry
from tests.fixtures.registry import push_image
from tests.test_fetch_pull import assert_all_blobs_verified, fetch, index_entries
from tests.fixtures.wait import wait_until

BIG = 3 << 20   # bytes of incompressible data in the big image's layer


@pytest.fixture(scope="module")
def big_image(registry):
    """An image with one ~3 MB layer (incompressible, deterministic), pushed as big:latest."""
    data = random.Random(7).randbytes(BIG)
    image = images.make_image([images.make_layer([images.file("data.bin", data)])])
    push_image(registry, "big", "latest", image)
    return image


def _layer_digest(image) -> str:
    return image.layers[-1]["digest"]


def _seed_partial(layout: Path, digest: str, data: bytes) -> Path:
    """Leave a partial download behind, as an interrupted pull would."""
    partial = layout / ".mocker" / "partial" / digest.split(":")[1]
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data)
    return partial


def _blob_file(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":")[1]


def test_corrupt_blob_fails_and_stores_nothing(registry, big_image, tmp_path):
    layout = tmp_path / "layout"
    digest = _layer_digest(big_image)
    with FaultyRegistry(registry.url, corrupt={digest}) as proxy:
        result = fetch("-q", "--layout", layout, f"{proxy.host}/big", check=False)
    assert result.returncode == ExitCode.CORRUPT, result.stderr
    assert result.stderr.startswith("mocker-fetch: digest mismatch") and result.stdout == ""
    assert not _blob_file(layout, digest).exists()
    assert not (layout / ".mocker" / "partial" / digest.split(":")[1]).exists()   # bad bytes dropped
    assert index_entries(layout) == {}
    listing = fetch("--list", "--json", "--layout", layout)
    assert json.loads(listing.stdout) == []


def test_dropped_connection_resumes_with_range(registry, big_image, tmp_path):
    layout = tmp_path / "layout"
    with FaultyRegistry(registry.url, drop_after=BIG // 3, drop_times=2) as proxy:
        fetch("--layout", layout, f"{proxy.host}/big")
    ranges = [h.get("Range") for _, path, h in proxy.blob_requests()
              if path.endswith(_layer_digest(big_image))]
    assert ranges[0] is None and len(ranges) == 3
    assert all(r and r.startswith("bytes=") and r != "bytes=0-" for r in ranges[1:])
    assert _blob_file(layout, _layer_digest(big_image)).read_bytes() == \
        big_image.blobs[_layer_digest(big_image)]
    assert f"{proxy.host}/big:latest" in index_entries(layout)


def test_server_errors_are_retried(registry, tmp_path):
    layout = tmp_path / "layout"
    with FaultyRegistry(registry.url, fail=2) as proxy:
        fetch("--layout", layout, f"{proxy.host}/library/busybox")
    assert sum(1 for _ in proxy.blob_requests()) == 2 + 2   # 2 failures, config, layer
    assert_all_blobs_verified(layout)


def test_redirects_do_not_carry_authorization_elsewhere(registry, tmp_path):
    layout = tmp_path / "layout"
    with FaultyRegistry(registry.url, basic=("ann", "s3cret"), redirect=True) as proxy:
        fetch("--layout", layout, "--creds", "ann:s3cret", f"{proxy.host}/layered")
    at_registry = proxy.blob_requests("/v2/")
    at_storage = proxy.blob_requests("/storage/")
    assert len(at_storage) == 4
    assert all("Authorization" in headers for _, _, headers in at_registry)
    assert not any("Authorization" in headers for _, _, headers in at_storage)
    assert_all_blobs_verified(layout)


def test_a_gzip_coding_front_is_undone_before_the_digests(registry, tmp_path):
    # RFC 9110 8.4: Content-Encoding is a coding of the representation, not part of
    # the blob; the digest is of the bytes the registry stored. Blob requests ask
    # for no coding (their bytes are compressed already); this front codes anyway.
    layout = tmp_path / "layout"
    with FaultyRegistry(registry.url, gzip=True) as proxy:
        fetch("--layout", layout, f"{proxy.host}/layered")
    image = registry.images["layered:latest"]
    assert proxy.gzipped == 3 + len(image.layers)      # /v2/, manifest, config, layers
    assert all(h.get("Accept-Encoding") == "identity" for _, _, h in proxy.blob_requests())
    for digest, data in image.blobs.items():
        assert _blob_file(layout, digest).read_bytes() == data
    assert_all_blobs_verified(layout)


def test_interrupted_pull_leaves_nothing_visible_and_resumes(registry, big_image, tmp_path):
    layout = tmp_path / "layout"
    digest = _layer_digest(big_image)
    partial = layout / ".mocker" / "partial" / digest.split(":")[1]
    with FaultyRegistry(registry.url, throttle=0.05) as proxy:
        pull = subprocess.Popen(["mocker-fetch", "--layout", str(layout), f"{proxy.host}/big"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: (partial.exists() and partial.stat().st_size > 256 << 10)
                   or pull.poll() is not None, 30, what="a partial download")
        assert pull.poll() is None, "the pull ended before it could be interrupted"
        pull.send_signal(signal.SIGINT)
        out, err = pull.communicate(timeout=30)
        assert pull.returncode == ExitCode.INTERRUPTED, err
        assert out == "" and err.strip().endswith("mocker-fetch: interrupted")
        assert not _blob_file(layout, digest).exists()
        assert index_entries(layout) == {}
        kept = partial.stat().st_size
        proxy.throttle = 0
        fetch("--layout", layout, f"{proxy.host}/big")
    last = [h.get("Range") for _, path, h in proxy.blob_requests() if path.endswith(digest)][-1]
    assert last == f"bytes={kept}-"
    assert _blob_file(layout, digest).read_bytes() == big_image.blobs[digest]
    assert not partial.exists()


def test_full_disk_is_no_space_and_leaves_nothing(registry, big_image, tmp_path):
    need_root()
    layout = tmp_path / "small"
    layout.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(layout)], check=True)
    try:
        result = fetch("-q", "--layout", layout, f"{registry.host}/big", check=False)
        assert result.returncode == ExitCode.NO_SPACE, result.stderr
        assert "no space left" in result.stderr
        assert index_entries(layout) == {}
        assert not _blob_file(layout, _layer_digest(big_image)).exists()
        assert_all_blobs_verified(layout)
    finally:
        subprocess.run(["umount", str(layout)], check=True)


def test_concurrent_pulls_of_different_images_all_survive(registry, tmp_path):
    layout = tmp_path / "layout"
    names = ["library/busybox:latest", "layered:latest", "configured:latest", "multiarch:oci"]
    pulls = [subprocess.Popen(["mocker-fetch", "-q", "--layout", str(layout), f"{registry.host}/{n}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in names]
    for pull in pulls:
        assert pull.wait(60) == 0, pull.stderr.read()
    assert {f"{registry.host}/{n}" for n in names} <= set(index_entries(layout))
    assert_all_blobs_verified(layout)


def test_layers_download_in_parallel(registry, tmp_path):
    with FaultyRegistry(registry.url, throttle=0.5) as proxy:
        fetch("--layout", tmp_path / "layout", f"{proxy.host}/layered")
    assert proxy.most_blobs_at_once >= 2


def test_two_pulls_of_one_image_download_each_blob_once(registry, big_image, tmp_path):
    layout = tmp_path / "layout"
    digest = _layer_digest(big_image)
    with FaultyRegistry(registry.url, throttle=0.03) as proxy:   # ~1.5 s: the pulls overlap
        pulls = [subprocess.Popen(["mocker-fetch", "-q", "--layout", str(layout), f"{proxy.host}/big"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        for pull in pulls:
            assert pull.wait(60) == 0, pull.stderr.read()
    assert len([p for _, p, _ in proxy.blob_requests() if p.endswith(digest)]) == 1
    assert list(index_entries(layout)) == [f"{proxy.host}/big:latest"]
    assert_all_blobs_verified(layout)
    assert not list((layout / ".mocker" / "partial").iterdir())


def test_server_ignoring_range_restarts_the_blob(registry, big_image, tmp_path):
    layout = tmp_path / "layout"
    digest = _layer_digest(big_image)
    with FaultyRegistry(registry.url, drop_after=BIG // 2, ignore_range=True) as proxy:
        result = fetch("-v", "--layout", layout, f"{proxy.host}/big")
    assert "ignored Range" in result.stderr
    assert _blob_file(layout, digest).read_bytes() == big_image.blobs[digest]


def test_a_complete_partial_from_an_interrupted_pull_is_used(registry, big_image, tmp_path):
    # Interrupted after the last byte, before the rename: the rerun needs no download.
    layout, digest = tmp_path / "layout", _layer_digest(big_image)
    _seed_partial(layout, digest, big_image.blobs[digest])
    with FaultyRegistry(registry.url) as proxy:
        fetch("--layout", layout, f"{proxy.host}/big")
    assert not [p for _, p, _ in proxy.blob_requests() if p.endswith(digest)]
    assert _blob_file(layout, digest).read_bytes() == big_image.blobs[digest]


def test_a_bad_partial_is_downloaded_afresh(registry, big_image, tmp_path):
    layout, digest = tmp_path / "layout", _layer_digest(big_image)
    partial = _seed_partial(layout, digest, b"\0" * (BIG // 2))   # its first half is wrong
    with FaultyRegistry(registry.url) as proxy:
        result = fetch("--layout", layout, f"{proxy.host}/big")
    assert "did not verify; downloading it afresh" in result.stderr
    ranges = [h.get("Range") for _, p, h in proxy.blob_requests() if p.endswith(digest)]
    assert ranges == [f"bytes={BIG // 2}-", None]
    assert _blob_file(layout, digest).read_bytes() == big_image.blobs[digest]
    assert not partial.exists()
