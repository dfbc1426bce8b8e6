// SPDX-License-Identifier: MIT
/*
 * The ATA command set of a port's device (ACS-3 as SATA disks speak it):
 * one static table from opcode to handler, each entry saying which device
 * takes it (a SATA disk, the ATAPI CD-ROM, or both) and how.  Reads and
 * writes (PIO, DMA, and NCQ's READ/WRITE FPDMA QUEUED with their tag and
 * FUA bit) become one block request on the PRDT; FLUSH CACHE a flush;
 * DATA SET MANAGEMENT (TRIM, one 512-byte block of ranges) a discard per
 * range where the disk can discard; READ LOG EXT serves the log directory
 * and the NCQ command error log (page 10h).  Anything else aborts (ABRT);
 * on the CD-ROM an aborted command carries the ATAPI signature, which is
 * how drivers that send IDENTIFY DEVICE first find a packet device.
 */
#include <string.h>

#include "base/util.h"
#include "internal.h"

#define F_DISK 0x01  /* a SATA disk takes it */
#define F_CD 0x02    /* the ATAPI CD-ROM takes it */
#define F_EXT 0x04   /* 48-bit LBA and count */
#define F_WRITE 0x08 /* data to the device */
#define F_PIO 0x10   /* PIO protocol (a PIO setup FIS before the D2H one) */
#define F_FUA 0x20   /* durable on completion */
#define F_NCQ 0x40   /* first-party DMA, queued */

struct ata_desc {
	const char *name;
	unsigned flags;
	enum ahci_exec (*exec)(struct ahci_dev *d, struct ahci_cmd *c, unsigned flags);
};

/* --- helpers ------------------------------------------------------------------ */

static void set_rfis_lba(struct ahci_cmd *c, uint64_t lba)
{
	static const unsigned at[6] = { FIS_LBA0, FIS_LBA1, FIS_LBA2, FIS_LBA3, FIS_LBA4, FIS_LBA5 };
	for (unsigned i = 0; i < 6; i++)
		c->rfis[at[i]] = (uint8_t)(lba >> (8 * i));
	c->rfis[FIS_DEV] = 0x40;
}

static enum ahci_exec ata_abort(struct ahci_dev *d, struct ahci_cmd *c)
{
	c->status = ST_OK | ST_ERR;
	c->error = ER_ABRT;
	if (d->atapi) {
		/* The packet device's signature, as the register block shows it after a refused command. */
		c->rfis[FIS_COUNT] = 1;
		c->rfis[FIS_LBA0] = 1;
		c->rfis[FIS_LBA1] = (uint8_t)(SIG_ATAPI >> 16);
		c->rfis[FIS_LBA2] = (uint8_t)(SIG_ATAPI >> 24);
	}
	return EXEC_DONE;
}

static enum ahci_exec ata_error(struct ahci_cmd *c, uint8_t error, uint64_t lba)
{
	c->status = ST_OK | ST_ERR;
	c->error = error;
	set_rfis_lba(c, lba);
	return EXEC_DONE;
}

static uint64_t lba48(const uint8_t *f)
{
	return (uint64_t)f[FIS_LBA0] | (uint64_t)f[FIS_LBA1] << 8 | (uint64_t)f[FIS_LBA2] << 16 |
	       (uint64_t)f[FIS_LBA3] << 24 | (uint64_t)f[FIS_LBA4] << 32 | (uint64_t)f[FIS_LBA5] << 40;
}

/* A 28-bit address: LBA, or cylinder/head/sector in the 16-head, 63-sector geometry IDENTIFY gives. */
static uint64_t lba28(const uint8_t *f)
{
	if (f[FIS_DEV] & 0x40)
		return (uint64_t)f[FIS_LBA0] | (uint64_t)f[FIS_LBA1] << 8 | (uint64_t)f[FIS_LBA2] << 16 |
		       (uint64_t)(f[FIS_DEV] & 0xf) << 24;
	uint64_t cyl = f[FIS_LBA1] | f[FIS_LBA2] << 8, head = f[FIS_DEV] & 0xf, sect = f[FIS_LBA0];
	return sect ? (cyl * 16 + head) * 63 + sect - 1 : UINT64_MAX;
}

