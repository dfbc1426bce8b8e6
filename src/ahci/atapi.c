// SPDX-License-Identifier: MIT
/*
 * The ATAPI CD-ROM behind a port (MMC-6 as SeaBIOS, GRUB, isolinux and
 * Linux's sr use it): PACKET commands carry a 12-byte CDB, looked up in a
 * static table from opcode to handler together with where the CDB keeps
 * its allocation length.  The medium is the image file, read-only, 2048-byte
 * sectors, one data track in one closed session; it is always there and the
 * tray stays shut (PREVENT/ALLOW and START STOP UNIT are honoured as far as
 * that goes).  READ(10)/READ(12) go to the block stack; every other command
 * answers from memory.  A command that fails ends in CHECK CONDITION
 * (status ERR, the sense key in the error register) and leaves its sense
 * data for REQUEST SENSE: ILLEGAL REQUEST with LBA OUT OF RANGE (21h) for a
 * read past the end of the medium, INVALID COMMAND OPERATION CODE (20h) for
 * what is not here, INVALID FIELD IN CDB (24h) for what is asked wrongly.
 */
#include <errno.h>
#include <string.h>

#include "base/util.h"
#include "internal.h"

enum { ATAPI_CHECK = -1, ATAPI_SUBMIT = -2, ATAPI_FAILED = -3 };
enum { SK_NO_SENSE = 0, SK_MEDIUM_ERROR = 3, SK_ILLEGAL_REQUEST = 5 };
enum { ASC_INVALID_OPCODE = 0x20, ASC_LBA_OUT_OF_RANGE = 0x21, ASC_INVALID_FIELD = 0x24,
       ASC_SAVING_NOT_SUPPORTED = 0x39, ASC_REMOVAL_PREVENTED = 0x53, ASC_UNRECOVERED_READ = 0x11 };
#define CD_MAX_SECTORS 360000u /* 80 minutes: a larger image is a DVD */

struct atapi_desc {
	const char *name;
	uint8_t alloc_off, alloc_len; /* where the CDB gives the allocation length (alloc_len 0: none) */
	int (*exec)(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *buf);
};

static int sense(struct ahci_dev *d, uint8_t key, uint8_t asc, uint8_t ascq)
{
	d->sense_key = key;
	d->asc = asc;
	d->ascq = ascq;
	return ATAPI_CHECK;
}

static bool is_dvd(const struct ahci_dev *d)
{
	return d->sectors > CD_MAX_SECTORS;
}

static uint32_t last_lba(const struct ahci_dev *d)
{
	return d->sectors ? (uint32_t)MIN(d->sectors - 1, 0xffffffffull) : 0;
}

/* An address in a TOC: LBA, or minute/second/frame with the 2-second pregap. */
static void put_addr(uint8_t *p, uint64_t lba, bool msf)
{
	if (!msf) {
		put_be32(p, (uint32_t)MIN(lba, 0xffffffffull));
		return;
	}
	lba = MIN(lba + 150, 99ull * 60 * 75 + 59 * 75 + 74);
	p[0] = 0;
	p[1] = (uint8_t)(lba / (60 * 75));
	p[2] = (uint8_t)(lba / 75 % 60);
	p[3] = (uint8_t)(lba % 75);
}

void ahci_atapi_identify(const struct ahci_dev *d, uint16_t *id)
{
	id[0] = 0x85c0; /* ATAPI, CD-ROM, removable, 50 us DRQ, 12-byte packets */
	ahci_id_string(id + 10, d->serial, 10);
	ahci_id_string(id + 23, "1.0", 4);
	ahci_id_string(id + 27, d->model, 20);
	id[49] = 0x0b00; /* IORDY, LBA, DMA */
	id[53] = 0x0006;
	id[63] = 0x0007;
	id[64] = 0x0003;
	id[65] = id[66] = id[67] = id[68] = 120;
	id[76] = 0x0006;
	id[80] = 0x01f0;
	id[82] = id[85] = 0x0210; /* PACKET, DEVICE RESET */
	id[83] = id[84] = id[87] = 0x4000;
	id[88] = (uint16_t)(0x007f | (d->udma ? 1u << (7 + d->udma) : 0));
	id[222] = 0x103f;
}

/* --- commands ------------------------------------------------------------------- */

static int cmd_ok(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)d, (void)c, (void)b;
	return 0;
}

static int cmd_request_sense(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)c;
	memset(b, 0, 18);
	b[0] = 0x70; /* current error, fixed format */
	b[2] = d->sense_key;
	b[7] = 10;
	b[12] = d->asc;
	b[13] = d->ascq;
	sense(d, SK_NO_SENSE, 0, 0);
	return 18;
}

