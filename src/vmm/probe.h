// SPDX-License-Identifier: MIT
/* Detects hosts whose KVM emulates guest kernel-mode code (no VT-x/AMD-V). */
#pragma once

#include <stdbool.h>

struct probe_result {
	bool emulated;
	double ns_per_iteration; /* of a two-instruction loop in guest ring 0 */
};

/*
 * Time a short loop in a throw-away one-page VM.  Hardware virtualisation
 * runs it at about 1 ns per iteration; an instruction emulator takes
 * hundreds of ns.  Costs about 0.2 ms on emulating hosts.  0 or -errno.
 */
int probe_host(int kvm_fd, struct probe_result *out);
