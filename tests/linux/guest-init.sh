#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# /init of the Linux test guest (Debian's kernel + busybox).  It checks what
# the VMM gave it against keel.* command-line values, reports each check as
# "KEEL-CHECK name ok|FAIL detail", then talks over the serial console: it
# prints KEEL-READY, reads one line, echoes it as KEEL-ECHO:<line> and obeys
# it (poweroff, reboot).
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
	esac
done
check() { # NAME OK-FLAG DETAIL
	if [ "$2" = 1 ]; then echo "KEEL-CHECK $1 ok $3"; else echo "KEEL-CHECK $1 FAIL $3"; fi
}
echo "KEEL-GUEST-UP uptime $(cut -d' ' -f1 /proc/uptime)"

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

echo "KEEL-READY"
read -r -t 120 line
echo "KEEL-ECHO:$line"
case "$line" in
reboot) reboot -f ;;
*) poweroff -f ;;
esac
sleep 30
