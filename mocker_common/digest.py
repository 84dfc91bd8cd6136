"""Content digests as the OCI image-spec defines them ("algorithm:hex")."""

import hashlib
import re
from pathlib import Path

from .errors import Corrupt, MockerError

# image-spec descriptor.md: the registered algorithms and their hex lengths.
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")
CHUNK = 1 << 20


def parse_digest(digest: str) -> tuple[str, str]:
    """Split "sha256:abc…" into ("sha256", "abc…"), refusing anything else."""
    match = _DIGEST_RE.fullmatch(digest or "")
    if not match or len(match.group(2)) != _HEX_LENGTH[match.group(1)]:
        raise MockerError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return match.group(1), match.group(2)


def new_hasher(digest: str):
    """A hashlib object for the algorithm the digest names."""
    algorithm, _ = parse_digest(digest)
    return hashlib.new(algorithm)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def digest_file(path: Path, algorithm: str = "sha256") -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


def check_digest(expected: str, actual: str, what: str) -> None:
    """Raise Corrupt unless the two digests are equal."""
    if expected != actual:
        raise Corrupt(f"digest mismatch for {what}: expected {expected}, got {actual}")


def blob_path(layout: Path, digest: str) -> Path:
    """Where an OCI image layout keeps a blob: blobs/<alg>/<hex>."""
    algorithm, hexpart = parse_digest(digest)
    return Path(layout) / "blobs" / algorithm / hexpart
