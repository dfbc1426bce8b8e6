// SPDX-License-Identifier: MIT
/*
 * Inside the AHCI model (src/ahci): the controller's registers and state
 * (controller.c), the ports' command engine (port.c), and the two command
 * sets behind a port, each a static table from opcode to handler: ATA for
 * SATA disks (sata.c) and ATAPI for the CD-ROM (atapi.c).
 *
 * Threads and locks.  MMIO handlers run on vCPU threads, block completions
 * on the block stack's threads.  One mutex per controller (ahci.lock)
 * guards every register and the command bookkeeping; it is never held
 * across blk_submit() (whose done() may run inside it) nor across
 * pci_dev_set_intx() (which takes the bus lock, and the bus lock is held
 * when config_written() takes ours).  intx_lock orders INTx updates.
 *
 * One thread at a time runs a port's engine (the "pump", port.c): it
 * fetches commands, executes their handlers and submits their block
 * requests; others that find work for it only count a request, and it goes
 * round again.  Handlers therefore never run concurrently on one port, and
 * touch device state (struct ahci_dev) without the lock: a non-queued
 * command (every ATAPI command) runs alone on its port.
 */
#pragma once

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ahci.h"
#include "block/block.h"
#include "dev/pci.h"

#define AHCI_PORTS 6          /* as ICH9 */
#define AHCI_SLOTS 32         /* command slots per port, and NCQ tags */
#define AHCI_ABAR_SIZE 0x1000 /* BAR5: HBA registers, then 0x80 per port from 0x100 */
#define AHCI_IOV_MAX 256      /* host-contiguous pieces of one command's PRDT */
#define AHCI_DSM_RANGES 64    /* TRIM ranges per DATA SET MANAGEMENT: one 512-byte block of them */
#define AHCI_SYNC_MAX 4096    /* the longest answer a command builds in memory (IDENTIFY, logs, ATAPI pages) */
#define ATAPI_SECTOR 2048u

/* --- guest-visible layouts ---------------------------------------------- */

enum {
	HBA_CAP = 0x00, HBA_GHC = 0x04, HBA_IS = 0x08, HBA_PI = 0x0c, HBA_VS = 0x10,
	HBA_CAP2 = 0x24, HBA_PORTS = 0x100, HBA_PORT_SIZE = 0x80,
};
#define CAP_S64A (1u << 31)
#define CAP_SNCQ (1u << 30)
#define CAP_SCLO (1u << 24)
#define CAP_ISS_GEN2 (2u << 20)
#define CAP_SAM (1u << 18)
#define GHC_HR (1u << 0)
#define GHC_IE (1u << 1)
#define GHC_AE (1u << 31)

enum {
	PX_CLB = 0x00, PX_CLBU = 0x04, PX_FB = 0x08, PX_FBU = 0x0c, PX_IS = 0x10, PX_IE = 0x14, PX_CMD = 0x18,
	PX_TFD = 0x20, PX_SIG = 0x24, PX_SSTS = 0x28, PX_SCTL = 0x2c, PX_SERR = 0x30, PX_SACT = 0x34, PX_CI = 0x38,
	PX_SNTF = 0x3c, PX_FBS = 0x40,
};
/* PxIS / PxIE bits. */
#define PXI_DHRS (1u << 0)  /* D2H register FIS */
#define PXI_PSS (1u << 1)   /* PIO setup FIS */
#define PXI_SDBS (1u << 3)  /* set device bits FIS */
#define PXI_DPS (1u << 5)   /* a PRD with its I bit done */
#define PXI_OFS (1u << 24)  /* overflow: the PRDT was shorter than the data */
#define PXI_IFS (1u << 27)  /* interface fatal: a malformed command FIS */
#define PXI_HBFS (1u << 29) /* host bus fatal: a PRD or table outside guest RAM */
#define PXI_TFES (1u << 30) /* task file error: the status had ERR */
#define PXI_IE_MASK 0xfdc000ffu /* the bits PxIE implements */
#define PXI_FATAL (PXI_OFS | PXI_IFS | PXI_HBFS | PXI_TFES)
/* PxCMD bits. */
#define PXC_ST (1u << 0)
#define PXC_SUD (1u << 1)
#define PXC_POD (1u << 2)
#define PXC_CLO (1u << 3)
#define PXC_FRE (1u << 4)
#define PXC_CCS_SHIFT 8
#define PXC_FR (1u << 14)
#define PXC_CR (1u << 15)
#define PXC_ATAPI (1u << 24)
#define PXC_RW (PXC_ST | PXC_FRE | PXC_ATAPI | (7u << 25)) /* what the guest may set: ST, FRE, ATAPI, DLAE/ALPE/ASP */

#define SIG_ATA 0x00000101u
#define SIG_ATAPI 0xeb140101u
#define SSTS_UP 0x123u      /* device present, Gen2 speed, interface active */
#define SSTS_RESETTING 0x1u /* device present, no communication yet */

