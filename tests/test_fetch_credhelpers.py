"""Credential helpers named in ~/.docker/config.json (credsStore, credHelpers), against
the Basic and token fixture registries. Each helper is a real program on PATH that
speaks the docker-credential-helpers protocol, keeping its secrets in a file."""

import json
import os
from pathlib import Path

import pytest

from mocker_common.errors import ExitCode
from tests.test_fetch_pull import fetch, index_entries

# `docker-credential-NAME get`: server URL on stdin, JSON on stdout; every request
# is logged (NAME SERVER) so that a test can see which helper was asked.
HELPER = """#!/bin/sh
[ "$1" = get ] || {{ echo "unsupported action $1"; exit 1; }}
read -r server
echo "{name} $server" >> {log}
{body}
"""
SECRETS = """line=$(grep -F "$server " {secrets} | head -n 1)
if [ -z "$line" ]; then echo "credentials not found in native keychain"; exit 1; fi
set -- $line
printf '{{"ServerURL":"%s","Username":"%s","Secret":"%s"}}\\n' "$1" "$2" "$3"
"""


class Helpers:
    """A directory for helper programs and a DOCKER_CONFIG directory."""

    def __init__(self, tmp_path: Path):
        self.bin = tmp_path / "bin"
        self.config = tmp_path / "docker"
        self.log = tmp_path / "asked.log"
        self.bin.mkdir()
        self.config.mkdir()

    def add(self, name: str, secrets: dict | None = None, body: str | None = None) -> None:
        """A helper that answers from `secrets` (server -> (user, secret)), or runs body."""
        if body is None:
            store = self.bin / f"{name}.secrets"
            store.write_text("".join(f"{server} {user} {secret}\n"
                                     for server, (user, secret) in (secrets or {}).items()))
            body = SECRETS.format(secrets=store)
        program = self.bin / f"docker-credential-{name}"
        program.write_text(HELPER.format(name=name, log=self.log, body=body))
        program.chmod(0o755)

    def configure(self, **config) -> None:
        (self.config / "config.json").write_text(json.dumps(config))

    def asked(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def env(self) -> dict:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}", "DOCKER_CONFIG": str(self.config)}


@pytest.fixture
def helpers(tmp_path):
    return Helpers(tmp_path)


def basic_auth(username: str, password: str) -> dict:
    import base64
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_creds_store_logs_in_to_a_basic_registry(basic_registry, helpers, tmp_path):
    reg = basic_registry
    helpers.add("vault", {reg.host: (reg.username, reg.password)})
    # With a credsStore, `auths` holds only placeholders (or stale entries): the store wins.
    helpers.configure(credsStore="vault", auths={reg.host: basic_auth(reg.username, "stale")})
    layout = tmp_path / "layout"
    fetch("--layout", layout, f"{reg.host}/library/busybox", env=helpers.env())
    assert f"{reg.host}/library/busybox:latest" in index_entries(layout)
    assert helpers.asked() == [f"vault {reg.host}"]


def test_cred_helper_for_the_registry_wins_over_the_store(token_registry, helpers, tmp_path):
    reg = token_registry
    helpers.add("per-registry", {reg.host: (reg.username, reg.password)})
    helpers.add("store", {reg.host: (reg.username, "wrong")})
    helpers.configure(credsStore="store", credHelpers={reg.host: "per-registry"},
                      auths={reg.host: basic_auth(reg.username, "wrong")})
    before = len(reg.token_server.requests)
    fetch("--layout", tmp_path / "layout", f"{reg.host}/layered", env=helpers.env())
    assert helpers.asked() == [f"per-registry {reg.host}"]
    # The token server saw the helper's user, so the token was asked for with its secret.
    assert reg.token_server.requests[before:] == [(reg.username, ["repository:layered:pull"])]


def test_credentials_not_found_means_anonymous(token_registry, basic_registry, helpers,
                                               tmp_path):
    helpers.add("empty", {})
    helpers.configure(credsStore="empty")
    layout = tmp_path / "layout"
    # The token registry lets anyone pull public/…; the helper's "not found" is no error.
    fetch("--layout", layout, f"{token_registry.host}/public/busybox", env=helpers.env())
    assert helpers.asked() == [f"empty {token_registry.host}"]
    # A registry that needs a login then refuses the anonymous pull, as without a helper.
    result = fetch("-q", "--layout", layout, f"{basic_registry.host}/library/busybox",
                   env=helpers.env(), check=False)
    assert result.returncode == ExitCode.UNAUTHORIZED, result.stderr


@pytest.mark.parametrize("name, body, says", [
    ("locked", 'echo "the keychain is locked" >&2; exit 3', "the keychain is locked"),
    ("garbled", "echo 'not json'", "did not answer with JSON"),
    ("absent", None, "docker-credential-absent is not installed"),
])
def test_a_failing_helper_is_one_clear_line(registry, helpers, tmp_path, name, body, says):
    if body is not None:
        helpers.add(name, body=body)
    helpers.configure(credHelpers={registry.host: name})
    layout = tmp_path / "layout"
    result = fetch("-q", "--layout", layout, f"{registry.host}/library/busybox",
                   env=helpers.env(), check=False)
    assert result.returncode == ExitCode.ERROR
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert says in result.stderr
    assert not (layout / "index.json").exists() or index_entries(layout) == {}


def test_docker_hub_is_asked_for_under_its_v1_url(helpers, monkeypatch):
    from mocker_fetch import auth
    helpers.add("hub", {"https://index.docker.io/v1/": ("ann", "s3cret")})
    helpers.configure(credHelpers={"index.docker.io": "hub"})
    for name, value in helpers.env().items():
        monkeypatch.setenv(name, value)
    assert auth.lookup_credentials("docker.io") == auth.Credentials("ann", "s3cret")
    assert helpers.asked() == ["hub https://index.docker.io/v1/"]
