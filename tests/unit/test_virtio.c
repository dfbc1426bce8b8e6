// SPDX-License-Identifier: MIT
/*
 * Host-side harness for the virtio core, the PCI transport and the devices:
 * tests/unit/vdriver.h plays the guest driver in plain memory.  Covers every
 * chain rejection of the virtqueue core (each completed exactly once, the
 * device carrying on), ring corruption (DEVICE_NEEDS_RESET), EVENT_IDX
 * interrupt suppression, and virtio-rng / virtio-console / virtio-blk
 * requests (virtio-blk over an in-memory block device with out-of-order
 * completion, and its request-size limit: SIZE_MAX and SEG_MAX offered, a
 * longer read or write refused before it reaches the disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#include "block/block.h"
#include "unit.h"
#include "base/util.h"
#include "nulldisk.h"
#include "vdriver.h"

#define MEM (16ull << 20)
#define BUF VD_DATA_BASE

static void test_rng_request(void)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, 0, 16) == 0);
	uint8_t *b = vd_ptr(&d, BUF, 64);
	memset(b, 0, 64);
	vd_set_desc(&d, 0, 0, BUF, 64, VRING_DESC_F_WRITE, 0);
	vd_kick_head(&d, 0, 0);
	CHECK_EQ(vd_used_idx(&d, 0), 1);
	struct vring_used_elem u = vd_used_elem(&d, 0, 0);
	CHECK_EQ(u.id, 0);
	CHECK_EQ(u.len, 64);
	int nonzero = 0;
	for (int i = 0; i < 64; i++)
		nonzero += b[i] != 0;
	CHECK(nonzero > 32);
	CHECK_EQ(vd_interrupts(&d, 0), 1);
	vd_close(&d);
}

/* One malformed chain at head 0, then a good one at head 8: both completed once, in order. */
static void malformed(void (*build)(struct vdrv *d), bool needs_reset_expected)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, 1ull << VIRTIO_F_INDIRECT_DESC, 16) == 0);
	build(&d);
	if (needs_reset_expected) {
		CHECK(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
		CHECK_EQ(vd_used_idx(&d, 0), 0);
		/* A reset brings the device back. */
		vd_wr(&d, VPC_STATUS, 1, 0);
		CHECK_EQ(vd_rd(&d, VPC_STATUS, 1), 0);
		vd_close(&d);
		return;
	}
	CHECK(!(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	CHECK_EQ(vd_used_idx(&d, 0), 1);
	struct vring_used_elem u = vd_used_elem(&d, 0, 0);
	CHECK_EQ(u.id, 0);
	CHECK_EQ(u.len, 0);
	vd_set_desc(&d, 0, 8, BUF + 0x1000, 16, VRING_DESC_F_WRITE, 0);
	vd_kick_head(&d, 0, 8);
	CHECK_EQ(vd_used_idx(&d, 0), 2);
	u = vd_used_elem(&d, 0, 1);
	CHECK_EQ(u.id, 8);
	CHECK_EQ(u.len, 16);
	vd_close(&d);
}

static void build_loop(struct vdrv *d)
{
	vd_set_desc(d, 0, 0, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	vd_set_desc(d, 0, 1, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	vd_kick_head(d, 0, 0);
}

static void build_next_range(struct vdrv *d)
{
	vd_set_desc(d, 0, 0, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 16);
	vd_kick_head(d, 0, 0);
}

static void build_outside_ram(struct vdrv *d)
{
	vd_set_desc(d, 0, 0, MEM - 8, 16, VRING_DESC_F_WRITE, 0);
	vd_kick_head(d, 0, 0);
}

static void build_wrapping_addr(struct vdrv *d)
{
	vd_set_desc(d, 0, 0, ~0ull - 4, 16, VRING_DESC_F_WRITE, 0);
	vd_kick_head(d, 0, 0);
}

static void build_zero_len(struct vdrv *d)
{
	vd_set_desc(d, 0, 0, BUF, 0, VRING_DESC_F_WRITE, 0);
	vd_kick_head(d, 0, 0);
}

static void build_order(struct vdrv *d)
{
	vd_set_desc(d, 0, 0, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	vd_set_desc(d, 0, 1, BUF + 16, 16, VRING_DESC_F_NEXT * 0, 0);
	vd_kick_head(d, 0, 0);
}

static void build_readonly_for_rng(struct vdrv *d)
{
	/* Well-formed, but entropy needs writable buffers: completed with length 0. */
	vd_set_desc(d, 0, 0, BUF, 16, 0, 0);
	vd_kick_head(d, 0, 0);
}

static void build_nested_indirect(struct vdrv *d)
{
	struct vring_desc *t = vd_ptr(d, BUF + 0x2000, 32);
	t[0] = (struct vring_desc){ .addr = BUF + 0x3000, .len = 16, .flags = VRING_DESC_F_INDIRECT };
	vd_set_desc(d, 0, 0, BUF + 0x2000, 16, VRING_DESC_F_INDIRECT, 0);
	vd_kick_head(d, 0, 0);
}

static void build_indirect_with_next(struct vdrv *d)
{
	struct vring_desc *t = vd_ptr(d, BUF + 0x2000, 16);
	t[0] = (struct vring_desc){ .addr = BUF, .len = 16, .flags = VRING_DESC_F_WRITE };
	vd_set_desc(d, 0, 0, BUF + 0x2000, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	vd_set_desc(d, 0, 1, BUF, 16, VRING_DESC_F_WRITE, 0);
	vd_kick_head(d, 0, 0);
}

static void build_indirect_bad_len(struct vdrv *d)
{
	vd_set_desc(d, 0, 0, BUF + 0x2000, 15, VRING_DESC_F_INDIRECT, 0);
	vd_kick_head(d, 0, 0);
}

static void build_indirect_loop(struct vdrv *d)
{
	struct vring_desc *t = vd_ptr(d, BUF + 0x2000, 32);
	t[0] = (struct vring_desc){ .addr = BUF, .len = 16, .flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, .next = 1 };
	t[1] = (struct vring_desc){ .addr = BUF, .len = 16, .flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, .next = 0 };
	vd_set_desc(d, 0, 0, BUF + 0x2000, 32, VRING_DESC_F_INDIRECT, 0);
	vd_kick_head(d, 0, 0);
}

static void build_too_many(struct vdrv *d)
{
	/* An indirect table of 64 buffers: more than the device's iovec array (16). */
	struct vring_desc *t = vd_ptr(d, BUF + 0x2000, 64 * 16);
	for (unsigned i = 0; i < 64; i++)
		t[i] = (struct vring_desc){ .addr = BUF, .len = 8, .flags = VRING_DESC_F_WRITE | (i < 63 ? VRING_DESC_F_NEXT : 0),
					    .next = (uint16_t)(i + 1) };
	vd_set_desc(d, 0, 0, BUF + 0x2000, 64 * 16, VRING_DESC_F_INDIRECT, 0);
	vd_kick_head(d, 0, 0);
}

static void build_head_range(struct vdrv *d)
{
	vd_kick_head(d, 0, 16);
}

static void build_avail_jump(struct vdrv *d)
{
	uint16_t *a = vd_ptr(d, vd_avail(0), 4);
	a[1] = 100; /* 100 new entries on a 16-entry ring */
	vd_wr(d, VIRTIO_PCI_NOTIFY, 2, 0);
}

static void test_malformed_chains(void)
{
	malformed(build_loop, false);
	malformed(build_next_range, false);
	malformed(build_outside_ram, false);
	malformed(build_wrapping_addr, false);
	malformed(build_zero_len, false);
	malformed(build_order, false);
	malformed(build_readonly_for_rng, false);
	malformed(build_nested_indirect, false);
	malformed(build_indirect_with_next, false);
	malformed(build_indirect_bad_len, false);
	malformed(build_indirect_loop, false);
	malformed(build_too_many, false);
}

static void test_ring_corruption_needs_reset(void)
{
	malformed(build_head_range, true);
	malformed(build_avail_jump, true);
}

static void test_event_idx_suppression(void)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, 1ull << VIRTIO_F_EVENT_IDX, 16) == 0);
	uint16_t *used_event = vd_ptr(&d, vd_avail(0) + 4 + 2 * 16, 2);
	*used_event = 5; /* interrupt only once used idx passes 5 */
	for (uint16_t i = 0; i < 8; i++) {
		vd_set_desc(&d, 0, i, BUF + 64ull * i, 8, VRING_DESC_F_WRITE, 0);
		vd_kick_head(&d, 0, i);
		uint64_t n = vd_interrupts(&d, 0);
		/* The first push always signals; then only the push that crosses used_event (idx 6). */
		CHECK_EQ(n, i == 0 || i == 5 ? 1 : 0);
	}
	/* The device asked for a kick at the next entry. */
	uint16_t *avail_event = vd_ptr(&d, vd_used(0) + 4 + 8 * 16, 2);
	CHECK_EQ(*avail_event, 8);
	vd_close(&d);
}

/* A polling device asks the driver not to kick, and asks again before it sleeps. */
static void test_notify_suppression(void)
{
	struct guest_mem mem;
	CHECK(gm_init(&mem, MEM) == 0);
	for (int event_idx = 0; event_idx < 2; event_idx++) {
		const uint64_t desc = 0x10000, avail = 0x11000, used = 0x12000;
		memset(gm_ptr(&mem, desc, 0x3000), 0, 0x3000);
		struct virtqueue vq;
		vq_init(&vq, &mem);
		CHECK_EQ(vq_enable(&vq, 16, desc, avail, used, event_idx, false), 0);
		uint16_t *avail_hdr = gm_ptr(&mem, avail, 4), *used_flags = gm_ptr(&mem, used, 2);
		uint16_t *avail_event = gm_ptr(&mem, used + 4 + 8 * 16, 2);
		*avail_event = 0x7777;
		vq_disable_notify(&vq);
		/* Without EVENT_IDX: the NO_NOTIFY flag; with it, avail_event is left behind. */
		CHECK_EQ(*used_flags, event_idx ? 0 : VRING_USED_F_NO_NOTIFY);
		CHECK_EQ(*avail_event, 0x7777);
		CHECK(!vq_enable_notify(&vq));
		CHECK_EQ(*used_flags, 0);
		CHECK_EQ(*avail_event, event_idx ? 0 : 0x7777);
		/* Work that came while notifications were off is reported, not slept on. */
		vq_disable_notify(&vq);
		avail_hdr[1] = 1;
		CHECK(vq_has_avail(&vq));
		CHECK(vq_enable_notify(&vq));
		/* A disabled queue: nothing is written. */
		vq_reset(&vq);
		*used_flags = 0;
		vq_disable_notify(&vq);
		CHECK_EQ(*used_flags, 0);
		vq_destroy(&vq);
	}
	gm_destroy(&mem);
}

static void test_bad_features_refused(void)
{
	struct vdrv d;
	memset(&d, 0, sizeof(d));
	CHECK(gm_init(&d.mem, MEM) == 0);
	d.vp = virtio_pci_new(&virtio_rng_desc, 0, &d.mem, NULL, true);
	CHECK(d.vp != NULL);
	pci_bus_init(&d.bus);
	vd_wr(&d, VPC_STATUS, 1, 3);
	vd_wr(&d, VPC_GFSELECT, 4, 0);
	vd_wr(&d, VPC_GF, 4, 1u << 20); /* not offered; and no VERSION_1 */
	vd_wr(&d, VPC_STATUS, 1, 3 | VIRTIO_STATUS_FEATURES_OK);
	CHECK(!(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK));
	/* Queue address registers cannot point the rings outside RAM. */
	vd_wr(&d, VPC_Q_SELECT, 2, 0);
	vd_wr(&d, VPC_Q_DESCLO, 4, 0xfffff000u);
	vd_wr(&d, VPC_Q_DESCHI, 4, 0xffffffffu);
	vd_wr(&d, VPC_Q_ENABLE, 2, 1);
	CHECK_EQ(vd_rd(&d, VPC_Q_ENABLE, 2), 0);
	/* Out-of-range queue select reads as an absent queue. */
	vd_wr(&d, VPC_Q_SELECT, 2, 77);
	CHECK_EQ(vd_rd(&d, VPC_Q_SIZE, 2), 0);
	vd_close(&d);
}

static void test_console(void)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_console_desc, MEM, 0, 16) == 0);
	int p[2];
	CHECK(pipe2(p, O_NONBLOCK) == 0);
	virtio_console_attach(virtio_pci_state(d.vp), p[1]);
	/* Transmit: two buffers in one chain. */
	memcpy(vd_ptr(&d, BUF, 6), "hello ", 6);
	memcpy(vd_ptr(&d, BUF + 6, 5), "world", 5);
	vd_set_desc(&d, 1, 0, BUF, 6, VRING_DESC_F_NEXT, 1);
	vd_set_desc(&d, 1, 1, BUF + 6, 5, 0, 0);
	vd_kick_head(&d, 1, 0);
	char out[32] = { 0 };
	CHECK_EQ(read(p[0], out, sizeof(out)), 11);
	CHECK(!strcmp(out, "hello world"));
	CHECK_EQ(vd_used_idx(&d, 1), 1);
	/* Receive: no buffers yet -> nothing taken; then a 4-byte buffer takes 4 of 6. */
	CHECK_EQ(virtio_console_input(virtio_pci_state(d.vp), (const uint8_t *)"abcdef", 6), 0);
	vd_set_desc(&d, 0, 0, BUF + 0x100, 4, VRING_DESC_F_WRITE, 0);
	vd_kick_head(&d, 0, 0);
	CHECK_EQ(virtio_console_input(virtio_pci_state(d.vp), (const uint8_t *)"abcdef", 6), 4);
	CHECK(!memcmp(vd_ptr(&d, BUF + 0x100, 4), "abcd", 4));
	CHECK_EQ(vd_used_elem(&d, 0, 0).len, 4);
	close(p[0]);
	close(p[1]);
	vd_close(&d);
}

