// SPDX-License-Identifier: MIT
/*
 * One partition of an MBR or GPT disk as a block device: requests are
 * checked against the partition's size and shifted by its start.
 *
 * The partition table is read once, at open, through the layer below with
 * blk_io_sync(), and is hostile input: every field is checked (signatures,
 * CRC32s, sizes, bounds, overlaps) before anything is believed, every loop is
 * bounded, and each rejection says what is wrong in one sentence.
 *
 *  - MBR: primary partitions 1-4; logical partitions 5 and up in an extended
 *    partition's chain of EBRs (at most PART_LOGICAL_MAX, each EBR after the
 *    one before it, so a looping chain ends).
 *  - GPT (an MBR entry of type 0xEE): the primary header at LBA 1, its CRC32
 *    and that of the entry array; partition N is entry N.  Where the primary
 *    header or its array is damaged, the backup header in the disk's last
 *    block and its array are used instead (and the caller told so).
 * Sector numbers are in the lower device's logical blocks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "block.h"
#include "internal.h"
#include "base/util.h"

#define PART_LOGICAL_MAX 128
#define GPT_ENTRIES_MAX 16384
#define GPT_ARRAY_MAX (4 * MiB)
#define MBR_TYPE_GPT 0xee

struct part_slot {
	struct blk_req lower;
	struct blk_req *upper;
	struct part_slot *next_free;
	struct part_dev *p;
};

struct part_dev {
	struct blk_dev dev;
	uint64_t start; /* bytes */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight;
	struct part_slot *free;
	struct part_slot *slots;
};

/* A partition found in the table, in lower-device blocks. */
struct part_info {
	unsigned number;
	uint64_t first, count;
	bool extended; /* an MBR extended partition (a container, not a partition to use) */
};

