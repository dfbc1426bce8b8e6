/* SPDX-License-Identifier: MIT */
/* Finds and validates the ACPI tables; ACPI power-off and reset. */
#include "guest.h"

struct acpi_info acpi;

static uint8_t sum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *b++);
	return s;
}

static uint64_t find_rsdp(void)
{
	if (boot.rsdp)
		return boot.rsdp;
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8))
			return a;
	return 0;
}

static uint32_t rd32(uint64_t a) { uint32_t v; memcpy(&v, (const void *)a, 4); return v; }
static uint64_t rd64(uint64_t a) { uint64_t v; memcpy(&v, (const void *)a, 8); return v; }

static bool table_ok(uint64_t t, const char *sig)
{
	uint32_t len = rd32(t + 4);
	bool ok = t && len >= 36 && len < 65536 && sum((const void *)t, len) == 0;
	check(ok, "acpi-table-checksum", "%c%c%c%c at %lx, %u bytes", sig[0], sig[1], sig[2], sig[3], t, len);
	return ok;
}

/* \_S5 in the DSDT: NameOp "_S5_" PackageOp PkgLength NumElements <SLP_TYPa>. */
static int find_s5(uint64_t dsdt)
{
	uint32_t len = rd32(dsdt + 4);
	const uint8_t *p = (const uint8_t *)dsdt;
	for (uint32_t i = 36; i + 8 < len; i++) {
		if (memcmp(p + i, "_S5_", 4) || p[i + 4] != 0x12)
			continue;
		const uint8_t *q = p + i + 5;
		q += 1 + (*q >> 6); /* PkgLength */
		q++;                /* NumElements */
		if (*q == 0x0a)
			return q[1];
		if (*q == 0x00 || *q == 0x01)
			return *q;
	}
	return -1;
}

static void parse_madt(uint64_t madt)
{
	uint32_t len = rd32(madt + 4);
	for (uint32_t off = 44; off + 2 <= len;) {
		const uint8_t *e = (const uint8_t *)(madt + off);
		if (e[1] < 2)
			break;
		if (e[0] == 0 && (rd32(madt + off + 4) & 1) && acpi.nr_lapics < 256)
			acpi.apic_ids[acpi.nr_lapics++] = e[3];
		off += e[1];
	}
}

void check_acpi(void)
{
	uint64_t rsdp = find_rsdp();
	const uint8_t *r = (const uint8_t *)rsdp;
	bool ok = rsdp && !memcmp(r, "RSD PTR ", 8) && sum(r, 20) == 0 && (r[15] < 2 || sum(r, rd32(rsdp + 20)) == 0);
	check(ok, "acpi-rsdp", "at %lx", rsdp);
	if (!ok)
		return;
	uint64_t root = r[15] >= 2 ? rd64(rsdp + 24) : rd32(rsdp + 16);
	unsigned width = r[15] >= 2 ? 8 : 4;
	if (!table_ok(root, width == 8 ? "XSDT" : "RSDT"))
		return;
	uint32_t n = (rd32(root + 4) - 36) / width;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t t = width == 8 ? rd64(root + 36 + 8 * i) : rd32(root + 36 + 4 * i);
		const char *sig = (const char *)t;
		if (!table_ok(t, sig))
			continue;
		if (!memcmp(sig, "FACP", 4))
			acpi.fadt = t;
		else if (!memcmp(sig, "APIC", 4))
			acpi.madt = t;
		else if (!memcmp(sig, "MCFG", 4))
			acpi.mcfg = t;
	}
	check(acpi.fadt && acpi.madt, "acpi-fadt-madt", "");
	if (!acpi.fadt || !acpi.madt)
		return;
	uint32_t flen = rd32(acpi.fadt + 4);
	acpi.dsdt = flen >= 148 && rd64(acpi.fadt + 140) ? rd64(acpi.fadt + 140) : rd32(acpi.fadt + 40);
	acpi.pm1a_cnt = (uint16_t)rd32(acpi.fadt + 64);
	acpi.pm_tmr = (uint16_t)rd32(acpi.fadt + 76);
	if (flen >= 129 && (rd32(acpi.fadt + 112) & (1u << 10))) {
		acpi.reset_space = *(const uint8_t *)(acpi.fadt + 116);
		acpi.reset_addr = rd64(acpi.fadt + 120);
		acpi.reset_value = *(const uint8_t *)(acpi.fadt + 128);
	}
	if (acpi.mcfg && rd32(acpi.mcfg + 4) >= 60)
		acpi.ecam = rd64(acpi.mcfg + 44);
	if (table_ok(acpi.dsdt, "DSDT")) {
		acpi.slp_typ_s5 = find_s5(acpi.dsdt);
		check(acpi.slp_typ_s5 >= 0, "acpi-dsdt-s5", "SLP_TYP %d", acpi.slp_typ_s5);
	}
	parse_madt(acpi.madt);
	unsigned cpus = (unsigned)param_u64("keeltest.cpus", 1);
	check(acpi.nr_lapics == cpus, "acpi-madt-cpus", "%u local APICs, %u expected", acpi.nr_lapics, cpus);
	check(acpi.pm1a_cnt != 0, "acpi-pm1a-cnt", "port %x", acpi.pm1a_cnt);
}

void check_pm_timer(void)
{
	if (!acpi.pm_tmr) {
		check(false, "acpi-pm-timer", "no PM timer in the FADT");
		return;
	}
	uint32_t a = inl(acpi.pm_tmr);
	uint32_t b = a;
	/* 3.58 MHz: 100 ticks are 28 us; give it up to a million reads. */
	for (int i = 0; i < 1000000 && b - a < 100; i++)
		b = inl(acpi.pm_tmr);
	check(b - a >= 100, "acpi-pm-timer", "advanced %u ticks", b - a);
}

void acpi_poweroff(void)
{
	if (!acpi.pm1a_cnt || acpi.slp_typ_s5 < 0)
		return;
	outw(acpi.pm1a_cnt, (uint16_t)((acpi.slp_typ_s5 & 7) << 10 | (1u << 13)));
}

void acpi_reset(void)
{
	if (acpi.reset_space == 1 && acpi.reset_addr)
		outb((uint16_t)acpi.reset_addr, acpi.reset_value);
	outb(0x64, 0xfe); /* i8042 reset pulse as a fallback */
}
