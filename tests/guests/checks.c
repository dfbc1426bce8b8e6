/* SPDX-License-Identifier: MIT */
/* Checks of the memory map, command line, initrd, CPUID and PCI config access. */
#include "guest.h"

extern char _end[];

static bool ram_covers(uint64_t a, uint64_t len)
{
	for (unsigned i = 0; i < boot.nr_map; i++) {
		const struct mem_entry *e = &boot.map[i];
		if (e->type == 1 && a >= e->addr && a + len <= e->addr + e->size)
			return true;
	}
	return false;
}

void check_e820(void)
{
	uint64_t usable = 0, prev_end = 0;
	bool sorted = true;
	for (unsigned i = 0; i < boot.nr_map; i++) {
		const struct mem_entry *e = &boot.map[i];
		print("  map: %lx-%lx type %u\n", e->addr, e->addr + e->size - 1, e->type);
		if (e->addr < prev_end)
			sorted = false;
		prev_end = e->addr + e->size;
		if (e->type == 1)
			usable += e->size;
	}
	check(boot.nr_map >= 2 && sorted, "e820-sorted", "%u entries", boot.nr_map);
	check(ram_covers(0, 0x9f000), "e820-low-ram", "");
	check(ram_covers(0x100000, (uint64_t)_end - 0x100000), "e820-kernel-in-ram", "");
	uint64_t want = param_u64("keeltest.mem", 0) << 20;
	/* Holes below 1 MiB and firmware reservations cost at most a few MiB. */
	check(!want || (usable <= want && usable + 4 * 1048576 >= want), "e820-total", "%lu KiB usable, %lu KiB expected",
	      usable >> 10, want >> 10);
}

void check_cmdline(void)
{
	char buf[64];
	const char *m = param("keeltest.magic", buf, sizeof(buf));
	check(m && strlen(m) == 9 && !memcmp(m, "K33L-b00t", 9), "cmdline", "magic %s", m ? m : "(missing)");
	size_t n = strlen(boot.cmdline);
	check(n >= 4 && !memcmp(boot.cmdline + n - 4, " END", 4), "cmdline-complete", "%u bytes", (unsigned)n);
}

void check_initrd(void)
{
	uint64_t size = param_u64("keeltest.initrd_size", 0);
	if (!size) {
		check(boot.initrd_size == 0, "initrd-absent", "");
		return;
	}
	uint32_t want = (uint32_t)param_u64("keeltest.initrd_fnv", 0);
	bool placed = boot.initrd_addr && ram_covers(boot.initrd_addr, boot.initrd_size) &&
		      boot.initrd_addr >= (uint64_t)_end;
	check(boot.initrd_size == size, "initrd-size", "%lu bytes, %lu expected", boot.initrd_size, size);
	check(placed, "initrd-placement", "at %lx", boot.initrd_addr);
	if (placed && boot.initrd_size == size) {
		uint32_t h = fnv1a((const void *)boot.initrd_addr, size);
		check(h == want, "initrd-content", "fnv %x, %x expected", h, want);
	}
}

void check_cpuid(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	check(r[2] & (1u << 31), "cpuid-hypervisor-bit", "");
	if (param_u64("keeltest.kvm", 0)) {
		cpuid(0x40000000, 0, r);
		check(r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x4d, "cpuid-kvm-signature", "");
		cpuid(0x40000001, 0, r);
		check(r[0] & (1u << 3), "cpuid-kvmclock", "features %x", r[0]);
	}
	cpuid(0x80000000, 0, r);
	if (r[0] >= 0x80000004) { /* the processor's name, which KVM leaves to the VMM */
		cpuid(0x80000002, 0, r);
		check(r[0] | r[1] | r[2] | r[3], "cpuid-brand-string", "leaf 0x80000002: %x %x %x %x", r[0], r[1], r[2], r[3]);
	}
	unsigned cpus = (unsigned)param_u64("keeltest.cpus", 1);
	cpuid(1, 0, r);
	check(cpus == 1 || ((r[1] >> 16) & 0xff) >= cpus, "cpuid-logical-count", "%u", (r[1] >> 16) & 0xff);
	cpuid(0, 0, r);
	if (r[0] >= 0xb) { /* extended topology: one thread per core, every vCPU a core of one package */
		uint32_t t[4];
		cpuid(0xb, 0, r);
		cpuid(0xb, 1, t);
		check(((r[2] >> 8) & 0xff) == 1 && (r[1] & 0xffff) == 1 && ((t[2] >> 8) & 0xff) == 2 &&
			      (t[1] & 0xffff) == cpus && (1u << (t[0] & 0x1f)) >= cpus,
		      "cpuid-topology", "leaf 0xb: %x %x %x / %x %x %x", r[0], r[1], r[2], t[0], t[1], t[2]);
	}
}

/* keeltest=cpuid: print every CPUID leaf the guest sees, sub-leaves too. */
static void dump_range(uint32_t first)
{
	uint32_t r[4];
	cpuid(first, 0, r);
	uint32_t last = r[0];
	if (last < first || last - first > 0x40)
		last = first;
	for (uint32_t leaf = first; leaf <= last; leaf++) {
		/* Leaves with sub-leaves: caches, features, topology, XSAVE, QoS, SGX, PT. */
		bool subs = leaf == 4 || leaf == 7 || leaf == 0xb || leaf == 0xd || leaf == 0xf || leaf == 0x10 ||
			    leaf == 0x12 || leaf == 0x14 || leaf == 0x1f || leaf == 0x8000001d;
		for (uint32_t sub = 0; sub < (subs ? 64u : 1u); sub++) {
			cpuid(leaf, sub, r);
			if (subs && sub > 1 && !(r[0] | r[1] | r[2] | r[3]))
				break;
			print("cpuid %x.%x: %x %x %x %x\n", leaf, sub, r[0], r[1], r[2], r[3]);
			/* The last level of a topology leaf, the last cache of a cache leaf. */
			if (((leaf == 0xb || leaf == 0x1f) && !(r[2] & 0xff00)) ||
			    ((leaf == 4 || leaf == 0x8000001d) && !(r[0] & 0x1f)))
				break;
		}
	}
}

void dump_cpuid(void)
{
	dump_range(0);
	dump_range(0x40000000);
	dump_range(0x80000000);
}

void check_pci(void)
{
	outl(0xcf8, 0x80000000u);
	uint32_t id = inl(0xcfc);
	check((id & 0xffff) != 0xffff, "pci-config-port", "00:00.0 id %x", id);
	if (acpi.ecam) {
		uint32_t e = mmio_read32(acpi.ecam);
		check(e == id, "pci-ecam", "00:00.0 id %x by ECAM", e);
		outl(0xcf8, 0x80000000u | (31u << 11));
		uint32_t none = inl(0xcfc);
		check(none == 0xffffffffu, "pci-empty-slot", "00:1f.0 reads %x", none);
	}
}
