#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make run: boot the default guest (Debian's stock kernel, busybox shell)
# with its console on this terminal.  On a host whose /dev/kvm emulates
# guest kernel code, keel runs inside the lab instead, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
eval "$(scripts/assets.sh)"
mkdir -p "$BUILD/run"
scripts/mkinitramfs.sh "$BUILD/run/default.cpio.gz" "$BUSYBOX" tests/linux/default-init.sh
args=(run --kernel "$VMLINUZ" --initrd "$BUILD/run/default.cpio.gz" --cpus 2 --memory 512M
	--cmdline "console=ttyS0 quiet")

if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
	exec "$BUILD/keel" "${args[@]}"
fi
cat >&2 <<MSG
keel: this machine's /dev/kvm has no VT-x/AMD-V behind it (guest kernel code
keel: would be emulated, far too slowly to boot Linux), so keel runs inside the
keel: lab: QEMU emulating an AMD-V machine, with real KVM inside.  Booting the
keel: lab takes a few seconds, the guest about 20 more.  Ctrl-A x quits.
MSG
exec tests/lab/lab.sh --interactive -- ./"$BUILD/keel" run --kernel /work/assets/vmlinuz \
	--initrd "/work/$BUILD/run/default.cpio.gz" --cpus 2 --memory 512M --cmdline "console=ttyS0 quiet"
