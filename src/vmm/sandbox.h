// SPDX-License-Identifier: MIT
/*
 * Least privilege for a running VMM.  Once set-up is done keel keeps only
 * the descriptors it opened: it moves into fresh user, mount, network, IPC
 * and UTS namespaces with an empty read-only root (where the host allows
 * unprivileged namespaces), drops every capability, sets no_new_privs and
 * installs a seccomp allowlist.  A system call outside the list stops keel
 * with a message naming it.
 */
#pragma once

#include <stdbool.h>

struct sandbox_report {
	bool namespaces; /* namespaces and empty root are in place */
	const char *namespace_error; /* why not, if not */
};

/* Must run while keel is single-threaded.  0 or -errno (reported). */
int sandbox_enter(struct sandbox_report *report);