/* ---- virtio-blk over an in-memory disk that completes out of order ---- */

struct ramdisk {
	struct blk_dev dev;
	uint8_t *data;
	pthread_mutex_t lock;
	struct blk_req *held; /* completes after the next request: forces reordering */
	unsigned flushes, fua;
};

static void ram_do(struct ramdisk *r, struct blk_req *q)
{
	uint64_t off = q->offset;
	q->status = 0;
	switch (q->op) {
	case BLK_READ:
	case BLK_WRITE:
		for (unsigned i = 0; i < q->iovcnt; i++) {
			if (q->op == BLK_READ)
				memcpy(q->iov[i].iov_base, r->data + off, q->iov[i].iov_len);
			else
				memcpy(r->data + off, q->iov[i].iov_base, q->iov[i].iov_len);
			off += q->iov[i].iov_len;
		}
		break;
	case BLK_DISCARD:
	case BLK_WRITE_ZEROES:
		memset(r->data + q->offset, 0, q->len);
		break;
	case BLK_FLUSH:
		r->flushes++;
		break;
	}
}

static int ram_submit(struct blk_dev *dev, struct blk_req *q)
{
	struct ramdisk *r = (struct ramdisk *)dev;
	pthread_mutex_lock(&r->lock);
	ram_do(r, q);
	struct blk_req *prev = r->held;
	r->held = prev ? NULL : q; /* every other request waits for the next one */
	pthread_mutex_unlock(&r->lock);
	if (prev) {
		q->done(q);
		prev->done(prev);
	}
	return 0;
}

