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
	local cmdline="console=ttyS0 panic=-1 keel.cpus=$cpus keel.mem=$mem keel.date=$date"
	run_vm "$log" -t 150 -m KEEL-GUEST-UP "${steps[@]}" -- "$KEEL" run --kernel "$VMLINUZ" \
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

linux_boot linux-1cpu 1 256 -x KEEL-READY -s 'hello keel\n' -x 'KEEL-ECHO:hello keel' --
[ $rc -eq 0 ] || expect "exit status $rc, expected 0 (ACPI power-off)"
grep -q 'reboot: Power down' "$log" || expect "the guest did not power down"
verdict linux-1cpu-poweroff "$log"

linux_boot linux-2cpu 2 512 -x KEEL-READY -s 'poweroff\n' -x 'KEEL-ECHO:poweroff' --
[ $rc -eq 0 ] || expect "exit status $rc, expected 0"
grep -q 'smpboot: Total of 2 processors activated' "$log" || expect "the kernel did not bring up 2 CPUs"
verdict linux-2cpu-poweroff "$log"

linux_boot linux-reboot-exit 1 256 -x KEEL-READY -s 'reboot\n' -x 'KEEL-ECHO:reboot' -- --on-reboot=exit
[ $rc -eq 0 ] || expect "exit status $rc, expected 0"
grep -q 'guest rebooted; exiting' "$log" || expect "no reboot message"
[ "$(grep -c KEEL-GUEST-UP "$log")" -eq 1 ] || expect "booted more than once"
verdict linux-reboot-exit "$log"

linux_boot linux-reboot-restart 2 256 -x KEEL-READY -s 'reboot\n' -x 'guest rebooted; restarting' \
	-x KEEL-READY -s 'poweroff\n' -x 'KEEL-ECHO:poweroff' --
[ $rc -eq 0 ] || expect "exit status $rc, expected 0"
[ "$(grep -c KEEL-GUEST-UP "$log")" -eq 2 ] || expect "booted $(grep -c KEEL-GUEST-UP "$log") times, expected 2"
verdict linux-reboot-restart "$log"
