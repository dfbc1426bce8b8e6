// SPDX-License-Identifier: MIT
/*
 * A minimal AHCI driver for tests: it plays the guest against an AHCI
 * controller through an ops table (ABAR register access and guest RAM), so
 * the same code drives keel's model in plain memory (tests/unit) and the
 * whole machine over keel-devtest (tests/devtest).  It does what Linux's
 * libahci and SeaBIOS do, step by step, and leaves every step callable on
 * its own so tests can also do it wrong.  Nothing of keel is included.
 *
 * Guest memory from `base`: port p's command list at base + 0x2000 p,
 * its received-FIS area 0x400 after it; slot s's command table at
 * base + 0x10000 + 0x8000 p + 0x400 s (room for 56 PRD entries).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AHD_PORT(p) (0x100u + 0x80u * (p))
enum { AHD_CLB = 0x00, AHD_CLBU = 0x04, AHD_FB = 0x08, AHD_FBU = 0x0c, AHD_IS = 0x10, AHD_IE = 0x14, AHD_CMD = 0x18,
       AHD_TFD = 0x20, AHD_SIG = 0x24, AHD_SSTS = 0x28, AHD_SCTL = 0x2c, AHD_SERR = 0x30, AHD_SACT = 0x34,
       AHD_CI = 0x38 };
enum { AHD_CAP = 0x00, AHD_GHC = 0x04, AHD_HIS = 0x08, AHD_PI = 0x0c, AHD_VS = 0x10 };
#define AHD_CMD_ST 0x0001u
#define AHD_CMD_FRE 0x0010u
#define AHD_CMD_FR 0x4000u
#define AHD_CMD_CR 0x8000u
#define AHD_IS_DHRS 0x01u
#define AHD_IS_PSS 0x02u
#define AHD_IS_SDBS 0x08u
#define AHD_IS_OFS (1u << 24)
#define AHD_IS_IFS (1u << 27)
#define AHD_IS_HBFS (1u << 29)
#define AHD_IS_TFES (1u << 30)
#define AHD_RFIS_PIO 0x20
#define AHD_RFIS_D2H 0x40
#define AHD_RFIS_SDB 0x58

struct ahd_ops {
	uint32_t (*rd)(void *o, uint32_t off);
	void (*wr)(void *o, uint32_t off, uint32_t v);
	void (*mem_write)(void *o, uint64_t gpa, const void *buf, size_t len);
	void (*mem_read)(void *o, uint64_t gpa, void *buf, size_t len);
	/* Let completions happen (block threads, a test's own disk); false: give up waiting. */
	bool (*idle)(void *o, unsigned round);
};

struct ahd {
	const struct ahd_ops *ops;
	void *o;
	uint64_t base;
};

struct ahd_prd {
	uint64_t addr;
	uint32_t len;
};

static inline uint32_t ahd_rd(struct ahd *d, uint32_t off) { return d->ops->rd(d->o, off); }
static inline void ahd_wr(struct ahd *d, uint32_t off, uint32_t v) { d->ops->wr(d->o, off, v); }
static inline uint32_t ahd_pr(struct ahd *d, unsigned p, uint32_t reg) { return ahd_rd(d, AHD_PORT(p) + reg); }
static inline void ahd_pwr(struct ahd *d, unsigned p, uint32_t reg, uint32_t v) { ahd_wr(d, AHD_PORT(p) + reg, v); }

static inline uint64_t ahd_clb(const struct ahd *d, unsigned p) { return d->base + 0x2000ull * p; }
static inline uint64_t ahd_fb(const struct ahd *d, unsigned p) { return ahd_clb(d, p) + 0x400; }
static inline uint64_t ahd_ctba(const struct ahd *d, unsigned p, unsigned s)
{
	return d->base + 0x10000 + 0x8000ull * p + 0x400ull * s;
}

