"""Linux security modules: process.apparmorProfile, process.selinuxLabel, linux.mountLabel.

runtime-spec config.md#linux-process and config-linux.md#mount-label. A label
or profile is never dropped in silence: where the host runs the module, it is
applied as runc applies it; where it does not, the config is refused before
anything is made (a profile asked for and not applied would run the program
with less confinement than the config says).

  apparmorProfile  "exec PROFILE" written to /proc/self/attr/apparmor/exec
                   (older kernels: /proc/self/attr/exec): the next execve
                   enters the profile (apparmor(7), aa_change_onexec)
  selinuxLabel     the context written to /proc/self/attr/exec: the next
                   execve runs in it (setexeccon(3))
  mountLabel       context="LABEL" among the data of the filesystems the
                   runtime mounts (tmpfs, devpts, ...): their files get it
"""

import os

from .spec import Process, Spec, SpecError

_LSM_LIST = "/sys/kernel/security/lsm"   # securityfs: the active modules, comma-separated


def enabled(module: str) -> bool:
    """Is this LSM active? From securityfs, else from the module's own traces."""
    try:
        with open(_LSM_LIST) as f:
            return module in f.read().strip().split(",")
    except OSError:
        pass   # securityfs not mounted: ask the module itself
    if module == "apparmor":
        try:
            with open("/sys/module/apparmor/parameters/enabled") as f:
                return f.read().startswith("Y")
        except OSError:
            return False
    if module == "selinux":
        return os.path.exists("/sys/fs/selinux/enforce")
    return False


def check_process(proc: Process) -> None:
    """Refuse a profile or label this host cannot apply."""
    if proc.apparmor_profile and not enabled("apparmor"):
        raise SpecError(f"apparmorProfile {proc.apparmor_profile!r} is set, but AppArmor "
                        f"is not enabled on this host")
    if proc.selinux_label and not enabled("selinux"):
        raise SpecError("selinuxLabel is set, but SELinux is not enabled on this host")


def check(spec: Spec) -> None:
    check_process(spec.process)
    if spec.mount_label and not enabled("selinux"):
        raise SpecError("linux.mountLabel is set, but SELinux is not enabled on this host")


def _write_attr(paths: list[str], value: str, what: str) -> None:
    for path in paths:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue   # an older kernel's layout: try the next
        except OSError as err:
            raise SpecError(f"{what}: open {path}: {err.strerror}") from None
        try:
            os.write(fd, value.encode())
            return
        except OSError as err:
            # AppArmor answers ENOENT for a profile the kernel has not loaded
            raise SpecError(f"{what}: write {path}: {err.strerror}") from None
        finally:
            os.close(fd)
    raise SpecError(f"{what}: none of {', '.join(paths)} exists")


def apply_on_exec(proc: Process) -> None:
    """Ask for the profile and label the next execve takes (call while still root)."""
    if proc.apparmor_profile:
        _write_attr(["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"],
                    f"exec {proc.apparmor_profile}",
                    f"apply apparmor profile {proc.apparmor_profile!r}")
    if proc.selinux_label:
        _write_attr(["/proc/thread-self/attr/exec", "/proc/self/attr/exec"], proc.selinux_label,
                    f"set selinux label {proc.selinux_label!r}")
