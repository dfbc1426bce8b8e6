#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Project rules that can be checked mechanically.
GROUP=source
. "$(dirname "$0")/../lib.sh"

# One SPDX line per file, in every tracked source file.
files=$(git ls-files '*.c' '*.h' '*.S' '*.sh' '*.ld' '*.mk' Makefile .ci/run 2>/dev/null)
[ -n "$files" ] || files=$(find src tests bench scripts -type f \( -name '*.[chS]' -o -name '*.sh' \))
spdx='SPDX''-License-Identifier:' # split so that this file has one
for f in $files; do
	n=$(grep -c "$spdx" "$f")
	[ "$n" -eq 1 ] || expect "$f has $n SPDX lines"
done
verdict spdx-one-line-per-file

# gcc (this build) and clang both build keel with -Wall -Wextra -Werror.
if command -v clang >/dev/null; then
	if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory CC=clang BUILD=build-clang \
		build-clang/keel build-clang/keel-devtest >"$LOGS/clang.log" 2>&1; then
		pass clang-builds-warning-free
	else
		fail clang-builds-warning-free "see $LOGS/clang.log"
	fi
else
	skip clang-builds-warning-free "clang is not installed"
fi

# Every guest-visible struct has a static_assert on its size.
for s in acpi_header acpi_rsdp acpi_gas acpi_fadt acpi_facs madt_lapic madt_ioapic madt_iso madt_lapic_nmi \
	mcfg_allocation hvm_start_info hvm_modlist_entry hvm_memmap_table_entry boot_params boot_e820_entry; do
	grep -rqE "static_assert\(sizeof\((struct )?$s\)" src || expect "no size assertion for $s"
done
verdict guest-structs-size-asserted

# The README documents every `keel run` option.
for o in $("$KEEL" run --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
	[ "$o" = --help ] || grep -q -- "$o" README.md || expect "README lacks $o"
done
verdict readme-documents-options
