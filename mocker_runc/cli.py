"""The mocker-runc command line: runc's verbs and flags, parsed here and nowhere else.

Global flags come before the verb (`--root DIR` or `--root=DIR`), as with runc,
because conmon and containerd's shim call runtimes that way.
"""

import gc
import json
import os
import sys

from mocker_common import __version__
from mocker_common.cli import english_argparse, parse
from mocker_common.errors import ExitCode, MockerError

from . import container, foreground
from . import spec as specs
from .runlog import RunLog
from .state import Store

PROG = "mocker-runc"

# English messages, as runc's are, without gettext's lookups (see english_argparse).
argparse = english_argparse()


def version_text() -> str:
    return (f"{PROG} version {__version__}\n"
            f"spec: {specs.SPEC_VERSION}\n"
            f"python: {sys.version.split()[0]}")


class _Version(argparse.Action):
    """runc prints its version on several lines; argparse's action would re-wrap them."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the width: left alone it asks shutil, and
    importing shutil (bz2, lzma, fnmatch) costs every run ~2 ms."""

    def __init__(self, prog):
        try:
            columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(1).columns
        except (ValueError, OSError):
            columns = 80
        super().__init__(prog, width=columns - 2)   # argparse's own margin


def _id(p):
    p.add_argument("id", metavar="CONTAINER_ID")


def _creating(p):
    _id(p)
    p.add_argument("-b", "--bundle", default=".", help="bundle directory (default: .)")
    p.add_argument("--console-socket", help="unix socket that receives the pty master")
    p.add_argument("--pid-file", help="write the container process's pid here")
    p.add_argument("--no-pivot", action="store_true", help="chroot instead of pivot_root")
    p.add_argument("--no-new-keyring", action="store_true",
                   help="keep our session keyring (default: a new one, _ses.ID)")
    p.add_argument("--preserve-fds", type=int, default=0, metavar="N",
                   help="also pass our fds 3 .. 3+N-1 to the container's process")


def _run_args(p):
    _creating(p)
    p.add_argument("-d", "--detach", action="store_true", help="return once it runs")
    p.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)


def _kill_args(p):
    _id(p)
    p.add_argument("signal", nargs="?", default="SIGTERM", help="name or number (SIGTERM)")
    p.add_argument("-a", "--all", action="store_true", help="to every process of the container")


def _delete_args(p):
    _id(p)
    p.add_argument("-f", "--force", action="store_true", help="kill it first if it runs")


def _list_args(p):
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-q", "--quiet", action="store_true", help="ids only")


def _ps_args(p):
    _id(p)
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, help="options for ps(1)")


def _exec_args(p):
    _id(p)
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


def _events_args(p):
    p.add_argument("--stats", action="store_true", help="print the usage figures once, then exit")
    p.add_argument("--interval", type=duration, default=5.0, metavar="DURATION",
                   help="time between two stats events (runc's 5s, 500ms, 1m)")
    p.add_argument("id")


def duration(text: str) -> float:
    """A Go-style duration as runc takes it: 5s, 500ms, 1m, 1.5s."""
    for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit):
            try:
                seconds = float(text[:-len(unit)]) * scale
            except ValueError:
                break
            if seconds > 0:
                return seconds
    raise argparse.ArgumentTypeError(f"{text!r} is not a duration (like 5s or 500ms)")


def _spec_args(p):
    p.add_argument("-b", "--bundle", default=".")
    p.add_argument("--rootless", action="store_true", help=argparse.SUPPRESS)


def byte_size(text: str) -> int:
    """A memory size as runc's update takes it: 1073741824, 1g, 512m, 64KiB, or -1."""
    digits = text.lower().removesuffix("b").removesuffix("i")
    scale = 1
    for power, unit in enumerate("kmgtp", start=1):
        if digits.endswith(unit):
            digits, scale = digits[:-1].strip(), 1024 ** power
    try:
        return int(float(digits) * scale) if digits != "-1" else -1
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


# runc update's flags: (flag, type, linux.resources section, key); runc says
# --cpu-share, docker --cpu-shares: both are taken.
UPDATE_FLAGS = [
    ("--memory", byte_size, "memory", "limit"),
    ("--memory-swap", byte_size, "memory", "swap"),
    ("--memory-reservation", byte_size, "memory", "reservation"),
    ("--cpu-share", int, "cpu", "shares"),
    ("--cpu-quota", int, "cpu", "quota"),
    ("--cpu-period", int, "cpu", "period"),
    ("--cpu-burst", int, "cpu", "burst"),
    ("--cpu-idle", int, "cpu", "idle"),
    ("--cpu-rt-period", int, "cpu", "realtimePeriod"),
    ("--cpu-rt-runtime", int, "cpu", "realtimeRuntime"),
    ("--cpuset-cpus", str, "cpu", "cpus"),
    ("--cpuset-mems", str, "cpu", "mems"),
    ("--blkio-weight", int, "blockIO", "weight"),
    ("--pids-limit", int, "pids", "limit"),
]


