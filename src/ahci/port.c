// SPDX-License-Identifier: MIT
/*
 * An AHCI port: its registers, and the engine that takes commands from
 * the guest's command list, runs them and reports them (AHCI 1.3, sections
 * 3.3 and 5).
 *
 * A command is fetched once: its header and command FIS (and ATAPI packet)
 * are copied out of guest memory and never read again; its PRDT is read
 * once, when the handler maps it, into host pieces checked by gm_ptr().
 * Queued commands (NCQ) run up to 32 at a time and complete in whatever
 * order the block stack finishes them (a Set Device Bits FIS each); a
 * non-queued command runs alone (it waits for the queued ones to drain).
 * Block requests are submitted without the lock; a stack that answers
 * -EAGAIN leaves the command stalled until a completion resumes the engine.
 *
 * Stopping (PxCMD.ST cleared), COMRESET (PxSCTL.DET) and HBA reset abort
 * what runs: the guest sees CI and SACT cleared at once, PxCMD.CR (and
 * GHC.HR) stay set until the last aborted request is back from the block
 * stack, and an aborted command's completion writes nothing to the guest.
 * So once CR reads 0 no request of the port can touch guest memory.
 */
#include <errno.h>
#include <string.h>

#include "base/util.h"
#include "internal.h"
#include "vmm/guest_mem.h"

static uint64_t clb(const struct ahci_port *p)
{
	return (uint64_t)p->clbu << 32 | p->clb;
}

static uint64_t fb(const struct ahci_port *p)
{
	return (uint64_t)p->fbu << 32 | p->fb;
}

/* A guest structure of len bytes at gpa would wrap past 2^64: the HBA faults instead. */
static bool gpa_wraps(uint64_t gpa, uint64_t len)
{
	return gpa > UINT64_MAX - len;
}

/* Deliver a FIS into the received-FIS area, if the guest receives FISes.  Lock held. */
static void write_fis(struct ahci_port *p, unsigned off, const uint8_t *fis, unsigned len)
{
	if ((p->cmd & PXC_FRE) && !gpa_wraps(fb(p), 256))
		(void)gm_write(p->hba->mem, fb(p) + off, fis, len);
}

/* The D2H register FIS a device sends after reset: its signature. */
static void send_signature(struct ahci_port *p)
{
	uint8_t f[FIS_LEN] = { FIS_D2H, 0, (uint8_t)p->tfd, (uint8_t)(p->tfd >> 8) };
	f[FIS_COUNT] = (uint8_t)p->sig;
	f[FIS_LBA0] = (uint8_t)(p->sig >> 8);
	f[FIS_LBA1] = (uint8_t)(p->sig >> 16);
	f[FIS_LBA2] = (uint8_t)(p->sig >> 24);
	write_fis(p, RFIS_D2H, f, sizeof(f));
	p->sig_pending = !(p->cmd & PXC_FRE);
}

/* --- registers -------------------------------------------------------------- */

uint32_t ahci_port_read(struct ahci_port *p, unsigned reg)
{
	switch (reg) {
	case PX_CLB: return p->clb;
	case PX_CLBU: return p->clbu;
	case PX_FB: return p->fb;
	case PX_FBU: return p->fbu;
	case PX_IS: return p->is;
	case PX_IE: return p->ie;
	case PX_CMD: {
		uint32_t v = (p->cmd & PXC_RW) | PXC_SUD | PXC_POD | (p->ccs % AHCI_SLOTS) << PXC_CCS_SHIFT;
		if (p->cmd & PXC_FRE)
			v |= PXC_FR;
		if ((p->cmd & PXC_ST) || p->busy)
			v |= PXC_CR;
		return v;
	}
	case PX_TFD: return p->tfd;
	case PX_SIG: return p->sig;
	case PX_SSTS: return p->ssts;
	case PX_SCTL: return p->sctl;
	case PX_SERR: return p->serr;
	case PX_SACT: return p->sact;
	case PX_CI: return p->ci;
	default: return 0; /* SNTF, FBS and reserved */
	}
}

