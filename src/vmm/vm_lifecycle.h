// SPDX-License-Identifier: MIT
/* Creating, booting and tearing down a VM (see vm.c). */
#pragma once

#include <stdbool.h>

#include "boot/boot.h"
#include "vm.h"

/*
 * Long-lived state, no KVM yet: RAM, eventfds, the vCPU array.  accel is
 * what will run the machine (&kvm_accel, or the device-test backend).
 * 0 or -errno (reported).  vm_fini() also destroys the KVM VM and vCPUs.
 */
int vm_init(struct vm *vm, const struct vm_config *cfg, const struct accel_ops *accel);
void vm_fini(struct vm *vm);

/* Load the kernel and initrd into RAM (vm->entry says how to enter it).  Needs no KVM. */
int vm_load(struct vm *vm, const struct boot_files *files);
/* Create the KVM VM on kvm_fd (once; see kvm_create_vm()).  0 or -errno (reported). */
int vm_attach_kvm(struct vm *vm, int kvm_fd);

/*
 * A boot's machine: vm_build() creates the devices and ACPI tables (RAM
 * already loaded); vm_create_vcpus() creates the vCPUs once (their CPUID
 * depends on vm->emulated_host); vm_boot_cpus() puts them in the boot state,
 * after a reset to their creation state (and the interrupt controllers' too)
 * when `reset`.  vm_restart() is a guest reboot on the same KVM VM: clear
 * RAM, load, build, reset.  0 or -errno (reported); on failure no devices
 * are left.
 */
int vm_build(struct vm *vm);
int vm_create_vcpus(struct vm *vm);
int vm_boot_cpus(struct vm *vm, bool reset);
int vm_restart(struct vm *vm, const struct boot_files *files);
/* Start the vCPU threads. */
int vm_run_vcpus(struct vm *vm);
/* Stop the vCPUs (if running) and tear the devices down; the KVM VM and its vCPUs stay. */
void vm_stop(struct vm *vm);
