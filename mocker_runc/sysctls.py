"""Which linux.sysctl keys a container may set: only those its own namespaces hold.

A sysctl outside every namespace (vm.swappiness, kernel.pid_max) is the
host's: writing it from a container would change the whole machine. So, as
runc does, a config may set a key only where the kernel keeps a copy per
namespace (sysctl(2) docs, ipc_namespaces(7), network_namespaces(7),
uts_namespaces(7)), and only if the container has that namespace.
"""

import os

from .spec import Spec, SpecError

# ipc_namespaces(7): the System V IPC limits and the POSIX message queue ones.
_IPC_KEYS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
             "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_IPC_PREFIX = "fs.mqueue."
_NET_PREFIX = "net."   # network_namespaces(7): /proc/sys/net is per namespace


def check(spec: Spec) -> None:
    """Refuse, before anything is made, a sysctl that would reach outside the container."""
    for key in spec.sysctl:
        _check_key(spec, key)


def _check_key(spec: Spec, key: str) -> None:
    if key in _IPC_KEYS or key.startswith(_IPC_PREFIX):
        if spec.namespace("ipc") is None:
            raise SpecError(f"sysctl {key!r} is not allowed in the host's ipc namespace")
        return
    if key.startswith(_NET_PREFIX):
        net = spec.namespace("network")
        if net is None or (net.path and _is_our_netns(net.path)):
            raise SpecError(f"sysctl {key!r} is not allowed in the host's network namespace")
        return
    if spec.namespace("uts") is not None:
        if key == "kernel.domainname":
            return
        if key == "kernel.hostname":   # the config's own "hostname" field says it
            raise SpecError(f"sysctl {key!r} is not allowed: it conflicts with the "
                            f"config's \"hostname\" field")
    raise SpecError(f"sysctl {key!r} is not in a namespace of the container's own "
                    f"(it would change the host)")


def _is_our_netns(path: str) -> bool:
    """A namespace joined by path may be the host's own: then its net.* are the host's."""
    try:
        return os.stat(path).st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError as err:
        raise SpecError(f"network namespace {path}: {err.strerror}") from None
