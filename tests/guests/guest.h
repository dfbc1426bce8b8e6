/* SPDX-License-Identifier: MIT */
/* The keel test guest: a tiny freestanding x86-64 kernel that checks its VMM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOOT_LINUX32 1
#define BOOT_LINUX64 2
#define BOOT_PVH 3

#define EXIT_PASS 0x10 /* debug-exit: keel/QEMU exit status 33 */
#define EXIT_FAIL 0x11 /* exit status 35 */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* lib.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
void serial_init(void);
void putc_serial(char c);
void print(const char *fmt, ...);
/* Value of "key=" in the command line (copied into buf), or NULL. */
const char *param(const char *key, char *buf, size_t len);
uint64_t param_u64(const char *key, uint64_t dflt);
uint32_t fnv1a(const void *p, size_t n);
__attribute__((noreturn)) void guest_exit(uint8_t code);

/* What the boot protocol told us, copied before low memory is reused. */
struct mem_entry {
	uint64_t addr, size;
	uint32_t type;
};
struct bootinfo {
	int kind;
	struct mem_entry map[32];
	unsigned nr_map;
	char cmdline[1024];
	uint64_t initrd_addr, initrd_size;
	uint64_t rsdp;
};
extern struct bootinfo boot;

/* Results: one line each, counted by the host. */
void check(bool ok, const char *name, const char *fmt, ...);
extern unsigned failures;

/* checks.c */
void check_e820(void);
void check_cmdline(void);
void check_initrd(void);
void check_cpuid(void);
void dump_cpuid(void);
void check_pci(void);
/* acpi.c */
struct acpi_info {
	uint64_t fadt, madt, dsdt, mcfg;
	uint16_t pm1a_cnt, pm_tmr;
	uint8_t reset_space;
	uint64_t reset_addr;
	uint8_t reset_value;
	int slp_typ_s5;
	unsigned nr_lapics;
	uint8_t apic_ids[256];
	uint64_t ecam;
};
extern struct acpi_info acpi;
void check_acpi(void);
void check_pm_timer(void);
void acpi_poweroff(void);
void acpi_reset(void);
/* rtc.c */
void check_rtc(void);
uint8_t cmos_read(uint8_t reg);
void cmos_write(uint8_t reg, uint8_t v);
unsigned rtc_seconds(void);
/* smp.c: interrupts, APICs, SMP start-up, UART interrupts */
void interrupts_init(void);
void check_smp(void);
void check_uart_irq(void);
/* blkbench.c */
__attribute__((noreturn)) void blkbench(void);
