#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make test's real-guest group.  On a host with VT-x/AMD-V the Linux tests
# run directly; elsewhere (this project's development machines) they run in
# the lab, together with the test-guest and sandbox groups under real KVM.
GROUP=linux
. "$(dirname "$0")/../lib.sh"

if hw_virt && kvm_usable; then
	assets=$(scripts/assets.sh) || { fail assets "cannot fetch Debian's kernel and busybox (see above)"; exit 0; }
	eval "$assets"
	export VMLINUZ
	export GUEST_INITRD=$BUILD/linux/guest.cpio.gz
	mkdir -p "$BUILD/linux"
	MODULES=$MODULES BUSYBOX=$BUSYBOX scripts/guest-initramfs.sh "$GUEST_INITRD"
	bash tests/linux/tests.sh
	exit 0
fi

# The lab's own (emulated) kernel can stall or die too; then the whole run is
# repeated, up to two attempts, and only a complete run's results count.  The
# time limit leaves room for the per-test retries of tests/lib.sh's run_vm
# (see docs/known-issues.md) and keeps make test under 30 minutes.
note=
for attempt in 1 2; do
	log=$LOGS/lab.$attempt.log
	tests/lab/lab.sh --timeout 720 -- bash tests/lab/in-lab.sh > "$log" 2>&1
	rc=$?
	[ $rc -eq 125 ] && [ $attempt -lt 2 ] || break
	note="${note}; lab run $attempt did not finish ($(grep -E '^lab:' "$log" | head -1 | cut -c6-60))"
done
grep -E '^(PASS|FAIL|SKIP) ' "$log"
n=$(grep -cE '^(PASS|FAIL|SKIP) ' "$log")
if [ $rc -eq 125 ] || [ "$n" -lt 10 ]; then
	fail lab "the lab did not run the tests (status $rc): $(grep -E '^lab:' "$log" | head -2 | tr '\n' ' ') see $log"
else
	pass lab "$(grep -o 'LAB-UP after [0-9.]* s' "$log")$note"
fi