/* What parsing found: the partitions' numbers (for messages) and the one asked for. */
struct part_table {
	const char *kind; /* "MBR" or "GPT" */
	unsigned nr;
	unsigned numbers[PART_LOGICAL_MAX + 4];
	bool truncated; /* more partitions than numbers[] holds */
	bool found;
	struct part_info want;
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void note(struct part_table *t, unsigned number)
{
	if (t->nr < ARRAY_SIZE(t->numbers))
		t->numbers[t->nr] = number;
	else
		t->truncated = true;
	t->nr++;
}

/* "partition N does not exist (the MBR has 2 partitions)", with their numbers where not 1..K. */
static int no_such_partition(const struct part_table *t, unsigned n, char *err, size_t errlen)
{
	char list[128] = "";
	size_t len = 0;
	bool plain = !t->truncated;
	for (unsigned i = 0; i < t->nr && i < ARRAY_SIZE(t->numbers); i++)
		plain = plain && t->numbers[i] == i + 1;
	if (!plain && t->nr) {
		for (unsigned i = 0; i < t->nr && i < ARRAY_SIZE(t->numbers) && len < sizeof(list) - 16; i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%u", i ? ", " : ": ", t->numbers[i]);
		if (t->nr > ARRAY_SIZE(t->numbers) || len >= sizeof(list) - 16)
			snprintf(list + len, sizeof(list) - len, ", ...");
	}
	if (!t->nr)
		return bad(err, errlen, "partition %u does not exist (the %s has no partitions)", n, t->kind);
	return bad(err, errlen, "partition %u does not exist (the %s has %u partition%s%s)", n, t->kind, t->nr,
		   t->nr == 1 ? "" : "s", list);
}

/* Read blocks [lba, lba + n) of d into buf (n * block_size bytes). */
static int read_blocks(struct blk_dev *d, uint64_t lba, uint64_t n, void *buf, char *err, size_t errlen)
{
	uint64_t bs = d->block_size;
	if (lba > d->size / bs || n > d->size / bs - lba)
		return bad(err, errlen, "the partition table points past the end of the disk (block %llu)",
			   (unsigned long long)(lba + n - 1));
	int r = blk_io_sync(d, BLK_READ, 0, lba * bs, buf, n * bs);
	if (r) {
		snprintf(err, errlen, "reading the partition table: %s", strerror(-r));
		return r;
	}
	return 0;
}

static bool is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* Logical partitions in the chain of EBRs starting at ext_first; numbered from 5. */
static int parse_logical(struct blk_dev *d, uint8_t *sec, uint64_t ext_first, uint64_t ext_count, unsigned want,
			 struct part_table *t, char *err, size_t errlen)
{
	uint64_t ebr = ext_first, ext_end = ext_first + ext_count;
	unsigned number = 5;
	for (int i = 0; i < PART_LOGICAL_MAX; i++) {
		int r = read_blocks(d, ebr, 1, sec, err, errlen);
		if (r)
			return r;
		if (sec[510] != 0x55 || sec[511] != 0xaa)
			return bad(err, errlen, "the extended partition's boot record at block %llu has no signature",
				   (unsigned long long)ebr);
		const uint8_t *e0 = sec + 446, *e1 = sec + 462;
		uint64_t next = ext_first + le32(e1 + 8);
		if (e1[4] && (!is_extended(e1[4]) || next <= ebr || next >= ext_end))
			return bad(err, errlen, "the chain of logical partitions is broken after block %llu",
				   (unsigned long long)ebr);
		if (e0[4]) {
			uint64_t first = ebr + le32(e0 + 8), count = le32(e0 + 12);
			if (!le32(e0 + 8) || !count || first + count > (e1[4] ? next : ext_end))
				return bad(err, errlen,
					   "logical partition %u (blocks %llu+%llu) does not lie inside its extended "
					   "partition (blocks %llu-%llu)",
					   number, (unsigned long long)first, (unsigned long long)count,
					   (unsigned long long)ext_first, (unsigned long long)(ext_end - 1));
			if (number == want) {
				t->found = true;
				t->want = (struct part_info){ .number = number, .first = first, .count = count };
			}
			note(t, number++);
		}
		if (!e1[4])
			return 0;
		ebr = next;
	}
	return bad(err, errlen, "the extended partition holds more than %d logical partitions", PART_LOGICAL_MAX);
}

/* A GPT header that passed every check, and its entry array. */
struct gpt {
	uint64_t first_usable, last_usable;
	uint32_t nentries, esize;
	uint8_t *array; /* nentries * esize bytes and the rest of its last block (malloc'd) */
};

/* Read the GPT header at block lba and its entry array, and check both.  0 with g->array set, or -errno with err set. */
static int read_gpt(struct blk_dev *d, uint64_t lba, struct gpt *g, char *err, size_t errlen)
{
	uint64_t bs = d->block_size, disk_blocks = d->size / bs;
	uint8_t *hdr = NULL, *array = NULL;
	int r;
	if (posix_memalign((void **)&hdr, 4096, bs))
		return -ENOMEM;
	r = read_blocks(d, lba, 1, hdr, err, errlen);
	if (r)
		goto free_hdr;
	r = -EINVAL;
	if (memcmp(hdr, "EFI PART", 8)) {
		bad(err, errlen, "block %llu holds no GPT header", (unsigned long long)lba);
		goto free_hdr;
	}
	uint32_t hsize = le32(hdr + 12), hcrc = le32(hdr + 16);
	if (le32(hdr + 8) >> 16 != 1) {
		bad(err, errlen, "GPT revision 0x%08x is not supported", le32(hdr + 8));
		goto free_hdr;
	}
	if (hsize < 92 || hsize > bs) {
		bad(err, errlen, "the GPT header size %u is invalid (92 to %llu)", hsize, (unsigned long long)bs);
		goto free_hdr;
	}
	memset(hdr + 16, 0, 4);
	uint32_t crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), hdr, hsize);
	if (crc != hcrc) {
		bad(err, errlen, "the GPT header's CRC32 is wrong (0x%08x stored, 0x%08x computed)", hcrc, crc);
		goto free_hdr;
	}
	uint64_t my_lba = le64(hdr + 24), first_usable = le64(hdr + 40), last_usable = le64(hdr + 48);
	uint64_t entries_lba = le64(hdr + 72);
	uint32_t nentries = le32(hdr + 80), esize = le32(hdr + 84), acrc = le32(hdr + 88);
	if (my_lba != lba) {
		bad(err, errlen, "the GPT header at block %llu says it is at block %llu", (unsigned long long)lba,
		    (unsigned long long)my_lba);
		goto free_hdr;
	}
	if (first_usable < 2 || first_usable > last_usable || last_usable >= disk_blocks) {
		bad(err, errlen, "the GPT's usable blocks %llu-%llu are not inside the disk's blocks 2-%llu",
		    (unsigned long long)first_usable, (unsigned long long)last_usable,
		    (unsigned long long)(disk_blocks - 1));
		goto free_hdr;
	}
	if (lba >= first_usable && lba <= last_usable) {
		bad(err, errlen, "the GPT header at block %llu lies inside its usable blocks %llu-%llu",
		    (unsigned long long)lba, (unsigned long long)first_usable, (unsigned long long)last_usable);
		goto free_hdr;
	}
	if (esize < 128 || esize > 4096 || esize % 8) {
		bad(err, errlen, "the GPT entry size %u is invalid (a multiple of 8 from 128 to 4096)", esize);
		goto free_hdr;
	}
	if (!nentries || nentries > GPT_ENTRIES_MAX || (uint64_t)nentries * esize > GPT_ARRAY_MAX) {
		bad(err, errlen, "the GPT's %u entries of %u bytes are too many", nentries, esize);
		goto free_hdr;
	}
	uint64_t abytes = (uint64_t)nentries * esize, ablocks = (abytes + bs - 1) / bs;
	if (entries_lba < 2 || entries_lba >= disk_blocks || ablocks > disk_blocks - entries_lba ||
	    (lba >= entries_lba && lba - entries_lba < ablocks)) {
		bad(err, errlen, "the GPT entry array (blocks %llu+%llu) overlaps the header or leaves the disk",
		    (unsigned long long)entries_lba, (unsigned long long)ablocks);
		goto free_hdr;
	}
	if (entries_lba <= last_usable && entries_lba + ablocks > first_usable) {
		bad(err, errlen, "the GPT entry array (blocks %llu-%llu) overlaps the usable blocks %llu-%llu",
		    (unsigned long long)entries_lba, (unsigned long long)(entries_lba + ablocks - 1),
		    (unsigned long long)first_usable, (unsigned long long)last_usable);
		goto free_hdr;
	}
	if (posix_memalign((void **)&array, 4096, ablocks * bs)) {
		r = -ENOMEM;
		goto free_hdr;
	}
	r = read_blocks(d, entries_lba, ablocks, array, err, errlen);
	if (r)
		goto free_array;
	r = -EINVAL;
	crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), array, (uInt)abytes);
	if (crc != acrc) {
		bad(err, errlen, "the GPT entry array's CRC32 is wrong (0x%08x stored, 0x%08x computed)", acrc, crc);
		goto free_array;
	}
	*g = (struct gpt){ .first_usable = first_usable, .last_usable = last_usable, .nentries = nentries,
			   .esize = esize, .array = array };
	free(hdr);
	return 0;
