#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Firmware boot under one VMM: SeaBIOS (the bios-256k.bin keel uses) boots
# scripts/media.sh's media from AHCI and virtio-blk, GRUB on the serial
# console loads Debian's kernel, and the guest is driven over COM1.  The
# same tests for QEMU (the reference: it checks the media and this script)
# and for keel, so that keel is judged by what QEMU does with the same files.
#
#   FIRMWARE_VMM=qemu|keel bash tests/firmware/boot.sh
#
# MEDIA_ISO, MEDIA_DISK and MEDIA_DISK_PART_OFFSET as scripts/media.sh prints
# them (tests/firmware/run.sh sets them, here or in the lab).  Needs
# hardware virtualization (directly, or inside the lab).  Tests, VMM being
# qemu or keel:
#   VMM-iso-ahci-cd   the ISO on an AHCI CD-ROM: SeaBIOS boots it (El Torito),
#                     GRUB loads the Linux test guest, which reaches its
#                     init (KEEL-GUEST-UP) and powers off when told
#   VMM-iso-virtio    the same ISO as a read-only virtio-blk disk (its hybrid MBR),
#                     with an option ROM (genroms/) the firmware runs
#   VMM-disk-ahci     a copy of the disk on AHCI: GRUB from the MBR, a busybox
#                     root to "login:"; root logs in, writes a file, powers
#                     off; the file is read back from the image and e2fsck -fn
#                     finds its file system clean
#   VMM-disk-virtio   the same on virtio-blk
#   VMM-boot-menu     the disk (virtio, bootindex=1) and the ISO (AHCI CD-ROM):
#                     SeaBIOS's boot menu on the serial console lists the disk
#                     first; ESC and the CD-ROM's number pick it; it boots to init
#   VMM-reboot        the ISO on AHCI: the guest reboots, the firmware runs
#                     again (a fresh machine) and boots it to init once more
# FIRMWARE_KEEL=0 reports the keel half skipped.
GROUP=firmware
. "$(dirname "$0")/../lib.sh"
: "${MEDIA_ISO:?}" "${MEDIA_DISK:?}" "${MEDIA_DISK_PART_OFFSET:?}"
VMM=${FIRMWARE_VMM:-qemu}
# keel's half: FIRMWARE_KEEL=0 skips it (reported skipped).
FIRMWARE_KEEL=${FIRMWARE_KEEL:-1}
SEABIOS=${SEABIOS:-/usr/share/seabios/bios-256k.bin}
QEMU_ACCEL=${FIRMWARE_QEMU_ACCEL:-kvm} # tcg: try the media and this script on a host without KVM
TESTS="iso-ahci-cd iso-virtio disk-ahci disk-virtio boot-menu reboot"

# skip_all|fail_all WHY: every test of this half, with one reason.
skip_all() {
	local t
	for t in $TESTS; do skip "$VMM-$t" "$1"; done
	exit 0
}
fail_all() {
	local t
	for t in $TESTS; do fail "$VMM-$t" "$1"; done
	exit 0
}
case $VMM in
qemu)
	command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is not installed here"
	[ -f "$SEABIOS" ] || skip_all "no SeaBIOS at $SEABIOS (Debian package seabios)"
	;;
keel)
	[ "$FIRMWARE_KEEL" = 1 ] || skip_all "FIRMWARE_KEEL=0: keel's half not asked for"
	[ -x "$KEEL" ] || fail_all "no keel at $KEEL"
	;;
*) echo "firmware: FIRMWARE_VMM must be qemu or keel" >&2; exit 2 ;;
esac
for f in "$MEDIA_ISO" "$MEDIA_DISK"; do
	[ -f "$f" ] || fail_all "no boot media at $f (scripts/media.sh builds them)"
done

