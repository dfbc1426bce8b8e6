// SPDX-License-Identifier: MIT
/*
 * ACPI tables built by keel: RSDP, RSDT, XSDT, FADT (+FACS), MADT, MCFG and
 * a DSDT describing the PCI root bridge with its INTx routing (_PRT, the
 * PIIX3's interrupt link devices), COM1, the RTC and \_S5.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The value the DSDT's \_S5 package gives SLP_TYP; acpi_pm powers off on it. */
#define ACPI_SLP_TYP_S5 5
#define ACPI_RESET_VALUE 0x06

struct acpi_config {
	unsigned nr_cpus;
	uint64_t mmio64_base; /* 64-bit PCI window, above RAM */
	uint64_t mmio64_size;
};

/*
 * Build all tables into buf (cap bytes), as they will lie at guest-physical
 * base (16-byte aligned).  The RSDP is first, at base.  Returns bytes used,
 * or 0 if cap is too small.
 */
size_t acpi_build(uint8_t *buf, size_t cap, uint64_t base, const struct acpi_config *cfg);

/*
 * The same tables for firmware (SeaBIOS, OVMF) through fw_cfg, as QEMU hands
 * them over: two blobs whose pointer fields hold offsets into the tables blob,
 * and a "table-loader" script (128-byte commands, QEMU's
 * hw/acpi/bios-linker-loader.c) telling the firmware to allocate each blob
 * (the RSDP in the F segment, 16-byte aligned, where it is searched for; the
 * tables in high memory, 64-byte aligned), add the tables blob's address to
 * every pointer field, and then compute every checksum.  The checksum fields
 * in the blobs are 0 until the loader runs.
 */
#define ACPI_FW_RSDP_FILE "etc/acpi/rsdp"
#define ACPI_FW_TABLES_FILE "etc/acpi/tables"
#define ACPI_FW_LOADER_FILE "etc/table-loader"

struct acpi_fw_blobs {
	uint8_t *rsdp;   size_t rsdp_len;    /* fw_cfg file ACPI_FW_RSDP_FILE */
	uint8_t *tables; size_t tables_len;  /* ACPI_FW_TABLES_FILE */
	uint8_t *loader; size_t loader_len;  /* ACPI_FW_LOADER_FILE, a multiple of 128 bytes */
};

/*
 * Build the blobs (malloc'd; free them with acpi_fw_blobs_free).  0, or
 * -EINVAL (nr_cpus not 1-255), -E2BIG (tables over 1 MiB) or -ENOMEM, with
 * *out all zero.
 */
int acpi_build_fw_cfg(const struct acpi_config *cfg, struct acpi_fw_blobs *out);
/* Free the blobs and zero *b; a zeroed *b is fine. */
void acpi_fw_blobs_free(struct acpi_fw_blobs *b);

/* Sum of bytes mod 256 (a valid table sums to 0). */
uint8_t acpi_checksum(const void *p, size_t n);
