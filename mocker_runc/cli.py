"""The mocker-runc command line: parses argv and calls the library."""

from mocker_common import cli

PROG = "mocker-runc"


def build_parser():
    return cli.make_parser(PROG, "run an OCI runtime bundle in namespaces and cgroups, like runc")


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    return 0
