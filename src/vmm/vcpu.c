// SPDX-License-Identifier: MIT
#include "vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cpuid.h"
#include "layout.h"
#include "trace/trace.h"
#include "base/util.h"

#define SIG_KICK SIGUSR1

/* MSRs and the values every vCPU starts with. */
static const struct {
	uint32_t index;
	uint64_t value;
} boot_msrs[] = {
	{ 0x00000174, 0 },                  /* IA32_SYSENTER_CS */
	{ 0x00000175, 0 },                  /* IA32_SYSENTER_ESP */
	{ 0x00000176, 0 },                  /* IA32_SYSENTER_EIP */
	{ 0xc0000081, 0 },                  /* STAR */
	{ 0xc0000082, 0 },                  /* LSTAR */
	{ 0xc0000083, 0 },                  /* CSTAR */
	{ 0xc0000084, 0 },                  /* SYSCALL_MASK */
	{ 0xc0000102, 0 },                  /* KERNEL_GS_BASE */
	{ 0x00000010, 0 },                  /* TSC: all vCPUs start together */
	{ 0x000001a0, 1 },                  /* IA32_MISC_ENABLE: fast strings */
	{ 0x000002ff, (1u << 11) | 6 },     /* MTRRdefType: enabled, write-back default */
};

static _Thread_local struct kvm_run *tls_run;

static void kick_handler(int sig)
{
	(void)sig;
	/* Whether the thread is in KVM_RUN or about to enter it, it returns at once. */
	if (tls_run)
		tls_run->immediate_exit = 1;
}

int vcpu_signals_init(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	return sigaction(SIG_KICK, &sa, NULL) < 0 ? -errno : 0;
}

static bool msr_supported(const struct kvm_msr_list *list, uint32_t index)
{
	for (uint32_t i = 0; list && i < list->nmsrs; i++)
		if (list->indices[i] == index)
			return true;
	return false;
}

static struct kvm_msr_list *msr_index_list(int kvm_fd)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return NULL;
	}
	return list;
}

static int set_msrs(struct vcpu *v)
{
	struct kvm_msr_list *list = msr_index_list(v->vm->kvm_fd);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + ARRAY_SIZE(boot_msrs) * sizeof(m->entries[0]));
	if (!m) {
		free(list);
		return -ENOMEM;
	}
	unsigned n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(boot_msrs); i++) {
		/* The MTRR MSRs are emulated but not always listed. */
		if (!list || msr_supported(list, boot_msrs[i].index) || boot_msrs[i].index == 0x2ff)
			m->entries[n++] = (struct kvm_msr_entry){ .index = boot_msrs[i].index, .data = boot_msrs[i].value };
	}
	free(list);
	m->nmsrs = n;
	int r = ioctl(v->fd, KVM_SET_MSRS, m);
	free(m);
	if (r < 0)
		return -errno;
	if ((unsigned)r != n)
		log_debug("vCPU %u: KVM took %d of %u boot MSRs", v->id, r, n);
	return 0;
}

static int set_lapic(struct vcpu *v)
{
	struct kvm_lapic_state la;
	if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
		return -errno;
	/* LINT0 delivers the 8259's ExtINT, LINT1 is the NMI pin (as PC firmware sets them). */
	uint32_t lint0 = 0x700, lint1 = 0x400;
	memcpy(&la.regs[0x350], &lint0, 4);
	memcpy(&la.regs[0x360], &lint1, 4);
	return ioctl(v->fd, KVM_SET_LAPIC, &la) < 0 ? -errno : 0;
}

int vcpu_create(struct vm *vm, struct vcpu *v, unsigned id)
{
	int r;
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		r = -errno;
		log_error("KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		return r;
	}
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		r = -errno;
		v->run = NULL;
		log_error("vCPU %u: mapping kvm_run: %s", id, strerror(errno));
		goto close_fd;
	}
	struct cpuid_options co = {
		.nr_cpus = vm->nr_vcpus,
		.emulated_host = vm->emulated_host,
		.tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0,
	};
	struct kvm_cpuid2 *cpuid = cpuid_build(vm->supported_cpuid, id, &co);
	if (!cpuid) {
		r = -ENOMEM;
		goto unmap_run;
	}
	r = ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
	free(cpuid);
	if (r) {
		log_error("vCPU %u: KVM_SET_CPUID2: %s", id, strerror(-r));
		goto unmap_run;
	}
	r = set_msrs(v);
	if (r) {
		log_error("vCPU %u: KVM_SET_MSRS: %s", id, strerror(-r));
		goto unmap_run;
	}
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0) {
		r = -errno;
		log_error("vCPU %u: KVM_SET_FPU: %s", id, strerror(errno));
		goto unmap_run;
	}
	r = set_lapic(v);
	if (r) {
		log_error("vCPU %u: local APIC set-up: %s", id, strerror(-r));
		goto unmap_run;
	}
	r = vcpu_save_reset_state(v);
	if (r)
		goto unmap_run;
	return 0;

