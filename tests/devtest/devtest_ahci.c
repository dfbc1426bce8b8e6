// SPDX-License-Identifier: MIT
/*
 * The AHCI controller through the whole machine, without a CPU
 * (keel-devtest): found on the PCI bus by its ICH9 identity, ABAR sized
 * and programmed, MSI through keel's GSI route and irqfd, commands through
 * guest RAM down to the block stack and the image files.  A SATA disk
 * (--disk ...,if=ahci) on port 0 and an ISO-like image (--cdrom) on port 1,
 * driven as libahci and SeaBIOS drive them (tests/unit/ahcidrv.h): HBA
 * reset, port start, IDENTIFY, 32 queued reads and writes at once, FLUSH,
 * TRIM, ATAPI INQUIRY / READ CAPACITY / READ(10), a read past the end of
 * the CD (CHECK CONDITION, then REQUEST SENSE 05/21/00), writes refused by
 * the read-only CD, and a port stopped with requests in flight.
 */
#include <linux/pci_regs.h>
#include <sys/stat.h>

#include "../unit/unit.h"
#include "../unit/ahcidrv.h"
#include "dtclient.h"

#define BASE 0x200000ull  /* the driver's command lists, FIS areas and tables */
#define DATA 0x1000000ull /* buffers */
#define DISK_SECTORS 8192u
#define CD_SECTORS 64u
#define MSI_DATA 0x45u

static struct dtc d;
static char img[64], iso[64], errlog[64];
static uint64_t abar;
static int dev = -1;

static uint32_t dt_rd(void *o, uint32_t off)
{
	(void)o;
	return (uint32_t)dtc_read(&d, 4, abar + off);
}

static void dt_wr(void *o, uint32_t off, uint32_t v)
{
	(void)o;
	dtc_write(&d, 4, abar + off, v);
}

static void dt_mw(void *o, uint64_t gpa, const void *buf, size_t len)
{
	(void)o;
	dtc_memwrite(&d, gpa, buf, len);
}

static void dt_mr(void *o, uint64_t gpa, void *buf, size_t len)
{
	(void)o;
	dtc_memread(&d, gpa, buf, len);
}

static bool dt_idle(void *o, unsigned round)
{
	(void)o;
	usleep(round < 100 ? 100 : 2000);
	return round < 5000 && !d.errors; /* about 10 s */
}

static const struct ahd_ops ops = { dt_rd, dt_wr, dt_mw, dt_mr, dt_idle };
static struct ahd a = { &ops, NULL, BASE };

static uint8_t disk_byte(uint64_t off)
{
	return (uint8_t)(off / 512 * 3 + off);
}

static uint8_t cd_byte(uint64_t off)
{
	return (uint8_t)(off / 2048 * 11 + off + 1);
}

static void make_images(void)
{
	snprintf(img, sizeof(img), "/tmp/keel-devtest-ahci-%d.img", (int)getpid());
	snprintf(iso, sizeof(iso), "/tmp/keel-devtest-ahci-%d.iso", (int)getpid());
	snprintf(errlog, sizeof(errlog), "/tmp/keel-devtest-ahci-%d.log", (int)getpid());
	FILE *f = fopen(img, "wb");
	for (uint64_t i = 0; f && i < DISK_SECTORS * 512ull; i++)
		fputc(disk_byte(i), f);
	if (f)
		fclose(f);
	f = fopen(iso, "wb");
	for (uint64_t i = 0; f && i < CD_SECTORS * 2048ull; i++)
		fputc(i >= 16 * 2048 + 1 && i < 16 * 2048 + 6 ? "CD001"[i - 16 * 2048 - 1] : cd_byte(i), f);
	if (f)
		fclose(f);
}

