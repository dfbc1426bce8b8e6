// SPDX-License-Identifier: MIT
/*
 * ACPI tables for firmware (acpi_build_fw_cfg): the table-loader script run
 * the way SeaBIOS's romfile_loader.c runs it, over fake guest memory, and the
 * loaded tables checked as a guest would find them (the RSDP searched for in
 * the F segment).  Then the same tables as acpi_build() writes them, damaged
 * scripts that the checks must catch, and refusals.
 */
#include <errno.h>
#include <stdint.h>

#include "acpi/acpi.h"
#include "vmm/layout.h"
#include "unit.h"

#define FILESZ 56
#define ENTRY 128
#define FSEG_BASE 0xf0000ull
#define FSEG_SIZE 0x10000ull
#define HIGH_BASE 0x7ff00000ull
#define HIGH_SIZE 0x40000ull

/* Fake guest memory: the F segment and a stretch of high memory. */
static uint8_t fseg[FSEG_SIZE], high[HIGH_SIZE];

/* One fw_cfg file as the loader sees it. */
struct file {
	const char *name;
	const uint8_t *data;
	size_t len;
	bool allocated;
	uint8_t zone;
	uint32_t align;
	uint64_t gpa;
	int cksum_cmds; /* ADD_CHECKSUM commands naming it */
};

struct loaded {
	struct file f[3]; /* rsdp, tables, loader */
	int errors;       /* commands SeaBIOS would refuse (warn_internalerror) */
	uint64_t rsdp;    /* where the scan of the F segment found an RSDP, or 0 */
};

/* A check that counts problems, and records them unless quiet (the damaged-script tests). */
static int problems;
static bool quiet;
#define EXPECT(c)                          \
	do {                               \
		if (!(c)) {                \
			problems++;        \
			if (!quiet)        \
				CHECK(c);  \
		}                          \
	} while (0)

static uint8_t *mem(uint64_t gpa, uint64_t n)
{
	if (gpa >= FSEG_BASE && n <= FSEG_SIZE && gpa - FSEG_BASE <= FSEG_SIZE - n)
		return fseg + (gpa - FSEG_BASE);
	if (gpa >= HIGH_BASE && n <= HIGH_SIZE && gpa - HIGH_BASE <= HIGH_SIZE - n)
		return high + (gpa - HIGH_BASE);
	return NULL;
}

