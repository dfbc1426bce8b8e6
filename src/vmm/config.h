// SPDX-License-Identifier: MIT
/* What `keel run` was asked to do, after option parsing and validation. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };
enum on_reboot { ON_REBOOT_RESTART, ON_REBOOT_EXIT };

#define KEEL_MAX_CPUS 255 /* xAPIC IDs 0..254; 255 is broadcast */
#define KEEL_MIN_MEMORY (16ull << 20)
#define KEEL_MAX_MEMORY (1ull << 40)
#define KEEL_MAX_DISKS 16

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	unsigned cpus;
	uint64_t memory;
	enum serial_mode serial;
	const char *serial_path;
	enum on_reboot on_reboot;
	bool debug_exit;
	int kvm_fd; /* -1: open /dev/kvm ourselves */
	bool sandbox;
	const char *name;
	int verbosity; /* enum log_level */
	bool debug_sandbox_violation; /* test hook: make a forbidden syscall after set-up */
	struct blk_options disks[KEEL_MAX_DISKS]; /* --disk, in order */
	unsigned nr_disks;
	bool rng;                          /* --rng: virtio-rng */
	bool virtio_packed;                /* --virtio-packed on: offer packed virtqueues */
	const char *virtio_console;        /* --virtio-console stdio|FILE; NULL: none */
	bool virtio_console_stdio;
	const char *trace_events; /* --trace: events enabled from the start (set_event syntax) */
	uint64_t trace_buffer;    /* --trace-buffer-size: bytes per thread (0: default) */
};

/* Exit statuses of `keel run`. */
enum keel_exit {
	KEEL_EXIT_OK = 0,          /* guest powered off (or rebooted with --on-reboot=exit) */
	KEEL_EXIT_ERROR = 1,       /* keel could not start or run the VM */
	KEEL_EXIT_USAGE = 2,       /* bad command line */
	KEEL_EXIT_GUEST_CRASH = 3, /* triple fault, KVM internal error, emulation failure */
};
