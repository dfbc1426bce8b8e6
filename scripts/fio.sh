#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build a statically linked fio 3.33 from Debian's source (for guests whose
# busybox initramfs has no shared libraries), cache it under
# ${KEEL_CACHE:-~/.cache/keel}/fio-3.33/fio and print that path (only the
# path on stdout; progress goes to stderr).  Cached: later runs just print it.
set -euo pipefail
VER=3.33
DIR=${KEEL_CACHE:-$HOME/.cache/keel}/fio-$VER
BIN=$DIR/fio
[ -x "$BIN" ] && { echo "$BIN"; exit 0; }

POOL=http://deb.debian.org/debian/pool/main/f/fio
TAR=fio_$VER.orig.tar.gz
DSC=fio_$VER-3.dsc    # Debian's source package of $VER, which lists $TAR's sha256

# Build dependencies: root installs what is missing, sudo otherwise.
missing=()
for p in curl file gcc make libc6-dev zlib1g-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "fio: installing ${missing[*]}" >&2
	sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
echo "fio: fetching $TAR from Debian" >&2
curl -fsSLO "$POOL/$DSC"
curl -fsSLO "$POOL/$TAR"
want=$(awk -v f="$TAR" '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' "$DSC")
have=$(sha256sum "$TAR" | cut -d' ' -f1)
[[ -n $want && $want == "$have" ]] || { echo "fio: $TAR: sha256 $have, but $DSC says '${want}'" >&2; exit 1; }
tar xzf "$TAR"
cd "fio-$VER"

# Static, generic x86-64, no optional library-backed engines (zlib, static,
# if libz.a is there).  io_uring needs no liburing: fio issues the syscalls.
echo "fio: building (static)" >&2
./configure --build-static --disable-native --disable-numa --disable-rdma \
	--disable-rados --disable-rbd --disable-http --disable-gfapi --disable-pmem \
	--disable-libnfs --disable-xnvme --disable-libzbc --disable-tcmalloc \
	--disable-dfs >&2
make -j"$(nproc)" fio >&2

# Check it before caching it.
info=$(file -b fio) version=$(./fio --version) engines=$(./fio --enghelp)
[[ $info == *"statically linked"* ]] || { echo "fio: not static: $info" >&2; exit 1; }
[ "$version" = "fio-$VER" ] || { echo "fio: --version says $version" >&2; exit 1; }
grep -qw io_uring <<<"$engines" || { echo "fio: no io_uring engine" >&2; exit 1; }

mkdir -p "$DIR"
strip -o "$BIN.tmp.$$" fio # 6.2 MB with its symbols, 2.7 MB without: a guest initramfs carries it
mv -f "$BIN.tmp.$$" "$BIN"
echo "$BIN"