free_array:
	free(array);
free_hdr:
	free(hdr);
	return r;
}

/* Find partition want in a checked GPT. */
static int gpt_partition(const struct gpt *g, unsigned want, struct part_table *t, char *err, size_t errlen)
{
	static const uint8_t unused[16];
	for (uint32_t i = 0; i < g->nentries; i++)
		if (memcmp(g->array + (size_t)i * g->esize, unused, 16))
			note(t, i + 1);
	const uint8_t *e = want <= g->nentries ? g->array + (size_t)(want - 1) * g->esize : NULL;
	if (!e || !memcmp(e, unused, 16))
		return no_such_partition(t, want, err, errlen);
	uint64_t first = le64(e + 32), last = le64(e + 40);
	if (first > last || first < g->first_usable || last > g->last_usable) {
		return bad(err, errlen, "partition %u (blocks %llu-%llu) is not inside the GPT's usable blocks %llu-%llu",
			   want, (unsigned long long)first, (unsigned long long)last,
			   (unsigned long long)g->first_usable, (unsigned long long)g->last_usable);
	}
	for (uint32_t i = 0; i < g->nentries; i++) {
		const uint8_t *o = g->array + (size_t)i * g->esize;
		if (i + 1 == want || !memcmp(o, unused, 16))
			continue;
		if (le64(o + 32) <= last && le64(o + 40) >= first)
			return bad(err, errlen, "partition %u overlaps partition %u", want, i + 1);
	}
	t->found = true;
	t->want = (struct part_info){ .number = want, .first = first, .count = last - first + 1 };
	return 0;
}

