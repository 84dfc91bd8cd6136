"""The engine's verbs, as bin/mocker calls them: `python3 -m mocker_engine VERB ...`.

Each verb reads its options and calls one function of records, monitor,
lifecycle, table or logs. Errors are one line. Exit codes (docs/architecture.md):
`run`, `create` and `exec` use docker's 125 when mocker itself fails (126 and
127 come from the monitor: the command could not be run); the other verbs exit
with the error's own code (3 no such container, 8 in use...), as the four
commands do.
"""

import contextlib
import os
import sys
import time
from pathlib import Path

from mocker_common import cli, contract, runopts
from mocker_common.errors import MockerError

from . import records

# The other engine modules are imported by the verbs that use them: `mocker run`
# starts the engine on every run, and each import costs start-up time.

PROG = "mocker"
RUN_ERROR = contract.RUN_FAILED


# --- run: the record and the monitor (bin/mocker bundles first) ---

def do_create(args) -> int:
    record = records.create(args.image, args.name or "", auto_remove=args.rm,
                            interactive=args.interactive, tty=args.tty, init=args.init,
                            stop_signal=args.stop_signal or "")
    print(record.id)
    return 0


def do_run(args) -> int:
    """`mocker run`'s last step: record the container mocker-bundle made (its id
    is the bundle directory's name), then run it under a monitor. One engine
    start for both, where create + monitor took two."""
    from . import lifecycle
    bundle = os.path.abspath(args.bundle)
    args.id = os.path.basename(bundle)
    if not records.ID_RE.fullmatch(args.id):
        raise MockerError(f"{bundle} is not named by a container id (64 hex digits)")
    try:
        records.create(args.image, args.name or "", container_id=args.id,
                       auto_remove=args.rm, interactive=args.interactive, tty=args.tty,
                       init=args.init, stop_signal=args.stop_signal or "")
    except MockerError:
        with contextlib.suppress(MockerError):  # the user must see why it failed
            lifecycle.remove_bundle(bundle)  # a container that cannot be recorded leaves nothing
        raise
    return do_monitor(args)


def do_monitor(args) -> int:
    from . import bundles, lifecycle, monitor
    record = records.load(args.id)
    try:
        record = bundles.adopt_bundle(record, args.bundle)
    except MockerError:
        if record.auto_remove:  # --rm: a container that cannot start leaves nothing
            lifecycle.teardown(record)
        raise
    if args.detach:
        return monitor.detach(record)
    return monitor.attach(record)


# --- listing ---

def do_ps(args) -> int:
    from . import lifecycle, table
    shown = [lifecycle.refresh(r) for r in records.all_records()]
    if not args.all:
        shown = [r for r in shown if r.status == records.RUNNING]
    if args.quiet:
        for record in shown:
            print(record.id if args.no_trunc else record.short_id)
    elif args.format:
        for record in shown:
            print(table.format_row(args.format, record, time.time()))
    else:
        print(table.ps_table(shown, time.time(), truncate=not args.no_trunc))
    return 0


def do_inspect(args) -> int:
    from . import lifecycle, procs, table
    documents = []
    for ref in args.containers:
        record = lifecycle.refresh(records.resolve(ref))
        pid = procs.read_pid(records.pid_path(record.id))
        documents.append(table.inspect_json(record, pid, _network_settings(record)))
    if args.format:
        for document in documents:
            print(table.fill_paths(args.format, document))
    else:
        print(table.dumps(documents))
    return 0


def _network_settings(record) -> dict:
    """Docker's NetworkSettings fields, from mocker-net's record of the container."""
    from mocker_net.store import load_record  # mocker-net's own reader of its records
    network = load_record(record.id) if record.status == records.RUNNING else None
    if network is None or not network.address:
        return {}
    prefix = network.subnet.partition("/")[2]
    return {"Bridge": network.bridge, "Gateway": network.gateway, "IPAddress": network.address,
            "IPPrefixLen": int(prefix) if prefix.isdigit() else 0, "MacAddress": network.mac}


def do_port(args) -> int:
    from . import table
    for line in table.port_lines(records.resolve(args.container)):
        print(line)
    return 0


def do_logs(args) -> int:
    from . import logs
    logs.show(records.resolve(args.container), follow=args.follow, tail=args.tail)
    return 0


# --- lifecycle: each verb takes several containers and echoes what it did ---

