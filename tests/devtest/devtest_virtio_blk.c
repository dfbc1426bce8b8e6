// SPDX-License-Identifier: MIT
/*
 * virtio-blk through the whole machine, without a CPU (keel-devtest): PCI
 * enumeration, the virtio-pci transport's capabilities, MSI-X through
 * irqfds and the GSI routes keel installs, kicks through ioeventfds to the
 * queue threads, the block stack down to the image file.  What the lab's
 * Linux storage test and the test guest's blkbench mode check with a
 * guest, here in well under a second per test, on any host.
 */
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <sys/stat.h>

#include "../unit/unit.h"
#include "dtvirtio.h"

#define DATA 0x1000000ull /* buffers in guest RAM from 16 MiB */
#define HDR(k) (0x800000ull + 64ull * (k))
#define SECTOR 512u

static struct dtc d;
static char img[64], errlog[64];

/* A 4 MiB image of known bytes (byte i of sector s: s + i). */
static void make_image(void)
{
	snprintf(img, sizeof(img), "/tmp/keel-devtest-blk-%d.img", (int)getpid());
	snprintf(errlog, sizeof(errlog), "/tmp/keel-devtest-blk-%d.log", (int)getpid());
	FILE *f = fopen(img, "wb");
	for (unsigned s = 0; f && s < 8192; s++) {
		uint8_t b[SECTOR];
		for (unsigned i = 0; i < SECTOR; i++)
			b[i] = (uint8_t)(s + i);
		fwrite(b, 1, SECTOR, f);
	}
	if (f)
		fclose(f);
}

/* keel-devtest with the image as its disk (disk_opts appended to path=), over packed rings if asked. */
static int start(const char *disk_opts, bool packed)
{
	char disk[256];
	snprintf(disk, sizeof(disk), "path=%s%s", img, disk_opts);
	const char *opts[] = { "--memory", "64M", "--serial", "none", "--disk", disk,
			       packed ? "--virtio-packed" : NULL, "on", NULL };
	return dtc_start(&d, errlog, opts);
}

/* One request: header, data buffers, status.  Returns the status byte (0xee: none written). */
static uint8_t request(struct dtv *v, unsigned q, unsigned k, uint32_t type, uint64_t sector, uint64_t data,
		       uint32_t len, unsigned nbufs)
{
	struct virtio_blk_outhdr h = { .type = type, .sector = sector };
	dtc_memwrite(&d, HDR(k), &h, sizeof(h));
	dtc_write(&d, 1, HDR(k) + 16, 0xee);
	struct dtv_buf b[8] = { { HDR(k), sizeof(h), false } };
	unsigned n = 1;
	for (unsigned i = 0; i < nbufs; i++)
		b[n++] = (struct dtv_buf){ data + i * (len / nbufs), len / nbufs, type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID };
	b[n++] = (struct dtv_buf){ HDR(k) + 16, 1, true };
	uint16_t id = dtv_submit(v, q, b, n), got = 0xffff;
	uint32_t used_len = 0;
	unsigned others = 0;
	CHECK(dtv_wait(v, q, 10000, &got, &used_len, &others));
	dtv_used_skip(v, q, n);
	CHECK_EQ(got, id);
	CHECK_EQ(others, 0);
	return (uint8_t)dtc_read(&d, 1, HDR(k) + 16);
}

static void pattern(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7 + seed);
}

/* Write, read back, flush; the image holds the data.  Over whichever ring the options give. */
static void read_write_flush(bool packed)
{
	CHECK_EQ(start("", packed), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 1ull << VIRTIO_F_RING_PACKED, 128), 0);
	CHECK_EQ(v.packed, packed);
	CHECK_EQ(dtc_read(&d, 8, v.devcfg + offsetof(struct virtio_blk_config, capacity)), 8192);
	/* The image's own bytes come back. */
	uint8_t want[4096], got[4096];
	CHECK_EQ(request(&v, 0, 0, VIRTIO_BLK_T_IN, 10, DATA, 4096, 2), VIRTIO_BLK_S_OK);
	dtc_memread(&d, DATA, got, sizeof(got));
	for (unsigned i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(10 + i / SECTOR + i % SECTOR);
	CHECK(!memcmp(got, want, sizeof(want)));
	/* A write in three buffers, read back into other memory, then flushed to the file. */
	pattern(want, sizeof(want), 3);
	dtc_memwrite(&d, DATA + 0x10000, want, sizeof(want));
	CHECK_EQ(request(&v, 0, 1, VIRTIO_BLK_T_OUT, 100, DATA + 0x10000, 3 * 1024, 3), VIRTIO_BLK_S_OK);
	CHECK_EQ(request(&v, 0, 2, VIRTIO_BLK_T_IN, 100, DATA + 0x20000, 3 * 1024, 1), VIRTIO_BLK_S_OK);
	dtc_memread(&d, DATA + 0x20000, got, 3 * 1024);
	CHECK(!memcmp(got, want, 3 * 1024));
	CHECK_EQ(request(&v, 0, 3, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0), VIRTIO_BLK_S_OK);
	FILE *f = fopen(img, "rb");
	CHECK(f && fseek(f, 100 * SECTOR, SEEK_SET) == 0 && fread(got, 1, 3 * 1024, f) == 3 * 1024);
	if (f)
		fclose(f);
	CHECK(!memcmp(got, want, 3 * 1024));
	/* Many requests around the ring (it wraps, packed rings change their wrap counter). */
	for (unsigned i = 0; i < 300; i++)
		CHECK_EQ(request(&v, 0, 4 + i % 8, i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 200 + i % 50, DATA + 0x40000, 512, 1),
			 VIRTIO_BLK_S_OK);
	CHECK_EQ(d.errors, 0);
	if (d.errors)
		fprintf(stderr, "devtest: %s\n", d.first_error);
	CHECK_EQ(dtc_stop(&d), 0);
}

