// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for one virtio device model over the PCI transport
 * (FUZZ_VIRTIO names its descriptor).  The device starts at DRIVER_OK with
 * its rings set up (tests/unit/vdriver.h); the input is then a sequence of
 * 12-byte records a hostile guest could produce: writes to guest memory
 * (rings, descriptors, buffers), BAR register reads and writes, kicks and,
 * for the console, host input.  virtio-blk runs over a RAM disk that
 * completes at once.  An input whose length leaves 6 or more bytes after its
 * last record runs with packed rings (the ring writes then land in the
 * descriptor ring and event areas).
 */
#include <stdint.h>
#include <stdlib.h>

#include "block/block.h"
#include "base/util.h"
#include "vdriver.h"

extern const struct virtio_device_desc FUZZ_VIRTIO;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MEM (8ull << 20)
static uint8_t disk[256 * 1024];

static int ram_submit(struct blk_dev *dev, struct blk_req *q)
{
	(void)dev;
	uint64_t off = q->offset;
	if (q->op == BLK_READ || q->op == BLK_WRITE) {
		for (unsigned i = 0; i < q->iovcnt; i++) {
			if (off + q->iov[i].iov_len > sizeof(disk))
				abort(); /* the device let an out-of-range request through */
			if (q->op == BLK_READ)
				memcpy(q->iov[i].iov_base, disk + off, q->iov[i].iov_len);
			else
				memcpy(disk + off, q->iov[i].iov_base, q->iov[i].iov_len);
			off += q->iov[i].iov_len;
		}
	} else if (q->op != BLK_FLUSH && q->offset + q->len > sizeof(disk)) {
		abort();
	}
	q->status = 0;
	q->done(q);
	return 0;
}

static void ram_close(struct blk_dev *dev)
{
	(void)dev;
}

static const struct blk_ops ram_ops = { .submit = ram_submit, .close = ram_close };
static struct blk_dev ram = { .ops = &ram_ops, .layer = "ram", .size = sizeof(disk), .block_size = 512,
			      .queue_depth = 64, .volatile_cache = true, .can_discard = true, .can_write_zeroes = true };
static struct blk_options opts = { .serial = "fuzz" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_level = LOG_QUIET;
	struct vdrv d;
	uint64_t want = ~0ull;
	if (size % 12 < 6)
		want &= ~(1ull << VIRTIO_F_RING_PACKED);
	if (vd_open(&d, &FUZZ_VIRTIO, FUZZ_MEM, want, 16))
		abort();
	if (FUZZ_VIRTIO.device_id == 2)
		virtio_blk_attach(virtio_pci_state(d.vp), &ram, &opts);
	for (; size >= 12; data += 12, size -= 12) {
		uint32_t a, v;
		memcpy(&a, data + 4, 4);
		memcpy(&v, data + 8, 4);
		unsigned q = data[1] % 4;
		switch (data[0] % 6) {
		case 0: /* guest writes 4 bytes into one of its rings */
			memcpy(vd_ptr(&d, vd_desc(q) + a % 0xc000, 4), &v, 4);
			break;
		case 1: /* ... or into a buffer */
			memcpy(vd_ptr(&d, VD_DATA_BASE + a % 0x10000, 4), &v, 4);
			break;
		case 2: {
			static const unsigned sizes[4] = { 1, 2, 4, 8 };
			unsigned sz = sizes[data[2] & 3];
			uint64_t off = a % VIRTIO_PCI_BAR_SIZE;
			if (sz <= VIRTIO_PCI_BAR_SIZE - off)
				vd_wr(&d, off, sz, v);
			break;
		}
		case 3:
			(void)vd_rd(&d, a % VIRTIO_PCI_BAR_SIZE, 4);
			break;
		case 4: /* publish avail idx = v and kick */
			memcpy(vd_ptr(&d, vd_avail(q) + 2, 2), &v, 2);
			vd_wr(&d, VIRTIO_PCI_NOTIFY + VIRTIO_PCI_NOTIFY_MULT * q, 2, q);
			break;
		case 5:
			if (FUZZ_VIRTIO.device_id == 3)
				(void)virtio_console_input(virtio_pci_state(d.vp), data + 4, data[2] % 9);
			break;
		}
	}
	vd_close(&d);
	return 0;
}
