"""Check a config.json against the runtime-spec's JSON schema (vendored in schema/)."""

import json
from pathlib import Path

from mocker_common.errors import MockerError

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
ROOT_SCHEMA = "config-schema.json"


def validate_config(config: dict) -> None:
    """Raise MockerError naming the first place where config breaks the schema."""
    # jsonschema is heavy to import: only here, when a bundle is being written.
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    # The schema files refer to each other by bare file name ("defs.json#/...").
    resources = [(path.name, Resource.from_contents(json.loads(path.read_text()),
                                                    default_specification=DRAFT4))
                 for path in SCHEMA_DIR.glob("*.json")]
    registry = Registry().with_resources(resources)
    validator = jsonschema.Draft4Validator({"$ref": ROOT_SCHEMA}, registry=registry)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise MockerError(f"generated config.json breaks the runtime-spec schema at {where}: "
                          f"{error.message}")