static int cmd_inquiry(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	if ((c->cdb[1] & 1) || c->cdb[2])
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0); /* no vital product data pages */
	memset(b, 0, 36);
	b[0] = 0x05; /* CD/DVD device */
	b[1] = 0x80; /* removable */
	b[2] = 0x05; /* SPC-3 */
	b[3] = 0x02; /* response data format */
	b[4] = 31;
	memcpy(b + 8, "KEEL    ", 8);
	memcpy(b + 16, "DVD-ROM         ", 16);
	memcpy(b + 32, "1.0 ", 4);
	return 36;
}

static int cmd_read_capacity(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)c;
	put_be32(b, last_lba(d));
	put_be32(b + 4, ATAPI_SECTOR);
	return 8;
}

static void read_done(struct ahci_cmd *c, int status)
{
	if (!status) {
		c->xfer = (uint32_t)c->req.len;
		return;
	}
	struct ahci_dev *d = c->port->dev;
	sense(d, SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
	c->status = ST_OK | ST_ERR;
	c->error = (uint8_t)(SK_MEDIUM_ERROR << 4);
}

static int cmd_read(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)b;
	uint64_t lba = get_be32(c->cdb + 2), n = c->cdb[0] == 0x28 ? get_be16(c->cdb + 7) : get_be32(c->cdb + 6);
	if (lba > d->sectors || n > d->sectors - lba)
		return sense(d, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
	/* PRDBC counts bytes in 32 bits: a READ(12) of 4 GiB or more is refused (a drive caps it too). */
	if (n > UINT32_MAX / ATAPI_SECTOR)
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
	if (!n)
		return 0;
	uint64_t len = n * ATAPI_SECTOR;
	if (ahci_map_exact(c, len))
		return ATAPI_FAILED;
	c->lba = lba;
	c->req = (struct blk_req){ .op = BLK_READ, .tag = c->slot, .offset = lba * ATAPI_SECTOR, .len = len,
				   .iov = c->iov, .iovcnt = c->iovcnt };
	c->reqs = &c->req;
	c->nreq = 1;
	c->blk_done = read_done;
	return ATAPI_SUBMIT;
}

static int cmd_seek(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)b;
	if (get_be32(c->cdb + 2) >= MAX(d->sectors, 1))
		return sense(d, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
	return 0;
}

static int cmd_start_stop(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)b;
	/* Eject (LoEj, not Start) is refused while the medium is locked; else the tray does not move here. */
	if ((c->cdb[4] & 3) == 2 && d->locked)
		return sense(d, SK_ILLEGAL_REQUEST, ASC_REMOVAL_PREVENTED, 2);
	return 0;
}

static int cmd_prevent_allow(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)b;
	d->locked = c->cdb[4] & 1;
	return 0;
}