/*
 * The primary GPT (block 1), or, where it is damaged, the backup in the
 * disk's last block, as Linux and UEFI firmware do; using the backup is
 * reported in warn.  I/O errors do not fall back.
 */
static int parse_gpt(struct blk_dev *d, unsigned want, struct part_table *t, char *err, size_t errlen, char *warn,
		     size_t warnlen)
{
	uint64_t backup = d->size / d->block_size - 1;
	struct gpt g;
	t->kind = "GPT";
	int r = read_gpt(d, 1, &g, err, errlen);
	if (r == -EINVAL) {
		char primary[200], why[200];
		snprintf(primary, sizeof(primary), "%s", err);
		r = read_gpt(d, backup, &g, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "the primary GPT is damaged (%s), and so is the backup (%s)", primary, why);
			return r;
		}
		snprintf(warn, warnlen, "the primary GPT is damaged (%s); using the backup GPT at block %llu", primary,
			 (unsigned long long)backup);
	}
	if (r)
		return r;
	r = gpt_partition(&g, want, t, err, errlen);
	free(g.array);
	return r;
}

static int parse_table(struct blk_dev *d, unsigned want, struct part_table *t, char *err, size_t errlen, char *warn,
		       size_t warnlen)
{
	uint64_t disk_blocks = d->size / d->block_size;
	uint8_t *sec;
	int r;
	memset(t, 0, sizeof(*t));
	t->kind = "MBR";
	if (posix_memalign((void **)&sec, 4096, d->block_size))
		return -ENOMEM;
	r = read_blocks(d, 0, 1, sec, err, errlen);
	if (r)
		goto free_sec;
	r = -EINVAL;
	if (sec[510] != 0x55 || sec[511] != 0xaa) {
		bad(err, errlen, "no partition table (the first block has no MBR signature)");
		goto free_sec;
	}
	struct part_info prim[4];
	int ext = -1;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = sec + 446 + 16 * i;
		if (e[0] != 0 && e[0] != 0x80) {
			bad(err, errlen, "the MBR is invalid (entry %d has status byte 0x%02x)", i + 1, e[0]);
			goto free_sec;
		}
		if (e[4] == MBR_TYPE_GPT) {
			memset(t, 0, sizeof(*t));
			r = parse_gpt(d, want, t, err, errlen, warn, warnlen);
			goto free_sec;
		}
		prim[i] = (struct part_info){ .number = (unsigned)i + 1, .first = le32(e + 8), .count = le32(e + 12),
					      .extended = is_extended(e[4]) };
		if (!e[4]) {
			prim[i].count = 0;
			continue;
		}
		if (!prim[i].first || !prim[i].count || prim[i].first + prim[i].count > disk_blocks) {
			bad(err, errlen, "partition %d (blocks %llu+%llu) does not lie inside the disk (blocks 1-%llu)",
			    i + 1, (unsigned long long)prim[i].first, (unsigned long long)prim[i].count,
			    (unsigned long long)(disk_blocks - 1));
			goto free_sec;
		}
		for (int j = 0; j < i; j++)
			if (prim[j].count && prim[j].first < prim[i].first + prim[i].count &&
			    prim[i].first < prim[j].first + prim[j].count) {
				bad(err, errlen, "partitions %d and %d overlap", j + 1, i + 1);
				goto free_sec;
			}
		if (prim[i].extended) {
			if (ext >= 0) {
				bad(err, errlen, "the MBR has two extended partitions (%d and %d)", ext + 1, i + 1);
				goto free_sec;
			}
			ext = i;
		}
		note(t, (unsigned)i + 1);
		if ((unsigned)i + 1 == want) {
			t->found = true;
			t->want = prim[i];
		}
	}
	if (ext >= 0) {
		r = parse_logical(d, sec, prim[ext].first, prim[ext].count, want, t, err, errlen);
		if (r)
			goto free_sec;
	}
	if (!t->found)
		r = no_such_partition(t, want, err, errlen);
	else if (t->want.extended)
		r = bad(err, errlen, "partition %u is an extended partition (it holds logical partitions 5 and up)",
			want);
	else
		r = 0;
