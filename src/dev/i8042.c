// SPDX-License-Identifier: MIT
/*
 * The i8042 keyboard controller, as much of it as a guest needs to reset the
 * machine: controller commands, the command byte, self-test, the output
 * port (bit 0 low = reset) and the 0xfe reset pulse.  No keyboard or mouse
 * is attached; bytes sent to them are not answered.  The FADT tells ACPI
 * guests there is no 8042, so Linux only comes here to reboot (reboot=k).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "vmm/device.h"
#include "vmm/layout.h"
#include "base/util.h"
#include "vmm/vm.h"

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08

enum {
	CMD_READ_CTR = 0x20,
	CMD_WRITE_CTR = 0x60,
	CMD_DISABLE_AUX = 0xa7,
	CMD_ENABLE_AUX = 0xa8,
	CMD_TEST_AUX = 0xa9,
	CMD_SELF_TEST = 0xaa,
	CMD_TEST_KBD = 0xab,
	CMD_DISABLE_KBD = 0xad,
	CMD_ENABLE_KBD = 0xae,
	CMD_READ_OUTPORT = 0xd0,
	CMD_WRITE_OUTPORT = 0xd1,
	CMD_PULSE_BASE = 0xf0, /* 0xf0-0xff: pulse output lines whose bit is 0 */
};

struct i8042 {
	pthread_mutex_t lock;
	struct vm *vm;
	uint8_t status, ctr, outport;
	uint8_t out; /* output buffer, valid when STATUS_OBF */
	uint8_t pending_cmd; /* command waiting for its data byte, 0: none */
};

static void put_output(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->status |= STATUS_OBF;
}

static void reset_machine(struct i8042 *k)
{
	vm_request_stop(k->vm, VM_STOP_RESET, 0);
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR: put_output(k, k->ctr); break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPORT: k->pending_cmd = cmd; break;
	case CMD_SELF_TEST:
		k->status |= STATUS_SYS;
		put_output(k, 0x55);
		break;
	case CMD_TEST_KBD:
	case CMD_TEST_AUX: put_output(k, 0x00); break;
	case CMD_DISABLE_KBD: k->ctr |= 0x10; break;
	case CMD_ENABLE_KBD: k->ctr &= (uint8_t)~0x10; break;
	case CMD_DISABLE_AUX: k->ctr |= 0x20; break;
	case CMD_ENABLE_AUX: k->ctr &= (uint8_t)~0x20; break;
	case CMD_READ_OUTPORT: put_output(k, k->outport); break;
	default:
		/* Pulse: line 0 (the reset line) pulses when bit 0 of the command is 0. */
		if (cmd >= CMD_PULSE_BASE && !(cmd & 1))
			reset_machine(k);
		break;
	}
}

static uint64_t data_read(void *opaque, uint64_t off, unsigned size)
{
	struct i8042 *k = opaque;
	(void)off, (void)size;
	pthread_mutex_lock(&k->lock);
	uint8_t v = k->out;
	k->status &= (uint8_t)~STATUS_OBF;
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void data_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	uint8_t v = (uint8_t)value;
	(void)off, (void)size;
	pthread_mutex_lock(&k->lock);
	k->status &= (uint8_t)~STATUS_CMD;
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	if (cmd == CMD_WRITE_CTR) {
		k->ctr = v;
	} else if (cmd == CMD_WRITE_OUTPORT) {
		k->outport = v;
		if (!(v & 1))
			reset_machine(k);
	}
	/* Otherwise the byte is for the keyboard, and there is none. */
	pthread_mutex_unlock(&k->lock);
}

static uint64_t status_read(void *opaque, uint64_t off, unsigned size)
{
	struct i8042 *k = opaque;
	(void)off, (void)size;
	pthread_mutex_lock(&k->lock);
	uint8_t v = k->status;
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void command_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	(void)off, (void)size;
	pthread_mutex_lock(&k->lock);
	k->status |= STATUS_CMD;
	command(k, (uint8_t)value);
	pthread_mutex_unlock(&k->lock);
}

static int i8042_create(struct vm *vm, void **state)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	k->vm = vm;
	k->status = STATUS_SYS;
	k->ctr = 0x30; /* keyboard and aux interfaces disabled, no IRQs */
	k->outport = 0x01; /* reset line high: running */
	*state = k;
	return 0;
}

static void i8042_destroy(void *state)
{
	struct i8042 *k = state;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* Two separate one-byte ports: 0x61-0x63 between them belong to the PIT/speaker. */
static const struct io_range_desc i8042_pio[] = {
	{ PORT_I8042_DATA, 1, { data_read, data_write } },
	{ PORT_I8042_CMD, 1, { status_read, command_write } },
};

const struct device_desc i8042_device = {
	.name = "i8042",
	.create = i8042_create,
	.destroy = i8042_destroy,
	.pio = i8042_pio,
	.nr_pio = ARRAY_SIZE(i8042_pio),
};
