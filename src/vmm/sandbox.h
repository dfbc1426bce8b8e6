// SPDX-License-Identifier: MIT
/*
 * Least privilege for a running VMM.  Once set-up is done keel keeps only
 * the descriptors it opened: it moves into fresh user, mount, network, IPC
 * and UTS namespaces with an empty read-only root (where the host allows
 * unprivileged namespaces), drops every capability, sets no_new_privs and
 * installs a seccomp allowlist.  A system call outside the list stops keel
 * with a message naming it.  Signals go to keel's own threads only (tgkill
 * with keel's process id); ioctls to the descriptors they are for.
 */
#pragma once

#include <stdbool.h>

/*
 * The descriptors ioctl is allowed on once sandboxed, each only with the
 * requests meant for it: the KVM VM (interrupts, ioeventfds, the reset of its
 * interrupt controllers), the vCPUs (run, registers, reset), the terminal.
 * Nothing may be asked of /dev/kvm itself: no KVM_CREATE_VM, no new vCPU.
 * -1 (or a span of 0) where there is none.
 */
struct sandbox_fds {
	int vm_fd;
	int vcpu_fd_base, vcpu_fd_span; /* [base, base + span), span a power of two, base a multiple of it */
	int tty_fd;
};

struct sandbox_report {
	bool namespaces; /* namespaces and empty root are in place */
	const char *namespace_error; /* why not, if not */
};

/* Must run while keel is single-threaded.  0 or -errno (reported). */
int sandbox_enter(struct sandbox_report *report, const struct sandbox_fds *fds);
