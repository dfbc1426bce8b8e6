// SPDX-License-Identifier: MIT
#include "irq_route.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "layout.h"
#include "vm.h"

#define PIC_LINES 16
#define MSI_GSI_BASE IOAPIC_PINS

void irq_router_init(struct irq_router *r, struct vm *vm)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->vm = vm;
}

void irq_router_destroy(struct irq_router *r)
{
	pthread_mutex_destroy(&r->lock);
}

int irq_msi_alloc(struct irq_router *r, unsigned *gsi)
{
	pthread_mutex_lock(&r->lock);
	int ret = -ENOSPC;
	if (r->nr_msi < IRQ_MSI_ROUTES) {
		*gsi = MSI_GSI_BASE + r->nr_msi++;
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* The whole table goes to KVM at once: the irqchip lines as KVM sets them up by default, then the MSIs. */
static int commit(struct irq_router *r)
{
	unsigned max = PIC_LINES + IOAPIC_PINS + r->nr_msi;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi < PIC_LINES) {
			t->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi,
				.type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
		}
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
	}
	for (unsigned i = 0; i < r->nr_msi; i++) {
		if (!r->msi[i].valid)
			continue;
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = MSI_GSI_BASE + i,
			.type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)r->msi[i].addr,
				   .address_hi = (uint32_t)(r->msi[i].addr >> 32),
				   .data = r->msi[i].data },
		};
	}
	t->nr = n;
	int ret = r->vm->accel->set_gsi_routing(r->vm, t);
	free(t);
	return ret;
}

static bool set_locked(struct irq_router *r, unsigned gsi, bool valid, uint64_t addr, uint32_t data)
{
	if (gsi < MSI_GSI_BASE || gsi - MSI_GSI_BASE >= r->nr_msi)
		return false;
	unsigned i = gsi - MSI_GSI_BASE;
	if (r->msi[i].valid == valid && r->msi[i].addr == addr && r->msi[i].data == data)
		return false;
	r->msi[i].valid = valid;
	r->msi[i].addr = addr;
	r->msi[i].data = data;
	return true;
}

bool irq_msi_set(struct irq_router *r, unsigned gsi, bool valid, uint64_t addr, uint32_t data)
{
	pthread_mutex_lock(&r->lock);
	bool changed = set_locked(r, gsi, valid, addr, data);
	pthread_mutex_unlock(&r->lock);
	return changed;
}

int irq_commit(struct irq_router *r)
{
	pthread_mutex_lock(&r->lock);
	int ret = commit(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_msi_update(struct irq_router *r, unsigned gsi, bool valid, uint64_t addr, uint32_t data)
{
	pthread_mutex_lock(&r->lock);
	int ret = set_locked(r, gsi, valid, addr, data) ? commit(r) : 0;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_irqfd(struct irq_router *r, int fd, unsigned gsi, bool assign)
{
	return r->vm->accel->irqfd(r->vm, fd, gsi, assign);
}
