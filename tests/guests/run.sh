#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The freestanding test guest under keel, directly on this host's /dev/kvm:
# both boot protocols, 1 and several vCPUs, power-off, reboot both ways,
# triple fault, console input, the virtio-blk benchmark mode.  The same
# guests also run under QEMU (TCG) to show that they are right
# independently of keel.
GROUP=guest
. "$(dirname "$0")/../lib.sh"

if ! kvm_usable; then
	skip all "/dev/kvm is not usable here"
	exit 0
fi

initrd=$LOGS/initrd.bin
head -c 12288 /dev/urandom > "$initrd"
fnv=$(fnv1a "$initrd")
date=$(date -u +%Y%m%d)
params() { # CPUS MEM_MB [extra]
	echo "keeltest.magic=K33L-b00t keeltest.cpus=$1 keeltest.mem=$2 keeltest.initrd_size=12288 keeltest.initrd_fnv=$fnv keeltest.date=$date $3 END"
}

# Full check list; each run is one test, failing checks listed.
full_run() { # NAME KERNEL CPUS MEM_MB
	local name=$1 kernel=$2 cpus=$3 mem=$4 log=$LOGS/$1.log
	run_vm "$log" -t 60 -- "$KEEL" run --kernel "$kernel" --initrd "$initrd" --cpus "$cpus" \
		--memory "${mem}M" --debug-exit --cmdline "$(params "$cpus" "$mem" keeltest.kvm=1)" >/dev/null
	[ $rc -eq 33 ] || expect "exit status $rc, expected 33 (guest pass)"
	grep -q '^keeltest: PASSED' "$log" || expect "no PASSED line"
	local bad
	bad=$(grep '^FAIL ' "$log" | head -5 | tr '\n' ' ')
	[ -z "$bad" ] || expect "guest checks failed: $bad"
	local n
	n=$(grep -c '^ok ' "$log")
	[ "$n" -ge 30 ] || expect "only $n guest checks passed"
	verdict "$name"
}

full_run keel-bzimage-1cpu "$GUESTS/testguest.bzImage" 1 64
full_run keel-bzimage-2cpu "$GUESTS/testguest.bzImage" 2 128
full_run keel-pvh-1cpu "$GUESTS/testguest.elf" 1 64
full_run keel-pvh-3cpu "$GUESTS/testguest.elf" 3 96
full_run keel-pvh-highmem "$GUESTS/testguest.elf" 2 4098

# ACPI power-off: exit 0.
log=$LOGS/poweroff.log
run_vm "$log" -t 30 -- "$KEEL" run --kernel "$GUESTS/testguest.elf" --memory 32M --cmdline keeltest=poweroff >/dev/null
[ $rc -eq 0 ] || expect "exit status $rc"
grep -q 'keeltest: powering off' "$log" || expect "guest did not get to power off"
verdict acpi-poweroff

# Reboot with --on-reboot=exit: one boot, status 0, a message.
log=$LOGS/reboot-exit.log
run_vm "$log" -t 30 -- "$KEEL" run --kernel "$GUESTS/testguest.bzImage" --memory 32M --cmdline keeltest=reboot \
	--on-reboot=exit --name rebooter >/dev/null
[ $rc -eq 0 ] || expect "exit status $rc"
[ "$(grep -c 'keeltest: booted' "$log")" -eq 1 ] || expect "booted $(grep -c 'keeltest: booted' "$log") times"
grep -q 'keel(rebooter): guest rebooted; exiting' "$log" || expect "no reboot message naming the VM"
verdict reboot-exit

# Reboot with restart (the default): the guest sees CMOS survive and powers off on its second boot.
log=$LOGS/reboot-restart.log
run_vm "$log" -t 30 -- "$KEEL" run --kernel "$GUESTS/testguest.elf" --memory 32M --cpus 2 --cmdline keeltest=reboot >/dev/null
[ $rc -eq 0 ] || expect "exit status $rc"
[ "$(grep -c 'keeltest: booted' "$log")" -eq 2 ] || expect "booted $(grep -c 'keeltest: booted' "$log") times, expected 2"
grep -q 'second boot, powering off' "$log" || expect "second boot did not power off"
verdict reboot-restart