def _each(refs, action) -> int:
    """Apply action to every container; report failures, go on, fail at the end."""
    code = 0
    for ref in refs:
        try:
            action(records.resolve(ref))
            print(ref)
        except MockerError as err:
            print(f"{PROG}: {err}", file=sys.stderr)
            code = code or int(err.code)   # the first failure's
    return code


def do_stop(args) -> int:
    from . import lifecycle
    return _each(args.containers, lambda r: lifecycle.stop(r, args.time))


def do_kill(args) -> int:
    from . import lifecycle
    return _each(args.containers, lambda r: lifecycle.kill(r, args.signal))


def do_rm(args) -> int:
    from . import lifecycle
    return _each(args.containers, lambda r: lifecycle.remove(r, force=args.force))


def _start(record) -> None:
    from . import monitor
    code = monitor.start(record)
    if code:
        raise MockerError(f"container {record.name} did not start (exit code {code})")


def do_start(args) -> int:
    return _each(args.containers, _start)


def do_restart(args) -> int:
    from . import lifecycle

    def restart(record):
        lifecycle.stop(record, args.time)
        _start(records.load(record.id))
    return _each(args.containers, restart)


def do_exec(args) -> int:
    """Become `mocker-runc exec`, so the terminal and exit code are the process's own."""
    from . import lifecycle, runtime
    if not args.command:
        raise MockerError("exec needs a command to run in the container")
    record = records.resolve(args.container)
    if not lifecycle.is_running(record):
        raise MockerError(f"container {record.name} is not running")
    options = ["--tty"] if args.tty else []
    options += ["--detach"] if args.detach else []
    options += _exec_user(record, args.user) if args.user else []
    options += ["--cwd", args.workdir] if args.workdir else []
    for variable in args.env:
        options += ["--env", variable if "=" in variable else f"{variable}={os.environ.get(variable, '')}"]
    command = runtime.argv("exec", *options, record.id, *args.command)
    if not (args.interactive or args.tty):
        null = os.open(os.devnull, os.O_RDONLY)  # docker exec without -i: no stdin
        os.dup2(null, 0)
    try:
        os.execvpe(command[0], command, runtime.environment() or os.environ)
    except FileNotFoundError:
        raise MockerError(f"cannot run {runtime.runtime()}: not found") from None


def _exec_user(record, spec: str) -> list[str]:
    """-u name[:group]: resolved in the container's own /etc/passwd and /etc/group,
    as mocker-bundle resolves the image's User (the runtime takes numbers only)."""
    from mocker_bundle.users import resolve_user

    def read(name):
        try:
            return Path(record.bundle, "rootfs/etc", name).read_text(errors="replace")
        except OSError:
            return None
    user = resolve_user(spec, read("passwd"), read("group"))
    options = ["--user", f"{user.uid}:{user.gid}"]
    for gid in user.additional_gids:
        options += ["--additional-gids", str(gid)]
    return options


# --- the parser ---

def _verb(sub, name, func, help_text, error_code=None):
    parser = sub.add_parser(name, prog=f"{PROG} {name}", help=help_text, description=help_text)
    parser.set_defaults(func=func, error_code=error_code)
    return parser


def _containers(parser, many=True):
    if many:
        parser.add_argument("containers", nargs="+", metavar="CONTAINER", help="name, id or id prefix")
    else:
        parser.add_argument("container", metavar="CONTAINER", help="name, id or id prefix")


# The options of create and run: dest -> (flags, takes a value). The docker
# ones the engine keeps come from mocker_common/runopts.py; --image is the
# wrapper's. argparse reads them below; quick_run_args reads them for `run`.
CREATE_OPTIONS = {"image": (("--image",), True),
                  **{o.dest: (o.flags, bool(o.metavar))
                     for o in runopts.taken_by(runopts.ENGINE) if o.dest != "detach"}}
RUN_OPTIONS = {**CREATE_OPTIONS, "detach": (("-d", "--detach"), False)}


def _create_options(parser):
    for dest, (flags, takes_value) in CREATE_OPTIONS.items():
        if takes_value:
            parser.add_argument(*flags, dest=dest, required=dest == "image")
        else:
            parser.add_argument(*flags, dest=dest, action="store_true")


