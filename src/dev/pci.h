// SPDX-License-Identifier: MIT
/*
 * PCI bus 0 and type-0 configuration space emulation.  A device owns a
 * 256-byte config space with per-byte write masks and write-1-to-clear
 * masks; the bus applies them, so a device only sees the resulting value
 * through its config_written hook.  Access mechanisms (port 0xcf8/0xcfc and
 * ECAM) live in the host bridge device.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"

#define PCI_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_BARS 6

/*
 * A 32-bit memory BAR.  keel assigns its address when the device is added
 * (as firmware would); the guest may move it, and the bus decodes the BAR
 * wherever it currently points while memory decoding is on.
 */
struct pci_bar {
	uint32_t size; /* power of two >= 4 KiB; 0: BAR unused */
	const struct io_ops *ops;
	void *opaque;
	uint64_t decoded; /* address the bus decodes now; 0: not decoded */
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits a written 1 clears */
	uint16_t cap_end;              /* next free config offset for a capability */
	struct pci_bar bar[PCI_BARS];
	/* Optional: called (bus lock held) after the guest wrote [off, off+size). */
	void (*config_written)(struct pci_dev *d, unsigned off, unsigned size);
	/* Optional: called (bus lock held) before a read of [off, off+size) to refresh cfg. */
	void (*config_reading)(struct pci_dev *d, unsigned off, unsigned size);
	/* Optional: called (bus lock held) when a BAR's decoded address changes (0: off). */
	void (*bar_moved)(struct pci_dev *d, unsigned bar, uint64_t old_addr, uint64_t new_addr);
	void *opaque;
	struct pci_bus *bus; /* set by pci_bus_add() */
	uint8_t slot;
	uint16_t msi_cap, msix_cap; /* their config offsets once added (pci_dev_add_cap()); 0: none */
	bool intx_level;   /* the device's pin, as it drives it */
	bool intx_routed;  /* what the router was last told (level and not disabled) */
};

struct pci_bus {
	pthread_mutex_t lock;
	struct pci_dev *slots[PCI_SLOTS]; /* function 0 only */
	uint64_t bar_next, bar_limit;     /* where pci_bus_add() places BARs */
	/* The host bridge's INTx router (PIRQ links); NULL: INTx goes nowhere.  Called with the bus lock held. */
	void (*route_intx)(void *opaque, unsigned slot, unsigned pin, bool level);
	void *route_opaque;
};

void pci_bus_init(struct pci_bus *b);
void pci_bus_destroy(struct pci_bus *b);
/* Put d in a free slot (slot < 0: first free) and give its BARs addresses.  Returns the slot or -errno. */
int pci_bus_add(struct pci_bus *b, struct pci_dev *d, int slot);

/* Config access for bus 0 (other buses are empty).  Unpopulated reads are all-ones. */
uint32_t pci_config_read(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn, unsigned off,
			 unsigned size);
void pci_config_write(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn, unsigned off,
		      unsigned size, uint32_t value);

/* Declare BAR n as a 32-bit memory BAR of size bytes decoded by ops. */
void pci_dev_set_bar(struct pci_dev *d, unsigned n, uint32_t size, const struct io_ops *ops, void *opaque);
/*
 * Append a capability of len bytes (cap[0] is its ID; the next pointer at
 * cap[1] is filled in).  Returns its config-space offset, or -ENOSPC.
 */
int pci_dev_add_cap(struct pci_dev *d, const void *cap, unsigned len);
/* Give d's BARs addresses in [*next, limit), naturally aligned; advances *next.  0 or -ENOSPC. */
int pci_dev_assign_bars(struct pci_dev *d, uint64_t *next, uint64_t limit);
/* An access to the PCI memory window: dispatch to the BAR that decodes addr.  False if none. */
bool pci_mmio_read(struct pci_bus *b, uint64_t addr, unsigned size, uint64_t *value);
bool pci_mmio_write(struct pci_bus *b, uint64_t addr, unsigned size, uint64_t value);

/* Fill the read-only identity of a type-0 header and the standard writable bits. */
void pci_dev_init_header(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
			 uint8_t revision);

/*
 * Drive d's legacy interrupt pin (INTA#..INTD# as its INTERRUPT_PIN register
 * says; 0: none) to level.  The bus masks it while COMMAND's INTx-disable
 * bit is set or MSI or MSI-X is enabled (a function that signals by message
 * must not use INTx), reflects it in STATUS bit 3, and the host bridge
 * routes it.
 * Any thread; do not hold the bus lock.
 */
void pci_dev_set_intx(struct pci_dev *d, bool level);

/* The little-endian dword at config offset off (off + 4 <= PCI_CFG_SIZE). */
static inline uint32_t pci_cfg32(const struct pci_dev *d, unsigned off)
{
	return (uint32_t)d->cfg[off] | (uint32_t)d->cfg[off + 1] << 8 | (uint32_t)d->cfg[off + 2] << 16 |
	       (uint32_t)d->cfg[off + 3] << 24;
}

/* Standard header offsets. */
enum {
	PCI_VENDOR_ID = 0x00,
	PCI_DEVICE_ID = 0x02,
	PCI_COMMAND = 0x04,
	PCI_STATUS = 0x06,
	PCI_REVISION = 0x08,
	PCI_CLASS_PROG = 0x09,
	PCI_CACHE_LINE = 0x0c,
	PCI_LATENCY = 0x0d,
	PCI_HEADER_TYPE = 0x0e,
	PCI_BAR0 = 0x10,
	PCI_SUBSYS_VENDOR = 0x2c,
	PCI_SUBSYS_ID = 0x2e,
	PCI_CAP_PTR = 0x34,
	PCI_INT_LINE = 0x3c,
	PCI_INT_PIN = 0x3d,
	PCI_CAP_START = 0x40,
};

#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTX 0x0008
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
