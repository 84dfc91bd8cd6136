"""HTTP for the registry client: one requests.Session per registry.

requests (over urllib3) keeps connections alive per host, speaks TLS and every
framing of HTTP/1.1, and talks to http://, https:// and SOCKS5 proxies. What
this module adds is the policy of a container tool:

- TLS trust as Docker's: the system's CAs plus the registry's certs.d files
  (trust.py), a client certificate when certs.d has one; or no verification
  for an insecure registry. One ssl.SSLContext per session, built on first use.
- Proxies as Go programs choose them (proxy.py), not as requests would:
  loopback never proxied, CIDR and host:port in NO_PROXY. So the session does
  not read the environment itself (trust_env off, which also keeps ~/.netrc
  credentials away from registries).
- A pool as large as the parallel blob downloads.
- Bodies are left unread (stream=True); the caller reads the raw stream in
  large pieces, with any Content-Encoding undone (RFC 9110 section 8.4), so
  that digests are computed on the bytes the registry stored.

Redirects are not followed here: registry.py follows them itself, to keep
Authorization away from other hosts.
"""

import logging
import ssl
import sys
import threading


def _import_requests():
    """import requests, without the character-set detector it loads for Response.text.

    requests imports charset_normalizer (or chardet) at once, ~10% of its import
    (valgrind: 44 of 430 million instructions), to guess the charset of text
    bodies; mocker reads only bytes and JSON. requests runs without a detector
    (it then warns once, and assumes UTF-8), so the detector is hidden from this
    one import, unless something imported it already.
    """
    hidden = [name for name in ("charset_normalizer", "chardet") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None   # "import charset_normalizer" raises ImportError
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Unable to find acceptable character detection")
            import requests
    finally:
        for name in hidden:
            del sys.modules[name]
    return requests


requests = _import_requests()
import urllib3  # noqa: E402  (after requests, which imported it already)
from requests.adapters import HTTPAdapter  # noqa: E402

from mocker_common.errors import CertificateError

from . import proxy as proxies
from .trust import TLSFiles, certificate_hint

log = logging.getLogger("mocker.fetch")

# What a failed connection or a body cut short raises: requests' errors are
# OSErrors; reading the raw stream raises urllib3's own. Callers catch these around
# network reads only: an OSError from writing a file (ENOSPC) is no network error.
NETWORK_ERRORS = (OSError, urllib3.exceptions.HTTPError)


# A server may close an idle keep-alive connection just as we send on it: the
# request then dies with a reset before any answer. A GET or HEAD that got no
# answer (a reset, or no answer before the read timeout) is sent once more, on a
# new connection, as browsers and Go's net/http do; a refused connection or an
# HTTP error status is the answer, and a body cut short is not retried here.
_STALE_RETRY = urllib3.util.Retry(total=1, connect=0, read=1, redirect=0, status=0, other=0,
                                  allowed_methods=frozenset({"GET", "HEAD"}),
                                  raise_on_status=False, raise_on_redirect=False)


class _Adapter(HTTPAdapter):
    """requests' adapter with our SSLContext instead of certifi's bundle."""

    def __init__(self, context_factory, verify: bool, pool_size: int):
        self._context_factory, self._verify = context_factory, verify
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=_STALE_RETRY)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["ssl_context"] = self._context_factory()
        return host_params, pool_kwargs

    def cert_verify(self, conn, url, verify, cert):
        # requests would name certifi's bundle here; the context already holds the CAs.
        conn.cert_reqs = "CERT_REQUIRED" if self._verify else "CERT_NONE"
        conn.ca_certs = conn.ca_cert_dir = None


