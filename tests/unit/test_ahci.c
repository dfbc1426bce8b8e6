// SPDX-License-Identifier: MIT
/*
 * The AHCI controller (src/ahci) in plain memory: a SATA disk on port 0 and
 * a CD-ROM on port 1, both RAM disks that can hold their requests back so
 * a test completes them in the order it likes; port 2 empty.  Driven as a
 * guest would (tests/unit/ahcidrv.h) through BAR5 and configuration space.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ahci/ahci.h"
#include "base/util.h"
#include "fake.h"
#include "block/block.h"
#include "dev/pci.h"
#include "vmm/accel.h"
#include "vmm/guest_mem.h"
#include "vmm/irq_route.h"
#include "ahcidrv.h"
#include "unit.h"

#define MEM (64ull << 20)
#define BUF 0x1000000ull /* data buffers from 16 MiB */
#define DISK_SECTORS 2048u
#define CD_SECTORS 64u

/* A RAM disk that completes at once, or (defer) when the test says. */
struct memdisk {
	struct blk_dev dev;
	uint8_t *data;
	bool defer;
	struct blk_req *pending[64];
	unsigned npending, submits, completions, flushes, fua, bad;
	uint64_t discarded[8][2];
	unsigned discards;
};

static void md_do(struct memdisk *m, struct blk_req *r)
{
	uint64_t off = r->offset;
	for (unsigned i = 0; (r->op == BLK_READ || r->op == BLK_WRITE) && i < r->iovcnt; i++) {
		if (r->op == BLK_READ)
			memcpy(r->iov[i].iov_base, m->data + off, r->iov[i].iov_len);
		else
			memcpy(m->data + off, r->iov[i].iov_base, r->iov[i].iov_len);
		off += r->iov[i].iov_len;
	}
	if (r->op == BLK_DISCARD && m->discards < 8) {
		m->discarded[m->discards][0] = r->offset;
		m->discarded[m->discards++][1] = r->len;
	}
	m->flushes += r->op == BLK_FLUSH;
	m->fua += (r->flags & BLK_FUA) != 0;
	m->completions++;
	r->status = 0;
	r->done(r);
}

static int md_submit(struct blk_dev *dev, struct blk_req *r)
{
	struct memdisk *m = (struct memdisk *)dev;
	int rc = blk_req_check(dev, r);
	if (rc) {
		m->bad++; /* the model let an invalid request through */
		return rc;
	}
	if (m->npending >= dev->queue_depth)
		return -EAGAIN;
	m->submits++;
	if (m->defer) {
		m->pending[m->npending++] = r;
		return 0;
	}
	md_do(m, r);
	return 0;
}

/* Complete the i-th held request. */
static void md_complete(struct memdisk *m, unsigned i)
{
	struct blk_req *r = m->pending[i];
	memmove(m->pending + i, m->pending + i + 1, (m->npending - i - 1) * sizeof(r));
	m->npending--;
	md_do(m, r);
}

/* Complete the held request of NCQ tag / slot `tag`. */
static void md_complete_tag(struct memdisk *m, unsigned tag)
{
	for (unsigned i = 0; i < m->npending; i++) {
		if (m->pending[i]->tag == tag) {
			md_complete(m, i);
			return;
		}
	}
	CHECK(!"no such request held");
}

static uint32_t get32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void md_close(struct blk_dev *dev)
{
	(void)dev;
}

static const struct blk_ops md_ops = { .submit = md_submit, .close = md_close };

static struct {
	struct guest_mem mem;
	struct ahci *a;
	struct pci_bus bus;
	int slot;
	struct ahd d;
	struct memdisk disk, cd;
} t;

static uint32_t t_rd(void *o, uint32_t off)
{
	(void)o;
	return (uint32_t)ahci_mmio_read(t.a, off, 4);
}

static void t_wr(void *o, uint32_t off, uint32_t v)
{
	(void)o;
	ahci_mmio_write(t.a, off, 4, v);
}

static void t_mw(void *o, uint64_t gpa, const void *buf, size_t len)
{
	(void)o;
	CHECK_EQ(gm_write(&t.mem, gpa, buf, len), 0);
}

static void t_mr(void *o, uint64_t gpa, void *buf, size_t len)
{
	(void)o;
	CHECK_EQ(gm_read(&t.mem, gpa, buf, len), 0);
}

static bool t_idle(void *o, unsigned round)
{
	(void)o;
	return round < 2; /* completions are synchronous or the test's to make */
}

static const struct ahd_ops t_ops = { t_rd, t_wr, t_mw, t_mr, t_idle };

static void md_init(struct memdisk *m, uint64_t size, uint32_t bs, bool discard, bool ro)
{
	memset(m, 0, sizeof(*m));
	m->data = calloc(1, size);
	for (uint64_t i = 0; i < size; i++)
		m->data[i] = (uint8_t)(i / bs * 7 + i);
	m->dev = (struct blk_dev){ .ops = &md_ops, .layer = "mem", .size = size, .block_size = bs, .queue_depth = 64,
				   .read_only = ro, .volatile_cache = true, .can_discard = discard };
}

