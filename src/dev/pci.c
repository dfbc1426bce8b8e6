// SPDX-License-Identifier: MIT
#include "pci.h"

#include <errno.h>
#include <string.h>

#define ALIGN4(x) (((x) + 3u) & ~3u)

void pci_bus_init(struct pci_bus *b)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
}

void pci_bus_destroy(struct pci_bus *b)
{
	pthread_mutex_destroy(&b->lock);
}

int pci_bus_add(struct pci_bus *b, struct pci_dev *d, int slot)
{
	int r = -ENOSPC;
	pthread_mutex_lock(&b->lock);
	if (slot >= PCI_SLOTS) {
		r = -EINVAL;
	} else if (slot >= 0) {
		r = b->slots[slot] ? -EBUSY : slot;
	} else {
		for (int i = 0; i < PCI_SLOTS; i++) {
			if (!b->slots[i]) {
				r = i;
				break;
			}
		}
	}
	if (r >= 0 && pci_dev_assign_bars(d, &b->bar_next, b->bar_limit))
		r = -ENOSPC;
	if (r >= 0) {
		b->slots[r] = d;
		d->bus = b;
		d->slot = (uint8_t)r;
	}
	pthread_mutex_unlock(&b->lock);
	return r;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void pci_dev_set_bar(struct pci_dev *d, unsigned n, uint32_t size, const struct io_ops *ops, void *opaque)
{
	d->bar[n] = (struct pci_bar){ .size = size, .ops = ops, .opaque = opaque };
	/* Memory, 32-bit, not prefetchable: type bits read as 0; the guest sizes by writing ones. */
	put32(d->cfg + PCI_BAR0 + 4 * n, 0);
	put32(d->wmask + PCI_BAR0 + 4 * n, ~(size - 1));
}

int pci_dev_add_cap(struct pci_dev *d, const void *cap, unsigned len)
{
	unsigned off = d->cap_end ? d->cap_end : PCI_CAP_START;
	if (len < 2 || off + len > PCI_CFG_SIZE)
		return -ENOSPC;
	memcpy(d->cfg + off, cap, len);
	d->cfg[off + 1] = 0;
	if (d->cap_end) {
		/* Walk to the last capability and link the new one after it. */
		unsigned p = d->cfg[PCI_CAP_PTR];
		for (unsigned hops = 0; d->cfg[p + 1] && hops < 64; hops++)
			p = d->cfg[p + 1];
		d->cfg[p + 1] = (uint8_t)off;
	} else {
		d->cfg[PCI_CAP_PTR] = (uint8_t)off;
		put16(d->cfg + PCI_STATUS, (uint16_t)(d->cfg[PCI_STATUS] | d->cfg[PCI_STATUS + 1] << 8 |
						      PCI_STATUS_CAP_LIST));
	}
	d->cap_end = (uint16_t)ALIGN4(off + len);
	if (((const uint8_t *)cap)[0] == PCI_CAP_ID_MSI)
		d->msi_cap = (uint16_t)off;
	else if (((const uint8_t *)cap)[0] == PCI_CAP_ID_MSIX)
		d->msix_cap = (uint16_t)off;
	return (int)off;
}

int pci_dev_assign_bars(struct pci_dev *d, uint64_t *next, uint64_t limit)
{
	for (unsigned n = 0; n < PCI_BARS; n++) {
		uint32_t size = d->bar[n].size;
		if (!size)
			continue;
		uint64_t a = (*next + size - 1) & ~(uint64_t)(size - 1);
		if (a + size > limit || a + size < a)
			return -ENOSPC;
		put32(d->cfg + PCI_BAR0 + 4 * n, (uint32_t)a);
		*next = a + size;
	}
	return 0;
}

/* Tell the router where d's pin stands now (bus lock held). */
static void update_intx(struct pci_dev *d)
{
	bool masked = (d->cfg[PCI_COMMAND + 1] & (PCI_COMMAND_INTX_DISABLE >> 8)) ||
		      (d->msi_cap && (d->cfg[d->msi_cap + 2] & 0x01)) ||  /* MSI enable */
		      (d->msix_cap && (d->cfg[d->msix_cap + 3] & 0x80)); /* MSI-X enable */
	bool on = d->intx_level && !masked;
	if (d->intx_level)
		d->cfg[PCI_STATUS] |= PCI_STATUS_INTX;
	else
		d->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTX;
	unsigned pin = d->cfg[PCI_INT_PIN];
	if (on == d->intx_routed || pin < 1 || pin > 4)
		return;
	d->intx_routed = on;
	if (d->bus && d->bus->route_intx)
		d->bus->route_intx(d->bus->route_opaque, d->slot, pin, on);
}

void pci_dev_set_intx(struct pci_dev *d, bool level)
{
	if (!d->bus) {
		d->intx_level = level;
		return;
	}
	pthread_mutex_lock(&d->bus->lock);
	d->intx_level = level;
	update_intx(d);
	pthread_mutex_unlock(&d->bus->lock);
}

/* Recompute which addresses d's BARs decode after a write to COMMAND or a BAR. */
static void update_decoding(struct pci_dev *d)
{
	bool mem = d->cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY;
	for (unsigned n = 0; n < PCI_BARS; n++) {
		struct pci_bar *bar = &d->bar[n];
		if (!bar->size)
			continue;
		uint64_t a = get32(d->cfg + PCI_BAR0 + 4 * n) & ~0xfu;
		/* A BAR left at its sizing pattern or at 0 decodes nothing. */
		uint64_t now = mem && a && a + bar->size <= 0x100000000ull && a != (uint32_t)~(bar->size - 1) ? a : 0;
		if (now == bar->decoded)
			continue;
		uint64_t old = bar->decoded;
		bar->decoded = now;
		if (d->bar_moved)
			d->bar_moved(d, n, old, now);
	}
}

void pci_dev_init_header(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
			 uint8_t revision)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->w1cmask, 0, sizeof(d->w1cmask));
	memset(d->bar, 0, sizeof(d->bar));
	d->cap_end = 0;
	d->msi_cap = d->msix_cap = 0;
	put16(d->cfg + PCI_VENDOR_ID, vendor);
	put16(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION] = revision;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
	d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
	/* Command: I/O, memory, bus master, SERR, INTx disable. */
	put16(d->wmask + PCI_COMMAND, 0x0107 | 0x0400);
	/* Status: the error bits are write-1-to-clear. */
	put16(d->w1cmask + PCI_STATUS, 0xf900);
	d->wmask[PCI_CACHE_LINE] = 0xff;
	d->wmask[PCI_LATENCY] = 0xff;
	d->wmask[PCI_INT_LINE] = 0xff;
}

