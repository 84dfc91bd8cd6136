"""runc kill: a signal to the container's process (or to all of them)."""

from .. import container
from .common import add_id

HELP = "send a signal to the container's process"


def add_arguments(p):
    add_id(p)
    p.add_argument("signal", nargs="?", default="SIGTERM", help="name or number (SIGTERM)")
    p.add_argument("-a", "--all", action="store_true", help="to every process of the container")


def run(store, args):
    container.kill(store, args.id, container.parse_signal(args.signal), args.all)
