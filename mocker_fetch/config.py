"""Where the Docker Hub mirrors come from: --mirror, then $MOCKER_REGISTRY_MIRROR,
then the `registry-mirrors` list of MOCKER_ROOT/config.json (Docker's daemon.json
spells it the same way). Mirrors serve Docker Hub only, as Docker's do.
"""

import os

from mocker_common import paths
from mocker_common.errors import MockerError
from mocker_common.files import read_json

from mocker_common.reference import DOCKER_HUB, Reference

MIRROR_ENV = "MOCKER_REGISTRY_MIRROR"


def config_path():
    return paths.root() / "config.json"


def hub_mirrors(ref: Reference, flag: list[str] | None = None) -> list[str]:
    """The mirrors to try before the registry itself, for this reference."""
    if ref.registry != DOCKER_HUB:
        return []
    if flag:
        return flag
    if os.environ.get(MIRROR_ENV):
        return [m.strip() for m in os.environ[MIRROR_ENV].split(",") if m.strip()]
    try:
        mirrors = read_json(config_path()).get("registry-mirrors", [])
    except FileNotFoundError:
        return []
    except (OSError, ValueError, AttributeError) as err:
        raise MockerError(f"cannot read {config_path()}: {err}") from None
    if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
        raise MockerError(f"{config_path()}: registry-mirrors must be a list of URLs")
    return mirrors
