"""runc update: change the cgroup limits of a running container."""

import json
import sys

from mocker_common.errors import ExitCode, MockerError

from .. import container
from .. import spec as specs
from .common import add_id, argparse

HELP = "change the cgroup limits of a running container"


def byte_size(text: str) -> int:
    """A memory size as runc's update takes it: 1073741824, 1g, 512m, 64KiB, or -1."""
    digits = text.lower().removesuffix("b").removesuffix("i")
    scale = 1
    for power, unit in enumerate("kmgtp", start=1):
        if digits.endswith(unit):
            digits, scale = digits[:-1].strip(), 1024 ** power
    try:
        return int(float(digits) * scale) if digits != "-1" else -1
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


# runc update's flags: (flag, type, linux.resources section, key); runc says
# --cpu-share, docker --cpu-shares: both are taken.
UPDATE_FLAGS = [
    ("--memory", byte_size, "memory", "limit"),
    ("--memory-swap", byte_size, "memory", "swap"),
    ("--memory-reservation", byte_size, "memory", "reservation"),
    ("--cpu-share", int, "cpu", "shares"),
    ("--cpu-quota", int, "cpu", "quota"),
    ("--cpu-period", int, "cpu", "period"),
    ("--cpu-burst", int, "cpu", "burst"),
    ("--cpu-idle", int, "cpu", "idle"),
    ("--cpu-rt-period", int, "cpu", "realtimePeriod"),
    ("--cpu-rt-runtime", int, "cpu", "realtimeRuntime"),
    ("--cpuset-cpus", str, "cpu", "cpus"),
    ("--cpuset-mems", str, "cpu", "mems"),
    ("--blkio-weight", int, "blockIO", "weight"),
    ("--pids-limit", int, "pids", "limit"),
]


def key_attr(section: str, key: str) -> str:
    return f"{section}_{key}"


def add_arguments(p):
    add_id(p)
    p.add_argument("-r", "--resources",
                   help="linux.resources JSON file ('-': stdin); the other flags are then ignored")
    for flag, kind, section, key in UPDATE_FLAGS:
        names = [flag, "--cpu-shares"] if flag == "--cpu-share" else [flag]
        p.add_argument(*names, type=kind, dest=key_attr(section, key), metavar="VALUE",
                       help=f"linux.resources.{section}.{key}")
    for flag in ("--l3-cache-schema", "--mem-bw-schema"):
        p.add_argument(flag, help="Intel RDT: not supported")


def run(store, args):
    if args.l3_cache_schema or args.mem_bw_schema:
        raise MockerError("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported",
                          ExitCode.USAGE)
    resources: dict = {}
    if args.resources:
        # as runc: resources from a file (or stdin) replace the flags
        source = sys.stdin if args.resources == "-" else open(args.resources)
        with source:
            try:
                resources = json.load(source)
            except ValueError as err:
                raise specs.SpecError(f"--resources {args.resources}: not JSON: {err}") from None
    else:
        for _, _, section, key in UPDATE_FLAGS:
            value = getattr(args, key_attr(section, key))
            if value is not None:
                resources.setdefault(section, {})[key] = value
    container.update(store, args.id, resources)