def _update_args(p):
    _id(p)
    p.add_argument("-r", "--resources",
                   help="linux.resources JSON file ('-': stdin); the other flags are then ignored")
    for flag, kind, section, key in UPDATE_FLAGS:
        names = [flag, "--cpu-shares"] if flag == "--cpu-share" else [flag]
        p.add_argument(*names, type=kind, dest=key_attr(section, key), metavar="VALUE",
                       help=f"linux.resources.{section}.{key}")
    for flag in ("--l3-cache-schema", "--mem-bw-schema"):
        p.add_argument(flag, help="Intel RDT: not supported")


def _devices_args(p):
    p.add_argument("id", metavar="CONTAINER_ID", nargs="?",
                   help="show the program the kernel holds for this container's cgroup")
    p.add_argument("-b", "--bundle", default=".", help="else: the bundle's config.json (default: .)")


def key_attr(section: str, key: str) -> str:
    return f"{section}_{key}"


# verb -> (help, what adds its arguments)
VERB_ARGS = {
    "create": ("create a container; its process waits for `start`", _creating),
    "start": ("let a created container's process run", _id),
    "run": ("create and start a container, wait for it, delete it", _run_args),
    "state": ("print the container's state as JSON", _id),
    "kill": ("send a signal to the container's process", _kill_args),
    "delete": ("delete a stopped container (--force: any)", _delete_args),
    "list": ("list containers", _list_args),
    "ps": ("list the processes of a container", _ps_args),
    "exec": ("run a new process in a running container", _exec_args),
    "spec": ("write a default config.json", _spec_args),
    "features": ("print what this runtime supports (JSON)", lambda p: None),
    "update": ("change the cgroup limits of a running container", _update_args),
    "pause": ("freeze every process of the container", _id),
    "resume": ("thaw a paused container", _id),
    "events": ("print the container's cgroup usage as JSON (--stats: once)", _events_args),
    "devices": ("print the device rules and their cgroup v2 eBPF program", _devices_args),
}

# global flags that take a value (`--root DIR`): the word after them is not the verb
_GLOBAL_VALUES = {"--root", "--log", "--log-format", "--rootless", "--criu"}


