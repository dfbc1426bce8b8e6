#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# /init of bench/block's Linux guest (Debian's kernel, busybox and a static
# fio): inserts the virtio-blk modules, runs fio on /dev/vda for each point
# of bench.points= (NAME:RW:BS:QD,...; RW as fio's --rw), bench.runtime=
# seconds each after bench.ramp= seconds, with the io_uring engine and
# O_DIRECT, as a user measuring a disk would, and prints one line per point:
#   FIO-RESULT NAME iops=N kib_s=N p50_us=N p99_us=N
# then FIO-DONE, and powers the machine off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mod/order); do insmod "/mod/$m" || echo "FIO-ERROR insmod $m"; done
points= runtime=3 ramp=1
for w in $(cat /proc/cmdline); do
	case $w in
	bench.points=*) points=${w#*=} ;;
	bench.runtime=*) runtime=${w#*=} ;;
	bench.ramp=*) ramp=${w#*=} ;;
	esac
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
q=/sys/block/vda/queue
echo "FIO-UP after $(cut -d' ' -f1 /proc/uptime) s: vda $(cat /sys/block/vda/size 2>/dev/null) sectors," \
	"max_sectors_kb $(cat $q/max_sectors_kb 2>/dev/null), max_segments $(cat $q/max_segments 2>/dev/null)," \
	"max_segment_size $(cat $q/max_segment_size 2>/dev/null), queues $(ls -d /sys/block/vda/mq/* 2>/dev/null | wc -l)"
for p in $(echo "$points" | tr ',' ' '); do
	IFS=: read -r name rw bs qd <<P
$p
P
	# Terse v3: read bandwidth (KiB/s) and IOPS $7 $8, write $48 $49; completion
	# latency percentiles as "50.000000%=US": read p50 $24, p99 $30, write $65 $71.
	out=$(/bin/fio --name="$name" --filename=/dev/vda --rw="$rw" --bs="$bs" --iodepth="$qd" \
		--ioengine=io_uring --direct=1 --time_based --runtime="$runtime" --ramp_time="$ramp" \
		--randrepeat=0 --norandommap --output-format=terse --terse-version=3 2>&1)
	echo "$out" | awk -F';' -v n="$name" '
		NF > 60 { w = ($49 > 0); i = w ? $49 : $8; k = w ? $48 : $7
			p50 = w ? $65 : $24; p99 = w ? $71 : $30; sub(/.*=/, "", p50); sub(/.*=/, "", p99)
			printf "FIO-RESULT %s iops=%d kib_s=%d p50_us=%d p99_us=%d\n", n, i, k, p50, p99; ok = 1 }
		END { if (!ok) print "FIO-ERROR " n }'
	echo "$out" | grep -m3 -iE 'error|fio:' | sed 's/^/FIO-LOG /'
done
echo FIO-DONE
poweroff -f
