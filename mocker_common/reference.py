"""Image references as Docker users write them, e.g. `busybox`, `user/app:1.0`,
`host:5000/team/app@sha256:…`, parsed into registry, repository, tag and digest.

The grammar is the one docker/distribution's `reference` package defines:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] component ( "/" component )*
    domain     := host [ ":" port ]      (only if it has a "." or ":", or is "localhost")
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}

Names without a domain live on Docker Hub (`docker.io`); one-component Docker
Hub names live under `library/` (the official images). Everything here is pure:
no I/O, so it is easy to test and to read.
"""

import re

from .digest import parse_digest
from .errors import ExitCode, MockerError
from .record import FrozenRecord

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"   # where docker.io's API really answers
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = re.compile(rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$")


class InvalidReference(MockerError):
    """A reference that breaks the grammar; the message names the rule."""

    def __init__(self, text: str, rule: str):
        super().__init__(f"invalid reference {text!r}: {rule}", ExitCode.USAGE)


class Reference(FrozenRecord):
    registry: str            # "docker.io", "127.0.0.1:5000"
    repository: str          # "library/busybox"
    tag: str | None = None   # None when pulled only by digest
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name: registry/repository."""
        return f"{self.registry}/{self.repository}"

    @property
    def refname(self) -> str:
        """How index.json names the image (org.opencontainers.image.ref.name).

        A digest pins the content, so a by-digest pull is named by its digest
        (even if a tag was given too, as Docker does).
        """
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or DEFAULT_TAG}"

    @property
    def manifest_key(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host:port that serves the registry API for this reference."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def familiar_name(self) -> str:
        """The short form Docker shows: `busybox`, `user/app`, `host:5000/a/b`."""
        if self.registry != DOCKER_HUB:
            return self.name
        return self.repository.removeprefix("library/")

    def __str__(self) -> str:
        return self.refname


def _split_domain(name: str) -> tuple[str, str]:
    """Split a name into (registry, repository) the way Docker does."""
    first, sep, rest = name.partition("/")
    is_domain = sep and ("." in first or ":" in first or first == "localhost"
                         or first != first.lower())
    if not is_domain:
        first, rest = DOCKER_HUB, name
    if first == "index.docker.io":
        first = DOCKER_HUB
    if first == DOCKER_HUB and "/" not in rest:
        rest = f"library/{rest}"
    return first, rest


def _split_tag_digest(text: str) -> tuple[str, str | None, str | None]:
    """Split `name[:tag][@digest]`; a ":" after the last "/" starts the tag."""
    remainder, at, digest = text.partition("@")
    if not at:
        digest = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    tag = None
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
    return remainder, tag, digest


def parse_reference(text: str) -> Reference:
    """Parse an image reference; raise InvalidReference naming the broken rule."""
    if not text or not text.strip():
        raise InvalidReference(text, "the reference is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(text, "a reference cannot contain spaces")
    if "://" in text:
        raise InvalidReference(text, "write the registry as host[:port], without a URL scheme")
    name, tag, digest = _split_tag_digest(text)
    if tag is not None and not _TAG.match(tag):
        raise InvalidReference(text, "a tag is 1-128 letters, digits, '_', '.' or '-', "
                                     "not starting with '.' or '-'")
    if digest is not None:
        try:
            parse_digest(digest)
        except MockerError:
            raise InvalidReference(text, "a digest is sha256:<64 lowercase hex digits>") from None
    registry, repository = _split_domain(name)
    _check_name(text, registry, repository)
    return Reference(registry, repository, tag if tag or digest else DEFAULT_TAG, digest)


def _check_name(text: str, registry: str, repository: str) -> None:
    if not _DOMAIN.match(registry):
        raise InvalidReference(text, f"registry {registry!r} is not a valid host[:port]")
    for component in repository.split("/"):
        if not component:
            raise InvalidReference(text, "a repository name has no empty path components "
                                         "(no leading, trailing or double '/')")
        if component != component.lower():
            raise InvalidReference(text, "a repository name must be lowercase")
        if not _COMPONENT.match(component):
            raise InvalidReference(text, f"path component {component!r} must be lowercase "
                                         "letters and digits, separated by '.', '_', '__' or '-'")
    if len(f"{registry}/{repository}") > MAX_NAME_LENGTH:
        raise InvalidReference(text, f"a name is at most {MAX_NAME_LENGTH} characters")
