"""Boot a throwaway pure cgroup v2 guest under QEMU, run one command, power off.

The guest (see init.sh and pid1.sh) is Debian's kernel with the host's / shared
read-only over 9p under a tmpfs overlay, cgroup v1 switched off on the kernel
command line (cgroup_no_v1=all), cgroup2 on /sys/fs/cgroup with every
controller enabled, and no network device (loopback only). QEMU runs under TCG,
software emulation: on these hosts /dev/kvm is a PVM hypervisor that cannot run
a stock kernel. The guest is several times slower than the host.

The host and the guest talk through one per-run directory, shared over 9p at
the same path: cmd.sh (the command, its cwd and environment) in, rc (how it
ended) out; its stdout and stderr come over two virtio-serial ports that QEMU
writes to files there.
"""

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.guest import initramfs, kernel

CACHE = Path(os.environ.get("MOCKER_GUEST_CACHE", "/var/tmp/mocker-guest"))
# Places in the guest that get a fresh tmpfs: overlayfs (container rootfs,
# podman's storage) cannot use the guest's own overlay root as its upper layer.
TMPFS = ("/tmp", "/var/tmp", "/var/lib/mocker", "/var/lib/containers", "/var/lib/containerd")
# Host paths that mean nothing in the guest: /tmp is another tmpfs there.
DROPPED_ENV = {"PWD", "OLDPWD", "SHLVL", "_", "MOCKER_ROOT", "MOCKER_RUN"}
EXIT_NO_STATUS = 125   # the guest never reported how the command ended
EXIT_TIMEOUT = 124     # as timeout(1)


@dataclass(frozen=True)
class Options:
    memory_mib: int = 2048
    cpus: int = 2
    timeout: float = 1800          # seconds before QEMU is killed
    disk_mib: int = 0              # > 0: a blank virtio disk of that size, /dev/vda in the guest
    init: str = "shell"            # "systemd": systemd is PID 1 and runs the command as a unit
    controllers: bool = True       # False: leave the root's cgroup.subtree_control empty
    rw: tuple[str, ...] = ()       # host dirs the guest may write (9p, same path)
    tmpfs: tuple[str, ...] = TMPFS
    keep: bool = False             # keep the run dir (console.log, qemu.log) for a post-mortem


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    console: str                   # the guest kernel's serial console
    boot_seconds: float = 0.0      # QEMU start to the command's start
    seconds: float = 0.0           # QEMU start to power-off
    failure: str = ""              # why there is no exit status of the command, if so


def python_bin_dir() -> str:
    """The directory of the interpreter running us: first on PATH in the guest.

    Not a pyenv shim (a shell script that takes ~20 s per start under TCG):
    sys.executable is what the shim ran. Not resolved through symlinks, so that
    a venv's bin/python keeps its venv.
    """
    return os.path.dirname(os.path.abspath(sys.executable))


def guest_env(env: dict | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    for name in DROPPED_ENV:
        env.pop(name, None)
    env["PATH"] = f"{python_bin_dir()}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env["MOCKER_GUEST"] = "1"   # tells tests (and tests/guest itself) they are inside
    return env


def command_script(command, cwd: str, env: dict, run_dir: Path) -> str:
    """cmd.sh: the environment, a mark that the command started, then the command."""
    lines = ["# written by tests/guest/vm.py"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())
              if name.isidentifier()]
    lines.append(f": > {shlex.quote(str(run_dir / 'started'))}")
    lines.append(f"cd -- {shlex.quote(cwd)} || exit {EXIT_NO_STATUS}")
    if isinstance(command, str):
        lines.append(f"exec /bin/bash -c {shlex.quote(command)}")
    else:
        lines.append(f"exec {shlex.join(command)}")
    return "\n".join(lines) + "\n"


def accelerator() -> str:
    """tcg unless hardware KVM works (not kvm_pvm, which runs only PVM kernels)."""
    chosen = os.environ.get("MOCKER_GUEST_ACCEL")
    if chosen:
        return chosen
    with open("/proc/cpuinfo") as f:
        has_vt = any(flag in f.read() for flag in (" vmx", " svm"))
    if os.access("/dev/kvm", os.W_OK) and has_vt and not os.path.isdir("/sys/module/kvm_pvm"):
        return "kvm"
    return "tcg"


