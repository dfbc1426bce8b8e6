// SPDX-License-Identifier: MIT
/*
 * ACPI tables built by keel: RSDP, RSDT, XSDT, FADT (+FACS), MADT, MCFG and
 * a DSDT describing the PCI root bridge, COM1, the RTC and \_S5.
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

/* Sum of bytes mod 256 (a valid table sums to 0). */
uint8_t acpi_checksum(const void *p, size_t n);