static void ram_release(struct ramdisk *r)
{
	struct blk_req *h = r->held;
	r->held = NULL;
	if (h)
		h->done(h);
}

static void ram_close(struct blk_dev *dev)
{
	(void)dev;
}

static const struct blk_ops ram_ops = { .submit = ram_submit, .close = ram_close };

struct blkreq_layout {
	uint64_t hdr, data, status;
};

/* Build a virtio-blk request at descriptor base k (3 descriptors) and kick. */
static void blk_req(struct vdrv *d, unsigned k, uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t len)
{
	uint64_t hdr = vd_blk_hdr(d, k, type, sector), st = hdr + 16;
	bool dev_writes = type == 0 || type == 8;
	if (len) {
		vd_set_desc(d, 0, k, hdr, 16, VRING_DESC_F_NEXT, (uint16_t)(k + 1));
		vd_set_desc(d, 0, k + 1, data_gpa, len, (dev_writes ? VRING_DESC_F_WRITE : 0) | VRING_DESC_F_NEXT,
			    (uint16_t)(k + 2));
		vd_set_desc(d, 0, k + 2, st, 1, VRING_DESC_F_WRITE, 0);
	} else {
		vd_set_desc(d, 0, k, hdr, 16, VRING_DESC_F_NEXT, (uint16_t)(k + 2));
		vd_set_desc(d, 0, k + 2, st, 1, VRING_DESC_F_WRITE, 0);
	}
	vd_kick_head(d, 0, (uint16_t)k);
}

