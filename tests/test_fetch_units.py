"""The pure parts of mocker-fetch: challenges, auth files, platforms, manifest rules."""

import base64
import json
from datetime import datetime, timezone

import pytest

from mocker_common.errors import Corrupt, MockerError, NotFound
from mocker_fetch import auth, manifest
from mocker_fetch.images import _age, _split_refname
from mocker_fetch.registry import is_loopback


def test_parse_bearer_and_basic_challenges():
    bearer = auth.parse_challenge('Bearer realm="https://auth.docker.io/token",'
                                  'service="registry.docker.io",scope="repository:library/busybox:pull"')
    assert bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                             "scope": "repository:library/busybox:pull"}
    basic = auth.parse_challenge('Basic realm="Registry Realm"')
    assert (basic.scheme, basic.params) == ("basic", {"realm": "Registry Realm"})


def test_credentials_from_an_auth_file(tmp_path):
    path = tmp_path / "config.json"
    encoded = base64.b64encode(b"ann:pa:ss").decode()
    path.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": encoded},
        "registry.example:5000": {"username": "bob", "password": "pw"},
    }}))
    assert auth.lookup_credentials("docker.io", path) == auth.Credentials("ann", "pa:ss")
    assert auth.lookup_credentials("registry.example:5000", path) == auth.Credentials("bob", "pw")
    assert auth.lookup_credentials("other.example", path) is None
    with pytest.raises(MockerError, match="does not exist"):
        auth.lookup_credentials("docker.io", tmp_path / "missing.json")


def test_creds_flag():
    assert auth.parse_creds("u:p:q") == auth.Credentials("u", "p:q")
    with pytest.raises(MockerError, match="USER:PASSWORD"):
        auth.parse_creds("nopassword")


def test_loopback_hosts():
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example:5000") and not is_loopback("10.0.0.1")


INDEX = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "m", "digest": "sha256:" + "1" * 64, "size": 1,
     "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": "m", "digest": "sha256:" + "2" * 64, "size": 1,
     "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
    {"mediaType": "m", "digest": "sha256:" + "3" * 64, "size": 1,
     "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    {"mediaType": "m", "digest": "sha256:" + "4" * 64, "size": 1,
     "platform": {"os": "linux", "architecture": "arm64"}},
]}


@pytest.mark.parametrize("wanted, digit", [
    ("linux/amd64", "1"), ("linux/arm/v7", "3"), ("linux/arm/v6", "2"), ("linux/arm64/v8", "4"),
])
def test_platform_selection(wanted, digit):
    chosen = manifest.select_platform(INDEX, manifest.parse_platform(wanted))
    assert chosen["digest"] == "sha256:" + digit * 64


def test_missing_platform_lists_what_is_offered():
    with pytest.raises(NotFound, match=r"linux/riscv64 .*linux/amd64, linux/arm/v6"):
        manifest.select_platform(INDEX, manifest.parse_platform("linux/riscv64"))
    with pytest.raises(MockerError, match="os/arch"):
        manifest.parse_platform("amd64")


def test_schema1_is_refused():
    with pytest.raises(MockerError, match="schema1"):
        manifest.kind({"schemaVersion": 1, "fsLayers": []}, "")


def test_validation_names_the_broken_rule():
    bad = {"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:zz", "size": 1},
           "layers": []}
    with pytest.raises(Corrupt, match="config/digest"):
        manifest.validate(bad, manifest.MANIFEST_SCHEMA, "manifest")
    with pytest.raises(Corrupt, match="rootfs"):
        manifest.validate({"architecture": "amd64", "os": "linux"}, manifest.CONFIG_SCHEMA, "config")
    manifest.validate(INDEX, manifest.INDEX_SCHEMA, "index")


