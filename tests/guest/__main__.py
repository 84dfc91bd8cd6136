"""tests/guest/run: the guest harness by hand (see tests/guest/__init__.py)."""

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.guest.vm import Options, run  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tests/guest/run",
        description="Run COMMAND as root in a throwaway pure cgroup v2 QEMU guest; exit with its status.")
    parser.add_argument("--disk", type=int, default=0, metavar="MiB",
                        help="attach a blank virtio disk of this size (/dev/vda in the guest)")
    parser.add_argument("--systemd", action="store_true", help="boot systemd as PID 1; it runs COMMAND as a unit")
    parser.add_argument("--no-controllers", action="store_true",
                        help="leave the root cgroup's subtree_control empty")
    parser.add_argument("--memory", type=int, default=Options.memory_mib, metavar="MiB")
    parser.add_argument("--cpus", type=int, default=Options.cpus)
    parser.add_argument("--timeout", type=float, default=Options.timeout, metavar="SECONDS")
    parser.add_argument("--rw", action="append", default=[], metavar="DIR",
                        help="a host directory the guest may write (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the run dir (console.log, qemu.log)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print boot and run times")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command and its arguments")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given (tests/guest/run -- COMMAND ...)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    options = Options(memory_mib=args.memory, cpus=args.cpus, timeout=args.timeout, disk_mib=args.disk,
                      init="systemd" if args.systemd else "shell", controllers=not args.no_controllers,
                      rw=tuple(os.path.realpath(d) for d in args.rw), keep=args.keep)
    command = args.command[0] if len(args.command) == 1 else args.command
    result = run(command, options=options, stream=True)
    if result.failure:
        print(result.failure, file=sys.stderr)
    if args.verbose:
        print(f"guest: boot {result.boot_seconds:.1f} s, total {result.seconds:.1f} s", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
