"""Manifests, indexes and configs: recognise, validate, and choose a platform.

An image is a manifest (OCI image-spec manifest.md, or Docker's schema2)
naming a config blob and layer blobs. A multi-platform image is an index
(OCI index.md, or Docker's manifest list) naming one manifest per platform.
Docker's older schema1 is refused. The JSON schemas below hold the rules
that matter to a puller; `violation` checks them, and jsonschema is imported
only to word the error when a document breaks one.
"""

import json
import os
import re

from mocker_common.errors import Corrupt, ExitCode, MockerError, NotFound
from mocker_common.mediatypes import INDEXES, MANIFESTS, SCHEMA1
from mocker_common.record import FrozenRecord

# image-spec descriptor.md: the registered algorithms, the only ones we can verify.
DIGEST_PATTERN = r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"

DESCRIPTOR = {
    "type": "object",
    "required": ["mediaType", "digest", "size"],
    "properties": {
        "mediaType": {"type": "string", "minLength": 1},
        "digest": {"type": "string", "pattern": DIGEST_PATTERN},
        "size": {"type": "integer", "minimum": 0},
        "urls": {"type": "array", "items": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "config", "layers"],
    "properties": {
        "schemaVersion": {"const": 2},
        "mediaType": {"enum": list(MANIFESTS)},
        "config": DESCRIPTOR,
        "layers": {"type": "array", "items": DESCRIPTOR},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

INDEX_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "manifests"],
    "properties": {
        "schemaVersion": {"const": 2},
        "mediaType": {"enum": list(INDEXES)},
        "manifests": {"type": "array", "items": {
            "allOf": [DESCRIPTOR, {"properties": {"platform": {
                "type": "object",
                "required": ["architecture", "os"],
                "properties": {"architecture": {"type": "string"}, "os": {"type": "string"},
                               "variant": {"type": "string"}},
            }}}],
        }},
    },
}

CONFIG_SCHEMA = {
    "type": "object",
    "required": ["architecture", "os", "rootfs"],
    "properties": {
        "architecture": {"type": "string"},
        "os": {"type": "string"},
        "created": {"type": "string"},
        "config": {"type": ["object", "null"]},
        "rootfs": {
            "type": "object",
            "required": ["type", "diff_ids"],
            "properties": {
                "type": {"const": "layers"},
                "diff_ids": {"type": "array",
                             "items": {"type": "string", "pattern": DIGEST_PATTERN}},
            },
        },
    },
}

# uname -m -> the GOARCH names image indexes use (image-spec image-index.md, platform).
_ARCH = {"x86_64": ("amd64", ""), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"),
         "armv6l": ("arm", "v6"), "i686": ("386", ""), "i386": ("386", ""),
         "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


class Platform(FrozenRecord):
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, entry: dict) -> bool:
        """Does an index entry's `platform` object name this platform?"""
        if entry.get("os") != self.os or entry.get("architecture") != self.architecture:
            return False
        # arm64 images often leave out "v8"; a variant counts only if both name one.
        theirs = entry.get("variant", "")
        return not (self.variant and theirs) or theirs == self.variant


def parse_platform(text: str) -> Platform:
    """`os/arch[/variant]`, as --platform takes it (docker pull --platform)."""
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise MockerError(f"invalid platform {text!r}: expected os/arch[/variant]",
                          ExitCode.USAGE)
    return Platform(*parts)


def host_platform() -> Platform:
    machine = os.uname().machine
    architecture, variant = _ARCH.get(machine, (machine, ""))
    return Platform("linux", architecture, variant)


def load(data: bytes, what: str) -> dict:
    try:
        document = json.loads(data)
    except ValueError as err:
        raise Corrupt(f"{what} is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise Corrupt(f"{what} is not a JSON object")
    return document


def kind(document: dict, content_type: str) -> str:
    """"index" or "manifest", from mediaType (or, failing that, Content-Type)."""
    media_type = document.get("mediaType") or content_type
    if document.get("schemaVersion") == 1 or media_type in SCHEMA1:
        raise MockerError("this image uses Docker's deprecated schema1 manifest format, which "
                          "mocker does not support; push it again with a current Docker")
    if media_type in INDEXES or (not media_type and "manifests" in document):
        return "index"
    if media_type in MANIFESTS or (not media_type and "layers" in document):
        return "manifest"
    raise MockerError(f"unsupported manifest media type {media_type!r}")


def validate(document: dict, schema: dict, what: str) -> None:
    """Check a document against one of the schemas above; raise Corrupt naming the rule.

    The schemas use a few keywords only, which `violation` below checks in
    microseconds; jsonschema (~50 ms to import) is asked only to word the
    error of a document already found bad. tests/test_fetch_units.py holds
    the two to the same verdicts.
    """
    found = violation(document, schema)
    if found is None:
        return
    import jsonschema  # heavy: only for a bad document, to name the best-matching rule
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(document))
    if error is not None:
        where, message = "/".join(str(p) for p in error.absolute_path), error.message
    else:   # cannot happen while the two agree; the verdict stands
        where, message = found
    raise Corrupt(f"invalid {what} at {where or 'top level'}: {message}")


# JSON Schema (draft 2020-12) types, as jsonschema tells them apart: a bool is
# not a number, and 2.0 is an integer.
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)
                          or isinstance(v, float) and v.is_integer()),
}


