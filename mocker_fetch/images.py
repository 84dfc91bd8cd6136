"""The images in a layout: list them, remove them, collect the blobs left over.

These back `mocker images`, `mocker rmi` and `mocker image prune`. They read any
OCI layout, including one written by `skopeo copy … oci:DIR:REF`.
"""

import json
import logging
from datetime import datetime, timezone

from mocker_common.errors import MockerError, NotFound
from mocker_common.mediatypes import INDEXES, REF_NAME

from .layout import Layout
from .manifest import host_platform
from mocker_common.reference import InvalidReference, parse_reference
from mocker_common.record import FrozenRecord

log = logging.getLogger("mocker.fetch")


class ImageInfo(FrozenRecord):
    refname: str     # the org.opencontainers.image.ref.name annotation, "" if none
    name: str        # "docker.io/library/busybox" ("" if the ref name is a bare tag)
    tag: str         # "latest" ("" if pulled by digest or unnamed)
    digest: str      # the manifest's digest
    size: int        # bytes stored for this image: manifest, config, layers
    created: str     # the config's `created`, RFC 3339, or ""
    short_name: str  # as Docker shows it: "busybox"
    image_id: str    # the config's digest: what Docker calls the IMAGE ID


def _split_refname(refname: str) -> tuple[str, str, str]:
    """(name, tag, short name) of a ref name: a full reference or just a tag."""
    if "/" not in refname:
        return "", refname, ""   # image-spec allows bare tags like "v1.0" (skopeo's default)
    try:
        ref = parse_reference(refname)
    except InvalidReference:
        return refname, "", refname
    return ref.name, "" if ref.digest else (ref.tag or ""), ref.familiar_name


def _image_manifest(layout: Layout, descriptor: dict) -> tuple[dict, int]:
    """The manifest an index.json entry stands for (the host's, if it is an index),
    and the bytes of the manifests on the way to it."""
    try:
        document = json.loads(layout.read_blob(descriptor["digest"]))
        if descriptor.get("mediaType") in INDEXES or "manifests" in document:
            wanted = host_platform()
            entries = document.get("manifests", [])
            chosen = next((e for e in entries if wanted.matches(e.get("platform") or {})),
                          entries[0] if entries else None)
            inner, size = _image_manifest(layout, chosen) if chosen else ({}, 0)
            return inner, descriptor["size"] + size
        return document, descriptor["size"]
    except (MockerError, ValueError, KeyError, TypeError):
        return {}, 0


def describe(layout: Layout, descriptor: dict) -> ImageInfo:
    refname = descriptor.get("annotations", {}).get(REF_NAME, "")
    name, tag, short = _split_refname(refname)
    document, size = _image_manifest(layout, descriptor)
    blobs = [document.get("config", {}), *document.get("layers", [])]
    size += sum(b.get("size", 0) for b in blobs if isinstance(b, dict))
    created = ""
    config_digest = document.get("config", {}).get("digest", "")
    if config_digest and layout.has_blob(config_digest):
        try:
            created = json.loads(layout.read_blob(config_digest)).get("created", "") or ""
        except ValueError:
            pass
    return ImageInfo(refname, name, tag, descriptor.get("digest", ""), size, created, short,
                     config_digest)


def list_images(layout: Layout) -> list[ImageInfo]:
    if not layout.exists():
        return []
    images = [describe(layout, d) for d in layout.read_index()["manifests"]]
    return sorted(images, key=lambda i: (i.name, i.tag, i.refname))


def _matches(info: ImageInfo, wanted: str, as_ref: str | None) -> bool:
    """A user names an image by ref name, by short name[:tag], or by a prefix of its
    manifest digest or of its image id (the config digest), as Docker allows."""
    if info.refname in (wanted, as_ref):
        return True
    bare = wanted.removeprefix("sha256:")
    return len(bare) >= 12 and any(d.partition(":")[2].startswith(bare)
                                   for d in (info.digest, info.image_id) if d)


def remove_images(layout: Layout, names: list[str]) -> tuple[list[str], int, int]:
    """Untag the named images, then delete blobs nothing references.

    Returns (ref names removed, blobs deleted, bytes freed). Nothing is removed
    unless every name matches an image.
    """
    images = list_images(layout)
    chosen: set[str] = set()
    for wanted in names:
        try:
            as_ref = parse_reference(wanted).refname
        except InvalidReference:
            as_ref = None
        hits = {i.refname for i in images if _matches(i, wanted, as_ref)}
        if not hits:
            raise NotFound(f"no such image: {wanted}")
        chosen |= hits
    with layout.gc_lock(exclusive=True):
        layout.untag(chosen)
        count, freed = layout.collect_garbage()
    return sorted(chosen), count, freed


def prune(layout: Layout) -> tuple[int, int, int]:
    """Drop unnamed (dangling) index entries and unreferenced blobs."""
    if not layout.exists():
        return 0, 0, 0
    with layout.gc_lock(exclusive=True):
        dropped = layout.drop_untagged()
        count, freed = layout.collect_garbage()
    return len(dropped), count, freed


def _age(created: str, now: datetime | None = None) -> str:
    """"3 days ago", as `docker images` shows it."""
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created or "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = ((now or datetime.now(timezone.utc)) - when).total_seconds()
    for unit, length in (("year", 31536000), ("month", 2592000), ("week", 604800),
                         ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * length or (unit == "minute" and seconds >= length):
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "less than a minute ago"


def render_table(images: list[ImageInfo]) -> str:
    from tabulate import tabulate  # only listing needs it
    from mocker_common.cli import human_size
    rows = [(i.short_name or i.name or "<none>", i.tag or "<none>",
             (i.image_id or i.digest).partition(":")[2][:12], _age(i.created), human_size(i.size))
            for i in images]
    return tabulate(rows, headers=["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
                    tablefmt="plain")


def render_json(images: list[ImageInfo]) -> str:
    keys = ("refname", "name", "tag", "digest", "image_id", "size", "created")
    return json.dumps([{k: i.as_dict()[k] for k in keys} for i in images], indent=2)
