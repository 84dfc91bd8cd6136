"""Docker's seccomp profile, call by call, under runc and under mocker-runc.

A small static program (tests/fixtures/syscalls/probe.c) makes raw syscalls in
a container of a bundle mocker-bundle wrote (Docker's capabilities and
seccomp profile) and prints the errno of each. The same bundle runs under runc
and under mocker-runc: each line must be the same, and each group of Docker's
profile must give what Docker documents (allowed, EPERM, or ENOSYS for clone3
and for syscalls newer than the profile). With CAP_SYS_ADMIN added, as
`docker run --cap-add SYS_ADMIN` would, its group opens. podman's looser
profile is compared between the runtimes too.
"""

import errno
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mocker_bundle.profile import DEFAULT_CAPABILITIES
from mocker_bundle.seccomp_profile import build as docker_profile
from mocker_runc import libseccomp, seccomp_enosys
from tests.conftest import need_root, need_tool
from tests.fixtures import images
from tests.fixtures.syscalls import build_probe

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
SIGCHLD, CLONE_FS, CLONE_NEWUSER, CLONE_NEWUTS = 17, 0x200, 0x10000000, 0x04000000
AT_FDCWD, NOWHERE = -100, 999999   # a pid that does not exist

# Docker's groups: (label, syscall, arguments). An allowed call's arguments make
# it fail harmlessly in the kernel (a NULL pointer, a bad fd) or do nothing lasting.
GROUPS = {
    "always allowed": [
        ("getpid", "getpid"), ("openat", "openat", AT_FDCWD, 0, 0),
        ("seccomp", "seccomp", 1, 0, 0), ("name_to_handle_at", "name_to_handle_at", -1, 0, 0, 0, 0),
        ("fanotify_mark", "fanotify_mark", -1, 0, 0, -1, 0), ("futex_waitv", "futex_waitv"),
        ("adjtimex", "adjtimex", 0), ("clock_adjtime", "clock_adjtime", 0, 0),
        ("modify_ldt", "modify_ldt", 0, 0, 0), ("arch_prctl", "arch_prctl", 0, 0),
        ("clone", "clone", SIGCHLD), ("chroot", "chroot", 0),
        ("ptrace", "ptrace", 2, NOWHERE), ("process_vm_readv", "process_vm_readv", NOWHERE),
        ("memfd_secret", "memfd_secret", 0), ("landlock", "landlock_create_ruleset", 0, 0, 1),
        ("personality-query", "personality", 0xFFFFFFFF), ("personality-linux32", "personality", 8),
        ("socket-inet", "socket", 2, 2, 0), ("socket-nfc", "socket", 39, 1, 0),
    ],
    "never": [
        ("keyctl", "keyctl", 0), ("add_key", "add_key", 0, 0, 0, 0, 0),
        ("request_key", "request_key", 0, 0, 0, 0), ("io_uring_setup", "io_uring_setup", 0, 0),
        ("userfaultfd", "userfaultfd", 0), ("kexec_load", "kexec_load", 0, 0, 0, 0),
        ("personality-no-aslr", "personality", 0x0040000),
        ("socket-alg", "socket", 38, 5, 0), ("socket-vsock", "socket", 40, 1, 0),
    ],
    "with other capabilities": [
        ("reboot", "reboot", 0, 0, 0, 0), ("init_module", "init_module", 0, 0, 0),
        ("acct", "acct", 0), ("swapon", "swapon", 0, 0), ("iopl", "iopl", 0),
        ("settimeofday", "settimeofday", 1, 0), ("clock_settime", "clock_settime", 0, 0),
        ("vhangup", "vhangup"), ("open_by_handle_at", "open_by_handle_at", -1, 0, 0),
        ("kcmp", "kcmp", NOWHERE, NOWHERE, 0, 0, 0), ("get_mempolicy", "get_mempolicy", 0, 0, 0, 0, 0),
    ],
    "with CAP_SYS_ADMIN": [
        ("mount", "mount", 0, 0, 0, 0, 0), ("umount2", "umount2", 0, 0),
        ("unshare", "unshare", CLONE_NEWUTS), ("setns", "setns", -1, 0),
        ("clone-newuser", "clone", CLONE_NEWUSER | CLONE_FS | SIGCHLD), ("clone3", "clone3", 0, 0),
        ("sethostname", "sethostname", 0, 1000), ("fsopen", "fsopen", 0, 0),
        ("bpf", "bpf", 0, 0, 0), ("perf_event_open", "perf_event_open", 0, 0, -1, -1, 0),
        ("quotactl", "quotactl", 0, 0, 0, 0),
    ],
}
EXPECTED = {"always allowed": "allowed", "never": "EPERM", "with other capabilities": "EPERM",
            "with CAP_SYS_ADMIN": "EPERM"}
NOT_IMPLEMENTED = {"clone3"}   # Docker answers ENOSYS so that libc falls back to clone


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    need_root()
    need_tool("runc")
    return build_probe(tmp_path_factory.mktemp("probe") / "probe")


