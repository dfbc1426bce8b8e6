// SPDX-License-Identifier: MIT
#include "pci.h"

#include <errno.h>
#include <string.h>

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
	if (r >= 0)
		b->slots[r] = d;
	pthread_mutex_unlock(&b->lock);
	return r;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void pci_dev_init_header(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
			 uint8_t revision)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->w1cmask, 0, sizeof(d->w1cmask));
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
		if (d->config_written)
			d->config_written(d, off, n);
	}
	pthread_mutex_unlock(&b->lock);
}
