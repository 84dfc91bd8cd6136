"""Docker's default seccomp profile, as mocker-bundle writes it into config.json.

The profile is Docker's (moby/profiles, seccomp/default.json), written here as
mocker's own data: the same syscalls, conditions, capability- and
architecture-gated additions, and the same result. It is part of the config
the bundle maker writes, as containerd and podman write theirs; mocker-runc
only applies whatever linux.seccomp says (runtime-spec config-linux.md,
"Seccomp").

An allow-list: what is not named fails with EPERM (and a syscall newer than
every name here with ENOSYS: the runtime adds that, see mocker_runc/seccomp_enosys.py).
Left out are what can change the host or leave the container: the kernel's
global state (modules, reboot, the clock, swap, kexec, accounting), new
namespaces and mounts, the kernel keyring (not namespaced), BPF and perf,
io_uring, userfaultfd, and old interfaces nobody needs. A capability the
container holds (Docker adds the syscalls by the bounding set) makes the
syscalls it guards safe to allow.

    linux["seccomp"] = build(capabilities)     # for this host's machine and kernel
"""

import os

# Always allowed, grouped by what they are for (Docker lists them in one block).
ALLOWED = {
    "files": """
        access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2
        chown chown32 fchown fchown32 fchownat lchown lchown32 umask
        open openat openat2 creat close close_range dup dup2 dup3 fcntl fcntl64 flock
        stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
        statfs statfs64 fstatfs fstatfs64 getdents getdents64 statmount listmount
        link linkat symlink symlinkat readlink readlinkat unlink unlinkat
        rename renameat renameat2 mkdir mkdirat rmdir mknod mknodat
        truncate truncate64 ftruncate ftruncate64 fallocate
        utime utimes utimensat utimensat_time64 futimesat
        getxattr lgetxattr fgetxattr getxattrat setxattr lsetxattr fsetxattr setxattrat
        listxattr llistxattr flistxattr listxattrat
        removexattr lremovexattr fremovexattr removexattrat
        fsync fdatasync sync syncfs sync_file_range fadvise64 fadvise64_64 readahead
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch
        fanotify_mark name_to_handle_at cachestat
    """,
    "input and output": """
        read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
        lseek _llseek sendfile sendfile64 splice tee vmsplice copy_file_range ioctl
        pipe pipe2 select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old
        epoll_pwait epoll_pwait2 eventfd eventfd2 signalfd signalfd4
        io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
    """,
    "memory": """
        brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages
        mlock mlock2 mlockall munlock munlockall membarrier memfd_create memfd_secret
        pkey_alloc pkey_free pkey_mprotect map_shadow_stack mseal
    """,
    "processes and threads": """
        fork vfork execve execveat exit exit_group wait4 waitid waitpid
        getpid getppid gettid getpgid getpgrp setpgid getsid setsid
        set_tid_address set_robust_list get_robust_list rseq
        futex futex_time64 futex_waitv futex_wake futex_wait futex_requeue
        set_thread_area get_thread_area prctl capget capset seccomp
        getpriority setpriority ioprio_get ioprio_set getcpu
        sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr
        sched_getparam sched_setparam sched_getscheduler sched_setscheduler
        sched_get_priority_max sched_get_priority_min sched_rr_get_interval
        sched_rr_get_interval_time64
        getrlimit ugetrlimit setrlimit prlimit64 getrusage times sysinfo uname
        pidfd_open pidfd_send_signal process_mrelease
        landlock_create_ruleset landlock_add_rule landlock_restrict_self
        riscv_hwprobe uretprobe
    """,
    "users and groups": """
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
        getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
        setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
        setresuid setresuid32 setresgid setresgid32 setgroups setgroups32
        setfsuid setfsuid32 setfsgid setfsgid32
    """,
    "signals": """
        kill tkill tgkill rt_sigaction rt_sigprocmask rt_sigpending rt_sigqueueinfo
        rt_tgsigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
        sigprocmask sigreturn sigaltstack pause alarm restart_syscall
    """,
    # reading clocks is harmless; adjtimex and clock_adjtime with modes=0 only read,
    # and the kernel asks for CAP_SYS_TIME for any change
    "time": """
        time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64
        nanosleep clock_nanosleep clock_nanosleep_time64 getitimer setitimer
        timer_create timer_delete timer_gettime timer_gettime64 timer_settime timer_settime64
        timer_getoverrun timerfd_create timerfd_gettime timerfd_gettime64
        timerfd_settime timerfd_settime64 adjtimex clock_adjtime clock_adjtime64
    """,
    "network (the container's own network namespace)": """
        socketpair socketcall bind connect listen accept accept4 shutdown
        getsockname getpeername getsockopt setsockopt
        send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64
    """,
    "inter-process communication (the container's own IPC namespace)": """
        ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl
        shmget shmat shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedsend_time64
        mq_timedreceive mq_timedreceive_time64 mq_notify mq_getsetattr getrandom
    """,
}

