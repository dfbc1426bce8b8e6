// SPDX-License-Identifier: MIT
/*
 * The block stack's partition layer: MBR (with logical partitions) and GPT
 * tables at 512- and 4096-byte blocks, where each partition lies and what
 * reaches past it, and malformed tables, each refused with its reason.
 */
#include <stdio.h>
#include <zlib.h>

#include "blkfake.h"
#include "blktest.h"
#include "block/block.h"
#include "unit.h"
#include "base/util.h"

/* Open partition n of the fake's image; 0 or -errno with the message in err. */
static int try_part(struct fake *f, unsigned n, struct blk_dev **p, char *err, size_t errlen)
{
	*p = NULL;
	err[0] = 0;
	return blk_part_open(&f->dev, n, p, err, errlen);
}

#define EXPECT_PART_ERR(f, n, text)                                                            \
	do {                                                                                   \
		struct blk_dev *_p;                                                            \
		char _err[512];                                                                \
		int _r = try_part(f, n, &_p, _err, sizeof(_err));                              \
		CHECK(_r < 0 && !_p);                                                          \
		if (!strstr(_err, text)) {                                                     \
			fprintf(stderr, "partition %u: '%s', expected '%s'\n", n, _err, text); \
			CHECK(strstr(_err, text));                                             \
		}                                                                              \
	} while (0)

/* Partition n opens, and what it tells the user is text ("": nothing). */
static void expect_part_warning(struct fake *f, unsigned n, const char *text)
{
	struct blk_dev *p;
	char err[512];
	CHECK_EQ(try_part(f, n, &p, err, sizeof(err)), 0);
	if (*text ? !strstr(err, text) : !!err[0]) {
		fprintf(stderr, "partition %u: '%s', expected '%s'\n", n, err, text);
		CHECK(0);
	}
	blk_close(p);
}

/* Partition n must be at blocks [first, first + count): size, and where a write lands. */
static void check_part_at(struct fake *f, unsigned n, uint64_t first, uint64_t count)
{
	struct blk_dev *p;
	char err[256];
	uint32_t bs = f->dev.block_size;
	int r = try_part(f, n, &p, err, sizeof(err));
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "partition %u: %s\n", n, err);
		return;
	}
	CHECK_EQ(p->size, count * bs);
	CHECK(!strcmp(p->layer, "part"));
	uint8_t *buf = malloc(bs);
	memset(buf, (int)(0x40 + n), bs);
	CHECK_EQ(blk_io_sync(p, BLK_WRITE, 0, 0, buf, bs), 0);
	CHECK_EQ(blk_io_sync(p, BLK_WRITE, 0, (count - 1) * bs, buf, bs), 0);
	CHECK(!memcmp(f->vol + first * bs, buf, bs));
	CHECK(!memcmp(f->vol + (first + count - 1) * bs, buf, bs));
	CHECK_EQ(blk_io_sync(p, BLK_READ, 0, count * bs, buf, bs), -EINVAL);
	CHECK_EQ(blk_io_sync(p, BLK_WRITE, 0, (count - 1) * bs, buf, 0), 0);
	CHECK_EQ(blk_io_sync(p, BLK_DISCARD, 0, (count - 1) * bs, NULL, 2 * (uint64_t)bs), -EINVAL);
	CHECK_EQ(blk_io_sync(p, BLK_FLUSH, 0, 0, NULL, 0), 0);
	/* Put the bytes back: later partitions of the same image are checked against the table. */
	memset(f->vol + first * bs, 0, bs);
	memset(f->vol + (first + count - 1) * bs, 0, bs);
	free(buf);
	p->lower = NULL; /* keep the fake: close only the part layer */
	blk_close(p);
}