static void setup_ro(bool discard, bool ro)
{
	CHECK_EQ(gm_init(&t.mem, MEM), 0);
	md_init(&t.disk, DISK_SECTORS * 512ull, 512, discard, ro);
	md_init(&t.cd, CD_SECTORS * 2048ull, 512, false, true);
	struct ahci_drive drives[3] = { { &t.disk.dev, BLK_MEDIA_DISK, "unit-serial" }, { &t.cd.dev, BLK_MEDIA_CDROM, NULL },
					{ NULL, BLK_MEDIA_DISK, NULL } };
	t.a = ahci_new(&t.mem, NULL, drives, 3);
	CHECK(t.a != NULL);
	pci_bus_init(&t.bus);
	t.bus.bar_next = 0xc0000000ull;
	t.bus.bar_limit = 0xfec00000ull;
	t.slot = pci_bus_add(&t.bus, ahci_pci_dev(t.a), -1);
	pci_config_write(&t.bus, 0, (unsigned)t.slot, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	t.d = (struct ahd){ &t_ops, NULL, 0x100000 };
}

static void setup(void)
{
	setup_ro(true, false);
}

static void teardown(void)
{
	for (struct memdisk *m = &t.disk; m <= &t.cd; m++) {
		m->defer = false;
		while (m->npending)
			md_complete(m, 0);
	}
	ahci_free(t.a);
	pci_bus_destroy(&t.bus);
	gm_destroy(&t.mem);
	CHECK_EQ(t.disk.bad + t.cd.bad, 0);
	CHECK_EQ(t.disk.submits, t.disk.completions); /* each request completed exactly once */
	free(t.disk.data);
	free(t.cd.data);
}

static uint8_t cfg8(unsigned off)
{
	return (uint8_t)pci_config_read(&t.bus, 0, (unsigned)t.slot, 0, off, 1);
}

static uint8_t rw(unsigned s, uint8_t cmd, uint64_t lba, uint16_t count, uint64_t buf, bool write)
{
	uint8_t f[20];
	ahd_fis(f, cmd, 0, lba, count, 0x40);
	struct ahd_prd prd = { buf, (count ? count : 256) * 512u };
	return ahd_exec(&t.d, 0, s, f, NULL, &prd, 1, write);
}

/* --- tests ---------------------------------------------------------------- */

static void pci_identity_and_hba(void)
{
	setup();
	uint32_t id = pci_config_read(&t.bus, 0, (unsigned)t.slot, 0, 0, 4);
	CHECK_EQ(id, 0x29228086);
	CHECK_EQ(pci_config_read(&t.bus, 0, (unsigned)t.slot, 0, 8, 4) >> 8, 0x010601);
	CHECK(pci_config_read(&t.bus, 0, (unsigned)t.slot, 0, 0x24, 4) != 0); /* ABAR in BAR5 */
	CHECK_EQ(cfg8(PCI_INT_PIN), 1);
	unsigned c = cfg8(PCI_CAP_PTR);
	CHECK_EQ(cfg8(c), 0x05); /* MSI */
	CHECK_EQ(cfg8(c + 2) & 0x8e, 0x80); /* 64-bit, one message */
	uint32_t cap = ahd_rd(&t.d, AHD_CAP);
	CHECK_EQ(cap & 0x1f, 5);           /* six ports */
	CHECK_EQ((cap >> 8) & 0x1f, 31);   /* 32 slots */
	CHECK(cap & (1u << 30) && cap & (1u << 31) && cap & (1u << 18)); /* NCQ, 64-bit, AHCI only */
	CHECK_EQ(ahd_rd(&t.d, AHD_PI), 0x3f);
	CHECK_EQ(ahd_rd(&t.d, AHD_VS), 0x10200);
	CHECK(ahd_rd(&t.d, AHD_GHC) & (1u << 31));
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SIG), 0x101);
	CHECK_EQ(ahd_pr(&t.d, 1, AHD_SIG), 0xeb140101u);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SSTS) & 0xf, 3);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_TFD) & 0xff, 0x50);
	CHECK_EQ(ahd_pr(&t.d, 2, AHD_SSTS), 0); /* empty port */
	CHECK_EQ(ahd_pr(&t.d, 2, AHD_SIG), 0xffffffffu);
	/* Byte and 64-bit accesses see the same registers. */
	CHECK_EQ(ahci_mmio_read(t.a, AHD_PORT(1) + AHD_SIG + 3, 1), 0xeb);
	CHECK_EQ(ahci_mmio_read(t.a, AHD_PORT(0) + AHD_TFD, 8), 0x101ull << 32 | 0x150);
	/* HBA reset with nothing in flight ends at once. */
	ahd_wr(&t.d, AHD_GHC, 1);
	CHECK_EQ(ahd_rd(&t.d, AHD_GHC) & 1, 0);
	teardown();
}

