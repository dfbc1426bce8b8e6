// SPDX-License-Identifier: MIT
#include "cpuid.h"

#include <asm/kvm_para.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define BIT(n) (1u << (n))

/* Paravirtual features keel lets a guest use: all handled inside KVM. */
static const unsigned kvm_pv_allowed =
	BIT(KVM_FEATURE_CLOCKSOURCE) | BIT(KVM_FEATURE_NOP_IO_DELAY) | BIT(KVM_FEATURE_CLOCKSOURCE2) |
	BIT(KVM_FEATURE_ASYNC_PF) | BIT(KVM_FEATURE_STEAL_TIME) | BIT(KVM_FEATURE_PV_EOI) |
	BIT(KVM_FEATURE_PV_UNHALT) | BIT(KVM_FEATURE_PV_TLB_FLUSH) | BIT(KVM_FEATURE_ASYNC_PF_VMEXIT) |
	BIT(KVM_FEATURE_PV_SEND_IPI) | BIT(KVM_FEATURE_POLL_CONTROL) | BIT(KVM_FEATURE_PV_SCHED_YIELD) |
	BIT(KVM_FEATURE_ASYNC_PF_INT) | BIT(KVM_FEATURE_CLOCKSOURCE_STABLE_BIT);

/*
 * Features an instruction-emulating KVM (no VT-x/AMD-V) fails on in guest
 * kernel mode, as measured on such hosts: XSAVE/XRSTOR and everything that
 * needs them (AVX*), SMAP's CLAC/STAC, POPCNT/LZCNT, CMPXCHG16B.
 */
struct hidden_bits {
	unsigned leaf, subleaf;
	unsigned eax, ebx, ecx, edx;
};
static const struct hidden_bits emulated_host_hidden[] = {
	{ 0x1, 0, 0, 0,
	  BIT(12) /* FMA */ | BIT(13) /* CX16 */ | BIT(23) /* POPCNT */ | BIT(26) /* XSAVE */ |
		  BIT(27) /* OSXSAVE */ | BIT(28) /* AVX */ | BIT(29) /* F16C */,
	  0 },
	{ 0x7, 0, 0,
	  BIT(5) /* AVX2 */ | BIT(16) /* AVX512F */ | BIT(17) /* AVX512DQ */ | BIT(20) /* SMAP */ |
		  BIT(21) /* AVX512IFMA */ | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31) /* AVX512* */,
	  BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14) /* AVX512 VBMI/VNNI/... */ | BIT(3) /* PKU */,
	  BIT(2) | BIT(3) | BIT(8) /* AVX512 4VNNIW/4FMAPS/VP2INTERSECT */ },
	{ 0x80000001, 0, 0, 0, BIT(5) /* ABM: LZCNT/POPCNT */ | BIT(11) /* XOP */ | BIT(16) /* FMA4 */, 0 },
};

