// SPDX-License-Identifier: MIT
/*
 * Packed virtqueues (src/virtio/packed.c) through the PCI transport, with
 * tests/unit/vdriver.h playing a packed-ring driver: chains of several
 * descriptors across many laps of the ring and with a queue size that is
 * not a power of two, out-of-order completion (the used descriptor goes to
 * the device's position, which then skips the chain's length), indirect
 * tables, every chain rejection (each completed exactly once, under the
 * id of the chain's last descriptor, the device carrying on), a chain
 * longer than the ring (DEVICE_NEEDS_RESET), event suppression both
 * ways, and virtio-blk's request-size limit over a packed ring.
 */
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdlib.h>

#include "blkfake.h"
#include "block/block.h"
#include "unit.h"
#include "base/util.h"
#include "nulldisk.h"
#include "vdriver.h"

#define MEM (16ull << 20)
#define BUF VD_DATA_BASE
#define PACKED (1ull << VIRTIO_F_RING_PACKED)
#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT

typedef struct vring_packed_desc pdesc;

/* Requests of 1 to 3 writable descriptors, many laps: each used entry where the driver expects it. */
static void rng_laps(uint16_t qsize)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, PACKED, qsize) == 0);
	CHECK(d.packed);
	CHECK_EQ(d.qsize[0], qsize);
	unsigned laps = 0;
	for (uint16_t i = 0; i < 100; i++) {
		unsigned n = 1 + i % 3;
		pdesc c[3];
		for (unsigned k = 0; k < n; k++)
			c[k] = (pdesc){ .addr = BUF + 0x1000ull * i + 64 * k, .len = 8 + (uint32_t)k,
					.id = (uint16_t)(1000 + i), .flags = (uint16_t)(W | (k + 1 < n ? N : 0)) };
		bool wrap = d.used_wrap[0];
		vd_pchain(&d, 0, c, n, true);
		uint16_t id = 0;
		uint32_t len = 0;
		CHECK(vd_pused(&d, 0, &id, &len));
		CHECK_EQ(id, 1000 + i);
		CHECK_EQ(len, 8 * n + n * (n - 1) / 2);
		vd_pused_skip(&d, 0, n);
		laps += d.used_wrap[0] != wrap;
		CHECK_EQ(vd_interrupts(&d, 0), 1);
		CHECK(!vd_pused(&d, 0, &id, &len)); /* nothing more */
	}
	CHECK(laps >= 10);
	CHECK(!(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	vd_close(&d);
}

static void test_packed_laps(void)
{
	rng_laps(16);
	rng_laps(13); /* packed rings need no power of two */
	/* A split ring does: the size register ignores 13. */
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, 0, 13) == 0);
	CHECK(!d.packed);
	CHECK(d.qsize[0] != 13);
	vd_close(&d);
}

/* A virtio-blk request: header, optional data, status; chain at the driver's next positions. */
static unsigned blk_chain(struct vdrv *d, uint16_t id, uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
	uint64_t hdr = vd_blk_hdr(d, id, type, sector), st = hdr + 16;
	pdesc c[3];
	unsigned n = 0;
	c[n++] = (pdesc){ .addr = hdr, .len = 16, .flags = N };
	if (len)
		c[n++] = (pdesc){ .addr = data, .len = len, .flags = (uint16_t)((type == 0 ? W : 0) | N) };
	c[n++] = (pdesc){ .addr = st, .len = 1, .id = id, .flags = W }; /* the id is the last descriptor's */
	vd_pchain(d, 0, c, n, true);
	return n;
}