# Before Linux 4.8 a traced process could step around its seccomp filter.
PTRACE = "ptrace process_vm_readv process_vm_writev"
PTRACE_SINCE = (4, 8)

# What a CPU architecture needs of its own (keys: os.uname().machine).
BY_MACHINE = {
    "x86_64": "arch_prctl modify_ldt",
    "i686": "modify_ldt",
    "aarch64": "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    "armv7l": "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    "ppc64le": "sync_file_range2 swapcontext",
    "s390x": "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
    "riscv64": "riscv_flush_icache",
}

# The architectures a native process may use (x86_64 also runs 32-bit and x32 code).
ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
    "loongarch64": ["SCMP_ARCH_LOONGARCH64"],
    "mips64": ["SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
}

# Syscalls a capability guards: allowed when the container holds it.
BY_CAPABILITY = {
    "CAP_SYS_ADMIN": """bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick
                        lookup_dcookie lsm_get_self_attr lsm_list_modules lsm_set_self_attr
                        mount mount_setattr move_mount open_tree perf_event_open quotactl
                        quotactl_fd setdomainname sethostname setns syslog umount umount2
                        unshare""",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# personality(2) values programs ask for: Linux, 32-bit Linux (PER_LINUX32),
# uname26, both; and 0xffffffff, which only queries.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# socket(2) families refused: AF_ALG (38, the kernel's crypto API) and AF_VSOCK
# (40, which talks to the host or hypervisor, outside every network namespace).
DENIED_FAMILIES = (38, 40)

# clone(2) flags that make new namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
# NEWUSER, NEWPID, NEWNET): without CAP_SYS_ADMIN a container may clone, but not
# into new namespaces, the same rule as for unshare.
CLONE_NAMESPACE_FLAGS = 0x7E020000

ENOSYS = 38
EPERM = 1


def build(capabilities: list[str], machine: str | None = None,
          kernel: str | None = None) -> dict:
    """The profile as a runtime-spec linux.seccomp object.

    capabilities: the container's bounding set; machine and kernel default to
    this host's (os.uname()): they choose the architectures and what is allowed.
    """
    uname = os.uname()
    machine = machine or uname.machine
    caps = set(capabilities)
    allowed = [name for group in ALLOWED.values() for name in group.split()]
    allowed += BY_MACHINE.get(machine, "").split()
    if _release(kernel or uname.release) >= PTRACE_SINCE:
        allowed += PTRACE.split()
    for cap in sorted(caps):
        allowed += BY_CAPABILITY.get(cap, "").split()
    rules = [{"names": sorted(set(allowed)), "action": "SCMP_ACT_ALLOW"}]
    rules += _socket_rules() + _personality_rules()
    if "CAP_SYS_ADMIN" not in caps:
        rules += _clone_rules(machine)
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": ARCHITECTURES.get(machine, []),
        "syscalls": rules,
    }


def _socket_rules() -> list[dict]:
    """socket() for every family but the denied ones, as ranges between them.

    A rule's conditions are ANDed but libseccomp takes one per argument, so
    "not 38 and not 40" is written as three rules: <38, ==39, >40.
    """
    rules, start = [], 0
    for family in DENIED_FAMILIES:
        if start == family - 1:
            rules.append(_allow("socket", 0, "SCMP_CMP_EQ", start))
        elif start == 0:
            rules.append(_allow("socket", 0, "SCMP_CMP_LT", family))
        start = family + 1
    return rules + [_allow("socket", 0, "SCMP_CMP_GT", DENIED_FAMILIES[-1])]


def _personality_rules() -> list[dict]:
    return [_allow("personality", 0, "SCMP_CMP_EQ", value) for value in PERSONALITIES]


def _clone_rules(machine: str) -> list[dict]:
    # s390 passes clone's flags second; everywhere else first
    index = 1 if machine.startswith("s390") else 0
    clone = _allow("clone", index, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS)
    clone["args"][0]["valueTwo"] = 0
    # clone3 passes its flags in memory, where seccomp cannot look: "not
    # implemented" makes libc fall back to clone, checked above
    return [clone, {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}]


def _allow(name: str, index: int, op: str, value: int) -> dict:
    return {"names": [name], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": index, "value": value, "op": op}]}


def _release(text: str) -> tuple[int, int]:
    """ "6.1.0-13-amd64" -> (6, 1)"""
    parts = text.split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)
