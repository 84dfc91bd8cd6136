"""mocker-fetch on networks like users' own: a registry at an address that is not
loopback (198.51.100.7, in a network namespace of the test's own), behind TLS
trusted through certs.d, wanting client certificates, marked insecure in
registries.conf or daemon.json, and reached through HTTP, HTTPS and SOCKS5
proxies chosen from the environment as Docker chooses them.

mocker-fetch runs inside the namespace (ip netns exec); the servers it meets
there are relays and proxies made by this process (tests/fixtures/netns.py,
proxies.py) in front of real docker-registry instances on our 127.0.0.1.
"""

import os
import ssl
import subprocess
from pathlib import Path

import pytest

from mocker_common.errors import ExitCode
from tests.conftest import need_root, need_tool
from tests.fixtures.netns import ADDRESS, Netns, Relay
from tests.fixtures.proxies import HTTPProxy, Socks5Proxy
from tests.fixtures.registry import start_registry
from tests.test_fetch_pull import assert_all_blobs_verified, fetch, index_entries

IMAGE = "library/busybox"
PROXY_PASSWORD = "pr0xy-s3cret-9f2c"


def openssl(*args, cwd):
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA, a server certificate for ADDRESS and 127.0.0.1 signed by it, a client
    certificate signed by it, and a self-signed certificate no one trusts."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=mocker test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name, extra in (("server", f"subjectAltName=IP:{ADDRESS},IP:127.0.0.1"),
                        ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        (d / f"{name}.ext").write_text(extra + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.cert", cwd=d)
    return d


@pytest.fixture(scope="module")
def netns():
    need_root()
    need_tool("ip")
    namespace = Netns()
    yield namespace
    namespace.remove()


class Front:
    """A registry as seen from the namespace: ADDRESS:port, relayed to `upstream`."""

    def __init__(self, netns, upstream_port: int):
        self.relay = Relay(netns.listen(), ("127.0.0.1", upstream_port))
        self.upstream_port = upstream_port
        self.host = f"{ADDRESS}:{self.relay.port}"


def _tls_registry(tmp_path_factory, registry, netns, pki, client_certs: bool):
    tls = {"certificate": str(pki / "server.cert"), "key": str(pki / "server.key")}
    if client_certs:
        tls["clientcas"] = [str(pki / "ca.crt")]
    backend = start_registry(tmp_path_factory.mktemp("tls-registry"), tls=tls,
                             storage=registry.workdir / "storage")
    return backend, Front(netns, int(backend.host.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def tls_front(tmp_path_factory, registry, netns, pki):
    """docker-registry over TLS (the test CA's certificate), serving the fixture images."""
    backend, front = _tls_registry(tmp_path_factory, registry, netns, pki, False)
    yield front
    front.relay.close()
    backend.stop()


@pytest.fixture(scope="module")
def mtls_front(tmp_path_factory, registry, netns, pki):
    """The same, requiring a client certificate signed by the test CA."""
    backend, front = _tls_registry(tmp_path_factory, registry, netns, pki, True)
    yield front
    front.relay.close()
    backend.stop()


@pytest.fixture(scope="module")
def http_front(registry, netns):
    """The plain-HTTP fixture registry, at ADDRESS (insecure only if configured so)."""
    front = Front(netns, int(registry.host.rsplit(":", 1)[1]))
    yield front
    front.relay.close()


@pytest.fixture
def etc(tmp_path, monkeypatch):
    """An /etc of the test's own (MOCKER_ETC), and no registries.conf from the host."""
    root = tmp_path / "etc"
    root.mkdir()
    monkeypatch.setenv("MOCKER_ETC", str(root))
    monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                 "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return root


def trust_ca(etc: Path, host: str, pki: Path, kind: str = "docker") -> Path:
    directory = etc / kind / "certs.d" / host
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    return directory


def fetch_in(netns, *args, env=None, check=True):
    """mocker-fetch run inside the namespace."""
    result = subprocess.run(netns.command("mocker-fetch", *args), capture_output=True,
                            text=True, env={**os.environ, **(env or {})}, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 1, result.stdout
    return result


# -- TLS trust --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["docker", "containers"])
def test_a_tls_registry_is_trusted_through_certs_d(netns, tls_front, pki, etc, tmp_path, kind):
    trust_ca(etc, tls_front.host, pki, kind)
    layout = tmp_path / "layout"
    result = fetch_in(netns, "-v", "--layout", layout, f"{tls_front.host}/{IMAGE}")
    assert f"GET https://{tls_front.host}/v2/" in result.stderr
    assert f"{tls_front.host}/{IMAGE}:latest" in index_entries(layout)
    assert_all_blobs_verified(layout)


def test_an_untrusted_certificate_is_its_own_error_naming_the_fix(netns, tls_front, etc,
                                                                   tmp_path):
    layout = tmp_path / "layout"
    result = fetch_in(netns, "-q", "--layout", layout, f"{tls_front.host}/{IMAGE}",
                      check=False)
    assert result.returncode == ExitCode.CERTIFICATE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"the TLS certificate of {tls_front.host} failed" in lines[0]
    assert "unable to get local issuer certificate" in lines[0]
    assert f"{etc}/docker/certs.d/{tls_front.host}/ca.crt" in lines[0]
    assert not (layout / "index.json").exists() or index_entries(layout) == {}


@pytest.mark.interop
@pytest.mark.slow
def test_skopeo_trusts_the_same_certs_d_directory(netns, tls_front, pki, etc, tmp_path):
    # The peer on the same case: skopeo reads the directory mocker reads.
    skopeo = need_tool("skopeo")
    directory = trust_ca(etc, tls_front.host, pki)
    ref = f"{tls_front.host}/{IMAGE}:latest"
    untrusted = subprocess.run(netns.command(skopeo, "inspect", f"docker://{ref}"),
                               capture_output=True, text=True, timeout=120)
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr
    trusted = subprocess.run(netns.command(skopeo, "inspect", "--cert-dir", directory,
                                           f"docker://{ref}"),
                             capture_output=True, text=True, timeout=120)
    assert trusted.returncode == 0, trusted.stderr


def test_a_registry_wanting_a_client_certificate_gets_the_one_in_certs_d(
        netns, mtls_front, pki, etc, tmp_path):
    directory = trust_ca(etc, mtls_front.host, pki, "containers")
    layout = tmp_path / "layout"
    refused = fetch_in(netns, "-q", "--layout", layout, f"{mtls_front.host}/{IMAGE}",
                       check=False)
    assert refused.returncode == ExitCode.CERTIFICATE, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "client.cert and client.key" in refused.stderr
    (directory / "client.cert").write_bytes((pki / "client.cert").read_bytes())
    (directory / "client.key").write_bytes((pki / "client.key").read_bytes())
    fetch_in(netns, "-q", "--layout", layout, f"{mtls_front.host}/{IMAGE}")
    assert_all_blobs_verified(layout)


def test_a_client_certificate_without_its_key_is_refused_in_one_line(netns, mtls_front, pki,
                                                                      etc, tmp_path):
    directory = trust_ca(etc, mtls_front.host, pki)
    (directory / "client.cert").write_bytes((pki / "client.cert").read_bytes())
    result = fetch_in(netns, "-q", "--layout", tmp_path / "l", f"{mtls_front.host}/{IMAGE}",
                      check=False)
    assert result.returncode == ExitCode.ERROR
    assert result.stderr.strip() == (f"mocker-fetch: {directory}/client.cert has no key "
                                      "beside it (want client.key)")


# -- insecure registries ----------------------------------------------------------------

def _registries_conf(etc, host):
    path = etc / "containers" / "registries.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('unqualified-search-registries = ["docker.io"]\n\n'
                    f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')


def _daemon_json(etc, host):
    path = etc / "docker" / "daemon.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"insecure-registries": ["10.9.0.0/16", "198.51.100.0/24"]}\n')


@pytest.mark.parametrize("configure", [_registries_conf, _daemon_json],
                         ids=["registries.conf", "daemon.json"])
def test_a_registry_configured_insecure_is_pulled_without_verification(
        netns, tls_front, http_front, etc, tmp_path, configure):
    for front in (tls_front, http_front):   # an untrusted certificate; plain HTTP
        refused = fetch_in(netns, "-q", "--layout", tmp_path / "refused",
                           f"{front.host}/{IMAGE}", check=False)
        assert refused.returncode in (ExitCode.CERTIFICATE, ExitCode.UNREACHABLE)
        configure(etc, front.host)
        layout = tmp_path / str(front.relay.port)
        fetch_in(netns, "-q", "--layout", layout, f"{front.host}/{IMAGE}")
        assert_all_blobs_verified(layout)
        for path in etc.rglob("*.*"):
            path.unlink()


# -- proxies ----------------------------------------------------------------------------

@pytest.fixture
def proxy(netns, tls_front, http_front):
    """An HTTP proxy listening in the namespace, routing the fronts' addresses to
    their registries, wanting a password."""
    routes = {front.host: ("127.0.0.1", front.upstream_port) for front in (tls_front, http_front)}
    server = HTTPProxy(netns.listen("127.0.0.1"), routes, credentials=("ann", PROXY_PASSWORD))
    yield server
    server.close()


def proxy_url(proxy, scheme="http", password=PROXY_PASSWORD):
    return f"{scheme}://ann:{password}@127.0.0.1:{proxy.port}"


def test_https_goes_through_the_proxy_and_no_proxy_cidr_and_host_port_bypass_it(
        netns, tls_front, pki, etc, proxy, tmp_path):
    trust_ca(etc, tls_front.host, pki)
    ref = f"{tls_front.host}/{IMAGE}"
    wrong_port = f"{ADDRESS}:{tls_front.relay.port + 1}"
    cases = [("", True), ("198.51.100.0/24", False), (tls_front.host, False),
             (wrong_port, True), ("example.com, 198.51.100.0/30", True), ("example.com, 198.51.100.0/29", False)]
    for number, (no_proxy, proxied) in enumerate(cases):
        before_targets, before_direct = len(proxy.targets), tls_front.relay.connections
        fetch_in(netns, "-q", "--layout", tmp_path / str(number), ref,
                 env={"HTTPS_PROXY": proxy_url(proxy), "NO_PROXY": no_proxy})
        went_direct = tls_front.relay.connections > before_direct
        assert (len(proxy.targets) > before_targets, went_direct) == (proxied, not proxied), \
            no_proxy
    assert set(proxy.targets) == {tls_front.host}


def test_lower_case_variables_count_and_plain_http_is_forwarded_on_kept_connections(
        netns, http_front, etc, proxy, tmp_path, registry):
    layout = tmp_path / "layout"
    direct = http_front.relay.connections
    fetch_in(netns, "-q", "-j", "1", "--insecure", "--layout", layout,
             f"{http_front.host}/layered",
             env={"http_proxy": proxy_url(proxy), "https_proxy": proxy_url(proxy)})
    assert set(proxy.targets) == {http_front.host}
    blobs = 1 + len(registry.images["layered:latest"].layers)
    # An insecure registry is tried with HTTPS first (one CONNECT), then plain HTTP:
    # the ping, the manifest and the blobs, each an absolute-URL GET to the proxy.
    assert len(proxy.targets) == 1 + 2 + blobs
    assert len(proxy.clients) == 1      # -j 1: every GET on one kept-alive connection
    assert http_front.relay.connections == direct
    assert_all_blobs_verified(layout)


def test_loopback_is_never_proxied(registry, tmp_path, etc):
    from tests.fixtures.registry import free_port
    dead = f"http://127.0.0.1:{free_port()}"
    for host in (registry.host, f"localhost:{registry.host.rsplit(':', 1)[1]}"):
        fetch("-q", "--layout", tmp_path / host.replace(":", "-"), f"{host}/{IMAGE}",
              env={"HTTP_PROXY": dead, "HTTPS_PROXY": dead})


def test_a_proxy_password_is_printed_nowhere(netns, tls_front, pki, etc, proxy, tmp_path):
    trust_ca(etc, tls_front.host, pki)
    ref = f"{tls_front.host}/{IMAGE}"
    good = fetch_in(netns, "-vv", "--layout", tmp_path / "good", ref,
                    env={"HTTPS_PROXY": proxy_url(proxy)})
    assert "through proxy http://ann:xxxxx@127.0.0.1" in good.stderr
    wrong = fetch_in(netns, "-vv", "--layout", tmp_path / "wrong", ref, check=False,
                     env={"HTTPS_PROXY": proxy_url(proxy, password=PROXY_PASSWORD + "x")})
    assert wrong.returncode == ExitCode.UNREACHABLE and proxy.refused
    assert "407" in wrong.stderr.splitlines()[-1]
    from tests.fixtures.registry import free_port
    dead = fetch_in(netns, "-vv", "--layout", tmp_path / "dead", ref, check=False,
                    env={"HTTPS_PROXY": f"http://ann:{PROXY_PASSWORD}@127.0.0.1:{free_port()}"})
    assert dead.returncode == ExitCode.UNREACHABLE
    assert "cannot connect to the proxy" in dead.stderr.splitlines()[-1]
    for result in (good, wrong, dead):
        assert PROXY_PASSWORD not in result.stdout + result.stderr


def test_an_https_proxy(netns, tls_front, pki, etc, tmp_path):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.cert", pki / "server.key")
    routes = {tls_front.host: ("127.0.0.1", tls_front.upstream_port)}
    server = HTTPProxy(netns.listen("127.0.0.1"), routes, tls_context=context)
    try:
        trust_ca(etc, tls_front.host, pki)
        # The proxy's own certificate is checked against the system's CAs, which
        # SSL_CERT_FILE replaces here (OpenSSL reads it).
        fetch_in(netns, "-q", "--layout", tmp_path / "layout", f"{tls_front.host}/{IMAGE}",
                 env={"HTTPS_PROXY": f"https://127.0.0.1:{server.port}",
                      "SSL_CERT_FILE": str(pki / "ca.crt")})
        assert set(server.targets) == {tls_front.host}
    finally:
        server.close()


def test_a_socks5_proxy_resolves_and_connects_for_us(netns, tls_front, pki, etc, tmp_path):
    routes = {tls_front.host: ("127.0.0.1", tls_front.upstream_port)}
    server = Socks5Proxy(netns.listen("127.0.0.1"), routes, credentials=("ann", PROXY_PASSWORD))
    try:
        trust_ca(etc, tls_front.host, pki)
        direct = tls_front.relay.connections
        result = fetch_in(netns, "-vv", "--layout", tmp_path / "layout",
                          f"{tls_front.host}/{IMAGE}",
                          env={"HTTPS_PROXY": f"socks5://ann:{PROXY_PASSWORD}@127.0.0.1:"
                                              f"{server.port}"})
        assert server.targets and set(server.targets) == {tls_front.host}
        assert tls_front.relay.connections == direct
        assert PROXY_PASSWORD not in result.stderr
    finally:
        server.close()