static void part_mbr(void)
{
	struct fake *f = fake_new(8 * MiB, 512, 16, FAKE_SYNC); /* 16384 blocks */
	uint8_t *m = f->vol;
	mbr_entry(m, 0, 0x80, 0x83, 2048, 4096);
	mbr_entry(m, 1, 0x00, 0x83, 6144, 2048);
	mbr_entry(m, 2, 0x00, 0x05, 8192, 8192);
	/* Logical partitions: EBRs at 8192 and 12288. */
	mbr_entry(m + 8192 * 512, 0, 0, 0x83, 2048, 1024);
	mbr_entry(m + 8192 * 512, 1, 0, 0x05, 4096, 4096);
	mbr_entry(m + 12288 * 512, 0, 0, 0x83, 2048, 1024);
	check_part_at(f, 1, 2048, 4096);
	check_part_at(f, 2, 6144, 2048);
	check_part_at(f, 5, 10240, 1024);
	check_part_at(f, 6, 14336, 1024);
	EXPECT_PART_ERR(f, 3, "partition 3 is an extended partition");
	EXPECT_PART_ERR(f, 4, "partition 4 does not exist (the MBR has 5 partitions: 1, 2, 3, 5, 6)");
	EXPECT_PART_ERR(f, 7, "partition 7 does not exist");
	EXPECT_PART_ERR(f, 0, "partition 0 does not exist");

	/* A looping chain of EBRs ends with a message. */
	mbr_entry(m + 12288 * 512, 1, 0, 0x05, 0, 4096);
	EXPECT_PART_ERR(f, 6, "chain of logical partitions is broken");
	mbr_entry(m + 12288 * 512, 1, 0, 0, 0, 0);
	mbr_entry(m + 12288 * 512, 0, 0, 0x83, 2048, 9999);
	EXPECT_PART_ERR(f, 6, "logical partition 6");

	memset(m, 0, 512);
	mbr_entry(m, 0, 0, 0x83, 2048, 4096);
	mbr_entry(m, 1, 0, 0x83, 6144, 2048);
	EXPECT_PART_ERR(f, 3, "partition 3 does not exist (the MBR has 2 partitions)");
	mbr_entry(m, 1, 0, 0x83, 6000, 2048);
	EXPECT_PART_ERR(f, 1, "partitions 1 and 2 overlap");
	mbr_entry(m, 1, 0, 0x83, 6144, 16384);
	EXPECT_PART_ERR(f, 1, "partition 2 (blocks 6144+16384) does not lie inside the disk");
	mbr_entry(m, 1, 0, 0x83, 0, 100);
	EXPECT_PART_ERR(f, 2, "does not lie inside the disk");
	mbr_entry(m, 1, 0x12, 0x83, 6144, 2048);
	EXPECT_PART_ERR(f, 1, "status byte 0x12");
	memset(m, 0, 512);
	EXPECT_PART_ERR(f, 1, "no partition table");
	fake_free(f);
}

/* A GPT: protective MBR, header at block 1, 128 entries of 128 bytes at block 2. */
struct gpt_spec {
	uint64_t first_usable, last_usable, entries_lba;
	uint32_t nentries, esize, hsize;
	struct {
		uint64_t first, last;
	} part[8]; /* entry i+1; first == 0: unused */
};

static void gpt_default(struct gpt_spec *g, uint64_t blocks, uint32_t bs)
{
	memset(g, 0, sizeof(*g));
	g->nentries = 128;
	g->esize = 128;
	g->hsize = 92;
	g->entries_lba = 2;
	g->first_usable = 2 + (128 * 128 + bs - 1) / bs;
	g->last_usable = blocks - g->first_usable;
}

