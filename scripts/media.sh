#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Boot media for firmware boot (SeaBIOS, AHCI CD and disk, virtio-blk),
# built from Debian's packages into ${KEEL_CACHE:-~/.cache/keel}/media/KEY
# (never into the repository), and printed as shell assignments:
#   MEDIA_ISO=...    a hybrid ISO (grub-mkrescue, BIOS only): GRUB on the
#                    serial console, Debian's kernel (scripts/assets.sh) and
#                    the Linux test guest's initramfs (tests/linux/guest-init.sh);
#                    boots as a CD (El Torito) or as a disk (its MBR) to
#                    KEEL-GUEST-UP, then KEEL-READY, then obeys one line
#                    ("poweroff") from the serial console
#   MEDIA_DISK=...   a raw disk (MEDIA_DISK_MB, default 256 MiB): MBR, one
#                    ext4 partition at 1 MiB (busybox root file system,
#                    /boot with the kernel, its initramfs and GRUB's files),
#                    GRUB's boot.img in the MBR and core.img in the gap after
#                    it; boots to a getty on ttyS0 ("login:"; root, no
#                    password; prompt "keel-media# ")
#   MEDIA_DISK_PART_OFFSET=1048576   where the partition starts, in bytes
#                    (e2fsck -fn "IMG?offset=N", debugfs -R "cat /root/x" "IMG?offset=N")
# KEY hashes every input (this script, the test guest's scripts, the kernel
# and busybox packages, the versions of GRUB, xorriso and e2fsprogs, the
# size): the media are built again only when one changes.  Needs no root and
# no loop device: the partition table and GRUB's boot sector are written
# here as grub-bios-setup would write them (embedding in the MBR gap,
# without Reed-Solomon codes, as grub-install --no-rs-codes), the file
# system by mke2fs -d at an offset, owners set to root with debugfs.  Both
# come out byte-identical for the same inputs (fixed times and UUIDs), on
# any machine with the same Debian packages.
#
#   scripts/media.sh            build what is missing, print the assignments
#   scripts/media.sh --check    print them only if the media are built (else exit 1)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${KEEL_CACHE:-$HOME/.cache/keel}
DISK_MB=${MEDIA_DISK_MB:-256}
EPOCH=1767225600 # 2026-01-01 00:00:00 UTC: every time stamp in the media
FS_UUID=6b65656c-6d65-6469-612d-726f6f746673 # "keel-media-rootfs"
PART_START=2048 # sectors: 1 MiB, the usual alignment; GRUB's core.img fits in sectors 1-2047
check_only=0
[ "${1:-}" = --check ] && check_only=1

die() { echo "media: $*" >&2; exit 1; }
[[ $DISK_MB =~ ^[0-9]+$ ]] && [ "$DISK_MB" -ge 64 ] || die "MEDIA_DISK_MB must be a number of MiB, at least 64"
for t in grub-mkrescue grub-mkimage xorriso mke2fs debugfs e2fsck cpio gzip; do
	command -v $t >/dev/null || die "$t is missing (scripts/deps.sh test installs grub-pc-bin, grub-common, xorriso, mtools, e2fsprogs)"
done
GRUB_DIR=/usr/lib/grub/i386-pc
[ -f $GRUB_DIR/boot.img ] && [ -f $GRUB_DIR/kernel.img ] || die "GRUB's BIOS files ($GRUB_DIR) are missing: apt-get install grub-pc-bin"

eval "$(scripts/assets.sh)" || die "guest assets unavailable"

# The cache key: every input that can change the media.
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || "$2" --version 2>&1 | head -1; }
key=$({
	sha256sum scripts/media.sh tests/linux/guest-init.sh scripts/guest-initramfs.sh scripts/mkinitramfs.sh | cut -d' ' -f1
	echo "${VMLINUZ#"$CACHE"/}" "${BUSYBOX#"$CACHE"/}" "$DISK_MB" # package and version, wherever the cache is
	echo "grub $(pkgver grub-pc-bin grub-mkimage) $(pkgver grub-common grub-mkrescue)"
	echo "xorriso $(pkgver xorriso xorriso) e2fsprogs $(pkgver e2fsprogs mke2fs)"
} | sha256sum | cut -c1-16)
OUT=$CACHE/media/$key
print() {
	echo "MEDIA_ISO=$OUT/boot.iso"
	echo "MEDIA_DISK=$OUT/disk.img"
	echo "MEDIA_DISK_PART_OFFSET=$((PART_START * 512))"
}
if [ -f "$OUT/.complete" ]; then
	touch "$OUT/.complete" # last used: see the clean-up below
	print
	exit 0
