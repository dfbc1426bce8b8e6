// SPDX-License-Identifier: MIT
#include "acpi.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "vmm/layout.h"
#include "base/util.h"
#include "aml.h"

struct __attribute__((packed)) acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
};
static_assert(sizeof(struct acpi_header) == 36, "ACPI table header");

struct __attribute__((packed)) acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
};
static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");

struct __attribute__((packed)) acpi_gas {
	uint8_t space_id; /* 0 memory, 1 I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 1 byte, 2 word, 3 dword */
	uint64_t address;
};
static_assert(sizeof(struct acpi_gas) == 12, "generic address structure");

struct __attribute__((packed)) acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg, sleep_status_reg;
	char hypervisor_vendor_id[8];
};
static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6");
static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG");
static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT");

struct __attribute__((packed)) acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved2[24];
};
static_assert(sizeof(struct acpi_facs) == 64, "FACS");

struct __attribute__((packed)) madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags;
};
struct __attribute__((packed)) madt_ioapic {
	uint8_t type, length, ioapic_id, reserved;
	uint32_t address, gsi_base;
};
struct __attribute__((packed)) madt_iso {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
};
struct __attribute__((packed)) madt_lapic_nmi {
	uint8_t type, length, processor_uid;
	uint16_t flags;
	uint8_t lint;
};
static_assert(sizeof(struct madt_lapic) == 8, "MADT local APIC");
static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC");
static_assert(sizeof(struct madt_iso) == 10, "MADT interrupt source override");
static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT local APIC NMI");

struct __attribute__((packed)) mcfg_allocation {
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus, end_bus;
	uint32_t reserved;
};
static_assert(sizeof(struct mcfg_allocation) == 16, "MCFG allocation");

/* FADT flags and boot architecture bits (ACPI 6.4, 5.2.9). */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_PWR_BUTTON (1u << 4)
#define FADT_SLP_BUTTON (1u << 5)
#define FADT_TMR_VAL_EXT (1u << 8)
#define FADT_RESET_REG_SUP (1u << 10)
#define BOOT_ARCH_LEGACY_DEVICES (1u << 0)
#define BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)
#define BOOT_ARCH_ASPM_DISABLED (1u << 4)

uint8_t acpi_checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *b++);
	return s;
}

struct builder {
	uint8_t *buf;
	size_t cap, len;
	uint64_t base;
	bool failed;
};

/* Reserve n bytes at the given alignment; returns the offset or SIZE_MAX. */
static size_t reserve(struct builder *b, size_t n, size_t align)
{
	size_t off = (size_t)ALIGN_UP(b->len, align);
	if (b->failed || off > b->cap || n > b->cap - off) {
		b->failed = true;
		return SIZE_MAX;
	}
	memset(b->buf + off, 0, n);
	b->len = off + n;
	return off;
}

static void header(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, "KEEL  ", 6);
	memcpy(h->oem_table_id, "KEELVM  ", 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, "KEEL", 4);
	h->creator_revision = 1;
}

static void finish(struct builder *b, size_t off)
{
	struct acpi_header *h = (struct acpi_header *)(b->buf + off);
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_checksum(h, h->length);
}

static struct acpi_gas io_gas(uint16_t port, uint8_t bits)
{
	return (struct acpi_gas){ .space_id = 1, .bit_width = bits, .access_size = bits / 8 == 4 ? 3 : bits / 8,
				  .address = port };
}

/*
 * PCI interrupts (INTx), as on QEMU's PC machine: the PIIX3 at 00:01.0
 * routes PIRQ lines A-D to ISA IRQs through its route registers 0x60-0x63
 * (src/dev/isa_bridge.c).  _PRT maps slot S pin P (0 = INTA#) to the link
 * device of line (S + P - 1) mod 4; each link device LNKA-LNKD reads and
 * writes its route register through a PCI_Config operation region, so the
 * OS can see (_CRS), choose (_PRS, _SRS) and turn off (_DIS) the IRQ.  The
 * IRQs are level-triggered, active-high and shareable.
 */