static void drop_refs(struct ahci_port *p, struct ahci_cmd *c, unsigned n);

/* Abort every running command: they finish silently; CR stays set until they have.  Lock held. */
static void abort_all(struct ahci_port *p)
{
	p->aborted |= p->busy;
	for (uint32_t b = p->busy; b; b &= b - 1)
		p->cmds[__builtin_ctz(b)].aborted = true;
	/* A stalled command's unsubmitted requests never will be. */
	for (uint32_t b = p->stalled; b; b &= b - 1) {
		struct ahci_cmd *c = &p->cmds[__builtin_ctz(b)];
		unsigned rest = c->nreq - c->next + 1; /* and the submitter's reference */
		c->next = c->nreq;
		drop_refs(p, c, rest);
	}
	p->stalled = 0;
	p->ci = p->sact = p->fetched = 0;
	p->halted = false;
}

bool ahci_draining(const struct ahci *a)
{
	for (unsigned i = 0; i < AHCI_PORTS; i++)
		if (a->port[i].aborted)
			return true;
	return false;
}

void ahci_port_reset_finish(struct ahci_port *p)
{
	if (!p->reset_pending || p->aborted || (p->sctl & 0xf) == 1)
		return;
	p->reset_pending = false;
	ahci_dev_reset(p->dev);
	p->tfd = 0x100 | ST_OK; /* error 01h: diagnostics passed */
	p->sig = p->dev->atapi ? SIG_ATAPI : SIG_ATA;
	p->ssts = SSTS_UP;
	send_signature(p);
}

void ahci_port_reset(struct ahci_port *p, bool hba)
{
	abort_all(p);
	if (hba) {
		p->clb = p->clbu = p->fb = p->fbu = 0;
		p->is = p->ie = p->cmd = p->sctl = p->serr = 0;
	}
	if (!p->dev) {
		p->tfd = 0x7f;
		p->sig = 0xffffffffu;
		p->ssts = 0;
		return;
	}
	p->tfd = ST_BSY;
	p->ssts = SSTS_RESETTING;
	p->reset_pending = true;
	ahci_port_reset_finish(p);
}

static bool write_cmd(struct ahci_port *p, uint32_t v)
{
	uint32_t old = p->cmd;
	p->cmd = v & PXC_RW;
	if (v & PXC_CLO)
		p->tfd &= ~(uint32_t)(ST_BSY | ST_DRQ); /* command list override; reads back 0 */
	if ((p->cmd & PXC_FRE) && !(old & PXC_FRE) && p->sig_pending)
		send_signature(p);
	if ((old & PXC_ST) && !(p->cmd & PXC_ST))
		abort_all(p);
	if (!(p->cmd & PXC_ST) || (old & PXC_ST))
		return false;
	p->ccs = AHCI_SLOTS - 1; /* the first command fetched is slot 0's */
	return true;
}

static void write_sctl(struct ahci_port *p, uint32_t v)
{
	uint32_t old = p->sctl;
	p->sctl = v & 0xfff;
	if ((v & 0xf) == 1 && (old & 0xf) != 1)
		ahci_port_reset(p, false); /* COMRESET asserted: held until DET is written back */
	else if ((old & 0xf) == 1 && (v & 0xf) != 1)
		ahci_port_reset_finish(p);
}

bool ahci_port_write(struct ahci_port *p, unsigned reg, uint32_t val, uint32_t mask)
{
	uint32_t v = val & mask;
#define MERGE(r) (((r) & ~mask) | v)
	switch (reg) {
	case PX_CLB: p->clb = MERGE(p->clb) & ~0x3ffu; break;
	case PX_CLBU: p->clbu = MERGE(p->clbu); break;
	case PX_FB: p->fb = MERGE(p->fb) & ~0xffu; break;
	case PX_FBU: p->fbu = MERGE(p->fbu); break;
	case PX_IS: p->is &= ~v; break;
	case PX_IE: p->ie = MERGE(p->ie) & PXI_IE_MASK; break;
	case PX_CMD: return write_cmd(p, MERGE(ahci_port_read(p, PX_CMD)));
	case PX_SCTL: write_sctl(p, MERGE(p->sctl)); break;
	case PX_SERR: p->serr &= ~v; break;
	case PX_SACT:
		if (p->cmd & PXC_ST)
			p->sact |= v;
		break;
	case PX_CI:
		if (!(p->cmd & PXC_ST))
			break;
		p->ci |= v;
		return v != 0;
	default: break;
	}
#undef MERGE
	return false;
}

