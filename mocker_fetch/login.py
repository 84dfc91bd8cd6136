"""`mocker login` and `mocker logout`, as Docker's (bin/mocker calls this module).

    python3 -m mocker_fetch.login login [-u USER] [-p PASS | --password-stdin] [REGISTRY]
    python3 -m mocker_fetch.login logout [REGISTRY]

login asks the registry first (GET /v2/, answering its challenge with the
credentials: Basic, or a token from its token server), and saves only what it
accepted, in ~/.docker/config.json or the credential helper it names
(authfile.py). mocker-fetch then reads them from there. REGISTRY defaults to
Docker Hub.
"""

import sys

from mocker_common import cli
from mocker_common.errors import ExitCode, MockerError
from mocker_common.reference import DOCKER_HUB_API

from .credentials import Credentials
from .authfile import HUB_KEY, remove_credentials, save_credentials, server_key

PROG = "mocker"


def build_parser():
    argparse = cli.english_argparse()
    parser = argparse.ArgumentParser(prog="mocker", description="log in to a registry, or out")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="explain each step on stderr (-vv for more)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    login = verbs.add_parser("login", help="check credentials with a registry and save them")
    login.add_argument("registry", nargs="?", default="", metavar="REGISTRY",
                       help="host[:port] (default: Docker Hub)")
    login.add_argument("-u", "--username", help="the user name (asked for on a terminal)")
    secret = login.add_mutually_exclusive_group()
    secret.add_argument("-p", "--password", help="the password (unsafe: others can see "
                                                 "command lines; use --password-stdin)")
    secret.add_argument("--password-stdin", action="store_true",
                        help="read the password from stdin")
    login.add_argument("--insecure", action="store_true",
                       help="allow plain HTTP and unverified TLS (as mocker-fetch --insecure)")
    logout = verbs.add_parser("logout", help="forget a registry's saved credentials")
    logout.add_argument("registry", nargs="?", default="", metavar="REGISTRY",
                        help="host[:port] (default: Docker Hub)")
    return parser


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    return cli.run(f"{PROG} {args.verb}", login_command if args.verb == "login"
                   else logout_command, args)


def login_command(args) -> int:
    key = server_key(args.registry)
    credentials = Credentials(_username(args), _password(args))
    login(key, credentials, insecure=args.insecure)
    where = save_credentials(key, credentials)
    if not where.startswith("credential helper"):
        print(f"WARNING! Your password will be stored unencrypted in {where}.",
              file=sys.stderr)
    print("Login Succeeded")
    return 0


def logout_command(args) -> int:
    key = server_key(args.registry)
    if remove_credentials(key):
        print(f"Removing login credentials for {key}")
    else:
        print(f"Not logged in to {key}")
    return 0


def login(key: str, credentials: Credentials, insecure: bool = False) -> None:
    """Check credentials against the registry named by key; raise if refused."""
    from .registry import Registry
    host = DOCKER_HUB_API if key == HUB_KEY else key
    Registry(host, insecure=insecure, credentials=credentials).check_login()


def _username(args) -> str:
    if args.username:
        return args.username
    if not sys.stdin.isatty() or args.password_stdin:
        raise MockerError("give a user name with -u (there is no terminal to ask on)",
                          ExitCode.USAGE)
    name = input("Username: ").strip()
    if not name:
        raise MockerError("a user name is needed", ExitCode.USAGE)
    return name


def _password(args) -> str:
    if args.password_stdin:
        # As Docker: the whole of stdin, less one line end.
        return sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=sys.stderr)
        return args.password
    if not sys.stdin.isatty():
        raise MockerError("cannot ask for a password: stdin is not a terminal "
                          "(use --password-stdin)", ExitCode.USAGE)
    import getpass
    password = getpass.getpass("Password: ")
    if not password:
        raise MockerError("a password is needed", ExitCode.USAGE)
    return password


if __name__ == "__main__":
    sys.exit(main())