/* Wait until (reg & mask) == want, letting the device work; false on timeout. */
static inline bool ahd_wait(struct ahd *d, unsigned p, uint32_t reg, uint32_t mask, uint32_t want)
{
	for (unsigned round = 0;; round++) {
		if ((ahd_pr(d, p, reg) & mask) == want)
			return true;
		if (!d->ops->idle(d->o, round))
			return false;
	}
}

/* Stop the port (ST, then FRE) and wait for CR and FR, as libahci does. */
static inline bool ahd_port_stop(struct ahd *d, unsigned p)
{
	uint32_t cmd = ahd_pr(d, p, AHD_CMD);
	ahd_pwr(d, p, AHD_CMD, cmd & ~AHD_CMD_ST);
	if (!ahd_wait(d, p, AHD_CMD, AHD_CMD_CR, 0))
		return false;
	ahd_pwr(d, p, AHD_CMD, ahd_pr(d, p, AHD_CMD) & ~AHD_CMD_FRE);
	return ahd_wait(d, p, AHD_CMD, AHD_CMD_FR, 0);
}

/* Point the port at its memory, receive FISes, clear errors and interrupts, enable them all, start. */
static inline bool ahd_port_start(struct ahd *d, unsigned p)
{
	if (!ahd_port_stop(d, p))
		return false;
	ahd_pwr(d, p, AHD_CLB, (uint32_t)ahd_clb(d, p));
	ahd_pwr(d, p, AHD_CLBU, (uint32_t)(ahd_clb(d, p) >> 32));
	ahd_pwr(d, p, AHD_FB, (uint32_t)ahd_fb(d, p));
	ahd_pwr(d, p, AHD_FBU, (uint32_t)(ahd_fb(d, p) >> 32));
	ahd_pwr(d, p, AHD_CMD, ahd_pr(d, p, AHD_CMD) | AHD_CMD_FRE);
	ahd_pwr(d, p, AHD_SERR, 0xffffffffu);
	ahd_pwr(d, p, AHD_IS, 0xffffffffu);
	ahd_pwr(d, p, AHD_IE, 0xffffffffu);
	ahd_pwr(d, p, AHD_CMD, ahd_pr(d, p, AHD_CMD) | AHD_CMD_ST);
	return (ahd_pr(d, p, AHD_CMD) & (AHD_CMD_ST | AHD_CMD_CR)) == (AHD_CMD_ST | AHD_CMD_CR);
}

/* An H2D register FIS: command, features, 48-bit LBA, count, device. */
static inline void ahd_fis(uint8_t *f, uint8_t cmd, uint16_t feat, uint64_t lba, uint16_t count, uint8_t dev)
{
	memset(f, 0, 20);
	f[0] = 0x27;
	f[1] = 0x80;
	f[2] = cmd;
	f[3] = (uint8_t)feat;
	f[4] = (uint8_t)lba;
	f[5] = (uint8_t)(lba >> 8);
	f[6] = (uint8_t)(lba >> 16);
	f[7] = dev;
	f[8] = (uint8_t)(lba >> 24);
	f[9] = (uint8_t)(lba >> 32);
	f[10] = (uint8_t)(lba >> 40);
	f[11] = (uint8_t)(feat >> 8);
	f[12] = (uint8_t)count;
	f[13] = (uint8_t)(count >> 8);
}

/* READ/WRITE FPDMA QUEUED with tag == slot. */
static inline void ahd_fis_ncq(uint8_t *f, bool write, uint64_t lba, uint16_t count, unsigned tag)
{
	ahd_fis(f, write ? 0x61 : 0x60, count, lba, (uint16_t)(tag << 3), 0x40);
}