static void identify_read_write_flush(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	uint8_t f[20];
	ahd_fis(f, 0xec, 0, 0, 0, 0);
	struct ahd_prd prd = { BUF, 512 };
	CHECK_EQ(ahd_exec(&t.d, 0, 0, f, NULL, &prd, 1, false), 0x50);
	CHECK_EQ(ahd_rfis(&t.d, 0, AHD_RFIS_PIO), 0x5f); /* PIO setup, with the final status */
	CHECK_EQ(ahd_rfis(&t.d, 0, AHD_RFIS_PIO + 15), 0x50);
	CHECK_EQ(ahd_rfis(&t.d, 0, AHD_RFIS_D2H), 0x34);
	CHECK_EQ(ahd_prdbc(&t.d, 0, 0), 512);
	uint16_t id[256];
	t_mr(NULL, BUF, id, sizeof(id));
	CHECK_EQ(id[0], 0x0040);
	CHECK_EQ(id[60] | id[61] << 16, DISK_SECTORS);
	CHECK_EQ(id[100], DISK_SECTORS);
	CHECK(id[76] & 0x100);
	CHECK_EQ(id[75], 31);
	CHECK(id[169] & 1); /* TRIM: the disk can discard */
	CHECK(!memcmp(id + 27, "ekle", 4)); /* "keel", two bytes per word, swapped */
	CHECK(!memcmp(id + 10, "nu", 2));
	uint8_t sum = 0;
	for (unsigned i = 0; i < 512; i++)
		sum = (uint8_t)(sum + ((uint8_t *)id)[i]);
	CHECK_EQ(sum, 0);
	/* WRITE DMA EXT from two PRDs, READ DMA back elsewhere: the disk holds it. */
	uint8_t w[4096], r[4096];
	for (unsigned i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i * 13 + 5);
	t_mw(NULL, BUF + 0x10000, w, 3072);
	t_mw(NULL, BUF + 0x30000, w + 3072, 1024);
	ahd_fis(f, 0x35, 0, 100, 8, 0x40);
	struct ahd_prd two[2] = { { BUF + 0x10000, 3072 }, { BUF + 0x30000, 1024 } };
	CHECK_EQ(ahd_exec(&t.d, 0, 1, f, NULL, two, 2, true), 0x50);
	CHECK_EQ(ahd_prdbc(&t.d, 0, 1), 4096);
	CHECK(!memcmp(t.disk.data + 100 * 512, w, sizeof(w)));
	CHECK_EQ(rw(2, 0xc8, 100, 8, BUF + 0x40000, false), 0x50);
	t_mr(NULL, BUF + 0x40000, r, sizeof(r));
	CHECK(!memcmp(r, w, sizeof(r)));
	/* FLUSH CACHE EXT reaches the disk; write cache off makes writes FUA. */
	ahd_fis(f, 0xea, 0, 0, 0, 0);
	CHECK_EQ(ahd_exec(&t.d, 0, 3, f, NULL, NULL, 0, false), 0x50);
	CHECK_EQ(t.disk.flushes, 1);
	ahd_fis(f, 0xef, 0x82, 0, 0, 0);
	CHECK_EQ(ahd_exec(&t.d, 0, 4, f, NULL, NULL, 0, false), 0x50);
	CHECK_EQ(t.disk.flushes, 2);
	CHECK_EQ(rw(5, 0xca, 0, 1, BUF, true), 0x50);
	CHECK_EQ(t.disk.fua, 1);
	/* Past the end: IDNF, and the port halts until restarted. */
	CHECK_EQ(rw(6, 0x25, DISK_SECTORS - 1, 2, BUF, false), 0x51);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_TFD) >> 8 & 0xff, 0x10);
	CHECK(ahd_pr(&t.d, 0, AHD_CI) & (1u << 6));
	CHECK_EQ(rw(7, 0x25, 0, 1, BUF, false), 0xff); /* not processed while halted */
	CHECK(ahd_recover(&t.d, 0));
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_CI), 0);
	CHECK_EQ(rw(7, 0x25, 0, 1, BUF, false), 0x50);
	teardown();
}

/* Eight queued reads complete in reverse order; each shows in SACT and an SDB FIS. */
static void ncq_out_of_order(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	t.disk.defer = true;
	for (unsigned s = 0; s < 8; s++) {
		uint8_t f[20];
		ahd_fis_ncq(f, false, 10 * s, 2, s);
		struct ahd_prd prd = { BUF + 0x1000ull * s, 1024 };
		ahd_prep(&t.d, 0, s, f, NULL, &prd, 1, false);
	}
	ahd_pwr(&t.d, 0, AHD_SACT, 0xff);
	ahd_pwr(&t.d, 0, AHD_CI, 0xff);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_CI), 0); /* accepted at once */
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SACT), 0xff);
	CHECK_EQ(t.disk.npending, 8);
	for (unsigned k = 0; k < 8; k++) {
		unsigned s = 7 - k;
		md_complete_tag(&t.disk, s);
		CHECK_EQ(ahd_pr(&t.d, 0, AHD_SACT), (1u << s) - 1);
		uint32_t sdb;
		t_mr(NULL, ahd_fb(&t.d, 0) + AHD_RFIS_SDB + 4, &sdb, 4);
		CHECK_EQ(sdb, 1u << s);
		CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_SDBS);
		ahd_pwr(&t.d, 0, AHD_IS, AHD_IS_SDBS);
		uint8_t b[1024];
		t_mr(NULL, BUF + 0x1000ull * s, b, sizeof(b));
		CHECK(!memcmp(b, t.disk.data + 10 * s * 512, sizeof(b)));
	}
	/* A FUA write goes down as one. */
	t.disk.defer = false;
	uint8_t f[20];
	ahd_fis_ncq(f, true, 5, 1, 3);
	f[7] |= 0x80;
	struct ahd_prd prd = { BUF, 512 };
	ahd_prep(&t.d, 0, 3, f, NULL, &prd, 1, true);
	ahd_pwr(&t.d, 0, AHD_SACT, 1u << 3);
	ahd_pwr(&t.d, 0, AHD_CI, 1u << 3);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SACT), 0);
	CHECK_EQ(t.disk.fua, 1);
	teardown();
}

