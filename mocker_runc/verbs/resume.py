"""runc resume: thaw a paused container."""

from .. import container
from .common import add_id as add_arguments  # noqa: F401

HELP = "thaw a paused container"


def run(store, args):
    container.pause(store, args.id, freeze=False)
