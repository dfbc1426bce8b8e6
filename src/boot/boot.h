// SPDX-License-Identifier: MIT
/*
 * Kernel loading: Linux x86 boot protocol (bzImage, 64-bit entry) and PVH
 * (ELF with a XEN_ELFNOTE_PHYS32_ENTRY note).  Kernel and initrd files are
 * hostile input: every header field is validated before it is used, and
 * file contents are read straight into checked guest memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

enum boot_mode {
	BOOT_MODE_LINUX64, /* long mode, paging on, rsi = boot_params */
	BOOT_MODE_PVH32,   /* 32-bit protected mode, paging off, ebx = hvm_start_info */
	BOOT_MODE_RESET,   /* firmware: the reset vector, as a vCPU is created (F000:FFF0) */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t arg;
	uint64_t cr3; /* BOOT_MODE_LINUX64 only */
};

/* Files opened before the sandbox goes up; kept open to reload on reboot. */
struct boot_files {
	const char *kernel_path;
	int kernel_fd;
	uint64_t kernel_size;
	const char *initrd_path;
	int initrd_fd; /* -1: none */
	uint64_t initrd_size;
	/* --firmware: the image, read once into memory of its own (read-only once loaded). */
	const char *firmware_path;
	uint8_t *firmware;
	uint64_t firmware_size;
	/* --option-rom: each file read whole (boot_option_roms_open()). */
	unsigned nr_option_roms;
	struct boot_rom {
		char name[48]; /* the file's base name, for fw_cfg's genroms/NAME */
		uint8_t *data;
		uint32_t size;
	} option_roms[4];
};

/* Where the loader put things; input to the boot-info writers. */
struct boot_layout {
	uint64_t kernel_end;  /* first byte above the loaded kernel (and its init_size) */
	uint64_t initrd_addr; /* 0: none */
	uint64_t initrd_size;
	uint64_t cmdline_addr;
	uint64_t cmdline_size; /* including the terminating NUL */
	uint64_t rsdp_addr;
};

/* e820 / PVH memory-map entry types (identical numbering). */
enum { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3 };

struct mem_range {
	uint64_t addr, size;
	uint32_t type;
};

#define BOOT_MAX_MEMMAP 16

/* The guest memory map, sorted and non-overlapping.  Returns the entry count. */
size_t boot_memmap(const struct guest_mem *gm, struct mem_range *out, size_t max);

/* Open the kernel and initrd; prints the error.  0 or -errno. */
int boot_files_open(struct boot_files *f, const char *kernel, const char *initrd);
/*
 * Read the firmware image spec names ("bios": Debian's SeaBIOS, else a file)
 * into f: a regular file of 64 KiB to 16 MiB, a multiple of 64 KiB.  Prints
 * one line naming what is wrong.  0 or -errno.
 */
int boot_firmware_open(struct boot_files *f, const char *spec);
/*
 * Read option ROMs (512 bytes to 256 KiB in whole 512-byte blocks, starting
 * 0x55 0xaa) into f.  One line naming what is wrong; 0 or -errno.
 */
int boot_option_roms_open(struct boot_files *f, const char *const *paths, unsigned n);
/* Copy the firmware's last 128 KiB (or all of a smaller image) to the BIOS area below 1 MiB. */
int boot_firmware_load(struct guest_mem *gm, const struct boot_files *f, struct boot_entry *entry);
void boot_files_close(struct boot_files *f);

/*
 * Load kernel, initrd and command line into guest memory and write the boot
 * information (zero page or hvm_start_info, GDT, page tables).  rsdp_addr is
 * where the ACPI tables begin.  Prints a clear error naming the file.
 * 0 or -errno.
 */
int boot_load(struct guest_mem *gm, const struct boot_files *f, const char *cmdline, uint64_t rsdp_addr,
	      struct boot_entry *entry);

/* Format-specific loaders (boot_load picks one by the file's magic). */
int bzimage_load(struct guest_mem *gm, const struct boot_files *f, const uint8_t *hdr, size_t hdr_len,
		 const char *cmdline, uint64_t rsdp_addr, struct boot_entry *entry);
int pvh_load(struct guest_mem *gm, const struct boot_files *f, const uint8_t *hdr, size_t hdr_len,
	     const char *cmdline, uint64_t rsdp_addr, struct boot_entry *entry);

/* Shared steps used by both loaders. */
int boot_place_initrd(struct guest_mem *gm, const struct boot_files *f, uint64_t max_addr,
		      struct boot_layout *l);
int boot_write_cmdline(struct guest_mem *gm, const char *cmdline, uint64_t max_len, const char *path,
		       struct boot_layout *l);
/* GDT with the selectors both entry modes use (0x08 code32, 0x10 code64, 0x18 data, 0x20 TSS). */
int boot_write_gdt(struct guest_mem *gm);
/* Identity-map the first 4 GiB with 2 MiB pages; returns CR3 via *cr3. */
int boot_write_identity_paging(struct guest_mem *gm, uint64_t *cr3);

#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_TSS 0x20
#define BOOT_GDT_ENTRIES 5
