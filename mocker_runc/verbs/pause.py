"""runc pause: freeze every process of the container (the cgroup freezer)."""

from .. import container
from .common import add_id as add_arguments  # noqa: F401

HELP = "freeze every process of the container"


def run(store, args):
    container.pause(store, args.id, freeze=True)
