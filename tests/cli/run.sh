#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The keel binary's handling of bad input: usage errors exit 2 with one
# line; unusable files and devices exit 1 with a message naming them.
#
# Everything here runs before keel opens /dev/kvm, on any host, except the
# vm part (a guest must run to its end), which runs where /dev/kvm is usable
# and, elsewhere, in the lab (tests/lab/in-lab.sh cli-vm; CLI_PART=vm).
GROUP=cli
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../disk-image.sh"

# run_keel EXPECTED_STATUS NAME TEXT ARGS...: status and a message containing TEXT.
run_keel() {
	local want=$1 name=$2 text=$3
	shift 3
	local out rc
	out=$("$KEEL" "$@" 2>&1 </dev/null)
	rc=$?
	[ "$rc" -eq "$want" ] || expect "status $rc, expected $want"
	[[ "$out" == *"$text"* ]] || expect "output lacks '$text': $(echo "$out" | head -2 | tr '\n' ' ')"
	verdict "$name"
}

# The parts that run a guest.
vm_part() {
	# A GPT disk whose primary table is damaged: the backup is used, the user told, the guest runs.
	gpt_disk "$LOGS/gpt.img" 1024 40 99
	put "$LOGS/gpt.img" $((512 + 88)) '\x01' # inside the primary header: its CRC32 no longer matches
	run_keel 0 disk-gpt-backup "gpt.img: the primary GPT is damaged (the GPT header's CRC32 is wrong" \
		run --kernel "$GUESTS/testguest.elf" --memory 32M --cmdline keeltest=poweroff \
		--disk "path=$LOGS/gpt.img,partition=1,readonly"
}
if [ "${CLI_PART:-}" = vm ]; then
	vm_part
	exit 0
fi

run_keel 2 no-command "usage: keel" 
run_keel 2 unknown-command "unknown command 'frobnicate'" frobnicate
run_keel 0 version "keel " --version
run_keel 0 help "usage: keel COMMAND" --help
run_keel 0 run-help "--on-reboot ACTION" run --help
run_keel 2 missing-kernel "--kernel is required, or a --disk or --cdrom" run
run_keel 2 bad-cpus "--cpus: '0' is out of range" run --kernel x --cpus 0
run_keel 2 bad-memory "--memory: 'big' is not a size" run --kernel x --memory big
run_keel 2 bad-trace-events "--trace: no event matches 'nosuch'" run --kernel x --trace vcpu:exit,nosuch
run_keel 2 bad-trace-buffer "--trace-buffer-size: '3K' is not a power of two" run --kernel x --trace-buffer-size 3K
run_keel 2 tracefs-no-mountpoint "keel tracefs: needs one MOUNTPOINT" tracefs
run_keel 2 tracefs-not-a-directory "/nonexistent: not a directory" tracefs /nonexistent
run_keel 0 tracefs-help "usage: keel tracefs" tracefs --help
run_keel 0 trace-help "keel trace COMMAND" trace --help
run_keel 2 trace-unknown "keel trace: unknown command 'frob'" trace frob
run_keel 0 trace-record-help "usage: keel trace record" trace record --help
run_keel 0 trace-report-help "usage: keel trace report" trace report --help
run_keel 2 trace-record-bad-name "'../x' is not a VM name" trace record ../x
run_keel 1 trace-record-no-vm "no VM named nosuch-vm is running" trace record nosuch-vm
run_keel 1 trace-report-missing "keel trace report: /nonexistent: No such file" trace report /nonexistent

# A usage error is exactly one line.
out=$("$KEEL" run --kernel x --serial tcp:1 2>&1)
[ "$(echo "$out" | wc -l)" -eq 1 ] || expect "$(echo "$out" | wc -l) lines"
verdict usage-error-is-one-line