static void test_blk(void)
{
	static uint8_t disk[1 << 20];
	struct ramdisk r = { .dev = { .ops = &ram_ops, .layer = "ram", .size = sizeof(disk), .block_size = 512,
				      .queue_depth = 64, .volatile_cache = true, .can_discard = true,
				      .can_write_zeroes = true },
			     .data = disk };
	pthread_mutex_init(&r.lock, NULL);
	struct blk_options o = { .serial = "keel-serial-0001" };
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_blk_desc, MEM, 0xffffffffull, 64) == 0);
	virtio_blk_attach(virtio_pci_state(d.vp), &r.dev, &o);
	/* Config: capacity in sectors, block size, one queue. */
	CHECK_EQ(vd_rd(&d, VIRTIO_PCI_DEVICE, 8), sizeof(disk) / 512);
	CHECK_EQ(vd_rd(&d, VIRTIO_PCI_DEVICE + 20, 4), 512);
	CHECK_EQ(vd_rd(&d, VIRTIO_PCI_DEVICE + 32, 1), 1); /* writeback */

	uint8_t *w = vd_ptr(&d, BUF, 4096);
	for (int i = 0; i < 4096; i++)
		w[i] = (uint8_t)(i * 7 + 3);
	blk_req(&d, 0, 1, 8, BUF, 4096);   /* write sectors 8..15: held back */
	CHECK_EQ(vd_used_idx(&d, 0), 0);
	blk_req(&d, 3, 4, 0, 0, 0);        /* flush: completes, then the write */
	CHECK_EQ(vd_used_idx(&d, 0), 2);
	CHECK_EQ(vd_used_elem(&d, 0, 0).id, 3); /* out of order */
	CHECK_EQ(vd_used_elem(&d, 0, 1).id, 0);
	CHECK_EQ(vd_blk_status(&d, 0), 0);
	CHECK_EQ(vd_blk_status(&d, 3), 0);
	CHECK(!memcmp(disk + 8 * 512, w, 4096));
	CHECK_EQ(r.flushes, 1);

	blk_req(&d, 6, 0, 8, BUF + 0x2000, 4096); /* read back: held by the disk */
	blk_req(&d, 9, 8, 0, BUF + 0x4000, 20);   /* GET_ID: answered by the device itself */
	CHECK_EQ(vd_used_idx(&d, 0), 3);
	CHECK_EQ(vd_used_elem(&d, 0, 2).id, 9);
	CHECK_EQ(vd_used_elem(&d, 0, 2).len, 21);
	CHECK(!memcmp(vd_ptr(&d, BUF + 0x4000, 16), "keel-serial-0001", 16));

	/* Out of range, misaligned length, unknown type: error status, no I/O. */
	blk_req(&d, 12, 0, sizeof(disk) / 512 - 1, BUF, 1024);
	CHECK_EQ(vd_blk_status(&d, 12), 1);
	blk_req(&d, 15, 1, 0, BUF, 100);
	CHECK_EQ(vd_blk_status(&d, 15), 1);
	blk_req(&d, 18, 99, 0, BUF, 512);
	CHECK_EQ(vd_blk_status(&d, 18), 2);
	blk_req(&d, 21, 0, ~0ull / 256, BUF, 512); /* sector * 512 would overflow */
	CHECK_EQ(vd_blk_status(&d, 21), 1);
	/* Write-zeroes of sectors 8..9. */
	struct { uint64_t sector; uint32_t n, flags; } seg = { 8, 2, 0 };
	memcpy(vd_ptr(&d, BUF + 0x6000, 16), &seg, 16);
	blk_req(&d, 24, 13, 0, BUF + 0x6000, 16);
	ram_release(&r);
	CHECK_EQ(vd_wait_used(&d, 0, 9), 9);
	CHECK_EQ(vd_blk_status(&d, 24), 0);
	CHECK_EQ(vd_blk_status(&d, 6), 0);
	CHECK(!memcmp(vd_ptr(&d, BUF + 0x2000, 4096), w, 4096));
	CHECK(disk[8 * 512] == 0 && disk[10 * 512 - 1] == 0 && disk[10 * 512] == w[1024]);
	/* Every request completed exactly once: 9 requests, 9 used entries, no duplicates. */
	unsigned seen = 0;
	for (uint16_t i = 0; i < 9; i++)
		seen |= 1u << (vd_used_elem(&d, 0, i).id / 3);
	CHECK_EQ(seen, 0x1ff);
	vd_close(&d);
	pthread_mutex_destroy(&r.lock);
}

