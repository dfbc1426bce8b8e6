// SPDX-License-Identifier: MIT
/*
 * The generic machine fuzzer (as QEMU's generic-fuzz): keel's whole machine
 * as keel-devtest builds it -- platform devices, PCI, virtio-blk over a
 * real block stack, the AHCI controller with a SATA disk and a CD-ROM,
 * virtio-rng, virtio-console, their I/O threads, irqfds
 * and ioeventfds -- driven by a sequence of guest accesses decoded from the
 * input.  Each input gets a fresh machine on the same RAM and disk (RAM
 * cleared), with memory decoding and bus mastering on for every PCI
 * function (as firmware leaves them).  Addresses are chosen relative to what
 * the machine decodes (its port ranges, each function's configuration
 * space and BARs), so most accesses reach a device.  Op 7 feeds a line of
 * keel-devtest's text protocol (src/devtest/proto.c), its other outside input.
 *
 * An op is an opcode byte and a fixed-size operand record:
 *   0 port write  [region][off16][value32]     1 port read  [region][off16]
 *   2 mem write   [region][off32][value64]     3 mem read   [region][off32]
 *   4 RAM write   [addr24][len8][bytes]        5 clock step [ns32]
 *   6 settle (take interrupts, let I/O threads run)
 *   7 protocol line [len8][text]
 * A region byte also picks the access size (1, 2, 4 or 8 bytes).
 */
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "devtest/machine.h"
#include "devtest/proto.h"
#include "vmm/cli.h"
#include "vmm/layout.h"
#include "vmm/run.h"
#include "vmm/vm.h"
#include "vmm/vm_lifecycle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REGIONS 64

struct region {
	uint64_t base, len;
};

static struct vm vm;
static struct vm_config cfg;
static struct dt_machine *m;
static struct region pio[MAX_REGIONS], mem[MAX_REGIONS];
static unsigned nr_pio, nr_mem;
static struct dt_out out;

static void setup(void)
{
	log_level = LOG_QUIET;
	static char path[64], disk[96], ahci[64], ahci_disk[96], iso[64];
	snprintf(path, sizeof(path), "/tmp/keel-fuzz-machine-%d.img", (int)getpid());
	snprintf(disk, sizeof(disk), "path=%s,cache-size=1M", path);
	snprintf(ahci, sizeof(ahci), "/tmp/keel-fuzz-machine-%d-ahci.img", (int)getpid());
	snprintf(ahci_disk, sizeof(ahci_disk), "path=%s,if=ahci,cache-size=1M", ahci);
	snprintf(iso, sizeof(iso), "/tmp/keel-fuzz-machine-%d.iso", (int)getpid());
	const char *const images[] = { path, ahci, iso };
	for (unsigned i = 0; i < 3; i++) {
		int fd = open(images[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, 1 << 20))
			abort();
		close(fd);
	}
	/* virtio-blk, and an AHCI controller with a SATA disk and a CD-ROM. */
	static char *argv[] = { "fuzz", "--memory", "32M", "--cpus", "1", "--serial", "none", "--rng", "--debug-exit",
				"--virtio-console", "/dev/null", "--disk", NULL, "--disk", NULL, "--cdrom", NULL, NULL };
	argv[12] = disk;
	argv[14] = ahci_disk;
	argv[16] = iso;
	static const struct cli_variant v = { .prog = "fuzz_machine", .summary = "", .kernel_optional = true };
	FILE *null = fopen("/dev/null", "w");
	if (cli_parse_variant(&v, 17, argv, &cfg, null, null) || vm_init(&vm, &cfg, NULL))
		abort();
	fclose(null);
	m = dt_attach(&vm);
	if (!m || run_open_guest_files(&cfg, &vm) || run_start_disks(&vm))
		abort();
	for (unsigned i = 0; i < 3; i++)
		unlink(images[i]); /* open already; gone when the fuzzer ends */
}

