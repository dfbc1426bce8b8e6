// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for VM-exit handling with every platform device
 * attached: each 40-byte record becomes a kvm_run exit (any reason, port
 * I/O with any size/count/offset, MMIO of any length) handled by the exit
 * table, so hostile guest accesses reach all device models through the
 * real dispatch path.
 */
#include <linux/kvm.h>
#include <stdint.h>

#include "fake.h"
#include "vmm/layout.h"
#include "vmm/platform.h"
#include "vmm/vcpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm *vm;
static union {
	struct kvm_run run;
	uint8_t bytes[4096];
} page;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!vm) {
		log_level = LOG_QUIET;
		vm = fake_vm(64 << 20);
		static struct vm_config cfg = { .cpus = 1, .debug_exit = true };
		vm->cfg = &cfg;
		vm->run_size = sizeof(page);
	}
	if (platform_create(vm))
		return 0;
	vm->boot_ns = now_ns();
	struct vcpu v = { .vm = vm, .fd = -1, .run = &page.run };
	for (; size >= 40; data += 40, size -= 40) {
		struct kvm_run *run = &page.run;
		uint8_t kind = data[0] % 4;
		run->exit_reason = kind == 0 ? KVM_EXIT_IO : kind == 1 ? KVM_EXIT_MMIO : data[1];
		run->io.direction = data[2] & 1;
		run->io.size = data[3];
		memcpy(&run->io.port, data + 4, 2);
		memcpy(&run->io.count, data + 6, 4);
		memcpy(&run->io.data_offset, data + 10, 8);
		if (kind == 1) {
			uint64_t a;
			memcpy(&a, data + 4, 8);
			/* Aim most MMIO at the ECAM window. */
			run->mmio.phys_addr = (data[2] & 2) ? a : PCI_ECAM_BASE + (a & 0x0fffffff);
			run->mmio.len = data[3] % 10;
			run->mmio.is_write = data[12] & 1;
			memcpy(run->mmio.data, data + 13, 8);
		}
		memcpy(page.bytes + 2048, data + 18, 22);
		(void)vcpu_handle_exit(&v);
		clear_stop(vm);
	}
	platform_destroy(vm);
	return 0;
}
