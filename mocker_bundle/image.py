"""Finding an image in an OCI image layout: index.json -> (index ->) manifest -> config.

image-spec image-layout.md: index.json lists manifests (or indexes), each named
by the annotation org.opencontainers.image.ref.name. Every blob read here is
checked against the digest its descriptor gives.
"""

import json
import os
from pathlib import Path

from mocker_common import mediatypes as mt
from mocker_common import contract, paths
from mocker_common.digest import blob_path, check_digest, digest_bytes
from mocker_common.errors import Corrupt, MockerError, NotFound, NotPulled
from mocker_common.reference import parse_reference
from mocker_common.record import FrozenRecord

# uname -m -> the architecture names of the image-spec (Go's GOARCH).
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
           "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}


class ImageSource(FrozenRecord):
    layout: Path
    ref: str | None          # None: the layout's only image


class Image(FrozenRecord):
    """A resolved image: its config and its layers with their uncompressed digests."""

    layout: Path
    ref: str
    manifest_digest: str
    config: dict
    layers: list             # [(layer descriptor, diff_id)], base layer first

    def blob(self, descriptor: dict) -> Path:
        return blob_path(self.layout, descriptor["digest"])


def parse_source(text: str) -> ImageSource:
    """`oci:DIR[:REF]` (skopeo's syntax, mocker-fetch's output) or an image name in the store."""
    text = text.strip()
    if not text:
        raise MockerError("no image given (an image name, or oci:DIR[:REF] on stdin)")
    oci = contract.parse_oci_line(text)
    if oci:
        return ImageSource(Path(oci[0]), oci[1])
    return ImageSource(paths.image_layout(), parse_reference(text).refname)


def default_platform() -> tuple[str, str]:
    machine = os.uname().machine
    return "linux", _GOARCH.get(machine, machine)


def open_image(source: ImageSource, platform: tuple[str, str] | None = None) -> Image:
    """Resolve source to one image manifest (choosing the platform in an index)."""
    layout = source.layout
    try:
        index = json.loads((layout / "index.json").read_bytes())
    except FileNotFoundError:
        if layout == paths.image_layout():     # a new machine: nothing pulled yet
            raise NotPulled(f"image {source.ref} is not in the store (pull it first: "
                            "mocker-fetch)") from None
        raise NotFound(f"{layout} is not an OCI image layout (no index.json)") from None
    except ValueError as err:
        raise Corrupt(f"{layout}/index.json is not valid JSON: {err}") from None
    descriptor, ref = _find_ref(index.get("manifests", []), source, layout)
    manifest_digest = descriptor["digest"]
    manifest = read_json_blob(layout, descriptor)
    while manifest.get("mediaType", descriptor.get("mediaType")) in mt.INDEXES:
        descriptor = _choose_platform(manifest, platform or default_platform(), ref)
        manifest_digest = descriptor["digest"]
        manifest = read_json_blob(layout, descriptor)
    media_type = manifest.get("mediaType", descriptor.get("mediaType"))
    if media_type not in mt.MANIFESTS:
        raise MockerError(f"{ref}: unsupported manifest media type {media_type!r}")
    config = read_json_blob(layout, manifest["config"])
    layers = manifest.get("layers", [])
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(layers):
        raise Corrupt(f"{ref}: manifest has {len(layers)} layers but config has "
                      f"{len(diff_ids)} rootfs.diff_ids")
    return Image(layout, ref, manifest_digest, config, list(zip(layers, diff_ids)))


def _find_ref(manifests: list, source: ImageSource, layout: Path) -> tuple[dict, str]:
    names = [m.get("annotations", {}).get(mt.REF_NAME) for m in manifests]
    if source.ref is None:
        if len(manifests) == 1:
            return manifests[0], names[0] or manifests[0]["digest"]
        shown = ", ".join(n for n in names if n) or "none named"
        raise MockerError(f"{layout} holds {len(manifests)} images ({shown}): "
                          f"say which, as oci:{layout}:REF")
    for wanted in (source.ref, _normalized(source.ref)):
        for manifest, name in zip(manifests, names):
            if name is not None and (name == wanted or _normalized(name) == wanted):
                return manifest, source.ref
    if layout == paths.image_layout():
        raise NotPulled(f"image {source.ref} is not in the store (pull it first: mocker-fetch)")
    raise NotFound(f"image {source.ref} not found in {layout}")


def _normalized(name: str) -> str | None:
    try:
        return parse_reference(name).refname
    except MockerError:
        return None


def _choose_platform(index: dict, platform: tuple[str, str], ref: str) -> dict:
    os_name, arch = platform
    for descriptor in index.get("manifests", []):
        p = descriptor.get("platform", {})
        if p.get("os") == os_name and p.get("architecture") == arch:
            return descriptor
    raise NotFound(f"{ref}: no image for platform {os_name}/{arch} in its index")


def read_json_blob(layout: Path, descriptor: dict) -> dict:
    path = blob_path(layout, descriptor["digest"])
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"blob {descriptor['digest']} is missing from {layout}") from None
    check_digest(descriptor["digest"], digest_bytes(data, descriptor["digest"].split(":")[0]),
                 f"blob {path.name}")
    if "size" in descriptor and descriptor["size"] != len(data):
        raise Corrupt(f"blob {descriptor['digest']}: size {len(data)}, descriptor says "
                      f"{descriptor['size']}")
    try:
        return json.loads(data)
    except ValueError as err:
        raise Corrupt(f"blob {descriptor['digest']} is not valid JSON: {err}") from None
