#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkinitramfs.sh OUT.cpio.gz BUSYBOX INIT [SRC=DEST]...
# A gzipped newc initramfs: busybox at /bin/busybox, INIT as /init, extra
# files copied to DEST (directories created).
set -euo pipefail
out=$1 busybox=$2 init=$3
shift 3
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc}
cp "$busybox" "$root/bin/busybox"
cp "$init" "$root/init"
chmod 755 "$root/init" "$root/bin/busybox"
for m in "$@"; do
	src=${m%%=*} dst=${m#*=}
	mkdir -p "$root/$(dirname "$dst")"
	cp -L "$src" "$root/$dst"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