def tsc_khz() -> int | None:
    """The host's TSC in kHz: under TCG the guest's TSC is the host's, and the
    guest's calibration against the PIT fails on a busy host (a hang at boot)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return int(float(line.split(":")[1]) * 1000)
    return None


def kernel_cmdline(run_dir: Path, cwd: str, options: Options, microvm: bool, accel: str) -> str:
    args = [
        "console=ttyS0", "panic=-1", "loglevel=4",
        # cgroup v2 only: no v1 hierarchy can be mounted; systemd reads the second.
        "cgroup_no_v1=all", "systemd.unified_cgroup_hierarchy=1",
        "mitigations=off", "tsc=reliable",
        f"guest.run={run_dir}", f"guest.init={options.init}",
        # the cwd and the interpreter stay visible even under a guest tmpfs (a CI clone in /tmp)
        f"guest.keep={cwd}:{os.path.realpath(sys.prefix)}:{python_bin_dir()}",
        f"guest.tmpfs={':'.join(options.tmpfs)}",
    ]
    if options.rw:
        args.append(f"guest.rw={':'.join(options.rw)}")
    if microvm:
        args.append("pci=off")
    khz = tsc_khz() if accel == "tcg" else None
    if khz:
        args.append(f"tsc_early_khz={khz}")
    for arg in args:
        if any(c.isspace() for c in arg):
            raise ValueError(f"guest: no spaces allowed in paths: {arg}")
    return " ".join(args)


def qemu_argv(kernel_image: Path, initrd: Path, cmdline: str, run_dir: Path, options: Options,
              microvm: bool, accel: str) -> list[str]:
    bus = "device" if microvm else "pci"     # virtio over MMIO (microvm) or PCI (pc)
    argv = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-nic", "none"]   # no network device: nothing outside is reachable
    if microvm:
        argv += ["-machine", "microvm,x-option-roms=off,rtc=on"]
    else:
        argv += ["-machine", "pc"]
    if accel == "kvm":
        argv += ["-accel", "kvm", "-cpu", "host"]
    else:
        argv += ["-accel", "tcg,thread=multi", "-cpu", os.environ.get("MOCKER_GUEST_CPU", "max")]
    argv += ["-m", str(options.memory_mib), "-smp", str(options.cpus),
             "-kernel", str(kernel_image), "-initrd", str(initrd), "-append", cmdline,
             "-serial", f"file:{run_dir / 'console.log'}",
             "-device", f"virtio-serial-{bus},id=ports"]
    for number, name in ((1, "out"), (2, "err")):
        argv += ["-chardev", f"file,id={name},path={run_dir / name}",
                 "-device", f"virtserialport,bus=ports.0,nr={number},chardev={name},name=guest.{name}"]
    shares = [("hostroot", "/", True), ("guestrun", str(run_dir), False)]
    shares += [(f"rw{i}", path, False) for i, path in enumerate(options.rw)]
    for tag, path, readonly in shares:
        # multidevs=remap: the host's / spans several filesystems; remap keeps
        # their inode numbers from colliding in the guest.
        fsdev = f"local,id={tag},path={path},security_model=none,multidevs=remap"
        argv += ["-fsdev", fsdev + (",readonly=on" if readonly else ""),
                 "-device", f"virtio-9p-{bus},fsdev={tag},mount_tag={tag}"]
    if options.disk_mib:
        argv += ["-drive", f"file={run_dir / 'disk.img'},if=none,format=raw,id=disk0",
                 "-device", f"virtio-blk-{bus},drive=disk0"]
    return argv


def _exit_status(text: str) -> int:
    """rc holds 'exited N' (shell init), or systemd's $EXIT_CODE $EXIT_STATUS."""
    how, _, status = text.strip().partition(" ")
    if how == "exited":
        return int(status)
    if how in ("killed", "dumped"):
        return 128 + signal.Signals[f"SIG{status}"].value
    raise ValueError(f"guest: unexpected exit record {text!r}")