static void test_packed_blk_out_of_order(void)
{
	struct fake *f = fake_new(1 << 20, 512, 64, FAKE_MANUAL);
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_blk_desc, MEM, PACKED | 1ull << VIRTIO_F_INDIRECT_DESC, 64) == 0);
	virtio_blk_attach(virtio_pci_state(d.vp), &f->dev, NULL);
	uint8_t *w = vd_ptr(&d, BUF, 4096);
	for (int i = 0; i < 4096; i++)
		w[i] = (uint8_t)(i * 5 + 1);
	CHECK_EQ(blk_chain(&d, 7, 1, 8, BUF, 4096), 3); /* write: 3 descriptors */
	CHECK_EQ(blk_chain(&d, 9, 4, 0, 0, 0), 2);      /* flush: 2 */
	CHECK_EQ(fake_count(f, -1), 2);
	uint16_t id = 0;
	uint32_t len = 0;
	CHECK(!vd_pused(&d, 0, &id, &len));
	/* The flush completes first: its used entry is at position 0, the write's at 2. */
	CHECK(fake_release_one(f, BLK_FLUSH));
	CHECK(vd_pused(&d, 0, &id, &len));
	CHECK_EQ(id, 9);
	vd_pused_skip(&d, 0, 2);
	CHECK(!vd_pused(&d, 0, &id, &len));
	CHECK(fake_release_one(f, BLK_WRITE));
	CHECK(vd_pused(&d, 0, &id, &len));
	CHECK_EQ(id, 7);
	vd_pused_skip(&d, 0, 3);
	CHECK_EQ(vd_blk_status(&d, 7), 0);
	CHECK_EQ(vd_blk_status(&d, 9), 0);
	CHECK(!memcmp(f->vol + 8 * 512, w, 4096));

	/* A read through an indirect table: one ring descriptor. */
	uint64_t hdr = vd_blk_hdr(&d, 11, 0, 8);
	pdesc *t = vd_ptr(&d, BUF + 0x8000, 3 * 16);
	t[0] = (pdesc){ .addr = hdr, .len = 16 };
	t[1] = (pdesc){ .addr = BUF + 0x2000, .len = 4096, .flags = W };
	t[2] = (pdesc){ .addr = hdr + 16, .len = 1, .flags = W };
	pdesc ind = { .addr = BUF + 0x8000, .len = 3 * 16, .id = 11, .flags = VRING_DESC_F_INDIRECT };
	vd_pchain(&d, 0, &ind, 1, true);
	fake_release_all(f);
	CHECK(vd_pused(&d, 0, &id, &len));
	CHECK_EQ(id, 11);
	CHECK_EQ(len, 4097);
	vd_pused_skip(&d, 0, 1);
	CHECK_EQ(vd_blk_status(&d, 11), 0);
	CHECK(!memcmp(vd_ptr(&d, BUF + 0x2000, 4096), w, 4096));
	CHECK(!(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	vd_close(&d);
	fake_free(f);
}


/*
 * virtio-blk's request-size limit (126 segments of 1 MiB; see test_virtio.c)
 * over a packed ring: each request one indirect descriptor whose table holds
 * the header, nseg buffers all at one 4 MiB guest buffer, and the status.  A
 * longer read or write completes once with IOERR without reaching the
 * disk; the maximum and the next request go through.
 */
static void test_packed_blk_request_size(void)
{
	const uint64_t data = BUF + 0x400000, tables = BUF + 0x800000;
	struct nulldisk n = NULLDISK(64);
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_blk_desc, MEM, PACKED | 1ull << VIRTIO_F_INDIRECT_DESC, 64) == 0);
	CHECK(d.packed);
	virtio_blk_attach(virtio_pci_state(d.vp), &n.dev, NULL);
	static const struct {
		uint32_t type;
		unsigned nseg;
		uint32_t seg, last;
		uint8_t status;
	} reqs[] = {
		{ VIRTIO_BLK_T_OUT, 126, 4u << 20, 4u << 20, VIRTIO_BLK_S_IOERR }, /* 504 MiB */
		{ VIRTIO_BLK_T_IN, 126, 4u << 20, 4u << 20, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_OUT, 126, 1u << 20, 1u << 20, VIRTIO_BLK_S_OK }, /* the maximum */
		{ VIRTIO_BLK_T_IN, 126, 1u << 20, (1u << 20) + 512, VIRTIO_BLK_S_IOERR }, /* one sector more */
		{ VIRTIO_BLK_T_IN, 1, 4096, 4096, VIRTIO_BLK_S_OK },
	};
	unsigned submits = 0;
	for (uint16_t k = 0; k < ARRAY_SIZE(reqs); k++) {
		unsigned nseg = reqs[k].nseg;
		uint64_t hdr = vd_blk_hdr(&d, k, reqs[k].type, 0);
		pdesc *t = vd_ptr(&d, tables + 0x1000ull * k, 16ull * (nseg + 2));
		t[0] = (pdesc){ .addr = hdr, .len = 16 };
		for (unsigned i = 1; i <= nseg; i++)
			t[i] = (pdesc){ .addr = data, .len = i == nseg ? reqs[k].last : reqs[k].seg,
					.flags = reqs[k].type == VIRTIO_BLK_T_IN ? W : 0 };
		t[nseg + 1] = (pdesc){ .addr = hdr + 16, .len = 1, .flags = W };
		pdesc ind = { .addr = tables + 0x1000ull * k, .len = 16 * (nseg + 2), .id = k,
			      .flags = VRING_DESC_F_INDIRECT };
		vd_pchain(&d, 0, &ind, 1, true);
		uint64_t len = (uint64_t)(nseg - 1) * reqs[k].seg + reqs[k].last;
		bool ok = reqs[k].status == VIRTIO_BLK_S_OK;
		uint16_t id = 0xffff;
		uint32_t ulen = 0;
		CHECK(vd_pused(&d, 0, &id, &ulen));
		CHECK_EQ(id, k);
		CHECK_EQ(ulen, 1 + (ok && reqs[k].type == VIRTIO_BLK_T_IN ? len : 0));
		vd_pused_skip(&d, 0, 1);
		CHECK(!vd_pused(&d, 0, &id, &ulen)); /* completed once */
		CHECK_EQ(vd_blk_status(&d, k), reqs[k].status);
		submits += ok;
		CHECK_EQ(n.submits, submits);
		if (ok)
			CHECK_EQ(n.last_len, len);
	}
	CHECK(!(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	vd_close(&d);
}

/* A malformed chain (id 5, n descriptors) then a good one (id 6): both completed once, in place. */
static void malformed(const pdesc *chain, unsigned n)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, PACKED | 1ull << VIRTIO_F_INDIRECT_DESC, 32) == 0);
	vd_pchain(&d, 0, chain, n, true);
	CHECK(!(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET));
	uint16_t id = 0;
	uint32_t len = 1;
	CHECK(vd_pused(&d, 0, &id, &len));
	CHECK_EQ(id, 5);
	CHECK_EQ(len, 0);
	vd_pused_skip(&d, 0, n);
	CHECK(!vd_pused(&d, 0, &id, &len));
	/* The device went on after the whole chain: the next one is found where the driver put it. */
	pdesc good = { .addr = BUF + 0x1000, .len = 16, .id = 6, .flags = W };
	vd_pchain(&d, 0, &good, 1, true);
	CHECK(vd_pused(&d, 0, &id, &len));
	CHECK_EQ(id, 6);
	CHECK_EQ(len, 16);
	vd_close(&d);
}

