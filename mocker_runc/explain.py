"""`mocker-runc --explain run --bundle DIR ID`: the runtime as a shell script.

The script reads the bundle's config.json with jq when it runs, as
mocker-runc reads it, and does each step with a standard tool: cgroup files
with echo, namespaces with unshare/nsenter, mounts with mount, the root with
capsh --chroot, capabilities with capsh --drop. What a shell cannot do is
said where it would happen.
"""

from mocker_common.explain import fill

TOOLS = ["jq", "unshare", "nsenter", "mount", "capsh", "hostname", "ip"]

PART = r"""
# ==== mocker-runc: the bundle's config.json -> a running container ====
# runtime-spec runtime.md "Lifecycle" (create, start, delete); mocker_runc/container.py
ID=@ID@
BUNDLE=${BUNDLE:-@BUNDLE@}
CONFIG=$BUNDLE/config.json
cfg() { jq -r "$@" "$CONFIG"; }
R=$(cfg .root.path); case $R in /*) ;; *) R=$BUNDLE/$R ;; esac

# -- cgroups: config-linux.md "Control groups"; mocker_runc/cgroups/ --
cg_path=$(cfg '.linux.cgroupsPath // empty')
case $cg_path in /*) ;; *) cg_path=/mocker/$ID ;; esac
memory=$(cfg '.linux.resources.memory.limit // empty')
pids=$(cfg '.linux.resources.pids.limit // empty')
quota=$(cfg '.linux.resources.cpu.quota // empty')
period=$(cfg '.linux.resources.cpu.period // 100000')
CG_PROCS=""
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    # cgroup v2: one tree; a controller is usable in a group once every parent
    # lists it in cgroup.subtree_control. mocker_runc/cgroups/v2.py
    CG=/sys/fs/cgroup$cg_path
    parent=/sys/fs/cgroup
    for part in $(echo "${cg_path%/*}" | tr / ' '); do
        for c in memory pids cpu; do echo "+$c" >"$parent/cgroup.subtree_control" 2>/dev/null || true; done
        parent=$parent/$part
        mkdir -p "$parent"
    done
    for c in memory pids cpu; do echo "+$c" >"$parent/cgroup.subtree_control" 2>/dev/null || true; done
    mkdir "$CG"
    on_exit "rmdir '$CG'"
    on_exit "[ -f '$CG/cgroup.kill' ] && echo 1 >'$CG/cgroup.kill'; sleep 0.1"
    [ -z "$memory" ] || { echo "$memory" >"$CG/memory.max"; echo 0 >"$CG/memory.swap.max" 2>/dev/null || true; }
    [ -z "$pids" ] || echo "$pids" >"$CG/pids.max"
    [ -z "$quota" ] || echo "$quota $period" >"$CG/cpu.max"
    # Device rules on v2 are an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) that
    # mocker_runc/cgroups/devices_bpf.py builds and attaches; a shell cannot load
    # one. So that this script gives no more than mocker-runc would, its
    # container gets no CAP_MKNOD: it can open only the nodes made below.
    DROP_MKNOD=1
    CG_PROCS=$CG/cgroup.procs
else
    # cgroup v1: one tree per controller. mocker_runc/cgroups/v1.py
    DROP_MKNOD=""
    for c in memory pids cpu devices freezer; do
        [ -d "/sys/fs/cgroup/$c" ] || continue
        mkdir -p "/sys/fs/cgroup/$c$cg_path"
        on_exit "rmdir '/sys/fs/cgroup/$c$cg_path'"
        CG_PROCS="$CG_PROCS /sys/fs/cgroup/$c$cg_path/cgroup.procs"
    done
    on_exit "for pid in \$(cat /sys/fs/cgroup/pids$cg_path/cgroup.procs 2>/dev/null); do kill -9 \$pid; done; sleep 0.1"
    [ -z "$memory" ] || echo "$memory" >"/sys/fs/cgroup/memory$cg_path/memory.limit_in_bytes"
    [ -z "$pids" ] || echo "$pids" >"/sys/fs/cgroup/pids$cg_path/pids.max"
    [ -z "$quota" ] || { echo "$period" >"/sys/fs/cgroup/cpu$cg_path/cpu.cfs_period_us"
                         echo "$quota" >"/sys/fs/cgroup/cpu$cg_path/cpu.cfs_quota_us"; }
    # The devices controller: deny all, then the config's rules in order.
    devices=/sys/fs/cgroup/devices$cg_path
    echo a >"$devices/devices.deny"
    cfg '.linux.resources.devices[]? |
         "\(if .allow then "allow" else "deny" end) \(.type // "a") \(.major // "*"):\(.minor // "*") \(.access // "rwm")"' |
    while read -r verdict type numbers access; do
        echo "$type $numbers $access" >"$devices/devices.$verdict"
    done
fi

# -- namespaces: config-linux.md "Namespaces"; mocker_runc/linux.py --
# A namespace with a path is joined (nsenter), one without is made (unshare).
ENTER="" NEW=""
for ns in $(cfg '.linux.namespaces[] | "\(.type)=\(.path // "")"'); do
    type=${ns%%=*} path=${ns#*=}
    case $type in network) type=net ;; mount|uts|ipc|pid|cgroup|user) ;; *) continue ;; esac
    if [ -n "$path" ]; then ENTER="$ENTER --$type=$path"; else NEW="$NEW --$type"; fi
done

# -- inside the new namespaces: mounts, devices, hostname, then the program --
cat >"$WORK/init.sh" <<'INIT'
set -eu
cfg() { jq -r "$@" "$CONFIG"; }
# A destination is a path in the image, which may hold symlinks pointing out
# of it. mocker-runc resolves it inside the rootfs (openat2 RESOLVE_IN_ROOT,
# mocker_common/inroot.py); a shell cannot, so this script refuses symlinks.
inside() {
    path=$R
    for part in $(echo "$1" | tr / ' '); do
        path=$path/$part
        [ ! -L "$path" ] || { echo "explain: $1 crosses a symlink in the image; refused" >&2; exit 1; }
    done
    echo "$path"
}
# A network namespace of its own starts with lo down; runc brings it up.
[ -z "$NEW_NET" ] || ip link set dev lo up
# config.md "Mounts": in order, none of them seen by the host (a private tree).
mount --make-rprivate /
mount --bind "$R" "$R"    # the root must be a mount point of its own
cfg '.mounts[] | [.destination, .type // "bind", .source // "none", ((.options // []) | join(","))] | @tsv' |
while IFS="$(printf '\t')" read -r dst type src opts; do
    target=$(inside "$dst")
    case $type in
    bind)
        if [ -d "$src" ]; then mkdir -p "$target"; else mkdir -p "${target%/*}"; : >>"$target"; fi
        case ,$opts, in *,rbind,*) mount --rbind "$src" "$target" ;; *) mount --bind "$src" "$target" ;; esac
        case ,$opts, in *,ro,*) mount -o remount,bind,ro "$target" ;; esac ;;
    cgroup)
        mkdir -p "$target"
        if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
            mount -t cgroup2 -o "$opts" cgroup "$target"
        fi ;;  # on a v1 host runc mounts a tmpfs of per-controller binds; left out here
    *)
        mkdir -p "$target"
        mount -t "$type" -o "$opts" "$src" "$target" ;;
    esac
done
# config-linux.md "Default Devices", then the config's devices; mocker_runc/rootfs.py
for dev in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<EOF
$dev
EOF
    mknod -m 666 "$R/dev/$name" c "$major" "$minor"
done
cfg '.linux.devices[]? | [.path, .type, .major, .minor, (.fileMode // 438), (.uid // 0), (.gid // 0)] | @tsv' |
while IFS="$(printf '\t')" read -r path type major minor mode uid gid; do
    rm -f "$R$path"
    mknod -m "$(printf %o "$mode")" "$R$path" "$type" "$major" "$minor"
    chown "$uid:$gid" "$R$path"
done
ln -s /proc/self/fd "$R/dev/fd"; ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
[ -e "$R/dev/pts/ptmx" ] && ln -s pts/ptmx "$R/dev/ptmx"
# config-linux.md "Masked Paths" and "Readonly Paths"
for path in $(cfg '.linux.maskedPaths[]?'); do
    if [ -d "$R$path" ]; then mount -t tmpfs -o ro tmpfs "$R$path"
    elif [ -e "$R$path" ]; then mount --bind /dev/null "$R$path"; fi
done
for path in $(cfg '.linux.readonlyPaths[]?'); do
    [ -e "$R$path" ] || continue
    mount --bind "$R$path" "$R$path" && mount -o remount,bind,ro "$R$path"
done
# config-linux.md "Sysctl", config.md "Hostname", "POSIX process rlimits"
cfg '.linux.sysctl // {} | to_entries[] | "\(.key) \(.value)"' | while read -r key value; do
    echo "$value" >"$R/proc/sys/$(echo "$key" | tr . /)"
done
hostname "$(cfg '.hostname // empty')"
limit=$(cfg '.process.rlimits[]? | select(.type == "RLIMIT_NOFILE") | .hard')
[ -z "$limit" ] || ulimit -n "$limit"
[ "$(cfg '.root.readonly // false')" = false ] || mount -o remount,bind,ro "$R"
# Not done by a shell: the seccomp filter (mocker_runc/seccomp.py loads this
# many rules), AppArmor/SELinux labels (mocker_runc/lsm.py), the console socket
# (mocker_runc/terminal.py), and the hooks (mocker_runc/hooks.py).
if [ "$(cfg '.linux.seccomp // empty | length')" != "" ]; then
    echo "explain: no seccomp filter here (mocker-runc's would name $(cfg '[.linux.seccomp.syscalls[]?.names[]] | length') system calls)" >&2
fi

# config.md "Process" and config-linux.md "pivot_root"/capabilities; mocker_runc/init.py.
# mocker-runc does pivot_root(2), then drops capabilities, in one process. A
# shell cannot: after pivot_root only the image's programs are left. capsh does
# the last steps in one process: chroot into the rootfs, drop from the bounding
# set every capability the config does not name (root's capabilities become the
# bounding set at exec), set the user, and exec the program.
keep=$(cfg '.process.capabilities.bounding // [] | map(ascii_downcase) | join(" ")')
[ -z "$DROP_MKNOD" ] || keep=$(echo " $keep " | sed 's/ cap_mknod / /')
drop=""
for cap in $(capsh --print | sed -n 's/^Bounding set =//p' | tr , ' '); do
    case " $keep " in *" $cap "*) ;; *) drop=$drop${drop:+,}$cap ;; esac
done
set -- --chroot="$R" ${drop:+--drop=$drop}
uid=$(cfg .process.user.uid) gid=$(cfg .process.user.gid)
groups=$(cfg '.process.user.additionalGids // [] | map(tostring) | join(",")')
set -- "$@" --gid="$gid" --groups="$groups" --uid="$uid"   # no groups: setgroups([]), as runc
[ "$(cfg '.process.noNewPrivileges // false')" = false ] || set -- "$@" --no-new-privs
# The program, found on the container's PATH as runc finds it; env from the config.
envs=$(cfg '.process.env | map(@sh) | join(" ")')
args=$(cfg '.process.args | map(@sh) | join(" ")')
cwd=$(cfg .process.cwd)
program=$(cfg '.process.args[0]')
case $program in
*/*) ;;
*)  search=$(cfg '.process.env[] | select(startswith("PATH=")) | sub("^PATH="; "")')
    for dir in $(echo "${search:-/usr/bin:/bin}" | tr : ' '); do
        if [ -e "$R$dir/$program" ] || [ -L "$R$dir/$program" ]; then program=$dir/$program; break; fi
    done ;;
esac
if [ "$cwd" = / ]; then
    eval "exec env -i $envs capsh \"\$@\" --shell=\"\$program\" -- $(cfg '.process.args[1:] | map(@sh) | join(" ")')"
fi
# capsh starts the program in /; for another directory the image's sh does the cd.
eval "exec env -i $envs capsh \"\$@\" --shell=/bin/sh -- -c 'cd \"\$0\" && exec \"\$@\"' \"\$cwd\" $args"
INIT

# Start: join the cgroups, enter or make the namespaces (the new pid namespace
# needs a fork: its first process is the container's init), run init.sh there.
status=0
case " $NEW " in *" --net "*) NEW_NET=1 ;; *) NEW_NET="" ;; esac
R=$R CONFIG=$CONFIG DROP_MKNOD=$DROP_MKNOD NEW_NET=$NEW_NET \
    sh -c 'for procs in '"$CG_PROCS"'; do echo $$ >"$procs"; done; exec "$@"' start \
    ${ENTER:+nsenter $ENTER} unshare $NEW --fork --kill-child sh "$WORK/init.sh" || status=$?
exit "$status"
"""


def part(container_id: str, bundle: str) -> str:
    return fill(PART, ID=container_id, BUNDLE=bundle)
