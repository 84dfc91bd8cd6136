"""A pull is a copy: from a registry (the source) into an OCI layout (the destination).

    1. GET the manifest by tag or digest; if it is an index, choose the
       platform's entry and GET that manifest; check every digest.
    2. Check a manifest not stored before against the image-spec rules.
    3. Download the config and the layers not yet stored, in parallel, each
       streamed into a partial file, hashed on the way, renamed into blobs/
       only when digest and size match.
    4. Validate the config against the manifest, store the manifest, and only
       then name it in index.json: a half-pulled or invalid image is never listed.
"""

import errno
import json
import os
import logging
import threading
from typing import TYPE_CHECKING

from mocker_common.digest import check_digest, digest_bytes, parse_digest
from mocker_common.errors import Corrupt, ExitCode, MockerError, Unreachable
from mocker_common import mediatypes as mt

from . import manifest
from .auth import lookup_credentials
from .credentials import Credentials
from .layout import Layout
from .progress import Progress
from mocker_common.reference import DOCKER_HUB, Reference
from mocker_common.record import FrozenRecord
from .config import MIRROR_ENV
if TYPE_CHECKING:
    from .registry import Registry   # imports requests: only once the registry is needed
from .sink import Sink

log = logging.getLogger("mocker.fetch")

# Said with "cannot reach registry" for Docker Hub when no mirror is set: the
# offline route of the README (scripts/local-registry serves busybox).
OFFLINE_HINT = (f"offline? pull through a mirror: export {MIRROR_ENV}=HOST:PORT, e.g. 127.0.0.1:5000 "
                "after scripts/local-registry start && scripts/local-registry seed")

# Docker schema2 -> OCI: what skopeo does when it copies into an oci: layout,
# and what umoci needs to read it. The blobs stay the same; only names change.
_TO_OCI = {
    mt.DOCKER_MANIFEST: mt.OCI_MANIFEST,
    mt.DOCKER_CONFIG: mt.OCI_CONFIG,
    mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
    mt.DOCKER_LAYER_FOREIGN: mt.OCI_LAYER_NONDIST_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": mt.OCI_LAYER,
}


class PullOptions(FrozenRecord):
    platform: manifest.Platform | None = None   # None: the host's
    insecure: bool = False
    credentials: Credentials | None = None      # None: look in the auth file
    authfile: str | None = None
    mirrors: tuple[str, ...] = ()                # tried first, in order
    jobs: int = 4                                # parallel blob downloads


def pull(ref: Reference, layout: Layout, options: PullOptions, progress: Progress) -> str:
    """Pull ref into layout; return the ref name it is stored under."""
    layout.create()
    with layout.gc_lock(exclusive=False):
        if ref.digest and _is_complete(layout, layout.lookup(ref.refname)):
            progress.message(f"{ref.refname}: already stored (a digest never changes)")
            return ref.refname
        descriptor = _from_first_endpoint(ref, layout, options, progress)
        layout.tag(ref.refname, descriptor)   # last: now the image exists
    return ref.refname


def _is_complete(layout: Layout, descriptor: dict | None) -> bool:
    """Is this stored image whole: its manifest, config and every layer?"""
    if not descriptor or not layout.has_blob(descriptor["digest"]):
        return False
    document = manifest.load(layout.read_blob(descriptor["digest"]), "stored manifest")
    blobs = [document.get("config", {}), *document.get("layers", [])]
    return all(layout.has_blob(b.get("digest", ""), b.get("size")) for b in blobs)


def _from_first_endpoint(ref, layout, options, progress) -> dict:
    """Try each mirror, then the registry itself; report the registry's error."""
    for mirror in options.mirrors:
        try:
            registry = _connect(ref, options, mirror)
            return copy_image(registry, ref, layout, options, progress)
        except MockerError as err:
            log.warning("mirror %s: %s; trying %s", mirror, err, ref.registry)
    try:
        return copy_image(_connect(ref, options), ref, layout, options, progress)
    except Unreachable as err:
        from .registry import NoConnection   # loaded already: _connect imported it
        if not isinstance(err, NoConnection) or ref.registry != DOCKER_HUB or options.mirrors:
            raise
        raise NoConnection(f"{err} ({OFFLINE_HINT})") from None


def _connect(ref: Reference, options: PullOptions, mirror: str | None = None) -> "Registry":
    from .registry import Registry   # a pull by a digest stored whole never gets here
    host = mirror.split("://", 1)[-1].rstrip("/") if mirror else ref.api_host
    credentials = options.credentials
    if credentials is None:
        credentials = lookup_credentials(host if mirror else ref.registry, options.authfile)
    base_url = mirror if mirror and "://" in mirror else None
    return Registry(host, insecure=options.insecure, credentials=credentials, base_url=base_url,
                    jobs=options.jobs)


class Resolved(FrozenRecord):
    """What the manifest requests found: the image manifest, and its index if any."""
    data: bytes               # the manifest's bytes, as the registry sent them
    document: dict            # ... parsed
    media_type: str
    parent_index: dict | None = None  # the index or manifest list it was chosen from
    platform: dict | None = None      # the index entry's platform


