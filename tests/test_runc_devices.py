"""Device rules and the cgroup v2 device program, without a kernel.

devices.py reads linux.resources.devices as runc does (its defaults, its
v1-emulator semantics); devicebpf.py turns the result into eBPF. A small
interpreter below runs the generated program on device requests, so every
verdict of the program is checked against the rules' reference verdict
(devices.permits) and against what runc decides for Docker's rules.
"""

import itertools
import random

import pytest

from mocker_bundle import profile
from mocker_common.errors import MockerError
from mocker_runc.cgroups import devicebpf as bpf
from mocker_runc.cgroups import devices as dev
from mocker_runc.cgroups.devices import ANY, Rule

DOCKER = profile.DEFAULT_DEVICE_RULES


def ruleset(config_rules, linux_devices=None):
    return dev.normalize(dev.effective_rules(config_rules, linux_devices))


# -- a tiny eBPF interpreter: just the instructions a device program uses ------------

def run(insns, kind: str, major: int, minor: int, access: str) -> int:
    """What the kernel would compute: r1 points to struct bpf_cgroup_dev_ctx."""
    ctx = {0: (sum(bpf.ACCESS_BITS[a] for a in access) << 16) | bpf.DEVICE_TYPES[kind],
           4: major, 8: minor}
    reg = [0] * 11
    pc, steps = 0, 0
    while True:
        steps += 1
        assert steps < 10_000, "the program loops"
        insn = insns[pc]
        pc += 1
        if insn.code == bpf.LDX_MEM_W:
            assert insn.src == 1, "only the context is read"
            reg[insn.dst] = ctx[insn.off]
        elif insn.code == bpf.ALU32_AND_K:
            reg[insn.dst] = (reg[insn.dst] & insn.imm) & 0xFFFFFFFF
        elif insn.code == bpf.ALU32_RSH_K:
            reg[insn.dst] = (reg[insn.dst] & 0xFFFFFFFF) >> insn.imm
        elif insn.code == bpf.ALU32_MOV_K:
            reg[insn.dst] = insn.imm & 0xFFFFFFFF
        elif insn.code == bpf.ALU32_MOV_X:
            reg[insn.dst] = reg[insn.src] & 0xFFFFFFFF
        elif insn.code == bpf.JNE_K:
            if reg[insn.dst] != insn.imm & 0xFFFFFFFFFFFFFFFF:
                pc += insn.off
        elif insn.code == bpf.JNE_X:
            if reg[insn.dst] != reg[insn.src]:
                pc += insn.off
        elif insn.code == bpf.EXIT:
            return reg[0]
        else:
            raise AssertionError(f"unexpected opcode {insn.code:#x}")


def allowed(rules_set, kind, major, minor, access) -> bool:
    return run(bpf.program(rules_set), kind, major, minor, access) == 1


# -- Docker's rules, under runc's defaults --------------------------------------------

@pytest.mark.parametrize("request_, verdict", [
    (("c", 1, 3, "rw"), True),       # /dev/null
    (("c", 1, 5, "r"), True),        # /dev/zero
    (("c", 1, 7, "w"), True),        # /dev/full
    (("c", 1, 9, "r"), True),        # /dev/urandom
    (("c", 5, 0, "rw"), True),       # /dev/tty
    (("c", 5, 1, "rw"), True),       # /dev/console
    (("c", 5, 2, "rw"), True),       # /dev/ptmx
    (("c", 136, 7, "rw"), True),     # /dev/pts/7
    (("c", 10, 200, "rw"), True),    # /dev/net/tun: runc 1.1's default
    (("c", 4, 64, "m"), True),       # mknod of anything...
    (("b", 8, 0, "m"), True),
    (("c", 4, 64, "w"), False),      # ...but no open: the host's serial console
    (("c", 4, 64, "r"), False),
    (("b", 8, 0, "r"), False),       # the host's disk
    (("b", 254, 0, "rw"), False),
    (("c", 1, 1, "r"), False),       # /dev/mem
    (("c", 1, 2, "r"), False),       # /dev/kmem
    (("c", 10, 229, "rw"), False),   # /dev/fuse, denied by Docker
    (("c", 1, 11, "r"), False),      # /dev/kmsg
    (("c", 1, 3, "rwm"), True),
])
def test_dockers_rules_allow_what_runc_allows(request_, verdict):
    rules = ruleset(DOCKER)
    assert dev.permits(rules, *request_) is verdict
    assert allowed(rules, *request_) is verdict