void ahci_id_string(uint16_t *w, const char *s, unsigned words)
{
	size_t n = strlen(s);
	for (unsigned i = 0; i < 2 * words; i++) {
		uint8_t ch = i < n ? (uint8_t)s[i] : ' ';
		w[i / 2] = (uint16_t)(i % 2 ? (w[i / 2] & 0xff00) | ch : ch << 8);
	}
}

void ahci_id_checksum(uint16_t *id)
{
	uint8_t sum = 0xa5;
	const uint8_t *b = (const uint8_t *)id;
	for (unsigned i = 0; i < 510; i++)
		sum = (uint8_t)(sum + b[i]);
	id[255] = (uint16_t)(0xa5 | (uint8_t)-sum << 8);
}

void ahci_dev_reset(struct ahci_dev *d)
{
	d->wcache = true;
	d->multiple = 16;
	d->udma = 0;
	d->ncq_err = false;
	d->sense_key = d->asc = d->ascq = 0;
	d->locked = false;
}

bool ahci_ata_is_ncq(const uint8_t *fis)
{
	return fis[FIS_CMD] == 0x60 || fis[FIS_CMD] == 0x61;
}

static bool can_trim(const struct ahci_dev *d)
{
	return d->disk->can_discard && !d->read_only;
}

/* --- handlers --------------------------------------------------------------------- */

static enum ahci_exec ata_ok(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)d, (void)c, (void)f;
	return EXEC_DONE;
}

static void rw_done(struct ahci_cmd *c, int status)
{
	if (status) {
		ata_error(c, c->req.op == BLK_WRITE ? ER_ABRT : ER_UNC, c->lba);
		return;
	}
	c->xfer = (uint32_t)c->req.len;
}

static enum ahci_exec ata_rw(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	const uint8_t *fis = c->fis;
	bool write = f & F_WRITE, fua = f & F_FUA, wide = f & (F_EXT | F_NCQ);
	uint32_t count;
	if (f & F_NCQ) {
		/* The count is in the features register; the tag, which must be the slot, in count 7:3. */
		count = fis[FIS_FEAT] | fis[FIS_FEAT_EXP] << 8;
		if (fis[FIS_COUNT] >> 3 != c->slot)
			return ata_abort(d, c);
		fua |= fis[FIS_DEV] & 0x80;
		c->proto = PROTO_NCQ;
	} else {
		count = fis[FIS_COUNT] | (f & F_EXT ? fis[FIS_COUNT_EXP] << 8 : 0);
		c->proto = f & F_PIO ? (write ? PROTO_PIO_OUT : PROTO_PIO_IN) : PROTO_DMA;
	}
	if (!count)
		count = wide ? 65536 : 256;
	uint64_t lba = wide ? lba48(fis) : lba28(fis);
	c->lba = lba;
	if (write && d->read_only)
		return ata_abort(d, c);
	if (lba > d->sectors || count > d->sectors - lba)
		return ata_error(c, ER_IDNF, lba == UINT64_MAX ? 0 : lba);
	uint64_t len = (uint64_t)count * d->sector;
	if (ahci_map_exact(c, len))
		return EXEC_DONE;
	c->req = (struct blk_req){ .op = write ? BLK_WRITE : BLK_READ, .flags = write && (fua || !d->wcache) ? BLK_FUA : 0,
				   .tag = c->slot, .offset = lba * d->sector, .len = len, .iov = c->iov,
				   .iovcnt = c->iovcnt };
	c->reqs = &c->req;
	c->nreq = 1;
	c->blk_done = rw_done;
	return EXEC_SUBMIT;
}

static enum ahci_exec ata_verify(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	uint32_t count = c->fis[FIS_COUNT] | (f & F_EXT ? c->fis[FIS_COUNT_EXP] << 8 : 0);
	uint64_t lba = f & F_EXT ? lba48(c->fis) : lba28(c->fis);
	if (!count)
		count = f & F_EXT ? 65536 : 256;
	if (lba > d->sectors || count > d->sectors - lba)
		return ata_error(c, ER_IDNF, lba == UINT64_MAX ? 0 : lba);
	return EXEC_DONE;
}

static enum ahci_exec submit_flush(struct ahci_cmd *c)
{
	c->req = (struct blk_req){ .op = BLK_FLUSH, .tag = c->slot };
	c->reqs = &c->req;
	c->nreq = 1;
	return EXEC_SUBMIT;
}

static enum ahci_exec ata_flush(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)d, (void)f;
	return submit_flush(c);
}

