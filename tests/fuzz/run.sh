#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every libFuzzer target for FUZZ_SECONDS each (default 3: a smoke run
# in make test; make fuzz uses 60).  Corpora persist in build-fuzz/corpus.
# A target that finds a crash fails, naming the reproducer file.
GROUP=fuzz
. "$(dirname "$0")/../lib.sh"
FUZZ=build-fuzz/fuzz
SECONDS_EACH=${FUZZ_SECONDS:-3}

if ! command -v clang >/dev/null || [ ! -x "$FUZZ/fuzz_exits" ]; then
	skip all "clang or its fuzzer runtime (libclang-rt-dev) is missing: fuzzers not built"
	exit 0
fi
for bin in "$FUZZ"/fuzz_*; do
	[ -x "$bin" ] && [ "${bin%.d}" = "$bin" ] || continue
	name=$(basename "$bin")
	corpus=build-fuzz/corpus/$name
	mkdir -p "$corpus" "$LOGS/crashes"
	if [ "$name" = fuzz_boot ]; then
		cp -n "$GUESTS"/*.bzImage "$GUESTS"/*.elf "$corpus/" 2>/dev/null
	fi
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=4096 -close_fd_mask=1 \
		-artifact_prefix="$LOGS/crashes/$name-" "$corpus" >"$LOGS/$name.log" 2>&1
	rc=$?
	runs=$(grep -o 'Done [0-9]* runs' "$LOGS/$name.log" | grep -o '[0-9]*')
	if [ $rc -eq 0 ]; then
		echo "PASS $GROUP/$name (${runs:-?} runs)"
	else
		crash=$(ls -t "$LOGS/crashes/$name-"* 2>/dev/null | head -1)
		fail "$name" "status $rc after ${runs:-?} runs; reproducer ${crash:-none}; log $LOGS/$name.log"
	fi
done
