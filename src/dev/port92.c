// SPDX-License-Identifier: MIT
/*
 * System control port A (port 0x92), the "fast A20 gate": bit 1 is the A20
 * gate, bit 0 a CPU reset.  A vCPU under KVM never wraps at 1 MiB, so A20
 * reads as enabled whatever is written; setting bit 0 resets the machine,
 * as on QEMU's PC machine.  Firmware (SeaBIOS) and boot loaders read it to
 * check A20 and write it to enable A20.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/util.h"
#include "vmm/device.h"
#include "vmm/vm.h"

#define PORT_SYSCTL_A 0x92
#define A20_ENABLED 0x02
#define FAST_RESET 0x01

struct port92 {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t value; /* what the guest last wrote, reset bit clear */
};

static uint64_t port92_read(void *opaque, uint64_t off, unsigned size)
{
	struct port92 *p = opaque;
	(void)off, (void)size;
	pthread_mutex_lock(&p->lock);
	uint8_t v = p->value | A20_ENABLED;
	pthread_mutex_unlock(&p->lock);
	return v;
}

static void port92_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct port92 *p = opaque;
	(void)off, (void)size;
	pthread_mutex_lock(&p->lock);
	bool reset = (value & FAST_RESET) && !(p->value & FAST_RESET);
	p->value = (uint8_t)(value & ~(uint64_t)FAST_RESET);
	pthread_mutex_unlock(&p->lock);
	if (reset)
		vm_request_stop(p->vm, VM_STOP_RESET, 0);
}

static int port92_create(struct vm *vm, void **state)
{
	struct port92 *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->vm = vm;
	pthread_mutex_init(&p->lock, NULL);
	*state = p;
	return 0;
}

static void port92_destroy(void *state)
{
	struct port92 *p = state;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct io_range_desc port92_pio[] = {
	{ PORT_SYSCTL_A, 1, { port92_read, port92_write } },
};

const struct device_desc port92_device = {
	.name = "port92",
	.create = port92_create,
	.destroy = port92_destroy,
	.pio = port92_pio,
	.nr_pio = ARRAY_SIZE(port92_pio),
};