# option_rom FILE: a 512-byte option ROM whose init prints KEEL-OPTION-ROM through INT 10h (the BIOS
# screen, which SeaBIOS's serial console copies to COM1): 55 aa, 1 block, code at 3, message, checksum.
option_rom() {
	local hex="55 aa 01 60 1e 0e 1f be 1b 00 ac 84 c0 74 09 b4 0e bb 07 00 cd 10 eb f2 1f 61 cb" b sum=0
	hex="$hex $(printf 'KEEL-OPTION-ROM\r\n' | od -An -tx1) 00"
	: > "$1"
	for b in $hex; do
		printf "\\x$b" >> "$1"
		sum=$(((sum + 0x$b) & 255))
	done
	head -c $((511 - $(stat -c %s "$1"))) /dev/zero >> "$1"
	printf "\\x$(printf %02x $(((256 - sum) & 255)))" >> "$1"
}
ROM=$LOGS/keel-option.rom
option_rom "$ROM"

# vmm_cmd HOW IMAGE FIRMWARE-LOG: the VMM's command line, in cmd: 512 MiB,
# COM1 on stdin/stdout, no display, SeaBIOS's debug output (port 0x402) in the log, and
# IMAGE as HOW: ahci-cd, ahci-disk, virtio-ro (a read-only disk) or virtio.
vmm_cmd() {
	local how=$1 img=$2 fwlog=$3
	case $VMM in
	qemu)
		# graphics=off (as -nographic): SeaBIOS gets etc/sercon-port and shows
		# its screen on COM1, as keel has it.
		cmd=(qemu-system-x86_64 -M pc,graphics=off -accel "$QEMU_ACCEL" -m 512 -nodefaults -no-user-config -display none -serial stdio
			-bios "$SEABIOS" -chardev "file,id=fwlog,path=$fwlog" -device isa-debugcon,iobase=0x402,chardev=fwlog)
		case $how in
		ahci-cd) cmd+=(-device ahci,id=a -drive "if=none,id=c,file=$img,format=raw,media=cdrom,readonly=on"
			-device ide-cd,drive=c,bus=a.0) ;;
		ahci-disk) cmd+=(-device ahci,id=a -drive "if=none,id=d,file=$img,format=raw" -device ide-hd,drive=d,bus=a.0) ;;
		virtio-ro) cmd+=(-drive "if=none,id=d,file=$img,format=raw,readonly=on" -device virtio-blk-pci,drive=d
			-option-rom "$ROM") ;;
		virtio) cmd+=(-drive "if=none,id=d,file=$img,format=raw" -device virtio-blk-pci,drive=d) ;;
		esac
		;;
	keel)
		cmd=("$KEEL" run --firmware bios --firmware-log "$fwlog" --memory 512M)
		case $how in
		ahci-cd) cmd+=(--cdrom "$img") ;;
		ahci-disk) cmd+=(--disk "path=$img,if=ahci") ;;
		virtio-ro) cmd+=(--disk "path=$img,readonly" --option-rom "$ROM") ;;
		virtio) cmd+=(--disk "path=$img") ;;
		esac
		;;
	esac
}

# timings NAME MARK...: "MARK at S s" for each drive mark reached, and the exit.
timings() {
	awk -v want="${*:2}" 'BEGIN { n = split(want, w, " ") }
		/^drive: mark / { t[$3] = sprintf("%.1f", $4 / 1000) }
		/^drive: exit / { e = sprintf("%.1f", $4 / 1000) }
		END { for (i = 1; i <= n; i++) if (w[i] in t) s = s (s ? ", " : "") w[i] " " t[w[i]] " s"; print s (e ? ", exit " e " s" : "") }' \
		"$LOGS/$1.drive"
}

# firmware_booted FIRMWARE-LOG WHAT: SeaBIOS's log names the device it booted.
firmware_booted() {
	if [ ! -s "$1" ]; then
		expect "nothing in the firmware log ($1)"
	elif ! grep -aq "Booting from $2" "$1"; then
		expect "SeaBIOS did not boot from $2: $(grep -a 'Booting from\|Boot failed' "$1" | tr -d '\r' | tr '\n' ';' | cut -c1-150)"
	fi
}

