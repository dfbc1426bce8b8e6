#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real Linux under keel: Debian's stock kernel with a busybox initramfs,
# 1 and 2 vCPUs, serial console both ways, power-off and reboot handled per
# --on-reboot.  Needs hardware virtualization (run directly on a VT-x/AMD-V
# host, or inside the lab: tests/lab/lab.sh).  VMLINUZ and GUEST_INITRD name
# the kernel and the initramfs built from tests/linux/guest-init.sh.
GROUP=linux
. "$(dirname "$0")/../lib.sh"
: "${VMLINUZ:?}" "${GUEST_INITRD:?}"
date=$(date -u +%Y%m%d)

# linux_boot NAME CPUS MEM_MB STEPS... -- [KEEL OPTIONS]
linux_boot() {
	local name=$1 cpus=$2 mem=$3
	shift 3
	local steps=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		steps+=("$1")
		shift
	done
	shift
	log=$LOGS/$name.log
	local cmdline="console=ttyS0 panic=-1 keel.cpus=$cpus keel.mem=$mem keel.date=$date ${LINUX_EXTRA_CMDLINE:-}"
	run_vm "$log" -t "${LINUX_DRIVE_TIMEOUT:-75}" -m KEEL-GUEST-UP "${steps[@]}" -- "$KEEL" run --kernel "$VMLINUZ" \
		--initrd "$GUEST_INITRD" --cpus "$cpus" --memory "${mem}M" --cmdline "$cmdline" "$@" > "$LOGS/$name.drive"
	local bad n
	bad=$(grep 'KEEL-CHECK .* FAIL' "$log" | head -4 | tr -d '\r' | tr '\n' ';')
	[ -z "$bad" ] || expect "guest checks failed: $bad"
	n=$(grep -c 'KEEL-CHECK .* ok' "$log")
	[ "$n" -ge 9 ] || expect "only $n of 9 guest checks passed"
	local up
	up=$(awk '/^drive: mark KEEL-GUEST-UP/ { printf "%.1f", $4 / 1000 }' "$LOGS/$name.drive")
	PASS_DETAIL="init reached after ${up:-?} s${PASS_DETAIL:+; $PASS_DETAIL}"
}

# Two sets (LINUX_SET): "up" boots uniprocessor guests, "smp" a 2-vCPU guest
# that also runs the storage test over two virtio-blk queues; "all" (the
# default) runs both.  In the lab they run in separate lab runs: 2-vCPU
# guests under the lab's emulated SVM are unreliable (docs/known-issues.md).
# LINUX_TESTS=storage runs only the storage test (for working on it).
set_up() { [ "${LINUX_SET:-all}" != smp ] && [ "${LINUX_TESTS:-all}" = all ]; }
set_smp() { [ "${LINUX_SET:-all}" != up ]; }

if set_up; then
linux_boot linux-1cpu 1 256 -x KEEL-READY -s 'hello keel\n' -x 'KEEL-ECHO:hello keel' --
[ $rc -eq 0 ] || expect "exit status $rc, expected 0 (ACPI power-off)"
grep -q 'reboot: Power down' "$log" || expect "the guest did not power down"
verdict linux-1cpu-poweroff "$log"

linux_boot linux-reboot-exit 1 256 -x KEEL-READY -s 'reboot\n' -x 'KEEL-ECHO:reboot' -- --on-reboot=exit
[ $rc -eq 0 ] || expect "exit status $rc, expected 0"
grep -q 'guest rebooted; exiting' "$log" || expect "no reboot message"
[ "$(grep -c KEEL-GUEST-UP "$log")" -eq 1 ] || expect "booted more than once"
verdict linux-reboot-exit "$log"

linux_boot linux-reboot-restart 1 256 -x KEEL-READY -s 'reboot\n' -x 'guest rebooted; restarting' \
	-x KEEL-READY -s 'poweroff\n' -x 'KEEL-ECHO:poweroff' --
[ $rc -eq 0 ] || expect "exit status $rc, expected 0"
[ "$(grep -c KEEL-GUEST-UP "$log")" -eq 2 ] || expect "booted $(grep -c KEEL-GUEST-UP "$log") times, expected 2"
verdict linux-reboot-restart "$log"
fi