/* The GPT header at block lba, with its entry array at block entries_lba. */
static void gpt_write_at(struct fake *f, const struct gpt_spec *g, uint64_t lba, uint64_t entries_lba)
{
	uint32_t bs = f->dev.block_size;
	uint64_t blocks = f->dev.size / bs;
	uint8_t *img = f->vol;
	size_t abytes = (size_t)g->nentries * g->esize;
	uint8_t *arr = img + entries_lba * bs;
	if (entries_lba * bs + abytes <= f->dev.size) {
		memset(arr, 0, abytes);
		for (unsigned i = 0; i < 8 && i < g->nentries; i++) {
			if (!g->part[i].first)
				continue;
			uint8_t *e = arr + (size_t)i * g->esize;
			memset(e, 0xaf, 16); /* type GUID */
			memset(e + 16, (int)i + 1, 16);
			put64(e + 32, g->part[i].first);
			put64(e + 40, g->part[i].last);
		}
	}
	uint8_t *h = img + lba * bs;
	memset(h, 0, bs);
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000);
	put32(h + 12, g->hsize);
	put64(h + 24, lba);
	put64(h + 32, lba == 1 ? blocks - 1 : 1);
	put64(h + 40, g->first_usable);
	put64(h + 48, g->last_usable);
	memset(h + 56, 0x11, 16);
	put32(h + 16, 0);
	put64(h + 72, entries_lba);
	put32(h + 80, g->nentries);
	put32(h + 84, g->esize);
	uint32_t acrc = entries_lba * bs + abytes <= f->dev.size ? (uint32_t)crc32(0, arr, (uInt)abytes) : 0;
	put32(h + 88, acrc);
	uint32_t hcrc = (uint32_t)crc32(0, h, MIN(g->hsize, bs));
	put32(h + 16, hcrc);
}

/* A protective MBR and the primary GPT (no backup). */
static void gpt_write(struct fake *f, const struct gpt_spec *g)
{
	uint64_t blocks = f->dev.size / f->dev.block_size;
	memset(f->vol, 0, f->dev.block_size);
	mbr_entry(f->vol, 0, 0, 0xee, 1, (uint32_t)MIN(blocks - 1, 0xffffffffull));
	gpt_write_at(f, g, 1, g->entries_lba);
}

/* The backup GPT: header in the last block, entry array right before it. */
static void gpt_write_backup(struct fake *f, const struct gpt_spec *g)
{
	uint32_t bs = f->dev.block_size;
	uint64_t blocks = f->dev.size / bs, ablocks = ((uint64_t)g->nentries * g->esize + bs - 1) / bs;
	gpt_write_at(f, g, blocks - 1, blocks - 1 - ablocks);
}

/* A damaged primary GPT: the backup is used, and the user told. */
static void part_gpt_backup(void)
{
	for (uint32_t bs = 512; bs <= 4096; bs *= 8) {
		struct fake *f = fake_new(8 * MiB, bs, 16, FAKE_SYNC);
		uint64_t blocks = 8 * MiB / bs;
		struct gpt_spec g;
		gpt_default(&g, blocks, bs);
		g.part[0].first = 256, g.part[0].last = 511;
		g.part[2].first = 1024, g.part[2].last = g.last_usable;
		gpt_write(f, &g);
		gpt_write_backup(f, &g);
		expect_part_warning(f, 1, "");

		f->vol[bs + 60] ^= 1; /* the primary header */
		expect_part_warning(f, 1, "the primary GPT is damaged (the GPT header's CRC32 is wrong");
		expect_part_warning(f, 3, "using the backup GPT at block");
		check_part_at(f, 3, 1024, g.last_usable - 1024 + 1);
		memset(f->vol + bs, 0, bs); /* no primary header at all */
		check_part_at(f, 1, 256, 256);
		EXPECT_PART_ERR(f, 2, "partition 2 does not exist (the GPT has 2 partitions: 1, 3)");

		gpt_write(f, &g);
		f->vol[2 * bs + 40] ^= 1; /* the primary's entry array */
		expect_part_warning(f, 1, "(the GPT entry array's CRC32 is wrong");
		f->vol[(blocks - 1) * bs + 60] ^= 1; /* and the backup header */
		EXPECT_PART_ERR(f, 1, "the primary GPT is damaged (the GPT entry array's CRC32 is wrong");
		EXPECT_PART_ERR(f, 1, "and so is the backup (the GPT header's CRC32 is wrong");

		/* A backup that claims another place, or whose array or usable blocks cover its header, is refused. */
		uint64_t ablocks = (128 * 128 + bs - 1) / bs;
		memcpy(f->vol + (blocks - 1) * bs, f->vol + bs, bs); /* the primary's header, at block 1 */
		EXPECT_PART_ERR(f, 1, "and so is the backup (the GPT header at block");
		EXPECT_PART_ERR(f, 1, "says it is at block 1)");
		gpt_write_at(f, &g, blocks - 1, blocks - ablocks);
		EXPECT_PART_ERR(f, 1, "and so is the backup (the GPT entry array (blocks");
		struct gpt_spec b = g;
		b.last_usable = blocks - 1;
		gpt_write_at(f, &b, blocks - 1, 2 + ablocks);
		EXPECT_PART_ERR(f, 1, "lies inside its usable blocks");
		/* A repaired backup is used again. */
		gpt_write_backup(f, &g);
		expect_part_warning(f, 1, "using the backup");
		fake_free(f);
	}
}

