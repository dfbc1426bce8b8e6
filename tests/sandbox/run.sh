#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Least privilege: keel as an unprivileged user with only a passed /dev/kvm
# descriptor boots the test guest; once running it has no capabilities,
# no_new_privs and a seccomp filter; a forbidden system call stops it with
# a message naming the call.
GROUP=sandbox
. "$(dirname "$0")/../lib.sh"

if ! kvm_usable; then
	skip all "/dev/kvm is not usable here"
	exit 0
fi

# A directory the unprivileged user can read, whatever the checkout's permissions.
dir=$(mktemp -d /tmp/keel-sandbox.XXXXXX)
chmod 755 "$dir"
cp "$KEEL" "$GUESTS/testguest.elf" "$DRIVE" "$dir/"
chmod 755 "$dir"/*
# Disks: one the unprivileged user may write, one it may only read.
truncate -s 4M "$dir/rw.img" "$dir/ro.img"
chmod 666 "$dir/rw.img"
chmod 644 "$dir/ro.img"
trap 'rm -rf "$dir"' EXIT
NOBODY=65534

as_nobody() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups --inh-caps=-all -- "$@"
	else
		"$@" # already unprivileged
	fi
}

if [ "$(id -u)" -ne 0 ] || command -v setpriv >/dev/null; then
	# 1. Unprivileged, with /dev/kvm handed over as descriptor 3 (opened by us, the parent).
	log=$LOGS/unprivileged.log
	as_nobody "$dir/drive" -t 30 -l "$log" -x READY \
		-e 'grep -E "^(Uid|CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):" /proc/$DRIVE_PID/status' \
		-s 'ok\n' -x 'ECHO:ok' -- "$dir/keel" run --kvm-fd 3 --kernel "$dir/testguest.elf" --memory 32M \
		--disk "path=$dir/rw.img" --disk "path=$dir/ro.img,readonly" --rng \
		--debug-exit --cmdline keeltest=echo 3<>/dev/kvm > "$LOGS/unprivileged.status"
	rc=$?
	[ $rc -eq 33 ] || expect "exit status $rc, expected 33"
	st=$LOGS/unprivileged.status
	grep -qE '^CapEff:\s+0+$' "$st" || expect "effective capabilities left"
	grep -qE '^CapPrm:\s+0+$' "$st" || expect "permitted capabilities left"
	grep -qE '^NoNewPrivs:\s+1$' "$st" || expect "no_new_privs not set"
	grep -qE '^Seccomp:\s+2$' "$st" || expect "no seccomp filter"
	verdict unprivileged-with-kvm-fd

	# An image the user cannot write: one line saying how to use it anyway.
	out=$(as_nobody "$dir/keel" run --kvm-fd 3 --kernel "$dir/testguest.elf" --memory 32M --disk "path=$dir/ro.img" 2>&1 3<>/dev/kvm)
	rc=$?
	[ $rc -eq 1 ] || expect "exit status $rc, expected 1"
	[[ "$out" == *"ro.img: Permission denied (to use it read-only, add ,readonly)"* ]] || expect "message: $out"
	verdict disk-not-writable

	# 2. Without the descriptor the unprivileged user cannot open /dev/kvm: a clear message.
	if [ "$(stat -c %a /dev/kvm)" = 600 ] || [ "$(stat -c %a /dev/kvm)" = 660 ]; then
		out=$(as_nobody "$dir/keel" run --kernel "$dir/testguest.elf" --memory 32M 2>&1)
		rc=$?
		[ $rc -eq 1 ] || expect "exit status $rc"
		[[ "$out" == *"/dev/kvm: permission denied"*"--kvm-fd"* ]] || expect "message: $out"
		verdict no-kvm-access-message
	else
		skip no-kvm-access-message "/dev/kvm is world-accessible here"
	fi
else
	skip unprivileged-with-kvm-fd "not root and setpriv(1) missing: cannot switch users"
fi

# 3. A forbidden system call after set-up is refused, with its name.
out=$("$KEEL" run --name sb-violation --kernel "$GUESTS/testguest.elf" --memory 32M --cmdline keeltest=echo \
	--debug-sandbox-violation </dev/null 2>&1)
rc=$?
[ $rc -eq 1 ] || expect "exit status $rc, expected 1"
[[ "$out" == *"sandbox: forbidden system call openat"* ]] || expect "message: $out"
# Stopped by the filter, keel still removes its tracing socket.
rundir=${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/keel}
rundir=${rundir:-/tmp/keel-$(id -u)}
[ -e "$rundir/sb-violation.sock" ] && expect "$rundir/sb-violation.sock left behind"
verdict forbidden-syscall-stops-keel

# 4. With --sandbox off the same call is not refused (the filter is what stopped it).
log=$LOGS/sandbox-off.log
"$DRIVE" -t 30 -l "$log" -x READY -s 'x\n' -- "$KEEL" run --sandbox off --kernel "$GUESTS/testguest.elf" \
	--memory 32M --debug-exit --cmdline keeltest=echo --debug-sandbox-violation >/dev/null
rc=$?
[ $rc -eq 33 ] || expect "exit status $rc, expected 33"
! grep -q 'forbidden system call' "$log" || expect "refused without a sandbox"
verdict sandbox-off-control

# 5. Namespaces: keel sees an empty root (when the host allows user namespaces).
log=$LOGS/namespaces.log
"$DRIVE" -t 30 -l "$log" -x READY -e 'test "$(readlink /proc/$DRIVE_PID/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" && test "$(readlink /proc/$DRIVE_PID/ns/net)" != "$(readlink /proc/self/ns/net)"' \
	-s 'x\n' -- "$KEEL" run --kernel "$GUESTS/testguest.elf" --memory 32M --disk "path=$dir/rw.img" --rng \
	--debug-exit --cmdline keeltest=echo >/dev/null
rc=$?
if [ $rc -eq 125 ] && [ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null)" = 0 ]; then
	skip private-namespaces "user namespaces are disabled on this host"
else
	[ $rc -eq 33 ] || expect "exit status $rc (125: keel shares the host's mount or network namespace)"
	verdict private-namespaces
fi
