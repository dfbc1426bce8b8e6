// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the AHCI controller (src/ahci): a SATA disk on
 * port 0 and a CD-ROM on port 1, RAM disks that check every request they
 * get (range, alignment, iovecs: blk_req_check()) and abort on one that
 * the model should have refused.  Each input starts from a driver's set-up
 * (ports started, interrupts on, valid commands already in the command
 * lists: IDENTIFY, DMA reads and writes, queued ones, TRIM, ATAPI packets)
 * and is then a sequence of 12-byte records a hostile guest could produce:
 * ABAR reads and writes of any width, guest-memory writes over the command
 * lists, tables, PRDTs and buffers, configuration-space writes (MSI,
 * COMMAND), and -- the disks hold requests back while the input says so --
 * completions in any order, so stops, resets and aborts meet requests in
 * flight.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ahci/ahci.h"
#include "base/util.h"
#include "block/block.h"
#include "dev/pci.h"
#include "vmm/guest_mem.h"
#include "ahcidrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MEM (4ull << 20)
#define BASE 0x100000ull  /* the driver's structures (ahcidrv.h layout): 0x100000 ... 0x140000 */
#define BUF 0x200000ull   /* data buffers */
#define HELD_MAX 64

struct fdisk {
	struct blk_dev dev;
	uint8_t *data;
	bool hold;
	struct blk_req *held[HELD_MAX];
	unsigned nheld;
};

static struct fdisk disk, cd;
static struct guest_mem mem;
static struct ahci *a;
static struct pci_bus bus;
static int slot;

static void fd_do(struct fdisk *f, struct blk_req *r)
{
	uint64_t off = r->offset;
	for (unsigned i = 0; (r->op == BLK_READ || r->op == BLK_WRITE) && i < r->iovcnt; i++) {
		if (r->op == BLK_READ)
			memcpy(r->iov[i].iov_base, f->data + off, r->iov[i].iov_len);
		else
			memcpy(f->data + off, r->iov[i].iov_base, r->iov[i].iov_len);
		off += r->iov[i].iov_len;
	}
	r->status = (r->offset / 512) % 97 == 13 ? -EIO : 0; /* a few sectors fail, for the error paths */
	r->done(r);
}

static int fd_submit(struct blk_dev *dev, struct blk_req *r)
{
	struct fdisk *f = (struct fdisk *)dev;
	if (blk_req_check(dev, r))
		abort(); /* the model let an invalid request through */
	if (f->nheld == HELD_MAX)
		return -EAGAIN;
	if (f->hold) {
		f->held[f->nheld++] = r;
		return 0;
	}
	fd_do(f, r);
	return 0;
}

static void fd_release(struct fdisk *f, unsigned i)
{
	struct blk_req *r = f->held[i];
	f->held[i] = f->held[--f->nheld];
	fd_do(f, r);
}

static void fd_close(struct blk_dev *dev)
{
	(void)dev;
}

static const struct blk_ops fd_ops = { .submit = fd_submit, .close = fd_close };

static uint32_t f_rd(void *o, uint32_t off)
{
	(void)o;
	return (uint32_t)ahci_mmio_read(a, off, 4);
}

static void f_wr(void *o, uint32_t off, uint32_t v)
{
	(void)o;
	ahci_mmio_write(a, off, 4, v);
}

static void f_mw(void *o, uint64_t gpa, const void *buf, size_t len)
{
	(void)o;
	(void)gm_write(&mem, gpa, buf, len);
}

static void f_mr(void *o, uint64_t gpa, void *buf, size_t len)
{
	(void)o;
	(void)gm_read(&mem, gpa, buf, len);
}

static bool f_idle(void *o, unsigned round)
{
	(void)o, (void)round;
	return false;
}

static const struct ahd_ops ops = { f_rd, f_wr, f_mw, f_mr, f_idle };

static void init_disk(struct fdisk *f, uint64_t size, bool discard, bool ro)
{
	f->data = calloc(1, size);
	if (!f->data)
		abort();
	f->dev = (struct blk_dev){ .ops = &fd_ops, .layer = "fuzz", .size = size, .block_size = 512, .queue_depth = 32,
				   .read_only = ro, .volatile_cache = true, .can_discard = discard };
}

