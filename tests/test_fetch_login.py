"""`mocker login` / `mocker logout` against the Basic and token fixture registries,
with a DOCKER_CONFIG of the test's own: the credentials are checked with the
registry before they are saved, saved as Docker saves them (mode 0600, or in a
credential helper), and then a bare `mocker-fetch` pull uses them."""

import base64
import json
import os
import stat
import subprocess
import sys

import pytest

from mocker_common.errors import ExitCode
from tests.conftest import need_tool
from tests.test_fetch_pull import assert_all_blobs_verified, fetch

# A credential helper keeping its secrets in a JSON file beside it (store, get, erase).
HELPER = f"""#!{sys.executable}
import json, pathlib, sys
store = pathlib.Path(__file__).with_suffix(".json")
data = json.loads(store.read_text()) if store.exists() else {{}}
verb, given = sys.argv[1], sys.stdin.read()
if verb == "store":
    entry = json.loads(given)
    data[entry["ServerURL"]] = [entry["Username"], entry["Secret"]]
elif given.strip() not in data:
    print("credentials not found in native keychain")
    sys.exit(1)
elif verb == "get":
    user, secret = data[given.strip()]
    print(json.dumps({{"ServerURL": given.strip(), "Username": user, "Secret": secret}}))
else:
    del data[given.strip()]
store.write_text(json.dumps(data))
"""


@pytest.fixture
def home(tmp_path):
    """DOCKER_CONFIG and HOME of the test's own."""
    config = tmp_path / "docker-config"
    return {"DOCKER_CONFIG": str(config), "HOME": str(tmp_path / "home")}


def mocker(*args, env, stdin=None, check=True):
    result = subprocess.run(["mocker", *map(str, args)], input=stdin, capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_login_then_a_bare_pull_then_logout(basic_registry, home, tmp_path):
    reg = basic_registry
    result = mocker("login", "-u", reg.username, "--password-stdin", reg.host,
                    env=home, stdin=reg.password + "\n")
    assert result.stdout == "Login Succeeded\n"
    assert reg.password not in result.stdout + result.stderr
    config_file = tmp_path / "docker-config" / "config.json"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    entry = json.loads(config_file.read_text())["auths"][reg.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{reg.username}:{reg.password}"

    layout = tmp_path / "layout"
    fetch("-q", "--layout", layout, f"{reg.host}/library/busybox", env=home)
    assert_all_blobs_verified(layout)

    out = mocker("logout", reg.host, env=home)
    assert out.stdout == f"Removing login credentials for {reg.host}\n"
    assert reg.host not in json.loads(config_file.read_text())["auths"]
    assert mocker("logout", reg.host, env=home).stdout == f"Not logged in to {reg.host}\n"
    refused = fetch("-q", "--layout", tmp_path / "again", f"{reg.host}/layered", env=home,
                    check=False)
    assert refused.returncode == ExitCode.UNAUTHORIZED


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_a_wrong_password_is_refused_and_nothing_is_saved(request, which, home, tmp_path):
    reg = request.getfixturevalue(which)
    result = mocker("login", "-u", reg.username, "--password-stdin", reg.host, env=home,
                    stdin="wrong-password", check=False)
    assert result.returncode == ExitCode.UNAUTHORIZED, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("mocker login: ")
    assert not (tmp_path / "docker-config" / "config.json").exists()


def test_a_token_registry_login_is_checked_with_its_token_server(token_registry, home,
                                                                  tmp_path):
    reg = token_registry
    before = len(reg.token_server.requests)
    mocker("login", "-u", reg.username, "--password-stdin", reg.host, env=home,
           stdin=reg.password)
    assert [user for user, _ in reg.token_server.requests[before:]] == [reg.username]
    fetch("-q", "--layout", tmp_path / "layout", f"{reg.host}/layered", env=home)


def test_login_stores_in_the_credential_helper_named_by_creds_store(basic_registry, home,
                                                                     tmp_path):
    reg = basic_registry
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-testkeys"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    config_file = tmp_path / "docker-config" / "config.json"
    config_file.parent.mkdir()
    config_file.write_text(json.dumps({"credsStore": "testkeys", "other": {"kept": True}}))
    env = {**home, "PATH": f"{bindir}:{os.environ['PATH']}"}
    result = mocker("login", "-u", reg.username, "--password-stdin", reg.host, env=env,
                    stdin=reg.password)
    assert "unencrypted" not in result.stderr
    config = json.loads(config_file.read_text())
    assert config == {"credsStore": "testkeys", "other": {"kept": True}, "auths": {reg.host: {}}}
    assert reg.password not in config_file.read_text()
    assert json.loads(helper.with_suffix(".json").read_text()) == {
        reg.host: [reg.username, reg.password]}
    fetch("-q", "--layout", tmp_path / "layout", f"{reg.host}/library/busybox", env=env)
    mocker("logout", reg.host, env=env)
    assert json.loads(helper.with_suffix(".json").read_text()) == {}


def test_login_without_a_terminal_needs_the_user_and_password_flags(basic_registry, home):
    result = mocker("login", basic_registry.host, env=home, stdin="", check=False)
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.strip() == ("mocker login: give a user name with -u "
                                     "(there is no terminal to ask on)")


@pytest.mark.interop
@pytest.mark.slow
def test_skopeo_login_writes_the_same_entry(basic_registry, home, tmp_path):
    # The peer on the same case: skopeo's auth file entry is the one mocker writes.
    skopeo = need_tool("skopeo")
    reg = basic_registry
    mocker("login", "-u", reg.username, "--password-stdin", reg.host, env=home,
           stdin=reg.password)
    theirs = tmp_path / "skopeo-auth.json"
    subprocess.run([skopeo, "login", "--tls-verify=false", "--authfile", theirs, "-u",
                    reg.username, "--password-stdin", reg.host], input=reg.password,
                   text=True, check=True, capture_output=True, timeout=120)
    ours = json.loads((tmp_path / "docker-config" / "config.json").read_text())
    assert ours["auths"][reg.host] == json.loads(theirs.read_text())["auths"][reg.host]


def test_bash_completion_offers_the_saved_registries(basic_registry, home, tmp_path):
    from tests.test_mocker import _complete
    mocker("login", "-u", basic_registry.username, "--password-stdin", basic_registry.host,
           env=home, stdin=basic_registry.password)
    os.environ["DOCKER_CONFIG"], saved = home["DOCKER_CONFIG"], os.environ.get("DOCKER_CONFIG")
    try:
        assert _complete("log") == ["logs", "login", "logout"]
        assert _complete("logout", "") == [basic_registry.host]
        assert "--password-stdin" in _complete("login", "--pass")
    finally:
        if saved is None:
            del os.environ["DOCKER_CONFIG"]
        else:
            os.environ["DOCKER_CONFIG"] = saved
