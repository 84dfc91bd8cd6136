"""runc list: the containers under --root, as runc's table or JSON."""

import json

from .common import state_of

HELP = "list containers"


def add_arguments(p):
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-q", "--quiet", action="store_true", help="ids only")


def run(store, args):
    states = [state_of(store, cid) for cid in store.ids()]
    if args.quiet:
        for s in states:
            print(s["id"])
    elif args.format == "json":
        print(json.dumps(states))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s["owner"] or "root"] for s in states]
        # like runc's tabwriter: columns at least 12 wide, 3 spaces of padding
        widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(5)]
        for r in rows:
            print("".join(c.ljust(w) for c, w in zip(r, widths)) + r[5])
