/* SPDX-License-Identifier: MIT */
/*
 * Test guest main.  The command line picks what to do (keeltest=...):
 *   all (default)  run every check, report each as "ok NAME" or "FAIL NAME",
 *                  exit through the debug port with EXIT_PASS or EXIT_FAIL
 *   poweroff       power off through ACPI (FADT PM1a_CNT, \_S5)
 *   reboot         reset through the FADT reset register; on the boot
 *                  after a reboot (CMOS byte 0x40 says so) power off
 *   triplefault    load an empty IDT and fault
 *   echo           print READY, read one line from COM1, print ECHO:<line>, pass
 *   cpuid          print every CPUID leaf (and sub-leaf) this vCPU sees, pass
 *   blkbench       virtio-blk random-I/O benchmark with its driver in ring 3
 *                  (blkbench.c; keeltest.blk.* parameters)
 *   exitbench      keeltest.exits=N reads of COM1's line status register (each a
 *                  VM exit to the VMM's device model) between two marker lines,
 *                  EXITBENCH-START and EXITBENCH-DONE, then pass (bench/trace)
 * Expected values come from keeltest.* parameters.
 */
#include "guest.h"

void kmain(int kind, uint64_t info);

struct bootinfo boot;

static const char *kind_name(int kind)
{
	return kind == BOOT_LINUX32 ? "linux32" : kind == BOOT_LINUX64 ? "linux64" : "pvh";
}

static void copy_cmdline(uint64_t addr)
{
	if (!addr)
		return;
	const char *s = (const char *)addr;
	size_t i = 0;
	while (s[i] && i < sizeof(boot.cmdline) - 1) {
		boot.cmdline[i] = s[i];
		i++;
	}
	boot.cmdline[i] = 0;
}

static bool read_linux(uint64_t bp)
{
	const uint8_t *p = (const uint8_t *)bp;
	unsigned n = p[0x1e8];
	if (n > 32)
		n = 32;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = p + 0x2d0 + 20 * i;
		memcpy(&boot.map[i].addr, e, 8);
		memcpy(&boot.map[i].size, e + 8, 8);
		memcpy(&boot.map[i].type, e + 16, 4);
	}
	boot.nr_map = n;
	uint32_t cmd, rd, rs;
	memcpy(&cmd, p + 0x228, 4);
	memcpy(&rd, p + 0x218, 4);
	memcpy(&rs, p + 0x21c, 4);
	copy_cmdline(cmd);
	boot.initrd_addr = rd;
	boot.initrd_size = rs;
	uint16_t version;
	memcpy(&version, p + 0x206, 2);
	if (version >= 0x020e)
		memcpy(&boot.rsdp, p + 0x70, 8);
	return n > 0;
}

static bool read_pvh(uint64_t si)
{
	const uint32_t *w = (const uint32_t *)si;
	if (w[0] != 0x336ec578)
		return false;
	const uint64_t *q = (const uint64_t *)(si + 16);
	uint64_t modlist = q[0], cmdline = q[1], rsdp = q[2], memmap = w[1] >= 1 ? q[3] : 0;
	unsigned nmods = w[3], nmap = w[1] >= 1 ? w[12] : 0;
	copy_cmdline(cmdline);
	boot.rsdp = rsdp;
	if (nmods && modlist) {
		const uint64_t *m = (const uint64_t *)modlist;
		boot.initrd_addr = m[0];
		boot.initrd_size = m[1];
	}
	if (nmap > 32)
		nmap = 32;
	for (unsigned i = 0; i < nmap; i++) {
		const uint8_t *e = (const uint8_t *)(memmap + 24 * i);
		memcpy(&boot.map[i].addr, e, 8);
		memcpy(&boot.map[i].size, e + 8, 8);
		memcpy(&boot.map[i].type, e + 16, 4);
	}
	boot.nr_map = nmap;
	return true;
}

static bool mode_is(const char *m)
{
	char buf[16];
	const char *v = param("keeltest", buf, sizeof(buf));
	if (!v)
		v = "all";
	size_t n = strlen(m);
	return strlen(v) == n && !memcmp(v, m, n);
}

static void triple_fault(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} empty = { 0, 0 };
	print("keeltest: loading an empty IDT and faulting\n");
	__asm__ volatile("lidt %0; ud2" : : "m"(empty));
}

#define CMOS_REBOOT_FLAG 0x40
#define REBOOT_MAGIC 0xb7

void kmain(int kind, uint64_t info)
{
	/* The 8259s would deliver ExtINT through LINT0: mask them before anything. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	serial_init();
	bool ok = kind == BOOT_PVH ? read_pvh(info) : read_linux(info);
	boot.kind = kind;
	print("keeltest: booted via %s\n", kind_name(kind));
	check(ok, "boot-info", "%s structure %s", kind_name(kind), ok ? "valid" : "invalid");

	if (mode_is("echo")) {
		char line[128];
		unsigned n = 0;
		print("READY\n");
		for (;;) {
			while (!(inb(0x3f8 + 5) & 0x01))
				cpu_relax();
			char c = (char)inb(0x3f8);
			if (c == '\n' || c == '\r' || n == sizeof(line) - 1)
				break;
			line[n++] = c;
		}
		line[n] = 0;
		print("ECHO:%s\n", line);
		guest_exit(EXIT_PASS);
	}
	if (mode_is("triplefault")) {
		triple_fault();
		guest_exit(EXIT_FAIL);
	}
	if (mode_is("cpuid")) {
		dump_cpuid();
		guest_exit(EXIT_PASS);
	}
	if (mode_is("blkbench"))
		blkbench(); /* drops to ring 3; does not return */
	if (mode_is("exitbench")) {
		uint64_t n = param_u64("keeltest.exits", 10000);
		print("EXITBENCH-START %lu\n", n);
		for (uint64_t i = 0; i < n; i++)
			(void)inb(0x3f8 + 5);
		print("EXITBENCH-DONE\n");
		guest_exit(EXIT_PASS);
	}
	check_acpi();
	if (mode_is("poweroff")) {
		print("keeltest: powering off\n");
		acpi_poweroff();
		guest_exit(EXIT_FAIL);
	}
	if (mode_is("reboot")) {
		if (cmos_read(CMOS_REBOOT_FLAG) == REBOOT_MAGIC) {
			print("keeltest: second boot, powering off\n");
			cmos_write(CMOS_REBOOT_FLAG, 0);
			acpi_poweroff();
		} else {
			print("keeltest: first boot, rebooting\n");
			cmos_write(CMOS_REBOOT_FLAG, REBOOT_MAGIC);
			acpi_reset();
		}
		guest_exit(EXIT_FAIL);
	}

	interrupts_init();
	check_e820();
	check_cmdline();
	check_initrd();
	check_cpuid();
	check_pci();
	check_pm_timer();
	check_rtc();
	check_smp();
	check_uart_irq();
	print("keeltest: %s\n", failures ? "FAILED" : "PASSED");
	guest_exit(failures ? EXIT_FAIL : EXIT_PASS);
}
