// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the partition-table parser (src/block/part.c): the
 * input is the start of a 1 MiB disk (MBR, EBR chain, GPT header and
 * entries) after one byte that picks the partition asked for (bits 0-5),
 * the block size (bit 7: 4096, else 512) and whether to fix the GPT's CRC32s
 * first and copy its header to the backup's place (bit 6), so that the
 * fuzzer gets past them to the fields behind.
 * Disk images are user input, not trusted.  An accepted partition must lie
 * inside the disk, and reading its first and last block must work.
 * tests/fuzz/run.sh seeds the corpus with an MBR and a GPT disk.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "block/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK (1u << 20)

struct memdisk {
	struct blk_dev dev;
	uint8_t *img;
};

static int mem_submit(struct blk_dev *d, struct blk_req *r)
{
	struct memdisk *m = (struct memdisk *)d;
	int rc = blk_req_check(d, r);
	if (rc)
		return rc;
	uint64_t done = 0;
	for (unsigned i = 0; r->op == BLK_READ && i < r->iovcnt; i++) {
		memcpy(r->iov[i].iov_base, m->img + r->offset + done, r->iov[i].iov_len);
		done += r->iov[i].iov_len;
	}
	r->status = 0;
	r->done(r);
	return 0;
}

static void mem_close(struct blk_dev *d)
{
	(void)d; /* static */
}

static const struct blk_ops mem_ops = { .submit = mem_submit, .close = mem_close };

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Give the GPT header h correct CRC32s where its sizes allow computing them. */
static void fix_header_crcs(uint8_t *img, uint8_t *h, uint32_t bs)
{
	uint32_t hsize = get32(h + 12), n = get32(h + 80), esize = get32(h + 84);
	uint64_t lba;
	memcpy(&lba, h + 72, 8);
	if (lba < DISK / bs && (uint64_t)n * esize <= DISK - lba * bs) {
		uint32_t crc = (uint32_t)crc32(0, img + lba * bs, (uInt)((uint64_t)n * esize));
		memcpy(h + 88, &crc, 4);
	}
	if (hsize >= 92 && hsize <= bs) {
		memset(h + 16, 0, 4);
		uint32_t crc = (uint32_t)crc32(0, h, hsize);
		memcpy(h + 16, &crc, 4);
	}
}

/*
 * Fix the CRC32s of the GPT header at block 1, and put a copy of it, saying
 * it is there, in the last block as the backup: a primary refused for any
 * other field (its own position, say) then falls back to a fuzzed backup.
 */
static void fix_gpt_crcs(uint8_t *img, uint32_t bs)
{
	uint8_t *h = img + bs, *b = img + DISK - bs;
	uint64_t last = DISK / bs - 1;
	fix_header_crcs(img, h, bs);
	memcpy(b, h, bs);
	memcpy(b + 24, &last, 8);
	fix_header_crcs(img, b, bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct memdisk m;
	static uint8_t buf[4096];
	if (!m.img && !(m.img = malloc(DISK)))
		abort();
	if (size < 1)
		return 0;
	unsigned partition = 1 + (data[0] & 0x3f) % 40;
	uint32_t bs = data[0] & 0x80 ? 4096 : 512;
	memset(m.img, 0, DISK);
	memcpy(m.img, data + 1, size - 1 < DISK ? size - 1 : DISK);
	if (data[0] & 0x40)
		fix_gpt_crcs(m.img, bs);
	m.dev = (struct blk_dev){ .ops = &mem_ops, .layer = "mem", .size = DISK, .block_size = bs,
				  .queue_depth = 4, .read_only = true };
	struct blk_dev *p = NULL;
	char err[256];
	if (blk_part_open(&m.dev, partition, &p, err, sizeof(err)))
		return 0;
	if (!p->size || p->size > DISK || p->size % bs)
		abort();
	if (blk_io_sync(p, BLK_READ, 0, 0, buf, bs) || blk_io_sync(p, BLK_READ, 0, p->size - bs, buf, bs))
		abort();
	if (blk_io_sync(p, BLK_READ, 0, p->size, buf, bs) != -EINVAL)
		abort();
	blk_close(p);
	return 0;
}
