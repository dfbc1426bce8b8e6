// SPDX-License-Identifier: MIT
/*
 * vCPU reset without KVM_CREATE_VCPU.  A guest reboot keeps the KVM VM and
 * its vCPUs (the sandbox forbids creating new ones): right after a vCPU is
 * created and set up, everything KVM keeps for it is read once (registers,
 * FPU and XSAVE state, control and extended control registers, MSRs, local
 * APIC, multiprocessing state, pending events, debug registers, nested
 * state), and a reset writes all of it back, in the order KVM needs (as
 * QEMU's reset does): nested state, registers, XSAVE, XCRs, special
 * registers, MSRs, MP state, local APIC, events, debug registers.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base/util.h"
#include "vcpu.h"

/* MSRs whose write is an action, not state: the KVM wall clock writes to guest memory at the given address. */
static bool msr_is_action(uint32_t index)
{
	return index == 0x11 /* MSR_KVM_WALL_CLOCK */ || index == 0x4b564d00 /* MSR_KVM_WALL_CLOCK_NEW */;
}

struct vcpu_reset_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_xcrs xcrs;
	bool has_debugregs, has_xcrs;
	struct kvm_xsave *xsave; /* NULL without KVM_CAP_XSAVE */
	unsigned long xsave_get; /* KVM_GET_XSAVE or KVM_GET_XSAVE2 */
	struct kvm_nested_state *nested; /* NULL without KVM_CAP_NESTED_STATE */
	struct kvm_msrs *msrs;
};

/*
 * KVM_GET_MSRS and KVM_SET_MSRS stop at the first entry KVM refuses and
 * return how many they did: go on after it, dropping it (reads) or counting
 * it (writes).  Returns the number refused, or -errno.
 */
static int msrs_each(int fd, unsigned long req, struct kvm_msrs *m, bool drop_refused)
{
	unsigned done = 0, refused = 0, n = m->nmsrs;
	struct kvm_msrs *part = malloc(sizeof(*part) + n * sizeof(part->entries[0]));
	if (!part)
		return -ENOMEM;
	while (done < n) {
		part->nmsrs = n - done;
		part->pad = 0;
		memcpy(part->entries, &m->entries[done], part->nmsrs * sizeof(part->entries[0]));
		int k = ioctl(fd, req, part);
		if (k < 0) {
			int e = -errno;
			free(part);
			return e;
		}
		memcpy(&m->entries[done], part->entries, (size_t)k * sizeof(part->entries[0]));
		done += (unsigned)k;
		if (done == n)
			break;
		refused++;
		if (drop_refused) {
			memmove(&m->entries[done], &m->entries[done + 1], (n - done - 1) * sizeof(m->entries[0]));
			n--;
		} else {
			done++;
		}
	}
	m->nmsrs = n;
	free(part);
	return (int)refused;
}

static struct kvm_msrs *read_msrs(struct vcpu *v)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(v->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + probe.nmsrs * sizeof(m->entries[0]));
	if (!list || !m)
		goto fail;
	list->nmsrs = probe.nmsrs;
	if (ioctl(v->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0)
		goto fail;
	for (uint32_t i = 0; i < list->nmsrs; i++)
		if (!msr_is_action(list->indices[i]))
			m->entries[m->nmsrs++].index = list->indices[i];
	free(list);
	int r = msrs_each(v->fd, KVM_GET_MSRS, m, true);
	if (r < 0) {
		free(m);
		return NULL;
	}
	if (r)
		log_debug("vCPU %u: %d MSRs listed by KVM could not be read; they are not reset", v->id, r);
	return m;
fail:
	free(list);
	free(m);
	return NULL;
}

void vcpu_reset_state_free(struct vcpu *v)
{
	struct vcpu_reset_state *s = v->reset_state;
	if (!s)
		return;
	free(s->xsave);
	free(s->nested);
	free(s->msrs);
	free(s);
	v->reset_state = NULL;
}

