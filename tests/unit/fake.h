// SPDX-License-Identifier: MIT
/* Test doubles: a VM without KVM behind it, and stderr capture. */
#pragma once

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/accel.h"
#include "vmm/guest_mem.h"
#include "base/util.h"
#include "vmm/vm.h"

/* A VM struct for driving device models and loaders directly: no KVM VM
 * (the KVM accelerator on vm_fd -1, so interrupt-line changes go nowhere),
 * one idle vCPU slot. */
static inline struct vm *fake_vm(uint64_t ram)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	static struct vm_config cfg = { .cpus = 1, .cmdline = "" };
	vm->cfg = &cfg;
	vm->accel = &kvm_accel;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vm->serial.out_fd = -1;
	vm->firmware_log_fd = -1;
	vm->serial.rx_ready_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vm->nr_vcpus = 1;
	vm->vcpus = calloc(1, sizeof(*vm->vcpus));
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");
	if (ram && gm_init(&vm->mem, ram)) {
		fprintf(stderr, "fake_vm: cannot allocate guest RAM\n");
		exit(2);
	}
	return vm;
}

static inline void fake_vm_free(struct vm *vm)
{
	if (vm->mem.host)
		gm_destroy(&vm->mem);
	close(vm->stop_efd);
	close(vm->serial.rx_ready_efd);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	free(vm->vcpus);
	free(vm);
}

static inline int stop_reason(struct vm *vm)
{
	return atomic_load(&vm->stop_reason);
}

static inline void clear_stop(struct vm *vm)
{
	atomic_store(&vm->stop_reason, VM_RUNNING);
	vm->stop_status = 0;
}

/* Capture what the code under test writes to stderr. */
static int saved_stderr = -1;
static FILE *capture_file;

static inline void capture_begin(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	saved_stderr = dup(STDERR_FILENO);
	dup2(fileno(capture_file), STDERR_FILENO);
}

static inline const char *capture_end(void)
{
	static char buf[4096];
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(capture_file);
	size_t n = fread(buf, 1, sizeof(buf) - 1, capture_file);
	buf[n] = 0;
	fclose(capture_file);
	return buf;
}

static inline char *write_temp(const void *data, size_t len)
{
	static int seq;
	char *path = malloc(64);
	snprintf(path, 64, "/tmp/keel-unit-%d-%d", (int)getpid(), seq++);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len) {
		fprintf(stderr, "write_temp failed\n");
		exit(2);
	}
	fclose(f);
	return path;
}
