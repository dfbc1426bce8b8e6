// SPDX-License-Identifier: MIT
/*
 * Device descriptors.  Every device model describes itself with one static
 * const struct device_desc: its name, when it is present, how to create it,
 * and the port and MMIO ranges it decodes.  The platform lists descriptors in
 * a table; nothing dispatches on device identity anywhere else.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "config.h"

struct vm;

struct device_desc {
	const char *name;
	/* NULL: always present. */
	bool (*wanted)(const struct vm_config *cfg);
	/* Allocate and initialise; *state is passed to every io_ops call. 0 or -errno. */
	int (*create)(struct vm *vm, void **state);
	void (*destroy)(void *state);
	const struct io_range_desc *pio;
	size_t nr_pio;
	const struct io_range_desc *mmio;
	size_t nr_mmio;
};

/* Descriptors of the PC platform devices, one per device file. */
extern const struct device_desc uart_com1_device;
extern const struct device_desc rtc_device;
extern const struct device_desc i8042_device;
extern const struct device_desc acpi_pm_device;
extern const struct device_desc pci_host_device;
extern const struct device_desc debug_exit_device;
extern const struct device_desc fw_cfg_device;
extern const struct device_desc isa_bridge_device;
extern const struct device_desc firmware_log_device;
extern const struct device_desc port92_device;

/* The PIRQ line (0-3: A-D) that slot's INTx pin (1-4) drives on the ISA bridge. */
unsigned isa_bridge_pirq(unsigned slot, unsigned pin);