/* A queued command that fails: SDB with ERR, its SACT bit stays, the log page names its tag. */
static void ncq_error_and_log(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	uint8_t f[20];
	ahd_fis_ncq(f, false, DISK_SECTORS - 1, 4, 5);
	struct ahd_prd prd = { BUF, 2048 };
	ahd_prep(&t.d, 0, 5, f, NULL, &prd, 1, false);
	ahd_pwr(&t.d, 0, AHD_SACT, 1u << 5);
	ahd_pwr(&t.d, 0, AHD_CI, 1u << 5);
	CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_TFES);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SACT), 1u << 5);
	CHECK_EQ(ahd_rfis(&t.d, 0, AHD_RFIS_SDB + 2) & 1, 1);
	CHECK(ahd_recover(&t.d, 0));
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SACT), 0);
	ahd_fis(f, 0x2f, 0, 0x10, 1, 0);
	struct ahd_prd lp = { BUF + 0x2000, 512 };
	CHECK_EQ(ahd_exec(&t.d, 0, 0, f, NULL, &lp, 1, false), 0x50);
	uint8_t log[512];
	t_mr(NULL, BUF + 0x2000, log, sizeof(log));
	CHECK_EQ(log[0], 5);
	CHECK_EQ(log[3], 0x10);
	uint8_t sum = 0;
	for (unsigned i = 0; i < 512; i++)
		sum = (uint8_t)(sum + log[i]);
	CHECK_EQ(sum, 0);
	CHECK_EQ(ahd_exec(&t.d, 0, 0, f, NULL, &lp, 1, false), 0x50);
	t_mr(NULL, BUF + 0x2000, log, 1);
	CHECK_EQ(log[0], 0x80); /* read once: the error is gone */
	/* A tag that is not its slot is refused. */
	ahd_fis_ncq(f, false, 0, 1, 9);
	ahd_prep(&t.d, 0, 2, f, NULL, &prd, 1, false);
	ahd_pwr(&t.d, 0, AHD_SACT, 1u << 2);
	ahd_pwr(&t.d, 0, AHD_CI, 1u << 2);
	CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_TFES);
	teardown();
}

/* Clearing ST with requests in flight: CI and SACT clear now, CR when they are back; nothing is written after. */
static void stop_with_requests_in_flight(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	t.disk.defer = true;
	for (unsigned s = 0; s < 4; s++) {
		uint8_t f[20];
		ahd_fis_ncq(f, s % 2, 8 * s, 1, s);
		struct ahd_prd prd = { BUF + 0x1000ull * s, 512 };
		ahd_prep(&t.d, 0, s, f, NULL, &prd, 1, s % 2);
	}
	ahd_pwr(&t.d, 0, AHD_SACT, 0xf);
	ahd_pwr(&t.d, 0, AHD_CI, 0xf);
	CHECK_EQ(t.disk.npending, 4);
	ahd_pwr(&t.d, 0, AHD_IS, 0xffffffffu);
	ahd_pwr(&t.d, 0, AHD_CMD, ahd_pr(&t.d, 0, AHD_CMD) & ~AHD_CMD_ST);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SACT), 0);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_CI), 0);
	CHECK(ahd_pr(&t.d, 0, AHD_CMD) & AHD_CMD_CR);
	/* The guest's FIS area and headers carry marks that a late completion would overwrite. */
	uint8_t mark[256];
	memset(mark, 0xa5, sizeof(mark));
	t_mw(NULL, ahd_fb(&t.d, 0), mark, sizeof(mark));
	t_mw(NULL, ahd_clb(&t.d, 0), mark, 128);
	md_complete(&t.disk, 2);
	md_complete(&t.disk, 0);
	CHECK(ahd_pr(&t.d, 0, AHD_CMD) & AHD_CMD_CR);
	md_complete(&t.disk, 0);
	md_complete(&t.disk, 0);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_CMD) & AHD_CMD_CR, 0);
	uint8_t got[256];
	t_mr(NULL, ahd_fb(&t.d, 0), got, sizeof(got));
	CHECK(!memcmp(got, mark, sizeof(got)));
	t_mr(NULL, ahd_clb(&t.d, 0), got, 128);
	CHECK(!memcmp(got, mark, 128));
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_IS), 0);
	/* The port works again once started. */
	t.disk.defer = false;
	CHECK(ahd_port_start(&t.d, 0));
	CHECK_EQ(rw(0, 0x25, 0, 1, BUF, false), 0x50);
	teardown();
}

/* COMRESET and HBA reset with requests in flight: BSY and HR hold until they are back. */
static void resets_with_requests_in_flight(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	t.disk.defer = true;
	uint8_t f[20];
	ahd_fis_ncq(f, false, 0, 1, 0);
	struct ahd_prd prd = { BUF, 512 };
	ahd_prep(&t.d, 0, 0, f, NULL, &prd, 1, false);
	ahd_pwr(&t.d, 0, AHD_SACT, 1);
	ahd_pwr(&t.d, 0, AHD_CI, 1);
	ahd_pwr(&t.d, 0, AHD_CMD, ahd_pr(&t.d, 0, AHD_CMD) & ~AHD_CMD_ST);
	ahd_pwr(&t.d, 0, AHD_SCTL, 0x301);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_TFD) & 0x80, 0x80);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SSTS) & 0xf, 1);
	ahd_pwr(&t.d, 0, AHD_SCTL, 0x300);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_TFD) & 0x80, 0x80); /* still waiting for the read */
	md_complete(&t.disk, 0);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_TFD), 0x150);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SSTS), 0x123);
	CHECK_EQ(ahd_rfis(&t.d, 0, AHD_RFIS_D2H), 0x34); /* the signature FIS */
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_CMD) & AHD_CMD_CR, 0);
	/* GHC.HR */
	CHECK(ahd_port_start(&t.d, 0));
	ahd_prep(&t.d, 0, 0, f, NULL, &prd, 1, false);
	ahd_pwr(&t.d, 0, AHD_SACT, 1);
	ahd_pwr(&t.d, 0, AHD_CI, 1);
	ahd_wr(&t.d, AHD_GHC, 1);
	CHECK_EQ(ahd_rd(&t.d, AHD_GHC) & 1, 1);
	md_complete(&t.disk, 0);
	CHECK_EQ(ahd_rd(&t.d, AHD_GHC) & 1, 0);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_CLB), 0);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_CMD) & (AHD_CMD_ST | AHD_CMD_CR | AHD_CMD_FRE), 0);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_TFD), 0x150);
	teardown();
}

