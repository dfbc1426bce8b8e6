#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages keel needs that are missing.
#   scripts/deps.sh build   compiler, libraries, fusermount3 for keel tracefs (make, make run)
#   scripts/deps.sh test    + what the tests use (QEMU for the lab and
#                           cross-checks, clang's fuzzer runtime, iasl, cpio;
#                           SeaBIOS, GRUB, xorriso and mtools for the firmware
#                           tests' boot media, scripts/media.sh)
# Uses apt-get directly as root, sudo otherwise.
set -euo pipefail
build=(gcc make libc6-dev libseccomp-dev liburing-dev zlib1g-dev libfuse3-dev fuse3 pkg-config cpio)
test=(clang libclang-rt-14-dev qemu-system-x86 acpica-tools util-linux bsdutils e2fsprogs
	seabios grub-pc-bin grub-common xorriso mtools)
case ${1:-build} in
build) want=("${build[@]}") ;;
test) want=("${build[@]}" "${test[@]}") ;;
*) echo "usage: scripts/deps.sh build|test" >&2; exit 2 ;;
esac
# The run needs qemu too where /dev/kvm lacks VT-x/AMD-V (the lab).
if [ "${1:-build}" = build ] && ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	want+=(qemu-system-x86)
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
need_lists=0
apt-cache policy linux-image-amd64 2>/dev/null | grep -q 'Candidate: [0-9]' || need_lists=1
[ ${#missing[@]} -eq 0 ] && [ $need_lists = 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "keel: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "keel: installing Debian packages: ${missing[*]:-(package lists only)}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
[ ${#missing[@]} -eq 0 ] || "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
