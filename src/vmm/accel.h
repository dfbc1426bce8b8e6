// SPDX-License-Identifier: MIT
/*
 * What the machine asks of the layer that runs it.  Device models never
 * talk to KVM themselves: interrupt lines, MSI routes, irqfds and
 * ioeventfds go through vm->accel.  Two accelerators exist: KVM (kvm.c), and
 * the device-test backend (src/devtest), which has no vCPUs and lets a test
 * program drive the same machine over a socket.  The calls take KVM's own
 * UAPI structures, so the KVM side is a plain ioctl and the test side
 * interprets exactly what KVM would be told.
 */
#pragma once

#include <stdbool.h>

struct vm;
struct kvm_irq_routing;
struct kvm_ioeventfd;

struct accel_ops {
	const char *name;
	/* Drive GSI `gsi` (an ISA/IOAPIC line) to `level`. */
	void (*set_irq)(struct vm *vm, unsigned gsi, bool level);
	/* Replace the whole GSI routing table.  0 or -errno. */
	int (*set_gsi_routing)(struct vm *vm, const struct kvm_irq_routing *table);
	/* Bind (or unbind) eventfd fd to gsi: a write to fd raises the GSI.  0 or -errno. */
	int (*irqfd)(struct vm *vm, int fd, unsigned gsi, bool assign);
	/* KVM_IOEVENTFD semantics: a guest write to the range signals io->fd instead of exiting.  0 or -errno. */
	int (*ioeventfd)(struct vm *vm, const struct kvm_ioeventfd *io);
};

extern const struct accel_ops kvm_accel;
