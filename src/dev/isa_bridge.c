// SPDX-License-Identifier: MIT
/*
 * PCI-to-ISA bridge (00:01.0): a PIIX3 (8086:7000) as on QEMU's PC machine,
 * where firmware and OSes look for the PCI interrupt router.  Its PIRQ route
 * control registers (0x60-0x63, one per PIRQ line A-D: bit 7 disables the
 * route, bits 3:0 name the ISA IRQ) steer the four PCI interrupt lines to
 * ISA IRQs; the ISA IRQs reach both the in-kernel PIC and the IOAPIC's pins
 * 0-15.  The edge/level control registers (ports 0x4d0/0x4d1) belong to the
 * in-kernel PIC.
 *
 * Routing: device slot S drives its pin P (1 = INTA#) onto PIRQ line
 * (S + P - 2) mod 4, the PIIX swizzle SeaBIOS, QEMU's $PIR/ACPI tables and
 * keel's DSDT assume.  Several devices share a line: the line is high while
 * any of them drives it (a count per line).  All of this runs under the PCI
 * bus lock: the bus calls route_intx() and config_written() with it held.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/util.h"
#include "pci.h"
#include "trace/trace.h"
#include "vmm/device.h"
#include "vmm/vm.h"

#define PIIX_PIRQC 0x60
#define PIRQ_DISABLED 0x80
#define PIRQ_LINES 4
#define ISA_BRIDGE_SLOT 1

struct isa_bridge {
	struct vm *vm;
	struct pci_dev dev;
	unsigned asserted[PIRQ_LINES]; /* devices driving each PIRQ line */
	int irq[PIRQ_LINES];           /* ISA IRQ each line is routed to now, -1: none */
};

unsigned isa_bridge_pirq(unsigned slot, unsigned pin)
{
	return (slot + pin - 2) & (PIRQ_LINES - 1);
}

/* The ISA IRQ a route control value selects, or -1.  IRQs 0-2, 8 and 13 cannot be routed on a PIIX. */
static int route_irq(uint8_t v)
{
	unsigned irq = v & 0x0f;
	if (v & PIRQ_DISABLED || irq < 3 || irq == 8 || irq == 13)
		return -1;
	return (int)irq;
}

static void route_intx(void *opaque, unsigned slot, unsigned pin, bool level)
{
	struct isa_bridge *b = opaque;
	unsigned line = isa_bridge_pirq(slot, pin);
	bool was = b->asserted[line] > 0;
	if (level)
		b->asserted[line]++;
	else if (b->asserted[line])
		b->asserted[line]--;
	bool high = b->asserted[line] > 0;
	if (high != was && b->irq[line] >= 0)
		vm_set_irq(b->vm, (unsigned)b->irq[line], high);
}

/* A write to the route registers: move an asserted line to its new IRQ. */
static void config_written(struct pci_dev *d, unsigned off, unsigned size)
{
	struct isa_bridge *b = d->opaque;
	for (unsigned line = 0; line < PIRQ_LINES; line++) {
		if (PIIX_PIRQC + line < off || PIIX_PIRQC + line >= off + size)
			continue;
		int irq = route_irq(d->cfg[PIIX_PIRQC + line]);
		if (irq == b->irq[line])
			continue;
		if (b->asserted[line] && b->irq[line] >= 0)
			vm_set_irq(b->vm, (unsigned)b->irq[line], false);
		b->irq[line] = irq;
		if (b->asserted[line] && irq >= 0)
			vm_set_irq(b->vm, (unsigned)irq, true);
	}
}

static int isa_bridge_create(struct vm *vm, void **state)
{
	if (!vm->pci)
		return -ENODEV;
	struct isa_bridge *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vm = vm;
	/* PIIX3 function 0, class 06.01 ISA bridge; single function (keel models no IDE/USB/PM functions here). */
	pci_dev_init_header(&b->dev, 0x8086, 0x7000, 0x060100, 0);
	for (unsigned line = 0; line < PIRQ_LINES; line++) {
		b->dev.cfg[PIIX_PIRQC + line] = PIRQ_DISABLED;
		b->dev.wmask[PIIX_PIRQC + line] = 0x8f;
		b->irq[line] = -1;
	}
	b->dev.config_written = config_written;
	b->dev.opaque = b;
	int r = pci_bus_add(vm->pci, &b->dev, ISA_BRIDGE_SLOT);
	if (r < 0) {
		free(b);
		return r;
	}
	pthread_mutex_lock(&vm->pci->lock);
	vm->pci->route_intx = route_intx;
	vm->pci->route_opaque = b;
	pthread_mutex_unlock(&vm->pci->lock);
	*state = b;
	return 0;
}

static void isa_bridge_destroy(void *state)
{
	struct isa_bridge *b = state;
	if (b->vm->pci) {
		pthread_mutex_lock(&b->vm->pci->lock);
		if (b->vm->pci->route_opaque == b)
			b->vm->pci->route_intx = NULL;
		pthread_mutex_unlock(&b->vm->pci->lock);
	}
	free(b);
}

const struct device_desc isa_bridge_device = {
	.name = "isa-bridge",
	.create = isa_bridge_create,
	.destroy = isa_bridge_destroy,
};
