"""runc start: let a created container's process run."""

from .. import container
from .common import add_id as add_arguments  # noqa: F401

HELP = "let a created container's process run"


def run(store, args):
    container.start(store, args.id)
