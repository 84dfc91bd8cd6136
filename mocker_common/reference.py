"""Image references, normalised as Docker does (a minimal, pure parser).

    busybox                  -> docker.io/library/busybox:latest
    user/app:1.0             -> docker.io/user/app:1.0
    localhost:5000/app       -> localhost:5000/app:latest
    busybox@sha256:...       -> docker.io/library/busybox@sha256:...

The normalised form is the org.opencontainers.image.ref.name that mocker-fetch
writes into the shared image layout, so mocker-bundle finds images by it.
"""

import re

from .errors import MockerError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
# distribution/reference: path components are lowercase alphanumerics with separators.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


def normalize(name: str) -> str:
    """The full form of an image reference (registry/path:tag or registry/path@digest)."""
    rest, digest = name, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
    tag = ""
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DEFAULT_REGISTRY, rest
    if registry in ("docker.io", "index.docker.io"):
        registry = DEFAULT_REGISTRY
        if "/" not in path:
            path = f"library/{path}"
    if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
        raise MockerError(f"invalid image reference {name!r}")
    if tag and not _TAG.match(tag):
        raise MockerError(f"invalid tag in image reference {name!r}")
    if digest:
        return f"{registry}/{path}@{digest}"
    return f"{registry}/{path}:{tag or DEFAULT_TAG}"