def test_diff_ids_must_match_layers():
    config = {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    with pytest.raises(Corrupt, match="1 diff_ids for 0 layers"):
        manifest.check_config(config, {"layers": []})


def test_listing_helpers():
    now = datetime(2024, 1, 10, tzinfo=timezone.utc)
    assert _age("2024-01-07T00:00:00Z", now) == "3 days ago"
    assert _age("2024-01-10T00:00:30Z", now) == "less than a minute ago"
    assert _age("", now) == "-"
    assert _split_refname("docker.io/library/busybox:1.36") == ("docker.io/library/busybox", "1.36", "busybox")
    assert _split_refname("v1.0") == ("", "v1.0", "")


def test_progress_bars_on_a_terminal_lines_otherwise_nothing_when_quiet():
    import io
    from mocker_fetch.progress import Progress
    outputs = {}
    for mode, kwargs in {"tty": {"tty": True}, "plain": {"tty": False},
                         "quiet": {"tty": True, "quiet": True}}.items():
        stream = io.StringIO()
        progress = Progress(stream, **kwargs)
        progress.start("sha256:" + "a" * 64, 2_000_000)
        progress.start("sha256:" + "b" * 64, 10, present=True)
        progress.advance("sha256:" + "a" * 64, 1_000_000)
        progress.done("sha256:" + "a" * 64)
        outputs[mode] = stream.getvalue()
    assert "\x1b[2F" in outputs["tty"] and "] 0 B/2.0 MB" in outputs["tty"]
    assert outputs["tty"].rstrip().endswith("bbbbbbbbbbbb: Already exists")
    assert outputs["plain"].splitlines() == ["aaaaaaaaaaaa: Downloading (2.0 MB)",
                                             "bbbbbbbbbbbb: Already exists (10 B)",
                                             "aaaaaaaaaaaa: Pull complete"]
    assert outputs["quiet"] == ""


def test_help_does_not_import_the_heavy_modules():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "mocker_fetch", "--help"],
                            capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not {"requests", "jsonschema", "tabulate"} & imported


def _fill(blob_sink, total: int, chunk: int = 1 << 20) -> bytes:
    data = bytes(range(256)) * (total // 256)
    for start in range(0, len(data), chunk):
        blob_sink.write(data[start:start + chunk])
    return data


def test_sink_flushes_early_on_a_thread_and_keeps_every_byte(tmp_path, monkeypatch):
    import hashlib
    import os
    import threading
    from mocker_fetch import sink as sink_module
    synced_by = []
    real_fdatasync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced_by.append(
        threading.current_thread().name), real_fdatasync(fd)))
    with open(tmp_path / "blob", "a+b", buffering=0) as file:
        blob_sink = sink_module.Sink(file, hashlib.sha256())
        data = _fill(blob_sink, sink_module.FLUSH_EVERY + (3 << 20))
        blob_sink.sync()
    assert synced_by == ["flush", "MainThread"]   # one early flush, then the tail
    assert (tmp_path / "blob").read_bytes() == data
    assert blob_sink.hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_sink_reports_a_failed_early_flush(tmp_path, monkeypatch):
    # A disk error cannot be made here on demand: fdatasync is replaced by one that
    # fails once, as a real one does (a later fdatasync may not report it again).
    import errno
    import hashlib
    import os
    from mocker_fetch import sink as sink_module
    failures = [OSError(errno.EIO, "Input/output error")]

    def fdatasync_failing_once(fd):
        if failures:
            raise failures.pop()
    monkeypatch.setattr(os, "fdatasync", fdatasync_failing_once)
    with open(tmp_path / "blob", "a+b", buffering=0) as file:
        blob_sink = sink_module.Sink(file, hashlib.sha256())
        _fill(blob_sink, sink_module.FLUSH_EVERY + 1024, chunk=1 << 16)
        with pytest.raises(OSError, match="Input/output error"):
            blob_sink.sync()