class Transport:
    """A requests.Session for one registry (and the hosts it redirects to)."""

    def __init__(self, user_agent: str, *, verify: bool = True, tls: TLSFiles = TLSFiles(),
                 timeout=(10, 60), pool_size: int = 4):
        self.verify, self.tls, self.timeout = verify, tls, timeout
        self._context = None
        self._context_lock = threading.Lock()   # the download threads may all ask at once
        self.session = requests.Session()
        self.session.trust_env = False
        # Only what we mean to send: requests' defaults add Accept: */* and
        # Accept-Encoding: gzip (blob requests say identity; read_body undoes any coding).
        self.session.headers = requests.structures.CaseInsensitiveDict(
            {"User-Agent": user_agent})
        adapter = _Adapter(self.context, verify, pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if not verify:   # the user asked for it: no warning on every request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def context(self) -> ssl.SSLContext:
        """The session's TLS context, made on first use (plain HTTP needs none)."""
        with self._context_lock:
            if self._context is None:
                self._context = self._new_context()
        return self._context

    def _new_context(self) -> ssl.SSLContext:
        """The system's CAs and certs.d's, a client certificate; or no checks at all."""
        context = ssl.create_default_context()
        for ca in self.tls.cas:
            try:
                context.load_verify_locations(cafile=str(ca))
            except (OSError, ssl.SSLError) as err:
                raise CertificateError(f"cannot load CA {ca}: {_ssl_reason(err)}") from None
        if self.tls.client:
            cert, key = self.tls.client
            try:
                context.load_cert_chain(str(cert), str(key))
            except (OSError, ssl.SSLError) as err:
                raise CertificateError(f"cannot load client certificate {cert}: "
                                       f"{_ssl_reason(err)}") from None
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def request(self, method: str, url: str, headers: dict | None = None,
                params: dict | None = None) -> requests.Response:
        """Send one request; return the response with its body unread."""
        proxy = proxies.proxy_for(url)
        if proxy:
            log.debug("  (through proxy %s)", proxies.redact(proxy))
        return self.session.request(method, url, headers=headers, params=params,
                                    stream=True, allow_redirects=False, timeout=self.timeout,
                                    verify=self.verify,
                                    proxies={url.split(":", 1)[0]: proxy} if proxy else {})

    def close(self) -> None:
        self.session.close()


def read_body(response: requests.Response, limit: int) -> bytes:
    """At most limit bytes of the body, any Content-Encoding (gzip…) undone."""
    return response.raw.read(limit, decode_content=True)


def read_piece(response: requests.Response, size: int) -> bytes:
    """The body's next piece (at most size bytes, decoded); b"" at its end."""
    return response.raw.read(size, decode_content=True)


def describe(err: BaseException) -> tuple[str, str]:
    """A short, one-line reason for a network error, with proxy passwords removed;
    and what kind it is: "" (the network), "verify" (we could not verify the
    server's certificate) or "refused" (the server refused the handshake, as a
    server wanting a client certificate does)."""
    cause = _root_cause(err)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return proxies.scrub(cause.verify_message or str(cause)), "verify"
    if isinstance(cause, ssl.SSLError) and "alert" in str(cause).lower():
        return proxies.scrub(_ssl_reason(cause)), "refused"
    via = "cannot connect to the proxy: " if _is_proxy_error(err) else ""
    return proxies.scrub(via + _short(cause)), ""


def certificate_error(host: str, reason: str, kind: str) -> CertificateError:
    """The one-line error for a TLS failure with host, naming what would fix it."""
    if kind == "verify":
        return CertificateError(f"the TLS certificate of {host} failed: {reason}; "
                                f"{certificate_hint(host, reason)}")
    return CertificateError(f"{host} refused the TLS handshake ({reason}); "
                            f"{certificate_hint(host, 'certificate required')}")


def _chain(err: BaseException):
    """err, and the errors inside it: requests and urllib3 wrap the one that happened
    (a MaxRetryError's .reason, an exception among args, or the __cause__)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        inner = getattr(err, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in getattr(err, "args", ()) if isinstance(a, BaseException)),
                         None)
        err = inner or err.__cause__ or err.__context__


def _root_cause(err: BaseException) -> BaseException:
    *_, last = _chain(err)
    return last


def _is_proxy_error(err: BaseException) -> bool:
    return any(isinstance(e, (requests.exceptions.ProxyError, urllib3.exceptions.ProxyError))
               for e in _chain(err))


def _short(err: BaseException) -> str:
    text = str(err)
    for marker in ("[Errno", "Connection refused", "Name or service not known",
                   "Tunnel connection failed"):
        if marker in text:
            return text[text.find(marker):].rstrip("')\"")
    if isinstance(err, (TimeoutError, urllib3.exceptions.TimeoutError)):
        return "timed out"
    text = text.splitlines()[0] if text else type(err).__name__
    return text.split(": ", 1)[-1] if text.startswith("<") else text


def _ssl_reason(err) -> str:
    return getattr(err, "reason", None) and str(err.reason).lower().replace("_", " ") \
        or str(err)
