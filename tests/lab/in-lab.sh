#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What make test runs inside the lab: real Linux guests, and the test-guest
# and sandbox groups again, this time under real (nested) KVM.
#
#   tests/lab/in-lab.sh PART...
#
# Parts: linux-up (the uniprocessor Linux tests), linux-smp (the 2-vCPU
# one), default-guest (make run's guest: poweroff and reboot from its
# shell), guest, sandbox, and, for hosts without a usable /dev/kvm, the
# parts of other groups that need a guest: cli-vm, trace-vm; and, in a lab
# with QEMU and the boot media (tests/firmware/run.sh), firmware-qemu and
# firmware-keel (tests/firmware/boot.sh).  After each complete part it prints
# "LAB-PART-DONE PART", so that tests/linux/run.sh can start a fresh lab for
# the parts a dying lab did not finish, keeping the results of those it did.
# A keel process that outlives its test (SIGKILL could not end it: stuck in
# the lab's emulated SVM) means the lab's kernel is broken: the part is not
# counted and the lab run ends.
cd "$(dirname "$0")/../.."

# Processes running build/keel (by executable: --name renames them).
leftover_keel() {
	local p exe
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		[ "${exe##*/}" = keel ] && printf '%s ' "${p#/proc/}"
	done
}

for part in "$@"; do
	case $part in
	linux-up) LINUX_SET=up bash tests/linux/tests.sh ;;
	linux-smp) LINUX_SET=smp KEEL_LAB_FAULT_SKIP=1 bash tests/linux/tests.sh ;;
	guest) GROUP_PREFIX=lab- bash tests/guests/run.sh ;;
	sandbox) GROUP_PREFIX=lab- bash tests/sandbox/run.sh ;;
	cli-vm) CLI_PART=vm GROUP_PREFIX=lab- bash tests/cli/run.sh ;;
	trace-vm) TRACE_PART=vm GROUP_PREFIX=lab- bash tests/trace/run.sh ;;
	default-guest) DEFAULT_INITRD=$KEEL_BUILD/run/default.cpio.gz bash tests/linux/default-guest.sh ;;
	firmware-qemu) FIRMWARE_VMM=qemu bash tests/firmware/boot.sh ;;
	firmware-keel) FIRMWARE_VMM=keel bash tests/firmware/boot.sh ;;
	*) echo "in-lab: unknown part $part"; exit 2 ;;
	esac
	sleep 1 # a process SIGKILLed just now may still be on its way out
	stuck=$(leftover_keel)
	if [ -n "$stuck" ]; then
		echo "LAB-BROKEN in $part: keel process $stuck outlived its test (stuck in the lab's kernel)"
		exit 125
	fi
	echo "LAB-PART-DONE $part"
done