static int cmd_mode_sense(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	static const uint8_t error_recovery[] = { 0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0 };
	static const uint8_t power[] = { 0x1a, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	/* Capabilities: reads CD-R/RW and DVD-ROM, audio play, lock and eject, a tray; 4x speeds. */
	static const uint8_t caps[] = { 0x2a, 0x14, 0x3b, 0x00, 0x71, 0x00, 0x29, 0x00, 0x02, 0xc2, 0x01,
					0x00, 0x02, 0x00, 0x02, 0xc2, 0, 0, 0, 0, 0, 0 };
	static const struct { const uint8_t *p; unsigned len; } pages[] = {
		{ error_recovery, sizeof(error_recovery) }, { power, sizeof(power) }, { caps, sizeof(caps) },
	};
	unsigned pc = c->cdb[2] >> 6, code = c->cdb[2] & 0x3f, n = 8;
	if (pc == 3)
		return sense(d, SK_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 0);
	memset(b, 0, n);
	for (unsigned i = 0; i < ARRAY_SIZE(pages); i++) {
		if (code != 0x3f && code != pages[i].p[0])
			continue;
		memcpy(b + n, pages[i].p, pages[i].len);
		if (pc == 1) /* changeable values: none */
			memset(b + n + 2, 0, pages[i].len - 2);
		else if (pages[i].p[0] == 0x2a && d->locked)
			b[n + 6] |= 0x02;
		n += pages[i].len;
	}
	if (n == 8)
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
	put_be16(b, n - 2);
	return (int)n;
}

/* READ TOC/PMA/ATIP: formatted TOC (0), session information (1), raw TOC (2). */
static int cmd_read_toc(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	bool msf = c->cdb[1] & 2;
	unsigned format = c->cdb[2] & 0xf, track = c->cdb[6], n = 4;
	if (!format)
		format = c->cdb[9] >> 6; /* the older place for it */
	b[2] = b[3] = 1; /* first and last track (or session) */
	switch (format) {
	case 0:
		if (track > 1 && track != 0xaa)
			return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
		if (track <= 1) {
			uint8_t t[4] = { 0, 0x14, 1, 0 }; /* ADR 1, data track, track 1 */
			memcpy(b + n, t, 4);
			put_addr(b + n + 4, 0, msf);
			n += 8;
		}
		b[n] = 0, b[n + 1] = 0x14, b[n + 2] = 0xaa, b[n + 3] = 0; /* lead-out */
		put_addr(b + n + 4, d->sectors, msf);
		n += 8;
		break;
	case 1:
		b[4] = 0, b[5] = 0x14, b[6] = 1, b[7] = 0;
		put_addr(b + 8, 0, msf);
		n = 12;
		break;
	case 2: {
		/* Points A0 (first track), A1 (last track), A2 (lead-out), then track 1; addresses as MSF. */
		static const uint8_t points[] = { 0xa0, 0xa1, 0xa2, 0x01 };
		for (unsigned i = 0; i < ARRAY_SIZE(points); i++, n += 11) {
			uint8_t *e = b + n;
			memset(e, 0, 11);
			e[0] = 1, e[1] = 0x14, e[3] = points[i];
			if (points[i] == 0xa0 || points[i] == 0xa1) {
				e[8] = 1;
			} else {
				uint8_t a[4];
				put_addr(a, points[i] == 0xa2 ? d->sectors : 0, true);
				memcpy(e + 8, a + 1, 3);
			}
		}
		break;
	}
	default:
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
	}
	put_be16(b, n - 2);
	return (int)n;
}

static unsigned feature(uint8_t *b, uint16_t code, uint8_t flags, const uint8_t *body, unsigned len)
{
	put_be16(b, code);
	b[2] = flags; /* version 5:2, persistent 1, current 0 */
	b[3] = (uint8_t)len;
	memcpy(b + 4, body, len);
	return 4 + len;
}

static int cmd_get_configuration(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	unsigned rt = c->cdb[1] & 3, start = get_be16(c->cdb + 2), n = 8;
	if (rt == 3)
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
	bool dvd = is_dvd(d);
	const uint8_t profiles[8] = { 0x00, 0x10, dvd, 0, 0x00, 0x08, !dvd, 0 }; /* DVD-ROM, CD-ROM */
	static const uint8_t core[8] = { 0, 0, 0, 2 };                         /* ATAPI */
	static const uint8_t morphing[4] = { 0x02 };                           /* OCEvent */
	static const uint8_t removable[4] = { 0x29 };                          /* tray, eject, lock */
	static const uint8_t random[8] = { 0, 0, 0x08, 0, 0, 1 };              /* 2048-byte blocks */
	static const uint8_t none[4] = { 0 };
	const struct { uint16_t code; uint8_t flags; const uint8_t *body; uint8_t len; } f[] = {
		{ 0x0000, 0x03, profiles, 8 }, { 0x0001, 0x07, core, 8 },  { 0x0002, 0x07, morphing, 4 },
		{ 0x0003, 0x03, removable, 4 }, { 0x0010, 0x03, random, 8 }, { 0x001e, (uint8_t)(0x08 | !dvd), none, 4 },
		{ 0x001f, dvd, none, 4 },
	};
	memset(b, 0, n);
	for (unsigned i = 0; i < ARRAY_SIZE(f); i++) {
		if (f[i].code < start || (rt == 2 && f[i].code != start) || (rt == 1 && !(f[i].flags & 1)))
			continue;
		n += feature(b + n, f[i].code, f[i].flags, f[i].body, f[i].len);
	}
	put_be32(b, n - 4);
	put_be16(b + 6, dvd ? 0x0010 : 0x0008);
	return (int)n;
}

static int cmd_event_status(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	if (!(c->cdb[1] & 1))
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0); /* polled only */
	b[3] = 0x10; /* supported classes: media */
	if (!(c->cdb[4] & 0x10)) {
		put_be16(b, 2);
		b[2] = 0x80; /* no event available of the classes asked for */
		return 4;
	}
	put_be16(b, 6);
	b[2] = 0x04;          /* media class */
	b[4] = 0;             /* no change */
	b[5] = 0x02;          /* media present, tray closed */
	b[6] = b[7] = 0;
	return 8;
}

static int cmd_disc_info(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	if (c->cdb[1] & 7)
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
	memset(b, 0, 34);
	put_be16(b, 32);
	b[2] = 0x0e; /* complete disc, complete last session */
	b[3] = b[4] = b[5] = b[6] = 1; /* first track, sessions, first and last track of the last session */
	b[7] = 0x20; /* unrestricted use */
	memset(b + 16, 0xff, 8); /* no lead-in or lead-out left to record */
	return 34;
}

