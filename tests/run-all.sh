#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make test: every test group, then one line "N passed, N failed, N skipped".
# Groups print one line per test; passes are counted quietly, failures and
# skips are shown with their reasons.  Logs go to $KEEL_BUILD/test-logs.
set -u
cd "$(dirname "$0")/.."
export KEEL_BUILD=${KEEL_BUILD:-build}
LOGDIR=$KEEL_BUILD/test-logs
mkdir -p "$LOGDIR"
RESULTS=$LOGDIR/results.txt
: > "$RESULTS"

group() {
	local name=$1 start=$SECONDS
	shift
	printf '%-8s ' "$name"
	"$@" 2>"$LOGDIR/$name.stderr" | tee -a "$RESULTS" > "$LOGDIR/$name.results"
	local p f s
	p=$(grep -c '^PASS' "$LOGDIR/$name.results")
	f=$(grep -c '^FAIL' "$LOGDIR/$name.results")
	s=$(grep -c '^SKIP' "$LOGDIR/$name.results")
	printf '%3d passed %3d failed %3d skipped  (%ds)\n' "$p" "$f" "$s" $((SECONDS - start))
	grep -E '^(FAIL|SKIP)' "$LOGDIR/$name.results" | sed 's/^/    /'
}

# binaries GROUP PREFIX: run every $KEEL_BUILD/tests/PREFIX* program (each prints its own result lines).
binaries() {
	local t rc
	for t in "$KEEL_BUILD"/tests/"$2"*; do
		[ -x "$t" ] && [ "${t%.d}" = "$t" ] || continue
		"$t"
		rc=$?
		[ "$rc" -le 1 ] || echo "FAIL $1/$(basename "$t"): crashed with status $rc"
	done
}

group unit binaries unit test_
if [ "${KEEL_SANITIZED:-0}" = 1 ]; then
	# LeakSanitizer's exit-time scan needs ptrace and a non-thread clone, which
	# keel's seccomp filter refuses: leaks are checked in the unit tests only.
	export ASAN_OPTIONS=detect_leaks=0
fi
# Device tests: keel's machine without a CPU (keel-devtest), driven by test programs; any host.
group devtest binaries devtest devtest_
group source tests/source/run.sh
group cli tests/cli/run.sh
group block tests/block/run.sh
# The test guest and the sandbox need a usable /dev/kvm; on a host without
# one they run in the lab, as part of the linux group (lab-guest/..., lab-sandbox/...).
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	group guest tests/guests/run.sh
	group sandbox tests/sandbox/run.sh
else
	echo "guest    (no usable /dev/kvm here: in the lab, counted under linux as lab-guest)"
	echo "sandbox  (no usable /dev/kvm here: in the lab, counted under linux as lab-sandbox)"
fi
group trace tests/trace/run.sh
if [ "${KEEL_SANITIZED:-0}" = 1 ]; then
	echo "fuzz     (skipped under make asan: the fuzzers carry their own sanitizers)"
	echo "linux    (skipped under make asan: real-guest tests run the release build in make test)"
	echo "SKIP fuzz/all: make asan runs the unit and direct-guest tests only" >> "$RESULTS"
	echo "SKIP linux/all: make asan runs the unit and direct-guest tests only" >> "$RESULTS"
else
	group fuzz tests/fuzz/run.sh
	group linux tests/linux/run.sh
	# Firmware boot (tests/firmware/run.sh): four SeaBIOS boots each under keel
	# and QEMU, in a lab of their own (about 5 minutes); KEEL_FIRMWARE_TESTS=0 leaves them out.
	if [ "${KEEL_FIRMWARE_TESTS:-1}" = 1 ]; then
		group firmware tests/firmware/run.sh
	fi
fi

passed=$(grep -c '^PASS' "$RESULTS")
failed=$(grep -c '^FAIL' "$RESULTS")
skipped=$(grep -c '^SKIP' "$RESULTS")
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
