// SPDX-License-Identifier: MIT
/*
 * The AHCI controller as a PCI function: ICH9's identity (8086:2922, class
 * 01:06:01), the HBA registers in BAR5 (ABAR), a plain MSI capability (one
 * message, 64-bit) delivered through an irqfd and its GSI route, and INTA#
 * through pci_dev_set_intx() while MSI is off.  The ports' registers and
 * their command engines are port.c's.
 *
 * Interrupts: the controller interrupts while GHC.IE is set and some port
 * has a PxIS bit that its PxIE enables (IS reads which ports).  With MSI,
 * every new such event sends a message (a driver that acknowledged the
 * older ones misses none), as does enabling an interrupt that is already
 * pending; without it INTA# is held at that level.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/util.h"
#include "internal.h"
#include "vmm/irq_route.h"
#include "vmm/vm.h"

#define ICH9_AHCI_VENDOR 0x8086
#define ICH9_AHCI_DEVICE 0x2922
#define ICH9_AHCI_CLASS 0x010601 /* mass storage, SATA, AHCI 1.0 */
#define ICH9_AHCI_REV 0x02
#define ICH9_PCS 0x92 /* port control and status: ports enabled (5:0), present (13:8) */
#define AHCI_VERSION 0x00010200 /* AHCI 1.2, as ICH9 */
#define PCI_CAP_ID_MSI 0x05

struct msi_cap {
	uint8_t id, next;
	uint16_t control; /* enable 0, MMC 3:1 (one message), MME 6:4, 64-bit 7 */
	uint32_t addr_lo, addr_hi;
	uint16_t data;
} __attribute__((packed));
static_assert(sizeof(struct msi_cap) == 14, "MSI capability layout");
#define MSI_ENABLE 0x0001
#define MSI_64BIT 0x0080

/* --- interrupts ---------------------------------------------------------- */

bool ahci_pending(const struct ahci *a)
{
	if (!(a->ghc & GHC_IE))
		return false;
	for (unsigned i = 0; i < AHCI_PORTS; i++)
		if (a->port[i].is & a->port[i].ie)
			return true;
	return false;
}

static void msi_fire(struct ahci *a)
{
	uint64_t one = 1;
	(void)!write(a->msi_fd, &one, sizeof(one));
}

void ahci_raise(struct ahci_port *p, uint32_t bits)
{
	struct ahci *a = p->hba;
	p->is |= bits;
	if (a->msi_enabled && (a->ghc & GHC_IE) && (bits & p->ie))
		msi_fire(a);
}

void ahci_irq_sync(struct ahci *a)
{
	/* intx_lock keeps level decisions and the calls that carry them out in one order. */
	pthread_mutex_lock(&a->intx_lock);
	pthread_mutex_lock(&a->lock);
	bool level = ahci_pending(a) && !a->msi_enabled;
	pthread_mutex_unlock(&a->lock);
	if (level != a->intx_level) {
		a->intx_level = level;
		pci_dev_set_intx(&a->pci, level);
	}
	pthread_mutex_unlock(&a->intx_lock);
}

/* --- HBA registers --------------------------------------------------------- */

static uint32_t hba_read(struct ahci *a, unsigned reg)
{
	switch (reg) {
	case HBA_CAP:
		return CAP_S64A | CAP_SNCQ | CAP_SCLO | CAP_ISS_GEN2 | CAP_SAM | (AHCI_SLOTS - 1) << 8 | (AHCI_PORTS - 1);
	case HBA_GHC:
		return a->ghc | GHC_AE | (a->hr_pending ? GHC_HR : 0);
	case HBA_IS: {
		uint32_t is = 0;
		for (unsigned i = 0; i < AHCI_PORTS; i++)
			if (a->port[i].is & a->port[i].ie)
				is |= 1u << i;
		return is;
	}
	case HBA_PI:
		return (1u << AHCI_PORTS) - 1;
	case HBA_VS:
		return AHCI_VERSION;
	default:
		return 0; /* CCC, enclosure management, CAP2, BOHC: not implemented */
	}
}

/* GHC.HR: every port and the global registers back to their reset state; HR reads 1 until nothing aborted is in flight. */
static void hba_reset(struct ahci *a)
{
	a->ghc = 0;
	for (unsigned i = 0; i < AHCI_PORTS; i++)
		ahci_port_reset(&a->port[i], true);
	a->hr_pending = ahci_draining(a);
}