/* A chain with more buffers than the device's iovec array: completed with length 0, nothing written. */
static void test_blk_too_many_buffers(void)
{
	static uint8_t disk[64 * 1024];
	struct ramdisk r = { .dev = { .ops = &ram_ops, .layer = "ram", .size = sizeof(disk), .block_size = 512,
				      .queue_depth = 64 },
			     .data = disk };
	pthread_mutex_init(&r.lock, NULL);
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_blk_desc, MEM, 1ull << VIRTIO_F_INDIRECT_DESC, 64) == 0);
	virtio_blk_attach(virtio_pci_state(d.vp), &r.dev, NULL);
	struct vring_desc *t = vd_ptr(&d, BUF + 0x10000, 129 * 16);
	uint32_t *h = vd_ptr(&d, BUF, 16);
	h[0] = 0; /* read */
	h[1] = h[2] = h[3] = 0;
	t[0] = (struct vring_desc){ .addr = BUF, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1 };
	for (unsigned i = 1; i < 129; i++)
		t[i] = (struct vring_desc){ .addr = BUF + 0x1000 + 512ull * i, .len = 512,
					    .flags = VRING_DESC_F_WRITE | (i < 128 ? VRING_DESC_F_NEXT : 0),
					    .next = (uint16_t)(i + 1) };
	memset(vd_ptr(&d, BUF + 0x1000, 130 * 512), 0xcc, 130 * 512);
	vd_set_desc(&d, 0, 0, BUF + 0x10000, 129 * 16, VRING_DESC_F_INDIRECT, 0);
	vd_kick_head(&d, 0, 0);
	CHECK_EQ(vd_used_idx(&d, 0), 1);
	CHECK_EQ(vd_used_elem(&d, 0, 0).len, 0);
	uint8_t *last = vd_ptr(&d, BUF + 0x1000 + 512ull * 128, 512);
	CHECK_EQ(last[511], 0xcc); /* no status byte written into an unchecked buffer */
	vd_close(&d);
	pthread_mutex_destroy(&r.lock);
}