def _mutations(value, path=()):
    """value with one part changed at a time: each key dropped, each value replaced by
    another JSON type (or a near miss: 2.0, -1, "", a bad digest), each list emptied."""
    odd_values = [None, True, False, 0, -1, 2.0, 1.5, "", "x", "sha256:" + "A" * 64, [], {},
                  ["x"], {"k": 1}]
    for replacement in odd_values:
        yield path, replacement
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,), ...   # ... drops the key
            yield from _mutations(item, path + (key,))
        yield path + ("extra",), {"k": 1}
    elif isinstance(value, list):
        for n, item in enumerate(value[:2]):
            yield from _mutations(item, path + (n,))


def _mutated(document, path, replacement):
    import copy
    document = copy.deepcopy(document)
    if not path:
        return replacement
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if replacement is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return document


def test_the_quick_schema_check_agrees_with_jsonschema():
    # manifest.violation stands in for jsonschema on the hot path: for each fixture
    # document and thousands of broken variants, the two must give the same verdict.
    import jsonschema
    from tests.fixtures import images
    image, index = images.configured_image(), images.platform_index()
    docker = images.busybox_image(docker=True)
    cases = [(image.manifest, manifest.MANIFEST_SCHEMA), (docker.manifest, manifest.MANIFEST_SCHEMA),
             (index.manifest, manifest.INDEX_SCHEMA), (image.config, manifest.CONFIG_SCHEMA),
             (images.platform_index(docker=True).manifest, manifest.INDEX_SCHEMA)]
    checked = bad = 0
    for document, schema in cases:
        validator = jsonschema.Draft202012Validator(schema)
        for path, replacement in _mutations(document):
            candidate = _mutated(document, path, replacement)
            expected = validator.is_valid(candidate)
            assert (manifest.violation(candidate, schema) is None) == expected, (path, replacement)
            checked, bad = checked + 1, bad + (not expected)
    assert checked > 1000 and 0 < bad < checked, (checked, bad)


