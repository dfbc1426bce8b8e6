// SPDX-License-Identifier: MIT
/*
 * Debug exit port (--debug-exit): a write of V to port 0xf4 ends keel with
 * exit status (V << 1) | 1, exactly like QEMU's isa-debug-exit, so that
 * test guests report the same way under both.
 */
#include <stdlib.h>

#include "vmm/device.h"
#include "vmm/layout.h"
#include "base/util.h"
#include "vmm/vm.h"

static void debug_exit_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct vm *vm = opaque;
	(void)off;
	uint64_t v = value & io_ones(size);
	vm_request_stop(vm, VM_STOP_DEBUG_EXIT, (int)(((v << 1) | 1) & 0xff));
}

static bool debug_exit_wanted(const struct vm_config *cfg)
{
	return cfg->debug_exit;
}

static int debug_exit_create(struct vm *vm, void **state)
{
	*state = vm;
	return 0;
}

static void debug_exit_destroy(void *state)
{
	(void)state;
}

static const struct io_range_desc debug_exit_pio[] = {
	{ PORT_DEBUG_EXIT, 4, { NULL, debug_exit_write } },
};

const struct device_desc debug_exit_device = {
	.name = "debug-exit",
	.wanted = debug_exit_wanted,
	.create = debug_exit_create,
	.destroy = debug_exit_destroy,
	.pio = debug_exit_pio,
	.nr_pio = ARRAY_SIZE(debug_exit_pio),
};
