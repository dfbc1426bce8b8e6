#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make run: boot the default guest (Debian's stock kernel, busybox shell)
# with its console on this terminal.  On a host with VT-x/AMD-V keel runs
# directly (2 vCPUs unless CPUS says otherwise); elsewhere (an
# instruction-emulating /dev/kvm, or none) it runs inside the lab, with 1
# vCPU unless CPUS says otherwise (2-vCPU guests fail there a third of the
# time, under QEMU too: docs/known-issues.md), and says so.
#   scripts/run-default-guest.sh BUILD [CPUS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
cpus=${2:-}
eval "$(scripts/assets.sh)"
mkdir -p "$BUILD/run"
scripts/mkinitramfs.sh "$BUILD/run/default.cpio.gz" "$BUSYBOX" tests/linux/default-init.sh

if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
	exec "$BUILD/keel" run --kernel "$VMLINUZ" --initrd "$BUILD/run/default.cpio.gz" --cpus "${cpus:-2}" \
		--memory 512M --cmdline "console=ttyS0 quiet"
fi
if [ -e /dev/kvm ]; then
	why="this machine's /dev/kvm has no VT-x/AMD-V behind it (guest kernel code
keel: would be emulated, far too slowly to boot Linux)"
else
	why="this machine has no /dev/kvm (no hardware virtualization reaches it)"
fi
cat >&2 <<MSG
keel: $why, so keel runs inside the
keel: lab: QEMU emulating an AMD-V machine, with real KVM inside.  Booting the
keel: lab takes a few seconds, the guest about 20 more; ${cpus:-1} vCPU(s) (make run CPUS=N).
keel: QEMU's own messages go to $BUILD/lab/qemu.log.  Ctrl-A x quits.
MSG
exec tests/lab/lab.sh --interactive -- ./"$BUILD/keel" run --kernel /work/assets/vmlinuz \
	--initrd "/work/$BUILD/run/default.cpio.gz" --cpus "${cpus:-1}" --memory 512M --cmdline "console=ttyS0 quiet"