def test_a_valid_pull_never_imports_jsonschema():
    import subprocess
    import sys
    from tests.fixtures import images
    image = images.configured_image()
    code = ("import json, sys; from mocker_fetch import manifest; "
            "manifest.validate(json.loads(sys.argv[1]), manifest.MANIFEST_SCHEMA, 'manifest'); "
            "manifest.validate(json.loads(sys.argv[2]), manifest.CONFIG_SCHEMA, 'config'); "
            "print('jsonschema' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(image.manifest),
                             json.dumps(image.config)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- proxies as Go programs choose them (proxy.py) -------------------------------------

@pytest.mark.parametrize("url, no_proxy, proxied", [
    ("https://198.51.100.7:5000/v2/", "", True),
    ("https://198.51.100.7:5000/v2/", "198.51.100.0/24", False),
    ("https://198.51.100.7:5000/v2/", "198.51.100.7:5000", False),
    ("https://198.51.100.7:5000/v2/", "198.51.100.7:5001", True),
    ("https://[2001:db8::7]:5000/v2/", "2001:db8::/32", False),
    ("https://[2001:db8::7]:5000/v2/", "[2001:db8::7]:5000", False),
    ("https://registry.example.com/v2/", "example.com", False),
    ("https://example.com/v2/", "example.com", False),
    ("https://example.com/v2/", ".example.com", True),
    ("https://registry.example.com/v2/", "*.example.com", False),
    ("https://notexample.com/v2/", "example.com", True),
    ("https://registry.example.com:443/v2/", "registry.example.com:443", False),
    ("https://registry.example.com/v2/", "registry.example.com:5000", True),
    ("https://registry.example.com/v2/", "*", False),
    ("https://REGISTRY.example.com/v2/", "Registry.Example.COM", False),
    ("http://127.0.0.1:5000/v2/", "", False),
    ("http://127.3.4.5:5000/v2/", "", False),
    ("http://[::1]:5000/v2/", "", False),
    ("http://localhost:5000/v2/", "", False),
])
def test_proxy_choice_follows_go(url, no_proxy, proxied):
    from mocker_fetch.proxy import proxy_for
    environ = {"HTTPS_PROXY": "proxy.example:3128", "HTTP_PROXY": "proxy.example:3128",
               "NO_PROXY": no_proxy}
    assert (proxy_for(url, environ) == "http://proxy.example:3128") is proxied


def test_proxy_variables_upper_case_first_and_schemes():
    from mocker_fetch.proxy import proxy_for, redact, scrub
    url = "https://198.51.100.7/v2/"
    assert proxy_for(url, {"https_proxy": "http://low:1"}) == "http://low:1"
    assert proxy_for(url, {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://UP:1"}) == \
        "http://UP:1"
    assert proxy_for(url, {"HTTP_PROXY": "http://p:1"}) is None      # only for http://
    assert proxy_for(url, {"HTTPS_PROXY": "socks5://p:1"}) == "socks5h://p:1"
    assert proxy_for(url, {"HTTPS_PROXY": "https://p:1"}) == "https://p:1"
    assert proxy_for("http://198.51.100.7/v2/", {"HTTP_PROXY": "http://p:1",
                                                   "REQUEST_METHOD": "GET"}) is None  # CGI
    assert redact("http://ann:s3cret@p:1") == "http://ann:xxxxx@p:1"
    assert redact("http://p:1") == "http://p:1"
    assert scrub("failed: http://ann:s%40cret@p:1", {"HTTPS_PROXY": "http://ann:s%40cret@p:1"}) \
        == "failed: http://ann:xxxxx@p:1"


# -- registry trust (trust.py) ----------------------------------------------------------

def test_registries_conf_insecure_matches_the_closest_location(tmp_path, monkeypatch):
    from mocker_fetch.trust import is_insecure
    conf = tmp_path / "containers" / "registries.conf"
    conf.parent.mkdir()
    conf.write_text('[[registry]]\nlocation = "198.51.100.7:5000"\ninsecure = true\n\n'
                    '[[registry]]\nlocation = "*.corp.example"\ninsecure = true\n\n'
                    '[[registry]]\nlocation = "safe.corp.example"\ninsecure = false\n')
    monkeypatch.setenv("MOCKER_ETC", str(tmp_path))
    monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF", raising=False)
    monkeypatch.setenv("MOCKER_ROOT", str(tmp_path / "root"))
    assert is_insecure("198.51.100.7:5000") and is_insecure("a.corp.example")
    assert not is_insecure("198.51.100.7:5001") and not is_insecure("safe.corp.example")
    assert is_insecure("127.0.0.1:1") and is_insecure("localhost")
    conf.write_text("[[registry]\n")
    with pytest.raises(MockerError, match="is not valid TOML"):
        is_insecure("198.51.100.7:5000")


def test_daemon_json_insecure_registries_by_name_and_cidr(tmp_path, monkeypatch):
    from mocker_fetch.trust import is_insecure
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "daemon.json").write_text(
        '{"insecure-registries": ["http://reg.example:5000", "198.51.100.0/24", "2001:db8::/32"]}')
    monkeypatch.setenv("MOCKER_ETC", str(tmp_path))
    monkeypatch.setenv("MOCKER_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(tmp_path / "none.conf"))
    assert is_insecure("reg.example:5000") and is_insecure("198.51.100.9:443")
    assert is_insecure("[2001:db8::1]:5000")
    assert not is_insecure("203.0.113.1:5000")


@pytest.mark.parametrize("bad", ["http://ann:pw-9x@[::1", "http://ann:pw-9x@host:port",
                                 "http://ann:pw-9x@"])
def test_a_proxy_url_that_does_not_parse_is_refused_without_its_password(bad):
    from mocker_fetch.proxy import proxy_for
    with pytest.raises(MockerError) as refused:
        proxy_for("https://198.51.100.7/v2/", {"HTTPS_PROXY": bad})
    assert "pw-9x" not in str(refused.value) and "is not a URL" in str(refused.value)