unmap_run:
	munmap(v->run, (size_t)vm->run_size);
	v->run = NULL;
close_fd:
	close(v->fd);
	v->fd = -1;
	return r;
}

void vcpu_destroy(struct vcpu *v)
{
	vcpu_reset_state_free(v);
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

int vcpu_pack_fds(struct vm *vm)
{
	int span = 1;
	while (span < (int)vm->nr_vcpus)
		span *= 2;
	/* The lowest aligned block above every vCPU descriptor with nothing open in it. */
	int base = span;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		while (base <= vm->vcpus[i].fd)
			base += span;
	for (int fd = base; fd < base + span; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
			base += span;
			fd = base - 1; /* the next block */
			if (base > 65536 - span)
				return -EMFILE;
		}
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int to = base + (int)i;
		if (dup3(v->fd, to, O_CLOEXEC) < 0)
			return -errno;
		close(v->fd);
		v->fd = to;
	}
	vm->vcpu_fd_base = base;
	vm->vcpu_fd_span = span;
	return 0;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code64)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code64 ? 0 : 1,
		.s = 1,
		.l = code64 ? 1 : 0,
		.g = 1,
	};
}

int vcpu_set_boot_state(struct vcpu *v, const struct boot_entry *e)
{
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	bool lm = e->mode == BOOT_MODE_LINUX64;
	s.cs = flat_segment(lm ? BOOT_SEL_CODE64 : BOOT_SEL_CODE32, 0xb, lm);
	s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(BOOT_SEL_DATA, 0x3, false);
	s.tr = (struct kvm_segment){ .selector = BOOT_SEL_TSS, .limit = 0x67, .type = 0xb, .present = 1 };
	s.gdt.base = BOOT_GDT_ADDR;
	s.gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = 0x11; /* PE, ET */
	s.cr4 = 0;
	s.efer = 0;
	if (lm) {
		s.cr0 |= 0x80000000u; /* PG */
		s.cr3 = e->cr3;
		s.cr4 = 0x20;    /* PAE */
		s.efer = 0x500;  /* LME, LMA */
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return -errno;

	struct kvm_regs r = { .rflags = 0x2, .rip = e->rip, .rsp = BOOT_STACK_TOP };
	if (lm)
		r.rsi = e->arg;
	else
		r.rbx = e->arg;
	return ioctl(v->fd, KVM_SET_REGS, &r) < 0 ? -errno : 0;
}

void vcpu_kick(struct vcpu *v)
{
	/* seq_cst load, after the stopper's seq_cst store of stop_reason. */
	if (atomic_load(&v->running))
		pthread_kill(v->self, SIG_KICK);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	tls_run = v->run;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	(void)prctl(PR_SET_NAME, name);
	trace_thread_start(name); /* vcpuN: the same ring across guest reboots */
	TRACE(COMPONENT_START, trace_str16("vcpu"), v->id);
	v->self = pthread_self();
	/* seq_cst store (publishing self) before the first vm_stopping() load: see vm_stopping(). */
	atomic_store(&v->running, true);

	while (!vm_stopping(vm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			log_error("vCPU %u: KVM_RUN: %s", v->id, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, 0);
			break;
		}
		if (vcpu_handle_exit(v))
			break;
	}
	atomic_store(&v->running, false);
	tls_run = NULL;
	TRACE(COMPONENT_STOP, trace_str16("vcpu"), v->id, 0);
	trace_thread_stop();
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	atomic_store(&v->running, false);
	int r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (r)
		return -r;
	v->started = true;
	return 0;
}
