# SPDX-License-Identifier: MIT
# Shell helpers that write disk-image structures byte by byte (sourced by
# tests/fuzz/run.sh for its seeds and tests/cli/run.sh for partition tables).

# le32 V / le64 V: V as little-endian bytes (printf escapes).
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
le64() { le32 $(($1 & 0xffffffff)); le32 $(($1 >> 32)); }
# put FILE OFFSET ESCAPES: write bytes into FILE at OFFSET.
put() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# mbr_entry FILE SECTOR_OFFSET INDEX TYPE FIRST COUNT (and the 0x55aa signature)
mbr_entry() {
	put "$1" $(($2 + 446 + 16 * $3 + 4)) "$(printf '\\x%02x' "$4")"
	put "$1" $(($2 + 446 + 16 * $3 + 8)) "$(le32 "$5")$(le32 "$6")"
	put "$1" $(($2 + 510)) '\x55\xaa'
}
# crc32_of FILE OFFSET LENGTH: the CRC32 of those bytes, in decimal (gzip's trailer holds it).
crc32_of() { dd if="$1" bs=1 skip="$2" count="$3" status=none | gzip -c | tail -c 8 | head -c 4 | od -An -tu4 | tr -d ' '; }

# gpt_header FILE LBA ALTERNATE_LBA ENTRIES_LBA: a GPT header of 512-byte
# blocks describing FILE (usable blocks 34 to N-34, 128 entries of 128
# bytes), with both CRC32s; the entry array must be in place.
gpt_header() {
	local f=$1 off=$(($2 * 512)) n=$(($(stat -c %s "$1") / 512))
	put "$f" "$off" "EFI PART$(le32 0x10000)$(le32 92)$(le32 0)$(le32 0)$(le64 "$2")$(le64 "$3")$(le64 34)$(le64 $((n - 34)))"
	put "$f" $((off + 56)) '\x4b\x45\x45\x4c\x4b\x45\x45\x4c\x4b\x45\x45\x4c\x4b\x45\x45\x4c'
	put "$f" $((off + 72)) "$(le64 "$4")$(le32 128)$(le32 128)$(le32 "$(crc32_of "$f" $(($4 * 512)) 16384)")"
	put "$f" $((off + 16)) "$(le32 "$(crc32_of "$f" "$off" 92)")"
}

# gpt_disk FILE SIZE_KIB FIRST LAST: a GPT disk (512-byte blocks) with one
# partition, blocks FIRST-LAST, and both the primary and the backup table.
gpt_disk() {
	local f=$1 n=$(($2 * 2)) e
	rm -f "$f"
	truncate -s "${2}K" "$f"
	mbr_entry "$f" 0 0 0xee 1 $((n - 1))
	for e in 2 $((n - 33)); do
		put "$f" $((e * 512)) '\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf\xaf'
		put "$f" $((e * 512 + 16)) '\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01'
		put "$f" $((e * 512 + 32)) "$(le64 "$3")$(le64 "$4")"
	done
	gpt_header "$f" 1 $((n - 1)) 2
	gpt_header "$f" $((n - 1)) 1 $((n - 33))
}
