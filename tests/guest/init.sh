#!/bin/busybox sh
# Stage 1: /init of the guest's initramfs. The kernel unpacks the initramfs (a
# newc cpio archive) into its rootfs and runs this as PID 1. It builds the root
# the tests run in, then hands over to stage 2 (pid1.sh) with switch_root.
#
# The root: the host's / over 9p (virtio transport, read-only) as the lower
# layer of an overlay whose upper layer is a tmpfs, so the guest can write
# anywhere and every write vanishes at power-off. Options arrive on the kernel
# command line as guest.KEY=VALUE (see tests/guest/vm.py).
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "guest init: FAILED: $*"; poweroff -f; }

# The drivers the root needs (virtio transport, 9p, overlay, virtio console and
# block), in dependency order; the image holds them, the root's /lib/modules
# has the rest (bridge, veth, nf_tables load by themselves later).
while read -r m; do insmod "/modules/$m" || fail "insmod $m"; done < /modules/order

for arg in $(cat /proc/cmdline); do
    case $arg in
        guest.run=*) RUN=${arg#guest.run=} ;;        # the per-run dir, shared read-write
        guest.rw=*) RW=${arg#guest.rw=} ;;           # host dirs shared read-write, ':'-separated
        guest.tmpfs=*) TMPFS=${arg#guest.tmpfs=} ;;  # guest dirs that get a fresh tmpfs
        guest.keep=*) KEEP=${arg#guest.keep=} ;;    # host paths a tmpfs must not hide
        guest.init=*) INIT=${arg#guest.init=} ;;     # shell or systemd
    esac
done

# 9p2000.L: the Linux dialect of Plan 9's file protocol; msize = bytes per message.
P9=trans=virtio,version=9p2000.L,msize=512000
N=/newroot
mkdir -p /lower /upper $N
mount -t 9p -o $P9,ro,cache=loose hostroot /lower || fail "9p mount of the host's /"
mount -t tmpfs -o mode=0755 guest-upper /upper
mkdir -p /upper/data /upper/work
# overlayfs: reads fall through to the host's files, writes copy up into tmpfs.
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work guest-root $N ||
    fail "overlay root"

# /run is a fresh tmpfs, as on any boot; stage 2 and its busybox live there.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $N/run
mkdir -p $N/run/guest
cp /bin/busybox /pid1.sh $N/run/guest/

# overlayfs cannot take an overlay (the root) as its upper layer, and the tests
# mount overlays (container rootfs, podman storage): those places get a tmpfs.
# A kept path (the cwd, the interpreter) under one has its top folder bound back.
i=0
for dir in $(echo "$TMPFS" | tr ':' ' '); do
    mkdir -p $N$dir $N/run/guest/hidden$i
    mount --bind $N$dir $N/run/guest/hidden$i
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $N$dir
    for keep in $(echo "$KEEP" | tr ':' ' '); do
        case $keep/ in
            $dir/*/*) top=${keep#$dir/}; top=${top%%/*}
                      if [ ! -d $N$dir/$top ]; then
                          mkdir -p $N$dir/$top
                          mount --bind $N/run/guest/hidden$i/$top $N$dir/$top
                      fi ;;
        esac
    done
    i=$((i+1))
done

# The run dir (command, exit status) and any read-write shares, at their host paths.
mkdir -p $N$RUN && mount -t 9p -o $P9,cache=none guestrun $N$RUN || fail "9p mount of the run dir"
i=0
for dir in $(echo "$RW" | tr ':' ' '); do
    mkdir -p $N$dir && mount -t 9p -o $P9,cache=none rw$i $N$dir || fail "9p mount of $dir"
    i=$((i+1))
done

mount --move /proc $N/proc
mount --move /sys $N/sys
mount --move /dev $N/dev
exec switch_root $N /run/guest/busybox sh /run/guest/pid1.sh "$RUN" "${INIT:-shell}"
