#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tracing through a real FUSE mount: keel tracefs over keel processes found
# in a private runtime directory, driven with echo, cat, grep and tail.
# `keel trace selftest` (the machinery of keel run, emitter threads at full
# rate, no VM) covers overflow in both modes, run-time settings, bad writes
# and concurrent readers; the test guest under keel run covers VM-exit
# events, boot milestones, and a VM exiting while a reader has trace_pipe
# open.  No test depends on timing: waits are bounded polls for a state.
# The tests with a guest run where /dev/kvm is usable and, elsewhere, in
# the lab (tests/lab/in-lab.sh trace-vm; TRACE_PART=vm).
GROUP=trace
. "$(dirname "$0")/../lib.sh"

if [ ! -e /dev/fuse ]; then
	skip all "/dev/fuse is missing: FUSE is not available here"
	exit 0
fi
if ! command -v fusermount3 >/dev/null && [ "$(id -u)" != 0 ]; then
	skip all "fusermount3 is not installed (Debian package fuse3)"
	exit 0
fi

tmp=$(mktemp -d /tmp/keel-trace-test.XXXXXX)
export XDG_RUNTIME_DIR=$tmp/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
mnt=$tmp/mnt
mkdir "$mnt"
bg_pids=()
cleanup() {
	fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# is_mounted DIR: something is mounted on DIR (no mountpoint(1) in the lab's busybox).
is_mounted() { awk -v d="$1" '$2 == d { found = 1 } END { exit !found }' /proc/self/mounts; }

# wait_until SECONDS COMMAND...: poll until COMMAND succeeds; false if it never did.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt "$end" ] || return 1
		sleep 0.05
	done
}

"$KEEL" tracefs "$mnt" 2>"$LOGS/tracefs.log" &
tfs=$!
bg_pids+=($tfs)
if ! wait_until 30 is_mounted "$mnt"; then
	skip all "cannot mount a FUSE file system here: $(tail -1 "$LOGS/tracefs.log")"
	exit 0
fi

# A selftest process: st_start NAME ARGS...; st_cmd COMMAND; st_quit.  Output in $tmp/NAME.out.
st_start() {
	st_name=$1
	shift
	rm -f "$tmp/$st_name.ctl"
	mkfifo "$tmp/$st_name.ctl"
	"$KEEL" trace selftest --name "$st_name" "$@" <"$tmp/$st_name.ctl" >"$tmp/$st_name.out" 2>"$LOGS/$st_name.err" &
	st_pid=$!
	bg_pids+=($st_pid)
	exec {st_fd}>"$tmp/$st_name.ctl"
	wait_until 30 grep -qs READY "$tmp/$st_name.out" || expect "selftest $st_name did not start"
	d=$mnt/$st_name
}
st_cmd() { echo "$1" >&"$st_fd"; }
st_quit() {
	echo quit >&"$st_fd"
	exec {st_fd}>&-
	wait "$st_pid"
	st_status=$?
}
st_done() { grep -qs DONE "$tmp/$st_name.out"; }
# stat COLUMN ROW: a number from the stats file (columns: written entries consumed overrun dropped cleared).
stat() {
	local col
	case $1 in written) col=5 ;; entries) col=6 ;; consumed) col=7 ;; overrun) col=8 ;; dropped) col=9 ;; cleared) col=10 ;; esac
	awk -v row="$2" -v c=$col '$1 == row { print $c }' "$d/stats"
}
drained() { [ "$(stat entries total)" = 0 ]; }
# final VALUE: from the selftest's last STATS line.
final() { grep STATS "$tmp/$st_name.out" | tail -1 | tr ' ' '\n' | sed -n "s/^$1=//p"; }

