"""Device control on cgroup v2: the eBPF program on a container's cgroup.

    install(cgroup, ruleset)   # at create, and again at update
    attached(cgroup)           # ids of the device programs on that cgroup

`cgroup` is a cgroup2 directory or an open fd of one, so a cgroup made by
another driver (systemd) can take the same program. The program is
attached with BPF_F_ALLOW_MULTI, as runc does: the kernel runs every
program of the cgroup and of its ancestors, and a device is usable only if
all of them allow it. That is why replacing goes "attach the new one, then
detach the old ones": in between both apply, and nothing is ever more open
than under either. Removing the cgroup (rmdir) frees its programs.
"""

import os
import resource

from mocker_common.errors import MockerError

from .. import linux, narrate
from . import devicebpf
from .devices import RuleSet


class _CgroupFd:
    """An fd of the cgroup2 directory, opened here (and closed) if given a path."""

    def __init__(self, cgroup: str | int):
        self.cgroup = cgroup

    def __enter__(self) -> int:
        if isinstance(self.cgroup, int):
            self.fd = None
            return self.cgroup
        try:
            self.fd = os.open(self.cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise MockerError(f"cannot open cgroup {self.cgroup}: {err.strerror}") from None
        return self.fd

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


def load(ruleset: RuleSet) -> int:
    """BPF_PROG_LOAD of the program for ruleset; its fd."""
    code = devicebpf.encode(devicebpf.program(ruleset))
    try:
        return _load(code)
    except OSError as err:
        if err.errno != 1:
            raise MockerError(f"cannot load the device program: {err.strerror}") from None
    # EPERM: before Linux 5.11 a program's memory counts against RLIMIT_MEMLOCK.
    # Raise it for this one call only, so that the container does not inherit it.
    saved = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (saved[1], saved[1]))
        return _load(code)
    except (OSError, ValueError) as err:
        raise MockerError(f"cannot load the device program: {getattr(err, 'strerror', err)}"
                          " (bpf(2) needs CAP_SYS_ADMIN or CAP_BPF)") from None
    finally:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, saved)


def _load(code: bytes) -> int:
    return linux.bpf_prog_load(linux.BPF_PROG_TYPE_CGROUP_DEVICE, code, devicebpf.LICENSE,
                               devicebpf.NAME)


def attached(cgroup: str | int) -> list[int]:
    """Ids of the device programs attached to this cgroup (not its ancestors')."""
    with _CgroupFd(cgroup) as fd:
        try:
            return linux.bpf_prog_query(fd, linux.BPF_CGROUP_DEVICE)
        except OSError as err:
            raise MockerError(f"cannot list the device programs of cgroup {cgroup}: "
                              f"{err.strerror}") from None


def install(cgroup: str | int, ruleset: RuleSet) -> int:
    """Attach the program for ruleset, then detach what was there before; its id."""
    prog = load(ruleset)
    try:
        with _CgroupFd(cgroup) as fd:
            old = attached(fd)
            try:
                linux.bpf_prog_attach(fd, prog, linux.BPF_CGROUP_DEVICE, linux.BPF_F_ALLOW_MULTI)
            except OSError as err:
                raise MockerError(f"cannot attach the device program to cgroup {cgroup}: "
                                  f"{err.strerror}") from None
            for prog_id in old:
                _detach(fd, prog_id)
            prog_id = linux.bpf_prog_info(prog)[1]
            narrate.say("device rules: eBPF program %d attached to %s (%s by default, %d "
                        "exceptions)", prog_id, cgroup,
                        "allow" if ruleset.default_allow else "deny", len(ruleset.exceptions))
            return prog_id
    finally:
        os.close(prog)   # the attachment keeps the program alive


def _detach(fd: int, prog_id: int) -> None:
    try:
        old = linux.bpf_prog_get_fd_by_id(prog_id)
    except OSError as err:
        if err.errno == 2:   # ENOENT: gone meanwhile
            return
        raise MockerError(f"cannot detach device program {prog_id}: {err.strerror}") from None
    try:
        linux.bpf_prog_detach(fd, old, linux.BPF_CGROUP_DEVICE)
    except OSError as err:
        if err.errno != 2:
            raise MockerError(f"cannot detach device program {prog_id}: {err.strerror}") from None
    finally:
        os.close(old)


def program_exists(prog_id: int) -> bool:
    """Whether the kernel still holds the program with this id."""
    try:
        os.close(linux.bpf_prog_get_fd_by_id(prog_id))
        return True
    except OSError as err:
        if err.errno == 2:
            return False
        raise


def dump(prog_id: int) -> tuple[str, list[devicebpf.Insn]]:
    """(name, instructions) of a loaded program, as the kernel holds them."""
    fd = linux.bpf_prog_get_fd_by_id(prog_id)
    try:
        _, _, name, code = linux.bpf_prog_info(fd)
    finally:
        os.close(fd)
    return name, devicebpf.decode(code)
