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
. "$(dirname "$0")/../disk-image.sh"

# Seeds for fuzz_part: a selector byte, then an MBR disk (logical partitions
# too) or a GPT disk (selector bit 6: the harness fixes the CRC32s).
seed_part() {
	local img=$1.tmp
	rm -f "$img"; truncate -s 20480 "$img"
	mbr_entry "$img" 0 0 0x83 8 8
	mbr_entry "$img" 0 1 0x05 16 24
	mbr_entry "$img" $((16 * 512)) 0 0x83 2 4
	mbr_entry "$img" $((16 * 512)) 1 0x05 8 8
	mbr_entry "$img" $((24 * 512)) 0 0x83 2 4
	{ printf '\x05'; cat "$img"; } > "$1/seed-mbr"
	rm -f "$img"; truncate -s 20480 "$img"
	mbr_entry "$img" 0 0 0xee 1 2047
	put "$img" 512 "EFI PART$(le32 0x10000)$(le32 92)$(le32 0)$(le32 0)$(le64 1)$(le64 2047)$(le64 34)$(le64 2013)"
	put "$img" $((512 + 72)) "$(le64 2)$(le32 128)$(le32 128)"
	put "$img" 1024 '\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf'
	put "$img" $((1024 + 32)) "$(le64 40)$(le64 99)"
	{ printf '\x41'; cat "$img"; } > "$1/seed-gpt"
	rm -f "$img"
}

# A seed for fuzz_virtqueue's packed mode (first byte 0x03: EVENT_IDX and a
# packed ring at guest 0x1000): a 3-descriptor chain, then an indirect one
# whose table (guest 0x8000) holds a readable and a writable buffer.
seed_packed() {
	local f=$1/seed-packed.tmp
	rm -f "$f"; truncate -s $((0x7020)) "$f"
	pd() { printf '%s' "$(le64 "$1")$(le32 "$2")$(le32 $(($3 | $4 << 16)))"; } # addr len id flags
	put "$f" 0 "$(pd 0x5003 16 0 0x81)$(pd 0x6000 32 0 0x83)$(pd 0x7000 8 1 0x82)$(pd 0x8000 32 2 0x84)"
	put "$f" $((0x7000)) "$(pd 0x9000 16 0 0)$(pd 0x9100 16 0 2)"
	mv "$f" "$1/seed-packed"
}

for bin in "$FUZZ"/fuzz_*; do
	[ -x "$bin" ] && [ "${bin%.d}" = "$bin" ] || continue
	name=$(basename "$bin")
	corpus=build-fuzz/corpus/$name
	mkdir -p "$corpus" "$LOGS/crashes"
	if [ "$name" = fuzz_boot ]; then
		cp -n "$GUESTS"/*.bzImage "$GUESTS"/*.elf "$corpus/" 2>/dev/null
	fi
	if [ "$name" = fuzz_virtqueue ] && [ ! -e "$corpus/seed-packed" ]; then
		seed_packed "$corpus"
	fi
	if [ "$name" = fuzz_part ] && [ ! -e "$corpus/seed-gpt" ]; then
		seed_part "$corpus"
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