def quick_run_args(argv: list[str]):
    """`run`'s arguments as bin/mocker passes them (`run OPTION... BUNDLE`), read
    without argparse: importing it and building every verb's parser costs ~10 ms
    of each `mocker run`. None for anything else (help, an unknown or repeated
    option, a value like an option): argparse then parses, or explains the error.
    (-v is the engine's own option, before the verb: bin/mocker sets MOCKER_VERBOSE.)"""
    from types import SimpleNamespace
    if argv[:1] != ["run"]:
        return None
    flags = {flag: (dest, takes_value) for dest, (names, takes_value) in RUN_OPTIONS.items()
             for flag in names}
    values = {dest: None if takes_value else False for dest, (_, takes_value) in RUN_OPTIONS.items()}
    positional, rest = [], argv[1:]
    while rest:
        word, rest = rest[0], rest[1:]
        if word in flags:
            dest, takes_value = flags[word]
            if takes_value:
                if not rest or rest[0].startswith("-") or values[dest] is not None:
                    return None
                values[dest], rest = rest[0], rest[1:]
            else:
                values[dest] = True
        elif word.startswith("-"):
            return None
        else:
            positional.append(word)
    if len(positional) != 1 or values["image"] is None:
        return None
    return SimpleNamespace(**values, bundle=positional[0], verbose=0, verb="run",
                           func=do_run, error_code=RUN_ERROR)


def build_parser() -> "argparse.ArgumentParser":
    import argparse  # see quick_run_args
    parser = cli.make_parser(PROG, "the engine behind mocker: container records, monitors, ps, logs")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = _verb(sub, "create", do_create, "record a new container; print its id", RUN_ERROR)
    _create_options(p)

    p = _verb(sub, "monitor", do_monitor, "run a created container under a monitor", RUN_ERROR)
    p.add_argument("--bundle", required=True)
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("id")

    p = _verb(sub, "run", do_run, "record the container of a bundle made by mocker-bundle "
              "(its id: the bundle directory's name) and run it under a monitor", RUN_ERROR)
    _create_options(p)
    p.add_argument(*RUN_OPTIONS["detach"][0], dest="detach", action="store_true")
    p.add_argument("bundle")

    p = _verb(sub, "ps", do_ps, "list containers")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("--format", metavar="TEMPLATE",
                   help="one line per container, e.g. '{{.Names}}\\t{{.Status}}' (fields: ID, Names, "
                        "Image, Command, Status, Ports, RunningFor, CreatedAt, State)")

    p = _verb(sub, "inspect", do_inspect, "show containers' details as JSON")
    p.add_argument("-f", "--format", metavar="TEMPLATE",
                   help="print fields, e.g. '{{.NetworkSettings.IPAddress}} {{.State.Status}}'")
    _containers(p)
    p = _verb(sub, "port", do_port, "list a container's port mappings")
    _containers(p, many=False)

    p = _verb(sub, "logs", do_logs, "show a container's output")
    p.add_argument("-f", "--follow", action="store_true", help="follow the output while it runs")
    p.add_argument("-n", "--tail", type=int, metavar="N", help="only the last N lines")
    _containers(p, many=False)

    p = _verb(sub, "stop", do_stop, "stop containers: the stop signal, then SIGKILL")
    p.add_argument("-t", "--time", type=float, default=10, metavar="N",
                   help="seconds to wait before SIGKILL (default 10)")
    _containers(p)
    p = _verb(sub, "restart", do_restart, "stop containers, then start them")
    p.add_argument("-t", "--time", type=float, default=10, metavar="N",
                   help="seconds to wait before SIGKILL (default 10)")
    _containers(p)
    p = _verb(sub, "kill", do_kill, "send a signal to containers (default SIGKILL)")
    p.add_argument("-s", "--signal", default="KILL", metavar="SIG")
    _containers(p)
    p = _verb(sub, "start", do_start, "start stopped containers (detached)")
    _containers(p)
    p = _verb(sub, "rm", do_rm, "remove containers")
    p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    _containers(p)

    p = _verb(sub, "exec", do_exec, "run a command in a running container", RUN_ERROR)
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("-u", "--user", help="uid[:gid]")
    p.add_argument("-e", "--env", action="append", default=[], metavar="VAR[=VALUE]")
    p.add_argument("-w", "--workdir", metavar="DIR")
    _containers(p, many=False)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    return parser


def _with_code(func, code):
    """Run a verb; with a code (run, create, exec: docker's 125), its mocker
    errors exit with that code, else with their own."""
    def call(args):
        try:
            return func(args)
        except MockerError as err:
            if code is not None:
                err.code = code
            raise
    return call


def main(argv=None) -> int:
    args = quick_run_args(sys.argv[1:] if argv is None else argv) or build_parser().parse_args(argv)
    cli.setup_logging(args.verbose)  # or MOCKER_VERBOSE
    return cli.run(PROG, _with_code(args.func, args.error_code), args)