static void test_packed_malformed_chains(void)
{
	/* The error is in the first descriptor; the chain goes on and its id is in the last. */
	malformed((pdesc[]){ { BUF, 0, 0, W | N }, { BUF, 16, 0, W | N }, { BUF, 16, 5, W } }, 3); /* zero length */
	malformed((pdesc[]){ { MEM - 8, 16, 0, W | N }, { BUF, 16, 5, W } }, 2);                   /* outside RAM */
	malformed((pdesc[]){ { ~0ull - 4, 16, 5, W } }, 1);                                         /* address wraps */
	malformed((pdesc[]){ { BUF, 16, 0, W | N }, { BUF + 16, 16, 5, 0 } }, 2); /* read after write */
	malformed((pdesc[]){ { BUF, 16, 5, 0 } }, 1); /* well-formed, but entropy needs writable buffers */
	malformed((pdesc[]){ { BUF + 0x2000, 15, 5, VRING_DESC_F_INDIRECT } }, 1); /* table length */
	malformed((pdesc[]){ { BUF + 0x2000, 16, 0, VRING_DESC_F_INDIRECT | N }, { BUF, 16, 5, W } }, 2);
	malformed((pdesc[]){ { BUF, 16, 0, W | N }, { BUF + 0x2000, 16, 5, VRING_DESC_F_INDIRECT } }, 2);
	/* 20 buffers: more than virtio-rng's iovec array (16). */
	pdesc many[20];
	for (unsigned i = 0; i < 20; i++)
		many[i] = (pdesc){ BUF + 64ull * i, 8, 5, (uint16_t)(W | (i < 19 ? N : 0)) };
	malformed(many, 20);
}