/* --- guest memory -------------------------------------------------------------- */

int ahci_map_prdt(struct ahci_cmd *c, uint64_t len)
{
	const struct guest_mem *mem = c->port->hba->mem;
	uint32_t n = HDR_PRDTL(c->hdr_flags);
	struct ahci_prd prd[64];
	c->iovcnt = 0;
	c->iov_bytes = 0;
	for (uint32_t i = 0; i < n && c->iov_bytes < len;) {
		unsigned k = MIN(64u, n - i);
		if (gm_read(mem, c->ctba + CT_PRDT + 16ull * i, prd, 16ull * k))
			return -EFAULT;
		for (unsigned j = 0; j < k && c->iov_bytes < len; j++) {
			uint64_t addr = ((uint64_t)prd[j].dbau << 32 | prd[j].dba) & ~1ull;
			uint64_t sz = MIN((uint64_t)(prd[j].dbc & 0x3fffff) + 1, len - c->iov_bytes);
			c->prd_irq |= (prd[j].dbc >> 31) != 0;
			uint8_t *h = gm_ptr(mem, addr, sz);
			if (!h)
				return -EFAULT;
			struct iovec *last = c->iovcnt ? &c->iov[c->iovcnt - 1] : NULL;
			if (last && (uint8_t *)last->iov_base + last->iov_len == h) {
				last->iov_len += sz;
			} else {
				if (c->iovcnt == AHCI_IOV_MAX)
					return -E2BIG;
				c->iov[c->iovcnt++] = (struct iovec){ h, sz };
			}
			c->iov_bytes += sz;
		}
		i += k;
	}
	return 0;
}

int ahci_map_exact(struct ahci_cmd *c, uint64_t len)
{
	int r = ahci_map_prdt(c, len);
	if (!r && c->iov_bytes < len)
		r = -ENOSPC;
	if (r) {
		c->status = ST_OK | ST_ERR;
		c->error = ER_ABRT;
		c->irq_extra |= r == -EFAULT ? PXI_HBFS : r == -ENOSPC ? PXI_OFS : 0;
	}
	return r;
}

void ahci_copy_out(struct ahci_cmd *c, const void *buf, uint32_t len)
{
	const uint8_t *b = buf;
	uint32_t done = 0;
	for (unsigned i = 0; i < c->iovcnt && done < len; i++) {
		size_t n = MIN(c->iov[i].iov_len, (size_t)(len - done));
		memcpy(c->iov[i].iov_base, b + done, n);
		done += (uint32_t)n;
	}
	c->xfer = done;
}

uint32_t ahci_copy_in(struct ahci_cmd *c, void *buf, uint32_t len)
{
	uint8_t *b = buf;
	uint32_t done = 0;
	for (unsigned i = 0; i < c->iovcnt && done < len; i++) {
		size_t n = MIN(c->iov[i].iov_len, (size_t)(len - done));
		memcpy(b + done, c->iov[i].iov_base, n);
		done += (uint32_t)n;
	}
	c->xfer = done;
	return done;
}

/* --- completion ------------------------------------------------------------------ */

