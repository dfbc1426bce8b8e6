#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/block's guest half, where real KVM is (inside the lab here): Debian's
# kernel runs fio (bench/fio-guest-init.sh) on a virtio-blk disk under keel
# and under QEMU -M pc (virtio-blk-pci, aio=io_uring), each keel cache mode
# next to QEMU's that means the same (writeback, writethrough, none: QEMU's
# cache=writeback, cache=writethrough, cache=none).  The image (IMAGE_MB,
# 256 MiB of data) lives on ext4 on a loop device over tmpfs, a file system
# that does O_DIRECT; 1 vCPU, 512 MiB.
#   bench/block-guest-inner.sh INITRD ROUNDS MODES POINTS RUNTIME
# MODES: e.g. writeback,none; POINTS: NAME:RW:BS:QD,... (fio's --rw and
# --bs).  The VMMs take turns at going first.  Other keel binaries at
# $BUILD/bench/keel-NAME (other builds, for A/B) run too, as keel-NAME, and
# EXTRA_VMMS such as "qemu,request-merging=off" (QEMU with more properties
# of its virtio-blk-pci device).  Prints per boot
#   RESULT vmm=keel mode=none round=1 point=NAME iops=N kib_s=N p50_us=N p99_us=N
# With TRACE_POINTS (same syntax), each keel then boots once more with
# cache=TRACE_MODE (writeback) and --trace block,cache, recorded by keel
# trace record; printed: requests per layer and keel trace report's
# per-layer latency table (lines starting "TRACE vmm ").
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${KEEL_BUILD:-build}
KEEL=$BUILD/keel DRIVE=$BUILD/tests/drive
initrd=$1 rounds=$2 modes=$3 points=$4 runtime=$5
: "${VMLINUZ:?}"
qemu_ok=$(command -v qemu-system-x86_64 >/dev/null && echo 1)

# The image's file system: ext4 on a loop device (the lab's modules in /mod).
dir=/tmp/bench-block
mkdir -p "$dir/fs"
if ! grep -q " $dir/fs " /proc/mounts; then
	for m in loop crc16 mbcache jbd2 crc32c_generic ext4; do
		[ -f /mod/$m.ko ] && { insmod /mod/$m.ko 2>/dev/null || true; }
	done
	truncate -s $(( ${IMAGE_MB:-256} + 128 ))M "$dir/fs.img"
	mke2fs -q -F -t ext4 "$dir/fs.img" || { echo "block-guest: mke2fs failed" >&2; exit 1; }
	mount -o loop "$dir/fs.img" "$dir/fs" || { echo "block-guest: cannot mount the ext4 image" >&2; exit 1; }
fi
img=$dir/fs/disk.img
[ -f "$img" ] || dd if=/dev/zero of="$img" bs=1M count="${IMAGE_MB:-256}" status=none
# Every boot starts from the same state: nothing dirty, nothing cached (a
# boot right after the image was written would share the host with its
# write-back, and a cache=none one reads around the last boot's dirty pages).
settle() { sync; echo 3 > /proc/sys/vm/drop_caches; }
echo "== image: ${IMAGE_MB:-256} MiB on $(awk -v d="$dir/fs" '$2 == d { print $3 " on " $1 }' /proc/mounts); points $points; ${runtime}s each"