# virtio: three disks (writeback, writethrough, read-only), entropy and a
# virtio console; the guest partitions, formats and fills the disks, then the
# host checks the images with e2fsck and reads the files back with debugfs.
# storage_test NAME CPUS BOOTS [KEEL OPTIONS]: BOOTS is 2 to reboot once in
# between; --virtio-packed on among the options makes the guest check that
# every device runs packed rings.
storage_test() {
	local name=$1 cpus=$2 boots=$3 dir a b c cb steps packed=0
	shift 3
	[[ " $* " = *" --virtio-packed on "* ]] && packed=1
	dir=$(mktemp -d)
	a=$dir/a.img b=$dir/b.img c=$dir/c.img
	truncate -s 64M "$a" && truncate -s 32M "$b" && truncate -s 4M "$c"
	printf 'KEEL-READONLY-DISK' | dd of="$c" conv=notrunc 2>/dev/null
	cb=$(sha256sum "$c" | cut -d' ' -f1)
	# A reboot rebuilds every virtio device on the same open disks.
	steps=(-x KEEL-STORAGE-DONE -x KEEL-READY)
	[ "$boots" = 2 ] && steps+=(-s 'reboot\n' -x 'guest rebooted; restarting' -x KEEL-STORAGE-DONE -x KEEL-READY)
	LINUX_DRIVE_TIMEOUT=$((boots * 90)) LINUX_EXTRA_CMDLINE="keel.storage=1 keel.packed=$packed ${STORAGE_CMDLINE:-}" linux_boot "$name" "$cpus" 256 \
		"${steps[@]}" -s 'poweroff\n' -x 'KEEL-ECHO:poweroff' -- --disk "path=$a,serial=keel-disk-a" \
		--disk "path=$b,cache=writethrough" --disk "path=$c,readonly" --rng --virtio-console "$dir/hvc.out" "$@"
	[ $rc -eq 0 ] || expect "exit status $rc, expected 0"
	[ "$(grep -c KEEL-STORAGE-DONE "$log")" -eq "$boots" ] || expect "the storage test ran $(grep -c KEEL-STORAGE-DONE "$log") times, expected $boots"
	[ "$cpus" = 1 ] || grep -q "smpboot: Total of $cpus processors activated" "$log" || expect "the kernel did not bring up $cpus CPUs"
	grep -q 'KEEL-HVC-HELLO' "$dir/hvc.out" 2>/dev/null || expect "nothing from the guest on the virtio console"
	if ! command -v e2fsck >/dev/null || ! command -v debugfs >/dev/null; then
		expect "e2fsck/debugfs (e2fsprogs) missing on the host"
	else
		dd if="$a" of="$dir/a1.img" bs=512 skip=2048 2>/dev/null
		e2fsck -fn "$dir/a1.img" > "$LOGS/$name.e2fsck-a" 2>&1 || expect "e2fsck -fn found errors in vda1 (see $LOGS/$name.e2fsck-a)"
		e2fsck -fn "$b" > "$LOGS/$name.e2fsck-b" 2>&1 || expect "e2fsck -fn found errors in vdb (see $LOGS/$name.e2fsck-b)"
		[ "$(debugfs -R 'cat /hello.txt' "$dir/a1.img" 2>/dev/null)" = "keel storage test" ] || expect "vda1:/hello.txt not read back"
		[ "$(debugfs -R 'cat /dir/f8' "$dir/a1.img" 2>/dev/null)" = "file 8" ] || expect "vda1:/dir/f8 not read back"
		debugfs -R "dump /random.bin $dir/random.bin" "$dir/a1.img" >/dev/null 2>&1
		local want got gotb
		want=$(debugfs -R 'cat /random.sha256' "$dir/a1.img" 2>/dev/null)
		got=$(sha256sum "$dir/random.bin" 2>/dev/null | cut -d' ' -f1)
		[ -n "$want" ] && [ "$got" = "$want" ] || expect "vda1:/random.bin differs from the guest's checksum ($got vs $want)"
		debugfs -R "dump /copy.bin $dir/copy.bin" "$b" >/dev/null 2>&1
		gotb=$(sha256sum "$dir/copy.bin" 2>/dev/null | cut -d' ' -f1)
		[ "$gotb" = "$want" ] || expect "vdb:/copy.bin differs ($gotb vs $want)"
		[ "$(debugfs -R 'cat /b.txt' "$b" 2>/dev/null)" = "disk b" ] || expect "vdb:/b.txt not read back"
	fi
	[ "$(sha256sum "$c" | cut -d' ' -f1)" = "$cb" ] || expect "the read-only image changed"
	if [[ "${STORAGE_CMDLINE:-}" = *pci=nomsi* ]]; then
		# INTx: the kernel set up PCI interrupt links through keel's DSDT (_PRT, LNKx._SRS) and the
		# virtio devices took their interrupts on those IRQs, through the PIIX3 routing.
		grep -q 'Interrupt link LNK. configured for IRQ' "$log" || expect "no ACPI PCI interrupt link was configured"
		grep -q 'KEEL-INTX virtio' "$log" || expect "the guest saw no virtio interrupts on an IO-APIC line"
	fi
	lab_verdict "$name" "$log"
	rm -rf "$dir"
}
[ "${LINUX_SET:-all}" != smp ] && storage_test linux-virtio-storage 1 2
# The same over packed virtqueues (one boot).
[ "${LINUX_SET:-all}" != smp ] && storage_test linux-virtio-packed 1 1 --virtio-packed on
# The same with legacy interrupts (INTx) only: pci=nomsi.
[ "${LINUX_SET:-all}" != smp ] && STORAGE_CMDLINE=pci=nomsi storage_test linux-virtio-intx 1 1
# SMP: two vCPUs, two virtio-blk queues, the storage test once.
set_smp && [ "${LINUX_TESTS:-all}" = all ] && storage_test linux-2cpu-storage 2 1
