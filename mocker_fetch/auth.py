"""Authentication the way a registry asks for it: by a WWW-Authenticate challenge.

A registry answers an unauthenticated request with 401 and a challenge
(distribution spec, "token authentication"):

    WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry",scope="repository:library/busybox:pull"
    WWW-Authenticate: Basic realm="registry"

For Bearer we ask the realm for a token (anonymously, or with Basic
credentials) and send `Authorization: Bearer <token>`; tokens are kept per
scope, so each repository is authorised once per run. For Basic we send the
credentials themselves. Credentials come from --creds, or from --authfile /
~/.docker/config.json (what `docker login` writes): a credential helper named
in its `credHelpers` or `credsStore` (see credhelper.py), else its `auths`.
"""

import base64
import json
import logging
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

from mocker_common.errors import MockerError, Unauthorized
from mocker_common.reference import DOCKER_HUB
from mocker_common.record import FrozenRecord

from .credentials import Credentials

log = logging.getLogger("mocker.fetch")

# Docker stores Docker Hub credentials under its old v1 URL.
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                    "registry-1.docker.io")
MAX_TOKEN_ANSWER = 1 << 20   # bytes: a token answer is a small JSON object
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


class Challenge(FrozenRecord):
    scheme: str                 # "bearer" or "basic", lowercased
    params: dict[str, str]      # realm, service, scope, error, …


def parse_challenge(header: str) -> Challenge:
    """Parse one WWW-Authenticate header value (RFC 7235 auth-scheme + auth-params)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def parse_creds(text: str) -> Credentials:
    """--creds USER:PASS (the password may itself contain ':')."""
    username, sep, password = text.partition(":")
    if not sep or not username:
        raise MockerError("--creds must be USER:PASSWORD")
    return Credentials(username, password)


def docker_config_path() -> Path:
    """~/.docker/config.json, or $DOCKER_CONFIG/config.json as Docker honours."""
    base = os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"
    return Path(base) / "config.json"


def _host_of(key: str) -> str:
    """"https://host:5000/v1/" -> "host:5000" (auths keys may be URLs)."""
    key = re.sub(r"^[a-z]+://", "", key)
    return key.split("/", 1)[0]


def lookup_credentials(registry: str, authfile: Path | None = None) -> Credentials | None:
    """Find registry's credentials the way Docker does: its `credHelpers` entry
    first, else the `credsStore` helper, else the `auths` map of the auth file."""
    path = Path(authfile) if authfile else docker_config_path()
    try:
        config = json.loads(path.read_text())
        auths = config.get("auths", {})
        helpers = config.get("credHelpers", {})
        store = config.get("credsStore")
    except FileNotFoundError:
        if authfile:
            raise MockerError(f"auth file {path} does not exist") from None
        return None
    except (OSError, ValueError, AttributeError) as err:
        raise MockerError(f"cannot read auth file {path}: {err}") from None
    wanted = _DOCKER_HUB_KEYS if registry == DOCKER_HUB else (registry,)
    helper = _first_match(helpers, wanted) or store
    if helper:
        if not isinstance(helper, str):
            raise MockerError(f"auth file {path}: a credential helper's name must be a string")
        from .credhelper import helper_credentials   # runs a program: only when named
        # Docker asks helpers for Docker Hub under its old v1 URL, for others by host.
        return helper_credentials(helper, _DOCKER_HUB_KEYS[0] if registry == DOCKER_HUB
                                  else registry)
    entry = _first_match(auths, wanted)
    return _entry_credentials(entry, path) if isinstance(entry, dict) else None


def _first_match(entries: dict, wanted: tuple[str, ...]):
    """The value of an auth-file map (auths, credHelpers) whose key names a wanted host."""
    if not isinstance(entries, dict):
        return None
    return next((value for key, value in entries.items()
                 if _host_of(key) in wanted or key in wanted), None)


def _entry_credentials(entry: dict, path: Path) -> Credentials | None:
    if entry.get("username"):
        return Credentials(entry["username"], entry.get("password", ""))
    if entry.get("auth"):
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:
            raise MockerError(f"auth file {path}: an `auth` value is not base64") from None
        return Credentials(username, password)
    return None


class Authenticator:
    """Answers challenges and remembers the Authorization header per scope."""

    def __init__(self, transport, credentials: Credentials | None, host: str = "the registry"):
        self.transport = transport
        self.host = host
        self.credentials = credentials
        self._headers: dict[str, str] = {}
        self._lock = threading.Lock()

    def header_for(self, scope: str) -> str | None:
        """The Authorization header already earned for scope, if any."""
        with self._lock:
            return self._headers.get(scope)

    def answer(self, challenge_header: str, scope: str) -> str:
        """Turn a 401's challenge into an Authorization header for scope."""
        challenge = parse_challenge(challenge_header)
        if challenge.scheme == "basic":
            if not self.credentials:
                raise Unauthorized(f"{self.host} requires a login (use --creds or --authfile)")
            header = self.credentials.basic_header()
        elif challenge.scheme == "bearer":
            header = "Bearer " + self._fetch_token(challenge, scope)
        else:
            raise Unauthorized(f"unsupported authentication scheme {challenge.scheme!r}")
        with self._lock:
            self._headers[scope] = header
        return header

    def _fetch_token(self, challenge: Challenge, scope: str) -> str:
        """Ask the token server named by realm for a token (distribution token spec)."""
        realm = challenge.params.get("realm")
        if not realm:
            raise Unauthorized("the registry's Bearer challenge names no realm")
        query = {"scope": challenge.params.get("scope") or scope}
        if not query["scope"]:
            del query["scope"]   # a login: a token for no repository, only to check
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        headers = {}
        if self.credentials:
            headers["Authorization"] = self.credentials.basic_header()
        log.info("GET %s (token for %s%s)", realm, query.get("scope", "a login"),
                 ", as " + self.credentials.username if self.credentials else ", anonymous")
        from .transport import NETWORK_ERRORS, certificate_error, describe, read_body
        try:
            with self.transport.request("GET", realm, headers, params=query) as response:
                status, body = response.status_code, read_body(response, MAX_TOKEN_ANSWER)
        except (*NETWORK_ERRORS, ValueError) as err:
            reason, kind = describe(err)
            if kind:
                raise certificate_error(urlsplit(realm).netloc, reason, kind) from None
            raise Unauthorized(f"cannot reach token server {realm}: {reason}") from None
        if status in (401, 403):
            raise Unauthorized(f"the token server refused the credentials (HTTP {status})")
        if status != 200:
            raise Unauthorized(f"token server {realm} answered HTTP {status}")
        try:
            answer = json.loads(body)
            return answer.get("token") or answer["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise Unauthorized(f"token server {realm} sent no token") from None
