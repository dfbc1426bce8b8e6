// SPDX-License-Identifier: MIT
/*
 * An ICH9-class AHCI controller (PCI 8086:2922, class 01:06:01): six SATA
 * ports behind BAR5, MSI or INTA#, with SATA disks (NCQ, 32 tags, FLUSH,
 * TRIM where the disk can discard) and ATAPI CD-ROMs on keel's block stack.
 * Every --disk ...,if=ahci and every --cdrom gets a port, in command-line
 * order; one controller holds them all.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"

struct vm;
struct guest_mem;
struct pci_dev;
struct ahci;

/* The controller for the VM's AHCI disks, on the host bridge's bus (none if there are none).  0 or -errno. */
int ahci_create_all(struct vm *vm);
void ahci_destroy_all(struct vm *vm);

/* What is attached to a port (harnesses; ahci_create_all() fills these from the configuration). */
struct ahci_drive {
	struct blk_dev *disk; /* NULL: an empty port */
	enum blk_media media;
	const char *serial; /* NULL or "": made up from the port number */
};

/*
 * A controller with drives[0 .. n) on ports 0 .. n-1 (n at most 6).  vm NULL
 * (tests, fuzzers): no MSI routes; the MSI eventfd still counts messages.
 * NULL on failure (logged).
 */
struct ahci *ahci_new(const struct guest_mem *mem, struct vm *vm, const struct ahci_drive *drives, unsigned n);
/* Wait for what is in flight and free the controller. */
void ahci_free(struct ahci *a);
struct pci_dev *ahci_pci_dev(struct ahci *a);
/* ABAR (BAR5) accesses, as the bus makes them. */
uint64_t ahci_mmio_read(struct ahci *a, uint64_t off, unsigned size);
void ahci_mmio_write(struct ahci *a, uint64_t off, unsigned size, uint64_t value);
/* The eventfd each MSI is written to (bound to its GSI as an irqfd when there is a VM). */
int ahci_msi_fd(struct ahci *a);