fi
[ $check_only = 0 ] || exit 1

# Media of other inputs unused for 30 days, and builds that died a day ago, go.
for d in "$CACHE"/media/*/; do
	d=${d%/}
	case ${d##*/} in
	tmp.*) [ -z "$(find "$d" -maxdepth 0 -mtime +0)" ] || rm -rf "$d" ;;
	*) [ -z "$(find "$d/.complete" -mtime +30 2>/dev/null)" ] || rm -rf "$d" ;;
	esac
done

mkdir -p "$CACHE/media"
tmp=$(mktemp -d "$CACHE/media/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export SOURCE_DATE_EPOCH=$EPOCH E2FSPROGS_FAKE_TIME=$EPOCH LC_ALL=C TZ=UTC

# stamp DIR: every time stamp in DIR to EPOCH (symbolic links themselves included).
stamp() { find "$1" -exec touch -h -d "@$EPOCH" {} +; }
# cpio_gz DIR OUT: a reproducible gzipped newc archive of DIR.
cpio_gz() {
	stamp "$1"
	(cd "$1" && find . | sort | cpio -o -H newc --quiet --reproducible --owner=0:0 | gzip -9n) > "$2"
}

# --- The ISO -------------------------------------------------------------
# The Linux test guest's initramfs, packed again with fixed times.
MODULES=$MODULES BUSYBOX=$BUSYBOX scripts/guest-initramfs.sh "$tmp/guest.cpio.gz"
mkdir "$tmp/guest"
(cd "$tmp/guest" && gzip -dc "$tmp/guest.cpio.gz" | cpio -id --quiet --no-absolute-filenames)
iso=$tmp/iso
mkdir -p "$iso/boot/grub"
cp "$VMLINUZ" "$iso/boot/vmlinuz"
cpio_gz "$tmp/guest" "$iso/boot/guest.cpio.gz"
# The arguments tests/linux/tests.sh passes for a 1-vCPU, 512 MiB guest, but
# keel.date (the date would make the media depend on the day they were built).
cat > "$iso/boot/grub/grub.cfg" <<'EOF'
# keel firmware-boot test ISO (scripts/media.sh)
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry "keel test guest: Debian Linux + tests/linux/guest-init.sh" {
	echo "KEEL-MEDIA-GRUB iso root=$root"
	linux /boot/vmlinuz console=ttyS0 panic=-1 keel.cpus=1 keel.mem=512
	initrd /boot/guest.cpio.gz
}
EOF
stamp "$iso"
# -d: BIOS only, whatever other GRUB platforms this machine has; no fonts,
# locales or themes (a serial console needs none).
# After "--", xorriso's own commands: fixed dates in place of the build time
# grub-mkrescue gives the volume and the files it copies, and root as the
# owner of every file (Rock Ridge records the builder's).
grub-mkrescue -d $GRUB_DIR --fonts= --locales= --themes= -o "$tmp/boot.iso" "$iso" -- -volid KEEL_MEDIA \
	-volume_date uuid 2026010100000000 -volume_date all_file_dates 2026010100000000 \
	-chown_r 0 / -- -chgrp_r 0 / -- > "$tmp/mkrescue.log" 2>&1 ||
	{ cat "$tmp/mkrescue.log" >&2; die "grub-mkrescue failed"; }

# --- The disk --------------------------------------------------------------
# Its initramfs: busybox, the modules for AHCI disks (sd), virtio-blk and
# ext4, and an /init that finds the root file system (the partition with
# /etc/keel-media, on sdX or vdX) and switches to it.
declare -A ko=()
while read -r f; do
	n=${f##*/}
	n=${n%.ko}
	ko[${n//-/_}]=$f
done < <(find "$MODULES" -name '*.ko')
order=()
declare -A seen=()
# add_mod NAME: NAME after the modules it depends on (modinfo's depends=).
add_mod() {
	local n=${1//-/_} d
	[ -z "${seen[$n]:-}" ] || return 0
	seen[$n]=1
	[ -n "${ko[$n]:-}" ] || die "module $1 not found under $MODULES"
	for d in $(tr '\0' '\n' < "${ko[$n]}" | sed -n 's/^depends=//p' | head -1 | tr , ' '); do
		add_mod "$d"
	done
	order+=("$n")
}
# crc32c_generic and crct10dif_generic: the soft dependencies (crypto-crc32c
# of ext4 and jbd2, crct10dif of crc-t10dif) that depends= does not name.
for m in crc32c_generic crct10dif_generic ahci sd_mod virtio_pci virtio_blk ext4; do add_mod $m; done
ird=$tmp/initrd
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,mod}
cp "$BUSYBOX" "$ird/bin/busybox"
for n in "${order[@]}"; do
	cp "${ko[$n]}" "$ird/mod/$n.ko"
	echo "$n.ko" >> "$ird/mod/order"
done
cat > "$ird/init" <<'EOF'
#!/bin/busybox sh
# keel media disk: initramfs /init (scripts/media.sh).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "KEEL-MEDIA-INITRD after $(cut -d' ' -f1 /proc/uptime) s"
for m in $(cat /mod/order); do insmod /mod/$m || echo "keel-media: insmod $m failed"; done
root=
for i in $(seq 100); do
	for d in /dev/sd[a-z]1 /dev/vd[a-z]1; do
		[ -b "$d" ] && mount -t ext4 -o ro "$d" /newroot 2>/dev/null || continue
		[ -f /newroot/etc/keel-media ] && { root=$d; break 2; }
		umount /newroot
	done
	sleep 0.1
done
if [ -z "$root" ]; then
	echo "KEEL-MEDIA-NO-ROOT: no partition with /etc/keel-media among: $(ls /dev | grep -E '^(sd|vd)' | tr '\n' ' ')"
	poweroff -f
fi
echo "keel-media: root file system on $root"
for m in dev proc sys; do mount --move /$m /newroot/$m; done
exec switch_root /newroot /sbin/init
EOF
chmod 755 "$ird/init" "$ird/bin/busybox"

# The root file system.
root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,dev,proc,sys,tmp,root,boot/grub/i386-pc,mnt,var/log}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$BUSYBOX" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
while read -r a; do
	case $a in /bin/busybox | '') continue ;; esac
	[ -e "$root$a" ] || ln -s /bin/busybox "$root$a"
done < <("$BUSYBOX" --list-full | sed 's|^|/|')
cat > "$root/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
# The root file system, busy, is remounted read-only instead.
::shutdown:/bin/umount -a -r
EOF
cat > "$root/etc/init.d/rcS" <<'EOF'
#!/bin/sh
# keel media disk: boot script (scripts/media.sh).
mount -o remount,rw /
mount -t tmpfs -o mode=1777 tmp /tmp
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname -F /etc/hostname
echo "KEEL-MEDIA-ROOT up after $(cut -d' ' -f1 /proc/uptime) s on $(awk '$2 == "/" { print $1 }' /proc/mounts | tail -1)"
EOF
chmod 755 "$root/etc/init.d/rcS"
echo 'root::0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
echo 'keel-media' > "$root/etc/hostname"
printf 'keel media disk (busybox): log in as root, no password\n\n' > "$root/etc/issue"
printf 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nPS1="keel-media# "\n' > "$root/etc/profile"
printf '/dev/root / ext4 rw 0 1\nproc /proc proc defaults 0 0\n' > "$root/etc/fstab"
echo "keel media disk $key" > "$root/etc/keel-media"
cp "$VMLINUZ" "$root/boot/vmlinuz"
cpio_gz "$ird" "$root/boot/initrd.gz"
cp $GRUB_DIR/*.mod $GRUB_DIR/*.lst "$root/boot/grub/i386-pc/"
cat > "$root/boot/grub/grub.cfg" <<'EOF'
# keel firmware-boot test disk (scripts/media.sh)
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry "keel media disk: Debian Linux, busybox root" {
	echo "KEEL-MEDIA-GRUB disk root=$root"
	linux /boot/vmlinuz console=ttyS0 panic=-1
	initrd /boot/initrd.gz
}
EOF
stamp "$root"

disk=$tmp/disk.img
sectors=$((DISK_MB * 2048))
truncate -s "${DISK_MB}M" "$disk"
# 4 KiB blocks; the partition runs to the end of the disk.
blocks=$(((sectors - PART_START) / 8))
mke2fs -q -F -t ext4 -b 4096 -L keelroot -U $FS_UUID -E "offset=$((PART_START * 512)),hash_seed=$FS_UUID,root_owner=0:0,nodiscard" \
	-d "$root" "$disk" $blocks || die "mke2fs failed"
# Everything owned by root (mke2fs -d copies the builder's uid and gid), and
# the change times fixed too (touch cannot set them: mke2fs copies them).
(cd "$root" && find . | sed 's|^\.||; s|^$|/|' | while read -r p; do
	echo "sif $p uid 0"
	echo "sif $p gid 0"
	echo "sif $p ctime @$EPOCH"
done) > "$tmp/chown.debugfs"
debugfs -w -f "$tmp/chown.debugfs" "$disk?offset=$((PART_START * 512))" > "$tmp/chown.log" 2>&1 ||
	{ cat "$tmp/chown.log" >&2; die "debugfs could not set the owners"; }
! grep -q -i 'error\|not found\|invalid' "$tmp/chown.log" || { cat "$tmp/chown.log" >&2; die "debugfs could not set the owners"; }

# put FILE OFFSET BYTES(printf escapes)
put() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

# GRUB: core.img (diskboot.img + kernel + modules to read the partition)
# in sectors 1.., boot.img in the MBR.  grub-mkimage leaves core.img's first
# blocklist at "sector 2, the remaining sectors, segment 0x820", which is
# where it is when core.img starts at sector 1: nothing to patch there.
# "(,msdos1)": the partition on the disk the BIOS booted from.
grub-mkimage -O i386-pc -d $GRUB_DIR -p '(,msdos1)/boot/grub' -o "$tmp/core.img" biosdisk part_msdos ext2 ||
	die "grub-mkimage failed"
core_sectors=$((($(stat -c %s "$tmp/core.img") + 511) / 512))
[ $core_sectors -lt $PART_START ] || die "core.img ($core_sectors sectors) does not fit before the partition"
[ "$(od -An -tu8 -j 500 -N 8 "$tmp/core.img" | tr -d ' ')" = 2 ] &&
	[ "$(od -An -tu2 -j 508 -N 2 "$tmp/core.img" | tr -d ' ')" = $((core_sectors - 1)) ] ||
	die "core.img's first blocklist is not (2, $((core_sectors - 1))): a GRUB this script does not know"
dd if="$tmp/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
cp $GRUB_DIR/boot.img "$tmp/mbr"
put "$tmp/mbr" $((0x5c)) "$(le32 1)$(le32 0)" # GRUB_BOOT_MACHINE_KERNEL_SECTOR: core.img's first sector
put "$tmp/mbr" $((0x64)) '\xff'               # GRUB_BOOT_MACHINE_BOOT_DRIVE: the drive the BIOS booted from
put "$tmp/mbr" $((0x66)) '\x90\x90'           # GRUB_BOOT_MACHINE_DRIVE_CHECK: a hard disk (DL & 0x80 forced)
# 0x1b8-0x1fd: disk signature, then the partition table: one bootable
# Linux partition (type 0x83), CHS fields "beyond 1024 cylinders" (LBA only).
put "$tmp/mbr" $((0x1b8)) '\x6b\x65\x65\x6c\x00\x00' # disk signature "keel"
put "$tmp/mbr" $((0x1be)) "\\x80\\xfe\\xff\\xff\\x83\\xfe\\xff\\xff$(le32 $PART_START)$(le32 $((blocks * 8)))"
put "$tmp/mbr" $((0x1ce)) '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
put "$tmp/mbr" $((0x1de)) '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
put "$tmp/mbr" $((0x1ee)) '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'
put "$tmp/mbr" 510 '\x55\xaa'
dd if="$tmp/mbr" of="$disk" bs=512 count=1 conv=notrunc status=none
e2fsck -fn "$disk?offset=$((PART_START * 512))" > "$tmp/e2fsck.log" 2>&1 || { cat "$tmp/e2fsck.log" >&2; die "the new file system does not check clean"; }

# --- Into the cache --------------------------------------------------------
mkdir -p "$tmp/out"
mv "$tmp/boot.iso" "$disk" "$tmp/out/"
(cd "$tmp/out" && sha256sum boot.iso disk.img > SHA256SUMS)
{
	echo "built $(date -u +%FT%TZ) by scripts/media.sh"
	echo "kernel $VMLINUZ"
	echo "busybox $BUSYBOX"
	echo "disk modules: ${order[*]}"
	echo "core.img: $core_sectors sectors at LBA 1; partition 1: LBA $PART_START, $((blocks * 8)) sectors"
} > "$tmp/out/INFO"
touch "$tmp/out/.complete"
# Another build of the same key may have finished first: keep that one.
mv -T "$tmp/out" "$OUT" 2>/dev/null || [ -f "$OUT/.complete" ] || die "cannot move the media into $OUT"
print
