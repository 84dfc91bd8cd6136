# Stage 2: PID 1 in the final root (run by /run/guest/busybox sh, since the host
# root may have no shell at /bin/sh we want). Arguments: the run dir, the init.
# It makes the guest a pure cgroup v2 host, then runs RUN/cmd.sh and powers off
# ("shell"), or hands PID 1 to systemd with a unit that does the same ("systemd").
RUN=$1 INIT=$2
bb=/run/guest/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The command's stdout and stderr: two virtio-serial ports the host writes to files.
OUT=/dev/console ERR=/dev/console
for port in /sys/class/virtio-ports/*; do
    case $($bb cat "$port/name" 2>/dev/null) in
        guest.out) OUT=/dev/${port##*/} ;;
        guest.err) ERR=/dev/${port##*/} ;;
    esac
done
$bb hostname guest

if [ "$INIT" = systemd ]; then
    # systemd mounts /sys/fs/cgroup (cgroup2: the kernel has cgroup_no_v1=all),
    # devpts, mqueue and bpffs itself. Units in /run/systemd/system are runtime
    # units; guest.target pulls in only what the command needs, so the host's
    # enabled services (under /etc, shared read-only) do not start.
    units=/run/systemd/system
    $bb mkdir -p $units
    # No default dependencies (sysinit.target, basic.target and all they pull
    # in): under TCG they would double the boot. D-Bus is started at once, so
    # that the command finds the system bus as on any systemd host.
    cat > $units/guest.target <<UNIT
[Unit]
Description=Run the command of tests/guest, then power off
Requires=guest-command.service
Wants=dbus.socket dbus.service
AllowIsolate=yes
UNIT
    for unit in dbus.socket dbus.service; do
        $bb mkdir -p $units/$unit.d
        printf '[Unit]\nDefaultDependencies=no\n' > $units/$unit.d/guest.conf
    done
    cat > $units/guest-command.service <<UNIT
[Unit]
Description=The command tests/guest was asked to run
DefaultDependencies=no
After=dbus.service
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/bin/bash $RUN/cmd.sh
ExecStopPost=/bin/sh -c 'echo "\$EXIT_CODE \$EXIT_STATUS" > $RUN/rc; sync'
StandardInput=null
StandardOutput=file:$OUT
StandardError=file:$ERR
UNIT
    exec /lib/systemd/systemd --unit=guest.target
fi

# What a distribution's init mounts on a cgroup v2 host. nsdelegate: cgroup
# namespaces are delegation boundaries, as systemd mounts it.
$bb mkdir -p /dev/pts /dev/shm /dev/mqueue
$bb mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts /dev/pts
$bb ln -sf pts/ptmx /dev/ptmx
$bb mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm
$bb mount -t mqueue mqueue /dev/mqueue
$bb mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# Mounting bpffs asks for the bpf_preload module: no modprobe for that one.
$bb ln -sf busybox /run/guest/false
echo /run/guest/false > /proc/sys/kernel/modprobe
$bb mount -t bpf bpf /sys/fs/bpf
echo /sbin/modprobe > /proc/sys/kernel/modprobe
$bb mount -t securityfs securityfs /sys/kernel/security 2>/dev/null

# cgroup v2: a controller works in a child only when its parent lists it in
# cgroup.subtree_control. Enable every one at the root, as systemd does.
if [ "$($bb cat "$RUN/controllers" 2>/dev/null)" != none ]; then
    for c in $($bb cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
    done
fi

# No network device at all: loopback only (and whatever netns the tests make).
$bb ip link set lo up

/bin/bash "$RUN/cmd.sh" </dev/null >"$OUT" 2>"$ERR" &
wait $!
echo "exited $?" > "$RUN/rc"
$bb sync
$bb poweroff -f
