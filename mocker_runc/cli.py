"""The mocker-runc command line: runc's global flags, then one verb.

Global flags come before the verb (`--root DIR` or `--root=DIR`), as with runc,
because conmon and containerd's shim call runtimes that way. Each verb is a
module of verbs/ (HELP, add_arguments, run); only the one named is imported.
"""

import gc
import importlib
import os
import sys

from mocker_common import __version__
from mocker_common.cli import english_argparse, parse
from mocker_common.errors import ExitCode, MockerError

from . import narrate, spec as specs
from .runlog import RunLog
from .state import Store
from .verbs import NAMES

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


def verb_module(name: str):
    """mocker_runc.verbs.NAME: its HELP, add_arguments(parser), run(store, args)."""
    return importlib.import_module(f"{__package__}.verbs.{name}")


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
            return word if word in NAMES else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """runc's global flags and verbs; with `only`, just that verb's subparser.

    argparse makes a parser object per verb and a formatter per argument, and
    each verb is a module: building and importing all 16 would cost each `run`
    a few ms, for flags it never reads.
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
                        help="have systemd make the cgroup: cgroupsPath is slice:prefix:name")
    parser.add_argument("--rootless", default="auto", help="accepted for compatibility")
    parser.add_argument("--criu", help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    for name in NAMES:
        if only in (None, name):
            module = verb_module(name)
            sub = verbs.add_parser(name, help=module.HELP, description=module.HELP,
                                   formatter_class=_HelpFormatter)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def explain(argv: list) -> int:
    """mocker-runc --explain run [--bundle DIR] ID: `run` as a shell script."""
    from mocker_common import cli
    from mocker_common.explain import emit, take_flag
    from .explain import TOOLS, part
    mode, argv = take_flag(argv)
    parser = cli.make_parser("mocker-runc --explain", "print `run` as a shell script")
    parser.add_argument("verb", choices=["run"])
    parser.add_argument("-b", "--bundle", default=".")
    parser.add_argument("id")
    args = cli.parse(parser, argv)
    bundle = os.path.abspath(args.bundle)
    return cli.run("mocker-runc", lambda a: emit("mocker-runc", mode, TOOLS, part(a.id, bundle)), args)


def main(argv=None) -> int:
    # What is imported by now lives until exit: frozen, the garbage collector
    # skips it in its passes and in the interpreter's teardown (~4 ms a run).
    gc.freeze()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["--explain"], ["--explain=part"]):
        return explain(argv)
    if "_ARGCOMPLETE" in os.environ:   # the shell completes a word: it needs every verb's flags
        args = parse(build_parser(), argv)
    else:
        args = build_parser(chosen_verb(argv)).parse_args(argv)
    log = RunLog(args.log, args.log_format, args.debug)
    if args.debug:                       # runc's --debug: each step, to --log or stderr
        narrate.to(log.debug)
    elif narrate.ENV in os.environ:      # mocker -v: the engine's stderr (narrate.py)
        narrate.from_environment()
    try:
        store = Store(args.root or _default_root())
        if args.verb not in ("spec", "features"):   # the two that use no state
            store.check_owner()
        log.debug(f"{args.verb} {getattr(args, 'id', '')}")
        return int(args.run(store, args) or 0)
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
    except Exception as err:   # a bug: one line, as in every mocker command (--debug: the trace)
        from mocker_common.cli import internal_error
        return internal_error(PROG, err, args.debug,
                              write=lambda line: log.error(line.removeprefix(PROG + ": ")))


def _default_root() -> str:
    from mocker_common import paths   # pathlib: only loaded when --root is not given
    return str(paths.runc_state_dir())
