"""The registry's HTTP API (OCI distribution spec), over one requests.Session
(transport.py).

The calls a pull makes, in order:

    GET /v2/                               ping: is this a registry, which scheme?
    GET /v2/<repo>/manifests/<tag|digest>  the manifest (or an index of them)
    GET /v2/<repo>/blobs/<digest>          the config and each layer

Any of them may answer 401 with a challenge (see auth.py): we authenticate and
ask once more. Blob requests may be redirected to storage elsewhere; the
registry's Authorization header is never sent to another host. Server errors
and dropped connections are retried with backoff, resuming a blob where it
stopped with an HTTP Range request.
"""

import logging
import time
from urllib.parse import urljoin, urlsplit

from mocker_common import __version__
from mocker_common.errors import Corrupt, MockerError, NotFound, Unauthorized, Unreachable
from mocker_common.mediatypes import INDEXES, MANIFESTS, SCHEMA1
from mocker_common.record import FrozenRecord

from . import trust
from .auth import Authenticator
from .credentials import Credentials
from .transport import (NETWORK_ERRORS, Transport, certificate_error, describe, read_body,
                        read_piece)

log = logging.getLogger("mocker.fetch")

CHUNK = 1 << 20
MAX_MANIFEST = 4 << 20          # distribution spec: registries may refuse larger ones
TRIES = 5
BACKOFF = 0.2                   # seconds before the 2nd try; doubled after each
MAX_REDIRECTS = 5
TIMEOUT = (10, 60)              # connect, read (seconds)
MANIFEST_ACCEPT = ", ".join((*MANIFESTS, *INDEXES, *SCHEMA1))


class NoConnection(Unreachable):
    """Not one answer from the registry's host: no route, no name, refused."""


class Cancelled(Exception):
    """Raised inside a download when another part of the pull asked to stop."""


class _Retry(Exception):
    """A failure worth another try: a 5xx, a dropped connection, a short read."""


class Fetched(FrozenRecord):
    """A manifest as the registry sent it."""
    data: bytes
    media_type: str
    digest_header: str | None     # Docker-Content-Digest, if sent


is_loopback = trust.is_loopback


