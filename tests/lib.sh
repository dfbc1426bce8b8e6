# SPDX-License-Identifier: MIT
# Shared helpers for the shell test groups.  Each test prints exactly one
# line: "PASS group/name", "FAIL group/name: why" or "SKIP group/name: why".
# Sourced with GROUP set; KEEL_BUILD names the build directory.

GROUP=${GROUP_PREFIX:-}$GROUP
BUILD=${KEEL_BUILD:-build}
KEEL=${KEEL:-$BUILD/keel}
DRIVE=${DRIVE:-$BUILD/tests/drive}
GUESTS=$BUILD/guests
LOGS=$BUILD/test-logs/$GROUP
mkdir -p "$LOGS"

pass() { echo "PASS $GROUP/$1${2:+ ($2)}"; }
fail() { echo "FAIL $GROUP/$1: $2"; }
skip() { echo "SKIP $GROUP/$1: $2"; }

# check NAME COND-MESSAGE...: pass when every "expect" recorded no problem.
problems=()
expect() { problems+=("$1"); }
# verdict NAME [LOG]: one result line; with KEEL_SHOW_LOGS=1 a failure shows the log's tail.
verdict() {
	local name=$1 logfile=${2:-}
	if [ ${#problems[@]} -eq 0 ]; then
		pass "$name" "${PASS_DETAIL:-}"
	else
		fail "$name" "$(IFS=';'; echo "${problems[*]}")"
		if [ "${KEEL_SHOW_LOGS:-0}" = 1 ] && [ -n "$logfile" ] && [ -f "$logfile" ]; then
			tail -n 30 "$logfile" | sed 's/^/  | /'
		fi
	fi
	problems=()
	PASS_DETAIL=
}

# FNV-1a (32-bit) of a file, as the test guest computes it.
fnv1a() {
	local h=2166136261 b
	for b in $(od -An -v -tu1 "$1"); do
		h=$(( ((h ^ b) * 16777619) & 0xffffffff ))
	done
	printf '0x%08x\n' "$h"
}

# run_vm LOG DRIVE-ARGS...: run "$DRIVE" -l LOG DRIVE-ARGS..., setting rc to its status.
# In the lab (KEEL_IN_LAB=1), nested SVM emulated by QEMU/TCG now and then
# hangs or triple-faults a guest, under QEMU as the nested VMM as under keel
# (tests/lab/lab.sh).  There, and only there, a run that ends in a drive
# timeout or a guest crash is run again, up to four attempts, and the PASS
# line says so (PASS_DETAIL).  Tests that expect a crash must not use this.
# (2-vCPU boots fail there under keel as under QEMU's PC machine; whether
# keel has a fault of its own is open: docs/known-issues.md.)
run_vm() {
	local log=$1 attempt why limit=0 a prev=
	shift
	for a in "$@"; do
		[ "$prev" = -t ] && limit=$a
		prev=$a
	done
	LAB_FAULT=
	for attempt in 1 2 3 4; do
		"$DRIVE" -l "$log" "$@" > "$log.drive"
		rc=$?
		[ "${KEEL_IN_LAB:-0}" = 1 ] || break
		why=$(grep -ohE 'triple fault|KVM internal error|instruction emulation failed' "$log" | head -1)
		[ $rc -eq 124 ] && why=${why:-hang (drive timeout)}
		[ -n "$why" ] || break
		LAB_FAULT="${LAB_FAULT:+$LAB_FAULT, }$why"
		# What the guest said last before the fault, for the lab's log.
		{ grep -m1 -B20 -E 'triple fault|KVM internal error|instruction emulation failed' "$log" || tail -n 20 "$log"; } |
			tr -d '\r' | sed "s/^/lab fault, attempt $attempt: /" >&2
		# No attempt that could not finish before the lab's deadline (KEEL_LAB_DEADLINE, uptime seconds).
		[ $attempt -lt 4 ] || break
		[ -z "${KEEL_LAB_DEADLINE:-}" ] || [ $(( $(cut -d. -f1 /proc/uptime) + limit + 30 )) -lt "$KEEL_LAB_DEADLINE" ] || break
		cp "$log" "$log.attempt$attempt"
		PASS_DETAIL="${PASS_DETAIL:+$PASS_DETAIL; }retried: attempt $attempt hit a lab fault ($why)"
	done
	# LAB_FAULT names the faults only when the last attempt, too, ended in one.
	[ -n "$why" ] || LAB_FAULT=
	cat "$log.drive"
	return $rc
}

# lab_verdict NAME [LOG]: verdict, except in the lab's SMP run (KEEL_LAB_FAULT_SKIP=1):
# a test whose every attempt ended in a lab fault is reported skipped, naming the faults.
lab_verdict() {
	if [ "${KEEL_IN_LAB:-0}" = 1 ] && [ "${KEEL_LAB_FAULT_SKIP:-0}" = 1 ] && [ -n "${LAB_FAULT:-}" ]; then
		skip "$1" "every attempt ended in a fault of the lab's emulated SVM ($LAB_FAULT); 2-vCPU guests fault there under QEMU too (docs/known-issues.md)"
		problems=()
		PASS_DETAIL=
		return
	fi
	verdict "$@"
}

# True if this host's /dev/kvm is backed by VT-x/AMD-V.
hw_virt() { grep -qwE 'vmx|svm' /proc/cpuinfo; }
kvm_usable() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
