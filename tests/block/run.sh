#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Crash consistency of the block stack (file + write-back cache): crashwrite
# writes with FUA and flushes, logging each acknowledgement; it is killed
# (SIGKILL) at random points, and the image must then hold every write
# acknowledged before a completed flush and every acknowledged FUA write.
# A kill loses what only keel's RAM cache held (the host's page cache
# survives it), so this checks that the cache writes back before it
# acknowledges.  Then: a clean run closed normally must leave every write in
# place, and the stack must work inside keel's sandbox.
GROUP=block
. "$(dirname "$0")/../lib.sh"
BIN=$BUILD/tests/crashwrite
ROUNDS=${KEEL_CRASH_ROUNDS:-8}

if [ ! -x "$BIN" ]; then
	fail all "$BIN is not built"
	exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/keel-block.XXXXXX")
trap 'rm -rf "$dir"' EXIT
img=$dir/disk.img

# lines FILE: how many lines FILE has.
lines() { wc -l < "$1" 2>/dev/null || echo 0; }

for round in $(seq 1 "$ROUNDS"); do
	rm -f "$img"
	truncate -s 8M "$img"
	seed=$((RANDOM * 32768 + RANDOM))
	log=$LOGS/crash$round.log
	"$BIN" write "$img" "$seed" > "$log" 2> "$log.stderr" &
	pid=$!
	# Kill it once it has acknowledged a random number of writes (it runs until killed).
	want=$((200 + RANDOM % 5000))
	for _ in $(seq 1 600); do
		[ "$(lines "$log")" -ge "$want" ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	acks=$(lines "$log")
	[ "$acks" -gt 0 ] || expect "nothing was acknowledged ($(head -c 200 "$log.stderr"))"
	grep -q '^F ' "$log" || [ "$acks" -lt 400 ] || expect "no flush completed in $acks acknowledgements"
	out=$("$BIN" verify "$img" "$log" 2>&1) || expect "$(echo "$out" | head -3 | tr '\n' ' ')"
	PASS_DETAIL="seed $seed: $(echo "$out" | tail -1)"
	verdict "kill-round-$round" "$log"
done

# A run that ends normally: close() writes everything back.
rm -f "$img"
truncate -s 8M "$img"
log=$LOGS/clean.log
"$BIN" write "$img" 4242 20000 > "$log" 2> "$log.stderr" || expect "status $? ($(head -c 200 "$log.stderr"))"
tail -1 "$log" | grep -qx C || expect "no close line"
out=$("$BIN" verify "$img" "$log" 2>&1) || expect "$(echo "$out" | head -3 | tr '\n' ' ')"
PASS_DETAIL=$(echo "$out" | tail -1)
verdict clean-close "$log"

# Inside keel's sandbox (seccomp allowlist, namespaces): threads started afterwards, I/O, close.
rm -f "$img"
truncate -s 8M "$img"
out=$("$BIN" sandbox "$img" 2>&1) || expect "status $?: $(echo "$out" | head -2 | tr '\n' ' ')"
PASS_DETAIL=$(echo "$out" | tail -1)
verdict sandboxed-io