class Registry:
    """One registry endpoint: its base URL, connections, and the tokens it gave us."""

    def __init__(self, host: str, *, insecure: bool = False,
                 credentials: Credentials | None = None, base_url: str | None = None,
                 jobs: int = 4):
        self.host = host
        self.insecure = insecure or trust.is_insecure(host)
        agent = f"mocker-fetch/{__version__}"
        tls = trust.tls_files(host)
        # A connection per parallel download, and one for the manifest requests.
        self.transport = Transport(agent, verify=not self.insecure, tls=tls, timeout=TIMEOUT,
                                   pool_size=jobs + 1)
        # The token server is another host: a loopback or configured registry's
        # leniency does not extend to it, only the user's --insecure does.
        self.auth = Authenticator(Transport(agent, verify=not insecure, tls=tls,
                                            timeout=TIMEOUT, pool_size=1),
                                  credentials, host)
        self.base_url = base_url.rstrip("/") if base_url else None
        self._challenge: str | None = None    # the ping's WWW-Authenticate, if any

    # -- the three calls -------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/: find the scheme. HTTPS, unless the registry may be insecure:
        then both, plain HTTP first for loopback (a local test registry rarely
        has a certificate) and HTTPS first for others."""
        schemes = ["https"]
        if self.insecure:
            schemes = ["http", "https"] if is_loopback(self.host) else ["https", "http"]
        if self.base_url:
            schemes = [self.base_url.split("://", 1)[0]]
        last = None
        for scheme in schemes:
            base = self.base_url or f"{scheme}://{self.host}"
            try:
                with self._send("GET", f"{base}/v2/", {}) as response:
                    read_body(response, 1 << 16)
            except NETWORK_ERRORS as err:
                reason, kind = describe(err)
                log.debug("%s: %s", base, reason)
                if kind == "refused" or (kind == "verify" and not self.insecure):
                    raise certificate_error(self.host, reason, kind) from None
                last = last or reason   # the preferred scheme's failure says most
                continue
            if response.status_code in (200, 401):
                self.base_url = base
                self._challenge = response.headers.get("WWW-Authenticate")
                return
            if response.status_code == 407:   # a plain-HTTP proxy wants (other) credentials
                last = "the proxy refused us: HTTP 407 Proxy Authentication Required"
                continue
            last = f"HTTP {response.status_code} from {base}/v2/ (not a registry API?)"
        raise NoConnection(f"cannot reach registry {self.host}: {last}")

    def check_login(self) -> None:
        """GET /v2/ with the credentials, answering its challenge as a pull would:
        what `docker login` does before it saves anything."""
        self.ping()
        if not self._challenge:
            return   # the registry asks no one to log in
        headers = {"Authorization": self.auth.answer(self._challenge, "")}
        with self._send_or_unreachable("GET", f"{self.base_url}/v2/", headers) as response:
            status = response.status_code
        if status in (401, 403):
            who = self.auth.credentials.username if self.auth.credentials else "anonymous"
            raise Unauthorized(f"{self.host} refused the login of {who}: incorrect username "
                               f"or password (HTTP {status})")
        if status != 200:
            _raise_for_status(response, f"{self.host}/v2/")

    def get_manifest(self, repository: str, key: str) -> Fetched:
        """GET a manifest or index by tag or digest; refuse what is not one."""
        name = f"{self.host}/{repository}{'@' if ':' in key else ':'}{key}"
        response = self.request("GET", f"/v2/{repository}/manifests/{key}", repository,
                                headers={"Accept": MANIFEST_ACCEPT})
        with response:
            if response.status_code == 404:
                raise NotFound(f"manifest unknown: {name}")
            _raise_for_status(response, f"manifest {name}")
            try:   # read at most the limit: a registry cannot make us hold gigabytes
                data = read_body(response, MAX_MANIFEST + 1)
            except NETWORK_ERRORS as err:
                raise Unreachable(f"manifest {name}: {describe(err)[0]}") from None
        if len(data) > MAX_MANIFEST:
            raise Corrupt(f"manifest {name} is larger than {MAX_MANIFEST} bytes")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Fetched(data, media_type, response.headers.get("Docker-Content-Digest"))

    def download_blob(self, repository: str, digest: str, size: int, sink,
                      progress=None, cancel=None) -> None:
        """Stream a blob into sink until it holds exactly `size` bytes.

        The sink may already hold the first bytes (a resumed download): we ask
        for the rest with Range. The caller checks the digest afterwards.
        """
        path = f"/v2/{repository}/blobs/{digest}"
        if sink.written >= size:
            return   # an earlier pull got every byte; the digest check decides
        for attempt in range(TRIES):
            try:
                self._download_rest(path, repository, size, sink, progress, cancel)
                return
            except _Retry as err:
                if attempt == TRIES - 1:
                    raise Unreachable(f"blob {digest[:19]}: {err} (gave up after {TRIES} tries)")
                delay = BACKOFF * 2 ** attempt
                log.info("blob %s: %s; retrying in %.1fs from byte %d",
                         digest[:19], err, delay, sink.written)
                time.sleep(delay)

    # -- helpers -------------------------------------------------------------------------

    def _download_rest(self, path, repository, size, sink, progress, cancel):
        # The blob is compressed already: a server must not code it again
        # (RFC 9110 12.5.3); if one does anyway, read_piece undoes it.
        headers = {"Accept-Encoding": "identity"}
        if sink.written:
            headers["Range"] = f"bytes={sink.written}-"
        response = self.request("GET", path, repository, headers=headers)
        with response:
            if response.status_code == 200 and sink.written:
                log.info("%s: the server ignored Range; starting again", path)
                sink.restart()
            elif response.status_code not in (200, 206):
                _raise_for_status(response, f"blob {self.host}/{repository}@{path.rsplit('/')[-1]}")
            elif response.status_code == 206 and not response.headers.get(
                    "Content-Range", "").startswith(f"bytes {sink.written}-"):
                sink.restart()   # not the part we asked for: start over
                raise _Retry(f"the server sent {response.headers.get('Content-Range')!r}")
            elif response.status_code == 206 and _coded(response):
                # RFC 9110 14.1: a range of the gzip-coded bytes, which cannot be
                # decoded apart from their start: ask for the whole blob again.
                sink.restart()
                raise _Retry("the server sent a range of a Content-Encoding")
            _stream_body(response, path, size, sink, progress, cancel)
        if sink.written < size:
            raise _Retry(f"connection closed after {sink.written} of {size} bytes")

    def request(self, method: str, path: str, repository: str, headers=None):
        """Send a request to the registry, answering auth challenges, and retrying
        5xx answers and failed connections with backoff."""
        if not self.base_url:
            self.ping()
        scope = f"repository:{repository}:pull"
        url = self.base_url + path
        for attempt in range(TRIES):
            last = attempt == TRIES - 1
            try:
                response = self._authorized(method, url, scope, dict(headers or {}))
            except Unreachable as err:
                if last:
                    raise
                problem = str(err)
            else:
                if response.status_code < 500 or last:
                    return response
                response.close()
                problem = f"HTTP {response.status_code}"
            delay = BACKOFF * 2 ** attempt
            log.info("%s %s: %s; retrying in %.1fs", method, path, problem, delay)
            time.sleep(delay)
        raise AssertionError("unreachable: the last try returns or raises")

    def _authorized(self, method, url, scope, headers):
        """Send with the scope's known credentials; on 401, answer the challenge once."""
        known = self.auth.header_for(scope) or self._answer_in_advance(scope)
        if known:
            headers["Authorization"] = known
        response = self._send_or_unreachable(method, url, headers)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate")
        response.close()
        if not challenge:
            raise Unauthorized(f"{self.host} refused access (401) without a challenge")
        log.info("  -> 401, challenge: %s", challenge)
        headers["Authorization"] = self.auth.answer(challenge, scope)
        response = self._send_or_unreachable(method, url, headers)
        if response.status_code == 401:
            who = "the credentials given" if self.auth.credentials else "anonymous access"
            raise Unauthorized(f"{self.host} refused {who} to {scope.split(':')[1]} "
                               "(does it exist? is a login needed?)")
        return response

    def _answer_in_advance(self, scope: str) -> str | None:
        """Answer the ping's challenge for scope before a request meets it again
        (as Docker does): saves each scope's first request a 401 round trip.
        Basic without credentials waits: the repository may be public."""
        challenge = self._challenge
        if not challenge or (challenge.lower().startswith("basic") and not self.auth.credentials):
            return None
        return self.auth.answer(challenge, scope)

    def _send_or_unreachable(self, method, url, headers):
        try:
            return self._send(method, url, headers)
        except NETWORK_ERRORS as err:
            reason, kind = describe(err)
            if kind:
                raise certificate_error(urlsplit(url).netloc, reason, kind) from None
            raise NoConnection(f"cannot reach registry {self.host}: {reason}") from None

    def _send(self, method, url, headers):
        """One request, following redirects ourselves so that Authorization
        never leaves the registry's host (blob storage gets signed URLs)."""
        origin = urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            log.info("%s %s", method, url)
            response = self.transport.request(method, url, headers)
            log.debug("  -> HTTP %d %s", response.status_code,
                      response.headers.get("Content-Type", ""))
            if not response.is_redirect:
                return response
            response.close()
            target = urljoin(url, response.headers.get("Location", ""))
            if urlsplit(target).scheme not in ("https", "http") or (
                    urlsplit(target).scheme == "http" and urlsplit(url).scheme == "https"
                    and not self.insecure):
                raise MockerError(f"refusing a redirect from {url} to {target}")
            url = target
            if urlsplit(url).netloc != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise Unreachable(f"more than {MAX_REDIRECTS} redirects from {origin}")


def _stream_body(response, path, size, sink, progress, cancel) -> None:
    """Read a blob's body into sink in CHUNK-sized pieces: large reads keep the
    per-piece costs (a Python call, a write(2)) small against hashing."""
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        try:
            piece = read_piece(response, CHUNK)
        except NETWORK_ERRORS as err:   # only the reading: a full disk is no network error
            raise _Retry(f"connection dropped: {describe(err)[0]}") from None
        if not piece:
            return
        if sink.written + len(piece) > size:
            raise Corrupt(f"blob {path.rsplit('/')[-1]} is larger than "
                          f"its descriptor's size {size}")
        sink.write(piece)
        if progress:
            progress(len(piece))


def _coded(response) -> bool:
    return response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")


def _raise_for_status(response, what: str) -> None:
    status = response.status_code
    if status in (401, 403):
        raise Unauthorized(f"access to {what} denied (HTTP {status})")
    if status == 404:
        raise NotFound(f"{what} not found")
    if status >= 500:
        raise Unreachable(f"registry error HTTP {status} for {what}")
    if status >= 300:
        raise MockerError(f"unexpected HTTP {status} for {what}")
