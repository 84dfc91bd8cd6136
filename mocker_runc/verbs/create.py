"""runc create: the container is made, its process waits for `start`."""

from .. import container
from .common import add_creating as add_arguments, create_options  # noqa: F401

HELP = "create a container; its process waits for `start`"


def run(store, args):
    container.create(store, args.id, args.bundle, create_options(args))
