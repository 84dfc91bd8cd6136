"""The mocker-fetch command line: parses argv and calls the library.

    mocker-fetch [options] IMAGE        pull; prints oci:LAYOUT:REFNAME on stdout
    mocker-fetch --list [--json]        the stored images (mocker images)
    mocker-fetch --rm IMAGE...          untag and collect garbage (mocker rmi)
    mocker-fetch --prune                drop unnamed images and unused blobs
"""

import sys
from pathlib import Path

from mocker_common import cli, contract, paths
from mocker_common.explain import emit, take_flag
from mocker_common.errors import ExitCode, MockerError

PROG = "mocker-fetch"


def build_parser():
    parser = cli.make_parser(PROG, "pull an image from a registry into an OCI image layout")
    parser.add_argument("image", nargs="*", metavar="IMAGE",
                        help="what to pull, as Docker writes it (busybox, host:5000/a/b:tag, "
                             "name@sha256:…); with --rm, the images to remove")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the stored images")
    action.add_argument("--rm", action="store_true", help="remove the named images")
    action.add_argument("--prune", action="store_true",
                        help="remove unnamed images and blobs no image uses")
    parser.add_argument("--json", action="store_true", help="with --list: print JSON")
    parser.add_argument("--layout", metavar="DIR", type=Path,
                        help="the OCI layout to use (default: the shared store, "
                             "$MOCKER_ROOT/images)")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="which image of a multi-platform index (default: this host's)")
    creds = parser.add_mutually_exclusive_group()
    creds.add_argument("--creds", metavar="USER:PASS", help="log in with these credentials")
    creds.add_argument("--authfile", metavar="FILE",
                       help="credentials file like ~/.docker/config.json (the default)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow plain HTTP and unverified TLS (loopback registries always "
                             "may, and those named insecure in registries.conf or daemon.json)")
    parser.add_argument("--mirror", action="append", metavar="URL",
                        help="a Docker Hub mirror to try first (also $MOCKER_REGISTRY_MIRROR, "
                             "or registry-mirrors in $MOCKER_ROOT/config.json)")
    parser.add_argument("-j", "--jobs", type=int, default=4, metavar="N",
                        help="blobs downloaded in parallel (default 4)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv=None) -> int:
    explain, argv = take_flag(sys.argv[1:] if argv is None else argv)
    if explain:   # mocker-fetch --explain IMAGE: the pull as a shell script
        from .explain import TOOLS, part
        args = cli.parse(build_parser(), argv)
        if len(args.image) != 1:
            raise SystemExit(f"{PROG}: --explain takes one image")
        return cli.run(PROG, lambda a: emit(PROG, explain, TOOLS, part(a.image[0], a.mirror)), args)
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    return cli.run(PROG, dispatch, args)


def dispatch(args) -> int:
    from .layout import Layout
    layout = Layout(args.layout or paths.image_layout())
    if args.list:
        return list_command(layout, args)
    if args.rm:
        return rm_command(layout, args)
    if args.prune:
        return prune_command(layout)
    if len(args.image) != 1:
        raise MockerError("give exactly one IMAGE to pull (see --help)", ExitCode.USAGE)
    return pull_command(layout, args)


def pull_command(layout, args) -> int:
    from .auth import parse_creds
    from .config import hub_mirrors
    from .manifest import parse_platform
    from .progress import Progress
    from .pull import PullOptions, pull
    from mocker_common.reference import parse_reference

    ref = parse_reference(args.image[0])
    try:
        contract.oci_line(str(layout.path.absolute()), ref.refname)   # refused before pulling
    except MockerError as err:
        raise MockerError(str(err), ExitCode.USAGE) from None
    options = PullOptions(
        platform=parse_platform(args.platform) if args.platform else None,
        insecure=args.insecure,
        credentials=parse_creds(args.creds) if args.creds else None,
        authfile=args.authfile,
        mirrors=hub_mirrors(ref, args.mirror),
        jobs=args.jobs,
    )
    progress = Progress(quiet=args.quiet)
    progress.message(f"Pulling {ref.refname}")
    refname = pull(ref, layout, options, progress)
    print(contract.oci_line(str(layout.path.absolute()), refname), flush=True)
    return 0


def list_command(layout, args) -> int:
    from .images import list_images, render_json, render_table
    images = list_images(layout)
    print(render_json(images) if args.json else render_table(images))
    return 0


def rm_command(layout, args) -> int:
    from .images import remove_images
    from mocker_common.cli import human_size
    if not args.image:
        raise MockerError("--rm needs at least one IMAGE", ExitCode.USAGE)
    removed, count, freed = remove_images(layout, args.image)
    for refname in removed:
        print(f"Untagged: {refname}")
    print(f"Deleted {count} blobs ({human_size(freed)})", file=sys.stderr)
    return 0


def prune_command(layout) -> int:
    from .images import prune
    from mocker_common.cli import human_size
    dropped, count, freed = prune(layout)
    print(f"Removed {dropped} unnamed images and {count} blobs; "
          f"reclaimed {human_size(freed)}")
    return 0
