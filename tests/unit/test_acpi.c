// SPDX-License-Identifier: MIT
/* ACPI tables: checksums, structure parsed back, AML encoding, and iasl's opinion of the DSDT. */
#include <stdint.h>

#include "acpi/acpi.h"
#include "acpi/aml.h"
#include "fake.h"
#include "vmm/layout.h"
#include "unit.h"

#define BASE 0xe0000ull
static uint8_t buf[0x20000];

static const uint8_t *at(uint64_t gpa)
{
	return buf + (gpa - BASE);
}
static uint32_t rd32(uint64_t gpa) { uint32_t v; memcpy(&v, at(gpa), 4); return v; }
static uint64_t rd64(uint64_t gpa) { uint64_t v; memcpy(&v, at(gpa), 8); return v; }

static uint64_t find_table(const char *sig)
{
	uint64_t xsdt = rd64(BASE + 24);
	uint32_t n = (rd32(xsdt + 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t t = rd64(xsdt + 36 + 8 * i);
		if (!memcmp(at(t), sig, 4))
			return t;
	}
	return 0;
}

static size_t build(unsigned cpus)
{
	struct acpi_config c = { .nr_cpus = cpus, .mmio64_base = 0x100000000ull * 8, .mmio64_size = 1ull << 35 };
	memset(buf, 0xcc, sizeof(buf));
	return acpi_build(buf, sizeof(buf), BASE, &c);
}

static void rsdp_and_checksums(void)
{
	size_t used = build(4);
	CHECK(used > 0 && used < 16384);
	CHECK(!memcmp(buf, "RSD PTR ", 8));
	CHECK_EQ(acpi_checksum(buf, 20), 0);
	CHECK_EQ(acpi_checksum(buf, 36), 0);
	CHECK_EQ(buf[15], 2);
	uint64_t rsdt = rd32(BASE + 16), xsdt = rd64(BASE + 24);
	CHECK(!memcmp(at(rsdt), "RSDT", 4));
	CHECK(!memcmp(at(xsdt), "XSDT", 4));
	CHECK_EQ(acpi_checksum(at(rsdt), rd32(rsdt + 4)), 0);
	CHECK_EQ(acpi_checksum(at(xsdt), rd32(xsdt + 4)), 0);
	CHECK_EQ((rd32(xsdt + 4) - 36) / 8, (rd32(rsdt + 4) - 36) / 4);
	static const char *const sigs[] = { "FACP", "APIC", "MCFG" };
	for (size_t i = 0; i < 3; i++) {
		uint64_t t = find_table(sigs[i]);
		CHECK(t != 0);
		if (t) {
			CHECK_EQ(acpi_checksum(at(t), rd32(t + 4)), 0);
			CHECK(t % 16 == 0);
			CHECK(t + rd32(t + 4) <= BASE + used);
		}
	}
}

static void fadt_fields(void)
{
	build(1);
	uint64_t f = find_table("FACP");
	CHECK_EQ(rd32(f + 4), 276);
	CHECK_EQ(at(f)[8], 6);
	uint64_t dsdt = rd64(f + 140);
	CHECK_EQ(rd32(f + 40), dsdt);
	CHECK(!memcmp(at(dsdt), "DSDT", 4));
	CHECK_EQ(acpi_checksum(at(dsdt), rd32(dsdt + 4)), 0);
	uint64_t facs = rd32(f + 36);
	CHECK(facs % 64 == 0 && !memcmp(at(facs), "FACS", 4));
	CHECK_EQ(rd32(f + 46) & 0xffff, IRQ_SCI);
	CHECK_EQ(rd32(f + 56), PORT_ACPI_PM_BASE);
	CHECK_EQ(rd32(f + 64), PORT_ACPI_PM_BASE + 4);
	CHECK_EQ(rd32(f + 76), PORT_ACPI_PM_BASE + 8);
	CHECK_EQ(at(f)[91], 4); /* PM_TMR_LEN */
	uint32_t flags = rd32(f + 112);
	CHECK(flags & (1u << 10)); /* RESET_REG_SUP */
	CHECK(flags & (1u << 8));  /* TMR_VAL_EXT */
	CHECK_EQ(at(f)[116], 1);   /* reset register in I/O space */
	CHECK_EQ(rd64(f + 120), PORT_RESET);
	CHECK_EQ(at(f)[128], ACPI_RESET_VALUE);
	uint16_t boot_arch;
	memcpy(&boot_arch, at(f + 109), 2);
	CHECK(!(boot_arch & 2)); /* no 8042 advertised */
	CHECK(!memcmp(at(f + 268), "KEEL", 4));
}

static void madt_lists_every_cpu(void)
{
	for (unsigned cpus = 1; cpus <= 255; cpus += 127) {
		build(cpus);
		uint64_t m = find_table("APIC");
		uint32_t len = rd32(m + 4);
		CHECK_EQ(rd32(m + 36), LAPIC_BASE);
		unsigned lapics = 0, ioapics = 0, nmis = 0, isos = 0;
		for (uint32_t off = 44; off < len;) {
			const uint8_t *e = at(m + off);
			if (e[0] == 0) {
				CHECK_EQ(e[3], lapics); /* APIC IDs 0..n-1 in order */
				CHECK(rd32(m + off + 4) & 1);
				lapics++;
			} else if (e[0] == 1) {
				CHECK_EQ(rd32(m + off + 4), IOAPIC_BASE);
				ioapics++;
			} else if (e[0] == 2) {
				CHECK_EQ(e[3], IRQ_SCI);
				isos++;
			} else if (e[0] == 4) {
				CHECK_EQ(e[5], 1); /* LINT1 */
				nmis++;
			}
			CHECK(e[1] >= 2);
			off += e[1] ? e[1] : 1;
		}
		CHECK_EQ(lapics, cpus);
		CHECK_EQ(ioapics, 1);
		CHECK_EQ(isos, 1);
		CHECK_EQ(nmis, 1);
	}
}

static void mcfg_describes_ecam(void)
{
	build(1);
	uint64_t m = find_table("MCFG");
	CHECK_EQ(rd32(m + 4), 60);
	CHECK_EQ(rd64(m + 44), PCI_ECAM_BASE);
	CHECK_EQ(at(m)[54], 0);
	CHECK_EQ(at(m)[55], (PCI_ECAM_SIZE >> 20) - 1);
}

static void too_small_buffer(void)
{
	struct acpi_config c = { .nr_cpus = 8 };
	CHECK_EQ(acpi_build(buf, 200, BASE, &c), 0);
}

static void pkglength_encoding(void)
{
	uint8_t e[4];
	CHECK_EQ(aml_pkglength(e, 0), 1);
	CHECK_EQ(e[0], 1);
	CHECK_EQ(aml_pkglength(e, 62), 1);
	CHECK_EQ(e[0], 63);
	CHECK_EQ(aml_pkglength(e, 63), 2); /* 65 total */
	CHECK_EQ(e[0], 0x41);
	CHECK_EQ(e[1], 0x04);
	CHECK_EQ(aml_pkglength(e, 4093), 2); /* 4095 total: largest 2-byte length */
	CHECK_EQ(aml_pkglength(e, 4094), 3);
	CHECK_EQ(aml_pkglength(e, 100000), 3);
	CHECK_EQ(e[0] >> 6, 2);
	CHECK_EQ((e[0] & 0xf) | (e[1] << 4) | (e[2] << 12), 100003);
}

static void aml_basics(void)
{
	uint8_t b[64];
	struct aml a;
	aml_init(&a, b, sizeof(b));
	aml_eisaid(&a, "PNP0A03");
	CHECK(!aml_failed(&a));
	CHECK(a.len == 5 && b[0] == 0x0c && b[1] == 0x41 && b[2] == 0xd0 && b[3] == 0x0a && b[4] == 0x03);
	aml_init(&a, b, sizeof(b));
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0x123456789ull);
	CHECK(a.len == 1 + 1 + 3 + 9 && b[2] == 0x0b && b[5] == 0x0e);
	aml_init(&a, b, sizeof(b));
	aml_namestring(&a, "\\_SB_.PCI0");
	CHECK(a.len == 10 && b[0] == '\\' && b[1] == 0x2e && !memcmp(b + 2, "_SB_PCI0", 8));
	/* Overflow and unbalanced nesting are reported, not written past the end. */
	aml_init(&a, b, 8);
	aml_string(&a, "a string longer than eight bytes");
	CHECK(aml_failed(&a));
	aml_init(&a, b, sizeof(b));
	aml_scope_begin(&a, "\\_SB_");
	CHECK(aml_failed(&a)); /* still open */
	aml_end(&a);
	CHECK(!aml_failed(&a));
	aml_end(&a);
	CHECK(aml_failed(&a));
}