#define SEG_DATA (VD_DATA_BASE + 0x400000ull) /* one 4 MiB guest buffer, [8, 12) MiB */
#define SEG_TABLE(k) (SEG_DATA + 0x400000ull + 0x1000ull * (k))

/*
 * A read or write at descriptor k through an indirect table: header,
 * nseg data buffers of seg bytes (the last one last bytes), all at the same
 * guest buffer, status.  Returns the data length.
 */
static uint64_t blk_req_segs(struct vdrv *d, unsigned k, uint32_t type, unsigned nseg, uint32_t seg, uint32_t last)
{
	uint64_t hdr = vd_blk_hdr(d, k, type, 0);
	struct vring_desc *t = vd_ptr(d, SEG_TABLE(k), 16ull * (nseg + 2));
	uint16_t w = type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0;
	t[0] = (struct vring_desc){ .addr = hdr, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1 };
	for (unsigned i = 1; i <= nseg; i++)
		t[i] = (struct vring_desc){ .addr = SEG_DATA, .len = i == nseg ? last : seg,
					    .flags = (uint16_t)(w | VRING_DESC_F_NEXT), .next = (uint16_t)(i + 1) };
	t[nseg + 1] = (struct vring_desc){ .addr = hdr + 16, .len = 1, .flags = VRING_DESC_F_WRITE };
	vd_set_desc(d, 0, k, SEG_TABLE(k), 16 * (nseg + 2), VRING_DESC_F_INDIRECT, 0);
	vd_kick_head(d, 0, (uint16_t)k);
	return (uint64_t)(nseg - 1) * seg + last;
}

