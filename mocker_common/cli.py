"""The frame every mocker command shares: argparse with --version and -v,
argcomplete, logging to stderr, and one-line errors with named exit codes.
"""

import os
import sys

from . import __version__
from .errors import ExitCode, MockerError


def english_argparse():
    """The argparse module, its messages in English without gettext lookups.

    argparse passes each message through gettext, whose every lookup imports
    locale and searches the disk for translations it has none of: ~2 ms and
    0.5 MiB on every start of a command. Imported here, not at the top, as a
    command may parse its hottest verb without argparse.
    """
    import argparse
    argparse._ = str
    return argparse


def make_parser(prog: str, description: str) -> "argparse.ArgumentParser":
    argparse = english_argparse()
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} version {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="explain each step on stderr (-vv for more)")
    return parser


def parse(parser: "argparse.ArgumentParser", argv=None) -> "argparse.Namespace":
    """Parse argv, offering shell completion first when argcomplete asks for it."""
    if "_ARGCOMPLETE" in os.environ:   # set only when the shell's completion hook runs us
        try:
            import argcomplete
            argcomplete.autocomplete(parser)
        except ImportError:
            pass
    return parser.parse_args(argv)


def setup_logging(verbose: int) -> None:
    # `mocker -v` exports MOCKER_VERBOSE=1, so that every command it runs (the
    # network hooks the runtime starts included) explains its steps too.
    from_env = os.environ.get("MOCKER_VERBOSE", "")
    if from_env.isdigit():
        verbose = max(verbose, int(from_env))
    if verbose <= 0 and "logging" not in sys.modules:
        # Nothing imported logging, so nothing logs yet; a module that does later
        # prints WARNING and above as basicConfig would ("%(message)s" on stderr),
        # and this command skips importing logging (~5 ms).
        return
    import logging
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)


def run(prog: str, func, *args) -> int:
    """Call func(*args); turn every failure into one line on stderr and an exit code.

    A MockerError says what went wrong in the user's terms; an OSError nobody
    caught is still one line. Any other exception is a bug in mocker: one line
    too ("internal error: ..."), exit 1, and the traceback with -v (mocker-runc:
    --debug), so that a user sees a message and a developer can ask for more.
    """
    try:
        return int(func(*args) or 0)
    except MockerError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return int(err.code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.ERROR)
    except OSError as err:
        # A syscall failed in a way no module turned into a MockerError: still one line.
        where = f" ({err.filename})" if err.filename else ""
        print(f"{prog}: {err.strerror or err}{where}", file=sys.stderr)
        code = ExitCode.NO_SPACE if err.errno == 28 else ExitCode.ERROR
        return int(code)
    except Exception as err:
        return internal_error(prog, err, verbose=_verbose(args))


def internal_error(prog: str, err: Exception, verbose: bool, write=None) -> int:
    """A bug: one line, and the traceback when asked for (the same in all five commands)."""
    write = write or (lambda line: print(line, file=sys.stderr))
    if verbose:
        import traceback
        write("".join(traceback.format_exception(err)).rstrip())
    write(f"{prog}: internal error: {type(err).__name__}: {err}"
          + ("" if verbose else " (run with -v for the traceback)"))
    return int(ExitCode.ERROR)


def _verbose(args) -> bool:
    level = getattr(args[0], "verbose", 0) if args else 0
    return bool(level) or os.environ.get("MOCKER_VERBOSE", "0") not in ("", "0")


def exit_without_teardown(code: int) -> None:
    """Exit now, without the interpreter's teardown (it frees every module's
    objects one by one: ~5-10 ms that a caller waiting for a short command,
    a runtime hook say, would wait for). Files must be closed by now; what was
    printed is flushed here."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # our reader left (`| head`): nothing more to say
        pass
    os._exit(code)


def human_size(n: float) -> str:
    """Sizes as docker prints them: decimal units, one decimal (1.2 MB)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
