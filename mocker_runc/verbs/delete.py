"""runc delete: remove a stopped container (--force: any)."""

from .. import container
from .common import add_id

HELP = "delete a stopped container (--force: any)"


def add_arguments(p):
    add_id(p)
    p.add_argument("-f", "--force", action="store_true", help="kill it first if it runs")


def run(store, args):
    container.delete(store, args.id, args.force)