/* Write slot s's command: header (flags as given, PRDTL from n), table (FIS, packet), PRDT. */
static inline void ahd_prep(struct ahd *d, unsigned p, unsigned s, const uint8_t *fis, const uint8_t *cdb,
			    const struct ahd_prd *prd, unsigned n, bool write)
{
	uint64_t t = ahd_ctba(d, p, s);
	uint32_t hdr[8] = { 5u | (cdb ? 1u << 5 : 0) | (write ? 1u << 6 : 0) | (uint32_t)n << 16, 0, (uint32_t)t,
			    (uint32_t)(t >> 32) };
	uint8_t table[0x80] = { 0 };
	memcpy(table, fis, 20);
	if (cdb)
		memcpy(table + 0x40, cdb, 12);
	d->ops->mem_write(d->o, t, table, sizeof(table));
	for (unsigned i = 0; i < n; i++) {
		uint32_t e[4] = { (uint32_t)prd[i].addr, (uint32_t)(prd[i].addr >> 32), 0, prd[i].len - 1 };
		d->ops->mem_write(d->o, t + 0x80 + 16ull * i, e, sizeof(e));
	}
	d->ops->mem_write(d->o, ahd_clb(d, p) + 32ull * s, hdr, sizeof(hdr));
}

static inline uint32_t ahd_prdbc(struct ahd *d, unsigned p, unsigned s)
{
	uint32_t v = 0;
	d->ops->mem_read(d->o, ahd_clb(d, p) + 32ull * s + 4, &v, 4);
	return v;
}

/* Byte b of the received-FIS area. */
static inline uint8_t ahd_rfis(struct ahd *d, unsigned p, unsigned b)
{
	uint8_t v = 0;
	d->ops->mem_read(d->o, ahd_fb(d, p) + b, &v, 1);
	return v;
}

/*
 * Issue one non-queued command in slot s and wait for it: the TFD's status
 * (ERR set if it failed; 0xff if it never finished).  Interrupt status is
 * cleared as a driver would.
 */
static inline uint8_t ahd_exec(struct ahd *d, unsigned p, unsigned s, const uint8_t *fis, const uint8_t *cdb,
			       const struct ahd_prd *prd, unsigned n, bool write)
{
	ahd_prep(d, p, s, fis, cdb, prd, n, write);
	ahd_pwr(d, p, AHD_CI, 1u << s);
	for (unsigned round = 0;; round++) {
		uint32_t is = ahd_pr(d, p, AHD_IS);
		if (!(ahd_pr(d, p, AHD_CI) & (1u << s)) || (is & (AHD_IS_TFES | AHD_IS_HBFS | AHD_IS_IFS | AHD_IS_OFS)))
			break;
		if (!d->ops->idle(d->o, round))
			return 0xff;
	}
	ahd_pwr(d, p, AHD_IS, ahd_pr(d, p, AHD_IS));
	return (uint8_t)ahd_pr(d, p, AHD_TFD);
}

/* After a failed command: stop and restart the port (AHCI 6.2.2.1), keeping its memory. */
static inline bool ahd_recover(struct ahd *d, unsigned p)
{
	uint32_t cmd = ahd_pr(d, p, AHD_CMD);
	ahd_pwr(d, p, AHD_CMD, cmd & ~AHD_CMD_ST);
	if (!ahd_wait(d, p, AHD_CMD, AHD_CMD_CR, 0))
		return false;
	ahd_pwr(d, p, AHD_SERR, 0xffffffffu);
	ahd_pwr(d, p, AHD_IS, 0xffffffffu);
	ahd_pwr(d, p, AHD_CMD, ahd_pr(d, p, AHD_CMD) | AHD_CMD_ST);
	return true;
}

/* A 12-byte ATAPI packet command over DMA into one buffer. */
static inline uint8_t ahd_packet(struct ahd *d, unsigned p, unsigned s, const uint8_t *cdb, uint64_t buf, uint32_t len)
{
	uint8_t f[20];
	ahd_fis(f, 0xa0, 1, 0, 0, 0);
	struct ahd_prd prd = { buf, len ? len : 2 };
	return ahd_exec(d, p, s, f, cdb, &prd, len ? 1 : 0, false);
}
