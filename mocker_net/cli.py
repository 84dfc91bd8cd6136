"""The mocker-net command line: parses argv and calls the library.

    mocker-net hook up|down        runtime-spec hook (state JSON on stdin)
    mocker-net ls | inspect ID     what is attached where
    mocker-net gc                  clean up after containers that died
    mocker-net prune               remove an unused bridge and its rules
    mocker-net cni                 CNI plugin (also when run with CNI_COMMAND set and no arguments)
"""

import json
import os
import sys

from mocker_common import cli
from mocker_common.explain import emit, take_flag

PROG = "mocker-net"


def build_parser():
    parser = cli.make_parser(PROG, "bridge networking, addresses, NAT and port forwards for containers")
    parser.add_argument("--bridge", help="bridge name (env MOCKER_BRIDGE; default mocker0)")
    parser.add_argument("--subnet", help="IPv4 subnet of the bridge (env MOCKER_SUBNET; default 10.0.0.0/24)")
    parser.add_argument("--mtu", type=int, help="MTU of bridge and veths (env MOCKER_MTU)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    hook = sub.add_parser("hook", help="run as a runtime-spec hook, reading the state JSON on stdin")
    hook.add_argument("action", choices=["up", "down"],
                      help="up: createRuntime hook (set up); down: poststop hook (tear down)")
    ls = sub.add_parser("ls", help="list attached containers, addresses and ports")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect = sub.add_parser("inspect", help="show one container's network record and rules")
    inspect.add_argument("id")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub.add_parser("gc", help="remove links, rules and leases left by containers that died")
    sub.add_parser("prune", help="remove the bridge, its nftables table and leases if unused")
    sub.add_parser("cni", help="run as a CNI plugin (CNI_COMMAND etc. in the environment)")
    return parser


def _network(args):
    from . import core
    return core.resolve_network(bridge=args.bridge, subnet=args.subnet, mtu=args.mtu)


def do_hook(args) -> int:
    from . import hook
    if args.action == "up":
        hook.up(_network(args), sys.stdin.read())
    else:
        hook.down(sys.stdin.read())
    return 0


def do_ls(args) -> int:
    from . import store
    records = store.all_records()
    if args.json:
        print(json.dumps([r.as_dict() for r in records], indent=2))
        return 0
    from tabulate import tabulate
    rows = [(r.id, r.mode, r.bridge or "-", r.address or "-", ", ".join(r.ports) or "-",
             r.host_ifname or "-", "running" if r.is_alive() else "dead")
            for r in records]
    print(tabulate(rows, headers=["CONTAINER", "MODE", "BRIDGE", "ADDRESS", "PORTS", "VETH", "NETNS"]))
    return 0


def do_inspect(args) -> int:
    from . import core
    record = core.find(args.id)
    if args.json:
        print(json.dumps(record.as_dict(), indent=2))
        return 0
    from tabulate import tabulate
    print(tabulate([(k, v if not isinstance(v, list) else ", ".join(v)) for k, v in record.as_dict().items()]))
    return 0


def do_gc(args) -> int:
    from . import core
    for container_id in core.gc():
        print(container_id)
    return 0


def do_prune(args) -> int:
    from . import core
    net = _network(args)
    if core.prune(net):
        print(net.bridge)
    return 0


def do_cni(args) -> int:
    from . import cni
    return cni.main(sys.stdin.read())


COMMANDS = {"hook": do_hook, "ls": do_ls, "inspect": do_inspect, "gc": do_gc,
            "prune": do_prune, "cni": do_cni}


def explain(mode: str, argv: list) -> int:
    from .explain import TOOLS, part
    parser = cli.make_parser(f"{PROG} --explain", "print the network setup as a shell script")
    parser.add_argument("--network", default="bridge", choices=["bridge", "none"])
    parser.add_argument("id")
    args = cli.parse(parser, argv)
    return cli.run(PROG, lambda a: emit(PROG, mode, TOOLS, part(a.id, a.network)), args)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv and os.environ.get("CNI_COMMAND"):
        argv = ["cni"]             # a CNI runtime runs the plugin without arguments
    mode, argv = take_flag(argv)
    if mode:   # mocker-net --explain [--network MODE] ID: the network as a shell script
        return explain(mode, argv)
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    code = cli.run(PROG, COMMANDS[args.command], args)
    if args.command in ("hook", "cni"):
        # The runtime waits for its hooks (and a CNI caller for its plugin): the
        # work is done and written, so skip the interpreter's teardown.
        cli.exit_without_teardown(code)
    return code
