// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for one device model (FUZZ_DEVICE names its descriptor):
 * the input is a sequence of 8-byte guest accesses against the device's own
 * port and MMIO ranges, as a hostile guest would make them; for a device
 * with a console back-end some records push input instead.
 */
#include <stdint.h>

#include "vmm/device.h"
#include "fake.h"

extern const struct device_desc FUZZ_DEVICE;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *vm;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!vm) {
		log_level = LOG_QUIET;
		vm = fake_vm(64 << 20);
		static struct vm_config cfg = { .cpus = 1, .debug_exit = true };
		vm->cfg = &cfg;
		vm->boot_ns = now_ns();
	}
	void *state;
	if (FUZZ_DEVICE.create(vm, &state))
		return 0;
	size_t nranges = FUZZ_DEVICE.nr_pio + FUZZ_DEVICE.nr_mmio;
	for (; size >= 8 && nranges; data += 8, size -= 8) {
		uint8_t op = data[0];
		if (op == 0xff && vm->serial.rx_push == NULL)
			op = 0;
		if (op == 0xff) {
			vm->serial.rx_push(vm->serial.dev, data + 1, data[1] % 8);
			continue;
		}
		unsigned idx = data[1] % nranges;
		const struct io_range_desc *r =
			idx < FUZZ_DEVICE.nr_pio ? &FUZZ_DEVICE.pio[idx] : &FUZZ_DEVICE.mmio[idx - FUZZ_DEVICE.nr_pio];
		static const unsigned sizes[4] = { 1, 2, 4, 8 };
		unsigned sz = sizes[data[4] & 3];
		uint64_t off = (uint64_t)(data[2] | data[3] << 8 | (data[4] & 0xf0) << 12) % r->len;
		if (sz > r->len - off)
			continue; /* the bus never hands a device an access past its range */
		uint32_t value;
		memcpy(&value, data + 4, 4);
		if (op & 1) {
			if (r->ops.write)
				r->ops.write(state, off, sz, value);
		} else if (r->ops.read) {
			(void)r->ops.read(state, off, sz);
		}
	}
	FUZZ_DEVICE.destroy(state);
	clear_stop(vm);
	return 0;
}