static unsigned order_base_2(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

static void set_topology(struct kvm_cpuid_entry2 *e, unsigned index, unsigned nr_cpus)
{
	unsigned shift = order_base_2(nr_cpus);
	switch (e->function) {
	case 0x1:
		/* Initial APIC ID and logical processor count of the package. */
		e->ebx = (e->ebx & 0x0000ffff) | (index << 24) | (MIN(nr_cpus, 255u) << 16);
		if (nr_cpus > 1)
			e->edx |= BIT(28); /* HTT: the count field is valid */
		e->ecx |= BIT(31);         /* running under a hypervisor */
		break;
	case 0x4:
		/* All vCPUs are cores of one package, each with private caches but L3. */
		if ((e->eax & 0x1f) == 0)
			break;
		e->eax &= 0x3ff;
		e->eax |= (nr_cpus - 1) << 26;
		if (((e->eax >> 5) & 7) == 3)
			e->eax |= (nr_cpus - 1) << 14;
		break;
	case 0x80000008:
		e->ecx = (e->ecx & ~0xf0ffu) | (nr_cpus - 1) | (shift << 12);
		break;
	default:
		break;
	}
}

/*
 * Leaf 0xb (extended topology), written whole rather than edited: KVM
 * copies the host's sub-leaves, and where the host has fewer levels (as
 * on some hosts' SMT-only leaf) the guest would see each vCPU as a package
 * of its own while leaf 1 says otherwise.  Sub-leaf 0: one thread per core;
 * 1: nr_cpus cores per package; 2: the end of the list.
 */
static struct kvm_cpuid_entry2 topology_leaf(unsigned sub, unsigned index, unsigned nr_cpus)
{
	struct kvm_cpuid_entry2 e = { .function = 0xb, .index = sub, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	e.edx = index; /* x2APIC ID */
	e.ecx = sub & 0xff;
	if (sub == 0) {
		e.ebx = 1;
		e.ecx |= 1u << 8; /* SMT level */
	} else if (sub == 1) {
		e.eax = order_base_2(nr_cpus);
		e.ebx = nr_cpus;
		e.ecx |= 2u << 8; /* core level */
	}
	return e;
}

static void hide_emulator_unsafe(struct kvm_cpuid_entry2 *e)
{
	if (e->function == 0xd) {
		e->eax = e->ebx = e->ecx = e->edx = 0;
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(emulated_host_hidden); i++) {
		const struct hidden_bits *h = &emulated_host_hidden[i];
		if (h->leaf != e->function || h->subleaf != e->index)
			continue;
		e->eax &= ~h->eax;
		e->ebx &= ~h->ebx;
		e->ecx &= ~h->ecx;
		e->edx &= ~h->edx;
	}
}

/*
 * The processor brand string (leaves 0x80000002-4): KVM reports these leaves
 * but zeroes them, leaving the name to the VMM; like QEMU's -cpu host, keel
 * passes the host's, so that the guest names its CPU ("model name").
 */
static void brand_from_host(struct kvm_cpuid_entry2 *e)
{
	if (e->function < 0x80000002 || e->function > 0x80000004 || e->eax | e->ebx | e->ecx | e->edx)
		return;
	unsigned r[4];
	cpuid_host(0x80000000, r);
	if (r[0] < 0x80000004)
		return;
	cpuid_host(e->function, r);
	e->eax = r[0], e->ebx = r[1], e->ecx = r[2], e->edx = r[3];
}

struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported, unsigned index, const struct cpuid_options *o)
{
	enum { TOPOLOGY_SUBLEAVES = 3 };
	size_t bytes = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(bytes + TOPOLOGY_SUBLEAVES * sizeof(supported->entries[0]));
	if (!c)
		return NULL;
	memcpy(c, supported, bytes);

	unsigned out = 0, max_basic = 0;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 e = c->entries[i];
		if (e.function == 0)
			max_basic = e.eax;
		/* Leaf 0x1f would have to repeat 0xb; guests fall back to 0xb without it. */
		if (e.function == 0x1f || e.function == 0xb)
			continue;
		if (e.function == 0x80000001)
			e.ecx &= ~BIT(22); /* no TOPOEXT: leaf 0x8000001e is not described */
		if (e.function == 0x8000001e)
			continue;
		if (e.function == KVM_CPUID_SIGNATURE) {
			e.eax = KVM_CPUID_FEATURES;
			memcpy(&e.ebx, "KVMK", 4);
			memcpy(&e.ecx, "VMKV", 4);
			memcpy(&e.edx, "M\0\0\0", 4);
		}
		if (e.function == KVM_CPUID_FEATURES) {
			e.eax &= kvm_pv_allowed;
			e.ebx = e.ecx = e.edx = 0;
		}
		if (e.function == 0x1 && o->tsc_deadline)
			e.ecx |= BIT(24); /* TSC-deadline mode of the local APIC timer */
		brand_from_host(&e);
		set_topology(&e, index, o->nr_cpus);
		if (o->emulated_host)
			hide_emulator_unsafe(&e);
		c->entries[out++] = e;
	}
	if (max_basic >= 0xb)
		for (unsigned sub = 0; sub < TOPOLOGY_SUBLEAVES; sub++)
			c->entries[out++] = topology_leaf(sub, index, o->nr_cpus);
	c->nent = out;
	return c;
}

void cpuid_host(unsigned leaf, unsigned r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

unsigned cpuid_phys_bits(const struct kvm_cpuid2 *supported)
{
	for (unsigned i = 0; supported && i < supported->nent; i++)
		if (supported->entries[i].function == 0x80000008 && (supported->entries[i].eax & 0xff))
			return supported->entries[i].eax & 0xff;
	return 36;
}