# Firmware boot options.
run_keel 2 kernel-and-firmware "--kernel and --firmware exclude each other" run --kernel x --firmware bios
run_keel 2 initrd-without-kernel "--initrd needs --kernel" run --initrd x --disk path=x
run_keel 2 boot-with-kernel "--boot applies to firmware boot" run --kernel x --boot order=c
run_keel 2 boot-bad-letter "--boot: order=cz: 'z' is not c (disk), d (CD-ROM) or n (network)" run --boot cz --disk path=x
run_keel 2 boot-twice "'c' is given twice" run --boot order=cdc --disk path=x
run_keel 2 boot-bad-item "--boot: unknown item 'once'" run --boot once=c --disk path=x
run_keel 2 boot-bad-splash "splash-time=long is not a time" run --boot menu=on,splash-time=long --disk path=x
run_keel 2 disk-bad-if "if=scsi is not one of virtio, ahci" run --disk path=x,if=scsi
run_keel 2 disk-bad-bootindex "bootindex=10000 is not a number from 0 to 9999" run --disk path=x,bootindex=10000
run_keel 2 ahci-no-queues "apply to if=virtio disks only" run --disk path=x,if=ahci,queues=2
run_keel 2 cdrom-empty "--cdrom: needs an ISO image file name" run --cdrom ""
# A bad firmware file: one line, exit 2, and nothing written (the serial file is not created).
head -c 100000 /dev/urandom > "$LOGS/fw-odd.bin"
for fw in /nonexistent/bios.bin /tmp "$LOGS/empty.img" "$LOGS/fw-odd.bin"; do
	: > "$LOGS/empty.img"
	rm -f "$LOGS/fw-serial.out" "$LOGS/fw.log"
	out=$("$KEEL" run --firmware "$fw" --firmware-log "$LOGS/fw.log" --serial "file:$LOGS/fw-serial.out" 2>&1 </dev/null)
	rc=$?
	[ "$rc" -eq 2 ] || expect "$fw: status $rc, expected 2"
	[ "$(echo "$out" | wc -l)" -eq 1 ] || expect "$fw: $(echo "$out" | wc -l) lines: $out"
	[[ "$out" == *"--firmware $fw"* ]] || expect "$fw: message does not name it: $out"
	[ ! -e "$LOGS/fw-serial.out" ] && [ ! -e "$LOGS/fw.log" ] || expect "$fw: a file was written"
done
verdict firmware-bad-files
head -c 65536 /dev/zero > "$LOGS/cd.iso"
# A bad option ROM: one line, exit 2.
run_keel 2 option-rom-with-kernel "--option-rom applies to firmware boot" run --kernel x --option-rom x
run_keel 2 option-rom-missing "--option-rom /nonexistent/x.rom: No such file" run --disk path=x --option-rom /nonexistent/x.rom
run_keel 2 option-rom-size "--option-rom $LOGS/fw-odd.bin: 100000 bytes" run --disk path=x --option-rom "$LOGS/fw-odd.bin"
head -c 512 /dev/zero > "$LOGS/nosig.rom"
run_keel 2 option-rom-signature "no option ROM signature" run --disk path=x --option-rom "$LOGS/nosig.rom"
# A bad ISO: one line, exit 2, nothing written.
for iso in /nonexistent/cd.iso /tmp "$LOGS/fw-odd.bin" "$LOGS/empty.img"; do
	rm -f "$LOGS/cd-serial.out"
	out=$("$KEEL" run --cdrom "$iso" --serial "file:$LOGS/cd-serial.out" 2>&1 </dev/null)
	rc=$?
	[ "$rc" -eq 2 ] || expect "$iso: status $rc, expected 2"
	[ "$(echo "$out" | wc -l)" -eq 1 ] && [[ "$out" == *"--cdrom $iso"* ]] || expect "$iso: $out"
	[ ! -e "$LOGS/cd-serial.out" ] || expect "$iso: the serial file was written"
done
verdict cdrom-bad-images
run_keel 1 firmware-log-unwritable "--firmware-log /nonexistent/dir/log" run --cdrom "$LOGS/cd.iso" --firmware-log /nonexistent/dir/log

run_keel 1 kernel-not-found "kernel /nonexistent/bzImage: No such file or directory" run --kernel /nonexistent/bzImage
run_keel 1 initrd-not-found "initrd /nonexistent/initrd: No such file" run --kernel "$GUESTS/testguest.elf" --initrd /nonexistent/initrd
head -c 4096 /dev/urandom > "$LOGS/garbage.img"
run_keel 1 kernel-garbage "not a Linux bzImage or a PVH ELF kernel" run --kernel "$LOGS/garbage.img"
run_keel 1 trace-report-garbage "not a keel trace" trace report --no-plot "$LOGS/garbage.img"
: > "$LOGS/empty.img"
run_keel 1 initrd-empty "file is empty" run --kernel "$GUESTS/testguest.elf" --initrd "$LOGS/empty.img"
run_keel 1 kernel-is-directory "not a regular file" run --kernel /tmp
run_keel 1 serial-file-unwritable "--serial file:/nonexistent/dir/out" run --kernel "$GUESTS/testguest.elf" --serial file:/nonexistent/dir/out
run_keel 1 kvm-fd-closed "--kvm-fd 97: not an open file descriptor" run --kernel "$GUESTS/testguest.elf" --kvm-fd 97
out=$("$KEEL" run --kernel "$GUESTS/testguest.elf" --kvm-fd 5 5<"$LOGS/garbage.img" 2>&1)
[[ "$out" == *"--kvm-fd 5: not /dev/kvm (not a character device)"* ]] || expect "message: $out"
verdict kvm-fd-regular-file
out=$("$KEEL" run --kernel "$GUESTS/testguest.elf" --kvm-fd 5 5</dev/null 2>&1)
[[ "$out" == *"is not a KVM device"* ]] || expect "no KVM-device message: $out"
verdict kvm-fd-wrong-device