@pytest.fixture(scope="module")
def busybox_layout(tmp_path_factory) -> Path:
    return images.write_layout(tmp_path_factory.mktemp("layout"), {"busybox": images.busybox_image()})


def probe_args(profile: dict) -> list[str]:
    """LABEL=NUMBER,ARG... for every call this architecture has, and two past the profile."""
    args = []
    for calls in GROUPS.values():
        for label, name, *values in calls:
            number = libseccomp.syscall_number(name)
            if number is not None and number >= 0:
                args.append(",".join([f"{label}={number}", *map(str, values)]))
    native = libseccomp.native_arch()
    highest = seccomp_enosys.highest_numbers(profile)[native][native]
    return args + [f"newer={highest + 1}", "far-newer=1000"]


def bundle_for(layout: Path, probe: Path, where: Path, name: str, edit=None) -> Path:
    made = subprocess.run(["mocker-bundle", "--copy", "-o", str(where), "--name", name,
                           "--network", "none", f"oci:{layout}:busybox", "true"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    bundle = Path(made.stdout.strip())
    shutil.copy(probe, bundle / "rootfs/probe")
    config = json.loads((bundle / "config.json").read_text())
    if edit:
        edit(config)
    config["process"]["args"] = ["/probe", *probe_args(config["linux"]["seccomp"])]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def run_under(runtime: str, bundle: Path, root: Path, name: str) -> dict[str, str]:
    """{label: errno name or "0"} from one container run."""
    proc = subprocess.run([runtime, "--root", str(root), "run", "--bundle", str(bundle), name],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    subprocess.run([runtime, "--root", str(root), "delete", "--force", name], capture_output=True)
    assert proc.returncode == 0, f"{runtime}: {proc.stderr}"
    results = dict(line.split() for line in proc.stdout.splitlines())
    return {label: errno.errorcode.get(int(code), code) for label, code in results.items()}


def side_by_side(bundle: Path, tmp_path: Path, unique: str) -> dict[str, str]:
    runc = run_under("runc", bundle, tmp_path / "runc", unique)
    ours = run_under("mocker-runc", bundle, tmp_path / "mocker-runc", unique)
    differences = {label: (runc.get(label), ours.get(label)) for label in runc.keys() | ours.keys()
                   if runc.get(label) != ours.get(label)}
    assert not differences, f"(runc, mocker-runc) differ: {differences}"
    return ours


def what_each_group_gets(results: dict[str, str], opened: set[str] = frozenset()) -> dict:
    """{label: (expected, got)} where Docker's profile says otherwise than results."""
    wrong = {}
    for group, calls in GROUPS.items():
        for label, *_ in calls:
            if label not in results:
                continue   # not a syscall of this architecture
            want = "allowed" if group in opened else EXPECTED[group]
            if label in NOT_IMPLEMENTED and group not in opened:
                want = "ENOSYS"
            got = results[label]
            if (got == "EPERM") != (want == "EPERM") or (want == "ENOSYS" and got != "ENOSYS"):
                wrong[label] = (want, got)
    for label in ("newer", "far-newer"):
        if results[label] != "ENOSYS":
            wrong[label] = ("ENOSYS", results[label])
    return wrong


@pytest.mark.interop
def test_dockers_profile_gives_what_runc_gives(probe, busybox_layout, tmp_path, unique):
    bundle = bundle_for(busybox_layout, probe, tmp_path / "bundle", unique)
    results = side_by_side(bundle, tmp_path, unique)
    assert what_each_group_gets(results) == {}


@pytest.mark.interop
def test_cap_sys_admin_opens_its_group_as_under_runc(probe, busybox_layout, tmp_path, unique):
    def add_sys_admin(config):
        caps = config["process"]["capabilities"]
        for kind in caps:
            caps[kind].append("CAP_SYS_ADMIN")
        config["linux"]["seccomp"] = docker_profile(caps["bounding"])

    bundle = bundle_for(busybox_layout, probe, tmp_path / "bundle", unique, add_sys_admin)
    results = side_by_side(bundle, tmp_path, unique)
    assert what_each_group_gets(results, opened={"with CAP_SYS_ADMIN"}) == {}


@pytest.mark.interop
def test_podmans_profile_gives_what_runc_gives(probe, busybox_layout, tmp_path, unique):
    """podman's seccomp.json: other rules, more conditions; the runtimes must agree on it too."""
    if not PODMAN_PROFILE.exists():
        pytest.skip("podman's seccomp.json is not installed")

    def podmans(config):
        profile = json.loads(PODMAN_PROFILE.read_text())
        native = docker_profile([])["architectures"][:1]
        for entry in profile.pop("archMap"):
            if [entry["architecture"]] == native:
                profile["architectures"] = native + (entry["subArchitectures"] or [])
        config["linux"]["seccomp"] = profile

    bundle = bundle_for(busybox_layout, probe, tmp_path / "bundle", unique, podmans)
    results = side_by_side(bundle, tmp_path, unique)
    assert results["mount"] != "EPERM"   # podman allows what Docker does not
