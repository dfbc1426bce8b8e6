#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VM exits with a real guest, side by side: the test guest reads COM1's line
# status register N times (keeltest=exitbench), each read a port-I/O exit
# handled by the VMM's UART model in user space, under keel with tracing
# off, keel with every vcpu:exit recorded, and QEMU -M microvm (its UART is
# in user space too).  Run on real KVM: directly by bench/trace on a
# VT-x/AMD-V host, else inside the lab.
#   bench/trace-exits-inner.sh RUNS EXITS
# Prints "RESULT exit-roundtrip <vmm> <median> <min> <max> us" lines: the
# time between the guest's two marker lines divided by EXITS (guest entry,
# exit, handling, re-entry).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${KEEL_BUILD:-build}
KEEL=$BUILD/keel DRIVE=$BUILD/tests/drive G=$BUILD/guests
runs=${1:-5} exits=${2:-20000}
cmdline="keeltest=exitbench keeltest.exits=$exits"
QEMU=(qemu-system-x86_64 -L /usr/share/qemu -M microvm -enable-kvm -cpu host -nodefaults -no-user-config
	-display none -serial stdio -m 64 -device isa-debug-exit,iobase=0xf4,iosize=4)
for i in $(seq "$runs"); do
	# Alternated, so that drifts of the machine touch all three alike.
	for vmm in keel keel-traced qemu-microvm; do
		case $vmm in
		keel) cmd=("$KEEL" run -q --kernel "$G/testguest.elf" --memory 64M --debug-exit --cmdline "$cmdline") ;;
		keel-traced) cmd=("$KEEL" run -q --kernel "$G/testguest.elf" --memory 64M --debug-exit --cmdline "$cmdline"
			--trace vcpu:exit --trace-buffer-size 4M) ;;
		*) cmd=("${QEMU[@]}" -kernel "$G/testguest.elf" -append "$cmdline") ;;
		esac
		"$DRIVE" -t 300 -m EXITBENCH-START -m EXITBENCH-DONE -- "${cmd[@]}" 2>&1 |
			awk -v n="$exits" '$2 == "mark" { t[++k] = $4 } END { if (k == 2) printf "%.3f\n", (t[2] - t[1]) * 1000 / n }' \
			>> "/tmp/exits.$vmm.$$"
	done
done
for vmm in keel keel-traced qemu-microvm; do
	sort -n "/tmp/exits.$vmm.$$" | awk -v v="$vmm" '{ a[NR] = $1 } END {
		if (NR == 0) { print "RESULT exit-roundtrip", v, "NA NA NA us"; exit }
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "RESULT exit-roundtrip %s %.3f %.3f %.3f us\n", v, m, a[1], a[NR] }'
	rm -f "/tmp/exits.$vmm.$$"
done
