// SPDX-License-Identifier: MIT
/* i8042 reset, ACPI PM block, PCI host bridge (both access mechanisms), debug exit, the bus. */
#include <errno.h>

#include "acpi/acpi.h"
#include "vmm/device.h"
#include "fake.h"
#include "vmm/layout.h"
#include "dev/pci.h"
#include "unit.h"

static uint64_t dev_read(const struct device_desc *d, const struct io_range_desc *r, void *s, uint64_t off,
			 unsigned size)
{
	(void)d;
	return r->ops.read(s, off, size);
}

static void i8042_reset_paths(void)
{
	struct vm *vm = fake_vm(0);
	void *k;
	i8042_device.create(vm, &k);
	const struct io_range_desc *data = &i8042_device.pio[0], *cmd = &i8042_device.pio[1];
	CHECK_EQ(data->base, 0x60);
	CHECK_EQ(cmd->base, 0x64);
	CHECK_EQ(dev_read(&i8042_device, cmd, k, 0, 1) & 0x05, 0x04); /* system flag, nothing to read */
	cmd->ops.write(k, 0, 1, 0xaa);
	CHECK_EQ(dev_read(&i8042_device, cmd, k, 0, 1) & 0x01, 0x01);
	CHECK_EQ(dev_read(&i8042_device, data, k, 0, 1), 0x55);
	cmd->ops.write(k, 0, 1, 0x60);
	data->ops.write(k, 0, 1, 0x47);
	cmd->ops.write(k, 0, 1, 0x20);
	CHECK_EQ(dev_read(&i8042_device, data, k, 0, 1), 0x47);
	CHECK_EQ(stop_reason(vm), VM_RUNNING);
	cmd->ops.write(k, 0, 1, 0xd1);
	data->ops.write(k, 0, 1, 0x03); /* reset line stays high */
	CHECK_EQ(stop_reason(vm), VM_RUNNING);
	cmd->ops.write(k, 0, 1, 0xff); /* pulse nothing */
	CHECK_EQ(stop_reason(vm), VM_RUNNING);
	cmd->ops.write(k, 0, 1, 0xfe); /* pulse the reset line */
	CHECK_EQ(stop_reason(vm), VM_STOP_RESET);
	clear_stop(vm);
	cmd->ops.write(k, 0, 1, 0xd1);
	data->ops.write(k, 0, 1, 0x02);
	CHECK_EQ(stop_reason(vm), VM_STOP_RESET);
	i8042_device.destroy(k);
	fake_vm_free(vm);
}

static void acpi_pm_sleep_and_timer(void)
{
	struct vm *vm = fake_vm(0);
	vm->boot_ns = now_ns();
	void *p;
	acpi_pm_device.create(vm, &p);
	const struct io_ops *o = &acpi_pm_device.pio[0].ops;
	CHECK_EQ(acpi_pm_device.pio[0].base, PORT_ACPI_PM_BASE);
	CHECK_EQ(o->read(p, 4, 2) & 1, 1); /* SCI_EN: ACPI mode */
	o->write(p, 2, 2, 0xffff);
	CHECK_EQ(o->read(p, 2, 2), 0x0721); /* only the defined enable bits stick */
	o->write(p, 2, 2, 0);
	o->write(p, 4, 2, (3u << 10) | (1u << 13)); /* S3: not offered */
	CHECK_EQ(stop_reason(vm), VM_RUNNING);
	CHECK_EQ(o->read(p, 4, 2) & (1u << 13), 0); /* SLP_EN reads as 0 */
	o->write(p, 5, 1, (ACPI_SLP_TYP_S5 << 2) | (1u << 5)); /* byte write of the high half */
	CHECK_EQ(stop_reason(vm), VM_STOP_POWEROFF);
	clear_stop(vm);
	o->write(p, 0, 4, ((ACPI_SLP_TYP_S5 << 10 | 1u << 13) << 0)); /* a dword at STS/EN does not sleep */
	CHECK_EQ(stop_reason(vm), VM_RUNNING);
	uint32_t t0 = (uint32_t)o->read(p, 8, 4);
	struct timespec ts = { 0, 2000000 };
	nanosleep(&ts, NULL);
	uint32_t t1 = (uint32_t)o->read(p, 8, 4);
	CHECK(t1 - t0 >= 7000); /* 3.58 MHz: at least 2 ms passed */
	CHECK(t1 - t0 < 3579545 * 10);
	acpi_pm_device.destroy(p);
	fake_vm_free(vm);
}

static uint64_t bar_last_off;
static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque, (void)size;
	bar_last_off = off;
	return 0x5a5a5a5a;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	(void)size;
	bar_last_off = off;
	*(uint64_t *)opaque = v;
}

static const struct io_ops bar_ops = { bar_read, bar_write };

