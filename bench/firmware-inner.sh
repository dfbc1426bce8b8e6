#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One side-by-side firmware-boot measurement (bench/firmware runs it here or
# in the lab): keel and QEMU -M pc boot MEDIA_ISO from virtio-blk through
# SeaBIOS, RUNS times each, alternating.  Prints
# "RESULT <what> <vmm> <median> <min> <max> <unit>" lines.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${KEEL_BUILD:-build}
KEEL=$BUILD/keel DRIVE=$BUILD/tests/drive
runs=${1:-5}
: "${MEDIA_ISO:?}"
SEABIOS=/usr/share/seabios/bios-256k.bin
mem=256
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '\xf8\x03' > "$tmp/sercon" # etc/sercon-port = 0x3f8: what keel gives SeaBIOS without a display
cp "$MEDIA_ISO" "$tmp/a.iso"      # private copies: neither VMM shares a file with the other
cp "$MEDIA_ISO" "$tmp/b.iso"

stats() { # WHAT VMM UNIT < numbers
	sort -n | awk -v w="$1" -v v="$2" -v u="$3" '{ a[NR] = $1 } END {
		if (NR == 0) { print "RESULT", w, v, "NA NA NA", u; exit }
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "RESULT %s %s %.2f %.2f %.2f %s\n", w, v, m, a[1], a[NR], u }'
}

# At KEEL-READY: RSS without guest RAM, and (keel) how much of it is its block cache's memfd.
cache_rss='awk '\''/^[0-9a-f]+-/ { c = / \/memfd:keel-block-cache/ } /^Rss:/ && c { s += $2 } END { print "cache-rss", s + 0 }'\'' /proc/$DRIVE_PID/smaps'
steps=(-g $((mem << 20)) -m 'SeaBIOS (version' -m 'GNU GRUB' -m KEEL-GUEST-UP -r KEEL-READY -e "$cache_rss" -s 'poweroff\n')
for i in $(seq "$runs"); do
	for vmm in keel qemu-pc; do
		if [ $vmm = keel ]; then
			cmd=("$KEEL" run -q --firmware bios --firmware-log /dev/stdout --memory ${mem}M
				--disk "path=$tmp/a.iso,readonly")
		else
			cmd=(qemu-system-x86_64 -M pc -enable-kvm -cpu host -nodefaults -no-user-config -display none
				-m $mem -bios "$SEABIOS" -chardev stdio,id=c -serial chardev:c
				-chardev file,id=d,path=/dev/stdout -device isa-debugcon,iobase=0x402,chardev=d
				-fw_cfg "name=etc/sercon-port,file=$tmp/sercon"
				-drive "file=$tmp/b.iso,format=raw,if=virtio,readonly=on")
		fi
		"$DRIVE" -t 600 "${steps[@]}" -- "${cmd[@]}" > "$tmp/$vmm.$i" 2>&1 ||
			echo "firmware-inner: $vmm run $i: $(tail -2 "$tmp/$vmm.$i" | tr '\n' ' ')" >&2
	done
done
mark() { awk -v t="$2" '$1 == "drive:" && $2 == "mark" { $1 = $2 = ""; sub(/^ +/, ""); n = split($0, f, " "); ms = f[n]; sub(" " ms "$", ""); if ($0 == t) print ms }' "$1"; }
for vmm in keel qemu-pc; do
	for i in $(seq "$runs"); do mark "$tmp/$vmm.$i" 'SeaBIOS (version'; done | stats firmware $vmm ms
	for i in $(seq "$runs"); do mark "$tmp/$vmm.$i" 'GNU GRUB'; done | stats bootloader $vmm ms
	for i in $(seq "$runs"); do mark "$tmp/$vmm.$i" KEEL-GUEST-UP; done | stats init $vmm ms
	for i in $(seq "$runs"); do awk '$1 == "drive:" && $2 == "exit" && $3 == 0 { print $4 }' "$tmp/$vmm.$i"; done | stats exit $vmm ms
	for i in $(seq "$runs"); do awk '$1 == "drive:" && $2 == "rss" { print $3 / 1024 }' "$tmp/$vmm.$i"; done |
		stats rss-without-guest-ram $vmm MiB
	for i in $(seq "$runs"); do
		awk '$1 == "drive:" && $2 == "rss" { r = $3 } $1 == "cache-rss" { c = $2 } END { if (r != "") print (r - c) / 1024 }' "$tmp/$vmm.$i"
	done | stats rss-without-guest-ram-or-block-cache $vmm MiB
done