/* A disk that takes three requests at a time: sixteen queued commands all complete, once each. */
static void backpressure(void)
{
	setup();
	t.disk.dev.queue_depth = 3;
	CHECK(ahd_port_start(&t.d, 0));
	t.disk.defer = true;
	for (unsigned s = 0; s < 16; s++) {
		uint8_t f[20];
		ahd_fis_ncq(f, false, s, 1, s);
		struct ahd_prd prd = { BUF + 512ull * s, 512 };
		ahd_prep(&t.d, 0, s, f, NULL, &prd, 1, false);
	}
	ahd_pwr(&t.d, 0, AHD_SACT, 0xffff);
	ahd_pwr(&t.d, 0, AHD_CI, 0xffff);
	CHECK_EQ(t.disk.npending, 3);
	for (unsigned i = 0; i < 16 && t.disk.npending; i++)
		md_complete(&t.disk, t.disk.npending - 1);
	CHECK_EQ(t.disk.npending, 0);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_SACT), 0);
	CHECK_EQ(t.disk.submits, 16);
	uint8_t b[512 * 16];
	t_mr(NULL, BUF, b, sizeof(b));
	CHECK(!memcmp(b, t.disk.data, sizeof(b)));
	teardown();
}

static void trim(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	uint64_t ranges[64] = { 0 };
	ranges[0] = 16 | (uint64_t)8 << 48;
	ranges[3] = 1000 | (uint64_t)24 << 48;
	t_mw(NULL, BUF, ranges, sizeof(ranges));
	uint8_t f[20];
	ahd_fis(f, 0x06, 1, 0, 1, 0x40);
	struct ahd_prd prd = { BUF, 512 };
	CHECK_EQ(ahd_exec(&t.d, 0, 0, f, NULL, &prd, 1, true), 0x50);
	CHECK_EQ(t.disk.discards, 2);
	CHECK_EQ(t.disk.discarded[0][0], 16 * 512);
	CHECK_EQ(t.disk.discarded[0][1], 8 * 512);
	CHECK_EQ(t.disk.discarded[1][0], 1000 * 512);
	/* A range past the end fails the whole command before anything is discarded. */
	ranges[5] = (DISK_SECTORS - 1) | (uint64_t)2 << 48;
	t_mw(NULL, BUF, ranges, sizeof(ranges));
	CHECK_EQ(ahd_exec(&t.d, 0, 1, f, NULL, &prd, 1, true), 0x51);
	CHECK_EQ(t.disk.discards, 2);
	teardown();
	/* A disk that cannot discard says so and refuses. */
	setup_ro(false, false);
	CHECK(ahd_port_start(&t.d, 0));
	ahd_fis(f, 0xec, 0, 0, 0, 0);
	CHECK_EQ(ahd_exec(&t.d, 0, 0, f, NULL, &prd, 1, false), 0x50);
	uint16_t w169;
	t_mr(NULL, BUF + 2 * 169, &w169, 2);
	CHECK_EQ(w169 & 1, 0);
	ahd_fis(f, 0x06, 1, 0, 1, 0x40);
	CHECK_EQ(ahd_exec(&t.d, 0, 1, f, NULL, &prd, 1, true), 0x51);
	teardown();
}

static void read_only_disk(void)
{
	setup_ro(true, true);
	CHECK(ahd_port_start(&t.d, 0));
	CHECK_EQ(rw(0, 0x35, 0, 1, BUF, true), 0x51);
	CHECK(ahd_recover(&t.d, 0));
	CHECK_EQ(rw(1, 0x25, 0, 1, BUF, false), 0x50);
	teardown();
}

static uint8_t packet(unsigned s, const uint8_t *cdb, uint32_t len)
{
	return ahd_packet(&t.d, 1, s, cdb, BUF, len);
}