static struct pci_dev *lookup(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn)
{
	if (bus != 0 || fn != 0 || dev >= PCI_SLOTS)
		return NULL;
	return b->slots[dev];
}

uint32_t pci_config_read(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn, unsigned off,
			 unsigned size)
{
	uint32_t v = 0;
	pthread_mutex_lock(&b->lock);
	struct pci_dev *d = lookup(b, bus, dev, fn);
	if (!d) {
		v = 0xffffffffu;
	} else {
		if (d->config_reading && off < PCI_CFG_SIZE)
			d->config_reading(d, off, size);
		for (unsigned i = 0; i < size; i++)
			v |= off + i < PCI_CFG_SIZE ? (uint32_t)d->cfg[off + i] << (8 * i) : 0;
	}
	pthread_mutex_unlock(&b->lock);
	return size >= 4 ? v : v & ((1u << (8 * size)) - 1);
}

void pci_config_write(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn, unsigned off,
		      unsigned size, uint32_t value)
{
	pthread_mutex_lock(&b->lock);
	struct pci_dev *d = lookup(b, bus, dev, fn);
	if (d && off < PCI_CFG_SIZE) {
		unsigned n = size;
		if (n > PCI_CFG_SIZE - off)
			n = PCI_CFG_SIZE - off;
		for (unsigned i = 0; i < n; i++) {
			uint8_t byte = (uint8_t)(value >> (8 * i));
			uint8_t *c = &d->cfg[off + i];
			*c = (uint8_t)((*c & ~d->wmask[off + i]) | (byte & d->wmask[off + i]));
			*c &= (uint8_t)~(byte & d->w1cmask[off + i]);
		}
		if (off < PCI_COMMAND + 2 || (off < PCI_BAR0 + 4 * PCI_BARS && off + n > PCI_BAR0))
			update_decoding(d);
		update_intx(d); /* COMMAND, or an MSI/MSI-X enable bit */
		if (d->config_written)
			d->config_written(d, off, n);
	}
	pthread_mutex_unlock(&b->lock);
}

/* Find the BAR decoding [addr, addr+size); the device is never freed while the bus lives. */
static struct pci_bar *lookup_bar(struct pci_bus *b, uint64_t addr, unsigned size, uint64_t *off)
{
	struct pci_bar *found = NULL;
	pthread_mutex_lock(&b->lock);
	for (unsigned s = 0; s < PCI_SLOTS && !found; s++) {
		struct pci_dev *d = b->slots[s];
		for (unsigned n = 0; d && n < PCI_BARS; n++) {
			struct pci_bar *bar = &d->bar[n];
			if (bar->decoded && addr >= bar->decoded && addr - bar->decoded < bar->size &&
			    size <= bar->size - (addr - bar->decoded)) {
				*off = addr - bar->decoded;
				found = bar;
				break;
			}
		}
	}
	pthread_mutex_unlock(&b->lock);
	return found;
}

bool pci_mmio_read(struct pci_bus *b, uint64_t addr, unsigned size, uint64_t *value)
{
	uint64_t off;
	struct pci_bar *bar = lookup_bar(b, addr, size, &off);
	if (!bar)
		return false;
	*value = bar->ops->read(bar->opaque, off, size) & io_ones(size);
	return true;
}

bool pci_mmio_write(struct pci_bus *b, uint64_t addr, unsigned size, uint64_t value)
{
	uint64_t off;
	struct pci_bar *bar = lookup_bar(b, addr, size, &off);
	if (!bar)
		return false;
	bar->ops->write(bar->opaque, off, size, value);
	return true;
}
