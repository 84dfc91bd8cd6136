"""runc spec: write a default config.json into the bundle directory."""

import json
import os

from mocker_common.errors import ExitCode, MockerError

from .. import spec as specs
from .common import argparse

HELP = "write a default config.json"


def add_arguments(p):
    p.add_argument("-b", "--bundle", default=".")
    p.add_argument("--rootless", action="store_true", help=argparse.SUPPRESS)


def run(store, args):
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise MockerError(f"File {path} exists. Remove it first", ExitCode.CONFLICT)
    with open(path, "x") as f:
        json.dump(specs.default_config(), f, indent="\t")