static void test_packed_malformed_indirect(void)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, PACKED | 1ull << VIRTIO_F_INDIRECT_DESC, 32) == 0);
	pdesc *t = vd_ptr(&d, BUF + 0x2000, 32);
	t[0] = (pdesc){ .addr = BUF + 0x3000, .len = 16, .flags = VRING_DESC_F_INDIRECT }; /* nested */
	pdesc c = { .addr = BUF + 0x2000, .len = 16, .id = 5, .flags = VRING_DESC_F_INDIRECT };
	vd_pchain(&d, 0, &c, 1, true);
	uint16_t id = 0;
	uint32_t len = 1;
	CHECK(vd_pused(&d, 0, &id, &len));
	CHECK_EQ(id, 5);
	CHECK_EQ(len, 0);
	vd_pused_skip(&d, 0, 1);
	/* The same table made valid is used. */
	t[0] = (pdesc){ .addr = BUF + 0x3000, .len = 16, .flags = W };
	c.id = 6;
	vd_pchain(&d, 0, &c, 1, true);
	CHECK(vd_pused(&d, 0, &id, &len));
	CHECK_EQ(id, 6);
	CHECK_EQ(len, 16);
	vd_close(&d);
}

/* Every descriptor of the ring chained, the last one too: the ring is corrupt. */
static void test_packed_chain_longer_than_ring(void)
{
	struct vdrv d;
	CHECK(vd_open(&d, &virtio_rng_desc, MEM, PACKED, 16) == 0);
	pdesc c[16];
	for (unsigned i = 0; i < 16; i++)
		c[i] = (pdesc){ BUF + 64ull * i, 8, 5, W | N };
	vd_pchain(&d, 0, c, 16, true);
	CHECK(vd_rd(&d, VPC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	uint16_t id = 0;
	uint32_t len = 0;
	CHECK(!vd_pused(&d, 0, &id, &len));
	vd_wr(&d, VPC_STATUS, 1, 0);
	CHECK_EQ(vd_rd(&d, VPC_STATUS, 1), 0);
	vd_close(&d);
}

static void test_packed_interrupt_suppression(void)
{
	for (int event_idx = 0; event_idx < 2; event_idx++) {
		struct vdrv d;
		CHECK(vd_open(&d, &virtio_rng_desc, MEM, PACKED | (event_idx ? 1ull << VIRTIO_F_EVENT_IDX : 0), 8) == 0);
		/* DISABLE: no interrupts at all. */
		vd_pdriver_event(&d, 0, 0, VRING_PACKED_EVENT_DISABLE);
		for (unsigned i = 0; i < 3; i++) {
			pdesc c = { BUF + 64ull * i, 8, (uint16_t)i, W };
			vd_pchain(&d, 0, &c, 1, true);
		}
		CHECK_EQ(vd_interrupts(&d, 0), 0);
		/*
		 * DESC: interrupt when the used descriptor at position 1 of the next
		 * lap (wrap counter 0) is written.  Without EVENT_IDX that value
		 * means nothing and every completion interrupts.
		 */
		vd_pdriver_event(&d, 0, 1, VRING_PACKED_EVENT_DESC);
		for (unsigned i = 3; i < 14; i++) {
			pdesc c = { BUF + 64ull * i, 8, (uint16_t)i, W };
			vd_pchain(&d, 0, &c, 1, true);
			/* Request i's used descriptor is at position i % 8, in lap i / 8. */
			bool want = !event_idx || i == 9;
			CHECK_EQ(vd_interrupts(&d, 0), want ? 1 : 0);
		}
		/* ENABLE: every completion. */
		vd_pdriver_event(&d, 0, 0, VRING_PACKED_EVENT_ENABLE);
		pdesc c = { BUF, 8, 20, W };
		vd_pchain(&d, 0, &c, 1, true);
		CHECK_EQ(vd_interrupts(&d, 0), 1);
		/* The device asks for a kick at its next position (15 % 8, second lap: wrap 0), or always. */
		struct vring_packed_event ev = vd_pdevice_event(&d, 0);
		CHECK_EQ(ev.flags, event_idx ? VRING_PACKED_EVENT_DESC : VRING_PACKED_EVENT_ENABLE);
		if (event_idx)
			CHECK_EQ(ev.off_wrap, 7);
		vd_close(&d);
	}
}

/* A polling device turns kicks off and on; work that came meanwhile is seen (the virtqueue alone). */
static void test_packed_notify_suppression(void)
{
	struct guest_mem mem;
	CHECK(gm_init(&mem, MEM) == 0);
	const uint64_t ring = 0x10000, drv = 0x11000, dev = 0x12000;
	memset(gm_ptr(&mem, ring, 0x3000), 0, 0x3000);
	struct virtqueue vq;
	vq_init(&vq, &mem);
	CHECK_EQ(vq_enable(&vq, 8, ring, drv, dev, true, true), 0);
	CHECK(vq_enable(&vq, 8, ring + 8, drv, dev, true, true) != 0); /* ring misaligned */
	CHECK(vq_enable(&vq, 8, ring, drv + 2, dev, true, true) != 0); /* event area misaligned */
	struct vring_packed_event *ev = gm_ptr(&mem, dev, 4);
	vq_disable_notify(&vq);
	CHECK_EQ(ev->flags, VRING_PACKED_EVENT_DISABLE);
	CHECK(!vq_has_avail(&vq));
	CHECK(!vq_enable_notify(&vq));
	CHECK_EQ(ev->flags, VRING_PACKED_EVENT_DESC);
	CHECK_EQ(ev->off_wrap, VRING_PACKED_EVENT_WRAP); /* position 0, first lap */
	vq_disable_notify(&vq);
	struct vring_packed_desc *r = gm_ptr(&mem, ring, 16);
	*r = (struct vring_packed_desc){ .addr = 0x20000, .len = 8, .id = 3,
					 .flags = VRING_DESC_F_WRITE | VRING_PACKED_DESC_F_AVAIL };
	CHECK(vq_has_avail(&vq));
	CHECK(vq_enable_notify(&vq));
	struct vq_elem e;
	struct iovec iov[4];
	CHECK_EQ(vq_pop(&vq, &e, iov, 4), 1);
	CHECK_EQ(e.head, 3);
	CHECK_EQ(e.ndesc, 1);
	CHECK_EQ(e.in_len, 8);
	CHECK(!vq_has_avail(&vq));
	/* A descriptor written with the used bits of this lap is not available. */
	r[1] = (struct vring_packed_desc){ .addr = 0x20000, .len = 8, .id = 4,
					   .flags = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED };
	CHECK_EQ(vq_pop(&vq, &e, iov, 4), 0);
	/* A completion popped before a reset is dropped. */
	vq_reset(&vq);
	CHECK_EQ(vq_enable(&vq, 8, ring, drv, dev, true, true), 0);
	r[0].flags = 0;
	(void)vq_push(&vq, &e, 8);
	CHECK_EQ(r[0].flags, 0);
	vq_destroy(&vq);
	gm_destroy(&mem);
}

int main(void)
{
	log_level = LOG_QUIET;
	RUN("virtio-packed", test_packed_laps);
	RUN("virtio-packed", test_packed_blk_out_of_order);
	RUN("virtio-packed", test_packed_blk_request_size);
	RUN("virtio-packed", test_packed_malformed_chains);
	RUN("virtio-packed", test_packed_malformed_indirect);
	RUN("virtio-packed", test_packed_chain_longer_than_ring);
	RUN("virtio-packed", test_packed_interrupt_suppression);
	RUN("virtio-packed", test_packed_notify_suppression);
	UNIT_EXIT();
}
