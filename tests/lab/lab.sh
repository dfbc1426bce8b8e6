#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The lab: a virtual hardware-virtualization host for machines whose
# /dev/kvm emulates guest kernel code.  QEMU in software mode emulates an
# AMD CPU with SVM (model EPYC; LAB_CPU and LAB_CPUS override); Debian's
# stock kernel boots in it and loads kvm-amd; keel then runs real guests
# under real KVM inside.  The emulated SVM is not perfect with 2-vCPU
# guests: boots hang or triple-fault now and then, under keel and under
# QEMU's PC machine (keel 2 in 8, QEMU 4 in 8 in one run of
# tests/lab/smp-ab.sh); with single-threaded TCG
# (LAB_TCG_THREADS=single) most 2-vCPU boots deadlock, under QEMU too; and
# the lab's own kernel sometimes dies under them (cpu-reset.log then holds
# its last state).  See docs/known-issues.md.
#
#   tests/lab/lab.sh [--qemu] [--interactive] [--timeout SECONDS] -- COMMAND...
#
# COMMAND runs inside the lab in a copy of the build and the test scripts
# (working directory /work), with VMLINUZ and GUEST_INITRD set.  Its output
# comes back on the lab's console; lab.sh exits with its status.  --qemu
# also puts QEMU in the lab (for side-by-side benchmarks); --interactive
# connects the lab's console to this terminal (make run).  LAB_EXTRA: more
# files (paths under the repository, e.g. build/bench/x.cpio.gz) for the
# same place in the lab; LAB_MODULES: more of the kernel's modules (paths
# under its modules directory) for /mod, which COMMAND inserts itself;
# LAB_BINS: more of this machine's programs, with their libraries (perf).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${KEEL_BUILD:-build}
with_qemu=0
interactive=0
timeout=1500
while [ $# -gt 0 ]; do
	case $1 in
	--qemu) with_qemu=1 ;;
	--interactive) interactive=1 ;;
	--timeout) timeout=$2; shift ;;
	--) shift; break ;;
	*) echo "lab: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ $# -gt 0 ] || { echo "usage: tests/lab/lab.sh [--qemu] [--timeout S] -- COMMAND..." >&2; exit 2; }

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "lab: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2
	exit 125
fi
eval "$(scripts/assets.sh)" || { echo "lab: guest assets unavailable" >&2; exit 125; }

LAB=$BUILD/lab
mkdir -p "$LAB"
GUEST_INITRD=$LAB/guest.cpio.gz
MODULES=$MODULES BUSYBOX=$BUSYBOX scripts/guest-initramfs.sh "$GUEST_INITRD"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root" # it becomes the lab's /, which unprivileged tests must traverse
mkdir -p "$root"/{bin,mod,dev,proc,sys,tmp,work/assets}

# copy_bin PATH: a dynamically linked program and every library it loads.
copy_bin() {
	local dst=$root/bin/$(basename "$1") lib
	cp -L "$1" "$dst"
	for lib in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -Ln "$lib" "$root$lib" 2>/dev/null || true
	done
}

cp "$BUSYBOX" "$root/bin/busybox"
for m in virt/lib/irqbypass.ko drivers/crypto/ccp/ccp.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko fs/fuse/fuse.ko \
	${LAB_MODULES:-}; do
	cp "$MODULES/$m" "$root/mod/"
done
copy_bin "$(command -v bash)"
for p in setpriv script e2fsck debugfs fusermount3 mke2fs ${LAB_BINS:-}; do
	command -v $p >/dev/null && copy_bin "$(command -v $p)"
done
copy_bin "$BUILD/keel"
mkdir -p "$root/work/$BUILD/tests"
cp -a "$BUILD/keel" "$root/work/$BUILD/"
cp -a "$BUILD/tests/drive" "$root/work/$BUILD/tests/"
cp -a "$BUILD/guests" "$root/work/$BUILD/"
[ -d "$BUILD/run" ] && cp -a "$BUILD/run" "$root/work/$BUILD/"
cp -a tests scripts bench "$root/work/" 2>/dev/null
for f in ${LAB_EXTRA:-}; do
	mkdir -p "$root/work/$(dirname "$f")" && cp -L "$f" "$root/work/$f" || { echo "lab: cannot copy $f" >&2; exit 125; }
done
cp "$VMLINUZ" "$root/work/assets/vmlinuz"
cp "$GUEST_INITRD" "$root/work/assets/guest.cpio.gz"
# SeaBIOS where Debian keeps it, for firmware boot (keel's --firmware bios; QEMU's -bios).
if [ -f /usr/share/seabios/bios-256k.bin ]; then
	mkdir -p "$root/usr/share/seabios" && cp -L /usr/share/seabios/bios-256k.bin "$root/usr/share/seabios/"
fi
if [ $with_qemu = 1 ]; then
	copy_bin "$(command -v qemu-system-x86_64)"
	mkdir -p "$root/usr/share/qemu"
	# microvm's firmware and option ROMs, and SeaBIOS and the vapic ROM for -M pc
	for f in /usr/share/qemu/{bios-microvm.bin,qboot.rom,linuxboot_dma.bin,pvh.bin,kvmvapic.bin} \
		/usr/share/seabios/bios-256k.bin; do
		cp -L "$f" "$root/usr/share/qemu/" 2>/dev/null
	done
	ln -s usr/share "$root/share" # QEMU looks for its firmware relative to its binary: /bin/../share/qemu
