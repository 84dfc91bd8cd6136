"""runc exec: a new process in a running container (flags, or a process.json)."""

import json

from mocker_common.errors import ExitCode, MockerError

from .. import container, foreground
from .. import spec as specs
from .common import add_id, argparse

HELP = "run a new process in a running container"


def add_arguments(p):
    add_id(p)
    p.add_argument("-p", "--process", help="process.json (runtime-spec's process object)")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--pid-file")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument("--console-socket")
    p.add_argument("-u", "--user", help="UID[:GID]")
    p.add_argument("-g", "--additional-gids", action="append", type=int, default=[])
    p.add_argument("-e", "--env", action="append", default=[], help="KEY=VALUE")
    p.add_argument("--cwd")
    p.add_argument("-c", "--cap", action="append", default=[], help="add a capability")
    p.add_argument("--no-new-privs", action="store_true")
    p.add_argument("--preserve-fds", type=int, default=0, metavar="N",
                   help="also pass our fds 3 .. 3+N-1 to the new process")
    p.add_argument("--ignore-paused", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("command", nargs=argparse.REMAINDER)


def run(store, args):
    if args.process:
        try:
            with open(args.process, "rb") as f:
                proc = specs.parse_process(json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise specs.SpecError(f"process file {args.process}: {err}") from None
    else:
        proc = _process_from_flags(store, args)
    opts = foreground.ExecOptions(pid_file=args.pid_file, console_socket=args.console_socket,
                                 detach=args.detach,
                                 preserve_fds=container.preserved_fds(args.preserve_fds))
    return foreground.exec_(store, args.id, proc, opts)


def _process_from_flags(store, args) -> specs.Process:
    """runc exec without --process: the container's process, with the flags' changes."""
    if not args.command:
        raise MockerError("exec needs a command (or --process FILE)", ExitCode.USAGE)
    st = store.load(args.id)
    proc = specs.parse_process(st.config["process"])
    proc.args = args.command
    proc.terminal = args.tty
    if args.cwd:
        proc.cwd = args.cwd
    env = {e.partition("=")[0]: e for e in proc.env}
    env.update({e.partition("=")[0]: e for e in args.env})
    proc.env = list(env.values())
    if args.user:
        uid, _, gid = args.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise MockerError(f"--user {args.user}: give numeric UID[:GID]", ExitCode.USAGE)
        proc.uid, proc.gid = int(uid), int(gid or 0)
    if args.additional_gids:
        proc.additional_gids = args.additional_gids
    if args.no_new_privs:
        proc.no_new_privileges = True
    if args.cap:
        proc.capabilities = proc.capabilities or specs.Capabilities()
        extra = specs.cap_mask(args.cap)
        for field in ("bounding", "effective", "permitted", "ambient"):
            setattr(proc.capabilities, field, getattr(proc.capabilities, field) | extra)
    return proc
