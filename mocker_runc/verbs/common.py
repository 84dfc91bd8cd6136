"""What several verbs share: the container id argument, create's and run's options."""

from mocker_common.cli import english_argparse

from .. import container

argparse = english_argparse()   # English messages, as runc's are


def add_id(p):
    p.add_argument("id", metavar="CONTAINER_ID")


def add_creating(p):
    """create's arguments; run takes them too."""
    add_id(p)
    p.add_argument("-b", "--bundle", default=".", help="bundle directory (default: .)")
    p.add_argument("--console-socket", help="unix socket that receives the pty master")
    p.add_argument("--pid-file", help="write the container process's pid here")
    p.add_argument("--no-pivot", action="store_true", help="chroot instead of pivot_root")
    p.add_argument("--no-new-keyring", action="store_true",
                   help="keep our session keyring (default: a new one, _ses.ID)")
    p.add_argument("--preserve-fds", type=int, default=0, metavar="N",
                   help="also pass our fds 3 .. 3+N-1 to the container's process")


def create_options(args) -> container.CreateOptions:
    return container.CreateOptions(pid_file=args.pid_file, console_socket=args.console_socket,
                                   no_pivot=args.no_pivot, no_new_keyring=args.no_new_keyring,
                                   preserve_fds=container.preserved_fds(args.preserve_fds),
                                   systemd_cgroup=args.systemd_cgroup)


def state_of(store, cid):
    """The runtime-spec state of a container (state and list print it)."""
    st = store.load(cid)
    return store.spec_state(st, store.status(st, container.cgroup_of(st)))