def test_mocker_bundles_rules_come_to_runcs_for_dockers_config():
    """Docker's own config.json (moby's oci/defaults.go) plus runc's defaults
    give the very rule set that mocker-bundle's explicit list gives."""
    moby = [{"allow": False, "access": "rwm"}] + [
        {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
        for major, minor in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))] + [
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]
    assert ruleset(moby) == ruleset(DOCKER)


def test_no_rules_at_all_is_still_default_deny():
    rules = ruleset(None)
    assert not rules.default_allow
    assert not allowed(rules, "b", 8, 0, "r") and allowed(rules, "c", 1, 3, "rw")


# -- runc's semantics ---------------------------------------------------------------

def test_the_config_cannot_take_runcs_defaults_away():
    rules = ruleset([{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    assert allowed(rules, "c", 1, 3, "rw")


def test_linux_devices_get_no_rule_of_their_own():
    disk = [{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]
    assert not allowed(ruleset(DOCKER, disk), "b", 8, 0, "r")
    assert allowed(ruleset(DOCKER, disk), "b", 8, 0, "m")


def test_a_linux_device_with_a_default_path_drops_that_default():
    """runc replaces its /dev/null rule by the config's /dev/null device, which has none."""
    null = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]
    assert not allowed(ruleset([{"allow": False, "access": "rwm"}], null), "c", 1, 3, "w")


def test_a_type_a_rule_resets_whatever_its_numbers():
    rules = ruleset([{"allow": True, "type": "a", "major": 1, "minor": 3, "access": "r"}])
    assert rules.default_allow and rules.exceptions == ()
    assert allowed(rules, "b", 8, 0, "rw")      # privileged: everything
    rules = ruleset([{"allow": True, "type": "a", "access": "rwm"},
                     {"allow": False, "type": "b", "major": 8, "access": "rwm"}])
    assert not allowed(rules, "b", 8, 1, "r") and allowed(rules, "b", 9, 1, "r")


def test_later_rules_take_bits_from_earlier_ones():
    rules = ruleset([{"allow": False, "access": "rwm"},
                     {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "rw"},
                     {"allow": False, "type": "b", "major": 7, "minor": 0, "access": "w"}])
    assert allowed(rules, "b", 7, 0, "r")
    assert not allowed(rules, "b", 7, 0, "w") and not allowed(rules, "b", 7, 0, "rw")


def test_access_asked_must_all_be_granted_by_one_rule():
    rules = ruleset([{"allow": False, "access": "rwm"},
                     {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"},
                     {"allow": True, "type": "b", "major": 7, "access": "w"}])
    assert allowed(rules, "b", 7, 0, "r") and allowed(rules, "b", 7, 0, "w")
    assert not allowed(rules, "b", 7, 0, "rw")   # as v1's match_exception


def test_punching_a_hole_in_a_wildcard_is_refused_as_runc_does():
    with pytest.raises(MockerError, match="cannot punch a hole in the wider rule c 1:\\* rwm"):
        ruleset([{"allow": False, "access": "rwm"},
                 {"allow": True, "type": "c", "major": 1, "access": "rwm"},
                 {"allow": False, "type": "c", "major": 1, "minor": 1, "access": "r"}])
    # runc's own mknod wildcards are appended last: denying the mknod of one
    # device before them is fine, it is overridden
    assert allowed(ruleset([{"allow": False, "type": "c", "major": 4, "minor": 64, "access": "m"}]),
                   "c", 4, 64, "m")


@pytest.mark.parametrize("rule, message", [
    ({"allow": True, "type": "c", "major": 1, "minor": 3}, "device access cannot be empty"),
    ({"allow": True, "type": "x", "access": "r"}, "invalid device type 'x'"),
    ({"allow": True, "type": "c", "access": "rx"}, "invalid device access 'rx'"),
    ({"allow": True, "type": "c", "major": -2, "access": "r"}, "invalid major number -2"),
    ({"allow": True, "type": "c", "minor": 1 << 32, "access": "r"}, "invalid minor number"),
    ({"allow": True, "type": "c", "major": "1", "access": "r"}, "invalid major number '1'"),
])
def test_bad_rules_are_refused_with_their_index(rule, message):
    with pytest.raises(MockerError, match=f"linux.resources.devices\\[1\\]: {message}"):
        dev.effective_rules([{"allow": False, "access": "rwm"}, rule])


def test_access_letters_in_any_order():
    assert dev.parse({"allow": True, "type": "c", "access": "mwr"}).access == "rwm"


# -- the program ----------------------------------------------------------------------

KINDS, MAJORS, MINORS = ("b", "c"), (1, 4, 7, 136), (0, 3, 64)
ACCESSES = ("r", "w", "m", "rw", "rm", "wm", "rwm")


def random_rules(rng: random.Random) -> list:
    rules = [{"allow": rng.random() < 0.2, "access": "rwm"}]
    for _ in range(rng.randrange(8)):
        rules.append({"allow": rng.random() < 0.6, "type": rng.choice(("b", "c")),
                      "major": rng.choice((None, *MAJORS)), "minor": rng.choice((None, *MINORS)),
                      "access": rng.choice(ACCESSES)})
    return rules


def test_the_program_agrees_with_the_rules_on_every_request():
    rng = random.Random(1212)
    checked = 0
    for _ in range(300):
        try:
            rules = ruleset(random_rules(rng))
        except MockerError:
            continue   # a hole in a wildcard: refused, nothing to run
        insns = bpf.program(rules)
        for request_ in itertools.product(KINDS, MAJORS, MINORS, ACCESSES):
            assert (run(insns, *request_) == 1) is dev.permits(rules, *request_), (rules, request_)
            checked += 1
    assert checked > 40_000


def test_instructions_encode_as_struct_bpf_insn():
    insns = [bpf.Insn(bpf.LDX_MEM_W, 4, 1, 4), bpf.Insn(bpf.JNE_K, 5, 0, 3, 200),
             bpf.Insn(bpf.ALU32_MOV_K, 0, imm=-1), bpf.Insn(bpf.EXIT)]
    code = bpf.encode(insns)
    assert code == bytes.fromhex("61 14 0400 00000000"
                                 "55 05 0300 c8000000"
                                 "b4 00 0000 ffffffff"
                                 "95 00 0000 00000000".replace(" ", ""))
    assert bpf.decode(code) == insns


def test_every_jump_lands_inside_the_program_and_it_ends_with_exit():
    insns = bpf.program(ruleset(DOCKER))
    for pc, insn in enumerate(insns):
        if insn.code in (bpf.JNE_K, bpf.JNE_X):
            assert 0 < pc + insn.off + 1 < len(insns)
    assert insns[-1].code == bpf.EXIT and len(insns) < 4096


def test_rwm_rules_skip_the_access_test_and_wildcards_their_number_test():
    block = bpf._block(Rule(True, "c", 136, ANY, "rwm"))
    assert [i.code for i in block] == [bpf.JNE_K, bpf.JNE_K, bpf.ALU32_MOV_K, bpf.EXIT]
    block = bpf._block(Rule(True, "b", ANY, ANY, "m"))
    assert [i.code for i in block] == [bpf.JNE_K, bpf.ALU32_MOV_X, bpf.ALU32_AND_K, bpf.JNE_X,
                                       bpf.ALU32_MOV_K, bpf.EXIT]


def test_the_listing_names_each_rule_and_the_default():
    text = bpf.listing(bpf.program(ruleset(DOCKER)))
    assert "r4 = *(u32 *)(r1 + 4)" in text
    assert "; c 136:* rwm" in text and "; b *:* m" in text and "; c 5:1 rwm" in text
    assert text.splitlines()[-2].endswith("w0 = 0                           ; default: deny")


# -- the kernel: the program on a real cgroup2 directory --------------------------------
# This host's unified tree (/sys/fs/cgroup/unified) takes BPF programs as a
# pure v2 host's does: a process in it is judged by them too.

import os  # noqa: E402
import subprocess  # noqa: E402

from mocker_runc import linux  # noqa: E402
from mocker_runc.cgroups import devicefilter, hierarchies  # noqa: E402
from tests.conftest import need_root  # noqa: E402
from tests.fixtures.wait import wait_until  # noqa: E402


@pytest.fixture
def cgroup2(unique):
    need_root()
    layout = hierarchies.detect()
    if not layout.unified:
        pytest.skip("no cgroup2 tree on this host")
    path = os.path.join(layout.unified.mountpoint, f"mocker-test-{unique}")
    os.mkdir(path)
    yield path
    if os.path.isdir(path):
        os.rmdir(path)


def probe_in(cgroup: str, tmp_path, script: str) -> str:
    """Run a shell in the cgroup (moved in before its script); its stdout and stderr."""
    # the nodes go to /dev: tmp_path may be on a nodev mount (the guest's /tmp is)
    where = f"/dev/.{os.path.basename(cgroup)}"
    done = subprocess.run(["/bin/busybox", "sh", "-c",
                           f"echo 0 > {cgroup}/cgroup.procs; mkdir {where} && cd {where} && "
                           f"{{ {script}; }}; cd /; rm -rf {where}"],
                          capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def gone(prog_id: int, timeout: float = 5.0) -> bool:
    """The kernel frees a program after its cgroup is gone, from a work queue."""
    return wait_until(lambda: not devicefilter.program_exists(prog_id), timeout)


def test_the_program_judges_the_cgroups_processes(cgroup2, tmp_path):
    prog_id = devicefilter.install(cgroup2, ruleset(DOCKER))
    assert devicefilter.attached(cgroup2) == [prog_id]
    out = probe_in(cgroup2, tmp_path, "mknod mem c 1 1 && echo made; head -c1 mem; "
                   "mknod null c 1 3; echo x > null && echo null-ok")
    assert "made" in out and "mem: Operation not permitted" in out and "null-ok" in out
    name, insns = devicefilter.dump(prog_id)
    assert name == "mocker_devices"
    assert insns == [i.replace(comment="") for i in bpf.program(ruleset(DOCKER))]


def test_install_replaces_the_program_and_rmdir_frees_it(cgroup2, tmp_path):
    first = devicefilter.install(cgroup2, ruleset(DOCKER))
    fd = os.open(cgroup2, os.O_RDONLY | os.O_DIRECTORY)
    try:   # by fd too, as a cgroup made by another driver (systemd) would be given
        second = devicefilter.install(fd, ruleset(DOCKER + [
            {"allow": True, "type": "c", "major": 1, "minor": 1, "access": "r"}]))
    finally:
        os.close(fd)
    assert devicefilter.attached(cgroup2) == [second] and gone(first)
    assert "Operation not permitted" not in probe_in(cgroup2, tmp_path, "mknod mem c 1 1; "
                                                      "(exec 3<mem) 2>&1 | grep -v 'not permitted'; "
                                                      "echo done")
    os.rmdir(cgroup2)
    assert gone(second), "the program outlived its cgroup"


def test_a_program_the_verifier_refuses_is_shown_with_its_log():
    need_root()
    no_exit = bpf.encode([bpf.Insn(bpf.ALU32_MOV_K, 0, imm=1)])   # falls off the end
    with pytest.raises(OSError, match="verifier log: .*"):
        linux.bpf_prog_load(linux.BPF_PROG_TYPE_CGROUP_DEVICE, no_exit, "GPL")