# Triple fault: status 3 and a register dump, no hang.
log=$LOGS/triplefault.log
"$DRIVE" -t 30 -l "$log" -- "$KEEL" run --kernel "$GUESTS/testguest.elf" --memory 32M --cmdline keeltest=triplefault >/dev/null
rc=$?
[ $rc -eq 3 ] || expect "exit status $rc, expected 3"
grep -q 'keel: vCPU 0 registers:' "$log" || expect "no register dump"
grep -q 'rip ' "$log" || expect "no rip in the dump"
grep -qE 'triple fault|KVM .*(failed|error)' "$log" || expect "no reason given"
verdict triple-fault

# Console input from a pipe reaches the guest's UART.
log=$LOGS/echo.log
run_vm "$log" -t 30 -x READY -s 'hello from the host\n' -x 'ECHO:hello from the host' -- \
	"$KEEL" run --kernel "$GUESTS/testguest.bzImage" --memory 32M --debug-exit --cmdline keeltest=echo >/dev/null
[ $rc -eq 33 ] || expect "exit status $rc"
verdict serial-input

# --name names the process and the messages; vCPU threads are named too.
log=$LOGS/name.log
run_vm "$log" -t 30 -x READY -e 'test "$(cat /proc/$DRIVE_PID/comm)" = web-1 && cat /proc/$DRIVE_PID/task/*/comm | grep -qx vcpu1' \
	-s 'x\n' -- "$KEEL" run --name web-1 --cpus 2 --kernel "$GUESTS/testguest.elf" --memory 32M --debug-exit \
	--cmdline keeltest=echo >/dev/null
[ $rc -eq 33 ] || expect "exit status $rc (125: process or thread names wrong)"
verdict vm-and-thread-names

# On a terminal: raw mode, and Ctrl-A x quits (status 0) with the terminal restored.
if command -v script >/dev/null; then
	log=$LOGS/escape.log
	"$DRIVE" -t 30 -l "$log" -x READY -s '\x01h' -x 'Ctrl-A x' -s '\x01x' -- \
		script -qfec "$KEEL run --kernel $GUESTS/testguest.elf --memory 32M --cmdline keeltest=echo; echo keel-status=\$?" /dev/null >/dev/null
	grep -q 'keel-status=0' "$log" || expect "keel did not quit with status 0 on Ctrl-A x"
	verdict console-escape-key
else
	skip console-escape-key "script(1) is not installed"
fi

# --serial file: guest output lands in the file, none on stdout.
out=$LOGS/serial-file.txt
log=$LOGS/serial-file.log
run_vm "$log" -t 30 -- "$KEEL" run --kernel "$GUESTS/testguest.elf" --memory 32M --cmdline keeltest=poweroff --serial "file:$out" >/dev/null
[ $rc -eq 0 ] || expect "exit status $rc"
grep -q 'keeltest: powering off' "$out" || expect "guest output missing from the file"
! grep -q 'keeltest:' "$log" || expect "guest output also on stdout"
verdict serial-file

# SIGQUIT stops keel and prints where every vCPU was and what it was doing
# (for hung guests; drive sends it before killing a command that ran out of time).
log=$LOGS/sigquit.log
"$DRIVE" -t 30 -l "$log" -x READY -e 'kill -QUIT $DRIVE_PID' -- "$KEEL" run --kernel "$GUESTS/testguest.elf" \
	--memory 32M --cpus 2 --debug-exit --cmdline keeltest=echo > "$log.drive"
rc=$?
[ $rc -eq 1 ] || expect "exit status $rc, expected 1 (stopped by a signal)"
for c in 0 1; do grep -q "vCPU $c registers:" "$log" || expect "no registers of vCPU $c"; done
grep -qE '^  rip [0-9a-f]{16} ' "$log" || expect "no rip line"
# Activity state, pending events, local APIC vectors; the top of vCPU 0's stack (the test guest runs in long mode).
grep -qE '^  state (runnable|halted) +injecting: ' "$log" || expect "no activity state line"
grep -qE '^  lapic tpr [0-9a-f]{2} isr: .* irr: ' "$log" || expect "no local APIC line"
grep -A2 '^  stack at ' "$log" | grep -qE '^    [0-9a-f]{16} [0-9a-f]{16}' || expect "no stack words"
verdict sigquit-dumps-registers

