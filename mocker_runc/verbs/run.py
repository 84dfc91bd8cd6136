"""runc run: create, start, wait, delete (or return once it runs, with -d)."""

from .. import foreground
from .common import add_creating, argparse, create_options

HELP = "create and start a container, wait for it, delete it"


def add_arguments(p):
    add_creating(p)
    p.add_argument("-d", "--detach", action="store_true", help="return once it runs")
    p.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)


def run(store, args):
    return foreground.run(store, args.id, args.bundle, create_options(args), args.detach)