/* The FISes, PRDBC, registers and interrupt of a finished command.  Lock held. */
static void report(struct ahci_port *p, struct ahci_cmd *c)
{
	uint32_t bit = 1u << c->slot, irq = c->irq_extra;
	bool err = (c->status & ST_ERR) || (irq & PXI_FATAL);
	if (c->silent) {
		p->ci &= ~bit;
		return;
	}
	(void)gm_write(p->hba->mem, c->hdr_gpa + offsetof(struct ahci_cmd_header, prdbc), &c->xfer, 4);
	if (c->ncq) {
		/* Set Device Bits: the tag done, or (with ERR) the failure the device then stops on. */
		uint8_t sdb[8] = { FIS_SDB, 0x40, c->status & 0x77, c->error };
		if (!err) {
			memcpy(sdb + 4, &bit, 4);
			p->sact &= ~bit;
		} else {
			struct ahci_dev *d = p->dev;
			d->ncq_err = true;
			d->ncq_tag = (uint8_t)c->slot;
			d->ncq_status = c->status;
			d->ncq_error = c->error;
			d->ncq_lba = c->lba;
		}
		p->tfd = (uint32_t)c->error << 8 | (c->status & 0x77) | (p->tfd & 0x88); /* SDB leaves BSY and DRQ */
		write_fis(p, RFIS_SDB, sdb, sizeof(sdb));
		irq |= PXI_SDBS;
	} else {
		uint8_t f[FIS_LEN] = { 0 };
		memcpy(f, c->rfis, sizeof(f));
		f[FIS_TYPE] = FIS_D2H;
		f[FIS_FLAGS] = 0x40;
		f[FIS_CMD] = c->status;
		f[FIS_FEAT] = c->error;
		if (c->proto == PROTO_PIO_IN || c->proto == PROTO_PIO_OUT) {
			/* PIO setup: status and E_Status final (firmware reads it), transfer count, I only for data-in. */
			bool in = c->proto == PROTO_PIO_IN;
			uint8_t ps[FIS_LEN] = { FIS_PIO, in ? 0x60 : 0, c->status, c->error };
			ps[15] = c->status;
			ps[16] = (uint8_t)c->xfer;
			ps[17] = (uint8_t)(c->xfer >> 8);
			write_fis(p, RFIS_PIO, ps, sizeof(ps));
			if (in)
				irq |= PXI_PSS;
		}
		write_fis(p, RFIS_D2H, f, sizeof(f));
		irq |= PXI_DHRS;
		p->tfd = (uint32_t)c->error << 8 | c->status;
		if (!err)
			p->ci &= ~bit;
	}
	if (c->status & ST_ERR)
		irq |= PXI_TFES;
	if (err)
		p->halted = true; /* until the guest clears ST (AHCI 6.2.2) */
	else if (c->prd_irq)
		irq |= PXI_DPS;
	ahci_raise(p, irq);
}

/* Retire c (lock held): report it, or for an aborted one only release it and finish waiting resets. */
static void retire(struct ahci_port *p, struct ahci_cmd *c)
{
	struct ahci *a = p->hba;
	uint32_t bit = 1u << c->slot;
	p->busy &= ~bit;
	p->ncq_busy &= ~bit;
	p->fetched &= ~bit;
	if (!c->ncq)
		p->exclusive = false;
	if (p->aborted & bit) {
		p->aborted &= ~bit;
		c->aborted = false;
		ahci_port_reset_finish(p);
		if (a->hr_pending && !ahci_draining(a))
			a->hr_pending = false;
		pthread_cond_broadcast(&a->idle);
		return;
	}
	report(p, c);
}

/* Finish c now (no lock held): retire it, bring the interrupt line up to date, let the engine go on. */
static void complete(struct ahci_port *p, struct ahci_cmd *c)
{
	struct ahci *a = p->hba;
	pthread_mutex_lock(&a->lock);
	a->active++; /* a destroy waits until we are out */
	retire(p, c);
	pthread_mutex_unlock(&a->lock);
	ahci_irq_sync(a);
	ahci_port_run(p);
	pthread_mutex_lock(&a->lock);
	if (--a->active == 0)
		pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
}