static void atapi_commands(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 1));
	uint8_t f[20], b[64];
	/* IDENTIFY DEVICE is refused with the packet signature; IDENTIFY PACKET DEVICE answers. */
	ahd_fis(f, 0xec, 0, 0, 0, 0);
	struct ahd_prd prd = { BUF, 512 };
	CHECK_EQ(ahd_exec(&t.d, 1, 0, f, NULL, &prd, 1, false), 0x51);
	CHECK_EQ(ahd_rfis(&t.d, 1, AHD_RFIS_D2H + 5), 0x14);
	CHECK_EQ(ahd_rfis(&t.d, 1, AHD_RFIS_D2H + 6), 0xeb);
	CHECK(ahd_recover(&t.d, 1));
	ahd_fis(f, 0xa1, 0, 0, 0, 0);
	CHECK_EQ(ahd_exec(&t.d, 1, 0, f, NULL, &prd, 1, false), 0x50);
	uint16_t w0;
	t_mr(NULL, BUF, &w0, 2);
	CHECK_EQ(w0, 0x85c0);
	uint8_t inq[12] = { 0x12, 0, 0, 0, 36 };
	CHECK_EQ(packet(1, inq, 36), 0x50);
	t_mr(NULL, BUF, b, 36);
	CHECK_EQ(b[0], 5);
	CHECK(!memcmp(b + 8, "KEEL", 4));
	uint8_t cap[12] = { 0x25 };
	CHECK_EQ(packet(2, cap, 8), 0x50);
	t_mr(NULL, BUF, b, 8);
	CHECK_EQ(get32be(b), CD_SECTORS - 1);
	CHECK_EQ(get32be(b + 4), 2048);
	uint8_t rd[12] = { 0x28, 0, 0, 0, 0, 3, 0, 0, 2 };
	CHECK_EQ(packet(3, rd, 4096), 0x50);
	uint8_t data[4096];
	t_mr(NULL, BUF, data, sizeof(data));
	CHECK(!memcmp(data, t.cd.data + 3 * 2048, sizeof(data)));
	CHECK_EQ(ahd_prdbc(&t.d, 1, 3), 4096);
	/* Past the end: CHECK CONDITION, sense 05/21/00, which REQUEST SENSE then returns once. */
	uint8_t past[12] = { 0x28, 0, 0, 0, 0, CD_SECTORS - 1, 0, 0, 2 };
	CHECK_EQ(packet(4, past, 4096), 0x51);
	CHECK_EQ(ahd_pr(&t.d, 1, AHD_TFD) >> 8 & 0xff, 0x50);
	CHECK(ahd_recover(&t.d, 1));
	uint8_t rs[12] = { 0x03, 0, 0, 0, 18 };
	CHECK_EQ(packet(5, rs, 18), 0x50);
	t_mr(NULL, BUF, b, 18);
	CHECK_EQ(b[0], 0x70);
	CHECK_EQ(b[2], 5);
	CHECK_EQ(b[12], 0x21);
	CHECK_EQ(b[13], 0);
	CHECK_EQ(packet(6, rs, 18), 0x50);
	t_mr(NULL, BUF, b, 18);
	CHECK_EQ(b[2], 0);
	/* An opcode it does not have: 05/20/00. */
	uint8_t bad[12] = { 0xff };
	CHECK_EQ(packet(7, bad, 0), 0x51);
	CHECK(ahd_recover(&t.d, 1));
	CHECK_EQ(packet(8, rs, 18), 0x50);
	t_mr(NULL, BUF, b, 18);
	CHECK_EQ(b[12], 0x20);
	/* TOC: track 1 at 0 and the lead-out at the end; in MSF with the 2-second pregap. */
	uint8_t toc[12] = { 0x43, 0, 0, 0, 0, 0, 0, 0, 64 };
	CHECK_EQ(packet(9, toc, 64), 0x50);
	t_mr(NULL, BUF, b, 20);
	CHECK_EQ(b[1], 18);
	CHECK_EQ(b[6], 1);
	CHECK_EQ(b[14], 0xaa);
	CHECK_EQ(get32be(b + 16), CD_SECTORS);
	toc[1] = 2;
	CHECK_EQ(packet(10, toc, 64), 0x50);
	t_mr(NULL, BUF, b, 20);
	CHECK_EQ(b[10], 2); /* 00:02:00 */
	toc[1] = 0, toc[2] = 1;
	CHECK_EQ(packet(11, toc, 64), 0x50);
	t_mr(NULL, BUF, b, 12);
	CHECK_EQ(b[1], 10);
	/* GET CONFIGURATION: a CD-ROM profile; GET EVENT STATUS: media present; the capabilities page. */
	uint8_t gc[12] = { 0x46, 0, 0, 0, 0, 0, 0, 0, 64 };
	CHECK_EQ(packet(12, gc, 64), 0x50);
	t_mr(NULL, BUF, b, 8);
	CHECK_EQ(b[7], 0x08);
	uint8_t ev[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
	CHECK_EQ(packet(13, ev, 8), 0x50);
	t_mr(NULL, BUF, b, 8);
	CHECK_EQ(b[2], 4);
	CHECK_EQ(b[5], 2);
	uint8_t ms[12] = { 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 64 };
	CHECK_EQ(packet(14, ms, 64), 0x50);
	t_mr(NULL, BUF, b, 10);
	CHECK_EQ(b[8], 0x2a);
	uint8_t di[12] = { 0x51, 0, 0, 0, 0, 0, 0, 0, 34 };
	CHECK_EQ(packet(15, di, 34), 0x50);
	uint8_t mech[12] = { 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8 };
	CHECK_EQ(packet(16, mech, 8), 0x50);
	uint8_t tur[12] = { 0 };
	CHECK_EQ(packet(17, tur, 0), 0x50);
	/* Locked, it will not eject. */
	uint8_t lock[12] = { 0x1e, 0, 0, 0, 1 }, eject[12] = { 0x1b, 0, 0, 0, 2 };
	CHECK_EQ(packet(18, lock, 0), 0x50);
	CHECK_EQ(packet(19, eject, 0), 0x51);
	CHECK(ahd_recover(&t.d, 1));
	/* The CD is read-only: ATA writes are refused. */
	ahd_fis(f, 0x35, 0, 0, 1, 0x40);
	CHECK_EQ(ahd_exec(&t.d, 1, 20, f, NULL, &prd, 1, true), 0x51);
	teardown();
}