static uint32_t reg_read(struct ahci *a, unsigned dw)
{
	if (dw < HBA_PORTS)
		return hba_read(a, dw);
	unsigned i = (dw - HBA_PORTS) / HBA_PORT_SIZE;
	return i < AHCI_PORTS ? ahci_port_read(&a->port[i], (dw - HBA_PORTS) % HBA_PORT_SIZE) : 0;
}

/* Write the bytes of val that mask selects into register dw.  Lock held; run[i]: port i has work. */
static void reg_write(struct ahci *a, unsigned dw, uint32_t val, uint32_t mask, bool *run)
{
	if (dw == HBA_GHC) {
		if (val & mask & GHC_HR)
			hba_reset(a);
		else
			a->ghc = ((a->ghc & ~mask) | (val & mask)) & GHC_IE;
		return;
	}
	if (dw < HBA_PORTS)
		return; /* CAP and PI are read-only here (drivers write them back), IS is computed */
	unsigned i = (dw - HBA_PORTS) / HBA_PORT_SIZE;
	if (i < AHCI_PORTS)
		run[i] |= ahci_port_write(&a->port[i], (dw - HBA_PORTS) % HBA_PORT_SIZE, val, mask);
}

uint64_t ahci_mmio_read(struct ahci *a, uint64_t off, unsigned size)
{
	if (size > 8 || off >= AHCI_ABAR_SIZE || size > AHCI_ABAR_SIZE - off)
		return 0;
	uint64_t v = 0;
	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < size;) {
		uint64_t o = off + i;
		unsigned b = (unsigned)(o & 3), n = MIN(4 - b, size - i);
		uint32_t r = reg_read(a, (unsigned)(o & ~3ull)) >> (8 * b);
		v |= (uint64_t)(r & (uint32_t)io_ones(n)) << (8 * i);
		i += n;
	}
	pthread_mutex_unlock(&a->lock);
	return v;
}

void ahci_mmio_write(struct ahci *a, uint64_t off, unsigned size, uint64_t value)
{
	if (size > 8 || off >= AHCI_ABAR_SIZE || size > AHCI_ABAR_SIZE - off)
		return;
	bool run[AHCI_PORTS] = { false };
	pthread_mutex_lock(&a->lock);
	bool before = ahci_pending(a);
	for (unsigned i = 0; i < size;) {
		uint64_t o = off + i;
		unsigned b = (unsigned)(o & 3), n = MIN(4 - b, size - i);
		uint32_t bytes = (uint32_t)(value >> (8 * i)) & (uint32_t)io_ones(n);
		reg_write(a, (unsigned)(o & ~3ull), bytes << (8 * b), (uint32_t)io_ones(n) << (8 * b), run);
		i += n;
	}
	if (!before && ahci_pending(a) && a->msi_enabled)
		msi_fire(a);
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < AHCI_PORTS; i++)
		if (run[i])
			ahci_port_run(&a->port[i]);
	ahci_irq_sync(a);
}

static uint64_t abar_read(void *opaque, uint64_t off, unsigned size)
{
	return ahci_mmio_read(opaque, off, size);
}

static void abar_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	ahci_mmio_write(opaque, off, size, value);
}

static const struct io_ops abar_ops = { abar_read, abar_write };

/* --- configuration space --------------------------------------------------- */

