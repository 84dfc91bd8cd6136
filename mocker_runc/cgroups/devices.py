"""Device rules (runtime-spec linux.resources.devices), read the way runc reads them.

A pure module: rules in, a normalized rule set out. Both cgroup versions
start from it: v1 writes the set into devices.allow / devices.deny, v2 turns
it into an eBPF program (devicefilter.py).

runc's semantics, which mocker-runc keeps so that no config gets more from
it than from runc (libcontainer/specconv, cgroups/devices' emulator):
- The config's rules come first, then runc's built-in allow rules
  (RUNC_DEFAULTS: mknod of anything, the null-like devices, ttys, ptys,
  tun), so a config cannot take those away. linux.devices get NO rule of
  their own: a config that wants one opened must allow it (Docker's
  --device writes both).
- The rules are applied in order to an emulated v1 devices cgroup
  (Documentation/admin-guide/cgroup-v1/devices.rst): a type "a" rule resets
  it to deny-all (allow: false) or allow-all (allow: true) whatever its
  numbers say; any other rule adds or removes access bits of the exception
  with exactly its type:major:minor. Removing bits that a wildcard exception
  still grants is an error ("cannot punch a hole"), as in runc: the kernel
  would silently keep them.
- A request (type, major, minor, access bits) matches an exception if the
  type and the numbers match (-1 matches any) and every bit asked is in the
  exception's access; with a deny-all default a match allows, with an
  allow-all default a match denies.
"""

from mocker_common.errors import MockerError
from mocker_common.record import FrozenRecord

ANY = -1            # a wildcard major or minor ("*" in devices.list)
ACCESS = "rwm"      # read, write, mknod: in this order everywhere below
_MAX_NUMBER = 0x7FFFFFFF  # the BPF program compares against a signed 32-bit immediate


class Rule(FrozenRecord):
    allow: bool
    type: str                 # "a" (all), "b" (block) or "c" (char)
    major: int = ANY
    minor: int = ANY
    access: str = ACCESS      # a subset of "rwm", in that order

    def __str__(self) -> str:
        """devices.list style: "c 1:3 rwm", "b *:* m"."""
        number = lambda n: "*" if n == ANY else str(n)
        return f"{self.type} {number(self.major)}:{number(self.minor)} {self.access}"


class RuleSet(FrozenRecord):
    """What the rules come to: a default and the exceptions to it."""
    default_allow: bool
    exceptions: tuple[Rule, ...]   # each with allow == not default_allow, sorted


def _char(major: int, minor: int = ANY) -> Rule:
    return Rule(True, "c", major, minor, ACCESS)


# runc's built-in device rules (libcontainer/specconv AllowedDevices, runc
# 1.1), appended after the config's. The path names the rule a device of
# linux.devices with the same path replaces (runc drops it then).
RUNC_DEFAULTS: tuple[tuple[str | None, Rule], ...] = (
    (None, Rule(True, "c", ANY, ANY, "m")),   # mknod of any device: using it needs a rule
    (None, Rule(True, "b", ANY, ANY, "m")),
    ("/dev/null", _char(1, 3)),
    ("/dev/random", _char(1, 8)),
    ("/dev/full", _char(1, 7)),
    ("/dev/tty", _char(5, 0)),
    ("/dev/zero", _char(1, 5)),
    ("/dev/urandom", _char(1, 9)),
    (None, _char(136)),                       # /dev/pts/*
    (None, _char(5, 2)),                      # /dev/ptmx
    (None, _char(10, 200)),                   # /dev/net/tun
)


def canonical_access(access: str) -> str:
    return "".join(bit for bit in ACCESS if bit in access)


def parse(rule: dict, index: int = 0) -> Rule:
    """One linux.resources.devices entry; a clear error for what runc refuses."""
    where = f"linux.resources.devices[{index}]"
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise MockerError(f"{where}: invalid device type {kind!r} (a, b or c)")
    access = rule.get("access") or ""
    if not access:
        raise MockerError(f"{where}: device access cannot be empty (give some of rwm)")
    if set(access) - set(ACCESS):
        raise MockerError(f"{where}: invalid device access {access!r} (some of rwm)")
    numbers = []
    for name in ("major", "minor"):
        value = rule.get(name)
        value = ANY if value is None else value
        if not isinstance(value, int) or isinstance(value, bool) or value < ANY or value > _MAX_NUMBER:
            raise MockerError(f"{where}: invalid {name} number {value!r}")
        numbers.append(value)
    return Rule(bool(rule.get("allow")), kind, numbers[0], numbers[1], canonical_access(access))


def effective_rules(config_rules: list | None, linux_devices: list | None = None) -> list[Rule]:
    """The rule list runc applies: the config's, then its defaults (see RUNC_DEFAULTS)."""
    rules = [parse(rule, i) for i, rule in enumerate(config_rules or [])]
    paths = {device.get("path") for device in linux_devices or []}
    rules += [rule for path, rule in RUNC_DEFAULTS if path is None or path not in paths]
    return rules


def normalize(rules: list[Rule]) -> RuleSet:
    """Apply rules in order to an emulated v1 devices cgroup that starts deny-all."""
    default_allow = False
    exceptions: dict[tuple[str, int, int], str] = {}
    for rule in rules:
        if rule.type == "a":        # the kernel reads only the "a": a reset, whatever follows
            default_allow, exceptions = rule.allow, {}
            continue
        key = (rule.type, rule.major, rule.minor)
        if rule.allow != default_allow:   # a new exception, or more bits for one
            exceptions[key] = canonical_access(exceptions.get(key, "") + rule.access)
        else:                             # take bits away from an exception
            _refuse_hole(rule, exceptions)
            left = canonical_access(set(exceptions.get(key, "")) - set(rule.access))
            if left:
                exceptions[key] = left
            else:
                exceptions.pop(key, None)
    ordered = sorted(exceptions.items(), key=lambda item: (item[0][1], item[0][2], item[0][0]))
    return RuleSet(default_allow, tuple(Rule(not default_allow, kind, major, minor, access)
                                        for (kind, major, minor), access in ordered))


def _refuse_hole(rule: Rule, exceptions: dict) -> None:
    for major, minor in ((ANY, rule.minor), (rule.major, ANY), (ANY, ANY)):
        if (major, minor) == (rule.major, rule.minor):
            continue
        held = exceptions.get((rule.type, major, minor), "")
        if set(held) & set(rule.access):
            wide = Rule(not rule.allow, rule.type, major, minor, held)
            raise MockerError(f"device rule {'allow' if rule.allow else 'deny'} {rule} cannot "
                              f"punch a hole in the wider rule {wide} (as runc refuses)")


def matches(rule: Rule, kind: str, major: int, minor: int, access: str) -> bool:
    """Whether a request falls under an exception (devices.rst's match_exception)."""
    return (rule.type == kind
            and rule.major in (ANY, major) and rule.minor in (ANY, minor)
            and not set(access) - set(rule.access))


def permits(ruleset: RuleSet, kind: str, major: int, minor: int, access: str) -> bool:
    """The verdict for one request: the reference the generated program must agree with."""
    for rule in ruleset.exceptions:
        if matches(rule, kind, major, minor, access):
            return rule.allow
    return ruleset.default_allow
