// SPDX-License-Identifier: MIT
/*
 * PCI host bridge (00:00.0, an i440FX) with both configuration access mechanisms:
 * mechanism 1 (address at 0xcf8, data at 0xcfc-0xcff) and PCIe ECAM at
 * PCI_ECAM_BASE.  It also decodes the chipset reset control register at
 * 0xcf9 (a byte access inside the 0xcf8 dword), which the FADT names as
 * the ACPI reset register.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "acpi/acpi.h"
#include "vmm/device.h"
#include "vmm/layout.h"
#include "pci.h"
#include "base/util.h"
#include "vmm/vm.h"

#define CF8_ENABLE 0x80000000u
#define I440FX_PAM0 0x59
#define I440FX_PAM6 0x5f
#define RST_CNT_SYS_RST 0x02
#define RST_CNT_RST_CPU 0x04

struct pci_host {
	pthread_mutex_t lock;
	struct vm *vm;
	uint32_t config_addr;
	uint8_t rst_cnt;
	struct pci_bus bus;
	struct pci_dev bridge;
};

static uint64_t pio_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	pthread_mutex_lock(&h->lock);
	uint32_t addr = h->config_addr;
	uint8_t rst = h->rst_cnt;
	pthread_mutex_unlock(&h->lock);

	if (off == 0 && size == 4)
		return addr;
	if (off == 1 && size == 1)
		return rst;
	if (off < 4 || !(addr & CF8_ENABLE))
		return io_ones(size);
	unsigned reg = (addr & 0xfc) + (unsigned)(off - 4);
	if ((reg & 3) + size > 4)
		return io_ones(size);
	return pci_config_read(&h->bus, (addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 7, reg, size);
}

static void pio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;
	if (off == 0 && size == 4) {
		pthread_mutex_lock(&h->lock);
		h->config_addr = (uint32_t)value & 0x80fffffcu;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if (off == 1 && size == 1) {
		pthread_mutex_lock(&h->lock);
		uint8_t old = h->rst_cnt;
		h->rst_cnt = (uint8_t)value & RST_CNT_SYS_RST;
		pthread_mutex_unlock(&h->lock);
		/* The reset happens on a write with RST_CPU set (0 -> 1 edge in the latch). */
		if ((value & RST_CNT_RST_CPU) && !(old & RST_CNT_RST_CPU))
			vm_request_stop(h->vm, VM_STOP_RESET, 0);
		return;
	}
	pthread_mutex_lock(&h->lock);
	uint32_t addr = h->config_addr;
	pthread_mutex_unlock(&h->lock);
	if (off < 4 || !(addr & CF8_ENABLE))
		return;
	unsigned reg = (addr & 0xfc) + (unsigned)(off - 4);
	if ((reg & 3) + size > 4)
		return;
	pci_config_write(&h->bus, (addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 7, reg, size,
			 (uint32_t)value);
}

static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned reg = off & 0xfff;
	if (size > 4 || (reg & (size - 1)))
		return io_ones(size);
	return pci_config_read(&h->bus, (unsigned)(off >> 20), (off >> 15) & 0x1f, (off >> 12) & 7, reg, size);
}

static void ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;
	unsigned reg = off & 0xfff;
	if (size > 4 || (reg & (size - 1)))
		return;
	pci_config_write(&h->bus, (unsigned)(off >> 20), (off >> 15) & 0x1f, (off >> 12) & 7, reg, size,
			 (uint32_t)value);
}

/* The 32-bit PCI memory window: whatever BAR decodes the address handles it. */
static uint64_t window_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	uint64_t v;
	return pci_mmio_read(&h->bus, PCI_MMIO32_BASE + off, size, &v) ? v : io_ones(size);
}

static void window_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_host *h = opaque;
	(void)pci_mmio_write(&h->bus, PCI_MMIO32_BASE + off, size, value);
}

static int pci_host_create(struct vm *vm, void **state)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	h->vm = vm;
	pci_bus_init(&h->bus);
	h->bus.bar_next = PCI_MMIO32_BASE;
	h->bus.bar_limit = PCI_MMIO32_BASE + PCI_MMIO32_SIZE;
	/*
	 * An i440FX host bridge (8086:1237, class 06.00), as QEMU's PC machine:
	 * firmware recognises it (SeaBIOS picks its PCI window and INTx routing
	 * by it, OVMF refuses other bridges).  Its PAM registers (0x59-0x5f),
	 * which firmware writes to make the BIOS area writable and back, are
	 * plain storage: the BIOS area is RAM throughout.
	 */
	pci_dev_init_header(&h->bridge, 0x8086, 0x1237, 0x060000, 2);
	for (unsigned i = I440FX_PAM0; i <= I440FX_PAM6; i++)
		h->bridge.wmask[i] = 0x33;
	/* QEMU's subsystem IDs (Red Hat, QEMU), by which SeaBIOS also recognises a QEMU-like machine. */
	h->bridge.cfg[PCI_SUBSYS_VENDOR] = 0xf4;
	h->bridge.cfg[PCI_SUBSYS_VENDOR + 1] = 0x1a;
	h->bridge.cfg[PCI_SUBSYS_ID] = 0x00;
	h->bridge.cfg[PCI_SUBSYS_ID + 1] = 0x11;
	int r = pci_bus_add(&h->bus, &h->bridge, 0);
	if (r < 0) {
		pci_bus_destroy(&h->bus);
		free(h);
		return r;
	}
	vm->pci = &h->bus;
	*state = h;
	return 0;
}

static void pci_host_destroy(void *state)
{
	struct pci_host *h = state;
	if (h->vm->pci == &h->bus)
		h->vm->pci = NULL;
	pci_bus_destroy(&h->bus);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static const struct io_range_desc pci_host_pio[] = {
	{ PORT_PCI_CONFIG_ADDR, 8, { pio_read, pio_write } },
};

static const struct io_range_desc pci_host_mmio[] = {
	{ PCI_ECAM_BASE, PCI_ECAM_SIZE, { ecam_read, ecam_write } },
	{ PCI_MMIO32_BASE, PCI_MMIO32_SIZE, { window_read, window_write } },
};

const struct device_desc pci_host_device = {
	.name = "pci-host",
	.create = pci_host_create,
	.destroy = pci_host_destroy,
	.pio = pci_host_pio,
	.nr_pio = ARRAY_SIZE(pci_host_pio),
	.mmio = pci_host_mmio,
	.nr_mmio = ARRAY_SIZE(pci_host_mmio),
};
