#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# /init of the Linux test guest (Debian's kernel + busybox).  It checks what
# the VMM gave it against keel.* command-line values, reports each check as
# "KEEL-CHECK name ok|FAIL detail", then talks over the serial console: it
# prints KEEL-READY, reads one line, echoes it as KEEL-ECHO:<line> and obeys
# it (poweroff, reboot).  With keel.storage=1 it first runs the virtio
# storage test (see storage_test below; keel.packed=1: over packed rings); with keel.cpuinfo=1 it prints what
# the guest sees of its CPU (KEEL-CPUINFO lines), for comparing VMMs.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

for w in $(cat /proc/cmdline); do
	case $w in
	keel.cpus=*) want_cpus=${w#*=} ;;
	keel.mem=*) want_mem=${w#*=} ;;
	keel.date=*) want_date=${w#*=} ;;
	keel.storage=*) storage=${w#*=} ;;
	keel.packed=*) want_packed=${w#*=} ;;
	keel.cpuinfo=*) cpuinfo=${w#*=} ;;
	esac
done
check() { # NAME OK-FLAG DETAIL
	if [ "$2" = 1 ]; then echo "KEEL-CHECK $1 ok $3"; else echo "KEEL-CHECK $1 FAIL $3"; fi
}
echo "KEEL-GUEST-UP uptime $(cut -d' ' -f1 /proc/uptime)"
[ "${cpuinfo:-0}" = 1 ] && grep -m6 -E '^(cpuid level|flags|bugs|address sizes|model name|power management)' /proc/cpuinfo |
	sed 's/^/KEEL-CPUINFO /'

cpus=$(grep -c '^processor' /proc/cpuinfo)
online=$(cat /sys/devices/system/cpu/online)
check cpus "$([ "$cpus" = "$want_cpus" ] && echo 1)" "$cpus online ($online), $want_cpus expected"

# MemTotal is RAM less what the kernel keeps: between 60% and 100% of it.
memkb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
wantkb=$((want_mem * 1024))
check memory "$([ "$memkb" -le "$wantkb" ] && [ "$memkb" -ge $((wantkb * 6 / 10)) ] && echo 1)" "MemTotal ${memkb} kB of ${wantkb} kB"

cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
check clocksource "$([ "$cs" = kvm-clock ] && echo 1)" "$cs"

check acpi "$([ -d /sys/firmware/acpi/tables ] && [ -e /sys/firmware/acpi/tables/DSDT ] && echo 1)" \
	"$(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"

check pci-host-bridge "$([ -e /sys/bus/pci/devices/0000:00:00.0 ] && echo 1)" \
	"$(cat /sys/bus/pci/devices/0000:00:00.0/vendor 2>/dev/null):$(cat /sys/bus/pci/devices/0000:00:00.0/device 2>/dev/null)"

rtc=$(cat /sys/class/rtc/rtc0/date 2>/dev/null | tr -d -)
check rtc-date "$([ -n "$rtc" ] && [ "$rtc" -ge "$want_date" ] && [ "$rtc" -le $((want_date + 1)) ] 2>/dev/null && echo 1)" \
	"rtc0 says $rtc, host said $want_date"

uart=$(dmesg | grep -o 'ttyS0 at I/O 0x3f8 (irq = 4[^)]*) is a 16550A')
check uart-16550a "$([ -n "$uart" ] && echo 1)" "$uart"

irqs=$(awk '/ttyS0|serial/ { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts)
check uart-interrupts "$([ "${irqs:-0}" -gt 0 ] && echo 1)" "${irqs:-0} serial interrupts"

complaints=$(dmesg | grep -E 'ACPI (BIOS )?(Error|Exception|Warning)|\[Firmware (Bug|Warn)\]|BUG:|WARNING:.*(acpi|pci|apic)' | cut -c16- | head -3 | tr '\n' '|')
check no-firmware-errors "$([ -z "$complaints" ] && echo 1)" "${complaints:-none}"

# Modules of the virtio drivers and ext4 (Debian builds them as modules).
if [ -f /mod/order ]; then
	for m in $(cat /mod/order); do insmod /mod/$m 2>/dev/null || echo "KEEL-NOTE insmod $m failed"; done
fi

# The storage test, for keel run --cpus N --rng --virtio-console FILE and three
# disks: vda (writeback cache), vdb (cache=writethrough), vdc (readonly).
# vda gets an MBR partition with an ext2 file system, vdb a whole-disk one;
# the host then checks both with e2fsck and reads the files back with debugfs.
storage_test() {
	sleep 1 # let the disk probes finish
	for d in vda vdb vdc; do
		check "virtio-blk-$d" "$([ -b /dev/$d ] && echo 1)" "$(cat /sys/block/$d/size 2>/dev/null) sectors"
	done
	mq=$(ls -d /sys/block/vda/mq/* 2>/dev/null | wc -l)
	check virtio-blk-multiqueue "$([ "$mq" = "$want_cpus" ] && echo 1)" "$mq queues for $want_cpus vCPUs"
	check virtio-blk-serial "$([ "$(cat /sys/block/vda/serial 2>/dev/null)" = keel-disk-a ] && echo 1)" \
		"serial '$(cat /sys/block/vda/serial 2>/dev/null)'"
	check virtio-blk-flush "$([ "$(cat /sys/block/vda/queue/write_cache)" = 'write back' ] && echo 1)" \
		"vda write_cache: $(cat /sys/block/vda/queue/write_cache)"
	check virtio-blk-discard "$([ "$(cat /sys/block/vda/queue/discard_max_bytes)" -gt 0 ] && echo 1)" \
		"discard_max_bytes $(cat /sys/block/vda/queue/discard_max_bytes)"
	# Feature bit 34 (VIRTIO_F_RING_PACKED) as negotiated, on every virtio device: keel.packed=1 wants it.
	rings=
	for f in /sys/bus/virtio/devices/*/features; do rings="$rings$(cut -c35 "$f")"; done
	want_rings=$(echo "$rings" | tr 01 "${want_packed:-0}${want_packed:-0}")
	check virtio-ring-layout "$([ -n "$rings" ] && [ "$rings" = "$want_rings" ] && echo 1)" \
		"bit 34 per device: $rings (packed wanted: ${want_packed:-0})"

	printf 'o\nn\np\n1\n2048\n\nw\n' | fdisk /dev/vda >/dev/null 2>&1
	partprobe /dev/vda 2>/dev/null
	sleep 1
	ok=1
	mke2fs -q /dev/vda1 >/dev/null 2>&1 && mkdir -p /a && mount -t ext2 /dev/vda1 /a || ok=
	check virtio-blk-partition-mkfs "$ok" "$(cat /sys/block/vda/vda1/size 2>/dev/null) sectors in vda1"
	ok=1
	mke2fs -q /dev/vdb >/dev/null 2>&1 && mkdir -p /b && mount -t ext2 /dev/vdb /b || ok=
	check virtio-blk-writethrough-mkfs "$ok" ""
	ok=1
	echo "keel storage test" > /a/hello.txt || ok=
	dd if=/dev/urandom of=/a/random.bin bs=64k count=64 2>/dev/null || ok=
	sha256sum /a/random.bin | cut -d' ' -f1 > /a/random.sha256 || ok=
	mkdir -p /a/dir && for i in 1 2 3 4 5 6 7 8; do echo "file $i" > /a/dir/f$i; done || ok=
	cp /a/random.bin /b/copy.bin && echo "disk b" > /b/b.txt || ok=
	sync
	umount /a && umount /b || ok=
	check virtio-blk-write-files "$ok" "random.bin sha256 $(cat /a/random.sha256 2>/dev/null)"
	# Read back through a fresh mount (the page cache is dropped with the unmount).
	mount -t ext2 -o ro /dev/vda1 /a && got=$(sha256sum /a/random.bin | cut -d' ' -f1) && want=$(cat /a/random.sha256)
	check virtio-blk-read-back "$([ -n "$got" ] && [ "$got" = "$want" ] && echo 1)" "$got"
	umount /a

	# The guest honours RO; keel must refuse too when a guest ignores it (blockdev --setrw).
	ro=$(cat /sys/block/vdc/ro)
	blockdev --setrw /dev/vdc 2>/dev/null
	check virtio-blk-readonly "$([ "$ro" = 1 ] && ! dd if=/dev/zero of=/dev/vdc bs=4k count=1 oflag=direct 2>/dev/null && echo 1)" \
		"ro=$ro; a forced write was refused"
	head=$(dd if=/dev/vdc bs=16 count=1 2>/dev/null)
	check virtio-blk-readonly-read "$([ "$head" = KEEL-READONLY-DISK ] || [ "${head#KEEL-READONLY}" != "$head" ] && echo 1)" "'$head'"

	rng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
	bytes=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
	check virtio-rng "$([ "${rng#virtio_rng}" != "$rng" ] && [ ${#bytes} = 64 ] && echo 1)" "$rng: $bytes"

	echo "KEEL-HVC-HELLO from the guest" > /dev/hvc0 2>/dev/null
	check virtio-console "$([ -c /dev/hvc0 ] && echo 1)" "$(ls -l /dev/hvc0 2>/dev/null)"
	# Legacy PCI interrupts (pci=nomsi): which IO-APIC lines the virtio devices fired on.
	awk '/IO-APIC.*virtio/ { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; if (s > 0) print "KEEL-INTX virtio irq " $1 " " s }' \
		/proc/interrupts
	echo "KEEL-STORAGE-DONE"
}
[ "$storage" = 1 ] && storage_test

echo "KEEL-READY"
read -r -t 120 line
echo "KEEL-ECHO:$line"
case "$line" in
reboot) reboot -f ;;
*) poweroff -f ;;
esac
sleep 30
