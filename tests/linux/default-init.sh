#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# /init of the default guest `make run` boots: Debian's kernel with a
# busybox userland and a shell on the serial console.  Leaving the shell
# powers the VM off.
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /root /dev/pts
mount -t devpts devpts /dev/pts
hostname keel-guest
cat <<BANNER

 keel guest: $(uname -sr), $(grep -c ^processor /proc/cpuinfo) vCPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB
 busybox shell; 'poweroff' or 'exit' ends the VM; Ctrl-A x quits keel at once.

BANNER
setsid cttyhack sh -l
poweroff -f
