"""The mocker-net command line: parses argv and calls the library."""

from mocker_common import cli

PROG = "mocker-net"


def build_parser():
    return cli.make_parser(PROG, "bridge networking, addresses, NAT and port forwards for containers")


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    return 0
