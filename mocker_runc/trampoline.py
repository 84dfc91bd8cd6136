"""The last execve goes through a tiny program held in a sealed memfd (CVE-2019-5736).

Why: the container's init and exec processes are forks of mocker-runc, so their
/proc/self/exe is the host's Python interpreter. If they execve'd the user's
program themselves, an image whose program starts with `#!/proc/self/exe` would
make the kernel run that interpreter again, now with the image's own
/lib64/ld-linux-*.so as its ELF interpreter: image code holding an fd to the
host's Python, which it can reopen for writing once the runtime has exited.

So the Python process execs this trampoline instead, from a memfd sealed
against any write (memfd_create(2), F_SEAL_WRITE|SHRINK|GROW|SEAL), and only
the trampoline execs the user's program. At that moment /proc/self/exe is the
sealed memfd: a `#!/proc/self/exe` script just runs the trampoline once more
(static, no ELF interpreter), which can change nothing. (runc did the same
with a sealed copy of its whole binary, later with a small static "runc-dmz";
docs/runc.md compares.)

The trampoline, for x86-64 and aarch64, is ~40 instructions and no libc:

    argv = [REPORT_FD, PREFIX, PROGRAM, user's argv...], envp = the user's env
    fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC)     # closes at the successful execve
    execve(PROGRAM, user's argv, envp)
    # only on failure:
    write(REPORT_FD, PREFIX); write(REPORT_FD, errno as one byte); exit(127)

REPORT_FD is how `start` (exec.fifo) or `exec` (the channel) learns that the
program runs (the fd closes) or why it could not (failure_message()).
"""

import os
import struct

from mocker_common.errors import MockerError

# Marks a failure the trampoline wrote: PREFIX starts with it, and after PREFIX
# comes one byte, the errno of the failed execve.
MARK = b"\x01"

# --- machine code -------------------------------------------------------------------
# Assembled with llvm-mc (-triple=x86_64 / -triple=aarch64); each line: the bytes,
# then the instruction. At entry the stack pointer points at argc, then come
# argv[0..argc-1], NULL, envp[...], NULL (the System V ABI's process stack).

_X86_64 = """
4889e3        mov  rbx, rsp               ; rbx -> argc, for the whole program
488b7308      mov  rsi, [rbx+8]           ; argv[0]: the report fd, in decimal
31ff          xor  edi, edi
0fb606        parse: movzx eax, byte [rsi]
85c0          test eax, eax
740d          jz   parsed
83e830        sub  eax, '0'
6bff0a        imul edi, edi, 10
01c7          add  edi, eax
48ffc6        inc  rsi
ebec          jmp  parse
4189fc        parsed: mov r12d, edi       ; r12 = the fd (syscalls keep it)
b848000000    mov  eax, 72                ; fcntl(fd, F_SETFD, FD_CLOEXEC)
be02000000    mov  esi, 2
ba01000000    mov  edx, 1
0f05          syscall
488b7b18      mov  rdi, [rbx+24]          ; argv[2]: the program
488d7320      lea  rsi, [rbx+32]          ; &argv[3]: its argv
488b0b        mov  rcx, [rbx]             ; argc
488d54cb10    lea  rdx, [rbx+rcx*8+16]    ; envp = &argv[argc+1]
b83b000000    mov  eax, 59                ; execve: returns only if it failed
0f05          syscall
f7d8          neg  eax                    ; -errno -> errno
8803          mov  [rbx], al              ; kept where argc was
488b7310      mov  rsi, [rbx+16]          ; argv[1]: the message's prefix
31d2          xor  edx, edx
803c1600      len: cmp byte [rsi+rdx], 0  ; its length
7404          je   counted
ffc2          inc  edx
ebf6          jmp  len
4489e7        counted: mov edi, r12d      ; write(fd, prefix, length)
b801000000    mov  eax, 1
0f05          syscall
4489e7        mov  edi, r12d              ; write(fd, &errno, 1)
4889de        mov  rsi, rbx
ba01000000    mov  edx, 1
b801000000    mov  eax, 1
0f05          syscall
bf7f000000    mov  edi, 127               ; exit_group(127)
b8e7000000    mov  eax, 231
0f05          syscall
"""