int vcpu_save_reset_state(struct vcpu *v)
{
	int kvm = v->vm->kvm_fd, fd = v->fd;
	struct vcpu_reset_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	v->reset_state = s;
	const char *what = "registers";
	if (ioctl(fd, KVM_GET_REGS, &s->regs) < 0 || ioctl(fd, KVM_GET_SREGS, &s->sregs) < 0 ||
	    ioctl(fd, KVM_GET_FPU, &s->fpu) < 0 || ioctl(fd, KVM_GET_LAPIC, &s->lapic) < 0 ||
	    ioctl(fd, KVM_GET_MP_STATE, &s->mp) < 0 || ioctl(fd, KVM_GET_VCPU_EVENTS, &s->events) < 0)
		goto fail;
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0) {
		what = "debug registers";
		if (ioctl(fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0)
			goto fail;
		s->has_debugregs = true;
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		what = "XCRs";
		if (ioctl(fd, KVM_GET_XCRS, &s->xcrs) < 0)
			goto fail;
		s->has_xcrs = true;
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		/* KVM_CAP_XSAVE2 (on the VM) gives the size when it is more than struct kvm_xsave. */
		int size2 = ioctl(v->vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
		size_t size = size2 > (int)sizeof(struct kvm_xsave) ? (size_t)size2 : sizeof(struct kvm_xsave);
		s->xsave_get = size2 > (int)sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
		s->xsave = calloc(1, size);
		what = "XSAVE state";
		if (!s->xsave || ioctl(fd, s->xsave_get, s->xsave) < 0)
			goto fail;
	}
	int nested = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
	if (nested > (int)sizeof(struct kvm_nested_state)) {
		s->nested = calloc(1, (size_t)nested);
		what = "nested state";
		if (!s->nested)
			goto fail;
		s->nested->size = (uint32_t)nested;
		if (ioctl(fd, KVM_GET_NESTED_STATE, s->nested) < 0)
			goto fail;
	}
	what = "MSRs";
	s->msrs = read_msrs(v);
	if (!s->msrs)
		goto fail;
	return 0;
fail:;
	int r = errno ? -errno : -ENOMEM;
	log_error("vCPU %u: reading its reset state (%s): %s", v->id, what, strerror(-r));
	vcpu_reset_state_free(v);
	return r;
}

int vcpu_reset(struct vcpu *v)
{
	const struct vcpu_reset_state *s = v->reset_state;
	int fd = v->fd;
	const char *what = "nested state";
	if (s->nested && ioctl(fd, KVM_SET_NESTED_STATE, s->nested) < 0)
		goto fail;
	/* The ioctls take non-const pointers but do not write: copies keep the saved state pristine. */
	struct kvm_regs regs = s->regs;
	struct kvm_sregs sregs = s->sregs;
	struct kvm_xcrs xcrs = s->xcrs;
	struct kvm_mp_state mp = s->mp;
	struct kvm_lapic_state lapic = s->lapic;
	struct kvm_vcpu_events events = s->events;
	struct kvm_debugregs dr = s->debugregs;
	struct kvm_fpu fpu = s->fpu;
	what = "registers";
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		goto fail;
	what = "XSAVE state";
	if (s->xsave ? ioctl(fd, KVM_SET_XSAVE, s->xsave) < 0 : ioctl(fd, KVM_SET_FPU, &fpu) < 0)
		goto fail;
	what = "XCRs";
	if (s->has_xcrs && ioctl(fd, KVM_SET_XCRS, &xcrs) < 0)
		goto fail;
	what = "special registers";
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		goto fail;
	size_t msize = sizeof(*s->msrs) + s->msrs->nmsrs * sizeof(s->msrs->entries[0]);
	struct kvm_msrs *m = malloc(msize);
	if (!m)
		return -ENOMEM;
	memcpy(m, s->msrs, msize);
	int refused = msrs_each(fd, KVM_SET_MSRS, m, false);
	free(m);
	what = "MSRs";
	if (refused < 0) {
		errno = -refused;
		goto fail;
	}
	if (refused)
		log_debug("vCPU %u: KVM refused %d MSRs on reset", v->id, refused);
	what = "MP state";
	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		goto fail;
	what = "local APIC";
	if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0)
		goto fail;
	what = "pending events";
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &events) < 0)
		goto fail;
	what = "debug registers";
	if (s->has_debugregs && ioctl(fd, KVM_SET_DEBUGREGS, &dr) < 0)
		goto fail;
	return 0;
fail:;
	int r = -errno;
	log_error("vCPU %u: resetting its %s: %s", v->id, what, strerror(errno));
	return r;
}
