#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# guest-initramfs.sh OUT.cpio.gz: the Linux test guest's initramfs: busybox,
# tests/linux/guest-init.sh as /init, and the modules of Debian's kernel the
# guest inserts itself (virtio over PCI, virtio-blk/console/rng, ext4 for the
# ext2 file system the storage test makes).  Needs MODULES and BUSYBOX from
# scripts/assets.sh.
set -euo pipefail
: "${MODULES:?run eval \"\$(scripts/assets.sh)\" first}" "${BUSYBOX:?}"
cd "$(dirname "$0")/.."
# In insertion order (each after what it depends on); guest-init.sh reads /mod/order.
mods=(drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_pci_modern_dev.ko
	drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko
	drivers/char/virtio_console.ko drivers/char/hw_random/virtio-rng.ko lib/crc16.ko fs/mbcache.ko
	fs/jbd2/jbd2.ko crypto/crc32c_generic.ko fs/ext4/ext4.ko)
order=$(mktemp)
trap 'rm -f "$order"' EXIT
args=()
for m in "${mods[@]}"; do
	args+=("$MODULES/$m=mod/$(basename "$m")")
	basename "$m" >> "$order"
done
scripts/mkinitramfs.sh "$1" "$BUSYBOX" tests/linux/guest-init.sh "$order=mod/order" "${args[@]}"
