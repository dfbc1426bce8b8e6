#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One side-by-side boot measurement of keel and QEMU -M microvm on this
# machine's /dev/kvm (run directly by bench/boot, or inside the lab).
#   bench/boot-inner.sh firstinsn RUNS   exec -> guest's first instruction, and -> exit
#   bench/boot-inner.sh linux RUNS       exec -> Linux init marker, exit, RSS without guest RAM
# Prints "RESULT <what> <vmm> <median> <min> <max> <unit>" lines.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${KEEL_BUILD:-build}
KEEL=$BUILD/keel DRIVE=$BUILD/tests/drive G=$BUILD/guests
what=$1 runs=${2:-5}
QEMU=(qemu-system-x86_64 -L /usr/share/qemu -M microvm -enable-kvm -cpu host -nodefaults -no-user-config
	-display none -serial stdio)

stats() { # WHAT VMM UNIT < numbers
	sort -n | awk -v w="$1" -v v="$2" -v u="$3" '{ a[NR] = $1 } END {
		if (NR == 0) { print "RESULT", w, v, "NA NA NA", u; exit }
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "RESULT %s %s %.2f %.2f %.2f %s\n", w, v, m, a[1], a[NR], u }'
}

# exit_ms LOG: the command's exit time in ms, if it exited with STATUS.
exit_ms() { awk -v s="$2" '$1 == "drive:" && $2 == "exit" && $3 == s { print $4 }' "$1"; }

case $what in
firstinsn)
	# The guest's first instructions write "^" to COM1 and then exit: the byte's
	# arrival times exec -> first instruction; the exit adds the VM's teardown.
	for vmm in keel-bzImage keel-pvh qemu-microvm-pvh; do
		for i in $(seq "$runs"); do
			case $vmm in
			keel-bzImage) cmd=("$KEEL" run -q --kernel "$G/firstinsn.bzImage" --memory 256M --debug-exit) ;;
			keel-pvh) cmd=("$KEEL" run -q --kernel "$G/firstinsn.elf" --memory 256M --debug-exit) ;;
			*) cmd=("${QEMU[@]}" -m 256 -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$G/firstinsn.elf") ;;
			esac
			"$DRIVE" -t 120 -m '^' -- "${cmd[@]}" > /tmp/b.$i.$$ 2>&1
		done
		for i in $(seq "$runs"); do awk '$2 == "mark" { print $4 }' /tmp/b.$i.$$; done | stats first-instruction $vmm ms
		for i in $(seq "$runs"); do exit_ms /tmp/b.$i.$$ 33; done | stats first-instruction-to-exit $vmm ms
		rm -f /tmp/b.*.$$
	done
	;;
linux)
	: "${VMLINUZ:?}" "${GUEST_INITRD:?}"
	mem=256
	cmdline="console=ttyS0 keel.cpus=1 keel.mem=$mem"
	steps=(-g $((mem << 20)) -m KEEL-GUEST-UP -r KEEL-READY -s 'poweroff\n')
	for vmm in keel qemu-microvm; do
		for i in $(seq "$runs"); do
			if [ $vmm = keel ]; then
				"$DRIVE" -t 300 "${steps[@]}" -- "$KEEL" run -q --kernel "$VMLINUZ" --initrd "$GUEST_INITRD" \
					--memory ${mem}M --cmdline "$cmdline" > /tmp/b.$i.$vmm 2>&1
			else
				"$DRIVE" -t 300 "${steps[@]}" -- "${QEMU[@]}" -m $mem -kernel "$VMLINUZ" -initrd "$GUEST_INITRD" \
					-append "$cmdline" > /tmp/b.$i.$vmm 2>&1
			fi
		done
		for i in $(seq "$runs"); do awk '$2 == "mark" { print $4 }' /tmp/b.$i.$vmm; done | stats linux-init-marker $vmm ms
		for i in $(seq "$runs"); do exit_ms /tmp/b.$i.$vmm 0; done | stats linux-exit $vmm ms
		for i in $(seq "$runs"); do awk '$2 == "rss" { print $3 / 1024 }' /tmp/b.$i.$vmm; done | stats rss-without-guest-ram $vmm MiB
	done
	;;
*)
	echo "usage: bench/boot-inner.sh firstinsn|linux [RUNS]" >&2
	exit 2
	;;
esac
rm -f /tmp/b.$$