/* TRIM: one 512-byte block of 8-byte ranges (48-bit LBA, 16-bit length; length 0: unused). */
static enum ahci_exec ata_dsm(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)f;
	unsigned blocks = c->fis[FIS_COUNT] | c->fis[FIS_COUNT_EXP] << 8;
	if (!(c->fis[FIS_FEAT] & 1) || !can_trim(d) || blocks != 1)
		return ata_abort(d, c);
	c->proto = PROTO_DMA;
	uint8_t buf[8 * AHCI_DSM_RANGES];
	if (ahci_map_exact(c, sizeof(buf)))
		return EXEC_DONE;
	ahci_copy_in(c, buf, sizeof(buf));
	unsigned n = 0;
	for (unsigned i = 0; i < AHCI_DSM_RANGES; i++) {
		uint64_t e;
		memcpy(&e, buf + 8 * i, 8);
		uint64_t lba = e & 0xffffffffffffull, cnt = e >> 48;
		if (!cnt)
			continue;
		if (lba > d->sectors || cnt > d->sectors - lba)
			return ata_error(c, ER_ABRT | ER_IDNF, lba);
		d->dsm[n++] = (struct blk_req){ .op = BLK_DISCARD, .tag = c->slot, .offset = lba * d->sector,
						.len = cnt * d->sector };
	}
	c->reqs = d->dsm;
	c->nreq = n;
	return EXEC_SUBMIT;
}

/* READ LOG (DMA) EXT: the directory (page 00h) and the NCQ command error log (10h). */
static enum ahci_exec ata_read_log(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	unsigned log = c->fis[FIS_LBA0], page = c->fis[FIS_LBA1] | c->fis[FIS_LBA4] << 8;
	unsigned count = c->fis[FIS_COUNT] | c->fis[FIS_COUNT_EXP] << 8;
	c->proto = f & F_PIO ? PROTO_PIO_IN : PROTO_DMA;
	if ((log != 0x00 && log != 0x10) || count != 1 || page != 0)
		return ata_abort(d, c);
	uint8_t b[512] = { 0 };
	if (log == 0x00) {
		b[0] = 1;        /* general purpose logging version 1 */
		b[2 * 0x10] = 1; /* log 10h: one page */
	} else {
		if (d->ncq_err) {
			b[0] = d->ncq_tag;
			b[2] = d->ncq_status;
			b[3] = d->ncq_error;
			for (unsigned i = 0; i < 3; i++) {
				b[4 + i] = (uint8_t)(d->ncq_lba >> (8 * i));
				b[8 + i] = (uint8_t)(d->ncq_lba >> (8 * (i + 3)));
			}
			b[7] = 0x40;
		} else {
			b[0] = 0x80; /* NQ: no queued command failed */
		}
		d->ncq_err = false; /* reading the log ends the error condition */
		uint8_t sum = 0;
		for (unsigned i = 0; i < 511; i++)
			sum = (uint8_t)(sum + b[i]);
		b[511] = (uint8_t)-sum;
	}
	if (ahci_map_exact(c, sizeof(b)))
		return EXEC_DONE;
	ahci_copy_out(c, b, sizeof(b));
	return EXEC_DONE;
}