def chosen_verb(argv: list[str]) -> str | None:
    """The verb in argv, if one is named before any help flag (else None)."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word in _GLOBAL_VALUES:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in VERB_ARGS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """runc's global flags and verbs; with `only`, just that verb's subparser.

    argparse makes a parser object per verb and a formatter per argument:
    building all 14 verbs costs each `run` a few ms, for flags it never reads.
    """
    parser = argparse.ArgumentParser(
        prog=PROG, description="run an OCI runtime bundle in namespaces and cgroups, like runc",
        formatter_class=_HelpFormatter)
    parser.add_argument("-v", "--version", action=_Version, nargs=0, help="print the version")
    parser.add_argument("--root", default=None,
                        help="state directory (default $MOCKER_RUN/runc, /run/mocker/runc)")
    parser.add_argument("--log", help="also write errors (and --debug lines) to this file")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--debug", action="store_true", help="log each step")
    parser.add_argument("--systemd-cgroup", action="store_true",
                        help="not supported: cgroups are managed directly")
    parser.add_argument("--rootless", default="auto", help="accepted for compatibility")
    parser.add_argument("--criu", help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments) in VERB_ARGS.items():
        if only in (None, name):
            add_arguments(verbs.add_parser(name, help=help_text, description=help_text,
                                           formatter_class=_HelpFormatter))
    return parser


def main(argv=None) -> int:
    # What is imported by now lives until exit: frozen, the garbage collector
    # skips it in its passes and in the interpreter's teardown (~4 ms a run).
    gc.freeze()
    argv = sys.argv[1:] if argv is None else argv
    if "_ARGCOMPLETE" in os.environ:   # the shell completes a word: it needs every verb's flags
        args = parse(build_parser(), argv)
    else:
        args = build_parser(chosen_verb(argv)).parse_args(argv)
    log = RunLog(args.log, args.log_format, args.debug)
    try:
        if args.systemd_cgroup:
            raise MockerError("--systemd-cgroup is not supported: mocker-runc manages "
                              "cgroupfs directly (drop the flag)", ExitCode.USAGE)
        store = Store(args.root or _default_root())
        if args.verb not in ("spec", "features"):   # the two that use no state
            store.check_owner()
        log.debug(f"{args.verb} {getattr(args, 'id', '')}")
        return int(VERBS[args.verb](store, args) or 0)
    except MockerError as err:
        log.error(str(err))
        return int(err.code)
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        log.error(f"{err.strerror or err}{where}")
        return int(ExitCode.ERROR)
    except KeyboardInterrupt:
        log.error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as err:   # a bug or a missing module: still one line (--debug: the trace)
        if args.debug:
            import traceback
            traceback.print_exc()
        log.error(f"internal error: {type(err).__name__}: {err}")
        return int(ExitCode.ERROR)


def _default_root() -> str:
    from mocker_common import paths   # pathlib: only loaded when --root is not given
    return str(paths.runc_state_dir())


# --- one small function per verb ------------------------------------------------------

def _create_options(args) -> container.CreateOptions:
    return container.CreateOptions(pid_file=args.pid_file, console_socket=args.console_socket,
                                   no_pivot=args.no_pivot, no_new_keyring=args.no_new_keyring,
                                   preserve_fds=container.preserved_fds(args.preserve_fds))


def do_create(store, args):
    container.create(store, args.id, args.bundle, _create_options(args))


def do_run(store, args):
    return foreground.run(store, args.id, args.bundle, _create_options(args), args.detach)


def do_start(store, args):
    container.start(store, args.id)


def do_state(store, args):
    print(json.dumps(_state_of(store, args.id), indent=2))


def _state_of(store, cid):
    st = store.load(cid)
    return store.spec_state(st, store.status(st, container.cgroup_of(st)))


def do_kill(store, args):
    container.kill(store, args.id, container.parse_signal(args.signal), args.all)


def do_delete(store, args):
    container.delete(store, args.id, args.force)


def do_list(store, args):
    states = [_state_of(store, cid) for cid in store.ids()]
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


def do_ps(store, args):
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


def do_exec(store, args):
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


def do_spec(store, args):
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise MockerError(f"File {path} exists. Remove it first", ExitCode.CONFLICT)
    with open(path, "x") as f:
        json.dump(specs.default_config(), f, indent="\t")


def do_features(store, args):
    print(json.dumps({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": specs.SPEC_VERSION,
        "hooks": list(specs.HOOK_POINTS),
        "mountOptions": sorted(specs._MOUNT_FLAGS) + sorted(specs._PROPAGATION),
        "linux": {
            "namespaces": list(specs.NAMESPACES),
            "capabilities": ["CAP_" + c for c in specs.CAPABILITIES],
            "cgroup": {"v1": True, "v2": True, "systemd": False},
            "seccomp": {"enabled": True},
        },
        "annotations": {"org.mocker.runtime": "mocker-runc"},
    }, indent=2))


def do_update(store, args):
    if args.l3_cache_schema or args.mem_bw_schema:
        raise MockerError("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported",
                          ExitCode.USAGE)
    resources: dict = {}
    if args.resources:
        # as runc: resources from a file (or stdin) replace the flags
        source = sys.stdin if args.resources == "-" else open(args.resources)
        with source:
            try:
                resources = json.load(source)
            except ValueError as err:
                raise specs.SpecError(f"--resources {args.resources}: not JSON: {err}") from None
    else:
        for _, _, section, key in UPDATE_FLAGS:
            value = getattr(args, key_attr(section, key))
            if value is not None:
                resources.setdefault(section, {})[key] = value
    container.update(store, args.id, resources)


def do_events(store, args):
    # runc's events: one {"type": "stats"} object per line, from the cgroup's files
    if args.stats:
        print(json.dumps(container.stats_event(store, args.id)))
        return
    for event in container.events(store, args.id, args.interval):
        print(json.dumps(event), flush=True)


def do_pause(store, args):
    container.pause(store, args.id, freeze=True)


def do_resume(store, args):
    container.pause(store, args.id, freeze=False)


def do_devices(store, args):
    from .cgroups import devicebpf, devicefilter, devices as dev
    if args.id:
        cg = container.cgroup_of(store.load(args.id))
        if cg.version != 2:
            print(f"cgroup v1: {cg.paths['devices']}/devices.list")
            print(open(os.path.join(cg.paths["devices"], "devices.list")).read(), end="")
            return
        for prog_id in devicefilter.attached(cg.path):
            name, insns = devicefilter.dump(prog_id)
            print(f"program {prog_id} ({name}) on {cg.path}, as the kernel holds it:")
            print(devicebpf.listing(insns))
        return
    try:
        with open(os.path.join(args.bundle, "config.json")) as f:
            linux = json.load(f).get("linux") or {}
    except (OSError, ValueError) as err:
        raise specs.SpecError(f"cannot read {args.bundle}/config.json: {err}") from None
    rules = dev.effective_rules((linux.get("resources") or {}).get("devices"), linux.get("devices"))
    ruleset = dev.normalize(rules)
    print("rules, in order (the config's, then runc's defaults):")
    print("".join(f"  {'allow' if r.allow else 'deny '} {r}\n" for r in rules), end="")
    print(f"default: {'allow' if ruleset.default_allow else 'deny'}; exceptions:")
    print("".join(f"  {'allow' if r.allow else 'deny '} {r}\n" for r in ruleset.exceptions), end="")
    print(f"BPF_PROG_TYPE_CGROUP_DEVICE program (license {devicebpf.LICENSE}):")
    print(devicebpf.listing(devicebpf.program(ruleset)))


VERBS = {
    "create": do_create, "start": do_start, "run": do_run, "state": do_state,
    "kill": do_kill, "delete": do_delete, "list": do_list, "ps": do_ps, "exec": do_exec,
    "spec": do_spec, "features": do_features, "update": do_update, "pause": do_pause, "resume": do_resume,
    "events": do_events,
    "devices": do_devices,
}
