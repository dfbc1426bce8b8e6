// SPDX-License-Identifier: MIT
/* vCPUs: creation, architectural set-up, the run loop and VM-exit handling. */
#pragma once

#include <stdio.h>

#include "boot/boot.h"
#include "vm.h"

/*
 * Create vCPU `id`, map its kvm_run, set CPUID, MSRs, FPU and LAPIC, and keep
 * that state for vcpu_reset().  0 or -errno.
 */
int vcpu_create(struct vm *vm, struct vcpu *v, unsigned id);
void vcpu_destroy(struct vcpu *v);
/*
 * Move the vCPUs' descriptors into one aligned block (vm->vcpu_fd_base,
 * vm->vcpu_fd_span), so that the sandbox can allow vCPU ioctls on those
 * descriptors only.  0 or -errno.
 */
int vcpu_pack_fds(struct vm *vm);

/* vcpu_reset.c: read everything KVM keeps for a new vCPU; write it back on a reboot.  0 or -errno. */
int vcpu_save_reset_state(struct vcpu *v);
int vcpu_reset(struct vcpu *v);
void vcpu_reset_state_free(struct vcpu *v);

/* Put the boot vCPU in the state the entry protocol requires. 0 or -errno. */
int vcpu_set_boot_state(struct vcpu *v, const struct boot_entry *e);

/* Start the vCPU thread (signals stay blocked there except the kick). 0 or -errno. */
int vcpu_start(struct vcpu *v);
/* Make a vCPU leave KVM_RUN soon; safe from any thread. */
void vcpu_kick(struct vcpu *v);
/* Install the kick signal handler (once per process). */
int vcpu_signals_init(void);

/*
 * Handle the exit described in v->run.  Returns 0 to re-enter the guest,
 * or 1 when the VM must stop (vm_request_stop() has been called).
 * Exit handlers are looked up in a table indexed by exit reason.
 */
int vcpu_handle_exit(struct vcpu *v);

/* Print registers and the exit reason, for crashes. */
void vcpu_dump(struct vcpu *v, FILE *out);