/*
 * The request-size limit: SIZE_MAX (1 MiB) and SEG_MAX (126) offered, so a
 * conforming driver sends at most 126 * 1 MiB.  A read or write longer
 * than that -- the audit's 126 descriptors of 4 MiB all at one 4 MiB guest
 * buffer, or the maximum plus one sector -- completes once with IOERR and
 * never reaches the disk; the maximum itself and a request after the
 * refused ones go through.
 */
static void test_blk_request_size(void)
{
	struct nulldisk n = NULLDISK(64);
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_blk_desc, MEM, 1ull << VIRTIO_F_INDIRECT_DESC, 64) == 0);
	virtio_blk_attach(virtio_pci_state(d.vp), &n.dev, NULL);
	vd_wr(&d, VPC_DFSELECT, 4, 0);
	uint32_t features = (uint32_t)vd_rd(&d, VPC_DF, 4);
	CHECK(features & (1u << VIRTIO_BLK_F_SIZE_MAX));
	CHECK(features & (1u << VIRTIO_BLK_F_SEG_MAX));
	CHECK_EQ(vd_rd(&d, VIRTIO_PCI_DEVICE + offsetof(struct virtio_blk_config, size_max), 4), 1024 * 1024);
	CHECK_EQ(vd_rd(&d, VIRTIO_PCI_DEVICE + offsetof(struct virtio_blk_config, seg_max), 4), 126);

	static const struct {
		uint32_t type;
		unsigned nseg;
		uint32_t seg, last;
		uint8_t status;
	} reqs[] = {
		{ VIRTIO_BLK_T_OUT, 126, 4u << 20, 4u << 20, VIRTIO_BLK_S_IOERR }, /* 504 MiB */
		{ VIRTIO_BLK_T_IN, 126, 4u << 20, 4u << 20, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_IN, 126, 1u << 20, 1u << 20, VIRTIO_BLK_S_OK }, /* the maximum */
		{ VIRTIO_BLK_T_OUT, 126, 1u << 20, (1u << 20) + 512, VIRTIO_BLK_S_IOERR }, /* one sector more */
		{ VIRTIO_BLK_T_IN, 1, 4u << 20, 4u << 20, VIRTIO_BLK_S_OK },   /* one long segment: within the total */
		{ VIRTIO_BLK_T_OUT, 1, 4096, 4096, VIRTIO_BLK_S_OK },
	};
	unsigned submits = 0;
	for (unsigned k = 0; k < ARRAY_SIZE(reqs); k++) {
		uint64_t len = blk_req_segs(&d, k, reqs[k].type, reqs[k].nseg, reqs[k].seg, reqs[k].last);
		bool ok = reqs[k].status == VIRTIO_BLK_S_OK;
		CHECK_EQ(vd_used_idx(&d, 0), k + 1);
		CHECK_EQ(vd_used_elem(&d, 0, (uint16_t)k).id, k);
		CHECK_EQ(vd_blk_status(&d, k), reqs[k].status);
		/* A read's data counts in the used length only when it succeeded. */
		CHECK_EQ(vd_used_elem(&d, 0, (uint16_t)k).len, 1 + (ok && reqs[k].type == VIRTIO_BLK_T_IN ? len : 0));
		submits += ok;
		CHECK_EQ(n.submits, submits);
		if (ok)
			CHECK_EQ(n.last_len, len);
	}
	CHECK(!(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	vd_close(&d);
}

/* A masked vector's interrupt is held pending (PBA) and delivered on unmask; status bits stick. */
static void test_msix_mask_and_status(void)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, 0, 16) == 0);
	vd_wr(&d, VIRTIO_PCI_MSIX_TABLE + 16 * 1 + 12, 4, 1); /* mask queue 0's vector */
	vd_set_desc(&d, 0, 0, BUF, 16, VRING_DESC_F_WRITE, 0);
	vd_kick_head(&d, 0, 0);
	CHECK_EQ(vd_used_idx(&d, 0), 1);
	CHECK_EQ(vd_interrupts(&d, 0), 0);
	CHECK_EQ(vd_rd(&d, VIRTIO_PCI_MSIX_PBA, 8), 2); /* bit 1: vector 1 pending */
	vd_wr(&d, VIRTIO_PCI_MSIX_TABLE + 16 * 1 + 12, 4, 0);
	CHECK_EQ(vd_interrupts(&d, 0), 1);
	CHECK_EQ(vd_rd(&d, VIRTIO_PCI_MSIX_PBA, 8), 0);
	/* The driver cannot clear status bits but by a reset. */
	uint8_t st = (uint8_t)vd_rd(&d, VPC_STATUS, 1);
	vd_wr(&d, VPC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	CHECK_EQ(vd_rd(&d, VPC_STATUS, 1), st);
	vd_close(&d);
}