/* What a hostile guest can point the controller at: each case fails its command, nothing breaks. */
static void hostile_commands(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	uint8_t f[20];
	/* A PRD outside RAM: host bus fatal error, the command stays in CI. */
	ahd_fis(f, 0x25, 0, 0, 1, 0x40);
	struct ahd_prd out = { 0xf0000000ull, 512 };
	ahd_prep(&t.d, 0, 0, f, NULL, &out, 1, false);
	ahd_pwr(&t.d, 0, AHD_CI, 1);
	CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_HBFS);
	CHECK(ahd_pr(&t.d, 0, AHD_CI) & 1);
	CHECK(ahd_recover(&t.d, 0));
	/* A PRDT too short for the data: overflow. */
	ahd_fis(f, 0x25, 0, 0, 8, 0x40);
	struct ahd_prd shortp = { BUF, 512 };
	ahd_prep(&t.d, 0, 1, f, NULL, &shortp, 1, false);
	ahd_pwr(&t.d, 0, AHD_CI, 2);
	CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_OFS);
	CHECK(ahd_recover(&t.d, 0));
	/* Not a register FIS: interface fatal error. */
	ahd_fis(f, 0x25, 0, 0, 1, 0x40);
	f[0] = 0x34;
	ahd_prep(&t.d, 0, 2, f, NULL, &shortp, 1, false);
	ahd_pwr(&t.d, 0, AHD_CI, 4);
	CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_IFS);
	CHECK(ahd_recover(&t.d, 0));
	/* A command list outside RAM. */
	ahd_pwr(&t.d, 0, AHD_CMD, ahd_pr(&t.d, 0, AHD_CMD) & ~(AHD_CMD_ST | AHD_CMD_FRE));
	ahd_pwr(&t.d, 0, AHD_CLB, 0xfffffc00u);
	ahd_pwr(&t.d, 0, AHD_CMD, AHD_CMD_FRE | AHD_CMD_ST);
	ahd_pwr(&t.d, 0, AHD_CI, 1);
	CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_HBFS);
	CHECK(ahd_port_start(&t.d, 0));
	/* 600 PRDs of 2 bytes, none adjacent: more pieces than the controller maps; the command is refused. */
	uint64_t tbl = BUF + 0x100000;
	ahd_fis(f, 0x25, 0, 0, 2, 0x40);
	t_mw(NULL, tbl, f, 20);
	for (unsigned i = 0; i < 600; i++) {
		uint32_t e[4] = { (uint32_t)(BUF + 4 * i), 0, 0, 1 };
		t_mw(NULL, tbl + 0x80 + 16 * i, e, sizeof(e));
	}
	uint32_t hdr[8] = { 5 | 600u << 16, 0, (uint32_t)tbl, 0 };
	t_mw(NULL, ahd_clb(&t.d, 0) + 32 * 3, hdr, sizeof(hdr));
	ahd_pwr(&t.d, 0, AHD_CI, 1u << 3);
	CHECK(ahd_pr(&t.d, 0, AHD_IS) & AHD_IS_TFES);
	CHECK_EQ(ahd_pr(&t.d, 0, AHD_TFD) & 0xff, 0x51);
	CHECK(ahd_recover(&t.d, 0));
	/* Every opcode, with nonsense around it, on both devices: each ends, none crashes. */
	for (unsigned op = 0; op < 256; op++) {
		if (op == 0x06 || op == 0x61 || op == 0x30 || op == 0x34 || op == 0x35 || op == 0x39 || op == 0x3d ||
		    op == 0xc5 || op == 0xca)
			continue; /* writes: covered above, and they would change the disk */
		ahd_fis(f, (uint8_t)op, 0xffff, 0xffffffffffffull, 0, 0x40);
		struct ahd_prd p1 = { BUF, 4096 };
		static const uint8_t cdb[12] = { 0x28, 0, 0xff, 0xff, 0xff, 0xff };
		for (unsigned port = 0; port < 2; port++) {
			uint8_t s = ahd_exec(&t.d, port, op % 32, f, port ? cdb : NULL, &p1, 1, false);
			if (s & 1)
				CHECK(ahd_recover(&t.d, port));
		}
	}
	teardown();
}

static void interrupts(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 0));
	struct pci_dev *pd = ahci_pci_dev(t.a);
	/* INTx: GHC.IE on, MSI off: the line follows the pending bits. */
	ahd_wr(&t.d, AHD_GHC, 2);
	CHECK_EQ(rw(0, 0x25, 0, 1, BUF, false), 0x50); /* ahd_exec clears IS at the end */
	CHECK(!pd->intx_level);
	uint8_t f[20];
	ahd_fis(f, 0x25, 0, 0, 1, 0x40);
	struct ahd_prd prd = { BUF, 512 };
	ahd_prep(&t.d, 0, 1, f, NULL, &prd, 1, false);
	ahd_pwr(&t.d, 0, AHD_CI, 2);
	CHECK(pd->intx_level);
	CHECK_EQ(ahd_rd(&t.d, AHD_HIS), 1);
	ahd_pwr(&t.d, 0, AHD_IS, 0xffffffffu);
	CHECK(!pd->intx_level);
	/* MSI: enabled in config space, one message per completion, none while PxIE masks it. */
	unsigned c = cfg8(PCI_CAP_PTR);
	pci_config_write(&t.bus, 0, (unsigned)t.slot, 0, c + 4, 4, 0xfee00000u);
	pci_config_write(&t.bus, 0, (unsigned)t.slot, 0, c + 12, 2, 0x41);
	pci_config_write(&t.bus, 0, (unsigned)t.slot, 0, c + 2, 2, 1);
	uint64_t n = 0;
	(void)!read(ahci_msi_fd(t.a), &n, sizeof(n));
	ahd_pwr(&t.d, 0, AHD_CI, 2);
	CHECK(!pd->intx_level);
	CHECK_EQ(read(ahci_msi_fd(t.a), &n, sizeof(n)), 8);
	CHECK_EQ(n, 1);
	ahd_pwr(&t.d, 0, AHD_IS, 0xffffffffu);
	ahd_pwr(&t.d, 0, AHD_IE, 0);
	ahd_pwr(&t.d, 0, AHD_CI, 2);
	CHECK(read(ahci_msi_fd(t.a), &n, sizeof(n)) < 0);
	/* Enabling it again with the event pending sends one. */
	ahd_pwr(&t.d, 0, AHD_IE, AHD_IS_DHRS);
	CHECK_EQ(read(ahci_msi_fd(t.a), &n, sizeof(n)), 8);
	teardown();
}

