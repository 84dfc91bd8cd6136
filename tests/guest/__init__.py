"""A pure cgroup v2 test host inside the project: a throwaway QEMU guest.

This machine is a hybrid cgroup host (v1 controllers); our users' machines
are cgroup v2 only. The harness boots Debian's kernel (linux-image-amd64)
under QEMU TCG with `cgroup_no_v1=all`, the host's / read-only over 9p under a
tmpfs overlay, cgroup2 on /sys/fs/cgroup with every controller enabled, and no
network device: loopback and the network namespaces the tests make, nothing
else. It runs ONE command as root, returns its exit status and output, and
powers off; nothing the guest writes outlives it (but in Options.rw dirs).

By hand (the exit status is the command's; -v prints boot and run times):

    tests/guest/run -- cat /proc/self/cgroup /sys/fs/cgroup/cgroup.subtree_control
    tests/guest/run -v -- python3 -m pytest -q tests/test_runc_cgroups_v2.py
    tests/guest/run --disk 16 -- ls -l /dev/vda       # a blank virtio disk
    tests/guest/run --systemd -- systemctl is-system-running   # systemd as PID 1

From Python:

    from tests.guest import Options, run
    result = run(["python3", "-m", "pytest", "-q", "tests/x.py"], options=Options(disk_mib=16))
    result.returncode, result.stdout, result.stderr, result.console

In a test, the `guest` fixture (tests/guest/fixture.py) is `run`, and skips
when QEMU or a kernel is missing, or when the test already runs in a guest.

Inside the guest:
- the cwd and environment are the caller's; PATH starts with the directory of
  the interpreter running the harness (never a pyenv shim: ~20 s per start);
  MOCKER_ROOT/MOCKER_RUN are dropped (host paths); MOCKER_GUEST=1 is set;
- /tmp, /var/tmp, /var/lib/{mocker,containers,containerd} and /run are fresh
  tmpfs: overlayfs, which containers use, cannot take the overlay root as its
  upper layer (the cwd and the interpreter, if under one of them, are bound
  back from the host: a CI clone in /tmp works);
- everything is several times slower than on the host (TCG: software
  emulation; /dev/kvm on these hosts cannot run a stock kernel). Boot to the
  command takes 3-8 s.

Needs root, qemu-system-x86, linux-image-amd64 and busybox-static. The
kernel's uncompressed image and the initramfs are cached in
/var/tmp/mocker-guest (MOCKER_GUEST_CACHE). MOCKER_GUEST_ACCEL=kvm|tcg
overrides the choice of accelerator.

Extension points: Options.init="systemd" boots /lib/systemd/systemd as PID 1,
which runs the command as guest-command.service (see pid1.sh) and powers off;
Options.disk_mib attaches /dev/vda; Options.controllers=False leaves the root's
subtree_control empty.
"""

from tests.guest.vm import Options, Result, run

__all__ = ["Options", "Result", "run"]