static void part_gpt(void)
{
	for (uint32_t bs = 512; bs <= 4096; bs *= 8) {
		struct fake *f = fake_new(8 * MiB, bs, 16, FAKE_SYNC);
		uint64_t blocks = 8 * MiB / bs;
		struct gpt_spec g;
		gpt_default(&g, blocks, bs);
		g.part[0].first = 256, g.part[0].last = 511;
		g.part[1].first = 512, g.part[1].last = 1023;
		g.part[3].first = 1024, g.part[3].last = g.last_usable;
		gpt_write(f, &g);
		check_part_at(f, 1, 256, 256);
		check_part_at(f, 2, 512, 512);
		check_part_at(f, 4, 1024, g.last_usable - 1024 + 1);
		EXPECT_PART_ERR(f, 3, "partition 3 does not exist (the GPT has 3 partitions: 1, 2, 4)");
		EXPECT_PART_ERR(f, 129, "partition 129 does not exist (the GPT has 3 partitions");

		/* Malformed tables: each one rejected with its reason. */
		f->vol[bs + 60] ^= 1; /* a header byte after the CRC was computed */
		EXPECT_PART_ERR(f, 1, "GPT header's CRC32 is wrong");
		gpt_write(f, &g);
		f->vol[2 * bs + 40] ^= 1; /* an entry byte */
		EXPECT_PART_ERR(f, 1, "entry array's CRC32 is wrong");
		gpt_write(f, &g);
		f->vol[bs] = 'X';
		EXPECT_PART_ERR(f, 1, "no GPT header");

		struct gpt_spec b = g;
		b.part[1].last = g.last_usable + 1;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 2, "is not inside the GPT's usable blocks");
		b = g;
		b.part[1].first = 600, b.part[1].last = 500;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 2, "is not inside the GPT's usable blocks");
		b = g;
		b.part[1].first = 400;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 2, "partition 2 overlaps partition 1");
		b = g;
		b.entries_lba = 1;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "overlaps the header");
		b = g;
		b.first_usable = 3;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "overlaps the usable blocks");
		b = g;
		b.last_usable = blocks;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "are not inside the disk");
		b = g;
		b.esize = 100;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "entry size 100 is invalid");
		b = g;
		b.nentries = 1000000;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "too many");
		b = g;
		b.hsize = bs + 8;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "header size");
		b = g;
		b.entries_lba = blocks - 2;
		b.last_usable = blocks - 40;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "leaves the disk");
		fake_free(f);
	}
}

int main(void)
{
	log_level = LOG_QUIET;
	RUN("block", part_mbr);
	RUN("block", part_gpt);
	RUN("block", part_gpt_backup);
	UNIT_EXIT();
}
