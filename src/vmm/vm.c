// SPDX-License-Identifier: MIT
/*
 * VM lifecycle.  What lives as long as keel (RAM, the KVM VM and its vCPUs,
 * the character back-end) is set up once; what a boot needs (devices, ACPI
 * tables, the loaded kernel, vCPU and interrupt-controller state) is built
 * for each boot and torn down by vm_stop(), so a guest reboot is a fresh
 * machine on the same KVM VM (vm_restart()).
 */
#include "vm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "acpi/acpi.h"
#include "boot/boot.h"
#include "cpuid.h"
#include "fw/fw_files.h"
#include "kvm.h"
#include "layout.h"
#include "platform.h"
#include "base/util.h"
#include "trace/trace.h"
#include "vcpu.h"
#include "vm_lifecycle.h"

#define MMIO64_SIZE (32 * GiB)

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status)
{
	int expected = VM_RUNNING;
	/* Only the first request decides how the VM ends (seq_cst: see vm_stopping()). */
	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason))
		return;
	vm->stop_status = status;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	uint64_t one = 1;
	(void)!write(vm->stop_efd, &one, sizeof(one));
}

void vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	TRACE(IRQ_INJECT, gsi, level);
	vm->accel->set_irq(vm, gsi, level);
}

uint64_t vm_clock_ns(const struct vm *vm)
{
	return vm->virtual_clock ? atomic_load(&vm->virtual_ns) : now_ns();
}

void vm_clock_realtime(const struct vm *vm, int64_t *sec, uint64_t *nsec)
{
	if (vm->virtual_clock) {
		uint64_t ns = atomic_load(&vm->virtual_ns);
		*sec = vm->virtual_realtime_base + (int64_t)(ns / 1000000000u);
		*nsec = ns % 1000000000u;
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = ts.tv_sec;
	*nsec = (uint64_t)ts.tv_nsec;
}

int vm_clock_watch(struct vm *vm, void (*fn)(void *opaque), void *opaque)
{
	for (unsigned i = 0; i < VM_CLOCK_WATCHERS; i++) {
		if (!vm->clock_watch[i].fn) {
			vm->clock_watch[i].fn = fn;
			vm->clock_watch[i].opaque = opaque;
			return 0;
		}
	}
	return -ENOSPC;
}

void vm_clock_unwatch(struct vm *vm, void (*fn)(void *opaque), void *opaque)
{
	for (unsigned i = 0; i < VM_CLOCK_WATCHERS; i++)
		if (vm->clock_watch[i].fn == fn && vm->clock_watch[i].opaque == opaque)
			vm->clock_watch[i].fn = NULL;
}

void vm_clock_advance(struct vm *vm, uint64_t ns)
{
	if (!vm->virtual_clock || ns < atomic_load(&vm->virtual_ns))
		return;
	atomic_store(&vm->virtual_ns, ns);
	for (unsigned i = 0; i < VM_CLOCK_WATCHERS; i++)
		if (vm->clock_watch[i].fn)
			vm->clock_watch[i].fn(vm->clock_watch[i].opaque);
}

void vm_set_boot_path(struct vm *vm, int disk, const char *fmt, ...)
{
	if (disk < 0 || disk >= KEEL_MAX_DISKS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->boot_path[disk], sizeof(vm->boot_path[disk]), fmt, ap);
	va_end(ap);
}

int vm_init(struct vm *vm, const struct vm_config *cfg, const struct accel_ops *accel)
{
	int r;
	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->accel = accel;
	vm->kvm_fd = -1;
	vm->vm_fd = -1;
	vm->nr_vcpus = cfg->cpus;
	vm->serial.out_fd = -1;
	vm->virtio_console_fd = -1;
	vm->firmware_log_fd = -1;
	vm->serial.rx_ready_efd = -1;
	vm->stop_efd = -1;
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");

	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->serial.rx_ready_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0 || vm->serial.rx_ready_efd < 0) {
		r = -errno;
		log_error("eventfd: %s", strerror(errno));
		goto close_efds;
	}
	vm->vcpus = calloc(cfg->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		r = -ENOMEM;
		goto close_efds;
	}
	for (unsigned i = 0; i < cfg->cpus; i++)
		vm->vcpus[i].fd = -1;
	r = gm_init(&vm->mem, cfg->memory);
	if (r) {
		log_error("cannot allocate %llu MiB of guest RAM: %s", (unsigned long long)(cfg->memory >> 20),
			  strerror(-r));
		goto free_vcpus;
	}
	return 0;

free_vcpus:
	free(vm->vcpus);
	vm->vcpus = NULL;
close_efds:
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->serial.rx_ready_efd >= 0)
		close(vm->serial.rx_ready_efd);
	vm->stop_efd = vm->serial.rx_ready_efd = -1;
	return r;
}

void vm_fini(struct vm *vm)
{
	for (unsigned i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	kvm_destroy_vm(vm);
	gm_destroy(&vm->mem);
	free(vm->vcpus);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->serial.rx_ready_efd >= 0)
		close(vm->serial.rx_ready_efd);
	vm->vcpus = NULL;
}

