"""The mocker-bundle command line: parses argv and calls the library.

    mocker-fetch busybox | mocker-bundle --network none        # image from stdin
    mocker-bundle [OPTIONS] IMAGE [COMMAND [ARG...]]            # docker-run-like
    mocker-bundle --remove BUNDLE_DIR
    mocker-bundle --mount BUNDLE_DIR                            # mount its rootfs again (reboot)
    mocker-bundle --prune                                       # free the layer cache
"""

import argparse
import os
import sys
from pathlib import Path

from mocker_common import cli, names, paths, runopts
from mocker_common.errors import MockerError
from mocker_common.explain import emit, take_flag

PROG = "mocker-bundle"


def build_parser():
    parser = cli.make_parser(PROG, "turn an image from an OCI image layout into an OCI runtime "
                             "bundle (config.json + rootfs/) and print the bundle's path")
    parser.add_argument("image", nargs="?", default="-",
                        help="an image name in the store (busybox), oci:DIR[:REF], "
                             "or - to read the line mocker-fetch prints (the default)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="command and arguments replacing the image's Cmd")
    where = parser.add_argument_group("where")
    where.add_argument("--name", help="container id (default: random); the bundle goes to "
                                      "the containers directory under this name")
    where.add_argument("-o", "--bundle", metavar="DIR", type=Path,
                       help="make the bundle in DIR (new or empty) instead")
    where.add_argument("--copy", action="store_true",
                       help="a plain directory rootfs instead of an overlay mount")
    where.add_argument("--volatile", action="store_true",
                       help="mount the overlay volatile (no syncs): for a container removed "
                            "when it ends, as `mocker run --rm` makes")
    where.add_argument("--platform", metavar="OS/ARCH", help="choose in a multi-platform image")
    instead = where.add_mutually_exclusive_group()
    instead.add_argument("--remove", metavar="DIR", type=Path,
                         help="unmount and delete a bundle made by mocker-bundle, then exit")
    instead.add_argument("--mount", metavar="DIR", type=Path,
                         help="mount a bundle's overlay rootfs again from its layer record "
                              "(after a reboot), then exit; nothing to do if mounted")
    instead.add_argument("--prune", action="store_true",
                         help="delete cached layers that no image in the store and no "
                              "bundle uses, then exit")
    # Off by default: config.json comes from a pure, tested converter, and importing
    # jsonschema would more than double the time of a warm bundle.
    where.add_argument("--validate", action="store_true",
                       help="also check config.json against the runtime-spec's JSON schema")
    run = parser.add_argument_group("container (as docker run; -v and -h are mocker-bundle's "
                                    "own: --volume, --hostname)")
    runopts.add_to_parser(run, runopts.BUNDLE)
    parser.set_defaults(network="bridge")
    return parser


def bundle_options(args, container_id: str):
    from mocker_common import contract
    from .devices import host_device
    from .options import (BundleOptions, parse_bind, parse_cpus, parse_device, parse_env,
                          parse_memory, parse_network)
    ports = contract.distinct([contract.parse_port(p) for p in args.publish])
    return BundleOptions(
        container_id=container_id, command=args.command, entrypoint=args.entrypoint,
        env=parse_env(args.env, os.environ), user=args.user, workdir=args.workdir,
        hostname=names.hostname(args.hostname) if args.hostname else None, tty=args.tty, read_only=args.read_only,
        memory=parse_memory(args.memory) if args.memory else None,
        cpus=parse_cpus(args.cpus) if args.cpus else None, pids_limit=args.pids_limit,
        binds=[parse_bind(v) for v in args.volume], network=parse_network(args.network, ports),
        ports=ports, devices=[host_device(parse_device(d)) for d in args.device])


def make(args) -> int:
    from .bundle import container_id, create_bundle
    from .image import open_image, parse_source
    if args.image == "-" and sys.stdin.isatty():
        raise MockerError("no image given: name one, or pipe in what mocker-fetch prints")
    source_text = sys.stdin.readline() if args.image == "-" else args.image
    platform = tuple(args.platform.split("/")[:2]) if args.platform else None   # os/arch[/variant]
    cid = container_id(args.name, args.bundle)
    opts = bundle_options(args, cid)
    image = open_image(parse_source(source_text), platform)
    bundle_dir = args.bundle or paths.containers_dir() / cid
    print(create_bundle(image, opts, bundle_dir, copy=args.copy, validate=args.validate,
                        volatile=args.volatile))
    return 0


def remove(args) -> int:
    from .remove import remove_bundle
    remove_bundle(args.remove)
    return 0


def mount(args) -> int:
    from .remount import mount_bundle
    mount_bundle(args.mount)
    return 0


def prune(args) -> int:
    from mocker_common.cli import human_size   # the same units as mocker-fetch --prune
    from .prune import prune_cache
    removed = prune_cache()
    for diff_id, size in removed:
        print(f"deleted: {diff_id} ({human_size(size)})")
    print(f"Removed {len(removed)} cached layers; reclaimed "
          f"{human_size(sum(size for _, size in removed))}")
    return 0


def explain(args, mode: str) -> int:
    """mocker-bundle --explain [OPTIONS] IMAGE [CMD…]: the bundle as a shell script."""
    from mocker_common.reference import parse_reference
    from .bundle import container_id
    from .explain import TOOLS, part
    cid = container_id(args.name, args.bundle)
    text = f"\nID={cid}" + part(parse_reference(args.image).refname, bundle_options(args, cid),
                                str(paths.image_layout()))
    return emit(PROG, mode, TOOLS, text)


def main(argv=None) -> int:
    mode, argv = take_flag(sys.argv[1:] if argv is None else argv)
    if mode:
        args = cli.parse(build_parser(), argv)
        return cli.run(PROG, lambda a: explain(a, mode), args)
    args = cli.parse(build_parser(), argv)
    cli.setup_logging(args.verbose)
    command = remove if args.remove else mount if args.mount else prune if args.prune else make
    return cli.run(PROG, command, args)
