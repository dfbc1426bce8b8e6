// SPDX-License-Identifier: MIT
/*
 * The PC platform: which device models a VM has, in creation order.  Each
 * entry is a device's own static descriptor; creating a device registers
 * the port and MMIO ranges its descriptor lists.
 */
#include "platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "trace/trace.h"
#include "ahci/ahci.h"
#include "base/util.h"
#include "virtio/virtio.h"
#include "vm.h"

static const struct device_desc *const platform_devices[] = {
	&pci_host_device, /* first: later PCI devices attach to its bus */
	&isa_bridge_device, /* 00:01.0, the PCI interrupt router */
	&uart_com1_device,
	&rtc_device,
	&i8042_device,
	&port92_device, /* fast A20 gate and reset */
	&acpi_pm_device,
	&debug_exit_device,
	&fw_cfg_device, /* as on QEMU's PC machine: firmware reads its configuration here */
	&firmware_log_device, /* --firmware-log: port 0x402 */
};

static int register_ranges(struct bus *b, const struct io_range_desc *r, size_t n, void *state,
			   const char *dev)
{
	for (size_t i = 0; i < n; i++) {
		int e = bus_add(b, r[i].base, r[i].len, &r[i].ops, state);
		if (e) {
			log_error("%s: cannot claim %s range 0x%llx+0x%llx: %s", dev, b->name,
				  (unsigned long long)r[i].base, (unsigned long long)r[i].len, strerror(-e));
			return e;
		}
	}
	return 0;
}

int platform_create(struct vm *vm)
{
	memset(vm->boot_path, 0, sizeof(vm->boot_path));
	irq_router_init(&vm->irq, vm);
	/* No MSI routes from an earlier boot (the KVM VM outlives reboots). */
	int rr = irq_commit(&vm->irq);
	if (rr)
		log_debug("GSI routing: %s", strerror(-rr));
	vm->devices = calloc(ARRAY_SIZE(platform_devices), sizeof(*vm->devices));
	if (!vm->devices)
		return -ENOMEM;
	vm->nr_devices = 0;
	for (size_t i = 0; i < ARRAY_SIZE(platform_devices); i++) {
		const struct device_desc *d = platform_devices[i];
		if (d->wanted && !d->wanted(vm->cfg))
			continue;
		void *state = NULL;
		int r = d->create(vm, &state);
		if (r) {
			log_error("%s: %s", d->name, strerror(-r));
			goto destroy_created;
		}
		vm->devices[vm->nr_devices++] = (struct device_instance){ d, state };
		TRACE(COMPONENT_START, trace_str16(d->name), vm->nr_devices - 1);
		r = register_ranges(&vm->pio, d->pio, d->nr_pio, state, d->name);
		if (!r)
			r = register_ranges(&vm->mmio, d->mmio, d->nr_mmio, state, d->name);
		if (r)
			goto destroy_created;
	}
	/* virtio functions go on the host bridge's bus, after the fixed devices. */
	if (virtio_pci_create_all(vm))
		goto destroy_created;
	if (ahci_create_all(vm))
		goto destroy_created;
	return 0;

destroy_created:
	platform_destroy(vm);
	return -EINVAL;
}

void platform_destroy(struct vm *vm)
{
	ahci_destroy_all(vm);
	virtio_pci_destroy_all(vm);
	/* Reverse order: a device never outlives one it depends on. */
	while (vm->nr_devices) {
		struct device_instance *d = &vm->devices[--vm->nr_devices];
		d->desc->destroy(d->state);
		TRACE(COMPONENT_STOP, trace_str16(d->desc->name), vm->nr_devices, 0);
	}
	free(vm->devices);
	vm->devices = NULL;
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	irq_router_destroy(&vm->irq);
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");
}
