"""The mocker-fetch command line: parses argv and calls the library."""

from mocker_common import cli

PROG = "mocker-fetch"


def build_parser():
    return cli.make_parser(PROG, "pull an image from a registry into an OCI image layout")


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    return 0