/* Commands a driver would have left in the lists: the fuzzer issues and mutates them. */
static void seed_commands(struct ahd *d)
{
	uint8_t f[20];
	struct ahd_prd p1 = { BUF, 4096 }, p2[2] = { { BUF + 0x10000, 1024 }, { BUF + 0x20000, 3072 } };
	ahd_fis(f, 0xec, 0, 0, 0, 0);
	ahd_prep(d, 0, 0, f, NULL, &p1, 1, false);
	ahd_fis(f, 0x25, 0, 8, 8, 0x40);
	ahd_prep(d, 0, 1, f, NULL, p2, 2, false);
	ahd_fis(f, 0x35, 0, 16, 8, 0x40);
	ahd_prep(d, 0, 2, f, NULL, p2, 2, true);
	for (unsigned s = 3; s < 8; s++) {
		ahd_fis_ncq(f, s & 1, 8 * s, 8, s);
		ahd_prep(d, 0, s, f, NULL, &p1, 1, s & 1);
	}
	uint64_t ranges[64] = { 24 | 8ull << 48, 200 | 4ull << 48 };
	f_mw(NULL, BUF + 0x30000, ranges, sizeof(ranges));
	struct ahd_prd pr = { BUF + 0x30000, 512 };
	ahd_fis(f, 0x06, 1, 0, 1, 0x40);
	ahd_prep(d, 0, 8, f, NULL, &pr, 1, true);
	ahd_fis(f, 0x2f, 0, 0x10, 1, 0);
	ahd_prep(d, 0, 9, f, NULL, &p1, 1, false);
	ahd_fis(f, 0xea, 0, 0, 0, 0);
	ahd_prep(d, 0, 10, f, NULL, NULL, 0, false);
	/* More disk commands: PIO reads and writes, FUA, logs, settings, power, diagnostics. */
	static const struct { uint8_t cmd; uint16_t feat; uint64_t lba; uint16_t count; bool write; } ata[] = {
		{ 0x20, 0, 4, 2, false }, { 0x30, 0, 40, 2, true }, { 0x3d, 0, 48, 1, true }, { 0x2f, 0, 0, 1, false },
		{ 0x47, 0, 0x10, 1, false }, { 0xef, 0x03, 0, 0x46, false }, { 0xef, 0x82, 0, 0, false },
		{ 0xef, 0x02, 0, 0, false }, { 0xc6, 0, 0, 8, false }, { 0xe5, 0, 0, 0, false }, { 0x42, 0, 0, 16, false },
		{ 0x90, 0, 0, 0, false }, { 0xc4, 0, 2, 4, false }, { 0x24, 0, 500, 20, false }, { 0x29, 0, 1, 1, false },
	};
	for (unsigned i = 0; i < ARRAY_SIZE(ata); i++) {
		ahd_fis(f, ata[i].cmd, ata[i].feat, ata[i].lba, ata[i].count, 0x40);
		ahd_prep(d, 0, 11 + i, f, NULL, &p1, 1, ata[i].write);
	}
	static const uint8_t cdbs[][12] = {
		{ 0x12, 0, 0, 0, 36 }, { 0x25 }, { 0x28, 0, 0, 0, 0, 2, 0, 0, 2 }, { 0x03, 0, 0, 0, 18 },
		{ 0x43, 2, 0, 0, 0, 0, 0, 0, 64 }, { 0x46, 0, 0, 0, 0, 0, 0, 0, 255 }, { 0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 255 },
		{ 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 }, { 0x00 }, { 0x1e, 0, 0, 0, 1 }, { 0x1b, 0, 0, 0, 2 },
		{ 0x2b, 0, 0, 0, 0, 5 }, { 0x43, 0, 1, 0, 0, 0, 0, 0, 64 }, { 0x43, 0, 2, 0, 0, 0, 0, 0, 255 },
		{ 0x51, 0, 0, 0, 0, 0, 0, 0, 34 }, { 0x52, 1, 0, 0, 0, 1, 0, 0, 36 }, { 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8 },
		{ 0xa8, 0, 0, 0, 0, 1, 0, 0, 0, 1 }, { 0x28, 0, 0, 0, 0, 31, 0, 0, 2 }, { 0xff },
		{ 0x5a, 0, 0x41, 0, 0, 0, 0, 0, 64 }, { 0x46, 2, 0, 0x1e, 0, 0, 0, 0, 64 },
	};
	for (unsigned s = 0; s < ARRAY_SIZE(cdbs); s++) {
		ahd_fis(f, 0xa0, s & 1, 0, 0, 0); /* DMA and PIO */
		ahd_prep(d, 1, s, f, cdbs[s], &p1, 1, false);
	}
	ahd_fis(f, 0xa1, 0, 0, 0, 0);
	ahd_prep(d, 1, 31, f, NULL, &p1, 1, false);
}