/* Every block request of c is back: translate the status, finish it. */
static void requests_done(struct ahci_cmd *c)
{
	int status = atomic_load(&c->blk_status);
	if (c->blk_done)
		c->blk_done(c, status);
	else if (status)
		c->status = ST_OK | ST_ERR, c->error = ER_ABRT;
	complete(c->port, c);
}

/* Drop n references of c; the last one finishes it (lock held: only silently, it was aborted). */
static void drop_refs(struct ahci_port *p, struct ahci_cmd *c, unsigned n)
{
	if (atomic_fetch_sub(&c->refs, n) == n)
		retire(p, c);
}

static void blk_done(struct blk_req *r)
{
	struct ahci_cmd *c = r->opaque;
	int zero = 0;
	if (r->status)
		atomic_compare_exchange_strong(&c->blk_status, &zero, r->status);
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		requests_done(c);
}

/* Submit c's requests from c->next on.  False if the stack is full (c is stalled till a completion). */
static bool submit(struct ahci_port *p, struct ahci_cmd *c)
{
	struct ahci *a = p->hba;
	while (c->next < c->nreq) {
		struct blk_req *r = &c->reqs[c->next];
		r->done = blk_done;
		r->opaque = c;
		int e = blk_submit(p->dev->disk, r);
		if (e == -EAGAIN) {
			pthread_mutex_lock(&a->lock);
			bool aborted = c->aborted;
			if (!aborted)
				p->stalled |= 1u << c->slot; /* an abort from now on drops the rest (abort_all()) */
			pthread_mutex_unlock(&a->lock);
			if (!aborted)
				return false;
			break;
		}
		c->next++;
		if (e) {
			int zero = 0;
			atomic_compare_exchange_strong(&c->blk_status, &zero, e);
			if (atomic_fetch_sub(&c->refs, 1) == 1)
				requests_done(c); /* cannot be the last: the submitter holds one */
		}
	}
	/* The submitter's reference, and those of requests an abort kept from going out. */
	unsigned n = 1 + (c->nreq - c->next);
	c->next = c->nreq;
	if (atomic_fetch_sub(&c->refs, n) == n)
		requests_done(c);
	return true;
}

/* --- the engine ---------------------------------------------------------------- */

/* Copy slot s's header, command FIS and packet.  0, or a fatal PxIS bit (lock held). */
static uint32_t fetch(struct ahci_port *p, struct ahci_cmd *c)
{
	const struct guest_mem *mem = p->hba->mem;
	struct ahci_cmd_header h;
	if (gpa_wraps(clb(p), 1024))
		return PXI_HBFS;
	c->hdr_gpa = clb(p) + sizeof(h) * c->slot;
	if (gm_read(mem, c->hdr_gpa, &h, sizeof(h)))
		return PXI_HBFS;
	c->hdr_flags = h.flags;
	c->ctba = ((uint64_t)h.ctbau << 32 | h.ctba) & ~0x7full;
	if (gpa_wraps(c->ctba, CT_PRDT + 16ull * 65536)) /* the table with the longest PRDT */
		return PXI_HBFS;
	if (gm_read(mem, c->ctba + CT_CFIS, c->fis, FIS_LEN))
		return PXI_HBFS;
	if (c->fis[FIS_TYPE] != FIS_H2D)
		return PXI_IFS;
	memset(c->cdb, 0, sizeof(c->cdb));
	if ((c->fis[FIS_FLAGS] & FIS_C) && c->fis[FIS_CMD] == 0xa0 && gm_read(mem, c->ctba + CT_ACMD, c->cdb, 16))
		return PXI_HBFS;
	c->ncq = (c->fis[FIS_FLAGS] & FIS_C) && !p->dev->atapi && ahci_ata_is_ncq(c->fis);
	return 0;
}

