#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The firmware-boot group: scripts/media.sh's ISO and disk booted through
# SeaBIOS from AHCI and virtio-blk (tests/firmware/boot.sh), under QEMU (the
# reference, which checks the media and the harness) and under keel
# (FIRMWARE_KEEL=0 skips keel's half).  On a host with VT-x/AMD-V the boots
# run directly; elsewhere in one lab with QEMU and the media in it (a lab
# that dies is followed by one more for the parts it did not finish).
#
#   tests/firmware/run.sh                     as make test runs it
#   FIRMWARE_KEEL=0 tests/firmware/run.sh     QEMU's half only (checks the media and the harness)
#   KEEL_BUILD=DIR ...                        another build directory (a path under the repository)
GROUP=firmware
. "$(dirname "$0")/../lib.sh"

media=$(scripts/media.sh 2> "$LOGS/media.log") || {
	fail media "scripts/media.sh could not build the boot media: $(tail -1 "$LOGS/media.log")"
	exit 0
}
eval "$media"

if hw_virt && kvm_usable; then
	export MEDIA_ISO MEDIA_DISK MEDIA_DISK_PART_OFFSET
	FIRMWARE_VMM=qemu bash tests/firmware/boot.sh
	FIRMWARE_VMM=keel bash tests/firmware/boot.sh
	exit 0
fi

# In the lab: the media travel as files under the build directory (lab.sh
# copies LAB_EXTRA to the same paths in the lab; links are followed).
mkdir -p "$BUILD/media"
ln -sfn "$MEDIA_ISO" "$BUILD/media/boot.iso"
ln -sfn "$MEDIA_DISK" "$BUILD/media/disk.img"
results=$LOGS/lab-results.txt
: > "$results"
left="firmware-qemu firmware-keel" notes=
for attempt in 1 2; do
	log=$LOGS/lab.$attempt.log
	LAB_EXTRA="$BUILD/media/boot.iso $BUILD/media/disk.img" tests/lab/lab.sh --qemu --timeout 600 -- \
		env KEEL_LAB_DEADLINE=570 FIRMWARE_KEEL="${FIRMWARE_KEEL:-1}" MEDIA_ISO="$BUILD/media/boot.iso" \
		MEDIA_DISK="$BUILD/media/disk.img" MEDIA_DISK_PART_OFFSET="$MEDIA_DISK_PART_OFFSET" \
		bash tests/lab/in-lab.sh $left > "$log" 2>&1
	# Result lines count only up to their part's LAB-PART-DONE line.
	awk '/^LAB-PART-DONE / { printf "%s", buf; buf = ""; next }
	     /^(PASS|FAIL|SKIP) / { buf = buf $0 "\n" }' "$log" >> "$results"
	for p in $(sed -n 's/^LAB-PART-DONE //p' "$log"); do
		left=$(echo " $left " | sed "s/ $p / /; s/^ *//; s/ *$//")
	done
	[ -n "$left" ] || break
	notes="$notes; lab $attempt ended in part ${left%% *} ($(grep -hE '^(lab:|LAB-BROKEN)' "$log" | head -1 | cut -c1-110); $log)"
done
cat "$results"
[ -z "$left" ] || fail lab "the lab could not run part(s) $left${notes}"
