"""Saving and removing credentials the way `docker login` and `docker logout` do.

Docker's ~/.docker/config.json (or $DOCKER_CONFIG/config.json) keeps, per
registry, either the credentials themselves:

    {"auths": {"198.51.100.7:5000": {"auth": "<base64 of user:password>"}}}

or nothing but the name of a credential helper that keeps them (a keychain):
`credHelpers` for one registry, `credsStore` for all; then the helper is asked
to `store` or `erase` them (credhelper.py) and the file only lists the server
under `auths` with an empty entry, as Docker writes it. Docker Hub's key is its
old v1 URL. Reading is in auth.py (lookup_credentials).

The file is rewritten whole, atomically, with mode 0600 (it may hold passwords),
keeping every other key as it was.
"""

import base64
import json
from pathlib import Path

from mocker_common.errors import MockerError
from mocker_common.files import atomic_write

from mocker_common.reference import DOCKER_HUB

from .auth import _DOCKER_HUB_KEYS, _host_of, docker_config_path
from .credentials import Credentials

HUB_KEY = _DOCKER_HUB_KEYS[0]   # https://index.docker.io/v1/


def server_key(registry: str) -> str:
    """The auths key for a registry as the user named it (Docker Hub's v1 URL for it)."""
    host = _host_of(registry.strip())
    if host in _DOCKER_HUB_KEYS or host in (DOCKER_HUB, "index.docker.io",
                                            "registry-1.docker.io", ""):
        return HUB_KEY
    return host


def _load(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise MockerError(f"cannot read auth file {path}: {err}") from None
    if not isinstance(config, dict):
        raise MockerError(f"auth file {path} is not a JSON object")
    return config


def _save(path: Path, config: dict) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(config, indent="\t") + "\n").encode(), mode=0o600)


def _helper_for(config: dict, key: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    helper = (helpers.get(key) or helpers.get(_host_of(key))) if isinstance(helpers, dict) \
        else None
    helper = helper or config.get("credsStore")
    if helper is not None and not isinstance(helper, str):
        raise MockerError("a credential helper's name must be a string")
    return helper or None


def save_credentials(key: str, credentials: Credentials, path: Path | None = None) -> str:
    """Store credentials for key; return where they went (a file or a helper)."""
    path = Path(path or docker_config_path())
    config = _load(path)
    helper = _helper_for(config, key)
    auths = config.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise MockerError(f"auth file {path}: auths is not a JSON object")
    if helper:
        from .credhelper import helper_store
        helper_store(helper, key, credentials)
        auths[key] = {}
        where = f"credential helper docker-credential-{helper}"
    else:
        raw = f"{credentials.username}:{credentials.password}".encode()
        auths[key] = {"auth": base64.b64encode(raw).decode()}
        where = str(path)
    _save(path, config)
    return where


def remove_credentials(key: str, path: Path | None = None) -> bool:
    """Forget key's credentials; False if none were stored."""
    path = Path(path or docker_config_path())
    config = _load(path)
    helper = _helper_for(config, key)
    found = False
    if helper:
        from .credhelper import helper_erase
        found = helper_erase(helper, key)
    auths = config.get("auths")
    if isinstance(auths, dict):
        for name in [k for k in auths if k == key or _host_of(k) == _host_of(key)]:
            del auths[name]
            found = True
        _save(path, config)
    return found
