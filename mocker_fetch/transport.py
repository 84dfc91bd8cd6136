"""HTTP/1.1 for the registry client: keep-alive connections (http1.py).

A pull makes a handful of requests to one or two hosts, so the transport
needs little: a pool of idle connections per host (blobs download on several
threads), TLS verified against the system's CA store (or not, for
--insecure), the HTTP(S)_PROXY / NO_PROXY environment, and a body read in
large pieces. requests did all this too, but importing it costs ~60 ms
(urllib3, charset_normalizer, certifi, idna), a third of pulling a small image;
http.client ~15 ms more (the email package, ssl). ssl is loaded only for HTTPS.

Redirects are not followed here: registry.py follows them itself, to keep
Authorization away from other hosts.
"""

import json
import logging
import os
import socket
import threading
from urllib.parse import urlencode, urlsplit

from . import http1

# Errors that mean "the connection failed, dropped or spoke nonsense": http1's,
# ssl's and timeouts are all OSErrors. Callers catch these around network
# reads only: an OSError from writing a file (ENOSPC) is not a network error.
NETWORK_ERRORS = (OSError,)

REDIRECTS = (301, 302, 303, 307, 308)

# What a request on a kept-alive connection meets when the server has closed it.
_STALE = (ConnectionResetError, BrokenPipeError)   # http1.RemoteDisconnected is the first

log = logging.getLogger("mocker.fetch")


class Response:
    """A response whose body has not been read yet. Close it (or use `with`):
    a connection whose body was read to the end goes back to the pool."""

    def __init__(self, transport, key, connection, response: http1.Response):
        self._transport, self._key = transport, key
        self._connection, self._response = connection, response
        self.status_code = response.status
        self.headers = response.headers          # case-insensitive .get()

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECTS and "Location" in self.headers

    def read(self, limit: int = -1) -> bytes:
        """The body, or at most `limit` bytes of it."""
        return self._response.read(limit)

    def readinto(self, buffer) -> int:
        """Fill buffer from the body; 0 at its end. A body cut short raises
        http1.ProtocolError."""
        return self._response.readinto(buffer)

    def json(self):
        return json.loads(self.read())

    def close(self) -> None:
        if self._connection is None:
            return
        reusable = self._response.finished and not self._response.will_close
        if not reusable:   # an unread body would be read as the next answer: drop it
            self._connection.close()
        else:
            self._transport.put_back(self._key, self._connection)
        self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Transport:
    """Keep-alive connections per (scheme, host), shared by threads."""

    def __init__(self, user_agent: str, verify: bool = True, timeout=(10, 60)):
        self.user_agent = user_agent
        self.verify = verify
        self.connect_timeout, self.read_timeout = timeout
        self._idle: dict[tuple, list] = {}
        self._lock = threading.Lock()
        self._tls = None

    def request(self, method: str, url: str, headers: dict | None = None,
                params: dict | None = None) -> Response:
        """Send one request; return the response with its body unread."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        key = (parts.scheme, parts.netloc)
        headers = {"Host": parts.netloc, "User-Agent": self.user_agent,
                   "Accept-Encoding": "identity", **(headers or {})}
        connection, reused = self._take(key)
        while True:
            try:
                answer = self._exchange(connection, method, target, headers, key)
            except BaseException as err:
                connection.close()
                if not (reused and isinstance(err, _STALE)):
                    raise
                # The server closed an idle keep-alive connection: say it again on a new one.
                connection, reused = self._connect(key), False
            else:
                return Response(self, key, connection, answer)

    def put_back(self, key, connection) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # -- helpers -------------------------------------------------------------------

    def _exchange(self, connection, method, target, headers, key):
        if connection.via_http_proxy:   # a plain-HTTP proxy wants the whole URL
            target = f"{key[0]}://{key[1]}{target}"
            headers = {**headers, **connection.proxy_headers}
        connection.send(method, target, headers)
        return connection.response(method)

    def _take(self, key):
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        return self._connect(key), False

    def _connect(self, key):
        scheme, netloc = key
        proxy = _proxy_for(scheme, netloc)
        address = _host_port(proxy or netloc, 80 if proxy or scheme == "http" else 443)
        log.debug("  (new connection to %s%s)", netloc, f" through {proxy}" if proxy else "")
        try:
            sock = _create_connection(address, self.connect_timeout)
        except OSError as err:
            if not proxy:
                raise
            raise ConnectionError(f"{err}, via proxy {proxy}") from None
        try:
            if scheme == "https":
                if proxy:   # CONNECT through the proxy, then TLS with the registry itself
                    _tunnel(sock, _host_port(netloc, 443), _proxy_auth(proxy))
                sock = self._context().wrap_socket(sock, server_hostname=_host_port(netloc, 443)[0])
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        connection = http1.Connection(sock)
        connection.via_http_proxy = bool(proxy) and scheme == "http"
        connection.proxy_headers = _proxy_auth(proxy) if proxy else {}
        return connection

    def _context(self):
        """One TLS context for all connections: the system's CAs, or no checks."""
        if self._tls is None:
            import ssl
            context = ssl.create_default_context()
            if not self.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context
        return self._tls


def _create_connection(address, timeout):
    """socket.create_connection, with an ASCII host name given as bytes: for a str,
    getaddrinfo loads the IDNA codec (~5 ms) even when nothing needs encoding."""
    host, port = address
    try:
        host = host.encode("ascii")
    except UnicodeEncodeError:
        pass   # an internationalised name: the codec is needed
    sock = socket.create_connection((host, port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # a request is one small write
    return sock


def _tunnel(sock, address: tuple[str, int], proxy_headers: dict) -> None:
    """Ask an HTTP proxy for a tunnel to address (CONNECT), for TLS end to end."""
    host, port = address
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    connection = http1.Connection(sock)
    connection.send("CONNECT", authority, {"Host": authority, **proxy_headers})
    answer = connection.response("CONNECT")
    if answer.status != 200:
        raise ConnectionError(f"the proxy refused a tunnel to {authority} (HTTP {answer.status})")


def _host_port(netloc_or_url: str, default: int) -> tuple[str, int]:
    parts = urlsplit(netloc_or_url if "://" in netloc_or_url else f"//{netloc_or_url}")
    return parts.hostname, parts.port or default


def _proxy_for(scheme: str, netloc: str) -> str | None:
    """The proxy URL the environment names for this scheme and host, if any
    (HTTP_PROXY, HTTPS_PROXY, NO_PROXY; as curl, Docker and requests read them).
    The proxy is spoken to in plain HTTP; HTTPS goes through it with CONNECT."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None   # the usual case, without importing urllib.request (~3 ms)
    import urllib.request   # for its parsing of the environment
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(netloc.rsplit(":", 1)[0]):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _proxy_auth(proxy: str) -> dict:
    """Proxy-Authorization from user:password@ in the proxy's URL."""
    parts = urlsplit(proxy)
    if not parts.username:
        return {}
    import base64
    from urllib.parse import unquote
    raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(raw).decode()}
