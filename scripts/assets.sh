#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetch the guest assets from Debian's archive into the cache (never into
# the repository) and print where they are, as shell assignments:
#   VMLINUZ=...      Debian's stock kernel (linux-image-amd64's current one)
#   MODULES=...      its lib/modules/VERSION/kernel directory
#   BUSYBOX=...      busybox from busybox-static
# Cached by package name and version under ${KEEL_CACHE:-~/.cache/keel}.
set -euo pipefail
CACHE=${KEEL_CACHE:-$HOME/.cache/keel}
mkdir -p "$CACHE/debs"

# find_deb PACKAGE VERSION: the cached .deb of exactly that version, if any.
find_deb() {
	local f
	for f in "$CACHE/debs/$1"_*.deb; do
		[ -f "$f" ] && [ "$(dpkg-deb -f "$f" Version)" = "$2" ] && { echo "$f"; return 0; }
	done
	return 0
}

# fetch PACKAGE: unpack it into $CACHE/PACKAGE_VERSION and print that directory.
fetch() {
	local pkg=$1 ver dir deb
	ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		echo "assets: Debian package $pkg is unknown to apt (run apt-get update?)" >&2
		return 1
	fi
	dir=$CACHE/${pkg}_${ver//:/_}
	if [ ! -f "$dir/.complete" ]; then
		deb=$(find_deb "$pkg" "$ver")
		if [ -z "$deb" ]; then
			(cd "$CACHE/debs" && apt-get download -q "$pkg=$ver" >&2 2>/dev/null) || {
				echo "assets: cannot download $pkg $ver from the Debian archive" >&2
				return 1
			}
			deb=$(find_deb "$pkg" "$ver")
		fi
		rm -rf "$dir"
		mkdir -p "$dir/root"
		dpkg-deb -x "$deb" "$dir/root"
		touch "$dir/.complete"
	fi
	echo "$dir/root"
}

kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "assets: cannot resolve linux-image-amd64" >&2; exit 1; }
kroot=$(fetch "$kpkg")
broot=$(fetch busybox-static)
kver=${kpkg#linux-image-}
echo "VMLINUZ=$kroot/boot/vmlinuz-$kver"
echo "MODULES=$kroot/lib/modules/$kver/kernel"
echo "BUSYBOX=$broot/bin/busybox"
