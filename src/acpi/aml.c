// SPDX-License-Identifier: MIT
#include "aml.h"

#include <string.h>

enum {
	AML_ZERO = 0x00,
	AML_ONE = 0x01,
	AML_NAME = 0x08,
	AML_BYTE = 0x0a,
	AML_WORD = 0x0b,
	AML_DWORD = 0x0c,
	AML_STRING = 0x0d,
	AML_QWORD = 0x0e,
	AML_SCOPE = 0x10,
	AML_BUFFER = 0x11,
	AML_PACKAGE = 0x12,
	AML_EXT = 0x5b,
	AML_EXT_DEVICE = 0x82,
	AML_EXT_OPREGION = 0x80,
	AML_EXT_FIELD = 0x81,
	AML_METHOD = 0x14,
	AML_IF = 0xa0,
	AML_ELSE = 0xa1,
	AML_ONES = 0xff,
	AML_ROOT = 0x5c,
	AML_DUAL_NAME = 0x2e,
	AML_MULTI_NAME = 0x2f,
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

bool aml_failed(const struct aml *a)
{
	return a->failed || a->depth != 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->failed || n > a->cap - a->len) {
		a->failed = true;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void le(struct aml *a, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

static void name_seg(struct aml *a, const char *s, size_t n)
{
	char seg[4] = { '_', '_', '_', '_' };
	if (n == 0 || n > 4) {
		a->failed = true;
		return;
	}
	memcpy(seg, s, n);
	aml_bytes(a, seg, 4);
}

void aml_namestring(struct aml *a, const char *path)
{
	if (*path == '\\') {
		aml_byte(a, AML_ROOT);
		path++;
	}
	const char *segs[8];
	size_t lens[8], n = 0;
	while (*path) {
		if (n == 8) {
			a->failed = true;
			return;
		}
		const char *dot = strchr(path, '.');
		size_t l = dot ? (size_t)(dot - path) : strlen(path);
		segs[n] = path;
		lens[n++] = l;
		path += l + (dot ? 1 : 0);
	}
	if (n == 0) {
		aml_byte(a, AML_ZERO); /* NullName */
		return;
	}
	if (n == 2) {
		aml_byte(a, AML_DUAL_NAME);
	} else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)n);
	}
	for (size_t i = 0; i < n; i++)
		name_seg(a, segs[i], lens[i]);
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v == UINT64_MAX) {
		aml_byte(a, AML_ONES);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE);
		le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD);
		le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, AML_DWORD);
		le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD);
		le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING);
	aml_bytes(a, s, strlen(s) + 1);
}

void aml_eisaid(struct aml *a, const char *id)
{
	/* Three letters, five bits each, then four hex digits; stored big-endian. */
	if (strlen(id) != 7) {
		a->failed = true;
		return;
	}
	uint32_t v = (uint32_t)((id[0] - 0x40) & 0x1f) << 26 | (uint32_t)((id[1] - 0x40) & 0x1f) << 21 |
		     (uint32_t)((id[2] - 0x40) & 0x1f) << 16;
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d = (c >= '0' && c <= '9') ? (uint32_t)(c - '0') : (uint32_t)((c | 0x20) - 'a' + 10);
		v |= (d & 0xf) << (4 * (6 - i));
	}
	aml_byte(a, AML_DWORD);
	aml_byte(a, (uint8_t)(v >> 24));
	aml_byte(a, (uint8_t)(v >> 16));
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
}

size_t aml_pkglength(uint8_t out[4], size_t content_len)
{
	/* The encoded length counts its own bytes. */
	for (size_t n = 1; n <= 4; n++) {
		size_t total = content_len + n;
		if (n == 1 && total <= 0x3f) {
			out[0] = (uint8_t)total;
			return 1;
		}
		if (n > 1 && total < (1ull << (4 + 8 * (n - 1)))) {
			out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
			for (size_t i = 1; i < n; i++)
				out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
			return n;
		}
	}
	return 0;
}

static void pkg_open(struct aml *a)
{
	if (a->depth == AML_MAX_DEPTH) {
		a->failed = true;
		return;
	}
	a->open[a->depth++] = a->len;
}

void aml_end(struct aml *a)
{
	if (a->failed || a->depth == 0) {
		a->failed = true;
		return;
	}
	size_t start = a->open[--a->depth];
	size_t content = a->len - start;
	uint8_t enc[4];
	size_t n = aml_pkglength(enc, content);
	if (n == 0 || n > a->cap - a->len) {
		a->failed = true;
		return;
	}
	memmove(a->buf + start + n, a->buf + start, content);
	memcpy(a->buf + start, enc, n);
	a->len += n;
}

void aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE);
	pkg_open(a);
	aml_namestring(a, path);
}

void aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT);
	aml_byte(a, AML_EXT_DEVICE);
	pkg_open(a);
	aml_namestring(a, name);
}