/* What this boot's machine decodes: port ranges, and per PCI function its config space and BARs. */
static void find_regions(void)
{
	nr_pio = nr_mem = 0;
	for (size_t i = 0; i < vm.pio.nr && nr_pio < MAX_REGIONS; i++)
		pio[nr_pio++] = (struct region){ vm.pio.entries[i].base, vm.pio.entries[i].len };
	for (unsigned dev = 0; dev < 32 && nr_mem + 7 < MAX_REGIONS; dev++) {
		uint64_t cfg_base = PCI_ECAM_BASE + ((uint64_t)dev << 15);
		if (dt_mem_read(m, cfg_base, 4) == 0xffffffffu)
			continue;
		mem[nr_mem++] = (struct region){ cfg_base, 4096 };
		dt_mem_write(m, cfg_base + 4, 2, 0x6); /* memory decoding, bus mastering */
		for (unsigned b = 0; b < 6; b++) {
			uint64_t reg = cfg_base + 0x10 + 4 * b;
			uint32_t at = (uint32_t)dt_mem_read(m, reg, 4);
			if (!(at & ~0xfu) || (at & 1))
				continue;
			/* Size it as firmware does (decoding off meanwhile), then put it back. */
			dt_mem_write(m, cfg_base + 4, 2, 0);
			dt_mem_write(m, reg, 4, 0xffffffffu);
			uint32_t mask = (uint32_t)dt_mem_read(m, reg, 4) & ~0xfu;
			dt_mem_write(m, reg, 4, at);
			dt_mem_write(m, cfg_base + 4, 2, 0x6);
			if (mask)
				mem[nr_mem++] = (struct region){ at & ~0xfu, (uint64_t)(~mask) + 1 };
		}
	}
	mem[nr_mem++] = (struct region){ 0, 16u << 20 }; /* low RAM: rings and buffers live there */
}

static uint64_t get(const uint8_t **p, size_t *left, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n && *left; i++, (*p)++, (*left)--)
		v |= (uint64_t)**p << (8 * i);
	return v;
}

static void settle(void)
{
	for (int i = 0; i < 4; i++) {
		(void)dt_poll(m, 0, -1);
		sched_yield();
	}
	uint64_t a;
	uint32_t d;
	while (dt_msi_pop(m, &a, &d))
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!m)
		setup();
	if (gm_clear(&vm.mem) || vm_build(&vm))
		return 0;
	find_regions();
	const uint8_t *p = data;
	size_t left = size;
	while (left) {
		unsigned op = *p++ % 8;
		left--;
		if (op <= 3) {
			unsigned sel = (unsigned)get(&p, &left, 1);
			unsigned sz = 1u << (sel % (op < 2 ? 3 : 4));
			const struct region *r = op < 2 ? &pio[sel / 4 % nr_pio] : &mem[sel / 4 % nr_mem];
			uint64_t off = get(&p, &left, op < 2 ? 2 : 4) % r->len;
			if (op == 0)
				dt_pio_write(m, (uint16_t)(r->base + off), sz, get(&p, &left, 4));
			else if (op == 1)
				(void)dt_pio_read(m, (uint16_t)(r->base + off), sz);
			else if (op == 2)
				dt_mem_write(m, r->base + off, sz, get(&p, &left, 8));
			else
				(void)dt_mem_read(m, r->base + off, sz);
		} else if (op == 4) {
			uint64_t addr = get(&p, &left, 3);
			size_t n = (size_t)get(&p, &left, 1);
			n = MIN(n, left);
			(void)dt_ram_write(m, addr, p, n);
			p += n, left -= n;
		} else if (op == 5) {
			vm_clock_advance(&vm, vm_clock_ns(&vm) + get(&p, &left, 4));
		} else if (op == 6) {
			settle();
		} else {
			size_t n = (size_t)get(&p, &left, 1);
			n = MIN(n, left);
			char line[256];
			memcpy(line, p, n);
			line[n] = 0;
			p += n, left -= n;
			/* Not the waiting command: it only waits. */
			if (!strstr(line, "msi_wait")) {
				out.len = 0;
				(void)dt_command(m, line, &out);
			}
		}
	}
	settle();
	vm_stop(&vm);
	return 0;
}
