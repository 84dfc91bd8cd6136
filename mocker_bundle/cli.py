"""The mocker-bundle command line: parses argv and calls the library."""

from mocker_common import cli

PROG = "mocker-bundle"


def build_parser():
    return cli.make_parser(PROG, "turn an image from an OCI image layout into an OCI runtime bundle")


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    return 0
