#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# /init of the default guest `make run` boots: Debian's kernel with a
# busybox userland and a shell on the serial console.  `poweroff`,
# `reboot` and `halt` in the shell signal PID 1 (this script: SIGUSR2,
# SIGTERM, SIGUSR1, as busybox's init takes them), which then powers off or
# reboots the VM; leaving the shell powers it off.
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
 busybox shell; 'poweroff' or 'exit' ends the VM, 'reboot' restarts it; Ctrl-A x quits keel at once.

BANNER
trap 'poweroff -f' USR2 USR1
trap 'reboot -f' TERM
# In the background, so that a signal's trap runs at once (wait returns for it).
setsid cttyhack sh -l </dev/console >/dev/console 2>&1 &
shell=$!
while kill -0 "$shell" 2>/dev/null; do
	wait "$shell"
done
poweroff -f