static const char *const link_names[4] = { "LNKA", "LNKB", "LNKC", "LNKD" };
static const char *const link_regs[4] = { "\\_SB_.PCI0.ISA_.PRQ0", "\\_SB_.PCI0.ISA_.PRQ1", "\\_SB_.PCI0.ISA_.PRQ2",
					  "\\_SB_.PCI0.ISA_.PRQ3" };

static void pci_intx(struct aml *a)
{
	aml_device_begin(a, "ISA_");
	aml_name(a, "_ADR");
	aml_integer(a, 0x00010000);
	aml_opregion(a, "P40C", AML_SPACE_PCI_CONFIG, 0x60, 4);
	aml_field_begin(a, "P40C", AML_FIELD_BYTE_ACC);
	for (unsigned i = 0; i < 4; i++) {
		char n[5] = { 'P', 'R', 'Q', (char)('0' + i), 0 };
		aml_field_unit(a, n, 8);
	}
	aml_end(a); /* Field */
	aml_end(a); /* ISA */

	aml_name(a, "_PRT");
	aml_package_begin(a, 31 * 4);
	for (unsigned slot = 1; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			char link[16];
			snprintf(link, sizeof(link), "\\_SB_.%s", link_names[(slot + pin - 1) & 3]);
			aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)slot << 16 | 0xffff);
			aml_integer(a, pin);
			aml_namestring(a, link);
			aml_integer(a, 0);
			aml_end(a);
		}
	}
	aml_end(a);
}

/* Method(name) { Return(helper(reg)) }: a link's _STA and _CRS. */
static void link_method(struct aml *a, const char *name, const char *helper, const char *reg)
{
	aml_method_begin(a, name, 0, false);
	aml_byte(a, AML_OP_RETURN);
	aml_namestring(a, helper);
	aml_namestring(a, reg);
	aml_end(a);
}

static void pci_links(struct aml *a)
{
	/* IQST(route): a link is present, and enabled unless the route's bit 7 turns it off. */
	aml_method_begin(a, "IQST", 1, false);
	aml_if_begin(a);
	aml_byte(a, AML_OP_AND);
	aml_integer(a, 0x80);
	aml_byte(a, AML_ARG0);
	aml_byte(a, AML_NULL_NAME);
	aml_byte(a, AML_OP_RETURN);
	aml_integer(a, 0x09);
	aml_end(a); /* If */
	aml_byte(a, AML_OP_RETURN);
	aml_integer(a, 0x0b);
	aml_end(a);

	/* IQCR(route): the link's current resources, no IRQ when it is off. */
	const uint32_t none = 0;
	aml_method_begin(a, "IQCR", 1, true);
	aml_name(a, "PRR0");
	aml_resources_begin(a);
	aml_res_interrupt(a, AML_IRQ_LEVEL_HIGH_SHARED, &none, 1);
	aml_resources_end(a);
	aml_byte(a, AML_OP_CREATE_DWORD_FIELD);
	aml_namestring(a, "PRR0");
	aml_integer(a, 5);
	aml_namestring(a, "PRRI");
	aml_if_begin(a);
	aml_byte(a, AML_OP_LLESS);
	aml_byte(a, AML_ARG0);
	aml_integer(a, 0x80);
	aml_byte(a, AML_OP_STORE);
	aml_byte(a, AML_ARG0);
	aml_namestring(a, "PRRI");
	aml_end(a); /* If */
	aml_byte(a, AML_OP_RETURN);
	aml_namestring(a, "PRR0");
	aml_end(a);

	static const uint32_t possible[] = { 5, 10, 11 };
	for (unsigned i = 0; i < 4; i++) {
		aml_device_begin(a, link_names[i]);
		aml_name(a, "_HID");
		aml_eisaid(a, "PNP0C0F");
		aml_name(a, "_UID");
		aml_integer(a, i);
		aml_name(a, "_PRS");
		aml_resources_begin(a);
		aml_res_interrupt(a, AML_IRQ_LEVEL_HIGH_SHARED, possible, ARRAY_SIZE(possible));
		aml_resources_end(a);

		link_method(a, "_STA", "\\_SB_.IQST", link_regs[i]);

		aml_method_begin(a, "_DIS", 0, false);
		aml_byte(a, AML_OP_OR);
		aml_namestring(a, link_regs[i]);
		aml_integer(a, 0x80);
		aml_namestring(a, link_regs[i]);
		aml_end(a);

		link_method(a, "_CRS", "\\_SB_.IQCR", link_regs[i]);

		aml_method_begin(a, "_SRS", 1, true);
		aml_byte(a, AML_OP_CREATE_DWORD_FIELD);
		aml_byte(a, AML_ARG0);
		aml_integer(a, 5);
		aml_namestring(a, "PRRI");
		aml_byte(a, AML_OP_STORE);
		aml_namestring(a, "PRRI");
		aml_namestring(a, link_regs[i]);
		aml_end(a);

		aml_end(a); /* LNKx */
	}
}

