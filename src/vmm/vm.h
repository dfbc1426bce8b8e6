// SPDX-License-Identifier: MIT
/* One virtual machine: KVM handles, RAM, buses, devices, vCPUs, lifecycle. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"
#include "bus.h"
#include "config.h"
#include "guest_mem.h"
#include "irq_route.h"

struct kvm_run;
struct kvm_cpuid2;
struct device_desc;
struct pci_bus;
struct virtio_pci;
struct blk_dev;

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,   /* ACPI S5 */
	VM_STOP_RESET,      /* reset register, i8042 pulse, KVM system reset */
	VM_STOP_DEBUG_EXIT, /* --debug-exit port */
	VM_STOP_CRASH,      /* triple fault, internal error, emulation failure */
	VM_STOP_QUIT,       /* Ctrl-A x, SIGINT/SIGTERM to keel */
	VM_STOP_ERROR,      /* keel failed while running */
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	pthread_t self;       /* written by the vCPU thread before it sets running */
	bool started;         /* main thread only: the thread exists and must be joined */
	_Atomic bool running; /* set by the vCPU thread itself before its first stop check */
};

/*
 * A character back-end for a serial device: where guest output goes, and how
 * the console hands the device input.  The device fills in rx_push.
 */
struct chardev {
	int out_fd; /* -1: output is discarded */
	int rx_ready_efd; /* the device writes it when it can take input again */
	size_t (*rx_push)(void *dev, const uint8_t *buf, size_t len);
	void *dev;
};

/* Battery-backed CMOS: survives guest reboots (devices do not). */
struct cmos_nvram {
	bool valid;
	uint8_t ram[128];
	int64_t rtc_offset_sec;
};

struct device_instance {
	const struct device_desc *desc;
	void *state;
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	int run_size;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct kvm_cpuid2 *supported_cpuid;
	bool emulated_host;

	struct vcpu *vcpus;
	unsigned nr_vcpus;

	struct device_instance *devices;
	unsigned nr_devices;
	struct chardev serial;
	struct pci_bus *pci; /* bus 0, owned by the host bridge device */
	struct irq_router irq; /* GSI routes: irqchip lines and device MSIs */
	struct virtio_pci **virtio; /* virtio functions on bus 0 */
	unsigned nr_virtio;
	struct blk_dev **disks; /* one block stack per --disk; lives as long as keel */
	unsigned nr_disks;
	int virtio_console_fd; /* where virtio-console output goes; -1: discarded */
	struct cmos_nvram nvram;
	struct boot_entry entry; /* how the boot vCPU enters the loaded kernel */

	_Atomic int stop_reason; /* enum vm_stop_reason; first request wins */
	int stop_status;         /* exit status for VM_STOP_DEBUG_EXIT */
	int stop_efd;            /* eventfd: wakes the main loop on a stop request */
	uint64_t boot_ns;        /* when the current boot started */
	bool dump_on_stop;       /* print every vCPU's registers when it stops (SIGQUIT) */
};

/* Ask the VM to stop.  Safe from any thread; only the first request counts. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status);
/*
 * Sequentially consistent on purpose: a stopper sets stop_reason and then
 * reads vcpu->running to decide whom to kick, while a starting vCPU sets
 * running and then reads stop_reason.  With both orders total, at least
 * one side sees the other, so no vCPU can enter KVM_RUN unkicked after a
 * stop (a Dekker pattern; acquire/release alone would allow both to miss).
 */
static inline bool vm_stopping(struct vm *vm)
{
	return atomic_load(&vm->stop_reason) != VM_RUNNING;
}
/* Drive an ISA/IOAPIC interrupt line (level semantics). */
void vm_set_irq(struct vm *vm, unsigned gsi, bool level);