def _equal(a, b) -> bool:
    """JSON equality: true is not 1."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def violation(value, schema: dict, path: str = "") -> tuple[str, str] | None:
    """The first rule of schema that value breaks, as (path, message); None if none.

    Only the keywords the schemas above use: type, const, enum, pattern,
    minLength, minimum, required, properties, additionalProperties, items, allOf.
    """
    def broken(message):
        return path, message

    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[name](value) for name in names):
            return broken(f"{value!r} is not of type {types!r}")
    if "const" in schema and not _equal(value, schema["const"]):
        return broken(f"{schema['const']!r} was expected")
    if "enum" in schema and not any(_equal(value, v) for v in schema["enum"]):
        return broken(f"{value!r} is not one of {schema['enum']!r}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return broken(f"{value!r} is too short")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return broken(f"{value!r} does not match {schema['pattern']!r}")
    if _TYPES["number"](value) and "minimum" in schema and value < schema["minimum"]:
        return broken(f"{value!r} is less than the minimum of {schema['minimum']!r}")
    for part in schema.get("allOf", ()):
        if (found := violation(value, part, path)) is not None:
            return found
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            if found := violation(item, schema["items"], f"{path}/{n}".lstrip("/")):
                return found
    if isinstance(value, dict):
        return _object_violation(value, schema, path)
    return None


def _object_violation(value: dict, schema: dict, path: str) -> tuple[str, str] | None:
    for name in schema.get("required", ()):
        if name not in value:
            return path, f"{name!r} is a required property"
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for name, item in value.items():
        rule = properties[name] if name in properties else extra
        if rule is not None and (found := violation(item, rule, f"{path}/{name}".lstrip("/"))):
            return found
    return None


def select_platform(index: dict, wanted: Platform) -> dict:
    """The index entry for the wanted platform (the first one, as Docker picks)."""
    entries = [e for e in index.get("manifests", [])
               if isinstance(e, dict) and isinstance(e.get("digest"), str)]
    for entry in entries:
        if wanted.matches(entry.get("platform") or {}):
            return entry
    offered = ", ".join(str(Platform(p.get("os", "?"), p.get("architecture", "?"),
                                     p.get("variant", "")))
                        for p in (e.get("platform") or {} for e in entries)) or "none"
    raise NotFound(f"no image for platform {wanted} (the index offers {offered})")


def check_config(config: dict, manifest: dict) -> None:
    """Rules across two documents: one diff_id per layer (image-spec config.md)."""
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(manifest["layers"]):
        raise Corrupt(f"config lists {len(diff_ids)} diff_ids for "
                      f"{len(manifest['layers'])} layers")