void aml_package_begin(struct aml *a, uint8_t count)
{
	aml_byte(a, AML_PACKAGE);
	pkg_open(a);
	aml_byte(a, count);
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME);
	aml_namestring(a, name);
}

void aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	aml_byte(a, AML_METHOD);
	pkg_open(a);
	aml_namestring(a, name);
	aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 8 : 0)));
}

void aml_if_begin(struct aml *a)
{
	aml_byte(a, AML_IF);
	pkg_open(a);
}

void aml_else_begin(struct aml *a)
{
	aml_byte(a, AML_ELSE);
	pkg_open(a);
}

void aml_opregion(struct aml *a, const char *name, uint8_t space, uint64_t offset, uint64_t len)
{
	aml_byte(a, AML_EXT);
	aml_byte(a, AML_EXT_OPREGION);
	aml_namestring(a, name);
	aml_byte(a, space);
	aml_integer(a, offset);
	aml_integer(a, len);
}

void aml_field_begin(struct aml *a, const char *region, uint8_t flags)
{
	aml_byte(a, AML_EXT);
	aml_byte(a, AML_EXT_FIELD);
	pkg_open(a);
	aml_namestring(a, region);
	aml_byte(a, flags);
}

void aml_field_unit(struct aml *a, const char *name, unsigned bits)
{
	name_seg(a, name, strlen(name));
	/* The width in bits, in PkgLength's encoding but counting only itself (not its own bytes). */
	if (bits < 0x40) {
		aml_byte(a, (uint8_t)bits);
	} else if (bits < 0x1000) {
		aml_byte(a, (uint8_t)(0x40 | (bits & 0xf)));
		aml_byte(a, (uint8_t)(bits >> 4));
	} else {
		a->failed = true;
	}
}

/*
 * A resource template is Buffer(size){descriptors..., EndTag}.  The size is
 * a TermArg inside the package, so it is patched in at the end: reserve a
 * WordConst for it.
 */
void aml_resources_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER);
	pkg_open(a);
	aml_byte(a, AML_WORD);
	le(a, 0, 2);
}

void aml_resources_end(struct aml *a)
{
	if (a->failed || a->depth == 0) {
		a->failed = true;
		return;
	}
	aml_byte(a, 0x79); /* EndTag */
	aml_byte(a, 0x00); /* checksum 0: "treat as correct" */
	size_t start = a->open[a->depth - 1];
	size_t size = a->len - start - 3;
	a->buf[start + 1] = (uint8_t)size;
	a->buf[start + 2] = (uint8_t)(size >> 8);
	aml_end(a);
}

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	/* Small I/O port descriptor, 16-bit decode, fixed base. */
	const uint8_t d[8] = { 0x47, 0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)base, (uint8_t)(base >> 8),
			       1, len };
	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq(struct aml *a, uint16_t mask)
{
	/* IRQNoFlags: edge, active high, exclusive. */
	const uint8_t d[3] = { 0x22, (uint8_t)mask, (uint8_t)(mask >> 8) };
	aml_bytes(a, d, sizeof(d));
}

void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len)
{
	aml_byte(a, 0x86); /* Memory32Fixed, read-write */
	le(a, 9, 2);
	aml_byte(a, 1);
	le(a, base, 4);
	le(a, len, 4);
}

/*
 * Address space descriptors (Word 0x88, DWord 0x87, QWord 0x8a).  General
 * flags 0x0c: producer, positive decode, minimum and maximum fixed.
 */
static void addr_space(struct aml *a, uint8_t tag, unsigned width, uint8_t type, uint8_t type_flags,
		       uint64_t min, uint64_t max)
{
	aml_byte(a, tag);
	le(a, 3 + 5 * width, 2);
	aml_byte(a, type);
	aml_byte(a, 0x0c);
	aml_byte(a, type_flags);
	le(a, 0, width);             /* granularity */
	le(a, min, width);           /* minimum */
	le(a, max, width);           /* maximum */
	le(a, 0, width);             /* translation offset */
	le(a, max - min + 1, width); /* length */
}

void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	addr_space(a, 0x88, 2, 2, 0, min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	addr_space(a, 0x88, 2, 1, 3 /* entire range */, min, max);
}

void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max)
{
	addr_space(a, 0x87, 4, 0, 1 /* read-write, non-cacheable */, min, max);
}

void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max)
{
	addr_space(a, 0x8a, 8, 0, 1, min, max);
}

void aml_res_interrupt(struct aml *a, uint8_t flags, const uint32_t *irqs, unsigned n)
{
	if (n == 0 || n > 32) {
		a->failed = true;
		return;
	}
	unsigned len = 2 + 4 * n;
	const uint8_t d[5] = { 0x89, (uint8_t)len, 0, flags, (uint8_t)n };
	aml_bytes(a, d, sizeof(d));
	for (unsigned i = 0; i < n; i++)
		le(a, irqs[i], 4);
}
