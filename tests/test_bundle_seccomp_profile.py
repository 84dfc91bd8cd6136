"""mocker-bundle's default seccomp profile (Docker's), checked as data.

`verdict` reads a linux.seccomp object the way the kernel's filter would
decide one call (rules and their conditions, else the default), so that these
tests say what a program in the container would get, without a kernel. The
same calls made for real, under runc and mocker-runc, are in
test_seccomp_docker.py.
"""

import errno
import json
import subprocess
import sys

import pytest

from mocker_bundle.bundle import host_defaults
from mocker_bundle.convert import runtime_config
from mocker_bundle.options import BundleOptions
from mocker_bundle.profile import DEFAULT_CAPABILITIES
from mocker_bundle.seccomp_profile import BY_CAPABILITY, build
from mocker_bundle.validate import validate_config

CLONE_NEWUSER, CLONE_NEWNET, SIGCHLD = 0x10000000, 0x40000000, 17
_OPS = {"SCMP_CMP_EQ": lambda a, v, _: a == v, "SCMP_CMP_NE": lambda a, v, _: a != v,
        "SCMP_CMP_LT": lambda a, v, _: a < v, "SCMP_CMP_GT": lambda a, v, _: a > v,
        "SCMP_CMP_MASKED_EQ": lambda a, v, w: a & v == w}


def verdict(profile: dict, name: str, *args: int) -> str:
    """"allow", or the errno name the call would fail with."""
    for rule in profile["syscalls"]:
        if name in rule["names"] and all(
                _OPS[c["op"]](args[c["index"]] if c["index"] < len(args) else 0,
                              c["value"], c.get("valueTwo", 0))
                for c in rule.get("args", [])):
            if rule["action"] == "SCMP_ACT_ALLOW":
                return "allow"
            return errno.errorcode[rule["errnoRet"]]
    return errno.errorcode[profile["defaultErrnoRet"]]


DOCKER = build(DEFAULT_CAPABILITIES, "x86_64", "6.1.0-13-amd64")


@pytest.mark.parametrize("name", [
    "seccomp", "name_to_handle_at", "modify_ldt", "adjtimex", "clock_adjtime",
    "futex_waitv", "futex_wake", "fanotify_mark", "arch_prctl", "ptrace", "chroot",
    "read", "openat2", "io_setup", "memfd_secret", "landlock_create_ruleset"])
def test_what_docker_allows_every_container(name):
    """The calls the old hand-written profile refused (seccomp, name_to_handle_at,
    modify_ldt, adjtimex, clock_adjtime, futex_*, fanotify_mark) among them."""
    assert verdict(DOCKER, name) == "allow"


@pytest.mark.parametrize("name", [
    "mount", "umount2", "unshare", "setns", "pivot_root", "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "kexec_load", "reboot", "init_module", "acct", "swapon",
    "settimeofday", "clock_settime", "syslog", "io_uring_setup", "userfaultfd", "vhangup",
    "open_by_handle_at", "iopl", "kcmp", "get_mempolicy", "sethostname", "quotactl",
    "lookup_dcookie", "fsopen", "move_mount", "nfsservctl"])
def test_what_docker_refuses_with_eperm(name):
    assert verdict(DOCKER, name) == "EPERM"


def test_argument_conditions():
    assert verdict(DOCKER, "clone", SIGCHLD) == "allow"                  # fork
    assert verdict(DOCKER, "clone", SIGCHLD | CLONE_NEWUSER) == "EPERM"  # a new namespace
    assert verdict(DOCKER, "clone", SIGCHLD | CLONE_NEWNET) == "EPERM"
    assert verdict(DOCKER, "clone3") == "ENOSYS"          # libc falls back to clone
    assert [verdict(DOCKER, "personality", p) for p in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF)] \
        == ["allow"] * 5
    assert verdict(DOCKER, "personality", 0x0040000) == "EPERM"   # ADDR_NO_RANDOMIZE
    families = {family: verdict(DOCKER, "socket", family) for family in range(0, 46)}
    assert {f for f, v in families.items() if v != "allow"} == {38, 40}   # AF_ALG, AF_VSOCK


def test_s390_passes_clones_flags_second():
    s390 = build([], "s390x", "6.1.0")
    assert verdict(s390, "clone", 0, SIGCHLD | CLONE_NEWUSER) == "EPERM"
    assert verdict(s390, "clone", 0, SIGCHLD) == "allow"
    assert s390["architectures"] == ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]


def test_cap_sys_admin_opens_namespaces_and_mounts():
    admin = build([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], "x86_64", "6.1.0")
    for name in ("mount", "unshare", "setns", "sethostname", "bpf", "clone3", "fsopen"):
        assert verdict(admin, name) == "allow", name
    assert verdict(admin, "clone", SIGCHLD | CLONE_NEWUSER) == "allow"
    assert verdict(admin, "kexec_load") == "EPERM"


@pytest.mark.parametrize("cap", sorted(BY_CAPABILITY))
def test_each_capability_allows_the_calls_it_guards(cap):
    without = build([], "x86_64", "6.1.0")
    with_cap = build([cap], "x86_64", "6.1.0")
    gained = {name for name in BY_CAPABILITY[cap].split() if verdict(without, name) != "allow"}
    assert gained, f"{cap} adds nothing"
    assert all(verdict(with_cap, name) == "allow" for name in gained)


def test_machine_and_kernel_decide_the_rest():
    assert DOCKER["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    arm = build(DEFAULT_CAPABILITIES, "aarch64", "6.1.0")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert verdict(arm, "modify_ldt") == "EPERM" and verdict(arm, "set_tls") == "allow"
    assert verdict(DOCKER, "set_tls") == "EPERM"
    # before 4.8, ptrace could be used to step around the filter
    assert verdict(build(DEFAULT_CAPABILITIES, "x86_64", "4.4.0"), "ptrace") == "EPERM"
    assert build([], "sparc64", "6.1.0")["architectures"] == []


def test_the_profile_is_in_the_config_mocker_bundle_writes(tmp_path):
    opts = host_defaults(BundleOptions(container_id="c0ffee" * 4, network="none"), tmp_path)
    config = runtime_config({"os": "linux", "config": {"Cmd": ["sh"]}}, opts)
    validate_config(config)   # the runtime-spec's schema
    assert config["linux"]["seccomp"] == build(config["process"]["capabilities"]["bounding"])
    assert json.loads(json.dumps(DOCKER)) == DOCKER


def test_mocker_bundle_does_not_load_the_runtime():
    """The profile is data of mocker-bundle's: making a bundle imports no mocker_runc."""
    code = ("import sys, mocker_bundle.cli, mocker_bundle.bundle;"
            "from mocker_bundle.bundle import host_defaults;"
            "print(sorted(m for m in sys.modules if m.startswith('mocker_runc')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