/* A memory BAR: assigned at add time, sized by writing ones, decoded only with MEM on, movable. */
static void pci_bar_decoding(void)
{
	struct vm *vm = fake_vm(0);
	void *h;
	pci_host_device.create(vm, &h);
	const struct io_ops *win = &pci_host_device.mmio[1].ops;
	CHECK_EQ(pci_host_device.mmio[1].base, PCI_MMIO32_BASE);
	struct pci_dev d = { 0 }; /* pci_dev_init_header() leaves the callbacks alone */
	uint64_t written = 0;
	pci_dev_init_header(&d, 0x1af4, 0x1042, 0x018000, 1);
	pci_dev_set_bar(&d, 0, 0x8000, &bar_ops, &written);
	int slot = pci_bus_add(vm->pci, &d, -1);
	CHECK(slot > 0);
	uint32_t bar = pci_config_read(vm->pci, 0, (unsigned)slot, 0, PCI_BAR0, 4);
	CHECK(bar >= PCI_MMIO32_BASE && bar < PCI_MMIO32_BASE + PCI_MMIO32_SIZE && bar % 0x8000 == 0);
	/* Memory decoding off: the window answers all-ones. */
	CHECK_EQ(win->read(h, bar - PCI_MMIO32_BASE + 4, 4), 0xffffffffu);
	pci_config_write(vm->pci, 0, (unsigned)slot, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	CHECK_EQ(win->read(h, bar - PCI_MMIO32_BASE + 0x124, 4), 0x5a5a5a5a);
	CHECK_EQ(bar_last_off, 0x124);
	/* Sizing: all ones reads back the size mask; nothing is decoded meanwhile. */
	pci_config_write(vm->pci, 0, (unsigned)slot, 0, PCI_BAR0, 4, 0xffffffffu);
	CHECK_EQ(pci_config_read(vm->pci, 0, (unsigned)slot, 0, PCI_BAR0, 4), 0xffff8000u);
	/* Moved: decoded at the new place only. */
	uint32_t moved = (uint32_t)PCI_MMIO32_BASE + 0x100000;
	pci_config_write(vm->pci, 0, (unsigned)slot, 0, PCI_BAR0, 4, moved);
	win->write(h, moved - PCI_MMIO32_BASE + 8, 4, 0x1234);
	CHECK_EQ(written, 0x1234);
	CHECK_EQ(bar_last_off, 8);
	CHECK_EQ(win->read(h, bar - PCI_MMIO32_BASE + 4, 4), 0xffffffffu);
	/* An access straddling the BAR's end is not dispatched. */
	CHECK_EQ(win->read(h, moved - PCI_MMIO32_BASE + 0x8000 - 2, 4), 0xffffffffu);
	pci_host_device.destroy(h);
	fake_vm_free(vm);
}

static void pci_config_mechanisms(void)
{
	struct vm *vm = fake_vm(0);
	void *h;
	pci_host_device.create(vm, &h);
	CHECK(vm->pci != NULL);
	const struct io_ops *io = &pci_host_device.pio[0].ops;
	const struct io_ops *ecam = &pci_host_device.mmio[0].ops;
	CHECK_EQ(pci_host_device.mmio[0].base, PCI_ECAM_BASE);

	io->write(h, 0, 4, 0x80000000u | 0x3);
	CHECK_EQ(io->read(h, 0, 4), 0x80000000u); /* low bits are not stored */
	CHECK_EQ(io->read(h, 4, 4), 0x12378086);
	CHECK_EQ(io->read(h, 6, 2), 0x1237);
	CHECK_EQ(io->read(h, 7, 1), 0x12);
	io->write(h, 0, 4, 0x80000008u);
	CHECK_EQ(io->read(h, 4, 4) >> 8, 0x060000); /* host bridge class */
	io->write(h, 0, 4, 0x00000000u);           /* enable bit clear */
	CHECK_EQ(io->read(h, 4, 4), 0xffffffffu);
	io->write(h, 0, 4, 0x80000000u | (5u << 11));
	CHECK_EQ(io->read(h, 4, 4), 0xffffffffu); /* empty slot */
	io->write(h, 0, 4, 0x80010000u);
	CHECK_EQ(io->read(h, 4, 4), 0xffffffffu); /* bus 1 */

	/* Read-only identity, writable command bits, write-1-to-clear status. */
	io->write(h, 0, 4, 0x80000000u);
	io->write(h, 4, 4, 0x12345678);
	CHECK_EQ(io->read(h, 4, 4), 0x12378086);
	io->write(h, 0, 4, 0x80000004u);
	io->write(h, 4, 2, 0xffff);
	CHECK_EQ(io->read(h, 4, 2), 0x0507);

	/* ECAM sees the same space; misaligned or 64-bit accesses are refused. */
	CHECK_EQ(ecam->read(h, 0, 4), 0x12378086);
	CHECK_EQ(ecam->read(h, 4, 2), 0x0507);
	CHECK_EQ(ecam->read(h, 1, 2), 0xffff);
	CHECK_EQ(ecam->read(h, 0, 8), ~0ull);
	CHECK_EQ(ecam->read(h, 0x100, 4), 0); /* extended space of a present device */
	CHECK_EQ(ecam->read(h, 1u << 20, 4), 0xffffffffu); /* bus 1 */
	ecam->write(h, 0x3c, 1, 0x0b);
	CHECK_EQ(ecam->read(h, 0x3c, 1), 0x0b);
	CHECK_EQ(io->read(h, 0, 4), 0x80000004u); /* ECAM left the address latch alone */

	/* The reset control register shares the 0xcf8 dword. */
	io->write(h, 1, 1, 0x02);
	CHECK_EQ(stop_reason(vm), VM_RUNNING);
	CHECK_EQ(io->read(h, 1, 1), 0x02);
	io->write(h, 1, 1, ACPI_RESET_VALUE);
	CHECK_EQ(stop_reason(vm), VM_STOP_RESET);
	pci_host_device.destroy(h);
	CHECK(vm->pci == NULL);
	fake_vm_free(vm);
}

static void debug_exit_status(void)
{
	struct vm *vm = fake_vm(0);
	struct vm_config on = { .debug_exit = true }, off = { 0 };
	CHECK(debug_exit_device.wanted(&on));
	CHECK(!debug_exit_device.wanted(&off));
	void *d;
	debug_exit_device.create(vm, &d);
	debug_exit_device.pio[0].ops.write(d, 0, 1, 0x10);
	CHECK_EQ(stop_reason(vm), VM_STOP_DEBUG_EXIT);
	CHECK_EQ(vm->stop_status, 33);
	debug_exit_device.pio[0].ops.write(d, 0, 4, 0x11); /* the first request wins */
	CHECK_EQ(vm->stop_status, 33);
	clear_stop(vm);
	debug_exit_device.pio[0].ops.write(d, 0, 4, 0x1ff);
	CHECK_EQ(vm->stop_status, 0xff);
	debug_exit_device.destroy(d);
	fake_vm_free(vm);
}

static uint64_t seen_off;
static unsigned seen_size;
static uint64_t rd_probe(void *o, uint64_t off, unsigned size)
{
	(void)o;
	seen_off = off;
	seen_size = size;
	return 0x42;
}
static const struct io_ops probe_ops = { rd_probe, NULL };

static void bus_ranges(void)
{
	struct bus b;
	bus_init(&b, "test");
	CHECK_EQ(bus_add(&b, 0x100, 0x10, &probe_ops, NULL), 0);
	CHECK_EQ(bus_add(&b, 0x110, 0x10, &probe_ops, NULL), 0);  /* adjacent */
	CHECK_EQ(bus_add(&b, 0x0f8, 0x10, &probe_ops, NULL), -EEXIST);
	CHECK_EQ(bus_add(&b, 0x10f, 0x01, &probe_ops, NULL), -EEXIST);
	CHECK_EQ(bus_add(&b, 0x50, 0, &probe_ops, NULL), -EINVAL);
	CHECK_EQ(bus_add(&b, ~0ull - 4, 0x10, &probe_ops, NULL), -EINVAL);
	for (uint64_t a = 0x1000; a < 0x1000 + 40 * 0x10; a += 0x10)
		CHECK_EQ(bus_add(&b, a, 0x10, &probe_ops, NULL), 0); /* grows past the first allocation */
	uint64_t v;
	CHECK(bus_read(&b, 0x104, 2, &v) && v == 0x42 && seen_off == 4 && seen_size == 2);
	CHECK(bus_read(&b, 0x11f, 1, &v) && seen_off == 0xf);
	CHECK(!bus_read(&b, 0x10e, 4, &v)); /* straddles two ranges */
	CHECK_EQ(v, 0xffffffff);
	CHECK(!bus_read(&b, 0x120, 1, &v) && v == 0xff);
	CHECK(!bus_write(&b, 0x100, 1, 0)); /* no write handler */
	CHECK(bus_read(&b, 0x1000 + 39 * 0x10 + 8, 8, &v));
	bus_destroy(&b);
}

int main(void)
{
	RUN("chipset", i8042_reset_paths);
	RUN("chipset", acpi_pm_sleep_and_timer);
	RUN("chipset", pci_config_mechanisms);
	RUN("chipset", pci_bar_decoding);
	RUN("chipset", debug_exit_status);
	RUN("chipset", bus_ranges);
	UNIT_EXIT();
}
