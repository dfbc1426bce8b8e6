// SPDX-License-Identifier: MIT
/*
 * What a stopped or crashed vCPU was doing, for the user who must tell why a
 * guest hung: registers, activity state, pending events, the local APIC's
 * in-service and requested vectors, and the top of the guest's stack
 * (translated through the guest's own page tables by KVM).
 */
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base/util.h"
#include "vcpu.h"

static const char *const mp_state_names[] = {
	[KVM_MP_STATE_RUNNABLE] = "runnable",
	[KVM_MP_STATE_UNINITIALIZED] = "uninitialized",
	[KVM_MP_STATE_INIT_RECEIVED] = "waiting for SIPI",
	[KVM_MP_STATE_HALTED] = "halted",
	[KVM_MP_STATE_SIPI_RECEIVED] = "SIPI received",
};

/* The vectors set in one of the local APIC's 256-bit registers (ISR at 0x100, IRR at 0x200). */
static void apic_vectors(FILE *out, const struct kvm_lapic_state *la, unsigned reg, const char *name)
{
	fprintf(out, " %s:", name);
	unsigned n = 0;
	for (unsigned word = 0; word < 8; word++) {
		uint32_t bits;
		memcpy(&bits, &la->regs[reg + word * 16], 4);
		for (unsigned b = 0; b < 32; b++) {
			if (!(bits & (1u << b)))
				continue;
			fprintf(out, " 0x%02x", word * 32 + b);
			n++;
		}
	}
	if (!n)
		fprintf(out, " -");
}

static void dump_state(struct vcpu *v, FILE *out)
{
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;
	struct kvm_lapic_state la;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0) {
		const char *name = mp.mp_state < ARRAY_SIZE(mp_state_names) ? mp_state_names[mp.mp_state] : NULL;
		fprintf(out, "  state %s", name ? name : "other");
	}
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
		fprintf(out, "  injecting:");
		if (ev.interrupt.injected)
			fprintf(out, " interrupt 0x%02x", ev.interrupt.nr);
		if (ev.exception.injected)
			fprintf(out, " exception %u", ev.exception.nr);
		if (!ev.interrupt.injected && !ev.exception.injected)
			fprintf(out, " -");
		fprintf(out, "  nmi pending %u masked %u  interrupt shadow %u", ev.nmi.pending, ev.nmi.masked,
			ev.interrupt.shadow);
	}
	if (ioctl(v->fd, KVM_GET_LAPIC, &la) == 0) {
		uint32_t tpr;
		memcpy(&tpr, &la.regs[0x80], 4);
		fprintf(out, "\n  lapic tpr %02x", tpr & 0xff);
		apic_vectors(out, &la, 0x100, "isr");
		apic_vectors(out, &la, 0x200, "irr");
	}
	fprintf(out, "\n");
}

/* The 32 words on the guest's stack from its stack pointer on, each translated on its own. */
static void dump_stack(struct vcpu *v, FILE *out, uint64_t rsp)
{
	unsigned i;
	for (i = 0; i < 32; i++) {
		uint64_t va = rsp + i * 8ull, w;
		struct kvm_translation t = { .linear_address = va };
		if (ioctl(v->fd, KVM_TRANSLATE, &t) < 0 || !t.valid || gm_read(&v->vm->mem, t.physical_address, &w, 8) < 0)
			break;
		if (i == 0)
			fprintf(out, "  stack at %016llx:", (unsigned long long)rsp);
		fprintf(out, "%s%016llx", i % 4 ? " " : "\n    ", (unsigned long long)w);
	}
	if (i)
		fprintf(out, "\n");
}

void vcpu_dump(struct vcpu *v, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(out, "keel: vCPU %u: registers unavailable\n", v->id);
		return;
	}
	fprintf(out,
		"keel: vCPU %u registers:\n"
		"  rip %016llx  rflags %016llx  exit reason %u\n"
		"  rax %016llx  rbx %016llx  rcx %016llx  rdx %016llx\n"
		"  rsi %016llx  rdi %016llx  rbp %016llx  rsp %016llx\n"
		"  r8  %016llx  r9  %016llx  r10 %016llx  r11 %016llx\n"
		"  r12 %016llx  r13 %016llx  r14 %016llx  r15 %016llx\n"
		"  cs %04x (base %llx, l=%u db=%u)  ss %04x  ds %04x  es %04x  fs %04x  gs %04x\n"
		"  cr0 %016llx  cr2 %016llx  cr3 %016llx  cr4 %016llx  efer %llx\n"
		"  gdt %llx/%x  idt %llx/%x  apic_base %llx\n",
		v->id, (unsigned long long)r.rip, (unsigned long long)r.rflags, v->run->exit_reason,
		(unsigned long long)r.rax, (unsigned long long)r.rbx, (unsigned long long)r.rcx,
		(unsigned long long)r.rdx, (unsigned long long)r.rsi, (unsigned long long)r.rdi,
		(unsigned long long)r.rbp, (unsigned long long)r.rsp, (unsigned long long)r.r8,
		(unsigned long long)r.r9, (unsigned long long)r.r10, (unsigned long long)r.r11,
		(unsigned long long)r.r12, (unsigned long long)r.r13, (unsigned long long)r.r14,
		(unsigned long long)r.r15, s.cs.selector, (unsigned long long)s.cs.base, s.cs.l, s.cs.db,
		s.ss.selector, s.ds.selector, s.es.selector, s.fs.selector, s.gs.selector,
		(unsigned long long)s.cr0, (unsigned long long)s.cr2, (unsigned long long)s.cr3,
		(unsigned long long)s.cr4, (unsigned long long)s.efer, (unsigned long long)s.gdt.base,
		s.gdt.limit, (unsigned long long)s.idt.base, s.idt.limit, (unsigned long long)s.apic_base);
	dump_state(v, out);
	dump_stack(v, out, r.rsp);
	fflush(out);
}