# keeltest=blkbench (bench/block's guest, driver in ring 3): a few requests each
# way on a small disk, over a split virtqueue and over packed ones (requests
# as indirect tables, and as chains of ring descriptors); every point
# reports completed requests without errors, and the writes reached the
# image (no timing is checked).
rings=("split" "packed, indirect" "packed, chained") names=("" -packed-indirect -packed-chained)
for pk in 0 1 2; do
	ring=${rings[pk]}
	img=$LOGS/blkbench.img
	head -c $((4 << 20)) /dev/urandom > "$img.orig"
	cp "$img.orig" "$img"
	log=$LOGS/blkbench-$pk.log
	opt=()
	[ $pk = 0 ] || opt=(--virtio-packed on)
	run_vm "$log" -t 60 -- "$KEEL" run --kernel "$GUESTS/testguest.elf" --memory 64M --debug-exit --disk "path=$img" \
		"${opt[@]}" --cmdline "keeltest=blkbench keeltest.blk.ops=64 keeltest.blk.warm_ms=0 keeltest.blk.packed=$pk" >/dev/null
	[ $rc -eq 33 ] || expect "exit status $rc, expected 33 (guest pass)"
	grep -q "^blkbench: virtio-blk at .*($ring)" "$log" || expect "the guest did not report a $ring ring"
	n=$(grep -cE '^blkbench: rw=(read|write) qd=[0-9]+ ops=[1-9][0-9]* .* errors=0' "$log")
	[ "$n" -eq 4 ] || expect "$n of 4 points reported completed requests without errors"
	grep -q '^blkbench: done' "$log" || expect "no done line"
	! cmp -s "$img" "$img.orig" || expect "the guest's writes did not reach the image"
	verdict "blkbench-smoke${names[pk]}"
	rm -f "$img" "$img.orig"
done

# cpus=: the queue thread pins itself inside the sandbox (sched_setaffinity
# on the calling thread is allowed) and says so with -v.
img=$LOGS/blkbench.img
head -c $((4 << 20)) /dev/urandom > "$img"
cpu=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status | tr ',' '\n' | tail -1 | sed 's/.*-//')
log=$LOGS/blkbench-pinned.log
run_vm "$log" -t 60 -- "$KEEL" run -v --kernel "$GUESTS/testguest.elf" --memory 64M --debug-exit \
	--disk "path=$img,cpus=$cpu" --cmdline "keeltest=blkbench keeltest.blk.ops=64 keeltest.blk.warm_ms=0" >/dev/null
[ $rc -eq 33 ] || expect "exit status $rc, expected 33 (guest pass)"
grep -q "queue threads on CPUs $cpu (cpus=)" "$log" || expect "no placement line for cpus=$cpu"
grep -q "blk0-q0: runs on CPUs $cpu\$" "$log" || expect "the queue thread did not report running on CPU $cpu"
! grep -q "cannot run on" "$log" || expect "$(grep -m1 'cannot run on' "$log")"
verdict blkbench-queue-thread-pinned
rm -f "$img"

# The same guests under QEMU (software emulation): they pass there too.
# (A check of the guest itself: done once, on the host, not again in the lab.)
if [ "${KEEL_IN_LAB:-0}" = 1 ]; then
	:
elif command -v qemu-system-x86_64 >/dev/null; then
	for k in testguest.bzImage testguest.elf; do
		log=$LOGS/qemu-$k.log
		timeout 120 qemu-system-x86_64 -M pc -accel tcg -cpu max -m 128 -smp 2 -nodefaults -no-user-config \
			-display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4 \
			-kernel "$GUESTS/$k" -initrd "$initrd" -append "$(params 2 128)" >"$log" 2>&1
		rc=$?
		[ $rc -eq 33 ] || expect "exit status $rc"
		bad=$(grep '^FAIL ' "$log" | head -5 | tr '\n' ' ')
		[ -z "$bad" ] || expect "guest checks failed: $bad"
		verdict "qemu-tcg-${k#testguest.}"
	done
else
	skip qemu-tcg "qemu-system-x86_64 is not installed"
fi
