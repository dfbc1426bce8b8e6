// SPDX-License-Identifier: MIT
/*
 * ACPI fixed hardware (PM1a event and control blocks, PM timer) at ports
 * 0x600-0x60b, as the FADT describes them.  Writing SLP_EN with the \_S5
 * sleep type powers the VM off.  The platform has no SMM, so SCI_EN always
 * reads 1 (ACPI mode).  The SCI (IRQ 9) follows PM1_STS & PM1_EN.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "acpi/acpi.h"
#include "vmm/device.h"
#include "vmm/layout.h"
#include "base/util.h"
#include "vmm/vm.h"

/* Byte offsets in the block. */
enum { PM1_STS = 0, PM1_EN = 2, PM1_CNT = 4, PM_TMR = 8, PM_BLOCK_LEN = 12 };

#define STS_TMR 0x0001
#define STS_PWRBTN 0x0100
#define STS_WAK 0x8000
#define STS_WRITABLE (STS_TMR | 0x0020 | STS_PWRBTN | 0x0200 | 0x0400 | STS_WAK)
#define EN_WRITABLE (0x0001 | 0x0020 | 0x0100 | 0x0200 | 0x0400)
#define CNT_SCI_EN 0x0001
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_EN 0x2000

#define PM_TIMER_HZ 3579545ull

struct acpi_pm {
	pthread_mutex_t lock;
	struct vm *vm;
	uint16_t sts, en, cnt;
	uint32_t last_timer; /* to latch TMR_STS when bit 31 flips */
	bool sci_level;
};

static uint32_t pm_timer(const struct acpi_pm *p)
{
	unsigned __int128 ticks = (unsigned __int128)(vm_clock_ns(p->vm) - p->vm->boot_ns) * PM_TIMER_HZ / 1000000000u;
	return (uint32_t)ticks;
}

static void update_sci(struct acpi_pm *p)
{
	bool level = (p->sts & p->en) != 0;
	if (level != p->sci_level) {
		p->sci_level = level;
		vm_set_irq(p->vm, IRQ_SCI, level);
	}
}

static void sample_timer(struct acpi_pm *p)
{
	uint32_t t = pm_timer(p);
	if ((t ^ p->last_timer) & 0x80000000u)
		p->sts |= STS_TMR; /* the counter's top bit changed: "overflow" */
	p->last_timer = t;
}

static uint8_t reg_byte(struct acpi_pm *p, unsigned off)
{
	uint32_t v;
	switch (off & ~1u) {
	case PM1_STS: v = p->sts; break;
	case PM1_EN: v = p->en; break;
	case PM1_CNT: v = p->cnt | CNT_SCI_EN; break;
	default: v = 0; break;
	}
	return (uint8_t)(v >> (8 * (off & 1)));
}

static uint64_t pm_read(void *opaque, uint64_t off, unsigned size)
{
	struct acpi_pm *p = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&p->lock);
	sample_timer(p);
	if (off >= PM_TMR) {
		v = pm_timer(p) >> (8 * (off - PM_TMR));
	} else {
		for (unsigned i = 0; i < size && off + i < PM_TMR; i++)
			v |= (uint64_t)reg_byte(p, (unsigned)off + i) << (8 * i);
	}
	update_sci(p);
	pthread_mutex_unlock(&p->lock);
	return v & io_ones(size);
}

/* Apply a write of `mask`-selected bits of a 16-bit register. */
static void write16(struct acpi_pm *p, unsigned reg, uint16_t v, uint16_t mask)
{
	switch (reg) {
	case PM1_STS:
		p->sts &= (uint16_t)~(v & mask & STS_WRITABLE); /* write 1 to clear */
		break;
	case PM1_EN:
		p->en = (uint16_t)((p->en & ~mask) | (v & mask & EN_WRITABLE));
		break;
	case PM1_CNT: {
		uint16_t cnt = (uint16_t)((p->cnt & ~mask) | (v & mask));
		if (cnt & CNT_SLP_EN) {
			unsigned typ = (cnt >> CNT_SLP_TYP_SHIFT) & 7;
			if (typ == ACPI_SLP_TYP_S5)
				vm_request_stop(p->vm, VM_STOP_POWEROFF, 0);
			else
				log_debug("ACPI: guest asked for sleep type %u, which keel does not offer", typ);
		}
		p->cnt = cnt & (uint16_t)~(CNT_SLP_EN | CNT_SCI_EN);
		break;
	}
	default:
		break;
	}
}

static void pm_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct acpi_pm *p = opaque;
	pthread_mutex_lock(&p->lock);
	/* Split the access into the 16-bit registers it covers. */
	for (unsigned reg = PM1_STS; reg < PM_TMR; reg += 2) {
		uint16_t v = 0, mask = 0;
		for (unsigned i = 0; i < size; i++) {
			uint64_t byte = off + i;
			if (byte == reg || byte == reg + 1u) {
				unsigned shift = (unsigned)(byte - reg) * 8;
				v |= (uint16_t)(((value >> (8 * i)) & 0xff) << shift);
				mask |= (uint16_t)(0xff << shift);
			}
		}
		if (mask)
			write16(p, reg, v, mask);
	}
	update_sci(p);
	pthread_mutex_unlock(&p->lock);
}

static int acpi_pm_create(struct vm *vm, void **state)
{
	struct acpi_pm *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->vm = vm;
	*state = p;
	return 0;
}

static void acpi_pm_destroy(void *state)
{
	struct acpi_pm *p = state;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct io_range_desc acpi_pm_pio[] = {
	{ PORT_ACPI_PM_BASE, PM_BLOCK_LEN, { pm_read, pm_write } },
};

const struct device_desc acpi_pm_device = {
	.name = "acpi-pm",
	.create = acpi_pm_create,
	.destroy = acpi_pm_destroy,
	.pio = acpi_pm_pio,
	.nr_pio = ARRAY_SIZE(acpi_pm_pio),
};