/* Bus lock held: never call back into the bus (pci_dev_set_intx()); our lock nests inside it. */
static void config_written(struct pci_dev *d, unsigned off, unsigned size)
{
	struct ahci *a = d->opaque;
	if (off < PCI_COMMAND + 2 && off + size > PCI_COMMAND)
		atomic_store(&a->master, (d->cfg[PCI_COMMAND] & PCI_COMMAND_MASTER) != 0);
	unsigned m = a->msi_cap;
	if (off >= m + sizeof(struct msi_cap) || off + size <= m + 2)
		return;
	uint16_t ctl = (uint16_t)(d->cfg[m + 2] | d->cfg[m + 3] << 8);
	uint64_t addr = (uint64_t)pci_cfg32(d, m + 8) << 32 | pci_cfg32(d, m + 4);
	uint32_t data = (uint32_t)(d->cfg[m + 12] | d->cfg[m + 13] << 8);
	pthread_mutex_lock(&a->lock);
	bool was = a->msi_enabled;
	a->msi_enabled = ctl & MSI_ENABLE;
	if (a->vm && (a->msi_addr != addr || a->msi_data != data || was != a->msi_enabled)) {
		int r = irq_msi_update(&a->vm->irq, a->gsi, a->msi_enabled && addr, addr, data);
		if (r)
			log_debug("%s: MSI route: %s", a->name, strerror(-r));
	}
	a->msi_addr = addr;
	a->msi_data = data;
	if (a->msi_enabled && !was && ahci_pending(a))
		msi_fire(a);
	pthread_mutex_unlock(&a->lock);
	/* INTA# follows at the next register access or completion (ahci_irq_sync()). */
}

static int build_config_space(struct ahci *a, unsigned present)
{
	struct pci_dev *d = &a->pci;
	pci_dev_init_header(d, ICH9_AHCI_VENDOR, ICH9_AHCI_DEVICE, ICH9_AHCI_CLASS, ICH9_AHCI_REV);
	d->cfg[PCI_INT_PIN] = 1; /* INTA# */
	pci_dev_set_bar(d, 5, AHCI_ABAR_SIZE, &abar_ops, a);
	d->opaque = a;
	d->config_written = config_written;
	struct msi_cap msi = { .id = PCI_CAP_ID_MSI, .control = MSI_64BIT };
	int r = pci_dev_add_cap(d, &msi, sizeof(msi));
	if (r < 0)
		return r;
	a->msi_cap = (unsigned)r;
	d->wmask[r + offsetof(struct msi_cap, control)] = MSI_ENABLE | 0x70; /* enable, MME */
	memset(d->wmask + r + offsetof(struct msi_cap, addr_lo), 0xff, 10);
	d->wmask[r + offsetof(struct msi_cap, addr_lo)] = 0xfc; /* dword aligned */
	/* ICH9's PCS: every port enabled, and which have a device (Linux's Intel quirk reads it). */
	d->cfg[ICH9_PCS] = (1u << AHCI_PORTS) - 1;
	d->cfg[ICH9_PCS + 1] = (uint8_t)present;
	d->wmask[ICH9_PCS] = (1u << AHCI_PORTS) - 1;
	return 0;
}

/* --- life cycle ------------------------------------------------------------ */

static int attach(struct ahci *a, struct ahci_port *p, const struct ahci_drive *drv)
{
	struct ahci_dev *d = &a->devs[p->index];
	struct blk_dev *disk = drv->disk;
	d->disk = disk;
	d->atapi = drv->media == BLK_MEDIA_CDROM;
	d->read_only = disk->read_only || d->atapi;
	d->sector = d->atapi ? ATAPI_SECTOR : disk->block_size;
	if (!d->sector || d->sector % disk->block_size || (!d->atapi && d->sector != 512 && d->sector != 4096)) {
		log_error("%s: port %u: a %u-byte block size does not fit a %s", a->name, p->index, disk->block_size,
			  d->atapi ? "CD-ROM's 2048-byte sectors" : "SATA disk (512 or 4096)");
		return -EINVAL;
	}
	d->sectors = disk->size / d->sector;
	if (drv->serial && *drv->serial)
		snprintf(d->serial, sizeof(d->serial), "%s", drv->serial);
	else
		snprintf(d->serial, sizeof(d->serial), "KEEL-AHCI-%u", p->index);
	snprintf(d->model, sizeof(d->model), "%s", d->atapi ? "keel DVD-ROM" : "keel SATA disk");
	p->cmds = calloc(AHCI_SLOTS, sizeof(*p->cmds));
	if (!p->cmds)
		return -ENOMEM;
	for (unsigned s = 0; s < AHCI_SLOTS; s++) {
		p->cmds[s].port = p;
		p->cmds[s].slot = s;
	}
	p->dev = d;
	return 0;
}

struct pci_dev *ahci_pci_dev(struct ahci *a)
{
	return &a->pci;
}

int ahci_msi_fd(struct ahci *a)
{
	return a->msi_fd;
}

