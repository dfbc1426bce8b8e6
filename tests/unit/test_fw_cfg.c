// SPDX-License-Identifier: MIT
/*
 * fw_cfg (src/fw/fw_cfg.c) through its ports, as SeaBIOS reads it: the
 * signature and features through the data port, the DMA register's
 * signature, the file directory, DMA reads (select, skip, zeroes past an
 * item's end), and what a hostile guest may try: DMA writes, transfers
 * and descriptors outside RAM, selections of items that do not exist.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "fw/fw_cfg.h"
#include "unit.h"
#include "vmm/guest_mem.h"

#define RAM (1u << 20)

static struct guest_mem mem;

static uint64_t io(struct fw_cfg *f, uint64_t off, unsigned size, bool write, uint64_t v)
{
	fw_cfg_io(f, off, size, write, &v);
	return v;
}

static void read_item(struct fw_cfg *f, uint16_t key, uint8_t *buf, size_t n)
{
	io(f, 0, 2, true, key);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)io(f, 1, 1, false, 0);
}

/* Run a DMA transfer described at desc; returns the control word written back. */
static uint32_t dma(struct fw_cfg *f, uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
	uint32_t c = htobe32(control), l = htobe32(len);
	uint64_t a = htobe64(addr);
	gm_write(&mem, desc, &c, 4);
	gm_write(&mem, desc + 4, &l, 4);
	gm_write(&mem, desc + 8, &a, 8);
	io(f, 4, 4, true, htobe32((uint32_t)(desc >> 32)));
	io(f, 8, 4, true, htobe32((uint32_t)desc));
	uint32_t out;
	gm_read(&mem, desc, &out, 4);
	return be32toh(out);
}

static void fw_cfg_ports(void)
{
	CHECK_EQ(gm_init(&mem, RAM), 0);
	struct fw_cfg *f = fw_cfg_new(&mem, 2, 256ull << 20);
	CHECK(f);
	if (!f)
		return;
	uint8_t b[256];
	read_item(f, 0, b, 5);
	CHECK(!memcmp(b, "QEMU", 4) && b[4] == 0); /* past the end: 0 */
	read_item(f, 1, b, 4);
	CHECK_EQ(b[0], 3); /* traditional interface and DMA */
	read_item(f, 5, b, 2);
	CHECK_EQ(b[0] | b[1] << 8, 2);
	uint64_t ram;
	read_item(f, 3, (uint8_t *)&ram, 8);
	CHECK_EQ(le64toh(ram), 256ull << 20);
	read_item(f, 0x7777, b, 2); /* no such item: zeroes */
	CHECK(b[0] == 0 && b[1] == 0);
	uint32_t s1 = (uint32_t)io(f, 4, 4, false, 0), s2 = (uint32_t)io(f, 8, 4, false, 0);
	CHECK(!memcmp(&s1, "QEMU", 4) && !memcmp(&s2, " CFG", 4));

	/* Files and the directory. */
	static uint8_t big[100];
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i + 1);
	CHECK_EQ(fw_cfg_add_file(f, "etc/a", "abc", 3), 0);
	CHECK_EQ(fw_cfg_add_file(f, "etc/b", big, sizeof(big)), 0);
	CHECK_EQ(fw_cfg_add_file(f, "etc/a", "xyz!", 4), 0); /* replaced, same key */
	read_item(f, 0x19, b, 4 + 2 * 64);
	CHECK_EQ(be32toh(*(uint32_t *)b), 2);
	CHECK_EQ(be32toh(*(uint32_t *)(b + 4)), 4);
	CHECK_EQ(be16toh(*(uint16_t *)(b + 8)), 0x20);
	CHECK(!strcmp((char *)b + 12, "etc/a"));
	CHECK_EQ(be32toh(*(uint32_t *)(b + 68)), 100);
	CHECK_EQ(be16toh(*(uint16_t *)(b + 72)), 0x21);
	CHECK(!strcmp((char *)b + 76, "etc/b"));

	/* DMA: select and read 120 bytes of a 100-byte file: the file, then zeroes. */
	memset(b, 0xee, sizeof(b));
	gm_write(&mem, 0x2000, b, sizeof(b));
	CHECK_EQ(dma(f, 0x1000, 0x21u << 16 | 8 | 2, 120, 0x2000), 0);
	gm_read(&mem, 0x2000, b, sizeof(b));
	CHECK(!memcmp(b, big, 100) && b[100] == 0 && b[119] == 0 && b[120] == 0xee);
	/* Skip 10, read 5: bytes 10-14. */
	CHECK_EQ(dma(f, 0x1000, 0x21u << 16 | 8 | 4, 10, 0), 0);
	CHECK_EQ(dma(f, 0x1000, 2, 5, 0x3000), 0);
	gm_read(&mem, 0x3000, b, 5);
	CHECK(!memcmp(b, big + 10, 5));

	/* Hostile: a write, a target outside RAM, a descriptor outside RAM, a huge length. */
	CHECK_EQ(dma(f, 0x1000, 0x21u << 16 | 8 | 16, 4, 0x3000), 1);
	CHECK_EQ(dma(f, 0x1000, 0x21u << 16 | 8 | 2, 16, RAM - 8), 1);
	CHECK_EQ(dma(f, 0x1000, 0x21u << 16 | 8 | 2, UINT32_MAX, 0x4000), 1);
	io(f, 4, 4, true, htobe32(0xffffffffu));
	io(f, 8, 4, true, htobe32(0xfffff000u)); /* nothing there: ignored */
	CHECK_EQ(io(f, 2, 1, false, 0), 0);      /* bytes no register covers */
	io(f, 1, 1, true, 0x55);                  /* data-port writes: ignored */

	/* Names and room. */
	char name[80];
	memset(name, 'n', sizeof(name));
	name[56] = 0;
	CHECK_EQ(fw_cfg_add_file(f, name, "x", 1), -EINVAL);
	CHECK_EQ(fw_cfg_add_file(f, "", "x", 1), -EINVAL);
	int rc = 0;
	for (unsigned i = 0; i < 100 && !rc; i++) {
		snprintf(name, sizeof(name), "etc/f%u", i);
		rc = fw_cfg_add_file(f, name, "x", 1);
	}
	CHECK_EQ(rc, -ENOSPC);
	fw_cfg_free(f);
	gm_destroy(&mem);
}

int main(void)
{
	RUN("fw", fw_cfg_ports);
	UNIT_EXIT();
}
