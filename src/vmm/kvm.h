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
 * Create the VM: KVM VM, in-kernel irqchip and PIT, TSS and identity-map
 * pages, and memory slots for vm->mem.  0 or -errno (already reported).
 */
int kvm_create_vm(struct vm *vm);
void kvm_destroy_vm(struct vm *vm);
