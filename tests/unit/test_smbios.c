// SPDX-License-Identifier: MIT
/*
 * SMBIOS tables for firmware (smbios_build): the entry point as SeaBIOS's
 * smbios_romfile_setup takes and patches it, the structures walked as
 * SeaBIOS and dmidecode walk them, and refusals.
 */
#include <errno.h>
#include <stdint.h>

#include "base/util.h"
#include "fw/smbios.h"
#include "unit.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* One structure found by walking the table. */
struct st {
	const uint8_t *p; /* its formatted part */
	size_t size;      /* with its strings */
	const char *str[16];
	unsigned nstr;
};

#define MAX_ST 600
static struct st sts[MAX_ST];

/*
 * Walk the structures: each formatted part within the table, its strings
 * non-empty and ended by a double NUL (two NULs when it has none).  Returns
 * the count, or -1 if the table is malformed.
 */
static int walk(const uint8_t *t, size_t len)
{
	size_t off = 0;
	int n = 0;
	while (off < len) {
		if (n >= MAX_ST || len - off < 4 || t[off + 1] < 4 || t[off + 1] > len - off - 2)
			return -1;
		struct st *s = &sts[n++];
		memset(s, 0, sizeof(*s));
		s->p = t + off;
		size_t pos = off + t[off + 1];
		if (!t[pos] && !t[pos + 1]) {
			pos += 2; /* no strings */
		} else {
			for (;;) {
				const char *str = (const char *)t + pos;
				size_t sl = strnlen(str, len - pos);
				if (sl == 0 || sl == len - pos || s->nstr >= 16)
					return -1; /* an empty string, or no NUL before the end */
				s->str[s->nstr++] = str;
				pos += sl + 1;
				if (pos >= len)
					return -1;
				if (!t[pos]) {
					pos++;
					break;
				}
			}
		}
		s->size = pos - off;
		off = pos;
		if (s->p[0] == 127)
			break;
	}
	return off == len ? n : -1;
}

/* String number idx of structure s ("" for 0); NULL when it has no such string. */
static const char *sstr(const struct st *s, unsigned field)
{
	unsigned idx = s->p[field];
	if (!idx)
		return "";
	return idx <= s->nstr ? s->str[idx - 1] : NULL;
}

/* SeaBIOS's smbios_next (src/fw/biostables.c): how it steps through the table. */
static const uint8_t *seabios_next(const uint8_t *start, uint32_t length, const uint8_t *prev)
{
	const uint8_t *end = start + length;
	if (!prev) {
		prev = start;
	} else {
		if (prev + 4 > end)
			return NULL;
		prev += prev[1] + 2;
		while (prev < end && (prev[-1] != 0 || prev[-2] != 0))
			prev++;
	}
	if (prev >= end || prev + 4 >= end || prev + prev[1] >= end)
		return NULL;
	return prev;
}

static const uint8_t uuid[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

/* Build, check the anchor against the table and walk it; returns the structure count or -1. */
static int build_and_walk(const struct smbios_config *c, uint8_t **a, size_t *al, uint8_t **t, size_t *tl)
{
	int err = smbios_build(c, a, al, t, tl);
	CHECK_EQ(err, 0);
	if (err)
		return -1;
	CHECK_EQ(*al, 0x1f);
	const uint8_t *e = *a;
	CHECK(!memcmp(e, "_SM_", 4));
	CHECK_EQ(e[5], 0x1f);
	CHECK_EQ(sum(e, 0x1f), 0);
	CHECK_EQ(sum(e, 0x10), 0);
	CHECK_EQ(sum(e + 0x10, 0x0f), 0);
	CHECK(!memcmp(e + 0x10, "_DMI_", 5));
	CHECK(e[6] == 2 && e[7] == 8 && e[0x1e] == 0x28);
	CHECK_EQ(rd16(e + 0x16), *tl); /* SeaBIOS takes the table only if its length matches the file */
	int n = walk(*t, *tl);
	CHECK(n > 0);
	if (n <= 0)
		return -1;
	CHECK_EQ(rd16(e + 0x1c), n);
	size_t max = 0;
	for (int i = 0; i < n; i++)
		max = MAX(max, sts[i].size);
	CHECK_EQ(rd16(e + 8), max);
	/* SeaBIOS's iterator sees the same structures. */
	int k = 0;
	for (const uint8_t *p = seabios_next(*t, (uint32_t)*tl, NULL); p; p = seabios_next(*t, (uint32_t)*tl, p))
		CHECK(k < n && p == sts[k++].p);
	CHECK_EQ(k, n);
	return n;
}

static int count_type(int n, uint8_t type)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		c += sts[i].p[0] == type;
	return c;
}

