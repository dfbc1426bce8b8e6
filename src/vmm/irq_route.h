// SPDX-License-Identifier: MIT
/*
 * GSI routing (KVM's model, through vm->accel): the in-kernel irqchip's 24 IOAPIC (and 16 PIC) lines plus
 * MSI routes for devices.  A device allocates a GSI per MSI-X vector, binds
 * an eventfd to it with KVM_IRQFD, and re-targets the route when the guest
 * programs the vector, so raising an interrupt is one eventfd write from any
 * thread and never a VM exit or an ioctl.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IRQ_MSI_ROUTES 256

struct vm;

struct irq_router {
	pthread_mutex_t lock;
	struct vm *vm; /* routes and irqfds go to vm->accel */
	unsigned nr_msi;
	struct {
		bool valid; /* false: the route is not installed (vector masked or unprogrammed) */
		uint64_t addr;
		uint32_t data;
	} msi[IRQ_MSI_ROUTES];
};

/* A router with no MSI routes; irq_commit() then installs the plain irqchip table. */
void irq_router_init(struct irq_router *r, struct vm *vm);
void irq_router_destroy(struct irq_router *r);
/* Reserve a GSI for one MSI vector (no route installed yet).  0 or -ENOSPC. */
int irq_msi_alloc(struct irq_router *r, unsigned *gsi);
/* Point gsi at the MSI (addr, data), or remove its route (valid false).  0 or -errno. */
int irq_msi_update(struct irq_router *r, unsigned gsi, bool valid, uint64_t addr, uint32_t data);
/* The same without telling KVM yet; irq_commit() sends every change at once.  True if changed. */
bool irq_msi_set(struct irq_router *r, unsigned gsi, bool valid, uint64_t addr, uint32_t data);
int irq_commit(struct irq_router *r);
/* KVM_IRQFD: bind (or unbind) eventfd fd to gsi.  0 or -errno. */
int irq_irqfd(struct irq_router *r, int fd, unsigned gsi, bool assign);
