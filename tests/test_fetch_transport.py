"""mocker-fetch's HTTP transport as a user sees it: keep-alive connections, and the
HTTP_PROXY / NO_PROXY environment, through a small forward proxy on loopback."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.test_fetch_pull import assert_all_blobs_verified, fetch, index_entries

_FORWARDED = ("Content-Type", "Content-Length", "Docker-Content-Digest", "WWW-Authenticate",
              "Location", "Content-Range")


class ForwardProxy:
    """An HTTP/1.1 forward proxy (absolute-URL requests), recording each request
    as (client port, URL): one port per TCP connection the client opened."""

    def __init__(self):
        self.seen: list[tuple[int, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive, as a real proxy offers

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.seen.append((self.client_address[1], self.path))
                target = urlsplit(self.path)
                upstream = http.client.HTTPConnection(target.netloc, timeout=30)
                try:
                    upstream.request("GET", target.path + (f"?{target.query}" if target.query
                                                           else ""),
                                     headers={k: v for k, v in self.headers.items()
                                              if k.lower() not in ("host", "connection")})
                    answer = upstream.getresponse()
                    body = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name in _FORWARDED:
                    if answer.getheader(name) is not None and name != "Content-Length":
                        self.send_header(name, answer.getheader(name))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def proxy():
    forward = ForwardProxy()
    forward.thread.start()
    try:
        yield forward
    finally:
        forward.server.shutdown()
        forward.server.server_close()


def proxy_env(url: str, no_proxy: str = "") -> dict:
    return {"HTTP_PROXY": url, "http_proxy": url, "NO_PROXY": no_proxy, "no_proxy": no_proxy}


def test_pulls_through_the_proxy_named_by_http_proxy_on_one_connection(registry, proxy,
                                                                        tmp_path):
    layout = tmp_path / "layout"
    fetch("-j", "1", "--layout", layout, f"{registry.host}/layered",
          env=proxy_env(proxy.url))
    assert f"{registry.host}/layered:latest" in index_entries(layout)
    assert_all_blobs_verified(layout)
    urls = [url for _, url in proxy.seen]
    assert urls[0] == f"http://{registry.host}/v2/"
    assert sum("/blobs/sha256:" in url for url in urls) == 1 + len(
        registry.images["layered:latest"].layers)
    # Keep-alive: with one download at a time, every request went over one connection.
    assert len({port for port, _ in proxy.seen}) == 1


def test_no_proxy_skips_the_proxy(registry, proxy, tmp_path):
    fetch("--layout", tmp_path / "layout", f"{registry.host}/library/busybox",
          env=proxy_env(proxy.url, no_proxy="127.0.0.1"))
    assert proxy.seen == []


def test_a_proxy_that_is_down_is_unreachable(registry, tmp_path):
    from mocker_common.errors import ExitCode
    from tests.fixtures.registry import free_port
    result = fetch("-q", "--layout", tmp_path / "layout", f"{registry.host}/library/busybox",
                   env=proxy_env(f"http://127.0.0.1:{free_port()}"), check=False)
    assert result.returncode == ExitCode.UNREACHABLE, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


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
