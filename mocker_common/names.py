"""The rules for names that become paths, command words or file text.

Every name a user, an image or a caller hands us (a container id, an
interface name, a hostname) ends up in a path (ROOT/ID), in `ip -batch` text
or in /etc/hosts. A newline, a '/' or a '..' there would write somewhere else
or run another command, so each front door checks its names here, with the
rule of the standard that defines them, before anything is made.
Each check returns the name unchanged, or raises InvalidName (exit code 2).
"""

import re

from .errors import ExitCode, MockerError


class InvalidName(MockerError):
    code = ExitCode.USAGE


# runc's rule for container ids (libcontainer): word characters and + , - .
# (its class [\w+-\.] holds the range '+'..'.'), and not "." or "..".
_RUNTIME_ID = re.compile(r"[A-Za-z0-9_+,.-]+")
# CNI spec (libcni's ValidateContainerID, ValidateNetworkName), and Docker's
# rule for container names: a letter or digit first, then letters, digits, _ . -
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# RFC 1123 section 2.1: labels of letters, digits and '-', not starting or
# ending with '-', at most 63 characters; the whole name at most 253.
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
IFNAMSIZ = 16   # <linux/if.h>: with its terminating NUL, so 15 bytes of name
NAME_MAX = 255  # <linux/limits.h>: one path component


def runtime_id(cid: str) -> str:
    """A container id as runc takes it (it names the state directory ROOT/ID)."""
    if not isinstance(cid, str) or not _RUNTIME_ID.fullmatch(cid) or cid in (".", "..") \
            or len(cid) > NAME_MAX:
        raise InvalidName(f"invalid container id {cid!r}: use letters, digits and _ + , - . "
                          f"(runc's rule)")
    return cid


def container_name(name: str, what: str = "container name", limit: int = 128) -> str:
    """A --name, a CNI_CONTAINERID or a CNI network name: [A-Za-z0-9][A-Za-z0-9_.-]*."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > limit:
        raise InvalidName(f"invalid {what} {name!r}: a letter or digit, then letters, "
                          f"digits, '_', '.' or '-' (at most {limit})")
    return name


def interface_name(name: str, what: str = "interface name") -> str:
    """A network interface name, by the kernel's dev_valid_name(): 1-15 bytes, not
    "." or "..", no '/', ':' or whitespace. Also no '#', quotes or backslash: `ip
    -batch` reads those as comment and quoting, so they would change the command."""
    if not isinstance(name, str):
        raise InvalidName(f"invalid {what} {name!r}")
    size = len(name.encode(errors="surrogateescape"))
    bad = [c for c in name if c.isspace() or c in "/:#\"'\\" or not c.isprintable()]
    if not 0 < size < IFNAMSIZ or name in (".", "..") or bad:
        raise InvalidName(f"invalid {what} {name!r}: 1-{IFNAMSIZ - 1} bytes, not '.' or '..', "
                          f"without '/', ':', whitespace, quotes, '#' or '\\'")
    return name


def hostname(name: str) -> str:
    """A hostname by RFC 1123: dot-separated labels of letters, digits and '-'."""
    if not isinstance(name, str) or not 0 < len(name) <= 253 \
            or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidName(f"invalid hostname {name!r}: labels of letters, digits and '-' "
                          f"(RFC 1123), at most 253 characters")
    return name
