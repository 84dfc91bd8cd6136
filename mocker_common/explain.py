"""`--explain`: a command prints a POSIX shell script that does its job with
standard tools (curl, sha256sum, tar, jq, mount, unshare, capsh, ip, nft)
instead of doing it. Each command writes its own part; `mocker run --explain`
joins the four parts after one header.

A part is a template: @NAME@ is replaced by the shell-quoted value, and
every other character is shell, so the templates read as the script they
print. Parts share these variables: WORK (a scratch directory), LAYOUT (the
OCI image layout), BUNDLE (rootfs/ and the image's settings), ID, NETNS, and
`on_exit CMD`, which queues CMD for the teardown (last queued runs first).
"""

import json
import re
import shlex

HEADER = r"""#!/bin/sh
# Written by `@WHO@ --explain`: what mocker does, with standard tools, step by
# step. Each step names the spec section it follows and the mocker source
# file that does it there. Run it as root: sh FILE. It removes what it made
# when it ends, also after an error or Ctrl-C.
set -eu
PATH=$PATH:/usr/sbin:/sbin
need() {
    for tool; do
        command -v "$tool" >/dev/null 2>&1 || { echo "explain: this script needs $tool" >&2; exit 127; }
    done
}
WORK=$(mktemp -d /tmp/mocker-explain.XXXXXX)
TEARDOWN="rm -rf '$WORK'"
on_exit() { TEARDOWN="$1; $TEARDOWN"; }
trap 'set +e; eval "$TEARDOWN"' EXIT
trap 'exit 130' INT TERM
"""

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def fill(template: str, **values) -> str:
    """The template with each @NAME@ replaced by its value, shell-quoted.

    A value that is a RawShell is put in as it is (for lists of words)."""
    def one(match):
        value = values[match.group(1)]
        return value if isinstance(value, RawShell) else shlex.quote(str(value))
    return _PLACEHOLDER.sub(one, template)


class RawShell(str):
    """Shell text to put into a template unquoted: already quoted words."""


def words(items) -> RawShell:
    return RawShell(" ".join(shlex.quote(str(i)) for i in items))


def header(who: str) -> str:
    return fill(HEADER, WHO=RawShell(" ".join(who.split())))   # in a comment: one line


def take_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--explain` (a whole script) or `--explain=part` (no header, for joining),
    which must come first; (None, argv) when absent."""
    if argv and argv[0] in ("--explain", "--explain=part"):
        return argv[0].partition("=")[2] or "script", argv[1:]
    return None, argv


def emit(who: str, mode: str, tools: list[str], part: str) -> int:
    """Print a part, after the header unless only the part was asked for."""
    import os
    import sys
    # `mocker run --explain` asks mocker-fetch for the script's head: named for it.
    who = os.environ.get("MOCKER_EXPLAIN_FOR") or who
    text = (header(who) if mode == "script" else "") + f"\nneed {words(tools)}" + part
    sys.stdout.write(text)
    return 0


def short_json(value, indent: str = "") -> str:
    """JSON for a reader: objects one key a line, but a list of plain values, or
    an object of them, on one line (json.dumps(indent=2) gives each its own)."""
    flat = json.dumps(value)
    if not isinstance(value, (dict, list)):
        return flat
    members = value.values() if isinstance(value, dict) else value
    if not any(isinstance(v, (dict, list)) for v in members) and \
            len(flat) <= (100 if isinstance(value, dict) else 240):
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {short_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    items = [f"{inner}{short_json(v, inner)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"
