#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The guest `make run` boots (tests/linux/default-init.sh), as a user meets
# it: its banner promises that `reboot` restarts it and `poweroff` ends it.
# Typed at its shell: reboot, the guest comes back (a fresh boot on the same
# KVM VM), poweroff, keel exits 0.  Needs hardware virtualization (directly
# or in the lab); DEFAULT_INITRD names the initramfs make run builds.
GROUP=linux
. "$(dirname "$0")/../lib.sh"
: "${VMLINUZ:?}" "${DEFAULT_INITRD:?}"

log=$LOGS/default-guest.log
run_vm "$log" -t 150 -x 'ends the VM' -x '# ' -s 'reboot\n' -x 'guest rebooted; restarting' -x 'ends the VM' -x '# ' \
	-s 'poweroff\n' -- "$KEEL" run --kernel "$VMLINUZ" --initrd "$DEFAULT_INITRD" --memory 256M \
	--cmdline "console=ttyS0 quiet" >/dev/null
[ $rc -eq 0 ] || expect "exit status $rc, expected 0 (power-off from the shell)"
[ "$(grep -c 'keel guest: Linux' "$log")" -eq 2 ] || expect "the banner came $(grep -c 'keel guest: Linux' "$log") times, expected 2 (reboot)"
grep -q 'reboot: Power down' "$log" || expect "the kernel did not power down"
verdict default-guest-reboot-poweroff "$log"