static void identify_disk(const struct ahci_dev *d, uint16_t *id)
{
	uint64_t n = d->sectors;
	uint32_t cyl = (uint32_t)MIN(n / (16 * 63), 16383u), chs = cyl * 16 * 63, n28 = (uint32_t)MIN(n, 0x0fffffffu);
	id[0] = 0x0040; /* fixed, non-removable ATA device */
	id[1] = id[54] = (uint16_t)cyl;
	id[3] = id[55] = 16;
	id[6] = id[56] = 63;
	ahci_id_string(id + 10, d->serial, 10);
	ahci_id_string(id + 23, "1.0", 4);
	ahci_id_string(id + 27, d->model, 20);
	id[47] = 0x8000 | 16;  /* READ/WRITE MULTIPLE: 16 sectors per block at most */
	id[49] = 0x0b00;       /* IORDY, LBA, DMA */
	id[50] = 0x4000;
	id[53] = 0x0007;       /* words 54-58, 64-70 and 88 are valid */
	id[57] = (uint16_t)chs;
	id[58] = (uint16_t)(chs >> 16);
	id[59] = d->multiple ? 0x100 | d->multiple : 0;
	id[60] = (uint16_t)n28;
	id[61] = (uint16_t)(n28 >> 16);
	id[63] = 0x0007; /* multiword DMA 0-2 */
	id[64] = 0x0003; /* PIO 3-4 */
	id[65] = id[66] = id[67] = id[68] = 120;
	id[75] = AHCI_SLOTS - 1; /* queue depth - 1 */
	id[76] = 0x0106;         /* NCQ; SATA 1.5 and 3 Gb/s */
	id[80] = 0x01f0;         /* ATA/ATAPI-4 to ATA8-ACS */
	id[82] = 0x4060;         /* NOP, look-ahead, write cache */
	id[83] = 0x7400;         /* FLUSH CACHE (EXT), 48-bit addresses */
	id[84] = 0x4060;         /* WRITE DMA FUA EXT, general purpose logging */
	id[85] = (uint16_t)(0x4040 | (d->wcache ? 0x20 : 0));
	id[86] = 0x3400;
	id[87] = 0x4060;
	id[88] = (uint16_t)(0x007f | (d->udma ? 1u << (7 + d->udma) : 0)); /* UDMA 0-6, and the one selected */
	for (unsigned i = 0; i < 4; i++)
		id[100 + i] = (uint16_t)(n >> (16 * i));
	if (can_trim(d)) {
		id[105] = 1;  /* DATA SET MANAGEMENT: one block of ranges */
		id[169] = 1;  /* TRIM */
	}
	id[106] = (uint16_t)(0x4000 | (d->sector > 512 ? 0x1000 : 0));
	if (d->sector > 512) {
		id[117] = (uint16_t)(d->sector / 2);
		id[118] = (uint16_t)(d->sector / 2 >> 16);
	}
	id[217] = 1;      /* non-rotating medium */
	id[222] = 0x103f; /* serial transport, SATA 1.0a to 3.0 */
}

static enum ahci_exec ata_identify(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)f;
	uint16_t id[256] = { 0 };
	c->proto = PROTO_PIO_IN;
	if (d->atapi)
		ahci_atapi_identify(d, id);
	else
		identify_disk(d, id);
	ahci_id_checksum(id);
	if (ahci_map_exact(c, sizeof(id)))
		return EXEC_DONE;
	ahci_copy_out(c, id, sizeof(id));
	return EXEC_DONE;
}

static enum ahci_exec ata_set_features(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)f;
	uint8_t mode = c->fis[FIS_COUNT];
	switch (c->fis[FIS_FEAT]) {
	case 0x02: /* write cache on */
		if (d->atapi)
			return ata_abort(d, c);
		d->wcache = true;
		return EXEC_DONE;
	case 0x82: /* write cache off: what it held goes to the medium first */
		if (d->atapi)
			return ata_abort(d, c);
		d->wcache = false;
		return submit_flush(c);
	case 0x03: /* transfer mode: PIO default/flow control, multiword DMA 0-2, UDMA 0-6 */
		if (mode >> 3 == 8 && (mode & 7) <= 6)
			d->udma = (uint8_t)((mode & 7) + 1);
		else if ((mode >> 3 == 4 && (mode & 7) <= 2) || mode >> 3 <= 1)
			d->udma = 0;
		else
			return ata_abort(d, c);
		return EXEC_DONE;
	case 0x05: case 0x85: /* advanced power management */
	case 0x10: case 0x90: /* SATA features */
	case 0x42: case 0xc2: /* acoustic management */
	case 0x55: case 0xaa: /* read look-ahead */
	case 0x66: case 0xcc: /* revert to defaults on reset */
		return EXEC_DONE;
	default:
		return ata_abort(d, c);
	}
}

static enum ahci_exec ata_set_multiple(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)f;
	uint8_t n = c->fis[FIS_COUNT];
	if (n > 16 || (n & (n - 1)))
		return ata_abort(d, c);
	d->multiple = n;
	return EXEC_DONE;
}

static enum ahci_exec ata_check_power(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)d, (void)f;
	c->rfis[FIS_COUNT] = 0xff; /* active or idle */
	return EXEC_DONE;
}