/* keel-devtest with the disk (disk_opts after path=) on port 0 and the CD-ROM on port 1; the controller found and on. */
static int start(const char *disk_opts)
{
	char disk[256];
	snprintf(disk, sizeof(disk), "path=%s,if=ahci%s", img, disk_opts);
	const char *opts[] = { "--memory", "64M", "--serial", "none", "--disk", disk, "--cdrom", iso, NULL };
	if (dtc_start(&d, errlog, opts))
		return -1;
	dev = dtc_pci_find(&d, 0x8086, 0x2922, 0);
	if (dev < 0)
		return -1;
	dtc_cfg_write(&d, (unsigned)dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	abar = dtc_cfg_read(&d, (unsigned)dev, PCI_BASE_ADDRESS_5, 4) & ~0xfull;
	return abar ? 0 : -1;
}

static int finish(void)
{
	if (d.errors)
		fprintf(stderr, "devtest: %s\n", d.first_error);
	return dtc_stop(&d);
}

/* HBA reset as libahci does it: AE, HR, wait for HR to clear, AE again. */
static bool hba_reset(void)
{
	ahd_wr(&a, AHD_GHC, 1u << 31);
	ahd_wr(&a, AHD_GHC, 1u << 31 | 1);
	for (unsigned round = 0; ahd_rd(&a, AHD_GHC) & 1; round++)
		if (!dt_idle(NULL, round))
			return false;
	ahd_wr(&a, AHD_GHC, 1u << 31);
	return true;
}

static void enable_msi(void)
{
	unsigned c = dtc_cfg_read(&d, (unsigned)dev, PCI_CAPABILITY_LIST, 1);
	CHECK_EQ(dtc_cfg_read(&d, (unsigned)dev, c, 1), PCI_CAP_ID_MSI);
	dtc_cfg_write(&d, (unsigned)dev, c + PCI_MSI_ADDRESS_LO, 4, 0xfee00000u);
	dtc_cfg_write(&d, (unsigned)dev, c + PCI_MSI_ADDRESS_HI, 4, 0);
	dtc_cfg_write(&d, (unsigned)dev, c + PCI_MSI_DATA_64, 2, MSI_DATA);
	dtc_cfg_write(&d, (unsigned)dev, c + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
}

static void ahci_pci_identity(void)
{
	CHECK_EQ(start(""), 0);
	unsigned v = (unsigned)dev;
	CHECK_EQ(dtc_cfg_read(&d, v, PCI_CLASS_REVISION, 4) >> 8, 0x010601);
	CHECK_EQ(dtc_cfg_read(&d, v, PCI_INTERRUPT_PIN, 1), 1);
	/* BAR5 sized as firmware sizes it: 4 KiB of memory. */
	uint32_t at = dtc_cfg_read(&d, v, PCI_BASE_ADDRESS_5, 4);
	dtc_cfg_write(&d, v, PCI_COMMAND, 2, 0);
	dtc_cfg_write(&d, v, PCI_BASE_ADDRESS_5, 4, 0xffffffffu);
	CHECK_EQ(dtc_cfg_read(&d, v, PCI_BASE_ADDRESS_5, 4), 0xfffff000u);
	dtc_cfg_write(&d, v, PCI_BASE_ADDRESS_5, 4, at);
	dtc_cfg_write(&d, v, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	unsigned c = dtc_cfg_read(&d, v, PCI_CAPABILITY_LIST, 1);
	CHECK_EQ(dtc_cfg_read(&d, v, c, 1), PCI_CAP_ID_MSI);
	CHECK(dtc_cfg_read(&d, v, c + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_64BIT);
	CHECK_EQ(ahd_rd(&a, AHD_PI), 0x3f);
	CHECK(hba_reset());
	CHECK_EQ(ahd_pr(&a, 0, AHD_SIG), 0x101);
	CHECK_EQ(ahd_pr(&a, 1, AHD_SIG), 0xeb140101u);
	CHECK_EQ(ahd_pr(&a, 2, AHD_SSTS), 0);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(finish(), 0);
}

/* IDENTIFY, then 32 queued writes and 32 queued reads at once; each tag completes once; MSIs arrive. */
static void ahci_sata_ncq(void)
{
	CHECK_EQ(start(",cache=none"), 0);
	CHECK(hba_reset());
	enable_msi();
	ahd_wr(&a, AHD_GHC, 1u << 31 | 2);
	CHECK(ahd_port_start(&a, 0));
	uint8_t f[20];
	ahd_fis(f, 0xec, 0, 0, 0, 0);
	struct ahd_prd prd = { DATA, 512 };
	CHECK_EQ(ahd_exec(&a, 0, 0, f, NULL, &prd, 1, false), 0x50);
	uint16_t id[256];
	dtc_memread(&d, DATA, id, sizeof(id));
	CHECK_EQ(id[100], DISK_SECTORS);
	CHECK(id[76] & 0x100);
	uint64_t maddr = 0;
	uint32_t mdata = 0;
	CHECK(dtc_msi_wait(&d, 10000, &maddr, &mdata));
	CHECK_EQ(maddr, 0xfee00000u);
	CHECK_EQ(mdata, MSI_DATA);
	/* 32 writes of 4 KiB, each its own pattern, then 32 reads into other buffers. */
	static uint8_t buf[32][4096];
	for (unsigned s = 0; s < 32; s++) {
		for (unsigned i = 0; i < 4096; i++)
			buf[s][i] = (uint8_t)(s * 31 + i * 7);
		dtc_memwrite(&d, DATA + 0x1000ull * s, buf[s], 4096);
		ahd_fis_ncq(f, true, 64 + 8 * s, 8, s);
		struct ahd_prd p1 = { DATA + 0x1000ull * s, 4096 };
		ahd_prep(&a, 0, s, f, NULL, &p1, 1, true);
	}
	for (unsigned pass = 0; pass < 2; pass++) {
		ahd_pwr(&a, 0, AHD_SACT, 0xffffffffu);
		ahd_pwr(&a, 0, AHD_CI, 0xffffffffu);
		CHECK_EQ(ahd_pr(&a, 0, AHD_CI), 0); /* all 32 accepted at once */
		/* SACT bits only ever clear, each once, and none is left. */
		uint32_t seen = 0xffffffffu;
		for (unsigned round = 0; seen && dt_idle(NULL, round); round++) {
			uint32_t now = ahd_pr(&a, 0, AHD_SACT);
			CHECK_EQ(now & ~seen, 0);
			seen = now;
		}
		CHECK_EQ(seen, 0);
		CHECK_EQ(ahd_pr(&a, 0, AHD_IS) & AHD_IS_TFES, 0);
		CHECK(ahd_pr(&a, 0, AHD_IS) & AHD_IS_SDBS);
		CHECK_EQ(ahd_rfis(&a, 0, AHD_RFIS_SDB), 0xa1);
		ahd_pwr(&a, 0, AHD_IS, 0xffffffffu);
		CHECK(dtc_msi_wait(&d, 10000, &maddr, &mdata));
		while (dtc_msi(&d, &maddr, &mdata))
			;
		if (pass == 0) {
			for (unsigned s = 0; s < 32; s++) {
				ahd_fis_ncq(f, false, 64 + 8 * s, 8, s);
				struct ahd_prd p1 = { DATA + 0x100000 + 0x1000ull * s, 4096 };
				ahd_prep(&a, 0, s, f, NULL, &p1, 1, false);
			}
		}
	}
	for (unsigned s = 0; s < 32; s++) {
		uint8_t got[4096];
		dtc_memread(&d, DATA + 0x100000 + 0x1000ull * s, got, sizeof(got));
		CHECK(!memcmp(got, buf[s], sizeof(got)));
	}
	/* FLUSH CACHE EXT: the image file holds the writes. */
	ahd_fis(f, 0xea, 0, 0, 0, 0);
	CHECK_EQ(ahd_exec(&a, 0, 0, f, NULL, NULL, 0, false), 0x50);
	FILE *fp = fopen(img, "rb");
	uint8_t got[4096];
	CHECK(fp && fseek(fp, (64 + 8 * 5) * 512, SEEK_SET) == 0 && fread(got, 1, sizeof(got), fp) == sizeof(got));
	if (fp)
		fclose(fp);
	CHECK(!memcmp(got, buf[5], sizeof(got)));
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(finish(), 0);
}

/* TRIM where the disk can discard: the ranges read back as zeroes, the rest is untouched. */
static void ahci_sata_trim(void)
{
	CHECK_EQ(start(",cache=none"), 0);
	CHECK(hba_reset());
	CHECK(ahd_port_start(&a, 0));
	uint8_t f[20];
	ahd_fis(f, 0xec, 0, 0, 0, 0);
	struct ahd_prd prd = { DATA, 512 };
	CHECK_EQ(ahd_exec(&a, 0, 0, f, NULL, &prd, 1, false), 0x50);
	uint16_t w169 = 0;
	dtc_memread(&d, DATA + 2 * 169, &w169, 2);
	if (!(w169 & 1)) {
		/* The file system under /tmp cannot punch holes: the disk must then not offer TRIM. */
		ahd_fis(f, 0x06, 1, 0, 1, 0x40);
		CHECK_EQ(ahd_exec(&a, 0, 1, f, NULL, &prd, 1, true), 0x51);
	} else {
		uint64_t ranges[64] = { 1000 | (uint64_t)16 << 48 }; /* away from what sata_ncq wrote */
		dtc_memwrite(&d, DATA, ranges, sizeof(ranges));
		ahd_fis(f, 0x06, 1, 0, 1, 0x40);
		CHECK_EQ(ahd_exec(&a, 0, 1, f, NULL, &prd, 1, true), 0x50);
		ahd_fis(f, 0x25, 0, 999, 18, 0x40);
		struct ahd_prd rp = { DATA + 0x10000, 18 * 512 };
		CHECK_EQ(ahd_exec(&a, 0, 2, f, NULL, &rp, 1, false), 0x50);
		uint8_t b[18 * 512], zero[16 * 512] = { 0 };
		dtc_memread(&d, DATA + 0x10000, b, sizeof(b));
		CHECK(!memcmp(b + 512, zero, sizeof(zero)));
		CHECK_EQ(b[0], disk_byte(999 * 512));
		CHECK_EQ(b[17 * 512], disk_byte(1016 * 512));
	}
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(finish(), 0);
}

static uint8_t packet(unsigned s, const uint8_t *cdb, uint32_t len)
{
	return ahd_packet(&a, 1, s, cdb, DATA, len);
}

/* The CD-ROM as SeaBIOS and Linux meet it. */
static void ahci_atapi_cdrom(void)
{
	CHECK_EQ(start(""), 0);
	CHECK(hba_reset());
	CHECK(ahd_port_start(&a, 1));
	uint8_t f[20], b[64];
	/* SeaBIOS asks IDENTIFY PACKET DEVICE first (PIO, watching the PIO setup FIS). */
	ahd_fis(f, 0xa1, 0, 0, 0, 0);
	struct ahd_prd prd = { DATA, 512 };
	CHECK_EQ(ahd_exec(&a, 1, 0, f, NULL, &prd, 1, false), 0x50);
	CHECK_EQ(ahd_rfis(&a, 1, AHD_RFIS_PIO + 2), 0x50);
	uint16_t w0 = 0;
	dtc_memread(&d, DATA, &w0, 2);
	CHECK_EQ((w0 >> 8) & 0x1f, 5); /* a CD-ROM */
	uint8_t inq[12] = { 0x12, 0, 0, 0, 36 };
	CHECK_EQ(packet(1, inq, 36), 0x50);
	dtc_memread(&d, DATA, b, 36);
	CHECK_EQ(b[0], 5);
	CHECK_EQ(b[1], 0x80);
	uint8_t cap[12] = { 0x25 };
	CHECK_EQ(packet(2, cap, 8), 0x50);
	dtc_memread(&d, DATA, b, 8);
	CHECK_EQ((uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3], CD_SECTORS - 1);
	CHECK_EQ(b[6] << 8 | b[7], 2048);
	/* READ(10) of the volume descriptor sector and the next, checked against the file. */
	uint8_t rd[12] = { 0x28, 0, 0, 0, 0, 16, 0, 0, 2 };
	CHECK_EQ(packet(3, rd, 4096), 0x50);
	static uint8_t data[4096];
	dtc_memread(&d, DATA, data, sizeof(data));
	CHECK(!memcmp(data + 1, "CD001", 5));
	CHECK_EQ(data[2048 + 100], cd_byte(17 * 2048 + 100));
	/* Past the end: CHECK CONDITION, and REQUEST SENSE says ILLEGAL REQUEST, LBA out of range. */
	uint8_t past[12] = { 0x28, 0, 0, 0, 0, CD_SECTORS - 1, 0, 0, 2 };
	CHECK_EQ(packet(4, past, 4096), 0x51);
	CHECK_EQ(ahd_pr(&a, 1, AHD_TFD) >> 12 & 0xf, 5);
	CHECK(ahd_recover(&a, 1));
	uint8_t rs[12] = { 0x03, 0, 0, 0, 18 };
	CHECK_EQ(packet(5, rs, 18), 0x50);
	dtc_memread(&d, DATA, b, 18);
	CHECK_EQ(b[0], 0x70);
	CHECK_EQ(b[2] & 0xf, 5);
	CHECK_EQ(b[12], 0x21);
	CHECK_EQ(b[13], 0);
	/* Read-only: an ATA write is aborted, a SCSI WRITE(10) is not a command this drive has. */
	ahd_fis(f, 0x35, 0, 0, 1, 0x40);
	CHECK_EQ(ahd_exec(&a, 1, 6, f, NULL, &prd, 1, true), 0x51);
	CHECK(ahd_recover(&a, 1));
	uint8_t wr[12] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1 };
	CHECK_EQ(packet(7, wr, 2048), 0x51);
	CHECK(ahd_recover(&a, 1));
	CHECK_EQ(packet(8, rs, 18), 0x50);
	dtc_memread(&d, DATA, b, 18);
	CHECK_EQ(b[12], 0x20);
	FILE *fp = fopen(iso, "rb");
	uint8_t first[16];
	CHECK(fp && fread(first, 1, sizeof(first), fp) == sizeof(first));
	if (fp)
		fclose(fp);
	CHECK_EQ(first[3], cd_byte(3));
	/* TOC and GET CONFIGURATION, as Linux's sr reads them. */
	uint8_t toc[12] = { 0x43, 0, 0, 0, 0, 0, 0, 0, 64 };
	CHECK_EQ(packet(9, toc, 64), 0x50);
	dtc_memread(&d, DATA, b, 20);
	CHECK_EQ(b[14], 0xaa);
	uint8_t gc[12] = { 0x46, 2, 0, 0, 0, 0, 0, 0, 64 };
	CHECK_EQ(packet(10, gc, 64), 0x50);
	dtc_memread(&d, DATA, b, 12);
	CHECK_EQ(b[7], 0x08);
	CHECK_EQ(b[9], 0); /* feature 0000h, the profile list */
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(finish(), 0);
}

/* ST cleared right after 32 reads were issued: CI and SACT clear at once, CR once they are back; the port runs again. */
static void ahci_stop_in_flight(void)
{
	CHECK_EQ(start(",cache=none"), 0);
	CHECK(hba_reset());
	CHECK(ahd_port_start(&a, 0));
	uint8_t f[20];
	for (unsigned s = 0; s < 32; s++) {
		ahd_fis_ncq(f, false, 128 * s, 128, s);
		struct ahd_prd p1 = { DATA + 0x10000ull * s, 65536 };
		ahd_prep(&a, 0, s, f, NULL, &p1, 1, false);
	}
	ahd_pwr(&a, 0, AHD_SACT, 0xffffffffu);
	ahd_pwr(&a, 0, AHD_CI, 0xffffffffu);
	ahd_pwr(&a, 0, AHD_CMD, ahd_pr(&a, 0, AHD_CMD) & ~AHD_CMD_ST);
	CHECK_EQ(ahd_pr(&a, 0, AHD_CI), 0);
	CHECK_EQ(ahd_pr(&a, 0, AHD_SACT), 0);
	CHECK(ahd_wait(&a, 0, AHD_CMD, AHD_CMD_CR, 0));
	/* COMRESET, as libahci's hard reset: the signature comes back. */
	ahd_pwr(&a, 0, AHD_SCTL, 0x301);
	ahd_pwr(&a, 0, AHD_SCTL, 0x300);
	CHECK(ahd_wait(&a, 0, AHD_SSTS, 0xf, 3));
	CHECK(ahd_wait(&a, 0, AHD_TFD, 0x88, 0));
	CHECK_EQ(ahd_pr(&a, 0, AHD_SIG), 0x101);
	CHECK(ahd_port_start(&a, 0));
	ahd_fis(f, 0x25, 0, 7, 1, 0x40);
	struct ahd_prd prd = { DATA, 512 };
	CHECK_EQ(ahd_exec(&a, 0, 0, f, NULL, &prd, 1, false), 0x50);
	uint8_t b[512];
	dtc_memread(&d, DATA, b, sizeof(b));
	CHECK_EQ(b[9], disk_byte(7 * 512 + 9));
	/* INTx: without MSI the pending interrupt shows in PCI status (bit 3) until PxIS is cleared. */
	ahd_wr(&a, AHD_GHC, 1u << 31 | 2);
	ahd_prep(&a, 0, 1, f, NULL, &prd, 1, false);
	ahd_pwr(&a, 0, AHD_CI, 2);
	CHECK(ahd_wait(&a, 0, AHD_CI, 2, 0));
	CHECK(dtc_cfg_read(&d, (unsigned)dev, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	ahd_pwr(&a, 0, AHD_IS, 0xffffffffu);
	CHECK_EQ(dtc_cfg_read(&d, (unsigned)dev, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(finish(), 0);
}

int main(void)
{
	make_images();
	RUN("devtest", ahci_pci_identity);
	RUN("devtest", ahci_sata_ncq);
	RUN("devtest", ahci_sata_trim);
	RUN("devtest", ahci_atapi_cdrom);
	RUN("devtest", ahci_stop_in_flight);
	unlink(img);
	unlink(iso);
	if (!unit_failed_tests)
		unlink(errlog);
	UNIT_EXIT();
}