static void dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	aml_scope_begin(a, "\\_SB_");

	aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_ADR");
	aml_integer(a, 0);
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	aml_resources_begin(a);
	aml_res_word_bus(a, 0, 0xff);
	aml_res_io(a, PORT_PCI_CONFIG_ADDR, 8);
	aml_res_word_io(a, 0x0000, 0x0cf7);
	aml_res_word_io(a, 0x0d00, 0xffff);
	aml_res_dword_mem(a, (uint32_t)PCI_MMIO32_BASE, (uint32_t)(PCI_MMIO32_BASE + PCI_MMIO32_SIZE - 1));
	if (cfg->mmio64_size)
		aml_res_qword_mem(a, cfg->mmio64_base, cfg->mmio64_base + cfg->mmio64_size - 1);
	aml_resources_end(a);
	pci_intx(a);
	aml_end(a); /* PCI0 */
	pci_links(a);

	/* Motherboard resources: keep the OS from handing these to PCI devices. */
	aml_device_begin(a, "MRES");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name(a, "_UID");
	aml_integer(a, 1);
	aml_name(a, "_CRS");
	aml_resources_begin(a);
	aml_res_io(a, PORT_ACPI_PM_BASE, 12);
	aml_res_mem32_fixed(a, (uint32_t)PCI_ECAM_BASE, (uint32_t)PCI_ECAM_SIZE);
	aml_resources_end(a);
	aml_end(a);

	aml_device_begin(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_integer(a, 1);
	aml_name(a, "_CRS");
	aml_resources_begin(a);
	aml_res_io(a, PORT_COM1, 8);
	aml_res_irq(a, 1u << IRQ_COM1);
	aml_resources_end(a);
	aml_end(a);

	aml_device_begin(a, "RTC_");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0B00");
	aml_name(a, "_CRS");
	aml_resources_begin(a);
	aml_res_io(a, PORT_CMOS, 2);
	aml_res_irq(a, 1u << IRQ_RTC);
	aml_resources_end(a);
	aml_end(a);

	aml_end(a); /* \_SB */

	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved. */
	aml_name(a, "\\_S5_");
	aml_package_begin(a, 4);
	aml_integer(a, ACPI_SLP_TYP_S5);
	aml_integer(a, ACPI_SLP_TYP_S5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);
}

static size_t build_dsdt(struct builder *b, const struct acpi_config *cfg)
{
	size_t off = reserve(b, sizeof(struct acpi_header), 16);
	if (off == SIZE_MAX)
		return off;
	struct aml a;
	aml_init(&a, b->buf + b->len, b->cap - b->len);
	dsdt_body(&a, cfg);
	if (aml_failed(&a)) {
		b->failed = true;
		return SIZE_MAX;
	}
	b->len += a.len;
	header((struct acpi_header *)(b->buf + off), "DSDT", (uint32_t)(sizeof(struct acpi_header) + a.len), 2);
	finish(b, off);
	return off;
}

