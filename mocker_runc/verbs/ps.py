"""runc ps: the processes in the container's cgroup (ps(1)'s lines, or pids as JSON)."""

import json

from .. import container
from .common import add_id, argparse

HELP = "list the processes of a container"


def add_arguments(p):
    add_id(p)
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, help="options for ps(1)")


def run(store, args):
    pids = container.cgroup_of(store.load(args.id)).pids()
    if args.format == "json":
        print(json.dumps(pids))
        return
    import subprocess
    out = subprocess.run(["ps", *(args.ps_args or ["-ef"])], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    column = out[0].split().index("PID")
    print(out[0])
    for line in out[1:]:
        if int(line.split()[column]) in pids:
            print(line)