static void setup(void)
{
	log_level = LOG_QUIET;
	if (gm_init(&mem, FUZZ_MEM))
		abort();
	init_disk(&disk, 256 * 1024, true, false);
	init_disk(&cd, 32 * 2048, false, true);
	pci_bus_init(&bus);
	bus.bar_next = 0xc0000000ull;
	bus.bar_limit = 0xfec00000ull;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!disk.data)
		setup();
	if (gm_clear(&mem))
		abort();
	struct ahci_drive drives[3] = { { &disk.dev, BLK_MEDIA_DISK, "fuzz" }, { &cd.dev, BLK_MEDIA_CDROM, NULL } };
	a = ahci_new(&mem, NULL, drives, 3);
	if (!a)
		abort();
	memset(bus.slots, 0, sizeof(bus.slots));
	bus.bar_next = 0xc0000000ull;
	slot = pci_bus_add(&bus, ahci_pci_dev(a), -1);
	pci_config_write(&bus, 0, (unsigned)slot, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	struct ahd d = { &ops, NULL, BASE };
	ahd_port_start(&d, 0);
	ahd_port_start(&d, 1);
	ahd_wr(&d, AHD_GHC, 1u << 31 | 2);
	seed_commands(&d);
	disk.hold = cd.hold = false;
	for (; size >= 12; data += 12, size -= 12) {
		uint32_t x, v;
		memcpy(&x, data + 4, 4);
		memcpy(&v, data + 8, 4);
		static const unsigned sizes[4] = { 1, 2, 4, 8 };
		unsigned sz = sizes[data[1] & 3];
		struct fdisk *f = data[1] & 0x80 ? &cd : &disk;
		switch (data[0] % 9) {
		case 0: { /* ABAR write */
			uint64_t off = x % 0x1000;
			if (sz <= 0x1000 - off)
				ahci_mmio_write(a, off, sz, (uint64_t)v << 32 | x >> 12);
			break;
		}
		case 1:
			(void)ahci_mmio_read(a, x % 0x1000, sz);
			break;
		case 2: /* the command lists, FIS areas and tables */
			f_mw(NULL, BASE + x % 0x40000, &v, 4);
			break;
		case 3: /* buffers, TRIM ranges */
			f_mw(NULL, BUF + x % 0x40000, &v, 4);
			break;
		case 4: /* issue: SACT then CI of a port */
			ahd_pwr(&d, data[2] % 6, AHD_SACT, x & v);
			ahd_pwr(&d, data[2] % 6, AHD_CI, x);
			break;
		case 5: /* hold the disks' requests back, or let them go */
			f->hold = data[2] & 1;
			break;
		case 6: /* complete a held request */
			if (f->nheld)
				fd_release(f, x % f->nheld);
			break;
		case 7: /* configuration space: COMMAND, MSI */
			pci_config_write(&bus, 0, (unsigned)slot, 0, data[2], sz > 4 ? 4 : sz, v);
			break;
		case 8: { /* a register of a port, by name */
			static const uint32_t regs[] = { AHD_CMD, AHD_SCTL, AHD_IS, AHD_IE, AHD_SERR, AHD_CLB, AHD_FB };
			ahd_pwr(&d, data[2] % 6, regs[data[3] % ARRAY_SIZE(regs)], v);
			break;
		}
		}
	}
	/* Everything held comes back before the controller goes (ahci_free() waits for it otherwise). */
	disk.hold = cd.hold = false;
	while (disk.nheld || cd.nheld) {
		if (disk.nheld)
			fd_release(&disk, 0);
		if (cd.nheld)
			fd_release(&cd, 0);
	}
	uint64_t n;
	(void)!read(ahci_msi_fd(a), &n, sizeof(n));
	ahci_free(a);
	return 0;
}