/* Software reset by two device control FISes (SRST set, then cleared), as libahci's softreset. */
static void software_reset(void)
{
	setup();
	CHECK(ahd_port_start(&t.d, 1));
	uint8_t f[20] = { 0x27, 0, 0, 0 };
	f[15] = 0x04;
	ahd_prep(&t.d, 1, 0, f, NULL, NULL, 0, false);
	uint32_t hdr = 5 | 1u << 8 | 1u << 10; /* reset, clear busy on R_OK */
	t_mw(NULL, ahd_clb(&t.d, 1), &hdr, 4);
	ahd_pwr(&t.d, 1, AHD_CI, 1);
	CHECK_EQ(ahd_pr(&t.d, 1, AHD_CI), 0);
	f[15] = 0;
	ahd_prep(&t.d, 1, 1, f, NULL, NULL, 0, false);
	ahd_pwr(&t.d, 1, AHD_CI, 2);
	CHECK_EQ(ahd_pr(&t.d, 1, AHD_CI), 0);
	CHECK_EQ(ahd_pr(&t.d, 1, AHD_TFD), 0x150);
	CHECK_EQ(ahd_rfis(&t.d, 1, AHD_RFIS_D2H + 5), 0x14);
	CHECK_EQ(ahd_pr(&t.d, 1, AHD_IS) & AHD_IS_DHRS, 0); /* the signature FIS asks for no interrupt */
	teardown();
}

/* An accelerator that takes routes and irqfds and counts the irqfds bound. */
static int stub_irqfds;

static int stub_routing(struct vm *vm, const struct kvm_irq_routing *table)
{
	(void)vm, (void)table;
	return 0;
}

static int stub_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign)
{
	(void)vm, (void)fd, (void)gsi;
	stub_irqfds += assign ? 1 : -1;
	return 0;
}

static const struct accel_ops stub_accel = { .name = "stub", .set_gsi_routing = stub_routing, .irqfd = stub_irqfd };

/* The machine's hook: one controller for the if=ahci disks and CD-ROMs, in their order, named for the firmware. */
static void create_all_from_config(void)
{
	struct vm *vm = fake_vm(16 << 20);
	static struct vm_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.cpus = 1;
	cfg.nr_disks = 3;
	cfg.disks[0].iface = BLK_IF_VIRTIO;
	cfg.disks[1] = (struct blk_options){ .iface = BLK_IF_AHCI, .serial = "sata1" };
	cfg.disks[2] = (struct blk_options){ .iface = BLK_IF_AHCI, .media = BLK_MEDIA_CDROM, .readonly = true };
	vm->cfg = &cfg;
	vm->accel = &stub_accel;
	struct memdisk d0, d1, d2;
	md_init(&d0, 1 << 20, 512, false, false);
	md_init(&d1, 1 << 20, 512, true, false);
	md_init(&d2, 64 * 2048, 512, false, true);
	struct blk_dev *disks[3] = { &d0.dev, &d1.dev, &d2.dev };
	vm->disks = disks;
	vm->nr_disks = 3;
	struct pci_bus bus;
	pci_bus_init(&bus);
	bus.bar_next = 0xc0000000ull;
	bus.bar_limit = 0xfec00000ull;
	vm->pci = &bus;
	irq_router_init(&vm->irq, vm);
	CHECK_EQ(ahci_create_all(vm), 0);
	CHECK(vm->ahci != NULL);
	CHECK_EQ(stub_irqfds, 1);
	int slot = -1;
	for (int i = 0; i < PCI_SLOTS; i++)
		if (bus.slots[i] == ahci_pci_dev(vm->ahci))
			slot = i;
	CHECK(slot >= 0);
	char want[64];
	snprintf(want, sizeof(want), "/pci@i0cf8/*@%x/drive@1/disk@0", (unsigned)slot);
	CHECK(!strcmp(vm->boot_path[2], want));
	CHECK_EQ(vm->boot_path[0][0], 0);
	CHECK_EQ(ahci_mmio_read(vm->ahci, AHD_PORT(0) + AHD_SIG, 4), 0x101);
	CHECK_EQ(ahci_mmio_read(vm->ahci, AHD_PORT(1) + AHD_SIG, 4), 0xeb140101u);
	CHECK_EQ(ahci_mmio_read(vm->ahci, AHD_PORT(2) + AHD_SSTS, 4), 0);
	ahci_destroy_all(vm);
	CHECK(vm->ahci == NULL);
	CHECK_EQ(stub_irqfds, 0); /* the irqfd is given back: the VM outlives the device */
	/* No AHCI disk: no controller. */
	cfg.disks[1].iface = cfg.disks[2].iface = BLK_IF_VIRTIO;
	CHECK_EQ(ahci_create_all(vm), 0);
	CHECK(vm->ahci == NULL);
	/* Seven are more than the ports. */
	cfg.nr_disks = 7;
	for (unsigned i = 0; i < 7; i++)
		cfg.disks[i].iface = BLK_IF_AHCI;
	capture_begin();
	CHECK(ahci_create_all(vm) < 0);
	CHECK(strstr(capture_end(), "6 ports") != NULL);
	CHECK(vm->ahci == NULL);
	irq_router_destroy(&vm->irq);
	pci_bus_destroy(&bus);
	vm->disks = NULL;
	vm->nr_disks = 0;
	free(d0.data);
	free(d1.data);
	free(d2.data);
	fake_vm_free(vm);
}

int main(void)
{
	log_level = LOG_QUIET;
	RUN("ahci", pci_identity_and_hba);
	RUN("ahci", identify_read_write_flush);
	RUN("ahci", ncq_out_of_order);
	RUN("ahci", ncq_error_and_log);
	RUN("ahci", stop_with_requests_in_flight);
	RUN("ahci", resets_with_requests_in_flight);
	RUN("ahci", backpressure);
	RUN("ahci", trim);
	RUN("ahci", read_only_disk);
	RUN("ahci", atapi_commands);
	RUN("ahci", hostile_commands);
	RUN("ahci", interrupts);
	RUN("ahci", software_reset);
	RUN("ahci", create_all_from_config);
	UNIT_EXIT();
}