fi
printf '%q ' "$@" > "$root/lab-command"
heartbeat='(while sleep 15; do echo LAB-ALIVE; done) & # for the stall check below'
[ $interactive = 0 ] || heartbeat=
cat > "$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /usr/bin && ln -sf /bin/busybox /usr/bin/env
export PATH=/bin HOME=/tmp KEEL_BUILD=$BUILD VMLINUZ=/work/assets/vmlinuz GUEST_INITRD=/work/assets/guest.cpio.gz
export KEEL_IN_LAB=1 KEEL_SHOW_LOGS=1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=1777 tmp /tmp
mkdir -p /dev/pts
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
ln -sf /dev/pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
for m in irqbypass ccp kvm; do insmod /mod/\$m.ko || echo "lab: insmod \$m failed"; done
insmod /mod/kvm-amd.ko ${KVM_AMD_PARAMS:-} || echo "lab: insmod kvm-amd failed"
insmod /mod/fuse.ko || echo "lab: insmod fuse failed" # keel tracefs
echo "LAB-UP after \$(cut -d' ' -f1 /proc/uptime) s, svm: \$(grep -cw svm /proc/cpuinfo) cpus"
$heartbeat
cd /work
bash -c "\$(cat /lab-command)"
echo "LAB-STATUS \$?"
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$LAB/lab.cpio.gz"

qemu=(qemu-system-x86_64 -accel "tcg,thread=${LAB_TCG_THREADS:-multi}" -cpu "${LAB_CPU:-EPYC}" -M pc -m 3072 -smp "${LAB_CPUS:-2}" -nodefaults -no-user-config
	-display none -serial stdio -no-reboot -kernel "$VMLINUZ" -initrd "$LAB/lab.cpio.gz"
	-monitor "unix:$LAB/monitor.sock,server,nowait" # for looking into a stalled lab
	-d cpu_reset -D "$LAB/cpu-reset.log") # the lab CPUs' state at every reset, for a lab that dies
if [ $interactive = 1 ]; then
	# The guest's console on this terminal; QEMU's own warnings (its CPU model's features TCG lacks) in a log.
	exec "${qemu[@]}" -append "console=ttyS0 quiet loglevel=1 panic=-1" 2>"$LAB/qemu.log"
fi
log=$LAB/console.log
rm -f "$LAB/qemu.pid" "$LAB/stalled"
: > "$log"
# A lab whose own kernel locked up never recovers (seen here: a soft lockup
# inside KVM_RUN under a guest, reported again and again; and labs that went
# silent, heartbeat and all): end it then rather than at the time limit.
(
	size=0 quiet=0 own='^(\[ *[0-9]+\.[0-9]+\] )?'
	while sleep 5; do
		# Only the lab kernel's own lines count (at the start of a line, after
		# its timestamp): a guest's panic quoted in a test's output does not.
		why=$(grep -E "$own"'Kernel panic - not syncing: ' "$log" 2>/dev/null | head -1 |
			grep -oE 'Kernel panic - not syncing: .{0,60}')
		# A soft lockup reported once on every CPU can be a pause of this
		# machine (the lab's clock jumps; seen here); a CPU still stuck is
		# reported again some 20 s later.
		[ -n "$why" ] || why=$(grep -E "$own"'watchdog: BUG: soft lockup' "$log" 2>/dev/null |
			grep -oE 'watchdog: BUG: soft lockup - CPU#[0-9]+ stuck for [0-9]+s' |
			awk '{ split($6, c, "#"); if (++n[c[2]] == 2) { print; exit } }')
		now=$(stat -c %s "$log" 2>/dev/null || echo 0)
		if [ "$now" = "$size" ]; then quiet=$((quiet + 5)); else quiet=0 size=$now; fi
		[ $quiet -lt 90 ] || why="no output, not even its 15-second heartbeat, for 90 s"
		[ -n "$why" ] || continue
		echo "$why" > "$LAB/stalled"
		kill "$(cat "$LAB/qemu.pid" 2>/dev/null)" 2>/dev/null
		exit 0
	done
) &
watcher=$!
timeout "$timeout" "${qemu[@]}" -pidfile "$LAB/qemu.pid" \
	-append "console=ttyS0 quiet panic=-1 nokaslr" </dev/null 2>&1 | sed -u 's/\r$//' | tee "$log" |
	grep --line-buffered -v -e '^\[ *[0-9.]*\]' -e '^LAB-ALIVE$'
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
status=$(sed -n 's/^LAB-STATUS \([0-9]*\)$/\1/p' "$log" | tail -1)
if [ -z "$status" ]; then
	if [ -f "$LAB/stalled" ]; then
		echo "lab: the lab's own kernel stalled ($(cat "$LAB/stalled")) and was ended; see $log" >&2
	elif [ "$(tail -1 "$LAB/cpu-reset.log" 2>/dev/null)" = "Triple fault" ]; then
		echo "lab: the lab's own kernel triple-faulted (QEMU's log: $LAB/cpu-reset.log); see $log" >&2
	else
		echo "lab: the lab ended without reporting a status (timeout ${timeout}s or crash); see $log" >&2
	fi
	exit 125
fi
exit "$status"