# iso_test NAME HOW BOOTED-FROM: the ISO to the test guest's init, then poweroff.
iso_test() {
	local name=$VMM-$1 fw=$LOGS/$VMM-$1.firmware.log
	log=$LOGS/$name.log
	rm -f "$fw"
	vmm_cmd "$2" "$MEDIA_ISO" "$fw"
	run_vm "$log" -t 150 -m KEEL-MEDIA-GRUB -m KEEL-GUEST-UP -x KEEL-READY -s 'poweroff\n' -x 'KEEL-ECHO:poweroff' \
		-x 'reboot: Power down' -- "${cmd[@]}" > "$LOGS/$name.drive"
	[ $rc -eq 0 ] || expect "exit status $rc, expected 0 (the guest powered off)$(grep -m1 '^drive: timeout' "$LOGS/$name.drive" | sed 's/^/; /')"
	firmware_booted "$fw" "$3"
	# The read-only virtio boot also carries an option ROM, which the firmware must have run.
	[ "$2" != virtio-ro ] || grep -aq KEEL-OPTION-ROM "$log" || expect "the option ROM did not run (no KEEL-OPTION-ROM on COM1)"
	# The test guest's own checks (ACPI tables through the table loader, e820, the host bridge, the UART, ...);
	# the ISO has no keel.date (it would make the media depend on the day), so its RTC check cannot pass.
	# Under QEMU's TCG (FIRMWARE_QEMU_ACCEL=tcg, a check of the media without KVM) there is no kvm-clock either.
	local bad ignore='KEEL-CHECK rtc-date' want=8
	[ "$VMM-$QEMU_ACCEL" = qemu-tcg ] && ignore='KEEL-CHECK (rtc-date|clocksource)' want=7
	bad=$(grep -a 'KEEL-CHECK .* FAIL' "$log" | grep -vE "$ignore" | head -3 | tr -d '\r' | tr '\n' ';')
	[ -z "$bad" ] || expect "guest checks failed: $bad"
	[ "$(grep -ac 'KEEL-CHECK .* ok' "$log")" -ge $want ] || expect "only $(grep -ac 'KEEL-CHECK .* ok' "$log") guest checks passed"
	PASS_DETAIL="$(timings "$name" KEEL-MEDIA-GRUB KEEL-GUEST-UP); GRUB $(grep -ao 'root=[a-z0-9,]*' "$log" | head -1)"
	lab_verdict "$name" "$log"
}

# disk_test NAME HOW LINUX-DISK: a fresh copy of the disk to login:, then as
# root a file written and poweroff; the host checks the image.
disk_test() {
	local name=$VMM-$1 fw=$LOGS/$VMM-$1.firmware.log dir img want got
	log=$LOGS/$name.log
	rm -f "$fw"
	dir=$(mktemp -d)
	img=$dir/disk.img
	cp "$MEDIA_DISK" "$img"
	vmm_cmd "$2" "$img" "$fw"
	# The shell expands $((6*7)): the expected line is not the echo of the typed command.
	want="keel-media-test 42 $name"
	run_vm "$log" -t 180 -m KEEL-MEDIA-GRUB -m KEEL-MEDIA-ROOT -m 'login:' -s 'root\n' -x 'keel-media# ' \
		-s "echo \"keel-media-test \$((6*7)) $name\" > /root/written.txt; sync; cat /root/written.txt\\n" -x "$want" \
		-x 'keel-media# ' -s 'poweroff\n' -x 'reboot: Power down' -- "${cmd[@]}" > "$LOGS/$name.drive"
	[ $rc -eq 0 ] || expect "exit status $rc, expected 0 (the guest powered off)$(grep -m1 '^drive: timeout' "$LOGS/$name.drive" | sed 's/^/; /')"
	firmware_booted "$fw" "Hard Disk"
	grep -aq "KEEL-MEDIA-ROOT up after .* on /dev/${3}1" "$log" ||
		expect "the root file system was not on /dev/${3}1: $(grep -aom1 'KEEL-MEDIA-ROOT.*' "$log" | tr -d '\r')"
	if ! command -v e2fsck >/dev/null || ! command -v debugfs >/dev/null; then
		expect "e2fsck/debugfs (e2fsprogs) missing here"
	else
		got=$(debugfs -R 'cat /root/written.txt' "$img?offset=$MEDIA_DISK_PART_OFFSET" 2>/dev/null)
		[ "$got" = "$want" ] || expect "/root/written.txt read back from the image: '$got', expected '$want'"
		e2fsck -fn "$img?offset=$MEDIA_DISK_PART_OFFSET" > "$LOGS/$name.e2fsck" 2>&1 ||
			expect "e2fsck -fn found the file system not clean (see $LOGS/$name.e2fsck)"
	fi
	PASS_DETAIL="$(timings "$name" KEEL-MEDIA-GRUB KEEL-MEDIA-ROOT login:)"
	lab_verdict "$name" "$log"
	rm -rf "$dir"
}