def _tail(paths_streams, stop: threading.Event) -> None:
    """Copy what the guest writes to out/err onto our stdout/stderr while it runs."""
    offsets = [0] * len(paths_streams)
    while True:
        done = stop.is_set()
        for i, (path, stream) in enumerate(paths_streams):
            with open(path, "rb") as f:
                f.seek(offsets[i])
                data = f.read()
            if data:
                offsets[i] += len(data)
                stream.write(data)
                stream.flush()
        if done:
            return
        stop.wait(0.2)


def _prepare(run_dir: Path, command, cwd: str, env: dict, options: Options) -> None:
    (run_dir / "cmd.sh").write_text(command_script(command, cwd, env, run_dir))
    (run_dir / "controllers").write_text("all\n" if options.controllers else "none\n")
    for name in ("out", "err", "console.log"):
        (run_dir / name).touch()
    if options.disk_mib:
        with open(run_dir / "disk.img", "wb") as f:
            f.truncate(options.disk_mib << 20)   # sparse: costs nothing until written


def run(command, *, cwd: str | None = None, env: dict | None = None, options: Options = Options(),
        stream: bool = False) -> Result:
    """Run COMMAND (a string for bash -c, or an argv list) as root in a fresh guest.

    cwd defaults to ours, env to ours (see guest_env). stream=True also copies
    the command's output to our stdout/stderr as it comes.
    """
    if os.geteuid() != 0:
        raise PermissionError("guest: must run as root (9p shares the host's / as root)")
    version = kernel.find_version()
    vmlinux = kernel.vmlinux(version, CACHE)
    microvm = vmlinux is not None            # microvm boots only through the PVH entry
    kernel_image = vmlinux or kernel.bzimage(version)
    initrd = initramfs.build(version, CACHE)
    accel = accelerator()
    cwd = os.path.realpath(cwd or os.getcwd())
    run_dir = Path(tempfile.mkdtemp(prefix="mocker-guest-"))
    try:
        _prepare(run_dir, command, cwd, guest_env(env), options)
        cmdline = kernel_cmdline(run_dir, cwd, options, microvm, accel)
        argv = qemu_argv(kernel_image, initrd, cmdline, run_dir, options, microvm, accel)
        return _boot(argv, run_dir, options, stream)
    finally:
        if options.keep:
            print(f"guest: run dir kept: {run_dir}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", str(run_dir)], check=False)


def _boot(argv: list[str], run_dir: Path, options: Options, stream: bool) -> Result:
    stop = threading.Event()
    tail = None
    if stream:
        pairs = [(run_dir / "out", sys.stdout.buffer), (run_dir / "err", sys.stderr.buffer)]
        tail = threading.Thread(target=_tail, args=(pairs, stop), daemon=True)
        tail.start()
    start, wall_start = time.monotonic(), time.time()
    failure = ""
    with open(run_dir / "qemu.log", "wb") as log:
        qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            qemu.wait(timeout=options.timeout or None)
        except subprocess.TimeoutExpired:
            failure = f"guest: timed out after {options.timeout:g} s, QEMU killed"
        finally:
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
    seconds = time.monotonic() - start
    stop.set()
    if tail:
        tail.join()
    started = run_dir / "started"
    boot = started.stat().st_mtime - wall_start if started.exists() else 0.0
    rc_file = run_dir / "rc"
    console = (run_dir / "console.log").read_text(errors="replace")
    if rc_file.exists() and rc_file.read_text().strip():
        returncode = _exit_status(rc_file.read_text())
    elif failure:
        returncode = EXIT_TIMEOUT
    else:
        returncode = EXIT_NO_STATUS
        qemu_log = (run_dir / "qemu.log").read_text(errors="replace")
        failure = (f"guest: no exit status from the guest (QEMU exited {qemu.returncode}); "
                   f"console tail:\n{_last_lines(console + qemu_log, 30)}")
    return Result(returncode=returncode,
                  stdout=(run_dir / "out").read_text(errors="replace"),
                  stderr=(run_dir / "err").read_text(errors="replace"),
                  console=console, boot_seconds=max(boot, 0.0), seconds=seconds, failure=failure)


def _last_lines(text: str, count: int) -> str:
    return "\n".join(text.splitlines()[-count:])