/* The next command to start, made busy; NULL if none may start now.  Lock held. */
static struct ahci_cmd *next_command(struct ahci_port *p)
{
	if (!p->dev || !(p->cmd & PXC_ST) || p->halted || p->aborted || p->reset_pending || p->exclusive ||
	    !atomic_load(&p->hba->master))
		return NULL;
	uint32_t pend = p->ci & ~p->busy;
	for (unsigned k = 1; pend && k <= AHCI_SLOTS; k++) {
		unsigned s = (p->ccs + k) % AHCI_SLOTS;
		uint32_t bit = 1u << s;
		if (!(pend & bit))
			continue;
		struct ahci_cmd *c = &p->cmds[s];
		if (!(p->fetched & bit)) {
			uint32_t fatal = fetch(p, c);
			if (fatal) {
				/* The command list or table is not in RAM, or not a command: the port halts. */
				p->halted = true;
				ahci_raise(p, fatal);
				atomic_store(&p->irq_dirty, true);
				return NULL;
			}
			p->fetched |= bit;
		}
		if (!c->ncq && p->busy)
			return NULL; /* a non-queued command waits for the queued ones */
		p->busy |= bit;
		p->ccs = s;
		if (c->ncq) {
			p->ncq_busy |= bit;
			p->ci &= ~bit; /* accepted: from now on only SACT tracks it */
		} else {
			p->exclusive = true;
		}
		c->aborted = false;
		return c;
	}
	return NULL;
}

/* A device control FIS (C clear): software reset asserted, then released. */
static void control(struct ahci_port *p, struct ahci_cmd *c)
{
	pthread_mutex_lock(&p->hba->lock);
	if (c->fis[FIS_CTL] & CTL_SRST) {
		p->tfd = (c->hdr_flags & HDR_CLR_BUSY) ? ST_OK : ST_BSY;
	} else if (!c->aborted) {
		ahci_dev_reset(p->dev);
		p->tfd = 0x100 | ST_OK;
		send_signature(p);
	}
	pthread_mutex_unlock(&p->hba->lock);
	c->silent = true;
}

static void execute(struct ahci_port *p, struct ahci_cmd *c)
{
	c->status = ST_OK;
	c->error = 0;
	c->xfer = 0;
	memset(c->rfis, 0, sizeof(c->rfis));
	c->irq_extra = 0;
	c->iovcnt = 0;
	c->iov_bytes = 0;
	c->prd_irq = false;
	c->nreq = c->next = 0;
	c->reqs = NULL;
	c->blk_done = NULL;
	c->proto = PROTO_NODATA;
	c->silent = false;
	c->lba = 0;
	atomic_store(&c->blk_status, 0);
	if (!(c->fis[FIS_FLAGS] & FIS_C)) {
		control(p, c);
		complete(p, c);
		return;
	}
	if (ahci_ata_exec(p->dev, c) == EXEC_DONE || !c->nreq) {
		complete(p, c);
		return;
	}
	atomic_store(&c->refs, c->nreq + 1);
	submit(p, c);
}

/* One unit of work: resubmit a stalled command or start the next one.  False when there is none. */
static bool step(struct ahci_port *p)
{
	struct ahci *a = p->hba;
	pthread_mutex_lock(&a->lock);
	uint32_t st = p->stalled;
	if (st) {
		struct ahci_cmd *c = &p->cmds[__builtin_ctz(st)];
		p->stalled &= ~(1u << c->slot);
		pthread_mutex_unlock(&a->lock);
		return submit(p, c);
	}
	struct ahci_cmd *c = next_command(p);
	pthread_mutex_unlock(&a->lock);
	if (!c)
		return false;
	execute(p, c);
	return true;
}

void ahci_port_run(struct ahci_port *p)
{
	/* One runner per port; whoever finds it busy leaves a request, and the runner goes round again. */
	if (atomic_fetch_add(&p->pump, 1))
		return;
	bool did = false;
	do {
		atomic_store(&p->pump, 1);
		while (step(p))
			did = true;
	} while (atomic_fetch_sub(&p->pump, 1) != 1);
	/* Completions bring INTx up to date themselves; a command list that could not be fetched did not. */
	if (did || atomic_exchange(&p->irq_dirty, false))
		ahci_irq_sync(p->hba);
}
