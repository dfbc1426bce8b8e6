#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make test's real-guest group.  On a host with VT-x/AMD-V the Linux tests
# run directly; elsewhere (a host with an instruction-emulating /dev/kvm, or
# none) they run in the lab, together with the test-guest and sandbox groups
# under real KVM and, where this host has no usable /dev/kvm at all, the
# parts of the cli and trace groups that need a guest.
GROUP=linux
. "$(dirname "$0")/../lib.sh"

assets=$(scripts/assets.sh) || { fail assets "cannot fetch Debian's kernel and busybox (see above)"; exit 0; }
eval "$assets"
# make run's guest, for its own test (tests/linux/default-guest.sh); the lab takes $BUILD/run along.
mkdir -p "$BUILD/run"
scripts/mkinitramfs.sh "$BUILD/run/default.cpio.gz" "$BUSYBOX" tests/linux/default-init.sh

if hw_virt && kvm_usable; then
	export VMLINUZ
	export GUEST_INITRD=$BUILD/linux/guest.cpio.gz
	mkdir -p "$BUILD/linux"
	MODULES=$MODULES BUSYBOX=$BUSYBOX scripts/guest-initramfs.sh "$GUEST_INITRD"
	bash tests/linux/tests.sh
	DEFAULT_INITRD=$BUILD/run/default.cpio.gz bash tests/linux/default-guest.sh
	exit 0
fi

# In the lab: first the uniprocessor Linux tests with the test-guest and
# sandbox groups, then the 2-vCPU Linux test in a lab of its own, so that a
# fault of the lab's emulated SVM under a 2-vCPU guest (docs/known-issues.md)
# costs only that test.  The lab's own (emulated) kernel sometimes dies or
# stalls, at any point and under any guest (lab.sh then ends it early): a
# fresh lab takes over the parts (tests/lab/in-lab.sh) the dead one did not
# finish; a finished part's results are kept.  The time limits leave room
# for tests/lib.sh's run_vm retries and keep make test under 30 minutes.
start=$SECONDS

# lab_parts END ATTEMPTS PART...: run the parts in labs until all are done,
# ATTEMPTS labs were started, or the group's clock passes END seconds (no lab
# starts with less than two minutes left; none runs longer than ten).
# Appends the finished parts' result lines to $results; sets $left (the
# parts not finished) and $notes (why labs ended early).
lab_parts() {
	local end=$1 attempts=$2 attempt=0 t log p
	shift 2
	left="$*" notes=
	while [ -n "$left" ] && [ $attempt -lt "$attempts" ]; do
		t=$((end - (SECONDS - start)))
		[ $t -ge 120 ] || { notes="$notes; no time left for another lab"; break; }
		[ $t -le 600 ] || t=600
		attempt=$((attempt + 1))
		log=$LOGS/lab-${1}.$attempt.log
		tests/lab/lab.sh --timeout "$t" -- env KEEL_LAB_DEADLINE=$((t - 30)) bash tests/lab/in-lab.sh $left > "$log" 2>&1
		# Result lines count only up to their part's LAB-PART-DONE line.
		awk '/^LAB-PART-DONE / { printf "%s", buf; buf = ""; next }
		     /^(PASS|FAIL|SKIP) / { buf = buf $0 "\n" }' "$log" >> "$results"
		for p in $(sed -n 's/^LAB-PART-DONE //p' "$log"); do
			left=$(echo " $left " | sed "s/ $p / /; s/^ *//; s/ *$//")
		done
		[ -z "$left" ] || notes="$notes; lab $attempt ended in part ${left%% *} ($(grep -hE '^(lab:|LAB-BROKEN)' "$log" | head -1 | cut -c1-110); $log)"
	done
}

results=$LOGS/lab-results.txt
: > "$results"
parts="linux-up default-guest guest sandbox"
kvm_usable || parts="$parts cli-vm trace-vm" # none of them could run here
lab_parts 900 4 $parts
if [ -n "$left" ]; then
	fail lab "the lab could not run part(s) $left${notes}"
else
	pass lab "${notes:+after a dying lab: ${notes#; }}"
fi

# The SMP run: one more lab (two if the first dies), only while the group
# is under about 17 minutes.
up_results=$(cat "$results")
: > "$results"
if [ $((SECONDS - start)) -gt 1000 ]; then
	skip linux-2cpu-storage "no time left for the lab's SMP run after $((SECONDS - start)) s"
else
	lab_parts 1420 2 linux-smp
	# The lab's kernel died under the 2-vCPU guest (seen here; build/lab/cpu-reset.log has its state).
	[ -z "$left" ] || skip linux-2cpu-storage "the lab itself died under the 2-vCPU guest${notes} (docs/known-issues.md)"
fi
[ -z "$up_results" ] || echo "$up_results"
cat "$results"