# A truncated guest image must not start a VM; the message names the problem (before any KVM).
head -c 1100 "$GUESTS/testguest.bzImage" > "$LOGS/truncated.bzImage"
run_keel 1 bzimage-truncated "the image is truncated" run --kernel "$LOGS/truncated.bzImage" --memory 32M
truncate -s 20M "$LOGS/big.initrd"
run_keel 1 initrd-too-big "does not fit in guest RAM above the kernel; give the VM more --memory" \
	run --kernel "$GUESTS/testguest.elf" --memory 16M --initrd "$LOGS/big.initrd"
# A GPT disk whose primary table is damaged: the backup is used, and the user told (vm_part below);
# both damaged: refused before any KVM, the image untouched.
gpt_disk "$LOGS/gpt-both.img" 1024 40 99
put "$LOGS/gpt-both.img" $((512 + 88)) '\x01'
put "$LOGS/gpt-both.img" $((2047 * 512 + 88)) '\x01'
sum=$(cksum < "$LOGS/gpt-both.img")
run_keel 1 disk-gpt-both-damaged "and so is the backup (the GPT header's CRC32 is wrong" \
	run --kernel "$GUESTS/testguest.elf" --memory 32M --cmdline keeltest=poweroff \
	--disk "path=$LOGS/gpt-both.img,partition=1"
[ "$(cksum < "$LOGS/gpt-both.img")" = "$sum" ] || expect "the image changed"
verdict disk-gpt-image-untouched-on-error

# --disk: bad specifications are usage errors; unusable images exit 1; none is changed.
run_keel 2 disk-unknown-key "unknown disk option 'colour'" run --kernel x --disk path=a.img,colour=red
run_keel 2 disk-no-path "needs path=FILE" run --kernel x --disk cache=none
run_keel 2 disk-bad-cache "cache=fast is not one of writeback, writethrough, none" run --kernel x --disk path=a,cache=fast
run_keel 2 disk-bad-size "cache-size=lots is not a size" run --kernel x --disk path=a,cache-size=lots
run_keel 2 disk-bad-poll "poll-us=5ms is not a busy-polling time" run --kernel x --disk path=a,poll-us=5ms
run_keel 2 disk-bad-cpus "cpus=first is not auto, any or a CPU list" run --kernel x --disk path=a,cpus=first
run_keel 2 disk-bad-serial "serial=" run --kernel x --disk path=a,serial=123456789012345678901
run_keel 2 disk-bad-format "only format=raw" run --kernel x --disk path=a,format=qcow2
run_keel 1 disk-not-found "--disk /nonexistent/disk.img: No such file or directory" \
	run --kernel "$GUESTS/testguest.elf" --disk path=/nonexistent/disk.img
head -c 1048576 /dev/urandom > "$LOGS/disk.img"
sum=$(cksum < "$LOGS/disk.img")
run_keel 1 disk-no-partition-table "no partition table" run --kernel "$GUESTS/testguest.elf" --disk "path=$LOGS/disk.img,partition=1"
run_keel 1 disk-cpus-none "cpus=1023 names none of the CPUs keel may run on" \
	run --kernel "$GUESTS/testguest.elf" --disk "path=$LOGS/disk.img,cpus=1023"
[ "$(cksum < "$LOGS/disk.img")" = "$sum" ] || expect "the image changed"
verdict disk-image-untouched-on-error
run_keel 2 virtio-console-empty "--virtio-console: needs stdio or a file name" run --kernel x --virtio-console=
run_keel 1 virtio-console-unwritable "--virtio-console /nonexistent/dir/out" \
	run --kernel "$GUESTS/testguest.elf" --virtio-console /nonexistent/dir/out

# No /dev/kvm (or none this user may open): one line saying why and what to do instead.
if [ ! -e /dev/kvm ]; then
	run_keel 1 no-kvm-message "/dev/kvm does not exist" run --kernel "$GUESTS/testguest.elf" --memory 32M
	out=$("$KEEL" run --kernel "$GUESTS/testguest.elf" --memory 32M 2>&1)
	[[ "$out" == *"make run"*"lab"* ]] || expect "the message does not point at the lab: $out"
	[ "$(echo "$out" | wc -l)" -eq 1 ] || expect "$(echo "$out" | wc -l) lines"
	verdict no-kvm-message-says-what-to-do
fi

kvm_usable && vm_part
