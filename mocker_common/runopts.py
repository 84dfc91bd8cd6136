"""`docker run`'s options, written once: who takes each one, and its help.

`mocker run` is three programs in a row (bin/mocker, mocker-bundle, the
engine), and each reads some of these options. From this one table come:
mocker-bundle's container flags (mocker_bundle/cli.py), the engine's `run` and
`create` flags (mocker_engine/cli.py), `mocker run --help`, and, through
scripts/gen-runopts, the option parsing in bin/mocker and the word list in
completions/mocker.bash (tests/test_runopts.py checks both are up to date).

    python3 -m mocker_common.runopts help        # what `mocker run --help` prints
"""

from .record import FrozenRecord

BUNDLE = "bundle"     # mocker-bundle writes it into config.json
ENGINE = "engine"     # the engine keeps it in the container's record
WRAPPER = "wrapper"   # bin/mocker itself acts on it


class RunOption(FrozenRecord):
    flags: tuple[str, ...]        # as docker spells them: ("-p", "--publish")
    metavar: str                  # the value's form; "" for a switch
    help: str
    takers: tuple[str, ...]       # BUNDLE, ENGINE, WRAPPER: who reads it
    repeat: bool = False          # may be given again (each value kept)
    number: bool = False          # an integer
    aliases: tuple[str, ...] = ()  # accepted, but not shown in help or completion (docker's --net)

    @property
    def dest(self) -> str:
        """The value's name in Python and shell: "--pids-limit" -> pids_limit."""
        return self.flags[-1].lstrip("-").replace("-", "_")

    @property
    def long(self) -> str:
        return self.flags[-1]

    @property
    def accepted(self) -> tuple[str, ...]:
        return self.flags + self.aliases

    def bundle_flags(self) -> tuple[str, ...]:
        """mocker-bundle's flags for it: its own -v (verbose) and -h (help) stay its own."""
        return tuple(f for f in self.accepted if f not in ("-v", "-h"))


def _opt(flags: str, metavar: str, help: str, *takers: str, **kw) -> RunOption:
    return RunOption(tuple(flags.split()), metavar, help, takers, **kw)


RUN_OPTIONS = (
    _opt("-d --detach", "", "run in the background; print the container's id", ENGINE),
    _opt("-i --interactive", "", "keep stdin open", ENGINE),
    _opt("-t --tty", "", "give the container a terminal", BUNDLE, ENGINE),
    _opt("--rm", "", "remove the container when it exits", ENGINE),
    _opt("--name", "NAME", "name the container (default: a generated name)", ENGINE),
    _opt("-e --env", "VAR[=VALUE]", "set an environment variable (VAR alone: from mine)",
         BUNDLE, repeat=True),
    _opt("--env-file", "FILE", "read VAR=VALUE lines from FILE", WRAPPER, repeat=True),
    _opt("-p --publish", "[IP:]HOST:CONTAINER[/PROTO]", "publish a container's port",
         BUNDLE, repeat=True),
    _opt("-v --volume", "HOST:CONTAINER[:ro]", "bind-mount a host path", BUNDLE, repeat=True),
    _opt("-w --workdir", "DIR", "working directory in the container", BUNDLE),
    _opt("-u --user", "USER[:GROUP]", "user to run as (name or id)", BUNDLE),
    _opt("--entrypoint", "CMD", "replace the image's entrypoint ('' for none)", BUNDLE),
    _opt("-h --hostname", "NAME", "the container's hostname", BUNDLE),
    _opt("--network", "MODE", "bridge (default), none or host", BUNDLE, aliases=("--net",)),
    _opt("-m --memory", "BYTES", "memory limit (k, m, g suffixes)", BUNDLE),
    _opt("--cpus", "N", "CPU limit (e.g. 0.5)", BUNDLE),
    _opt("--pids-limit", "N", "process limit", BUNDLE, number=True),
    _opt("--device", "HOST[:CTR][:rwm]", "give the container a host device", BUNDLE, repeat=True),
    _opt("--read-only", "", "mount the root filesystem read-only", BUNDLE),
    _opt("--init", "", "run a small init as pid 1 that reaps zombies", ENGINE),
    _opt("--stop-signal", "SIG", "signal `mocker stop` sends (default SIGTERM)", ENGINE),
)


def taken_by(taker: str) -> tuple[RunOption, ...]:
    return tuple(o for o in RUN_OPTIONS if taker in o.takers)


def add_to_parser(parser, taker: str) -> None:
    """argparse flags for the options taker reads (mocker-bundle's, the engine's)."""
    for o in taken_by(taker):
        flags = o.bundle_flags() if taker == BUNDLE else o.accepted
        if not o.metavar:
            parser.add_argument(*flags, dest=o.dest, action="store_true", help=o.help)
        elif o.repeat:
            parser.add_argument(*flags, dest=o.dest, action="append", default=[],
                                metavar=o.metavar, help=o.help)
        else:
            parser.add_argument(*flags, dest=o.dest, metavar=o.metavar, help=o.help,
                                type=int if o.number else None)


def usage() -> str:
    """`mocker run --help`."""
    lines = ["Usage: mocker run [OPTIONS] IMAGE [COMMAND [ARG...]]", "",
             "Create and run a container from IMAGE (pulled when the store lacks it).", "",
             "Options:"]
    for o in RUN_OPTIONS:
        short = [f for f in o.flags if len(f) == 2]
        names = ", ".join(short + [f for f in o.flags if len(f) > 2])
        left = f"{'' if short else '    '}{names} {o.metavar}".rstrip()
        lines.append(f"  {left:<28} {o.help}" if len(left) < 28 else f"  {left}\n{'':31}{o.help}")
    # mocker's own, not docker's: so not in the table (no bundle or engine flag).
    lines.append(f"  {'--explain':<28} print a shell script doing the same with standard tools")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    if sys.argv[1:] != ["help"]:
        sys.exit("usage: python3 -m mocker_common.runopts help")
    sys.stdout.write(usage())
