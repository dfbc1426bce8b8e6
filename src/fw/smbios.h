// SPDX-License-Identifier: MIT
/*
 * SMBIOS tables naming keel, for firmware through fw_cfg as QEMU hands them
 * over: a 2.1 ("_SM_", 32-bit) entry point and the structure table, in two
 * files.  SeaBIOS (smbios_romfile_setup) copies the structures into its own
 * memory, writes their address into the entry point and fixes its checksums;
 * it adds no type 0 of its own, since the structures carry one.
 *
 * Structures (SMBIOS 2.8), with QEMU's handles: type 0 BIOS (0x0000), 1
 * system (0x0100), 3 chassis (0x0300), 4 processor per vCPU (0x0400 + i), 16
 * physical memory array (0x1000), 17 memory device per 16 GiB of RAM (0x1100
 * + i), 19 memory array mapped address per RAM range (0x1300 + i: below 4 GiB
 * from 0, above it from 4 GiB), 32 system boot information (0x2000) and 127
 * end of table (0x7f00).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SMBIOS_ANCHOR_FILE "etc/smbios/smbios-anchor"
#define SMBIOS_TABLES_FILE "etc/smbios/smbios-tables"

struct smbios_config {
	unsigned nr_cpus;      /* 1-255 */
	uint64_t ram_below_4g; /* RAM from address 0: more than 0, at most 4 GiB */
	uint64_t ram_above_4g; /* RAM from 4 GiB, or 0 */
	/*
	 * 16 bytes in RFC 4122 order (as printed: 00112233-4455-6677-...), stored
	 * in type 1 with its first three fields little-endian (SMBIOS 2.6+); NULL
	 * for none (all zero).
	 */
	const uint8_t *uuid;
};

/*
 * Build the entry point (*anchor, for SMBIOS_ANCHOR_FILE: 31 bytes, its table
 * address 0 and its checksums valid) and the structures (*tables, for
 * SMBIOS_TABLES_FILE), both malloc'd.  0, or -EINVAL (a config out of range),
 * -E2BIG (structures over 64 KiB, or more than 256 memory devices) or
 * -ENOMEM, with the outputs NULL and 0.
 */
int smbios_build(const struct smbios_config *c, uint8_t **anchor, size_t *anchor_len, uint8_t **tables,
		 size_t *tables_len);