int vm_load(struct vm *vm, const struct boot_files *files)
{
	vm->files = files;
	if (files->firmware) {
		vm->rom = files->firmware;
		vm->rom_size = files->firmware_size;
		return boot_firmware_load(&vm->mem, files, &vm->entry);
	}
	/* The RSDP's address is fixed (ACPI tables come first at ACPI_TABLES_ADDR): the loader needs no tables yet. */
	return boot_load(&vm->mem, files, vm->cfg->cmdline, ACPI_TABLES_ADDR, &vm->entry);
}

int vm_attach_kvm(struct vm *vm, int kvm_fd)
{
	vm->kvm_fd = kvm_fd;
	return kvm_create_vm(vm);
}

void vm_acpi_config(const struct vm *vm, struct acpi_config *ac)
{
	*ac = (struct acpi_config){ .nr_cpus = vm->nr_vcpus };
	uint64_t ram_top = vm->mem.nr_regions > 1 ? HIGHMEM_BASE + vm->mem.regions[1].len : HIGHMEM_BASE;
	uint64_t base = ALIGN_UP(ram_top, GiB);
	unsigned bits = cpuid_phys_bits(vm->supported_cpuid);
	if (bits < 64 && base + MMIO64_SIZE <= (1ull << bits)) {
		ac->mmio64_base = base;
		ac->mmio64_size = MMIO64_SIZE;
	}
}

static int load_acpi(struct vm *vm, uint64_t *rsdp)
{
	struct acpi_config ac;
	vm_acpi_config(vm, &ac);
	uint8_t *dst = gm_ptr(&vm->mem, ACPI_TABLES_ADDR, ACPI_TABLES_SIZE);
	if (!dst || !acpi_build(dst, ACPI_TABLES_SIZE, ACPI_TABLES_ADDR, &ac)) {
		log_error("ACPI tables do not fit in the BIOS area");
		return -ENOSPC;
	}
	*rsdp = ACPI_TABLES_ADDR; /* the RSDP comes first */
	return 0;
}

int vm_build(struct vm *vm)
{
	int r;
	atomic_store(&vm->stop_reason, VM_RUNNING);
	vm->stop_status = 0;
	uint64_t drain;
	(void)!read(vm->stop_efd, &drain, sizeof(drain));

	r = platform_create(vm);
	if (r)
		return r;
	if (vm->entry.mode == BOOT_MODE_RESET) {
		/* Firmware builds the guest's tables from what fw_cfg offers, keel's ACPI tables among them. */
		r = firmware_config(vm);
	} else {
		uint64_t rsdp;
		r = load_acpi(vm, &rsdp);
	}
	if (r)
		platform_destroy(vm);
	return r;
}

int vm_create_vcpus(struct vm *vm)
{
	int r;
	unsigned created = 0;
	for (; created < vm->nr_vcpus; created++) {
		r = vcpu_create(vm, &vm->vcpus[created], created);
		if (r)
			goto destroy_vcpus;
	}
	r = vcpu_pack_fds(vm);
	if (r) {
		log_error("vCPU descriptors: %s", strerror(-r));
		goto destroy_vcpus;
	}
	return 0;

destroy_vcpus:
	while (created)
		vcpu_destroy(&vm->vcpus[--created]);
	return r;
}

int vm_boot_cpus(struct vm *vm, bool reset)
{
	int r = 0;
	if (reset) {
		r = kvm_reset_chips(vm);
		if (r) {
			log_error("resetting the interrupt controllers: %s", strerror(-r));
			return r;
		}
		for (unsigned i = 0; i < vm->nr_vcpus && !r; i++)
			r = vcpu_reset(&vm->vcpus[i]);
		if (r)
			return r;
	}
	if (vm->entry.mode == BOOT_MODE_RESET)
		return 0; /* a vCPU as KVM creates it (or vcpu_reset() restores it) is at the reset vector */
	r = vcpu_set_boot_state(&vm->vcpus[0], &vm->entry);
	if (r)
		log_error("setting the boot vCPU's registers: %s", strerror(-r));
	return r;
}

int vm_restart(struct vm *vm, const struct boot_files *files)
{
	int r = gm_clear(&vm->mem);
	if (r) {
		log_error("clearing guest RAM: %s", strerror(-r));
		return r;
	}
	r = vm_load(vm, files);
	if (r)
		return r;
	r = vm_build(vm);
	if (r)
		return r;
	r = vm_boot_cpus(vm, true);
	if (r)
		platform_destroy(vm);
	return r;
}

int vm_run_vcpus(struct vm *vm)
{
	vm->boot_ns = vm_clock_ns(vm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int r = vcpu_start(&vm->vcpus[i]);
		if (r) {
			log_error("starting vCPU %u: %s", i, strerror(-r));
			vm_request_stop(vm, VM_STOP_ERROR, 0);
			return r;
		}
	}
	return 0;
}

void vm_stop(struct vm *vm)
{
	/* Every vCPU leaves KVM_RUN before any device goes away. */
	vm_request_stop(vm, VM_STOP_ERROR, 0); /* no-op if a reason is already set */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->started)
			pthread_join(v->thread, NULL);
		v->started = false;
	}
	for (unsigned i = 0; i < vm->nr_vcpus && vm->dump_on_stop; i++)
		if (vm->vcpus[i].fd >= 0)
			vcpu_dump(&vm->vcpus[i], stderr);
	platform_destroy(vm);
}