struct ahci *ahci_new(const struct guest_mem *mem, struct vm *vm, const struct ahci_drive *drives, unsigned n)
{
	if (n > AHCI_PORTS) {
		log_error("ahci: %u disks and CD-ROMs, but the controller has %u ports", n, AHCI_PORTS);
		return NULL;
	}
	struct ahci *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	snprintf(a->name, sizeof(a->name), "ahci");
	a->mem = mem;
	a->vm = vm;
	a->msi_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->intx_lock, NULL);
	pthread_cond_init(&a->idle, NULL);
	if (a->msi_fd < 0)
		goto free_a;
	unsigned present = 0;
	for (unsigned i = 0; i < AHCI_PORTS; i++) {
		a->port[i].hba = a;
		a->port[i].index = i;
		if (i < n && drives[i].disk) {
			if (attach(a, &a->port[i], &drives[i]))
				goto free_ports;
			present |= 1u << i;
		}
	}
	if (build_config_space(a, present))
		goto free_ports;
	if (vm) {
		if (irq_msi_alloc(&vm->irq, &a->gsi) || irq_irqfd(&vm->irq, a->msi_fd, a->gsi, true)) {
			log_error("%s: cannot set up its MSI", a->name);
			goto free_ports;
		}
		a->irqfd = true;
	}
	hba_reset(a); /* nothing in flight: complete at once */
	return a;

free_ports:
	for (unsigned i = 0; i < AHCI_PORTS; i++)
		free(a->port[i].cmds);
	close(a->msi_fd);
free_a:
	pthread_cond_destroy(&a->idle);
	pthread_mutex_destroy(&a->intx_lock);
	pthread_mutex_destroy(&a->lock);
	free(a);
	return NULL;
}

void ahci_free(struct ahci *a)
{
	if (!a)
		return;
	/* Abort everything, then wait until no completion of ours runs any more. */
	pthread_mutex_lock(&a->lock);
	hba_reset(a);
	while (ahci_draining(a) || a->active)
		pthread_cond_wait(&a->idle, &a->lock);
	pthread_mutex_unlock(&a->lock);
	if (a->intx_level)
		pci_dev_set_intx(&a->pci, false);
	/* The VM outlives its devices (guest reboots): take back what was bound to its descriptors. */
	if (a->irqfd) {
		(void)irq_msi_update(&a->vm->irq, a->gsi, false, 0, 0);
		(void)irq_irqfd(&a->vm->irq, a->msi_fd, a->gsi, false);
	}
	close(a->msi_fd);
	for (unsigned i = 0; i < AHCI_PORTS; i++)
		free(a->port[i].cmds);
	pthread_cond_destroy(&a->idle);
	pthread_mutex_destroy(&a->intx_lock);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int ahci_create_all(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	unsigned n = vm_config_disks_on(cfg, BLK_IF_AHCI);
	vm->ahci = NULL;
	if (!n)
		return 0;
	struct ahci_drive drives[AHCI_PORTS] = { { 0 } };
	int idx[AHCI_PORTS];
	for (unsigned k = 0; k < n && k < AHCI_PORTS; k++) {
		idx[k] = vm_config_disk_of(cfg, BLK_IF_AHCI, k);
		if (idx[k] >= 0 && (unsigned)idx[k] < vm->nr_disks)
			drives[k] = (struct ahci_drive){ vm->disks[idx[k]], cfg->disks[idx[k]].media, cfg->disks[idx[k]].serial };
	}
	if (!vm->pci)
		return -ENODEV;
	struct ahci *a = ahci_new(&vm->mem, vm, drives, n);
	if (!a)
		return -EINVAL;
	int slot = pci_bus_add(vm->pci, &a->pci, -1);
	if (slot < 0) {
		log_error("%s: no room on the PCI bus: %s", a->name, strerror(-slot));
		ahci_free(a);
		return slot;
	}
	vm->ahci = a;
	/* SeaBIOS names port P's drive /pci@i0cf8/ANY@SLOT/drive@P/disk@0 (any device name). */
	for (unsigned k = 0; k < n; k++)
		vm_set_boot_path(vm, idx[k], "/pci@i0cf8/*@%x/drive@%x/disk@0", (unsigned)slot, k);
	return 0;
}

void ahci_destroy_all(struct vm *vm)
{
	ahci_free(vm->ahci);
	vm->ahci = NULL;
}