free_sec:
	free(sec);
	return r;
}

static struct part_dev *to_part(struct blk_dev *d)
{
	return container_of(d, struct part_dev, dev);
}

/* A slot back to the pool; the last one out wakes a closing layer. */
static void slot_put(struct part_dev *p, struct part_slot *s)
{
	pthread_mutex_lock(&p->lock);
	s->next_free = p->free;
	p->free = s;
	if (!--p->inflight)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

static void part_done(struct blk_req *lower)
{
	struct part_slot *s = lower->opaque;
	struct part_dev *p = s->p;
	struct blk_req *up = s->upper;
	up->status = lower->status;
	slot_put(p, s);
	blk_req_done(up);
}

static int part_submit(struct blk_dev *d, struct blk_req *r)
{
	struct part_dev *p = to_part(d);
	int rc = blk_req_begin(d, r);
	if (rc)
		return rc < 0 ? rc : 0;
	pthread_mutex_lock(&p->lock);
	struct part_slot *s = p->free;
	if (!s) {
		pthread_mutex_unlock(&p->lock);
		return -EAGAIN;
	}
	p->free = s->next_free;
	p->inflight++;
	pthread_mutex_unlock(&p->lock);
	s->upper = r;
	s->lower = *r;
	if (r->op != BLK_FLUSH)
		s->lower.offset += p->start;
	s->lower.done = part_done;
	s->lower.opaque = s;
	s->lower.status = 0;
	rc = blk_submit(d->lower, &s->lower);
	if (rc)
		slot_put(p, s);
	return rc;
}

static void part_close(struct blk_dev *d)
{
	struct part_dev *p = to_part(d);
	pthread_mutex_lock(&p->lock);
	while (p->inflight)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
	blk_close(d->lower);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p->slots);
	free(p);
}

static const struct blk_ops part_ops = { .submit = part_submit, .close = part_close };

int blk_part_open(struct blk_dev *lower, unsigned partition, struct blk_dev **out, char *err, size_t errlen)
{
	struct part_table t;
	char warn[512] = "";
	*out = NULL;
	if (!partition)
		return bad(err, errlen, "partition 0 does not exist (partitions are numbered from 1)");
	if (lower->block_size < 512 || lower->block_size > 4096) {
		return bad(err, errlen, "a block size of %u bytes is not supported for partition tables",
			   lower->block_size);
	}
	int r = parse_table(lower, partition, &t, err, errlen, warn, sizeof(warn));
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory reading the partition table");
	if (r)
		return r;
	struct part_dev *p = calloc(1, sizeof(*p));
	unsigned qd = lower->queue_depth ? lower->queue_depth : 1;
	struct part_slot *slots = calloc(qd, sizeof(*slots));
	if (!p || !slots) {
		free(p);
		free(slots);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->slots = slots;
	for (unsigned i = qd; i-- > 0;) {
		slots[i].p = p;
		slots[i].next_free = p->free;
		p->free = &slots[i];
	}
	p->start = t.want.first * lower->block_size;
	p->dev = (struct blk_dev){
		.ops = &part_ops, .layer = "part", .size = t.want.count * lower->block_size,
		.block_size = lower->block_size, .queue_depth = qd, .read_only = lower->read_only,
		.volatile_cache = lower->volatile_cache, .can_discard = lower->can_discard,
		.can_write_zeroes = lower->can_write_zeroes, .discard_granularity = lower->discard_granularity,
		.lower = lower,
	};
	snprintf(err, errlen, "%s", warn);
	*out = &p->dev;
	return 0;
}
