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

#define KEEL_BOOT_ORDER_MAX 8
#define KEEL_MAX_OPTION_ROMS 4

struct vm_config {
	const char *firmware;     /* --firmware: a BIOS image (bios: Debian's SeaBIOS); NULL: boot --kernel directly */
	const char *firmware_log; /* --firmware-log FILE: what firmware writes to port 0x402; NULL: dropped */
	char boot_order[KEEL_BOOT_ORDER_MAX + 1]; /* --boot order=: QEMU's letters, c disk, d CD-ROM, n network */
	bool boot_menu;                /* --boot menu=on */
	unsigned boot_splash_ms;       /* --boot splash-time=: how long the menu waits */
	const char *option_roms[KEEL_MAX_OPTION_ROMS]; /* --option-rom: fw_cfg genroms/NAME for the firmware to run */
	unsigned nr_option_roms;
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	bool cmdline_set; /* --cmdline was given */
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

/* The index in cfg->disks of the k-th disk on controller iface, or -1. */
static inline int vm_config_disk_of(const struct vm_config *cfg, enum blk_iface iface, unsigned k)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		if (cfg->disks[i].iface == iface && k-- == 0)
			return (int)i;
	return -1;
}

static inline unsigned vm_config_disks_on(const struct vm_config *cfg, enum blk_iface iface)
{
	unsigned n = 0;
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		n += cfg->disks[i].iface == iface;
	return n;
}

/* Exit statuses of `keel run`. */
enum keel_exit {
	KEEL_EXIT_OK = 0,          /* guest powered off (or rebooted with --on-reboot=exit) */
	KEEL_EXIT_ERROR = 1,       /* keel could not start or run the VM */
	KEEL_EXIT_USAGE = 2,       /* bad command line */
	KEEL_EXIT_GUEST_CRASH = 3, /* triple fault, KVM internal error, emulation failure */
};