/* ATA status and error bits. */
#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DSC 0x10
#define ST_DF 0x20
#define ST_DRDY 0x40
#define ST_BSY 0x80
#define ST_OK (ST_DRDY | ST_DSC)
#define ER_ABRT 0x04
#define ER_IDNF 0x10
#define ER_UNC 0x40

/* FIS types and the offsets of the received-FIS area. */
enum { FIS_H2D = 0x27, FIS_D2H = 0x34, FIS_SDB = 0xa1, FIS_PIO = 0x5f };
enum { RFIS_PIO = 0x20, RFIS_D2H = 0x40, RFIS_SDB = 0x58, RFIS_SIZE = 0x100 };
/* Bytes of the host-to-device register FIS (and of the D2H one where they coincide). */
enum {
	FIS_TYPE, FIS_FLAGS, FIS_CMD, FIS_FEAT, FIS_LBA0, FIS_LBA1, FIS_LBA2, FIS_DEV, FIS_LBA3, FIS_LBA4, FIS_LBA5,
	FIS_FEAT_EXP, FIS_COUNT, FIS_COUNT_EXP, FIS_ICC, FIS_CTL, FIS_LEN = 20,
};
#define FIS_C 0x80    /* H2D flags: a command (else a device control update) */
#define CTL_SRST 0x04 /* device control: software reset */

struct ahci_cmd_header {
	uint32_t flags; /* CFL 4:0, A 5, W 6, P 7, R 8, B 9, C 10, PMP 15:12, PRDTL 31:16 */
	uint32_t prdbc; /* bytes transferred, written by the HBA */
	uint32_t ctba, ctbau;
	uint32_t reserved[4];
};
static_assert(sizeof(struct ahci_cmd_header) == 32, "AHCI command header layout");
#define HDR_CFL(f) ((f) & 0x1f)
#define HDR_WRITE (1u << 6)
#define HDR_RESET (1u << 8)
#define HDR_CLR_BUSY (1u << 10)
#define HDR_PRDTL(f) ((f) >> 16)

struct ahci_prd {
	uint32_t dba, dbau, reserved, dbc; /* DBC 21:0 is bytes - 1; bit 31 asks for an interrupt */
};
static_assert(sizeof(struct ahci_prd) == 16, "AHCI PRD entry layout");
#define CT_CFIS 0x00
#define CT_ACMD 0x40
#define CT_PRDT 0x80

/* --- state --------------------------------------------------------------- */

struct ahci_port;
struct ahci_cmd;

/* What a command handler says. */
enum ahci_exec { EXEC_DONE, EXEC_SUBMIT };
/* How the result reaches the host: a D2H register FIS, a PIO setup FIS before it, or an SDB FIS (NCQ). */
enum ahci_proto { PROTO_NODATA, PROTO_PIO_IN, PROTO_PIO_OUT, PROTO_DMA, PROTO_NCQ };

/* The device behind a port: a SATA disk or an ATAPI CD-ROM. */
struct ahci_dev {
	struct blk_dev *disk;
	bool atapi;
	bool read_only;
	uint32_t sector;  /* logical sector bytes: the disk's block size, 2048 on a CD */
	uint64_t sectors; /* capacity in those */
	char serial[21], model[41];
	/* ATA settings (SET FEATURES, SET MULTIPLE MODE) */
	bool wcache;
	uint8_t multiple;
	uint8_t udma; /* selected UDMA mode + 1; 0: none selected */
	/* NCQ: the command that failed, for READ LOG EXT page 10h (valid while ncq_err) */
	bool ncq_err;
	uint8_t ncq_tag, ncq_status, ncq_error;
	uint64_t ncq_lba;
	/* ATAPI */
	uint8_t sense_key, asc, ascq;
	bool locked;
	/* DATA SET MANAGEMENT's sub-requests (non-queued: one such command per port at a time) */
	struct blk_req dsm[AHCI_DSM_RANGES];
};

struct ahci_cmd {
	struct ahci_port *port;
	unsigned slot;
	uint64_t hdr_gpa; /* where its header is (PRDBC goes there) */
	uint32_t hdr_flags;
	uint64_t ctba;
	uint8_t fis[FIS_LEN];
	uint8_t cdb[16];
	bool ncq;
	/* The PRDT as host pieces (map_prdt()), or the error mapping it found. */
	struct iovec iov[AHCI_IOV_MAX];
	unsigned iovcnt;
	uint64_t iov_bytes;
	bool prd_irq;
	/* Block requests: reqs[0..nreq), next to submit; refs = unfinished ones + 1 while submitting. */
	struct blk_req req;
	struct blk_req *reqs;
	unsigned nreq, next;
	_Atomic unsigned refs;
	_Atomic int blk_status;
	/* Called by the engine when the block requests are done (translates the status). */
	void (*blk_done)(struct ahci_cmd *c, int status);
	/* Result. */
	enum ahci_proto proto;
	uint8_t status, error;
	uint32_t xfer;         /* bytes moved (PRDBC) */
	uint8_t rfis[FIS_LEN]; /* the D2H FIS's LBA/count bytes, when the command returns some */
	bool rfis_valid;
	uint32_t irq_extra;    /* PxIS bits besides the FIS's (HBFS, OFS, IFS) */
	bool aborted;          /* the port stopped or reset under it: finish silently */
	bool silent;           /* a device control FIS: no FIS back, only CI cleared */
	uint64_t lba;          /* its first LBA, for the NCQ error log */
};