host_tests() {
	# 1. A process appears as a directory, with the tracefs layout, and disappears when it exits.
	st_start appear
	ls "$mnt" | grep -qx appear || expect "appear is not listed: $(ls "$mnt" | tr '\n' ' ')"
	for f in README tracing_on trace trace_pipe stats buffer_size_kb buffer_total_size_kb set_event available_events \
		events/enable events/vcpu/enable events/vcpu/exit/enable events/vcpu/exit/format events/block/complete/format \
		events/cache/evict/id events/virtio/kick/enable options/overwrite; do
		[ -e "$d/$f" ] || expect "no $f"
	done
	grep -q 'field:u64 latency_ns' "$d/events/block/complete/format" || expect "block:complete format lacks latency_ns"
	grep -q '^print fmt: "reason=%s addr=0x%llx' "$d/events/vcpu/exit/format" || expect "vcpu:exit format: $(tail -3 "$d/events/vcpu/exit/format")"
	[ "$(wc -l <"$d/available_events")" -ge 14 ] || expect "available_events has $(wc -l <"$d/available_events") events"
	[ -S "$XDG_RUNTIME_DIR/keel/appear.sock" ] || expect "no runtime socket"
	st_quit
	ls "$mnt" | grep -qx appear && expect "still listed after it exited"
	[ -e "$XDG_RUNTIME_DIR/keel/appear.sock" ] && expect "socket left behind"
	[ -e "$mnt/appear" ] && expect "still reachable by name after it exited"
	# A killed process leaves its socket; the next listing skips it and removes it.
	st_start killed
	kill -9 "$st_pid"
	wait "$st_pid" 2>/dev/null
	exec {st_fd}>&-
	[ -S "$XDG_RUNTIME_DIR/keel/killed.sock" ] || expect "SIGKILL left no socket to test with"
	ls "$mnt" | grep -qx killed && expect "a killed process is listed"
	[ -e "$XDG_RUNTIME_DIR/keel/killed.sock" ] && expect "its stale socket was not removed"
	# A new process under a name that was in use: found by name alone, without a listing first.
	st_start reuse
	first=$(grep -o 'pid [0-9]*' "$d/stats")
	st_quit
	st_start reuse
	second=$(grep -o 'pid [0-9]*' "$d/stats")
	[ -n "$second" ] && [ "$first" != "$second" ] || expect "name reused: stats showed '$first' then '$second'"
	st_quit
	verdict process-appears-and-disappears

	# 2. Enabling and disabling with echo; set_event; reads show the state; writes take effect at once.
	st_start ctl --events ''
	[ "$(cat "$d/events/vcpu/exit/enable")" = 0 ] || expect "vcpu:exit enabled at start"
	echo 1 >"$d/events/vcpu/exit/enable" || expect "echo 1 > enable failed"
	[ "$(cat "$d/events/vcpu/exit/enable")" = 1 ] || expect "enable does not read 1"
	[ "$(cat "$d/set_event")" = vcpu:exit ] || expect "set_event: $(cat "$d/set_event")"
	echo 1 >"$d/events/block/enable"
	[ "$(cat "$d/events/block/enable")" = 1 ] || expect "block group enable"
	grep -qx block:submit "$d/set_event" && grep -qx block:complete "$d/set_event" || expect "group enable not in set_event"
	echo '!block:submit' >>"$d/set_event"
	[ "$(cat "$d/events/block/enable")" = X ] || expect "mixed group reads $(cat "$d/events/block/enable"), not X"
	[ "$(cat "$d/events/block/submit/enable")" = 0 ] || expect "!block:submit did not disable it"
	echo 'cache:*' >"$d/set_event"
	[ "$(cat "$d/set_event" | tr '\n' ' ')" = "cache:hit cache:miss cache:evict cache:writeback cache:bypass " ] ||
		expect "> set_event did not replace: $(cat "$d/set_event" | tr '\n' ' ')"
	echo >"$d/set_event"
	[ -z "$(cat "$d/set_event")" ] || expect "echo > set_event left $(cat "$d/set_event")"
	echo 1 >"$d/events/enable"
	[ "$(cat "$d/events/enable")" = 1 ] || expect "events/enable"
	echo 0 >"$d/events/enable"
	[ "$(cat "$d/tracing_on")" = 1 ] || expect "tracing_on is not 1 at start"
	echo 0 >"$d/tracing_on"
	[ "$(cat "$d/tracing_on")" = 0 ] || expect "tracing_on did not go to 0"
	echo 1 >"$d/tracing_on"
	verdict enable-disable-with-echo

	# 3. Bad writes: EINVAL, and nothing changes.
	echo 'test:seq' >"$d/set_event"
	before=$(cat "$d/set_event" "$d/tracing_on" "$d/buffer_size_kb" "$d/options/overwrite" "$d/events/test/seq/enable")
	for w in "2:tracing_on" "on:tracing_on" "nosuch:event:set_event" "vcpu:exit nosuch:set_event" "2:events/vcpu/exit/enable" \
		"x:events/block/enable" "99999999:buffer_size_kb" "1:buffer_size_kb" "abc:buffer_size_kb" "3:options/overwrite" \
		"junk:trace"; do
		val=${w%:*} file=${w##*:}
		[ "$file" = set_event ] && val=${w%:set_event}
		err=$( (echo "$val" >"$d/$file") 2>&1)
		[[ "$err" == *"Invalid argument"* ]] || expect "'$val' > $file: '$err', expected Invalid argument"
	done
	err=$( (echo 1 >"$d/stats") 2>&1) && expect "stats was writable"
	after=$(cat "$d/set_event" "$d/tracing_on" "$d/buffer_size_kb" "$d/options/overwrite" "$d/events/test/seq/enable")
	[ "$before" = "$after" ] || expect "a bad write changed something: '$before' -> '$after'"
	st_quit
	verdict bad-writes-einval-change-nothing

	# 4. Overflow, overwrite mode: the newest records are kept, the rest counted as overrun.
	st_start ow --threads 2 --records 5000 --buffer-size 16K
	st_cmd go
	wait_until 60 st_done || expect "emitters did not finish"
	[ "$(cat "$d/buffer_size_kb")" = "16 (max 16)" ] || expect "buffer_size_kb: $(cat "$d/buffer_size_kb")"
	for t in emit0 emit1; do
		[ "$(stat written $t)/$(stat entries $t)/$(stat overrun $t)/$(stat dropped $t)" = 5000/256/4744/0 ] ||
			expect "$t: written/entries/overrun/dropped $(stat written $t)/$(stat entries $t)/$(stat overrun $t)/$(stat dropped $t)"
	done
	first=$(grep -m1 'emitter=0 ' "$d/trace" | grep -o 'n=[0-9]*')
	last=$(grep 'emitter=0 ' "$d/trace" | tail -1 | grep -o 'n=[0-9]*')
	[ "$first/$last" = n=4744/n=4999 ] || expect "snapshot of emit0 holds $first..$last, expected the newest 256"
	grep -q '^# lost (overwritten or dropped, see stats): 9488$' "$d/trace" || expect "trace header does not count the loss"
	cmp -s <(cat "$d/trace") <(cat "$d/trace") || expect "two reads of trace differ"
	st_quit
	verdict overflow-overwrite-mode

	# 5. Overflow, stop mode, switched at run time: the oldest are kept, the rest counted as dropped.
	st_start stop --threads 2 --records 5000 --buffer-size 16K
	echo 0 >"$d/options/overwrite"
	[ "$(cat "$d/options/overwrite")" = 0 ] || expect "options/overwrite did not switch"
	st_cmd go
	wait_until 60 st_done || expect "emitters did not finish"
	[ "$(cat "$d/per_thread/emit0/overwrite")" = 0 ] || expect "emit0 not in stop mode"
	for t in emit0 emit1; do
		[ "$(stat written $t)/$(stat entries $t)/$(stat overrun $t)/$(stat dropped $t)" = 5000/256/0/4744 ] ||
			expect "$t: written/entries/overrun/dropped $(stat written $t)/$(stat entries $t)/$(stat overrun $t)/$(stat dropped $t)"
	done
	last=$(grep 'emitter=1 ' "$d/per_thread/emit1/trace" | tail -1 | grep -o 'n=[0-9]*')
	[ "$last" = n=255 ] || expect "emit1 kept up to $last, expected n=255"
	cat "$d/trace_pipe" >"$tmp/stop.pipe" &
	pipe=$!
	wait_until 30 drained || expect "trace_pipe did not drain the buffers"
	st_quit
	wait $pipe || expect "cat trace_pipe status $?"
	[ "$(grep -c ' test:seq: ' "$tmp/stop.pipe")" = 512 ] || expect "trace_pipe gave $(grep -c ' test:seq: ' "$tmp/stop.pipe") records, expected 512"
	[ "$(final consumed)/$(final dropped)/$(final written)" = 512/9488/10000 ] || expect "final stats $(grep STATS "$tmp/stop.out" | tail -1)"
	verdict overflow-stop-mode-and-drain

	# 6. buffer_size_kb: writable up to the reserve, rounded to a power of two, empties the buffers (counted).
	st_start size --threads 1 --records 1000 --buffer-size 64K
	[ "$(cat "$d/buffer_size_kb")" = "64 (max 64)" ] || expect "buffer_size_kb: $(cat "$d/buffer_size_kb")"
	echo 20 >"$d/buffer_size_kb" || expect "echo 20 failed"
	[ "$(cat "$d/buffer_size_kb")" = "16 (max 64)" ] || expect "20 KiB did not round to 16: $(cat "$d/buffer_size_kb")"
	st_cmd go
	wait_until 60 st_done || expect "emitters did not finish"
	[ "$(stat entries emit0)" = 256 ] || expect "entries $(stat entries emit0) with a 16 KiB buffer"
	echo 32 >"$d/buffer_size_kb"
	[ "$(stat entries emit0)/$(stat cleared emit0)/$(stat overrun emit0)" = 0/256/744 ] ||
		expect "after resize: entries/cleared/overrun $(stat entries emit0)/$(stat cleared emit0)/$(stat overrun emit0)"
	[ "$(cat "$d/buffer_total_size_kb")" -ge 32 ] || expect "buffer_total_size_kb $(cat "$d/buffer_total_size_kb")"
	st_quit
	verdict buffer-size-kb

	# 7. Concurrent readers (trace_pipe x3, trace, stats) while 4 threads emit at full rate, both modes:
	#    no record twice, none malformed, and delivered + overrun + dropped == written exactly.
	for mode in overwrite stop; do
		st_start "conc-$mode" --threads 4 --records 2000000 --buffer-size 64K --mode $mode
		rp=()
		for i in 1 2 3; do
			cat "$d/trace_pipe" >"$tmp/conc.$mode.$i" 2>"$tmp/conc.$mode.$i.err" &
			rp+=($!)
		done
		(for i in $(seq 10); do cat "$d/trace" "$d/stats" "$d/per_thread/emit0/trace" >/dev/null 2>&1; done) &
		sp=$!
		st_cmd go
		wait_until 120 st_done || expect "emitters did not finish"
		wait $sp
		wait_until 120 drained || expect "readers did not drain the buffers"
		st_quit
		for p in "${rp[@]}"; do wait "$p" || expect "a reader ended with status $?"; done
		cat "$tmp"/conc.$mode.[123] >"$tmp/conc.$mode.all"
		got=$(grep -c ' test:seq: ' "$tmp/conc.$mode.all")
		[ "$got" = "$(final consumed)" ] || expect "$mode: readers got $got records, stats say $(final consumed) consumed"
		sum=$(($(final consumed) + $(final overrun) + $(final dropped) + $(final cleared) + $(final entries)))
		[ "$sum" = 8000000 ] && [ "$(final written)" = 8000000 ] || expect "$mode: $(grep STATS "$tmp/conc-$mode.out" | tail -1)"
		[ "$mode" = stop ] && [ "$(final overrun)" != 0 ] && expect "stop mode overran"
		[ "$mode" = overwrite ] && [ "$(final dropped)" != 0 ] && expect "overwrite mode dropped"
		dups=$(grep -o 'emitter=[0-9]* n=[0-9]*' "$tmp/conc.$mode.all" | sort | uniq -d | wc -l)
		[ "$dups" = 0 ] || expect "$mode: $dups records delivered twice"
		bad=$(grep -cvE '^ *emit[0-3]-[0-9]+ \[[0-9]{3}\] ( *[0-9]+\.[0-9]{6}: test:seq: emitter=[0-3] n=[0-9]+ check=0x[0-9a-f]+|\[LOST [0-9]+ EVENTS: [a-z ,]+\])$' "$tmp/conc.$mode.all")
		[ "$bad" = 0 ] || expect "$mode: $bad malformed lines, e.g. $(grep -vE 'test:seq|LOST' "$tmp/conc.$mode.all" | head -1)"
		for i in 1 2 3; do
			unordered=$(grep -o 'emitter=[0-9]* n=[0-9]*' "$tmp/conc.$mode.$i" | tr -d 'emitern=' |
				awk '{ if (($1 in last) && $2 <= last[$1]) bad++; last[$1] = $2 } END { print bad + 0 }')
			[ "$unordered" = 0 ] || expect "$mode: reader $i got a thread's records out of order"
		done
		[ "$mode" = overwrite ] && ! grep -q 'LOST' "$tmp/conc.$mode.all" && [ "$(final overrun)" != 0 ] &&
			expect "overruns were not reported in trace_pipe"
		PASS_DETAIL="$got delivered, $(final overrun) overrun, $(final dropped) dropped of 8000000"
		verdict "concurrent-readers-full-rate-$mode"
	done

	# 8. tail -f trace_pipe follows the stream.
	st_start tailf --threads 1 --records 3000 --buffer-size 64K
	tail -f "$d/trace_pipe" >"$tmp/tail.out" 2>&1 &
	tp=$!
	bg_pids+=($tp)
	st_cmd go
	wait_until 60 st_done || expect "emitters did not finish"
	wait_until 60 grep -q 'emitter=0 n=2999 ' "$tmp/tail.out" || expect "tail -f never showed the last record ($(wc -l <"$tmp/tail.out") lines)"
	kill $tp
	grep -q 'truncated' "$tmp/tail.out" && expect "tail saw the file truncated"
	st_quit
	verdict tail-f-trace-pipe

	# 9. keel trace record and keel trace report.
	st_start rec --threads 2 --records 1000 --buffer-size 64K
	"$KEEL" trace record -o "$tmp/rec.trace" rec 2>"$tmp/rec.log" &
	rec=$!
	wait_until 30 [ -s "$tmp/rec.trace" ] || expect "record wrote nothing"
	st_cmd go
	wait_until 60 st_done || expect "emitters did not finish"
	st_quit
	wait $rec || expect "record status $?"
	grep -q '^keel trace record: 2000 records from rec' "$tmp/rec.log" || expect "record said: $(cat "$tmp/rec.log")"
	[ "$(grep -c ' test:seq: ' "$tmp/rec.trace")" = 2000 ] || expect "file has $(grep -c ' test:seq: ' "$tmp/rec.trace") records"
	"$KEEL" trace report "$tmp/rec.trace" >"$tmp/report.txt" 2>&1 || expect "report status $?"
	grep -qE 'test:seq +2000' "$tmp/report.txt" || expect "report lacks the event count: $(head -5 "$tmp/report.txt" | tr '\n' ' ')"
	grep -q 'written 2000, overwritten before read 0, dropped (buffer full) 0' "$tmp/report.txt" || expect "report lacks the totals"
	grep -q '<svg ' "$tmp/rec.trace.svg" || expect "no SVG histogram"
	verdict record-and-report
}

# The parts with a guest: where /dev/kvm is usable, else in the lab (TRACE_PART=vm there).
vm_tests() {
	# 10. The test guest under keel run: VM-exit events, boot milestones, trace_pipe open while the VM exits.
	v=$mnt/trvm
	log=$LOGS/vm.log
	"$DRIVE" -t 120 -l "$log" -x READY -e "
		set -e
		test -d $v
		echo 1 > $v/events/vcpu/exit/enable
		for i in \$(seq 600); do grep -q 'reason=io' $v/trace && break; sleep 0.05; done
		cat $v/trace > $tmp/vm.snap1
		echo 0 > $v/events/vcpu/exit/enable
		cat $v/trace > $tmp/vm.snap2; cat $v/trace > $tmp/vm.snap3
		cat $v/stats > $tmp/vm.stats
		$KEEL trace report --no-plot $v > $tmp/vm.dirreport 2>&1
		(cat $v/trace_pipe > $tmp/vm.pipe 2>$tmp/vm.pipe.err; echo \$? > $tmp/vm.pipe.rc) >/dev/null 2>&1 &
		$KEEL trace record -o $tmp/vm.trace trvm >/dev/null 2>$tmp/vm.rec.log &
		echo 1 > $v/events/vcpu/exit/enable
		for i in \$(seq 600); do grep -q 'reason=io' $tmp/vm.pipe $tmp/vm.trace 2>/dev/null && break; sleep 0.05; done
	" -s 'bye\n' -x 'ECHO:bye' -- "$KEEL" run --name trvm --trace boot,component --kernel "$GUESTS/testguest.elf" \
		--memory 32M --debug-exit --cmdline keeltest=echo >/dev/null
	rc=$?
	[ $rc -eq 33 ] || expect "keel run status $rc (125: the tracefs steps failed, see $log)"
	grep -q 'vcpu:exit: reason=io addr=0x3fd size=1 write=0 handle_ns=[0-9]' "$tmp/vm.snap1" ||
		expect "no UART status-register exit in trace"
	grep -q 'boot:milestone: what=sandbox_up since_start_us=[0-9]' "$tmp/vm.snap1" || expect "no sandbox_up milestone"
	grep -q 'boot:milestone: what=vcpus_started' "$tmp/vm.snap1" || expect "no vcpus_started milestone"
	grep -q 'component:start: name=vcpu id=0' "$tmp/vm.snap1" || expect "no vcpu component start"
	grep -q 'component:start: name=uart-com1 id=' "$tmp/vm.snap1" || expect "no device component start"
	cmp -s "$tmp/vm.snap2" "$tmp/vm.snap3" || expect "trace read twice differs with events off"
	grep -qE '^vcpu0 ' "$tmp/vm.stats" || expect "no vcpu0 row in stats"
	grep -qE '^ +io +[0-9]+ ' "$tmp/vm.dirreport" || expect "report of the tracefs dir lacks io exits: $(head -12 "$tmp/vm.dirreport" | tr '\n' ' ')"
	verdict vm-exit-events "$log"

	# The VM exited while cat trace_pipe and keel trace record were reading: both got EOF.
	wait_until 60 [ -s "$tmp/vm.pipe.rc" ] || expect "cat trace_pipe did not end when the VM exited"
	[ "$(cat "$tmp/vm.pipe.rc" 2>/dev/null)" = 0 ] || expect "cat trace_pipe status $(cat "$tmp/vm.pipe.rc" 2>/dev/null): $(cat "$tmp/vm.pipe.err")"
	grep -q 'vcpu:exit: reason=io' "$tmp/vm.pipe" "$tmp/vm.trace" || expect "trace_pipe and record got no exits"
	grep -q 'component:stop: name=vcpu id=0 status=0' "$tmp/vm.pipe" "$tmp/vm.trace" || expect "no vcpu stop before EOF"
	wait_until 60 grep -q 'the VM exited' "$tmp/vm.rec.log" || expect "trace record did not end with the VM: $(cat "$tmp/vm.rec.log")"
	"$KEEL" trace report --no-plot "$tmp/vm.trace" >"$tmp/vm.report" 2>&1 || expect "report status $?"
	grep -q 'VM exits by reason' "$tmp/vm.report" || expect "report of the recording lacks exit reasons"
	ls "$mnt" | grep -qx trvm && expect "trvm still listed"
	[ -e "$XDG_RUNTIME_DIR/keel/trvm.sock" ] && expect "the sandboxed keel left its socket behind"
	is_mounted "$mnt" && kill -0 $tfs 2>/dev/null || expect "keel tracefs died"
	verdict vm-exits-while-reading

	# 11. The block stack and virtio traced: the blkbench test guest drives a
	# virtio-blk disk (cache=writeback over the file layer) while keel trace record
	# reads; the recording has both layers' requests with latencies, kicks and
	# completions, and the report has per-layer latency percentiles.
	{
		img=$tmp/blk.img
		head -c $((4 << 20)) /dev/urandom > "$img"
		log=$LOGS/vm-blk.log
		"$KEEL" run --name trblk --trace virtio,block,cache --kernel "$GUESTS/testguest.elf" --memory 64M --debug-exit \
			--disk "path=$img,cache=writeback,cache-size=1M" \
			--cmdline "keeltest=blkbench keeltest.blk.ops=300 keeltest.blk.warm_ms=1000" >"$log" 2>&1 &
		vm=$!
		bg_pids+=($vm)
		wait_until 30 [ -S "$XDG_RUNTIME_DIR/keel/trblk.sock" ] || expect "trblk never appeared"
		"$KEEL" trace record -o "$tmp/blk.trace" trblk 2>"$tmp/blk.rec.log"
		wait $vm
		rc=$?
		[ $rc -eq 33 ] || expect "keel run status $rc, expected 33 (see $log)"
		t=$tmp/blk.trace
		grep -qE 'block:submit: layer=cache op=(read|write) ' "$t" || expect "no cache-layer submits"
		grep -qE 'block:submit: layer=file op=(read|write) ' "$t" || expect "no file-layer submits"
		grep -qE 'block:complete: layer=file op=(read|write) tag=0x[0-9a-f]+ status=0 latency_ns=[1-9]' "$t" ||
			expect "no file-layer completion with a latency"
		grep -qE 'virtio:kick: dev=blk0 queue=0' "$t" || expect "no virtio kicks"
		grep -qE 'virtio:complete: dev=blk0 queue=0 id=[0-9]+ len=' "$t" || expect "no virtio completions"
		grep -qE 'cache:(miss|hit): offset=' "$t" || expect "no cache hits or misses"
		"$KEEL" trace report --no-plot "$t" >"$tmp/blk.report" 2>&1 || expect "report status $?"
		grep -qE '^ *file +(read|write) +[0-9]+' "$tmp/blk.report" || expect "report lacks file-layer latencies: $(grep -A6 -i latenc "$tmp/blk.report" | head -8 | tr '\n' '|')"
		verdict block-and-virtio-events "$log"
	}
}

case ${TRACE_PART:-} in
vm) vm_tests ;;
*)
	host_tests
	kvm_usable && vm_tests
	;;
esac