static size_t build_fadt(struct builder *b, uint64_t dsdt, uint64_t facs)
{
	size_t off = reserve(b, sizeof(struct acpi_fadt), 16);
	if (off == SIZE_MAX)
		return off;
	struct acpi_fadt *f = (struct acpi_fadt *)(b->buf + off);
	header(&f->h, "FACP", sizeof(*f), 6);
	f->minor_version = 4;
	f->firmware_ctrl = (uint32_t)facs;
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	f->sci_int = IRQ_SCI;
	f->smi_cmd = 0; /* no SMM: the platform is always in ACPI mode */
	f->pm1a_evt_blk = PORT_ACPI_PM_BASE;
	f->pm1a_cnt_blk = PORT_ACPI_PM_BASE + 4;
	f->pm_tmr_blk = PORT_ACPI_PM_BASE + 8;
	f->pm1_evt_len = 4;
	f->pm1_cnt_len = 2;
	f->pm_tmr_len = 4;
	f->x_pm1a_evt_blk = io_gas(PORT_ACPI_PM_BASE, 32);
	f->x_pm1a_cnt_blk = io_gas(PORT_ACPI_PM_BASE + 4, 16);
	f->x_pm_tmr_blk = io_gas(PORT_ACPI_PM_BASE + 8, 32);
	f->p_lvl2_lat = 101; /* > 100: C2 not supported */
	f->p_lvl3_lat = 1001; /* > 1000: C3 not supported */
	f->century = 0x32;
	f->iapc_boot_arch = BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_ASPM_DISABLED;
	f->flags = FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_TMR_VAL_EXT |
		   FADT_RESET_REG_SUP;
	f->reset_reg = io_gas(PORT_RESET, 8);
	f->reset_value = ACPI_RESET_VALUE;
	memcpy(f->hypervisor_vendor_id, "KEEL\0\0\0\0", 8);
	finish(b, off);
	return off;
}

static size_t build_facs(struct builder *b)
{
	size_t off = reserve(b, sizeof(struct acpi_facs), 64);
	if (off == SIZE_MAX)
		return off;
	struct acpi_facs *f = (struct acpi_facs *)(b->buf + off);
	memcpy(f->signature, "FACS", 4);
	f->length = sizeof(*f);
	f->version = 2;
	return off;
}

static size_t build_madt(struct builder *b, const struct acpi_config *cfg)
{
	size_t len = sizeof(struct acpi_header) + 8 + cfg->nr_cpus * sizeof(struct madt_lapic) +
		     sizeof(struct madt_ioapic) + sizeof(struct madt_iso) + sizeof(struct madt_lapic_nmi);
	size_t off = reserve(b, len, 16);
	if (off == SIZE_MAX)
		return off;
	uint8_t *p = b->buf + off;
	header((struct acpi_header *)p, "APIC", (uint32_t)len, 5);
	size_t pos = sizeof(struct acpi_header);
	const uint32_t lapic = (uint32_t)LAPIC_BASE, flags = 1; /* PCAT_COMPAT: 8259s present */
	memcpy(p + pos, &lapic, 4);
	memcpy(p + pos + 4, &flags, 4);
	pos += 8;
	for (unsigned i = 0; i < cfg->nr_cpus; i++) {
		struct madt_lapic e = { 0, sizeof(e), (uint8_t)i, (uint8_t)i, 1 /* enabled */ };
		memcpy(p + pos, &e, sizeof(e));
		pos += sizeof(e);
	}
	struct madt_ioapic io = { 1, sizeof(io), 0, 0, (uint32_t)IOAPIC_BASE, 0 };
	memcpy(p + pos, &io, sizeof(io));
	pos += sizeof(io);
	/* The SCI is level-triggered, active high. */
	struct madt_iso sci = { 2, sizeof(sci), 0, IRQ_SCI, IRQ_SCI, 0x000d };
	memcpy(p + pos, &sci, sizeof(sci));
	pos += sizeof(sci);
	/* LINT1 of every local APIC is the NMI input. */
	struct madt_lapic_nmi nmi = { 4, sizeof(nmi), 0xff, 0, 1 };
	memcpy(p + pos, &nmi, sizeof(nmi));
	finish(b, off);
	return off;
}