static void split_ring(void) { read_write_flush(false); }
static void packed_ring(void) { read_write_flush(true); }

/* GET_ID gives the serial; a read-only disk says so and refuses writes. */
static void serial_and_readonly(void)
{
	CHECK_EQ(start(",serial=devtest-7,readonly", false), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 1ull << VIRTIO_BLK_F_RO, 128), 0);
	CHECK(v.features & (1ull << VIRTIO_BLK_F_RO));
	dtc_memset(&d, DATA, 0, 20);
	CHECK_EQ(request(&v, 0, 0, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, 1), VIRTIO_BLK_S_OK);
	char id[21] = { 0 };
	dtc_memread(&d, DATA, id, 20);
	CHECK(!strcmp(id, "devtest-7"));
	CHECK_EQ(request(&v, 0, 1, VIRTIO_BLK_T_OUT, 0, DATA, 512, 1), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/*
 * The request-size limit a guest is told (SEG_MAX, SIZE_MAX) is what keel
 * takes: 126 segments of 4 MiB, all at one guest buffer, fail with IOERR,
 * and the device goes on.
 */
static void oversized_request_refused(void)
{
	CHECK_EQ(start(",cache=none", false), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX, 128), 0);
	CHECK(v.features & (1ull << VIRTIO_BLK_F_SIZE_MAX));
	CHECK_EQ(dtc_read(&d, 4, v.devcfg + offsetof(struct virtio_blk_config, size_max)), 1048576);
	CHECK_EQ(dtc_read(&d, 4, v.devcfg + offsetof(struct virtio_blk_config, seg_max)), 126);
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 0 };
	dtc_memwrite(&d, HDR(0), &h, sizeof(h));
	dtc_write(&d, 1, HDR(0) + 16, 0xee);
	static struct dtv_buf b[128];
	b[0] = (struct dtv_buf){ HDR(0), sizeof(h), false };
	for (unsigned i = 1; i <= 126; i++)
		b[i] = (struct dtv_buf){ DATA + 1, 4u << 20, true }; /* misaligned too: cache=none would bounce it */
	b[127] = (struct dtv_buf){ HDR(0) + 16, 1, true };
	uint16_t id = dtv_submit(&v, 0, b, 128), got = 0xffff;
	uint32_t len = 0;
	CHECK(dtv_wait(&v, 0, 10000, &got, &len, NULL));
	CHECK_EQ(got, id);
	CHECK_EQ(dtc_read(&d, 1, HDR(0) + 16), VIRTIO_BLK_S_IOERR);
	/* A large request within the limit (63 x 64 KiB: most of this 4 MiB disk) goes through. */
	CHECK_EQ(request(&v, 0, 1, VIRTIO_BLK_T_IN, 0, DATA, 63u << 16, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/* Two queues, each completing with its own MSI-X vector. */
static void two_queues_two_vectors(void)
{
	CHECK_EQ(start(",queues=2", false), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 1ull << VIRTIO_BLK_F_MQ, 128), 0);
	CHECK_EQ(v.nq, 2);
	for (unsigned i = 0; i < 20; i++)
		CHECK_EQ(request(&v, i % 2, i % 4, VIRTIO_BLK_T_IN, i, DATA, 512, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/* A masked vector sends nothing and sets its pending bit; unmasking delivers it. */
static void masked_vector_pends(void)
{
	CHECK_EQ(start("", false), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 0, 128), 0);
	uint64_t entry = v.msix_table + PCI_MSIX_ENTRY_SIZE * 1;
	dtc_write(&d, 4, entry + PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 1 };
	dtc_memwrite(&d, HDR(0), &h, sizeof(h));
	struct dtv_buf b[3] = { { HDR(0), sizeof(h), false }, { DATA, 512, true }, { HDR(0) + 16, 1, true } };
	uint16_t id = dtv_submit(&v, 0, b, 3), got = 0;
	uint32_t len;
	/* The completion shows in the used ring (polled, as a driver with interrupts masked would). */
	bool done = false;
	for (unsigned i = 0; i < 100000 && !done; i++)
		done = dtv_used(&v, 0, &got, &len);
	CHECK(done);
	CHECK_EQ(got, id);
	uint32_t pba_off = dtc_cfg_read(&d, (unsigned)v.dev, v.msix_cap + PCI_MSIX_PBA, 4);
	uint64_t pba = v.bar[pba_off & PCI_MSIX_PBA_BIR] + (pba_off & PCI_MSIX_PBA_OFFSET);
	bool pending = false;
	for (unsigned i = 0; i < 100000 && !pending; i++)
		pending = dtc_read(&d, 8, pba) & 2;
	CHECK(pending);
	uint64_t addr = 0;
	uint32_t data = 0;
	CHECK(!dtc_msi(&d, &addr, &data));
	dtc_write(&d, 4, entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	CHECK(dtc_msi_wait(&d, 10000, &addr, &data));
	CHECK_EQ(data, DTV_VECTOR(1));
	CHECK_EQ(dtc_read(&d, 8, pba) & 2, 0);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/* BAR 0 moved by the guest: the kick's ioeventfd follows it, the old address is dead. */
static void bar_moves_with_its_kicks(void)
{
	CHECK_EQ(start("", false), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 0, 128), 0);
	unsigned dev = (unsigned)v.dev;
	CHECK_EQ(dtc_num(&d, dtc_cmd(&d, "ioeventfd 0x%llx 2", (unsigned long long)v.q[0].notify)), 1);
	/* Size the BAR as firmware does, then put it elsewhere in the window. */
	uint32_t lo = dtc_cfg_read(&d, dev, PCI_BASE_ADDRESS_0, 4);
	dtc_cfg_write(&d, dev, PCI_COMMAND, 2, 0);
	dtc_cfg_write(&d, dev, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	uint32_t mask = dtc_cfg_read(&d, dev, PCI_BASE_ADDRESS_0, 4) & ~0xfu;
	uint64_t size = (uint64_t)(~mask) + 1;
	CHECK(size >= 0x1000 && !(size & (size - 1)));
	uint64_t old = v.bar[0], now = 0xd0000000ull;
	/* Decoding off (while sizing): no ioeventfd; on again at the new address: there, and not at the old. */
	dtc_cfg_write(&d, dev, PCI_BASE_ADDRESS_0, 4, (uint32_t)now | (lo & 0xf));
	dtc_cfg_write(&d, dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK_EQ(dtv_bar(&v, 0), now);
	v.common += now - old, v.isr += now - old, v.devcfg += now - old, v.msix_table += now - old;
	CHECK_EQ(dtc_num(&d, dtc_cmd(&d, "ioeventfd 0x%llx 2", (unsigned long long)v.q[0].notify)), 0);
	v.q[0].notify += now - old;
	CHECK_EQ(dtc_num(&d, dtc_cmd(&d, "ioeventfd 0x%llx 2", (unsigned long long)v.q[0].notify)), 1);
	CHECK_EQ(dtc_read(&d, 8, v.devcfg + offsetof(struct virtio_blk_config, capacity)), 8192);
	CHECK_EQ(request(&v, 0, 0, VIRTIO_BLK_T_IN, 3, DATA, 512, 1), VIRTIO_BLK_S_OK);
	/* Through the old address nothing reaches the device: the request stays unseen until kicked right. */
	CHECK_EQ(dtc_read(&d, 4, old), 0xffffffff);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/* Device reset with the driver's status write: it reads back 0 and the device comes up again. */
static void reset_and_again(void)
{
	CHECK_EQ(start("", false), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 0, 128), 0);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(request(&v, 0, i, VIRTIO_BLK_T_IN, i, DATA, 512, 1), VIRTIO_BLK_S_OK);
	dtv_wr(&v, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	CHECK_EQ(dtv_rd(&v, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_BLOCK, 0, 0, 64), 0);
	CHECK_EQ(v.q[0].size, 64);
	CHECK_EQ(request(&v, 0, 0, VIRTIO_BLK_T_IN, 9, DATA, 512, 1), VIRTIO_BLK_S_OK);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

int main(void)
{
	make_image();
	RUN("devtest", split_ring);
	RUN("devtest", packed_ring);
	RUN("devtest", serial_and_readonly);
	RUN("devtest", oversized_request_refused);
	RUN("devtest", two_queues_two_vectors);
	RUN("devtest", masked_vector_pends);
	RUN("devtest", bar_moves_with_its_kicks);
	RUN("devtest", reset_and_again);
	unlink(img);
	if (!unit_failed_tests)
		unlink(errlog);
	UNIT_EXIT();
}