_AARCH64 = """
f3030091      mov  x19, sp                ; x19 -> argc, for the whole program
610640f9      ldr  x1, [x19, #8]          ; argv[0]: the report fd, in decimal
14008052      mov  w20, #0
43018052      mov  w3, #10
22144038      parse: ldrb w2, [x1], #1
82000034      cbz  w2, parsed
42c00051      sub  w2, w2, #'0'
940a031b      madd w20, w20, w3, w2       ; w20 = w20 * 10 + digit
fcffff17      b    parse
e003142a      parsed: mov w0, w20         ; fcntl(fd, F_SETFD, FD_CLOEXEC)
410080d2      mov  x1, #2
220080d2      mov  x2, #1
280380d2      mov  x8, #25
010000d4      svc  #0
600e40f9      ldr  x0, [x19, #24]         ; argv[2]: the program
61820091      add  x1, x19, #32           ; &argv[3]: its argv
630240f9      ldr  x3, [x19]              ; argc
62420091      add  x2, x19, #16
420c038b      add  x2, x2, x3, lsl #3     ; envp = &argv[argc+1]
a81b80d2      mov  x8, #221               ; execve: returns only if it failed
010000d4      svc  #0
e003004b      neg  w0, w0                 ; -errno -> errno
60020039      strb w0, [x19]              ; kept where argc was
610a40f9      ldr  x1, [x19, #16]         ; argv[1]: the message's prefix
020080d2      mov  x2, #0
23686238      len: ldrb w3, [x1, x2]      ; its length
63000034      cbz  w3, counted
42040091      add  x2, x2, #1
fdffff17      b    len
e003142a      counted: mov w0, w20        ; write(fd, prefix, length)
080880d2      mov  x8, #64
010000d4      svc  #0
e003142a      mov  w0, w20                ; write(fd, &errno, 1)
e10313aa      mov  x1, x19
220080d2      mov  x2, #1
080880d2      mov  x8, #64
010000d4      svc  #0
e00f80d2      mov  x0, #127               ; exit_group(127)
c80b80d2      mov  x8, #94
010000d4      svc  #0
"""

# machine (uname -m) -> (ELF e_machine, the listing)
_MACHINES = {"x86_64": (62, _X86_64), "aarch64": (183, _AARCH64)}


class TrampolineError(MockerError):
    pass


def _code(listing: str) -> bytes:
    """The first column of a listing above, as bytes."""
    return bytes.fromhex("".join(line.split()[0] for line in listing.strip().splitlines()))


# --- the ELF file ----------------------------------------------------------------

_BASE = 0x400000          # where the file is mapped (ET_EXEC: a fixed address)
_EHDR, _PHDR = 64, 56     # sizes of the ELF64 file header and of a program header
_PT_LOAD, _PT_GNU_STACK = 1, 0x6474E551
_PF_X, _PF_W, _PF_R = 1, 2, 4


def elf(machine: str) -> bytes:
    """A static ELF64 executable: one PT_LOAD segment mapping the whole file
    read+execute (headers included), and PT_GNU_STACK asking for a
    non-executable stack. No sections, no interpreter: the kernel jumps to
    the code right after the headers (elf(5))."""
    if machine not in _MACHINES:
        raise TrampolineError(f"no exec trampoline for {machine}: mocker-runc runs "
                              f"containers on x86_64 and aarch64 only")
    e_machine, listing = _MACHINES[machine]
    code = _code(listing)
    headers = _EHDR + 2 * _PHDR
    size = headers + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)   # 64-bit, little-endian, v1, SysV
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, e_machine, 1, _BASE + headers,
                       _EHDR, 0, 0, _EHDR, _PHDR, 2, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", _PT_LOAD, _PF_R | _PF_X, 0, _BASE, _BASE, size, size,
                       0x10000)
    stack = struct.pack("<IIQQQQQQ", _PT_GNU_STACK, _PF_R | _PF_W, 0, 0, 0, 0, 0, 16)
    return ehdr + load + stack + code


# --- the sealed memfd --------------------------------------------------------------

def sealed_fd() -> int:
    """A close-on-exec memfd holding the trampoline, sealed against every change.

    Made by the runtime before it forks (no seccomp filter yet, the host's
    view): the container's processes inherit it and exec it last.
    """
    from . import linux
    try:
        return linux.sealed_memfd("mocker-runc-exec", elf(os.uname().machine))
    except OSError as err:
        raise TrampolineError(f"exec trampoline: {err.strerror or err}") from None


def argv(report_fd: int, program: str, args: list[str]) -> list[str]:
    """The trampoline's argv (see the module's doc); the prefix is the message
    process.execute gave before the trampoline existed."""
    return [str(report_fd), MARK.decode() + f'exec: "{program}": ', program, *args]


def failure_errno(data: bytes) -> int | None:
    """The errno of the failed execve, if data is what the trampoline wrote."""
    return data[-1] if data.startswith(MARK) and len(data) >= 2 else None


def failure_message(data: bytes) -> str | None:
    """The one-line error in what the trampoline wrote, or None if it was not the trampoline."""
    errno = failure_errno(data)
    if errno is None:
        return None
    return data[1:-1].decode(errors="replace") + os.strerror(errno)