static size_t build_mcfg(struct builder *b)
{
	size_t len = sizeof(struct acpi_header) + 8 + sizeof(struct mcfg_allocation);
	size_t off = reserve(b, len, 16);
	if (off == SIZE_MAX)
		return off;
	header((struct acpi_header *)(b->buf + off), "MCFG", (uint32_t)len, 1);
	struct mcfg_allocation m = { PCI_ECAM_BASE, 0, 0, (uint8_t)((PCI_ECAM_SIZE >> 20) - 1), 0 };
	memcpy(b->buf + off + sizeof(struct acpi_header) + 8, &m, sizeof(m));
	finish(b, off);
	return off;
}

static size_t build_sdt(struct builder *b, const char *sig, const uint64_t *tables, size_t n, unsigned width)
{
	size_t len = sizeof(struct acpi_header) + n * width;
	size_t off = reserve(b, len, 16);
	if (off == SIZE_MAX)
		return off;
	header((struct acpi_header *)(b->buf + off), sig, (uint32_t)len, 1);
	for (size_t i = 0; i < n; i++)
		memcpy(b->buf + off + sizeof(struct acpi_header) + i * width, &tables[i], width);
	finish(b, off);
	return off;
}

/* Where build_tables() put each table: offsets from the start of the builder's buffer. */
#define ACPI_SDT_MAX 8
struct table_layout {
	size_t facs, dsdt, fadt, rsdt, xsdt;
	size_t sdt[ACPI_SDT_MAX]; /* the tables the RSDT and XSDT list, in their order */
	size_t nr_sdt;
};

/* Every table but the RSDP, pointing at each other as they lie from b->base. */
static bool build_tables(struct builder *b, const struct acpi_config *cfg, struct table_layout *l)
{
	l->facs = build_facs(b);
	l->dsdt = build_dsdt(b, cfg);
	if (b->failed)
		return false;
	l->fadt = build_fadt(b, b->base + l->dsdt, b->base + l->facs);
	l->sdt[0] = l->fadt;
	l->sdt[1] = build_madt(b, cfg);
	l->sdt[2] = build_mcfg(b);
	l->nr_sdt = 3;
	if (b->failed)
		return false;
	uint64_t tables[ACPI_SDT_MAX];
	for (size_t i = 0; i < l->nr_sdt; i++)
		tables[i] = b->base + l->sdt[i];
	l->rsdt = build_sdt(b, "RSDT", tables, l->nr_sdt, 4);
	l->xsdt = build_sdt(b, "XSDT", tables, l->nr_sdt, 8);
	return !b->failed;
}

static void fill_rsdp(struct acpi_rsdp *r, uint64_t rsdt, uint64_t xsdt)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->signature, "RSD PTR ", 8);
	memcpy(r->oem_id, "KEEL  ", 6);
	r->revision = 2;
	r->rsdt_address = (uint32_t)rsdt;
	r->length = sizeof(*r);
	r->xsdt_address = xsdt;
	r->checksum = (uint8_t)-acpi_checksum(r, 20);
	r->extended_checksum = (uint8_t)-acpi_checksum(r, sizeof(*r));
}

size_t acpi_build(uint8_t *buf, size_t cap, uint64_t base, const struct acpi_config *cfg)
{
	struct builder b = { .buf = buf, .cap = cap, .base = base };
	struct table_layout l;
	size_t rsdp = reserve(&b, sizeof(struct acpi_rsdp), 16);
	if (!build_tables(&b, cfg, &l))
		return 0;
	fill_rsdp((struct acpi_rsdp *)(buf + rsdp), base + l.rsdt, base + l.xsdt);
	return b.len;
}