cmdline="console=ttyS0 quiet panic=-1 bench.points=$points bench.runtime=$runtime bench.ramp=1"
boot() { # VMM MODE ROUND
	local vmm=$1 mode=$2 round=$3 log=$dir/log
	settle
	if [ "${vmm%%[-,]*}" != qemu ]; then
		local bin=$KEEL
		[ "$vmm" = keel ] || bin=$BUILD/bench/$vmm
		"$DRIVE" -t 900 -l "$log" -x FIO-DONE -- "$bin" run --kernel "$VMLINUZ" --initrd "$initrd" --cpus 1 \
			--memory 512M --disk "path=$img,cache=$mode" --cmdline "$cmdline" >/dev/null 2>&1
	else
		"$DRIVE" -t 900 -l "$log" -x FIO-DONE -- qemu-system-x86_64 -M pc -accel kvm -cpu host -smp 1 -m 512 \
			-nodefaults -no-user-config -display none -serial stdio -kernel "$VMLINUZ" -initrd "$initrd" \
			-append "$cmdline" -drive "file=$img,if=none,id=d0,format=raw,aio=io_uring,cache=$mode" \
			-device "virtio-blk-pci,drive=d0${vmm#qemu}" >/dev/null 2>&1
	fi
	tr -d '\r' < "$log" | grep -E '^FIO-(ERROR|LOG)' | sed "s/^/  $vmm $mode: /" >&2
	[ "$round" != 1 ] || tr -d '\r' < "$log" | grep -m1 '^FIO-UP' | sed "s/^/  $vmm $mode: /"
	grep -q FIO-DONE "$log" || { echo "  $vmm $mode: the guest did not finish; its console ends:" >&2; tail -5 "$log" >&2; }
	tr -d '\r' < "$log" | sed -n "s/^FIO-RESULT \([^ ]*\) /RESULT vmm=$vmm mode=$mode round=$round point=\1 /p"
}
for r in $(seq "$rounds"); do
	for mode in $(echo "$modes" | tr ',' ' '); do
		order="keel qemu"
		[ $((r % 2)) = 0 ] && order="qemu keel"
		for b in "$BUILD"/bench/keel-*; do [ -x "$b" ] && order="$order ${b##*/}"; done
		order="$order ${EXTRA_VMMS:-}"
		for vmm in $order; do
			[ "${vmm%%[-,]*}" = qemu ] && [ -z "$qemu_ok" ] && continue
			boot "$vmm" "$mode" "$r"
		done
	done
done

# trace_boot VMM: one traced boot (TRACE_POINTS), its per-layer account.
trace_boot() {
	local vmm=$1 bin=$KEEL t=$dir/$1.trace
	[ "$vmm" = keel ] || bin=$BUILD/bench/$vmm
	settle
	export XDG_RUNTIME_DIR=$dir/run
	mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
	"$bin" run --name bt --trace block,cache --trace-buffer-size 64M --kernel "$VMLINUZ" --initrd "$initrd" \
		--cpus 1 --memory 512M --disk "path=$img,cache=${TRACE_MODE:-writeback}" \
		--cmdline "console=ttyS0 quiet panic=-1 bench.points=$TRACE_POINTS bench.runtime=$runtime bench.ramp=1" \
		>"$dir/trace-vm.log" 2>&1 </dev/null &
	local vm=$! i=0
	while [ ! -S "$XDG_RUNTIME_DIR/keel/bt.sock" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	"$bin" trace record -o "$t" bt 2>"$dir/trace-rec.log"
	wait $vm
	tr -d '\r' < "$dir/trace-vm.log" | sed -n "s/^FIO-RESULT /TRACE $vmm fio: /p"
	echo "TRACE $vmm requests: $(grep -c 'block:submit: layer=cache' "$t") to the cache," \
		"$(grep -c 'block:submit: layer=file' "$t") to the file layer, $(grep -c 'cache:bypass' "$t") bypassing," \
		"$(grep -c 'cache:miss' "$t") misses, $(grep -c 'cache:writeback' "$t") write-backs; $(cat "$dir/trace-rec.log")"
	echo "TRACE $vmm lengths of the file layer's reads and writes (count bytes):" \
		"$(grep -oE 'block:submit: layer=file op=(read|write) .* len=[0-9]+' "$t" | sed 's/.*len=//' | sort -n |
			uniq -c | sort -rn | head -4 | awk '{ printf "%s %s; ", $1, $2 }')"
	"$bin" trace report --no-plot "$t" 2>&1 | sed -n '/atenc/,$p' | sed "s/^/TRACE $vmm /"
	rm -f "$t"
}
if [ -n "${TRACE_POINTS:-}" ]; then
	trace_boot keel
	for b in "$BUILD"/bench/keel-*; do [ -x "$b" ] && trace_boot "${b##*/}"; done
fi
exit 0