def copy_image(registry: "Registry", ref: Reference, layout: Layout, options: PullOptions,
               progress: Progress) -> dict:
    """Copy one image; return the index.json descriptor of its stored manifest."""
    found = _resolve(registry, ref, options)
    stored = _stored_form(found)
    digest = digest_bytes(stored)
    new = not layout.has_blob(digest, len(stored))
    if new:   # what is stored was valid when stored
        _validate_manifests(found)
    blobs = [found.document["config"], *found.document["layers"]]
    _fetch_blobs(registry, ref.repository, blobs, layout, progress, options.jobs)
    if new:
        config = manifest.load(layout.read_blob(blobs[0]["digest"]), "config")
        manifest.validate(config, manifest.CONFIG_SCHEMA, "image config")
        manifest.check_config(config, found.document)
        layout.put_blob(digest, stored)
    descriptor = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(stored)}
    if found.platform:
        descriptor["platform"] = found.platform
    progress.message(f"Digest: {digest}")
    return descriptor


def _validate_manifests(found: Resolved) -> None:
    if found.parent_index is not None:
        manifest.validate(found.parent_index, manifest.INDEX_SCHEMA, "image index")
    manifest.validate(found.document, manifest.MANIFEST_SCHEMA, "manifest")


def _resolve(registry: "Registry", ref: Reference, options: PullOptions) -> Resolved:
    """GET the manifest for ref, through an index if there is one."""
    fetched = registry.get_manifest(ref.repository, ref.manifest_key)
    _check_manifest_digest(fetched.data, ref.digest or fetched.digest_header, ref)
    document = manifest.load(fetched.data, "manifest")
    if manifest.kind(document, fetched.media_type) == "manifest":
        return Resolved(fetched.data, document, document.get("mediaType") or fetched.media_type)
    wanted = options.platform or manifest.host_platform()
    entry = manifest.select_platform(document, wanted)
    log.info("index: chose %s for %s", entry["digest"], wanted)
    inner = registry.get_manifest(ref.repository, entry["digest"])
    _check_manifest_digest(inner.data, entry["digest"], ref)
    inner_document = manifest.load(inner.data, "manifest")
    if manifest.kind(inner_document, inner.media_type) != "manifest":
        raise MockerError(f"{ref}: an index entry for {wanted} is not an image manifest")
    return Resolved(inner.data, inner_document,
                    inner_document.get("mediaType") or inner.media_type,
                    document, entry.get("platform"))


def _check_manifest_digest(data: bytes, expected: str | None, ref: Reference) -> None:
    """A by-digest pull must get exactly those bytes; a header digest must match too."""
    if not expected:
        return
    try:
        algorithm = parse_digest(expected)[0]
    except MockerError:
        return   # an odd Docker-Content-Digest header is not ours to judge
    check_digest(expected, digest_bytes(data, algorithm), f"the manifest of {ref}")


def _stored_form(found: Resolved) -> bytes:
    """The manifest bytes to store: as received if OCI, converted if Docker schema2."""
    if found.media_type != mt.DOCKER_MANIFEST:
        return found.data
    document = found.document
    try:
        converted = dict(document, mediaType=mt.OCI_MANIFEST)
        converted["config"] = _renamed(document["config"])
        converted["layers"] = [_renamed(layer) for layer in document["layers"]]
    except (KeyError, TypeError, AttributeError):
        manifest.validate(document, manifest.MANIFEST_SCHEMA, "manifest")   # names the rule
        raise
    return json.dumps(converted, indent=3).encode()


def _renamed(descriptor: dict) -> dict:
    media_type = descriptor.get("mediaType", "")
    return dict(descriptor, mediaType=_TO_OCI.get(media_type, media_type))


def _fetch_blobs(registry, repository, descriptors, layout, progress, jobs) -> None:
    """Download the blobs not yet stored, `jobs` at a time; stop all on the first error."""
    missing = []
    for descriptor in descriptors:
        present = layout.has_blob(descriptor["digest"], descriptor["size"])
        progress.start(descriptor["digest"], descriptor["size"], present)
        if not present and descriptor["digest"] not in [d["digest"] for d in missing]:
            missing.append(descriptor)
    if not missing:
        return
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait  # only when needed
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="blob")
    try:
        futures = [pool.submit(_fetch_blob, registry, repository, d, layout, progress, cancel)
                   for d in missing]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()   # re-raise the first error here, in the main thread
    except BaseException:
        cancel.set()          # Ctrl-C or an error: the other downloads stop at their next chunk
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _fetch_blob(registry, repository, descriptor, layout, progress, cancel,
                first_try=True) -> None:
    digest, size = descriptor["digest"], descriptor["size"]
    with layout.partial(digest) as (path, file, hasher):
        if layout.has_blob(digest, size):   # another pull stored it while we waited
            progress.done(digest)
            return
        resumed = file.tell()
        if resumed:
            log.info("%s: resuming after %d bytes", digest[:19], resumed)
            progress.advance(digest, resumed)
        sink = Sink(file, hasher)
        try:
            registry.download_blob(repository, digest, size, sink,
                                   lambda n: progress.advance(digest, n), cancel)
            sink.sync()   # on disk before it gets its final name
            actual = f"{parse_digest(digest)[0]}:{sink.hasher.hexdigest()}"
            layout.commit_partial(path, digest, actual, size)
        except Corrupt:
            os.ftruncate(file.fileno(), 0)   # bad bytes are not worth resuming
            if not (resumed and first_try):
                raise
            log.warning("%s: the resumed download did not verify; downloading it afresh",
                        digest[:19])
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            os.ftruncate(file.fileno(), 0)   # a full disk: give the space back
            raise MockerError(f"no space left on device under {layout.path}",
                              ExitCode.NO_SPACE) from None
        else:
            progress.done(digest)
            return
        finally:
            sink.wait_for_flush()   # the file closes when this block ends
    progress.advance(digest, -sink.written)
    _fetch_blob(registry, repository, descriptor, layout, progress, cancel, first_try=False)