/* The table-loader script (QEMU's BiosLinkerLoaderEntry, SeaBIOS's romfile_loader_entry_s). */
#define LOADER_FILESZ 56
#define LOADER_ALLOCATE 1
#define LOADER_ADD_POINTER 2
#define LOADER_ADD_CHECKSUM 3
#define LOADER_ZONE_HIGH 1
#define LOADER_ZONE_FSEG 2

struct __attribute__((packed)) loader_entry {
	uint32_t command;
	union {
		struct __attribute__((packed)) {
			char file[LOADER_FILESZ];
			uint32_t align;
			uint8_t zone;
		} alloc;
		struct __attribute__((packed)) {
			char dest_file[LOADER_FILESZ];
			char src_file[LOADER_FILESZ];
			uint32_t offset;
			uint8_t size;
		} pointer;
		struct __attribute__((packed)) {
			char file[LOADER_FILESZ];
			uint32_t offset, start, length;
		} cksum;
		uint8_t pad[124];
	};
};
static_assert(sizeof(struct loader_entry) == 128, "table-loader entry");
static_assert(offsetof(struct loader_entry, pointer.offset) == 116, "ADD_POINTER offset");
static_assert(offsetof(struct loader_entry, cksum.length) == 68, "ADD_CHECKSUM length");

/* Allocations, FADT pointers, RSDT/XSDT entries, RSDP pointers and checksums, with room to spare. */
#define LOADER_MAX (2 + 3 + 2 * ACPI_SDT_MAX + 2 + 3 + ACPI_SDT_MAX + 2)
#define ACPI_FW_TABLES_MAX (1u << 20)
#define HDR_CKSUM offsetof(struct acpi_header, checksum)

struct loader {
	struct loader_entry *e;
	size_t n;
};

static struct loader_entry *loader_add(struct loader *l, uint32_t command)
{
	assert(l->n < LOADER_MAX);
	struct loader_entry *e = &l->e[l->n++];
	e->command = command;
	return e;
}

static void loader_name(char *dst, const char *name)
{
	size_t n = strlen(name);
	assert(n < LOADER_FILESZ);
	memcpy(dst, name, n + 1);
}

static void loader_allocate(struct loader *l, const char *file, uint32_t align, uint8_t zone)
{
	struct loader_entry *e = loader_add(l, LOADER_ALLOCATE);
	loader_name(e->alloc.file, file);
	e->alloc.align = align;
	e->alloc.zone = zone;
}

/* dest_file's size bytes at offset, which hold an offset into the tables blob, += its address. */
static void loader_pointer(struct loader *l, const char *dest_file, size_t offset, uint8_t size)
{
	struct loader_entry *e = loader_add(l, LOADER_ADD_POINTER);
	loader_name(e->pointer.dest_file, dest_file);
	loader_name(e->pointer.src_file, ACPI_FW_TABLES_FILE);
	e->pointer.offset = (uint32_t)offset;
	e->pointer.size = size;
}

/* file's byte at offset -= sum of length bytes from start. */
static void loader_checksum(struct loader *l, const char *file, size_t offset, size_t start, size_t length)
{
	struct loader_entry *e = loader_add(l, LOADER_ADD_CHECKSUM);
	loader_name(e->cksum.file, file);
	e->cksum.offset = (uint32_t)offset;
	e->cksum.start = (uint32_t)start;
	e->cksum.length = (uint32_t)length;
}

/* The table at off in the tables blob: its checksum left to the loader. */
static void loader_table_checksum(struct loader *l, uint8_t *tables, size_t off)
{
	struct acpi_header *h = (struct acpi_header *)(tables + off);
	h->checksum = 0;
	loader_checksum(l, ACPI_FW_TABLES_FILE, off + HDR_CKSUM, off, h->length);
}