static int cmd_track_info(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	unsigned type = c->cdb[1] & 3;
	uint32_t num = get_be32(c->cdb + 2);
	if (!((type == 0 && num < MAX(d->sectors, 1)) || (type == 1 && num == 1)))
		return sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD, 0);
	memset(b, 0, 36);
	put_be16(b, 34);
	b[2] = b[3] = 1; /* track 1, session 1 */
	b[5] = 0x04;     /* data track, uninterrupted */
	b[6] = 0x01;     /* data mode 1 */
	put_be32(b + 24, (uint32_t)MIN(d->sectors, 0xffffffffull));
	return 36;
}

static int cmd_mechanism_status(struct ahci_dev *d, struct ahci_cmd *c, uint8_t *b)
{
	(void)d, (void)c;
	memset(b, 0, 8); /* no changer, idle, no slots */
	return 8;
}

static const struct atapi_desc atapi_cmds[256] = {
	[0x00] = { "TEST UNIT READY", 0, 0, cmd_ok },
	[0x03] = { "REQUEST SENSE", 4, 1, cmd_request_sense },
	[0x12] = { "INQUIRY", 3, 2, cmd_inquiry },
	[0x1b] = { "START STOP UNIT", 0, 0, cmd_start_stop },
	[0x1e] = { "PREVENT ALLOW MEDIUM REMOVAL", 0, 0, cmd_prevent_allow },
	[0x25] = { "READ CAPACITY", 0, 0, cmd_read_capacity },
	[0x28] = { "READ(10)", 0, 0, cmd_read },
	[0x2b] = { "SEEK(10)", 0, 0, cmd_seek },
	[0x35] = { "SYNCHRONIZE CACHE", 0, 0, cmd_ok },
	[0x43] = { "READ TOC/PMA/ATIP", 7, 2, cmd_read_toc },
	[0x46] = { "GET CONFIGURATION", 7, 2, cmd_get_configuration },
	[0x4a] = { "GET EVENT STATUS NOTIFICATION", 7, 2, cmd_event_status },
	[0x51] = { "READ DISC INFORMATION", 7, 2, cmd_disc_info },
	[0x52] = { "READ TRACK INFORMATION", 7, 2, cmd_track_info },
	[0x55] = { "MODE SELECT(10)", 0, 0, cmd_ok },
	[0x5a] = { "MODE SENSE(10)", 7, 2, cmd_mode_sense },
	[0xa8] = { "READ(12)", 0, 0, cmd_read },
	[0xbb] = { "SET CD SPEED", 0, 0, cmd_ok },
	[0xbd] = { "MECHANISM STATUS", 8, 2, cmd_mechanism_status },
};

enum ahci_exec ahci_atapi_exec(struct ahci_dev *d, struct ahci_cmd *c)
{
	const struct atapi_desc *e = &atapi_cmds[c->cdb[0]];
	bool dma = c->fis[FIS_FEAT] & 1;
	uint8_t buf[AHCI_SYNC_MAX];
	c->rfis[FIS_COUNT] = 3; /* interrupt reason: I/O and C/D, the command is done */
	c->proto = dma ? PROTO_DMA : PROTO_PIO_IN;
	/* Sense data describes the last command: REQUEST SENSE reads it, anything else replaces it. */
	if (e->exec != cmd_request_sense)
		sense(d, SK_NO_SENSE, 0, 0);
	int n = e->exec ? e->exec(d, c, buf) : sense(d, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
	if (n == ATAPI_SUBMIT)
		return EXEC_SUBMIT;
	if (n == ATAPI_CHECK) {
		c->status = ST_OK | ST_ERR;
		c->error = (uint8_t)(d->sense_key << 4);
	}
	if (n > 0) {
		uint32_t alloc = e->alloc_len == 2 ? get_be16(c->cdb + e->alloc_off)
				 : e->alloc_len == 1 ? c->cdb[e->alloc_off] : (uint32_t)n;
		n = (int)MIN((uint32_t)n, alloc);
		/* Less room in the PRDT than the answer is fine: the answer is cut, as by the allocation length. */
		int r = n ? ahci_map_prdt(c, (uint32_t)n) : 0;
		if (r) {
			c->status = ST_OK | ST_ERR;
			c->error = ER_ABRT;
			c->irq_extra |= r == -EFAULT ? PXI_HBFS : 0;
		} else if (n) {
			ahci_copy_out(c, buf, (uint32_t)n);
		}
	}
	if (!c->xfer)
		c->proto = PROTO_NODATA;
	return EXEC_DONE;
}