# menu_test NAME: the boot menu on COM1 (sercon) picks the CD-ROM, listed after the disk (QEMU's list
# has its KVM vAPIC option ROM, "Legacy option rom", in between).
menu_test() {
	local name=$VMM-$1 fw=$LOGS/$VMM-$1.firmware.log key=2
	[ $VMM = qemu ] && key=3
	log=$LOGS/$name.log
	rm -f "$fw"
	case $VMM in
	qemu)
		cmd=(qemu-system-x86_64 -M pc,graphics=off -accel "$QEMU_ACCEL" -m 512 -nodefaults -no-user-config -display none
			-serial stdio -bios "$SEABIOS" -chardev "file,id=fwlog,path=$fw" -device isa-debugcon,iobase=0x402,chardev=fwlog
			-boot order=c,menu=on,splash-time=5000
			-drive "if=none,id=d,file=$MEDIA_DISK,format=raw,readonly=on" -device virtio-blk-pci,drive=d,bootindex=1
			-device ahci,id=a -drive "if=none,id=c,file=$MEDIA_ISO,format=raw,media=cdrom,readonly=on"
			-device ide-cd,drive=c,bus=a.0) ;;
	keel)
		cmd=("$KEEL" run --firmware bios --firmware-log "$fw" --memory 512M --boot order=c,menu=on,splash-time=5000
			--disk "path=$MEDIA_DISK,readonly,bootindex=1" --cdrom "$MEDIA_ISO") ;;
	esac
	run_vm "$log" -t 150 -x 'Press ESC for boot menu' -s '\x1b' -x 'Select boot device' -x '1. Virtio disk' \
		-x "$key. DVD/CD" -s "$key" -m KEEL-GUEST-UP -x KEEL-READY -s 'poweroff\n' -x 'reboot: Power down' \
		-- "${cmd[@]}" > "$LOGS/$name.drive"
	[ $rc -eq 0 ] || expect "exit status $rc, expected 0 (the guest powered off)$(grep -m1 '^drive: timeout' "$LOGS/$name.drive" | sed 's/^/; /')"
	firmware_booted "$fw" DVD/CD
	PASS_DETAIL="$(timings "$name" KEEL-GUEST-UP)"
	lab_verdict "$name" "$log"
}

# reboot_test NAME: the guest reboots; firmware, boot loader and kernel run a second time.
reboot_test() {
	local name=$VMM-$1 fw=$LOGS/$VMM-$1.firmware.log
	log=$LOGS/$name.log
	rm -f "$fw"
	vmm_cmd ahci-cd "$MEDIA_ISO" "$fw"
	run_vm "$log" -t 240 -m KEEL-GUEST-UP -x KEEL-READY -s 'reboot\n' -x 'reboot: Restarting system' \
		-m KEEL-MEDIA-GRUB -m KEEL-GUEST-UP -x KEEL-READY -s 'poweroff\n' -x 'reboot: Power down' \
		-- "${cmd[@]}" > "$LOGS/$name.drive"
	[ $rc -eq 0 ] || expect "exit status $rc, expected 0 (the guest powered off)$(grep -m1 '^drive: timeout' "$LOGS/$name.drive" | sed 's/^/; /')"
	[ "$(grep -ac 'SeaBIOS (version' "$fw")" -ge 2 ] || expect "the firmware did not run again (its log: $(grep -ac 'SeaBIOS (version' "$fw") starts)"
	PASS_DETAIL="$(timings "$name" KEEL-GUEST-UP)"
	lab_verdict "$name" "$log"
}

iso_test iso-ahci-cd ahci-cd DVD/CD
iso_test iso-virtio virtio-ro "Hard Disk"
disk_test disk-ahci ahci-disk sda
disk_test disk-virtio virtio vda
menu_test boot-menu
reboot_test reboot
