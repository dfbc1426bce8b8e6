// SPDX-License-Identifier: MIT
/* The CPUID a vCPU sees: KVM's supported set, filtered to what keel supports. */
#pragma once

#include <stdbool.h>

struct kvm_cpuid2;

/*
 * Build vCPU `index`'s CPUID table from KVM's supported entries.
 * Returns a malloc'ed table or NULL.
 */
struct cpuid_options {
	unsigned nr_cpus;
	bool emulated_host;  /* hide what an instruction emulator cannot run */
	bool tsc_deadline;   /* KVM_CAP_TSC_DEADLINE_TIMER: not in the supported set, but offered */
};
struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported, unsigned index, const struct cpuid_options *o);

/* Guest physical address width KVM reports (CPUID 0x80000008), 36 if absent or without KVM (NULL). */
unsigned cpuid_phys_bits(const struct kvm_cpuid2 *supported);

/* The host's CPUID leaf `leaf` (subleaf 0): eax, ebx, ecx, edx. */
void cpuid_host(unsigned leaf, unsigned r[4]);