/* EXECUTE DEVICE DIAGNOSTIC and DEVICE RESET: the device resets, error 01h, the signature in the FIS. */
static enum ahci_exec ata_diag(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)f;
	uint32_t sig = d->atapi ? SIG_ATAPI : SIG_ATA;
	ahci_dev_reset(d);
	c->error = 0x01;
	c->rfis[FIS_COUNT] = (uint8_t)sig;
	c->rfis[FIS_LBA0] = (uint8_t)(sig >> 8);
	c->rfis[FIS_LBA1] = (uint8_t)(sig >> 16);
	c->rfis[FIS_LBA2] = (uint8_t)(sig >> 24);
	return EXEC_DONE;
}

static enum ahci_exec ata_packet(struct ahci_dev *d, struct ahci_cmd *c, unsigned f)
{
	(void)f;
	return ahci_atapi_exec(d, c);
}

#define RW(name, fl) { name, F_DISK | (fl), ata_rw }
#define BOTH F_DISK | F_CD

static const struct ata_desc ata_cmds[256] = {
	[0x06] = { "DATA SET MANAGEMENT", F_DISK, ata_dsm },
	[0x08] = { "DEVICE RESET", F_CD, ata_diag },
	[0x20] = RW("READ SECTORS", F_PIO),
	[0x24] = RW("READ SECTORS EXT", F_PIO | F_EXT),
	[0x25] = RW("READ DMA EXT", F_EXT),
	[0x29] = RW("READ MULTIPLE EXT", F_PIO | F_EXT),
	[0x2f] = { "READ LOG EXT", F_DISK | F_PIO, ata_read_log },
	[0x30] = RW("WRITE SECTORS", F_PIO | F_WRITE),
	[0x34] = RW("WRITE SECTORS EXT", F_PIO | F_EXT | F_WRITE),
	[0x35] = RW("WRITE DMA EXT", F_EXT | F_WRITE),
	[0x39] = RW("WRITE MULTIPLE EXT", F_PIO | F_EXT | F_WRITE),
	[0x3d] = RW("WRITE DMA FUA EXT", F_EXT | F_WRITE | F_FUA),
	[0x40] = { "READ VERIFY SECTORS", F_DISK, ata_verify },
	[0x42] = { "READ VERIFY SECTORS EXT", F_DISK | F_EXT, ata_verify },
	[0x47] = { "READ LOG DMA EXT", F_DISK, ata_read_log },
	[0x60] = RW("READ FPDMA QUEUED", F_NCQ),
	[0x61] = RW("WRITE FPDMA QUEUED", F_NCQ | F_WRITE),
	[0x70] = { "SEEK", F_DISK, ata_ok },
	[0x90] = { "EXECUTE DEVICE DIAGNOSTIC", BOTH, ata_diag },
	[0x91] = { "INITIALIZE DEVICE PARAMETERS", F_DISK, ata_ok },
	[0xa0] = { "PACKET", F_CD, ata_packet },
	[0xa1] = { "IDENTIFY PACKET DEVICE", F_CD | F_PIO, ata_identify },
	[0xc4] = RW("READ MULTIPLE", F_PIO),
	[0xc5] = RW("WRITE MULTIPLE", F_PIO | F_WRITE),
	[0xc6] = { "SET MULTIPLE MODE", F_DISK, ata_set_multiple },
	[0xc8] = RW("READ DMA", 0),
	[0xca] = RW("WRITE DMA", F_WRITE),
	[0xe0] = { "STANDBY IMMEDIATE", BOTH, ata_ok },
	[0xe1] = { "IDLE IMMEDIATE", BOTH, ata_ok },
	[0xe2] = { "STANDBY", BOTH, ata_ok },
	[0xe3] = { "IDLE", BOTH, ata_ok },
	[0xe5] = { "CHECK POWER MODE", BOTH, ata_check_power },
	[0xe7] = { "FLUSH CACHE", F_DISK, ata_flush },
	[0xea] = { "FLUSH CACHE EXT", F_DISK, ata_flush },
	[0xec] = { "IDENTIFY DEVICE", F_DISK | F_PIO, ata_identify },
	[0xef] = { "SET FEATURES", BOTH, ata_set_features },
};

enum ahci_exec ahci_ata_exec(struct ahci_dev *d, struct ahci_cmd *c)
{
	const struct ata_desc *e = &ata_cmds[c->fis[FIS_CMD]];
	if (!e->exec || !(e->flags & (d->atapi ? F_CD : F_DISK)))
		return ata_abort(d, c);
	return e->exec(d, c, e->flags);
}
