// SPDX-License-Identifier: MIT
/* The KVM system interface: opening /dev/kvm, capability checks, VM creation. */
#pragma once

#include <stdint.h>

struct vm;
struct kvm_cpuid2;

/*
 * Open /dev/kvm (or validate the descriptor passed with --kvm-fd) and check
 * the API version and every capability keel needs.  Prints one clear line
 * per problem.  Returns the descriptor or -errno.
 */
int kvm_open(int passed_fd);

/* CPUID entries KVM can virtualise on this host (caller frees), or NULL. */
struct kvm_cpuid2 *kvm_supported_cpuid(int kvm_fd);

/* Highest vCPU count KVM allows on this host. */
unsigned kvm_max_vcpus(int kvm_fd);

/*
 * Create the VM on vm->kvm_fd: check the vCPU count, read the vCPU mapping
 * size and the supported CPUID, create the KVM VM with its in-kernel irqchip
 * and PIT, TSS and identity-map pages and memory slots for vm->mem, and keep
 * the interrupt controllers' initial state.  Done once: a guest reboot
 * resets this VM (kvm_reset_chips(), vcpu_reset()) rather than creating
 * another, so that the sandbox can forbid KVM_CREATE_VM.  0 or -errno
 * (already reported).
 */
int kvm_create_vm(struct vm *vm);
void kvm_destroy_vm(struct vm *vm);
/* Put the PICs, IOAPIC and PIT back in the state they were created in.  0 or -errno. */
int kvm_reset_chips(struct vm *vm);
