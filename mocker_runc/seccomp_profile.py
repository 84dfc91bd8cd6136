"""mocker's default seccomp profile, in the spirit of Docker's.

An allow-list: the syscalls ordinary programs need are allowed, everything
else fails with EPERM. What is left out can change the host or escape a
container: the kernel's global state (mount, reboot, modules, the clock,
swap, kexec), namespaces (unshare, setns), the kernel keyring (not
namespaced), BPF and perf, io_uring, and old interfaces nobody needs. A few
syscalls are allowed only with safe arguments. A capability the container is
given (e.g. CAP_SYS_ADMIN) allows the syscalls that need it.
"""

import errno
import os

# The syscalls every container may use, by what they are for.
ALLOWED = {
    "files": """
        access faccessat faccessat2 chdir fchdir getcwd chmod fchmod fchmodat fchmodat2
        chown chown32 fchown fchown32 fchownat lchown lchown32 umask
        open openat openat2 creat close close_range dup dup2 dup3 fcntl fcntl64 flock
        stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
        statfs statfs64 fstatfs fstatfs64 getdents getdents64
        link linkat symlink symlinkat readlink readlinkat unlink unlinkat
        rename renameat renameat2 mkdir mkdirat rmdir mknod mknodat
        truncate truncate64 ftruncate ftruncate64 fallocate
        utime utimes utimensat utimensat_time64 futimesat
        getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr
        listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
        fsync fdatasync sync syncfs sync_file_range sync_file_range2 arm_sync_file_range
        fadvise64 fadvise64_64 arm_fadvise64_64 readahead
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch chroot
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
        mlock mlock2 mlockall munlock munlockall membarrier memfd_create
        pkey_alloc pkey_free pkey_mprotect
    """,
    "processes and threads": """
        fork vfork execve execveat exit exit_group wait4 waitid waitpid
        getpid getppid gettid getpgid getpgrp setpgid getsid setsid
        set_tid_address set_robust_list get_robust_list futex futex_time64 futex_waitv rseq
        arch_prctl set_thread_area get_thread_area set_tls prctl capget capset
        getpriority setpriority ioprio_get ioprio_set getcpu
        sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr
        sched_getparam sched_setparam sched_getscheduler sched_setscheduler
        sched_get_priority_max sched_get_priority_min sched_rr_get_interval
        sched_rr_get_interval_time64
        getrlimit ugetrlimit setrlimit prlimit64 getrusage times sysinfo uname
        ptrace process_vm_readv process_vm_writev pidfd_open pidfd_send_signal
        landlock_create_ruleset landlock_add_rule landlock_restrict_self
        breakpoint cacheflush
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
        sigaction sigprocmask sigpending sigreturn sigsuspend signal sigaltstack
        pause alarm restart_syscall
    """,
    "time (reading clocks, sleeping, timers)": """
        time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64
        nanosleep clock_nanosleep clock_nanosleep_time64 getitimer setitimer
        timer_create timer_delete timer_gettime timer_gettime64 timer_settime timer_settime64
        timer_getoverrun timerfd_create timerfd_gettime timerfd_gettime64
        timerfd_settime timerfd_settime64
    """,
    "network (in the container's own network namespace)": """
        socketpair socketcall bind connect listen accept accept4 shutdown
        getsockname getpeername getsockopt setsockopt
        send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64
    """,
    "inter-process communication (in the container's own IPC namespace)": """
        ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl
        shmget shmat shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedsend_time64
        mq_timedreceive mq_timedreceive_time64 mq_notify mq_getsetattr
    """,
    "names (the container's own UTS namespace) and randomness": """
        sethostname setdomainname getrandom
    """,
}

# Syscalls a capability makes safe to allow (what the kernel checks them against).
BY_CAPABILITY = {
    "CAP_SYS_ADMIN": """mount umount umount2 unshare setns pivot_root fanotify_init
                        name_to_handle_at quotactl lookup_dcookie fsopen fsconfig fsmount
                        fspick move_mount open_tree mount_setattr clone3""",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_MODULE": "init_module finit_module delete_module",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64 adjtimex clock_adjtime clock_adjtime64",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise",
    "CAP_SYS_NICE": "get_mempolicy set_mempolicy mbind move_pages migrate_pages",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYSLOG": "syslog",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# clone(2) flags that make new namespaces: without CAP_SYS_ADMIN a container may
# clone, but not into new namespaces (the same rule as for unshare).
_CLONE_NEW_NAMESPACES = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000
                         | 0x10000000 | 0x20000000 | 0x40000000)
# personality(2) values programs ask for: Linux, 32-bit Linux, uname26, both; and query.
_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_AF_VSOCK = 40  # talks to the host or hypervisor, outside every network namespace

# The architectures a native process may use (x86_64 can run 32-bit and x32 code).
_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "armv7l": ["SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}


def build(capabilities: list[str]) -> dict:
    """The profile as a runtime-spec linux.seccomp object."""
    allowed = [name for group in ALLOWED.values() for name in group.split()]
    for cap in capabilities:
        allowed += BY_CAPABILITY.get(cap, "").split()
    rules = [{"names": sorted(set(allowed)), "action": "SCMP_ACT_ALLOW"}]
    if "CAP_SYS_ADMIN" not in capabilities:
        rules += [
            # s390 passes clone's flags second; everywhere else first
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [_masked_zero(1 if os.uname().machine.startswith("s390") else 0,
                                   _CLONE_NEW_NAMESPACES)]},
            # clone3 passes its flags in memory, where seccomp cannot look: say
            # "not implemented", and libc falls back to clone, checked above.
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        ]
    else:
        rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW"})
    rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": _AF_VSOCK, "op": "SCMP_CMP_NE"}]})
    rules += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]}
              for value in _PERSONALITIES]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "architectures": _ARCHITECTURES.get(os.uname().machine, []),
        "syscalls": rules,
    }


def _masked_zero(index: int, mask: int) -> dict:
    """A condition: argument `index` has none of the bits of mask set."""
    return {"index": index, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