struct ahci_port {
	struct ahci *hba;
	unsigned index;
	struct ahci_dev *dev; /* NULL: nothing attached */
	struct ahci_cmd *cmds; /* AHCI_SLOTS, when dev */
	/* Registers. */
	uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, ssts, sctl, serr, sact, ci;
	/* Engine: slots whose header is copied, that run, that run queued, that were aborted, that wait for room. */
	uint32_t fetched, busy, ncq_busy, aborted, stalled;
	bool exclusive;     /* a non-queued command runs */
	bool halted;        /* an error stopped command processing until ST is cleared */
	bool reset_pending; /* a COMRESET/HBA reset waits for the aborted commands */
	bool sig_pending;   /* the signature D2H FIS is still owed (FRE was off) */
	unsigned ccs;       /* last slot started */
	_Atomic unsigned pump;    /* runs of the engine asked for (ahci_port_run()) */
	_Atomic bool irq_dirty;   /* an interrupt was raised outside a completion */
};

struct ahci {
	struct pci_dev pci;
	const struct guest_mem *mem;
	struct vm *vm;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned active; /* completions in progress: destroy waits for 0 */
	uint32_t ghc;
	bool hr_pending;
	struct ahci_port port[AHCI_PORTS];
	struct ahci_dev devs[AHCI_PORTS];
	/* Interrupts. */
	pthread_mutex_t intx_lock;
	bool intx_level;
	bool msi_enabled;
	uint64_t msi_addr;
	uint32_t msi_data;
	unsigned msi_cap;
	int msi_fd;
	unsigned gsi;
	bool irqfd;
	_Atomic bool master; /* bus mastering (PCI COMMAND): no DMA without it */
	char name[16];
};

/* controller.c */
bool ahci_pending(const struct ahci *a);
/* Set PxIS bits (lock held); an MSI goes out if an enabled one is among them. */
void ahci_raise(struct ahci_port *p, uint32_t bits);
/* Bring INTx in line with the registers (lock not held). */
void ahci_irq_sync(struct ahci *a);

/* port.c */
uint32_t ahci_port_read(struct ahci_port *p, unsigned reg);
/* A register write (lock held); returns true if the port's engine should run. */
bool ahci_port_write(struct ahci_port *p, unsigned reg, uint32_t val, uint32_t mask);
void ahci_port_run(struct ahci_port *p);
/* Abort every running command and reset the device and registers (lock held); hba: GHC.HR, else COMRESET. */
void ahci_port_reset(struct ahci_port *p, bool hba);
/* Whether any port still has aborted commands in flight (lock held). */
bool ahci_draining(const struct ahci *a);
/* Finish the resets that waited for them (lock held), after the last aborted command. */
void ahci_port_reset_finish(struct ahci_port *p);
/* Map c's PRDT to host memory for len bytes (fewer if the PRDT holds fewer).  0 or -EFAULT/-E2BIG. */
int ahci_map_prdt(struct ahci_cmd *c, uint64_t len);
/* Copy a built answer to the PRDT (at most as much as it maps); sets c->xfer. */
void ahci_copy_out(struct ahci_cmd *c, const void *buf, uint32_t len);
/* Read up to len bytes the host sends (data-out) from the PRDT; returns how many. */
uint32_t ahci_copy_in(struct ahci_cmd *c, void *buf, uint32_t len);

/* Map exactly len bytes, or fail the command (ABRT; OFS if the PRDT is short, HBFS if not in RAM).  0 or -errno. */
int ahci_map_exact(struct ahci_cmd *c, uint64_t len);

/* sata.c / atapi.c: execute a fetched command (no lock held; it runs alone on the device, or queued). */
enum ahci_exec ahci_ata_exec(struct ahci_dev *d, struct ahci_cmd *c);
enum ahci_exec ahci_atapi_exec(struct ahci_dev *d, struct ahci_cmd *c);
/* IDENTIFY PACKET DEVICE's words (checksum not yet). */
void ahci_atapi_identify(const struct ahci_dev *d, uint16_t *id);
/* Whether c is a queued (NCQ) command. */
bool ahci_ata_is_ncq(const uint8_t *fis);
/* The device's state after a reset (COMRESET, SRST, HBA reset). */
void ahci_dev_reset(struct ahci_dev *d);
/* Put an ATA string (space-padded, two bytes per word, swapped) into IDENTIFY words. */
void ahci_id_string(uint16_t *w, const char *s, unsigned words);
/* The IDENTIFY checksum word (255). */
void ahci_id_checksum(uint16_t *id);

static inline void put_be16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, v >> 16);
	put_be16(p + 2, v);
}

static inline uint32_t get_be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return get_be16(p) << 16 | get_be16(p + 2);
}
