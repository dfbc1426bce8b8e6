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

#define PCI_SLOTS 32
#define PCI_CFG_SIZE 256

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits a written 1 clears */
	/* Optional: called (bus lock held) after the guest wrote [off, off+size). */
	void (*config_written)(struct pci_dev *d, unsigned off, unsigned size);
	void *opaque;
};

struct pci_bus {
	pthread_mutex_t lock;
	struct pci_dev *slots[PCI_SLOTS]; /* function 0 only */
};

void pci_bus_init(struct pci_bus *b);
void pci_bus_destroy(struct pci_bus *b);
/* Put d in a free slot (slot < 0: first free).  Returns the slot or -errno. */
int pci_bus_add(struct pci_bus *b, struct pci_dev *d, int slot);

/* Config access for bus 0 (other buses are empty).  Unpopulated reads are all-ones. */
uint32_t pci_config_read(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn, unsigned off,
			 unsigned size);
void pci_config_write(struct pci_bus *b, unsigned bus, unsigned dev, unsigned fn, unsigned off,
		      unsigned size, uint32_t value);

/* Fill the read-only identity of a type-0 header and the standard writable bits. */
void pci_dev_init_header(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
			 uint8_t revision);

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
};
