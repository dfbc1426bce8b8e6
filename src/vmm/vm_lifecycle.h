// SPDX-License-Identifier: MIT
/* Creating, booting and tearing down a VM (see vm.c). */
#pragma once

#include <stdbool.h>

#include "boot/boot.h"
#include "vm.h"

/* Long-lived state: RAM, CPUID, eventfds.  0 or -errno (reported). */
int vm_init(struct vm *vm, const struct vm_config *cfg, int kvm_fd, bool emulated_host);
void vm_fini(struct vm *vm);

/*
 * A fresh machine in two steps: vm_build() creates the KVM VM, memory slots
 * and devices and loads the kernel (the boot entry goes to vm->entry);
 * vm_create_vcpus() adds the vCPUs, whose CPUID depends on vm->emulated_host.
 * vm_start() does both.  0 or -errno (reported); on failure nothing is left.
 */
int vm_build(struct vm *vm, const struct boot_files *files);
int vm_create_vcpus(struct vm *vm);
int vm_start(struct vm *vm, const struct boot_files *files);
/* Start the vCPU threads. */
int vm_run_vcpus(struct vm *vm);
/* Stop the vCPUs (if running) and tear the machine down. */
void vm_stop(struct vm *vm);
