"""A normalized device rule set -> a BPF_PROG_TYPE_CGROUP_DEVICE program (pure).

On cgroup v2 the kernel asks the eBPF programs attached to a process's
cgroup (and its ancestors) before a device node is opened or made: the
program gets a struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h) and
returns 1 to allow, 0 to refuse (the caller sees EPERM).

    struct bpf_cgroup_dev_ctx {
        __u32 access_type;   /* (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_* */
        __u32 major;
        __u32 minor;
    };

The program has the shape of runc's and crun's: load the four fields into
r2..r5, then one block per exception that jumps to the next block on any
mismatch and returns the exception's verdict if all match, then the default.

    program(ruleset) -> [Insn]    encode(insns) -> bytes for bpf(2)
    listing(insns)   -> text, for `mocker-runc devices` and docs/runc.md
"""

from mocker_common.record import FrozenRecord

from .devices import ANY, Rule, RuleSet

# include/uapi/linux/bpf.h
BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE = 1, 2, 4
BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR = 1, 2
ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
DEVICE_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}

# include/uapi/linux/bpf_common.h and bpf.h: opcode = operation | source | class
LDX_MEM_W = 0x61     # BPF_LDX | BPF_MEM | BPF_W:   dst = *(u32 *)(src + off)
ALU32_AND_K = 0x54   # BPF_ALU | BPF_AND | BPF_K:   w(dst) &= imm
ALU32_RSH_K = 0x74   # BPF_ALU | BPF_RSH | BPF_K:   w(dst) >>= imm
ALU32_MOV_K = 0xB4   # BPF_ALU | BPF_MOV | BPF_K:   w(dst) = imm
ALU32_MOV_X = 0xBC   # BPF_ALU | BPF_MOV | BPF_X:   w(dst) = w(src)
JNE_K = 0x55         # BPF_JMP | BPF_JNE | BPF_K:   if dst != imm: pc += off
JNE_X = 0x5D         # BPF_JMP | BPF_JNE | BPF_X:   if dst != src: pc += off
EXIT = 0x95          # BPF_JMP | BPF_EXIT:          return r0

LICENSE = "GPL"
NAME = "mocker_devices"  # bpf_prog_info.name: at most 15 characters


class Insn(FrozenRecord):
    """struct bpf_insn: 8 bytes; the comment is ours, for the listing."""
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    comment: str = ""


def _prologue() -> list[Insn]:
    return [
        Insn(LDX_MEM_W, 2, 1, 0, comment="r2 = device type (low 16 bits of access_type)"),
        Insn(ALU32_AND_K, 2, imm=0xFFFF),
        Insn(LDX_MEM_W, 3, 1, 0, comment="r3 = access asked (high 16 bits)"),
        Insn(ALU32_RSH_K, 3, imm=16),
        Insn(LDX_MEM_W, 4, 1, 4, comment="r4 = major"),
        Insn(LDX_MEM_W, 5, 1, 8, comment="r5 = minor"),
    ]


def _block(rule: Rule) -> list[Insn]:
    """Tests that skip to the next block on a mismatch, then return rule.allow."""
    access = sum(ACCESS_BITS[bit] for bit in rule.access)
    tests = [Insn(JNE_K, 2, imm=DEVICE_TYPES[rule.type], comment=str(rule))]
    if access != 7:   # rwm grants every request: no test
        tests += [Insn(ALU32_MOV_X, 1, 3),                  # r1 = asked & granted
                  Insn(ALU32_AND_K, 1, imm=access),
                  Insn(JNE_X, 1, 3)]                         # anything asked not granted?
    if rule.major != ANY:
        tests.append(Insn(JNE_K, 4, imm=rule.major))
    if rule.minor != ANY:
        tests.append(Insn(JNE_K, 5, imm=rule.minor))
    verdict = [Insn(ALU32_MOV_K, 0, imm=int(rule.allow)), Insn(EXIT)]
    # every jump lands on the first instruction after this block
    end = len(tests) + len(verdict)
    return [t.replace(off=end - i - 1) if t.code in (JNE_K, JNE_X) else t
            for i, t in enumerate(tests)] + verdict


def program(ruleset: RuleSet) -> list[Insn]:
    insns = _prologue()
    for rule in ruleset.exceptions:
        insns += _block(rule)
    verdict = "allow" if ruleset.default_allow else "deny"
    insns += [Insn(ALU32_MOV_K, 0, imm=int(ruleset.default_allow), comment=f"default: {verdict}"),
              Insn(EXIT)]
    return insns


def encode(insns: list[Insn]) -> bytes:
    """struct bpf_insn in host (little-endian) order: code, dst:4 | src:4 << 4, off, imm."""
    out = bytearray()
    for insn in insns:
        out += bytes((insn.code, insn.dst | insn.src << 4))
        out += insn.off.to_bytes(2, "little", signed=True)
        out += insn.imm.to_bytes(4, "little", signed=True)
    return bytes(out)


def decode(data: bytes) -> list[Insn]:
    """The inverse of encode (for a program read back from the kernel)."""
    insns = []
    for at in range(0, len(data) - len(data) % 8, 8):
        chunk = data[at:at + 8]
        insns.append(Insn(chunk[0], chunk[1] & 0xF, chunk[1] >> 4,
                          int.from_bytes(chunk[2:4], "little", signed=True),
                          int.from_bytes(chunk[4:8], "little", signed=True)))
    return insns


_FORMATS = {
    LDX_MEM_W: "r{dst} = *(u32 *)(r{src} + {off})",
    ALU32_AND_K: "w{dst} &= {imm:#x}",
    ALU32_RSH_K: "w{dst} >>= {imm}",
    ALU32_MOV_K: "w{dst} = {imm}",
    ALU32_MOV_X: "w{dst} = w{src}",
    JNE_K: "if r{dst} != {imm} goto {target}",
    JNE_X: "if r{dst} != r{src} goto {target}",
    EXIT: "exit",
}


def listing(insns: list[Insn]) -> str:
    """One line per instruction in the kernel verifier's notation, with our comments."""
    lines = []
    for pc, insn in enumerate(insns):
        form = _FORMATS.get(insn.code, "code {code:#04x} dst r{dst} src r{src} off {off} imm {imm}")
        text = form.format(target=pc + insn.off + 1, **insn.as_dict())
        lines.append(f"{pc:3}: {text:<32}" + (f" ; {insn.comment}" if insn.comment else "").rstrip())
    return "\n".join(line.rstrip() for line in lines)
