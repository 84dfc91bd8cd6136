"""runc state: the runtime-spec state of a container, as JSON."""

import json

from .common import add_id as add_arguments, state_of  # noqa: F401

HELP = "print the container's state as JSON"


def run(store, args):
    print(json.dumps(state_of(store, args.id), indent=2))