static uint32_t rd32(uint64_t gpa)
{
	uint32_t v = 0;
	const uint8_t *p = mem(gpa, 4);
	if (p)
		memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(uint64_t gpa)
{
	uint64_t v = 0;
	const uint8_t *p = mem(gpa, 8);
	if (p)
		memcpy(&v, p, 8);
	return v;
}

/* Whether gpa holds the signature sig (and is in fake memory at all). */
static bool is_sig(uint64_t gpa, const char *sig)
{
	const uint8_t *p = mem(gpa, 4);
	return p && !memcmp(p, sig, 4);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* The file a loader command names, if the name is NUL-terminated (SeaBIOS's romfile_loader_find). */
static struct file *find(struct loaded *L, const char *name, bool must_be_allocated)
{
	if (memchr(name, 0, FILESZ) == NULL)
		return NULL;
	for (int i = 0; i < 3; i++)
		if (!strcmp(L->f[i].name, name))
			return !must_be_allocated || L->f[i].allocated ? &L->f[i] : NULL;
	return NULL;
}

/* ALLOCATE: align (a power of 2, at least 16 as SeaBIOS's malloc), copy the file into its zone. */
static void do_allocate(struct loaded *L, const uint8_t *e, uint64_t *fseg_next, uint64_t *high_next)
{
	uint32_t align;
	memcpy(&align, e + 4 + FILESZ, 4);
	uint8_t zone = e[4 + FILESZ + 4];
	struct file *f = find(L, (const char *)e + 4, false);
	if (!f || f->allocated || (align & (align - 1)) || (zone != 1 && zone != 2)) {
		L->errors++;
		return;
	}
	if (align < 16)
		align = 16;
	uint64_t *next = zone == 2 ? fseg_next : high_next;
	uint64_t gpa = (*next + align - 1) & ~(uint64_t)(align - 1);
	uint8_t *p = mem(gpa, f->len);
	if (!p) {
		L->errors++;
		return;
	}
	memcpy(p, f->data, f->len);
	*next = gpa + f->len;
	f->allocated = true;
	f->zone = zone;
	f->align = align;
	f->gpa = gpa;
}

/* ADD_POINTER: dest's size bytes at offset += the address of src. */
static void do_pointer(struct loaded *L, const uint8_t *e)
{
	struct file *dest = find(L, (const char *)e + 4, true), *src = find(L, (const char *)e + 4 + FILESZ, true);
	uint32_t offset;
	memcpy(&offset, e + 4 + 2 * FILESZ, 4);
	uint8_t size = e[4 + 2 * FILESZ + 4];
	if (!dest || !src || size < 1 || size > 8 || (size & (size - 1)) || (uint64_t)offset + size > dest->len) {
		L->errors++;
		return;
	}
	uint64_t v = 0;
	uint8_t *p = mem(dest->gpa + offset, size);
	memcpy(&v, p, size);
	v += src->gpa;
	memcpy(p, &v, size);
}

/* ADD_CHECKSUM: the byte at offset -= the sum of length bytes from start. */
static void do_checksum(struct loaded *L, const uint8_t *e)
{
	struct file *f = find(L, (const char *)e + 4, true);
	uint32_t v[3]; /* offset, start, length */
	memcpy(v, e + 4 + FILESZ, sizeof(v));
	if (!f || v[0] >= f->len || (uint64_t)v[1] + v[2] > f->len) {
		L->errors++;
		return;
	}
	uint8_t *p = mem(f->gpa, f->len);
	p[v[0]] = (uint8_t)(p[v[0]] - sum(p + v[1], v[2]));
	f->cksum_cmds++;
}

static void run_loader(struct loaded *L, const struct acpi_fw_blobs *b, const uint8_t *script, size_t len)
{
	memset(L, 0, sizeof(*L));
	L->f[0] = (struct file){ .name = "etc/acpi/rsdp", .data = b->rsdp, .len = b->rsdp_len };
	L->f[1] = (struct file){ .name = "etc/acpi/tables", .data = b->tables, .len = b->tables_len };
	L->f[2] = (struct file){ .name = "etc/table-loader", .data = b->loader, .len = b->loader_len };
	memset(fseg, 0, sizeof(fseg));
	memset(high, 0xcc, sizeof(high));
	/* Odd starting points, so that alignment and the added addresses matter. */
	uint64_t fseg_next = FSEG_BASE + 0x1234, high_next = HIGH_BASE + 0x1008;
	if (len % ENTRY)
		L->errors++;
	for (size_t off = 0; off + ENTRY <= len; off += ENTRY) {
		const uint8_t *e = script + off;
		uint32_t cmd;
		memcpy(&cmd, e, 4);
		if (cmd == 1)
			do_allocate(L, e, &fseg_next, &high_next);
		else if (cmd == 2)
			do_pointer(L, e);
		else if (cmd == 3)
			do_checksum(L, e);
	}
	/* SeaBIOS's find_acpi_rsdp: the first valid RSDP on a 16-byte boundary of the F segment. */
	for (uint64_t a = FSEG_BASE; a + 36 <= FSEG_BASE + FSEG_SIZE; a += 16) {
		const uint8_t *p = mem(a, 36);
		uint32_t n = p[15] > 1 ? rd32(a + 20) : 20;
		if (!memcmp(p, "RSD PTR ", 8) && !sum(p, 20) && n >= 20 && mem(a, n) && !sum(mem(a, n), n)) {
			L->rsdp = a;
			break;
		}
	}
}

/* The table at gpa: within the tables file, its signature and a valid checksum. */
static bool table_ok(const struct loaded *L, uint64_t gpa, const char *sig)
{
	const struct file *t = &L->f[1];
	if (gpa < t->gpa || gpa + 36 > t->gpa + t->len)
		return false;
	uint32_t len = rd32(gpa + 4);
	if (len < 36 || gpa + len > t->gpa + t->len)
		return false;
	return !memcmp(mem(gpa, 4), sig, 4) && !sum(mem(gpa, len), len);
}

/* The loaded tables as a guest finds them; returns the XSDT's entries (FADT, MADT, MCFG) in *fadt etc. */
static void check_loaded(const struct loaded *L, unsigned cpus, uint64_t *fadt_out)
{
	const struct file *r = &L->f[0], *t = &L->f[1];
	EXPECT(L->errors == 0);
	EXPECT(r->allocated && r->zone == 2 && r->align == 16 && r->gpa % 16 == 0);
	EXPECT(t->allocated && t->zone == 1 && t->align == 64 && t->gpa % 64 == 0);
	EXPECT(L->rsdp != 0 && L->rsdp == r->gpa);
	EXPECT(r->len == 36);
	uint64_t rsdp = r->gpa;
	const uint8_t *rp = mem(rsdp, 36);
	if (!rp || !t->allocated)
		return;
	EXPECT(!memcmp(rp, "RSD PTR ", 8));
	EXPECT(sum(rp, 20) == 0);
	EXPECT(sum(rp, 36) == 0);
	EXPECT(rp[15] == 2 && rd32(rsdp + 20) == 36);
	/* No other RSDP where a guest might search (the tables blob included). */
	for (uint64_t a = t->gpa; a + 8 <= t->gpa + t->len; a++)
		EXPECT(memcmp(mem(a, 8), "RSD PTR ", 8) != 0);

	uint64_t rsdt = rd32(rsdp + 16), xsdt = rd64(rsdp + 24);
	EXPECT(table_ok(L, rsdt, "RSDT"));
	EXPECT(table_ok(L, xsdt, "XSDT"));
	uint32_t n = (rd32(rsdt + 4) - 36) / 4;
	EXPECT(n == 3);
	EXPECT((rd32(xsdt + 4) - 36) / 8 == n);
	uint64_t fadt = 0, madt = 0, mcfg = 0;
	for (uint32_t i = 0; i < n && i < 16; i++) {
		uint64_t e = rd32(rsdt + 36 + 4 * i);
		EXPECT(rd64(xsdt + 36 + 8 * i) == e);
		if (is_sig(e, "FACP"))
			fadt = e;
		else if (is_sig(e, "APIC"))
			madt = e;
		else if (is_sig(e, "MCFG"))
			mcfg = e;
	}
	EXPECT(table_ok(L, fadt, "FACP"));
	EXPECT(table_ok(L, madt, "APIC"));
	EXPECT(table_ok(L, mcfg, "MCFG"));
	*fadt_out = fadt;
	if (!table_ok(L, fadt, "FACP") || !table_ok(L, madt, "APIC"))
		return;

	uint64_t dsdt = rd32(fadt + 40), facs = rd32(fadt + 36);
	EXPECT(rd64(fadt + 140) == dsdt); /* X_DSDT */
	EXPECT(rd64(fadt + 132) == 0);    /* X_FIRMWARE_CTRL: FIRMWARE_CTRL is used */
	EXPECT(table_ok(L, dsdt, "DSDT"));
	EXPECT(facs % 64 == 0 && facs >= t->gpa && facs + 64 <= t->gpa + t->len);
	EXPECT(is_sig(facs, "FACS") && rd32(facs + 4) == 64);

	unsigned lapics = 0;
	uint32_t len = rd32(madt + 4);
	for (uint32_t off = 44; off + 2 <= len;) {
		const uint8_t *e = mem(madt + off, 2);
		if (e[0] == 0)
			lapics++;
		if (e[1] < 2)
			break;
		off += e[1];
	}
	EXPECT(lapics == cpus);
}

/* Every checksummed table has one ADD_CHECKSUM, after every ADD_POINTER into it. */
static void check_script(const uint8_t *script, size_t len, const struct loaded *L)
{
	struct range {
		uint32_t start, len, cksum_at;
	} tabs[16];
	int nt = 0;
	/* The tables blob, walked from the loaded RSDT/XSDT/FADT back to blob offsets. */
	uint64_t base = L->f[1].gpa, rsdt = rd32(L->rsdp + 16), xsdt = rd64(L->rsdp + 24);
	uint64_t list[8] = { rsdt, xsdt };
	int nl = 2;
	EXPECT(is_sig(rsdt, "RSDT") && is_sig(xsdt, "XSDT"));
	if (!is_sig(rsdt, "RSDT"))
		return;
	for (uint32_t i = 0; i < (rd32(rsdt + 4) - 36) / 4 && nl < 7; i++)
		list[nl++] = rd32(rsdt + 36 + 4 * i);
	for (int i = 2; i < nl; i++)
		if (is_sig(list[i], "FACP") && nl < 8)
			list[nl++] = rd32(list[i] + 40);
	for (int i = 0; i < nl; i++)
		tabs[nt++] = (struct range){ (uint32_t)(list[i] - base), rd32(list[i] + 4), 0 };
	EXPECT(nl == 6); /* RSDT, XSDT, FADT, MADT, MCFG, DSDT */

	int rsdp_cksums = 0, rsdp_ptrs_after = 0;
	for (size_t off = 0; off + ENTRY <= len; off += ENTRY) {
		const uint8_t *e = script + off;
		uint32_t cmd, idx = (uint32_t)(off / ENTRY) + 1;
		memcpy(&cmd, e, 4);
		bool rsdp = !strcmp((const char *)e + 4, "etc/acpi/rsdp");
		if (cmd == 2) {
			uint32_t o;
			memcpy(&o, e + 4 + 2 * FILESZ, 4);
			EXPECT(!strcmp((const char *)e + 4 + FILESZ, "etc/acpi/tables"));
			if (rsdp && rsdp_cksums)
				rsdp_ptrs_after++;
			for (int i = 0; !rsdp && i < nt; i++)
				if (o >= tabs[i].start && o < tabs[i].start + tabs[i].len)
					EXPECT(tabs[i].cksum_at == 0); /* no pointer after the checksum */
		} else if (cmd == 3) {
			uint32_t v[3];
			memcpy(v, e + 4 + FILESZ, sizeof(v));
			if (rsdp) {
				EXPECT((v[0] == 8 && v[1] == 0 && v[2] == 20) || (v[0] == 32 && v[1] == 0 && v[2] == 36));
				rsdp_cksums++;
				continue;
			}
			int hit = 0;
			for (int i = 0; i < nt; i++)
				if (v[1] == tabs[i].start) {
					EXPECT(v[0] == tabs[i].start + 9 && v[2] == tabs[i].len && tabs[i].cksum_at == 0);
					tabs[i].cksum_at = idx;
					hit++;
				}
			EXPECT(hit == 1);
		}
	}
	for (int i = 0; i < nt; i++)
		EXPECT(tabs[i].cksum_at != 0);
	EXPECT(rsdp_cksums == 2);
	EXPECT(rsdp_ptrs_after == 0);
}

static const struct acpi_config cfg4 = { .nr_cpus = 4, .mmio64_base = 0x100000000ull * 8, .mmio64_size = 1ull << 35 };

static void loads_like_seabios(void)
{
	static const unsigned counts[] = { 1, 4, 255 };
	for (size_t i = 0; i < 3; i++) {
		struct acpi_config c = cfg4;
		c.nr_cpus = counts[i];
		struct acpi_fw_blobs b;
		CHECK_EQ(acpi_build_fw_cfg(&c, &b), 0);
		CHECK(b.rsdp && b.tables && b.loader);
		CHECK_EQ(b.rsdp_len, 36);
		CHECK_EQ(b.loader_len % ENTRY, 0);
		CHECK(b.loader_len >= 10 * ENTRY);
		struct loaded L;
		run_loader(&L, &b, b.loader, b.loader_len);
		uint64_t fadt = 0;
		check_loaded(&L, c.nr_cpus, &fadt);
		check_script(b.loader, b.loader_len, &L);
		/* SeaBIOS reads these from the FADT once loaded. */
		CHECK(fadt != 0);
		if (fadt) {
			CHECK_EQ(rd32(fadt + 76), PORT_ACPI_PM_BASE + 8);
			CHECK_EQ(mem(fadt, 129)[116], 1);
		}
		acpi_fw_blobs_free(&b);
		CHECK(!b.rsdp && !b.tables && !b.loader && !b.tables_len);
	}
}

/* What the firmware loads is what acpi_build() writes for a direct boot, but for addresses and checksums. */
#define BASE 0xe0000ull
static uint8_t direct[0x20000];

static uint64_t direct_table(const char *sig)
{
	uint64_t xsdt, t;
	memcpy(&xsdt, direct + 24, 8);
	uint32_t len;
	memcpy(&len, direct + (xsdt - BASE) + 4, 4);
	for (uint32_t i = 0; i < (len - 36) / 8; i++) {
		memcpy(&t, direct + (xsdt - BASE) + 36 + 8 * i, 8);
		if (!memcmp(direct + (t - BASE), sig, 4))
			return t;
	}
	return 0;
}

static void same_tables_as_direct_boot(void)
{
	CHECK(acpi_build(direct, sizeof(direct), BASE, &cfg4) > 0);
	struct acpi_fw_blobs b;
	CHECK_EQ(acpi_build_fw_cfg(&cfg4, &b), 0);
	struct loaded L;
	run_loader(&L, &b, b.loader, b.loader_len);
	uint64_t fadt = 0;
	check_loaded(&L, 4, &fadt);
	uint64_t dfadt = direct_table("FACP");
	CHECK(fadt && dfadt);
	if (!fadt || !dfadt)
		goto out;
	const uint8_t *lf = mem(fadt, 276), *df = direct + (dfadt - BASE);
	/* FADT: equal but for the checksum, FIRMWARE_CTRL, DSDT and X_DSDT. */
	for (int i = 0; i < 276; i++)
		if (i != 9 && !(i >= 36 && i < 44) && !(i >= 140 && i < 148))
			CHECK_EQ(lf[i], df[i]);
	uint64_t ddsdt, dsdt = rd32(fadt + 40);
	memcpy(&ddsdt, df + 140, 8);
	uint32_t len = rd32(dsdt + 4);
	CHECK(len > 100 && !memcmp(mem(dsdt, len), direct + (ddsdt - BASE), len));
	uint32_t dfacs;
	memcpy(&dfacs, df + 36, 4);
	CHECK(!memcmp(mem(rd32(fadt + 36), 64), direct + (dfacs - BASE), 64));
	static const char *const sigs[] = { "APIC", "MCFG" };
	uint64_t rsdt = rd32(L.rsdp + 16);
	for (int s = 0; s < 2; s++) {
		uint64_t d = direct_table(sigs[s]), t = 0;
		for (uint32_t i = 0; i < 3; i++)
			if (is_sig(rd32(rsdt + 36 + 4 * i), sigs[s]))
				t = rd32(rsdt + 36 + 4 * i);
		CHECK(d && t);
		if (d && t)
			CHECK(!memcmp(mem(t, rd32(t + 4)), direct + (d - BASE), rd32(t + 4)));
	}
	/* RSDP: the same but for its addresses and checksums. */
	const uint8_t *lr = mem(L.rsdp, 36);
	CHECK(!memcmp(lr, direct, 8) && !memcmp(lr + 9, direct + 9, 7) && !memcmp(lr + 20, direct + 20, 4));
out:
	acpi_fw_blobs_free(&b);
}

/* A script missing a command, or with one altered, fails the checks above: they can fail. */
static int damaged(const struct acpi_fw_blobs *b, size_t drop, int poke_at, uint8_t poke)
{
	uint8_t script[64 * ENTRY];
	size_t len = 0;
	for (size_t off = 0; off < b->loader_len && len < sizeof(script); off += ENTRY) {
		if (off / ENTRY == drop)
			continue;
		memcpy(script + len, b->loader + off, ENTRY);
		len += ENTRY;
	}
	if (poke_at >= 0)
		script[poke_at] = poke;
	struct loaded L;
	run_loader(&L, b, script, len);
	problems = 0;
	quiet = true;
	uint64_t fadt = 0;
	check_loaded(&L, cfg4.nr_cpus, &fadt);
	if (L.rsdp)
		check_script(script, len, &L);
	quiet = false;
	return problems;
}

static void damaged_scripts_are_caught(void)
{
	struct acpi_fw_blobs b;
	CHECK_EQ(acpi_build_fw_cfg(&cfg4, &b), 0);
	size_t n = b.loader_len / ENTRY;
	CHECK_EQ(damaged(&b, SIZE_MAX, -1, 0), 0); /* undamaged */
	/* Without any one command, what the guest finds is wrong somewhere. */
	for (size_t i = 0; i < n; i++) {
		int p = damaged(&b, i, -1, 0);
		if (!p)
			printf("  (loader command %zu can be dropped unnoticed)\n", i);
		CHECK(p > 0);
	}
	/* A 4-byte ADD_POINTER made 2 bytes wide; a checksum's offset moved. */
	for (size_t i = 0; i < n; i++) {
		uint32_t cmd;
		memcpy(&cmd, b.loader + i * ENTRY, 4);
		if (cmd == 2 && b.loader[i * ENTRY + 4 + 2 * FILESZ + 4] == 4)
			CHECK(damaged(&b, SIZE_MAX, (int)(i * ENTRY + 4 + 2 * FILESZ + 4), 2) > 0);
		if (cmd == 3)
			CHECK(damaged(&b, SIZE_MAX, (int)(i * ENTRY + 4 + FILESZ), b.loader[i * ENTRY + 4 + FILESZ] + 1) > 0);
	}
	acpi_fw_blobs_free(&b);
}

static void refusals(void)
{
	struct acpi_fw_blobs b;
	memset(&b, 0x5a, sizeof(b));
	struct acpi_config c = cfg4;
	c.nr_cpus = 0;
	CHECK_EQ(acpi_build_fw_cfg(&c, &b), -EINVAL);
	CHECK(!b.rsdp && !b.tables && !b.loader && !b.rsdp_len && !b.tables_len && !b.loader_len);
	c.nr_cpus = 256;
	memset(&b, 0x5a, sizeof(b));
	CHECK_EQ(acpi_build_fw_cfg(&c, &b), -EINVAL);
	CHECK(!b.rsdp && !b.loader_len);
	acpi_fw_blobs_free(&b); /* a zeroed set is fine to free */
	acpi_fw_blobs_free(&b);
	/* Names fit fw_cfg's 56 bytes with their NUL. */
	CHECK(strlen(ACPI_FW_RSDP_FILE) < FILESZ && !strcmp(ACPI_FW_RSDP_FILE, "etc/acpi/rsdp"));
	CHECK(!strcmp(ACPI_FW_TABLES_FILE, "etc/acpi/tables"));
	CHECK(!strcmp(ACPI_FW_LOADER_FILE, "etc/table-loader"));
}

int main(void)
{
	RUN("acpi_loader", loads_like_seabios);
	RUN("acpi_loader", same_tables_as_direct_boot);
	RUN("acpi_loader", damaged_scripts_are_caught);
	RUN("acpi_loader", refusals);
	UNIT_EXIT();
}
