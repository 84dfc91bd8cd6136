"""mocker-fetch's HTTP transport (a requests.Session) as a user sees it: TLS against
the system's CAs, keep-alive connections, requests kept to a minimum. Proxies and
certs.d: tests/test_fetch_network.py."""

import contextlib
import http.client
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.test_fetch_pull import assert_all_blobs_verified, fetch

_FORWARDED = ("Content-Type", "Content-Length", "Docker-Content-Digest", "WWW-Authenticate",
              "Location", "Content-Range")


class Relay:
    """An HTTP/1.1 relay: a forward proxy for absolute-URL requests, and for others a
    reverse proxy to `upstream` (over TLS with `certificate`, a (cert, key) pair).
    Each request is recorded as (client port, URL): one port per TCP connection."""

    def __init__(self, upstream: str | None = None, certificate: tuple | None = None):
        self.seen: list[tuple[int, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive, as a real proxy offers

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.seen.append((self.client_address[1], self.path))
                target = urlsplit(self.path if "://" in self.path else f"//{upstream}{self.path}")
                upstream_connection = http.client.HTTPConnection(target.netloc, timeout=30)
                try:
                    upstream_connection.request("GET", target.path + (f"?{target.query}" if target.query
                                                           else ""),
                                     headers={k: v for k, v in self.headers.items()
                                              if k.lower() not in ("host", "connection")})
                    answer = upstream_connection.getresponse()
                    body = answer.read()
                finally:
                    upstream_connection.close()
                self.send_response(answer.status)
                for name in _FORWARDED:
                    if answer.getheader(name) is not None and name != "Content-Length":
                        self.send_header(name, answer.getheader(name))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if certificate:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@contextlib.contextmanager
def running(relay: Relay):
    relay.thread.start()
    try:
        yield relay
    finally:
        relay.server.shutdown()
        relay.server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert, key) paths."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_a_token_pull_asks_for_no_more_than_it_needs(token_registry, tmp_path):
    # The ping's challenge is answered before the manifest request: no request meets a
    # 401, one token is fetched, and each blob is asked for once.
    reg = token_registry
    result = fetch("-v", "--layout", tmp_path / "layout", "--creds",
                   f"{reg.username}:{reg.password}", f"{reg.host}/layered")
    requests = [line.split()[1] for line in result.stderr.splitlines()
                if line.startswith("GET ")]
    assert "-> 401" not in result.stderr
    image = reg.images["layered:latest"]
    assert len(requests) == 1 + 1 + 1 + 1 + len(image.layers), requests  # ping, token,
    assert requests[0].endswith("/v2/")                                 # manifest, blobs


def test_a_loopback_registry_behind_tls_is_pulled_over_https(registry, certificate, tmp_path):
    # Loopback registries may be unverified (as Docker allows): plain HTTP is tried
    # first, fails against a TLS port, and HTTPS follows.
    with running(Relay(registry.host, certificate)) as front:
        layout = tmp_path / "layout"
        result = fetch("-v", "--layout", layout, f"{front.host}/library/busybox")
        assert f"GET https://{front.host}/v2/library/busybox/manifests/latest" in result.stderr
        assert_all_blobs_verified(layout)
        assert any("/blobs/" in url for _, url in front.seen)


def test_tls_is_verified_against_the_system_ca_store(registry, certificate, monkeypatch):
    # Not certifi's bundle, which requests would use: the system's, as Docker does.
    import requests
    from mocker_fetch.transport import Transport, describe
    with running(Relay(registry.host, certificate)) as front:
        with pytest.raises(requests.exceptions.SSLError) as failed:
            Transport("test").request("GET", f"https://{front.host}/v2/")
        assert describe(failed.value) == ("self-signed certificate", "verify")
        with Transport("test", verify=False).request("GET", f"https://{front.host}/v2/") as answer:
            assert answer.status_code == 200   # --insecure
        # SSL_CERT_FILE replaces the system store (OpenSSL reads it): now it is trusted.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        with Transport("test").request("GET", f"https://{front.host}/v2/") as answer:
            assert answer.status_code == 200


def test_a_keep_alive_connection_the_server_closed_is_replaced():
    # Servers close idle keep-alive connections when they like; the next request on
    # one must go out again on a new connection, not fail the pull.
    import socket
    from mocker_fetch.transport import Transport, read_body
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve_one_request_per_connection():
        for _ in range(2):
            connection, _ = listener.accept()
            accepted.append(connection)
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            # closed without "Connection: close": the client thinks it may reuse it

    server = threading.Thread(target=serve_one_request_per_connection, daemon=True)
    server.start()
    transport = Transport("test")
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v2/"
    try:
        for _ in range(2):
            with transport.request("GET", url) as answer:
                assert read_body(answer, 100) == b"ok"
    finally:
        transport.close()
        server.join(timeout=10)
        listener.close()
    assert len(accepted) == 2