static const struct st *first(int n, uint8_t type)
{
	for (int i = 0; i < n; i++)
		if (sts[i].p[0] == type)
			return &sts[i];
	return NULL;
}

static void structures(void)
{
	struct smbios_config c = { .nr_cpus = 3, .ram_below_4g = 3 * GiB, .ram_above_4g = 33 * GiB, .uuid = uuid };
	uint8_t *a, *t;
	size_t al, tl;
	int n = build_and_walk(&c, &a, &al, &t, &tl);
	if (n < 0)
		return;
	/* 0, 1, 3, 4 x3, 16, 17 x3 (16 + 16 + 4 GiB), 19 x2, 32, 127 */
	CHECK_EQ(n, 14);
	static const uint8_t want[][2] = { { 0, 1 }, { 1, 1 }, { 3, 1 }, { 4, 3 }, { 16, 1 },
					   { 17, 3 }, { 19, 2 }, { 32, 1 }, { 127, 1 } };
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		CHECK_EQ(count_type(n, want[i][0]), want[i][1]);
	CHECK_EQ(sts[n - 1].p[0], 127);
	CHECK_EQ(sts[0].p[0], 0);
	/* Handles unique, none reserved. */
	for (int i = 0; i < n; i++) {
		CHECK(rd16(sts[i].p + 2) < 0xfeff);
		for (int j = 0; j < i; j++)
			CHECK(rd16(sts[i].p + 2) != rd16(sts[j].p + 2));
	}

	const struct st *s0 = first(n, 0), *s1 = first(n, 1), *s3 = first(n, 3), *s16 = first(n, 16);
	CHECK(s0->p[1] >= 0x18 && !strcmp(sstr(s0, 4), "keel") && !strcmp(sstr(s0, 5), "1"));
	const char *date = sstr(s0, 8);
	CHECK(date && strlen(date) == 10 && date[2] == '/' && date[5] == '/');
	CHECK(s1->p[1] >= 0x1b && !strcmp(sstr(s1, 4), "keel") && !strcmp(sstr(s1, 5), "keel virtual machine"));
	CHECK(sstr(s1, 6) && !strcmp(sstr(s1, 7), "")); /* a version, no serial number */
	static const uint8_t smbios_uuid[16] = { 0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
						 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	CHECK(!memcmp(s1->p + 8, smbios_uuid, 16));
	CHECK(s3->p[1] >= 0x0d && !strcmp(sstr(s3, 4), "keel") && (s3->p[5] & 0x7f) == 0x01);
	/* Every string a structure refers to exists (the string fields by type). */
	static const struct {
		uint8_t type, fields[8];
	} strf[] = { { 0, { 4, 5, 8 } },        { 1, { 4, 5, 6, 7, 0x19, 0x1a } },
		     { 3, { 4, 6, 7, 8, 0x15 } }, { 4, { 4, 7, 0x10, 0x20, 0x21, 0x22 } },
		     { 17, { 0x10, 0x11, 0x17, 0x18, 0x19, 0x1a } } };
	for (int i = 0; i < n; i++)
		for (size_t f = 0; f < ARRAY_SIZE(strf); f++)
			for (int k = 0; strf[f].type == sts[i].p[0] && k < 8 && strf[f].fields[k]; k++)
				if (strf[f].fields[k] < sts[i].p[1])
					CHECK(sstr(&sts[i], strf[f].fields[k]) != NULL);
	/* A structure without strings ends in exactly two NULs. */
	const struct st *s32 = first(n, 32);
	CHECK(s32->nstr == 0 && s32->size == (size_t)s32->p[1] + 2);

	/* Processors: one per vCPU, populated and enabled, named in order. */
	int cpu = 0;
	for (int i = 0; i < n; i++) {
		if (sts[i].p[0] != 4)
			continue;
		char name[16];
		snprintf(name, sizeof(name), "CPU %d", cpu++);
		CHECK(sts[i].p[1] >= 0x2a && !strcmp(sstr(&sts[i], 4), name));
		CHECK_EQ(sts[i].p[5], 3);    /* central processor */
		CHECK_EQ(sts[i].p[0x18], 0x41);
		CHECK_EQ(sts[i].p[0x23], 1); /* one core */
	}

	/* Memory: devices add up to the RAM, each in the one array; ranges below and above 4 GiB. */
	uint16_t array = rd16(s16->p + 2);
	CHECK_EQ(rd16(s16->p + 0x0d), 3);
	CHECK_EQ(rd32(s16->p + 7), 36 * GiB / KiB);
	uint64_t mb = 0;
	for (int i = 0; i < n; i++) {
		if (sts[i].p[0] == 17) {
			CHECK_EQ(rd16(sts[i].p + 4), array);
			CHECK(rd16(sts[i].p + 0x0c) < 0x7fff);
			mb += rd16(sts[i].p + 0x0c);
			CHECK(!strncmp(sstr(&sts[i], 0x10) ? sstr(&sts[i], 0x10) : "", "DIMM ", 5));
		} else if (sts[i].p[0] == 19) {
			CHECK_EQ(rd16(sts[i].p + 0x0c), array);
		}
	}
	CHECK_EQ(mb, 36 * 1024);
	const struct st *r0 = first(n, 19), *r1 = r0 + 1;
	CHECK(r1->p[0] == 19);
	CHECK(rd32(r0->p + 4) == 0 && rd32(r0->p + 8) == 3 * GiB / KiB - 1);
	CHECK(rd32(r1->p + 4) == 4 * GiB / KiB && rd32(r1->p + 8) == 37 * GiB / KiB - 1);
	free(a);
	free(t);

	/* Without a UUID: all zero (not present); RAM below 4 GiB only: one range, one device. */
	c = (struct smbios_config){ .nr_cpus = 1, .ram_below_4g = 512 * MiB };
	n = build_and_walk(&c, &a, &al, &t, &tl);
	if (n < 0)
		return;
	static const uint8_t zero[16];
	CHECK(!memcmp(first(n, 1)->p + 8, zero, 16));
	CHECK_EQ(count_type(n, 19), 1);
	CHECK_EQ(count_type(n, 17), 1);
	CHECK_EQ(count_type(n, 4), 1);
	CHECK_EQ(rd16(first(n, 17)->p + 0x0c), 512);
	free(a);
	free(t);
}

/* What SeaBIOS does with the anchor: the table's new address in, both checksums fixed, then its checks. */
static void seabios_patches_anchor(void)
{
	struct smbios_config c = { .nr_cpus = 2, .ram_below_4g = 2 * GiB };
	uint8_t *a, *t;
	size_t al, tl;
	if (build_and_walk(&c, &a, &al, &t, &tl) < 0)
		return;
	CHECK_EQ(rd32(a + 0x18), 0);
	uint32_t addr = 0x7fffe000;
	memcpy(a + 0x18, &addr, 4);
	a[4] = (uint8_t)(a[4] - sum(a, 0x10));
	a[0x15] = (uint8_t)(a[0x15] - sum(a + 0x10, a[5] - 0x10));
	/* copy_smbios_21's checks, and the whole entry point as the specification has it */
	CHECK(!memcmp(a, "_SM_", 4) && sum(a, 0x10) == 0 && !memcmp(a + 0x10, "_DMI_", 5));
	CHECK_EQ(sum(a + 0x10, a[5] - 0x10), 0);
	CHECK_EQ(sum(a, 0x1f), 0);
	CHECK_EQ(rd32(a + 0x18), addr);
	free(a);
	free(t);
}

static void large_configs(void)
{
	/* 255 vCPUs, 1 TiB: fits the 2.1 entry point's 16-bit length. */
	struct smbios_config c = { .nr_cpus = 255, .ram_below_4g = 2 * GiB, .ram_above_4g = 1022 * GiB };
	uint8_t *a, *t;
	size_t al, tl;
	int n = build_and_walk(&c, &a, &al, &t, &tl);
	if (n < 0)
		return;
	CHECK_EQ(count_type(n, 4), 255);
	CHECK_EQ(count_type(n, 17), 64);
	CHECK(!strcmp(sstr(&sts[3 + 254], 4), "CPU 254"));
	free(a);
	free(t);

	/* 4 TiB: the array's capacity and the high range in the extended fields. */
	c = (struct smbios_config){ .nr_cpus = 1, .ram_below_4g = 3 * GiB, .ram_above_4g = 4096 * GiB - 3 * GiB };
	n = build_and_walk(&c, &a, &al, &t, &tl);
	if (n < 0)
		return;
	const struct st *s16 = first(n, 16), *r1 = first(n, 19) + 1;
	CHECK_EQ(rd32(s16->p + 7), 0x80000000u);
	CHECK_EQ(rd64(s16->p + 0x0f), 4096 * GiB);
	CHECK_EQ(rd16(s16->p + 0x0d), 256);
	CHECK_EQ(count_type(n, 17), 256);
	CHECK(r1->p[0] == 19 && rd32(r1->p + 4) == 0xffffffffu && rd32(r1->p + 8) == 0xffffffffu);
	CHECK_EQ(rd64(r1->p + 0x0f), 4 * GiB);
	CHECK_EQ(rd64(r1->p + 0x17), 4 * GiB + 4096 * GiB - 3 * GiB - 1);
	free(a);
	free(t);
}

static void refusals(void)
{
	static const struct smbios_config bad[] = {
		{ .nr_cpus = 0, .ram_below_4g = GiB },
		{ .nr_cpus = 256, .ram_below_4g = GiB },
		{ .nr_cpus = 1, .ram_below_4g = 0 },
		{ .nr_cpus = 1, .ram_below_4g = 4 * GiB + 2 * MiB },
		{ .nr_cpus = 1, .ram_below_4g = GiB, .ram_above_4g = UINT64_MAX - GiB },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t *a = (uint8_t *)1, *t = (uint8_t *)1;
		size_t al = 1, tl = 1;
		CHECK_EQ(smbios_build(&bad[i], &a, &al, &t, &tl), -EINVAL);
		CHECK(!a && !t && !al && !tl);
	}
	/* More than 256 memory devices of 16 GiB. */
	struct smbios_config c = { .nr_cpus = 1, .ram_below_4g = GiB, .ram_above_4g = 4096 * GiB };
	uint8_t *a, *t;
	size_t al, tl;
	CHECK_EQ(smbios_build(&c, &a, &al, &t, &tl), -E2BIG);
	CHECK(!a && !t);
	CHECK(!strcmp(SMBIOS_ANCHOR_FILE, "etc/smbios/smbios-anchor"));
	CHECK(!strcmp(SMBIOS_TABLES_FILE, "etc/smbios/smbios-tables"));
}

int main(void)
{
	RUN("smbios", structures);
	RUN("smbios", seabios_patches_anchor);
	RUN("smbios", large_configs);
	RUN("smbios", refusals);
	UNIT_EXIT();
}