static void dsdt_disassembles(void)
{
	if (system("command -v iasl >/dev/null 2>&1")) {
		SKIP("acpi", "dsdt_disassembles", "iasl (acpica-tools) is not installed");
		return;
	}
	build(2);
	uint64_t f = find_table("FACP");
	uint64_t dsdt = rd64(f + 140);
	char dir[] = "/tmp/keel-acpi-XXXXXX";
	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	char path[128], cmd[512];
	snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
	FILE *fp = fopen(path, "wb");
	fwrite(at(dsdt), 1, rd32(dsdt + 4), fp);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d dsdt.dat >log 2>&1 && cat dsdt.dsl", dir);
	FILE *p = popen(cmd, "r");
	static char out[1 << 18];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	int st = pclose(p);
	CHECK_EQ(st, 0);
	CHECK(strstr(out, "Name (\\_S5, Package (0x04)") != NULL);
	CHECK(strstr(out, "EisaId (\"PNP0A08\")") != NULL);
	CHECK(strstr(out, "EisaId (\"PNP0501\")") != NULL);
	CHECK(strstr(out, "EisaId (\"PNP0B00\")") != NULL);
	CHECK(strstr(out, "IO (Decode16,") != NULL);
	CHECK(strstr(out, "IRQNoFlags ()") != NULL);
	CHECK(strstr(out, "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,") != NULL);
	CHECK(strstr(out, "0xFEBFFFFF") != NULL); /* the 32-bit window ends below the IOAPIC */
	CHECK(strstr(out, "QWordMemory (ResourceProducer") != NULL);
	/* PCI INTx: the routing table and the PIIX link devices with their methods. */
	CHECK(strstr(out, "Name (_PRT, Package (0x7C)") != NULL);
	CHECK(strstr(out, "\\_SB.LNKD") != NULL);
	CHECK(strstr(out, "EisaId (\"PNP0C0F\")") != NULL);
	CHECK(strstr(out, "OperationRegion (P40C, PCI_Config, 0x60, 0x04)") != NULL);
	CHECK(strstr(out, "Interrupt (ResourceConsumer, Level, ActiveHigh, Shared, ,, )") != NULL);
	CHECK(strstr(out, "Method (_SRS, 1, Serialized)") != NULL);
	CHECK(strstr(out, "Return (\\_SB.IQCR (\\_SB.PCI0.ISA.PRQ2))") != NULL);
	CHECK(strstr(out, "\\_SB.PCI0.ISA.PRQ1 = PRRI") != NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
}

int main(void)
{
	RUN("acpi", rsdp_and_checksums);
	RUN("acpi", fadt_fields);
	RUN("acpi", madt_lists_every_cpu);
	RUN("acpi", mcfg_describes_ecam);
	RUN("acpi", too_small_buffer);
	RUN("acpi", pkglength_encoding);
	RUN("acpi", aml_basics);
	RUN("acpi", dsdt_disassembles);
	UNIT_EXIT();
}
