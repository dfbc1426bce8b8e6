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
struct accel_ops;
struct vcpu_reset_state;
struct kvm_chip_state;
struct device_desc;
struct pci_bus;
struct virtio_pci;
struct ahci;
struct blk_dev;
struct fw_cfg;

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
	struct vcpu_reset_state *reset_state; /* what a guest reboot writes back (vcpu_reset.c) */
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

/* Up to this many callbacks run when a virtual clock (device tests) moves. */
#define VM_CLOCK_WATCHERS 4

struct vm {
	const struct vm_config *cfg;
	const struct accel_ops *accel; /* KVM, or the device-test backend (accel.h) */
	void *accel_state;             /* the device-test backend's */
	int kvm_fd;
	int vm_fd;
	int run_size;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct kvm_cpuid2 *supported_cpuid;
	struct kvm_chip_state *chip_state; /* PIC, IOAPIC, PIT as created: a reboot restores them */
	bool emulated_host;
	int vcpu_fd_base, vcpu_fd_span; /* vCPU descriptors are [base, base + span), span a power of two */

	/*
	 * Time as devices see it (vm_clock_ns()).  Normally the host's monotonic
	 * clock; in device tests a virtual clock that moves only when the test
	 * says, calling the watchers (timer-driven devices) synchronously.
	 */
	bool virtual_clock;
	_Atomic uint64_t virtual_ns;
	int64_t virtual_realtime_base; /* host real time (s) when the virtual clock was 0 */
	struct {
		void (*fn)(void *opaque);
		void *opaque;
	} clock_watch[VM_CLOCK_WATCHERS];

	struct vcpu *vcpus;
	unsigned nr_vcpus;

	struct device_instance *devices;
	unsigned nr_devices;
	struct chardev serial;
	struct pci_bus *pci; /* bus 0, owned by the host bridge device */
	struct irq_router irq; /* GSI routes: irqchip lines and device MSIs */
	struct virtio_pci **virtio; /* virtio functions on bus 0 */
	unsigned nr_virtio;
	struct ahci *ahci; /* the AHCI controller (src/ahci), when a disk is on one */
	struct blk_dev **disks; /* one block stack per --disk; lives as long as keel */
	unsigned nr_disks;
	int virtio_console_fd; /* where virtio-console output goes; -1: discarded */
	int firmware_log_fd;   /* --firmware-log; -1: none */
	struct fw_cfg *fw_cfg; /* the fw_cfg device, while it exists */
	const struct boot_files *files; /* what vm_load() loaded (the firmware's option ROMs) */
	const uint8_t *rom;    /* --firmware: the image, mapped read-only at FIRMWARE_END - rom_size */
	uint64_t rom_size;
	/* Per --disk: the OpenFirmware path its controller gives it ("" none), for the bootorder file. */
	char boot_path[KEEL_MAX_DISKS][64];
	struct cmos_nvram nvram;
	struct boot_entry entry; /* how the boot vCPU enters the loaded kernel */

	_Atomic int stop_reason; /* enum vm_stop_reason; first request wins */
	int stop_status;         /* exit status for VM_STOP_DEBUG_EXIT */
	int stop_efd;            /* eventfd: wakes the main loop on a stop request */
	uint64_t boot_ns;        /* when the current boot started */
	bool dump_on_stop;       /* print every vCPU's registers when it stops (SIGQUIT) */
};

/* Record disk's firmware device path (its controller calls this once the disk has a PCI slot). */
void vm_set_boot_path(struct vm *vm, int disk, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

struct acpi_config;
/* What keel's ACPI tables describe for this VM (CPUs, the 64-bit PCI window). */
void vm_acpi_config(const struct vm *vm, struct acpi_config *ac);

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

/* Monotonic nanoseconds as the devices see them (see struct vm). */
uint64_t vm_clock_ns(const struct vm *vm);
/* Real time as the devices see it: host CLOCK_REALTIME, or virtual time since the test began. */
void vm_clock_realtime(const struct vm *vm, int64_t *sec, uint64_t *nsec);
/* Call fn(opaque) whenever the virtual clock moves (never on a real one).  0 or -ENOSPC. */
int vm_clock_watch(struct vm *vm, void (*fn)(void *opaque), void *opaque);
void vm_clock_unwatch(struct vm *vm, void (*fn)(void *opaque), void *opaque);
/* Device tests: move the virtual clock to ns (never backwards) and run the watchers. */
void vm_clock_advance(struct vm *vm, uint64_t ns);