int acpi_build_fw_cfg(const struct acpi_config *cfg, struct acpi_fw_blobs *out)
{
	int err = -ENOMEM;
	struct builder b = { 0 };
	struct table_layout t;
	struct loader l = { 0 };
	struct acpi_rsdp *rsdp = NULL;

	memset(out, 0, sizeof(*out));
	if (!cfg->nr_cpus || cfg->nr_cpus > 255)
		return -EINVAL;
	/* Tables lie from offset 0 of their blob: every pointer field holds an offset into it. */
	for (size_t cap = 4096;; cap *= 2) {
		if (cap > ACPI_FW_TABLES_MAX) {
			err = -E2BIG;
			goto fail;
		}
		uint8_t *p = realloc(b.buf, cap);
		if (!p)
			goto fail;
		b = (struct builder){ .buf = p, .cap = cap };
		if (build_tables(&b, cfg, &t))
			break;
	}
	rsdp = malloc(sizeof(*rsdp));
	l.e = calloc(LOADER_MAX, sizeof(*l.e));
	if (!rsdp || !l.e)
		goto fail;

	loader_allocate(&l, ACPI_FW_TABLES_FILE, 64, LOADER_ZONE_HIGH);
	/* Each table's pointers, then its checksum; the FACS has no checksum. */
	loader_table_checksum(&l, b.buf, t.dsdt);
	for (size_t i = 0; i < t.nr_sdt; i++) {
		if (t.sdt[i] == t.fadt) {
			/* X_FIRMWARE_CTRL stays 0, as acpi_build() and QEMU leave it. */
			loader_pointer(&l, ACPI_FW_TABLES_FILE, t.fadt + offsetof(struct acpi_fadt, firmware_ctrl), 4);
			loader_pointer(&l, ACPI_FW_TABLES_FILE, t.fadt + offsetof(struct acpi_fadt, dsdt), 4);
			loader_pointer(&l, ACPI_FW_TABLES_FILE, t.fadt + offsetof(struct acpi_fadt, x_dsdt), 8);
		}
		loader_table_checksum(&l, b.buf, t.sdt[i]);
	}
	for (size_t i = 0; i < t.nr_sdt; i++)
		loader_pointer(&l, ACPI_FW_TABLES_FILE, t.rsdt + sizeof(struct acpi_header) + 4 * i, 4);
	loader_table_checksum(&l, b.buf, t.rsdt);
	for (size_t i = 0; i < t.nr_sdt; i++)
		loader_pointer(&l, ACPI_FW_TABLES_FILE, t.xsdt + sizeof(struct acpi_header) + 8 * i, 8);
	loader_table_checksum(&l, b.buf, t.xsdt);

	fill_rsdp(rsdp, t.rsdt, t.xsdt);
	rsdp->checksum = 0;
	rsdp->extended_checksum = 0;
	loader_allocate(&l, ACPI_FW_RSDP_FILE, 16, LOADER_ZONE_FSEG);
	loader_pointer(&l, ACPI_FW_RSDP_FILE, offsetof(struct acpi_rsdp, rsdt_address), 4);
	loader_pointer(&l, ACPI_FW_RSDP_FILE, offsetof(struct acpi_rsdp, xsdt_address), 8);
	loader_checksum(&l, ACPI_FW_RSDP_FILE, offsetof(struct acpi_rsdp, checksum), 0, 20);
	loader_checksum(&l, ACPI_FW_RSDP_FILE, offsetof(struct acpi_rsdp, extended_checksum), 0, sizeof(*rsdp));

	uint8_t *tables = realloc(b.buf, b.len);
	if (tables)
		b.buf = tables;
	*out = (struct acpi_fw_blobs){ .rsdp = (uint8_t *)rsdp, .rsdp_len = sizeof(*rsdp),
				       .tables = b.buf, .tables_len = b.len,
				       .loader = (uint8_t *)l.e, .loader_len = l.n * sizeof(*l.e) };
	return 0;

fail:
	free(l.e);
	free(rsdp);
	free(b.buf);
	return err;
}

void acpi_fw_blobs_free(struct acpi_fw_blobs *b)
{
	free(b->rsdp);
	free(b->tables);
	free(b->loader);
	memset(b, 0, sizeof(*b));
}
