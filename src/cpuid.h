// SPDX-License-Identifier: MIT
/* The CPUID a vCPU sees: KVM's supported set, filtered to what keel supports. */
#pragma once

#include <stdbool.h>

struct kvm_cpuid2;

/*
 * Build vCPU `index`'s CPUID table (of nr_cpus) from KVM's supported entries.
 * emulated_host hides features a kernel-mode instruction emulator cannot run.
 * Returns a malloc'ed table or NULL.
 */
struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported, unsigned index, unsigned nr_cpus,
			       bool emulated_host);

/* Guest physical address width KVM reports (CPUID 0x80000008), 36 if absent. */
unsigned cpuid_phys_bits(const struct kvm_cpuid2 *supported);