/* A disk that takes two requests at a time and refuses more with -EAGAIN until released. */
struct tightdisk {
	struct blk_dev dev;
	pthread_mutex_t lock;
	struct blk_req *held[2];
	unsigned nheld, refused;
};

static int tight_submit(struct blk_dev *dev, struct blk_req *q)
{
	struct tightdisk *t = (struct tightdisk *)dev;
	pthread_mutex_lock(&t->lock);
	int r = 0;
	if (t->nheld == 2) {
		t->refused++;
		r = -EAGAIN;
	} else {
		q->status = 0;
		t->held[t->nheld++] = q;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

static void tight_release(struct tightdisk *t)
{
	pthread_mutex_lock(&t->lock);
	struct blk_req *h[2] = { t->held[0], t->held[1] };
	unsigned n = t->nheld;
	t->nheld = 0;
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < n; i++)
		h[i]->done(h[i]);
}

static const struct blk_ops tight_ops = { .submit = tight_submit, .close = ram_close };

static void test_blk_backpressure(void)
{
	struct tightdisk t = { .dev = { .ops = &tight_ops, .layer = "tight", .size = 1 << 20, .block_size = 512,
					.queue_depth = 2 } };
	pthread_mutex_init(&t.lock, NULL);
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_blk_desc, MEM, 0, 64) == 0);
	virtio_blk_attach(virtio_pci_state(d.vp), &t.dev, NULL);
	/* Five flushes published at once, one kick. */
	uint16_t *a = vd_ptr(&d, vd_avail(0), 4 + 2 * 64);
	for (unsigned k = 0; k < 5; k++) {
		uint64_t hdr = BUF + 32ull * k;
		uint32_t *h = vd_ptr(&d, hdr, 16);
		h[0] = 4;
		h[1] = h[2] = h[3] = 0;
		vd_set_desc(&d, 0, 2 * k, hdr, 16, VRING_DESC_F_NEXT, (uint16_t)(2 * k + 1));
		vd_set_desc(&d, 0, 2 * k + 1, hdr + 16, 1, VRING_DESC_F_WRITE, 0);
		a[2 + k] = (uint16_t)(2 * k);
	}
	a[1] = d.avail_idx[0] = 5;
	vd_wr(&d, VIRTIO_PCI_NOTIFY, 2, 0);
	CHECK_EQ(t.nheld, 2);
	CHECK_EQ(t.refused, 1);
	CHECK_EQ(vd_used_idx(&d, 0), 0);
	/* Each release completes two; the stalled request and the rest follow (harness: kick to resume). */
	for (int round = 0; round < 3; round++) {
		tight_release(&t);
		vd_wr(&d, VIRTIO_PCI_NOTIFY, 2, 0);
	}
	tight_release(&t);
	CHECK_EQ(vd_used_idx(&d, 0), 5);
	unsigned seen = 0;
	for (uint16_t i = 0; i < 5; i++)
		seen |= 1u << (vd_used_elem(&d, 0, i).id / 2);
	CHECK_EQ(seen, 0x1f); /* each exactly once */
	vd_close(&d);
	pthread_mutex_destroy(&t.lock);
}

int main(void)
{
	log_level = LOG_QUIET;
	RUN("virtio", test_rng_request);
	RUN("virtio", test_malformed_chains);
	RUN("virtio", test_ring_corruption_needs_reset);
	RUN("virtio", test_event_idx_suppression);
	RUN("virtio", test_notify_suppression);
	RUN("virtio", test_bad_features_refused);
	RUN("virtio", test_console);
	RUN("virtio", test_blk);
	RUN("virtio", test_blk_too_many_buffers);
	RUN("virtio", test_blk_request_size);
	RUN("virtio", test_msix_mask_and_status);
	RUN("virtio", test_blk_backpressure);
	UNIT_EXIT();
}
