// SPDX-License-Identifier: MIT
/* Kernel loaders: bzImage (boot_params, e820, cmdline, initrd) and PVH, good and malformed. */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>

#include "boot/boot.h"
#include "fake.h"
#include "vmm/layout.h"
#include "unit.h"

#define RAM (64ull << 20)
#define SETUP_SECTS 4
#define PAYLOAD 8192

static uint8_t image[(SETUP_SECTS + 1) * 512 + PAYLOAD];

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void make_bzimage(void)
{
	memset(image, 0, sizeof(image));
	uint8_t *h = image;
	h[0x1f1] = SETUP_SECTS;
	put32(h + 0x1f4, PAYLOAD / 16);
	put16(h + 0x1fe, 0xaa55);
	h[0x200] = 0xeb;
	h[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(h + 0x202, "HdrS", 4);
	put16(h + 0x206, 0x020f);
	h[0x211] = LOADED_HIGH;
	put32(h + 0x214, 0x100000);
	put32(h + 0x22c, 0x7fffffff);
	put32(h + 0x230, 0x200000);
	h[0x234] = 1; /* relocatable */
	put16(h + 0x236, XLF_KERNEL_64);
	put32(h + 0x238, 2047);
	put64(h + 0x258, 0x1000000);
	put32(h + 0x260, 0x400000); /* init_size */
	for (size_t i = 0; i < PAYLOAD; i++)
		image[(SETUP_SECTS + 1) * 512 + i] = (uint8_t)(i * 7 + 3);
}

struct loaded {
	int r;
	struct boot_entry e;
	const char *err;
};

static struct loaded load(struct vm *vm, const void *img, size_t len, const uint8_t *initrd, size_t initrd_len,
			  const char *cmdline)
{
	struct loaded l;
	char *kpath = write_temp(img, len);
	char *ipath = initrd ? write_temp(initrd, initrd_len) : NULL;
	struct boot_files f;
	capture_begin();
	l.r = boot_files_open(&f, kpath, ipath);
	if (!l.r) {
		l.r = boot_load(&vm->mem, &f, cmdline, ACPI_TABLES_ADDR, &l.e);
		boot_files_close(&f);
	}
	l.err = capture_end();
	unlink(kpath);
	free(kpath);
	if (ipath) {
		unlink(ipath);
		free(ipath);
	}
	return l;
}

static void bzimage_boot_params(void)
{
	struct vm *vm = fake_vm(RAM);
	make_bzimage();
	uint8_t initrd[5000];
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	struct loaded l = load(vm, image, sizeof(image), initrd, sizeof(initrd), "console=ttyS0 hello");
	CHECK_EQ(l.r, 0);
	CHECK_EQ(l.e.mode, BOOT_MODE_LINUX64);
	CHECK_EQ(l.e.rip, 0x100200);
	CHECK_EQ(l.e.arg, BOOT_PARAMS_ADDR);
	CHECK_EQ(l.e.cr3, BOOT_PML4_ADDR);
	CHECK(!memcmp(gm_ptr(&vm->mem, 0x100000, PAYLOAD), image + (SETUP_SECTS + 1) * 512, PAYLOAD));

	struct boot_params *bp = gm_ptr(&vm->mem, BOOT_PARAMS_ADDR, sizeof(*bp));
	CHECK_EQ(bp->hdr.type_of_loader, 0xff);
	CHECK_EQ(bp->hdr.boot_flag, 0xaa55);
	CHECK_EQ(bp->hdr.version, 0x020f);
	CHECK(bp->hdr.loadflags & LOADED_HIGH);
	CHECK(bp->hdr.loadflags & CAN_USE_HEAP);
	CHECK_EQ(bp->acpi_rsdp_addr, ACPI_TABLES_ADDR);
	CHECK(!strcmp(gm_ptr(&vm->mem, bp->hdr.cmd_line_ptr, 20), "console=ttyS0 hello"));

	/* initrd: page aligned, as high as possible, intact. */
	CHECK_EQ(bp->hdr.ramdisk_size, sizeof(initrd));
	CHECK_EQ(bp->hdr.ramdisk_image % 4096, 0);
	CHECK(bp->hdr.ramdisk_image + sizeof(initrd) <= RAM);
	CHECK(bp->hdr.ramdisk_image + sizeof(initrd) + 4096 > RAM);
	CHECK(bp->hdr.ramdisk_image >= 0x100000 + 0x400000);
	CHECK(!memcmp(gm_ptr(&vm->mem, bp->hdr.ramdisk_image, sizeof(initrd)), initrd, sizeof(initrd)));

	/* e820: the map boot_memmap describes, sorted, RAM adding up. */
	struct mem_range map[BOOT_MAX_MEMMAP];
	size_t n = boot_memmap(&vm->mem, map, BOOT_MAX_MEMMAP);
	CHECK_EQ(bp->e820_entries, n);
	uint64_t ram = 0;
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ(bp->e820_table[i].addr, map[i].addr);
		CHECK_EQ(bp->e820_table[i].size, map[i].size);
		CHECK_EQ(bp->e820_table[i].type, map[i].type);
		if (i)
			CHECK(map[i].addr >= map[i - 1].addr + map[i - 1].size);
		if (map[i].type == E820_RAM)
			ram += map[i].size;
	}
	CHECK_EQ(ram, RAM - (0x100000 - EBDA_START));
	CHECK_EQ(map[0].addr, 0);
	CHECK_EQ(map[0].type, E820_RAM);

	/* GDT and page tables for the 64-bit entry. */
	uint64_t *gdt = gm_ptr(&vm->mem, BOOT_GDT_ADDR, 8 * BOOT_GDT_ENTRIES);
	CHECK_EQ(gdt[BOOT_SEL_CODE64 / 8], 0x00af9b000000ffffull);
	CHECK_EQ(gdt[BOOT_SEL_DATA / 8], 0x00cf93000000ffffull);
	uint64_t *pml4 = gm_ptr(&vm->mem, BOOT_PML4_ADDR, 6 * 4096);
	CHECK_EQ(pml4[0], (BOOT_PML4_ADDR + 0x1000) | 3);
	CHECK_EQ(pml4[1024 + 3], (3ull << 21) | 0x83);
	CHECK_EQ(pml4[1024 + 2047], (2047ull << 21) | 0x83);
	fake_vm_free(vm);
}

static void bzimage_without_initrd(void)
{
	struct vm *vm = fake_vm(RAM);
	make_bzimage();
	struct loaded l = load(vm, image, sizeof(image), NULL, 0, "");
	CHECK_EQ(l.r, 0);
	struct boot_params *bp = gm_ptr(&vm->mem, BOOT_PARAMS_ADDR, sizeof(*bp));
	CHECK_EQ(bp->hdr.ramdisk_image, 0);
	CHECK_EQ(bp->hdr.ramdisk_size, 0);
	fake_vm_free(vm);
}

/* Each malformation must be refused with a message naming the file. */
static void expect_reject(struct vm *vm, void (*mutate)(void), size_t len, int want, const char *words)
{
	make_bzimage();
	mutate();
	struct loaded l = load(vm, image, len, NULL, 0, "x");
	CHECK_EQ(l.r, want);
	CHECK(strstr(l.err, "kernel /tmp/keel-unit-") != NULL);
	CHECK(strstr(l.err, words) != NULL);
}

static void m_none(void) {}
static void m_magic(void) { memcpy(image + 0x202, "HdrX", 4); }
static void m_old(void) { put16(image + 0x206, 0x020a); }
static void m_no64(void) { put16(image + 0x236, 0); }
static void m_zimage(void) { image[0x211] = 0; }
static void m_setup_huge(void) { image[0x1f1] = 200; }
static void m_syssize(void) { put32(image + 0x1f4, PAYLOAD); }
static void m_fixed_addr(void) { image[0x234] = 0; put32(image + 0x214, 0x200000); }
static void m_init_size(void) { put32(image + 0x260, 0x7ff00000); }

static void bzimage_malformed(void)
{
	struct vm *vm = fake_vm(RAM);
	expect_reject(vm, m_magic, sizeof(image), -EINVAL, "unknown file format");
	expect_reject(vm, m_old, sizeof(image), -EINVAL, "2.12");
	expect_reject(vm, m_no64, sizeof(image), -EINVAL, "64-bit entry point");
	expect_reject(vm, m_zimage, sizeof(image), -EINVAL, "zImage");
	expect_reject(vm, m_setup_huge, sizeof(image), -EINVAL, "truncated");
	expect_reject(vm, m_syssize, sizeof(image), -EINVAL, "truncated");
	expect_reject(vm, m_none, (SETUP_SECTS + 1) * 512 + 100, -EINVAL, "truncated");
	expect_reject(vm, m_fixed_addr, sizeof(image), -EINVAL, "not relocatable");
	expect_reject(vm, m_init_size, sizeof(image), -ENOSPC, "--memory");
	expect_reject(vm, m_none, 40, -EINVAL, "too small");
	fake_vm_free(vm);
}

static void bzimage_cmdline_and_initrd_limits(void)
{
	struct vm *vm = fake_vm(RAM);
	make_bzimage();
	put32(image + 0x238, 16); /* cmdline_size */
	struct loaded l = load(vm, image, sizeof(image), NULL, 0, "this command line is too long");
	CHECK_EQ(l.r, -E2BIG);
	CHECK(strstr(l.err, "--cmdline is 29 bytes") != NULL);

	make_bzimage();
	size_t big = RAM - 0x500000 + 4096;
	uint8_t *initrd = calloc(1, big);
	l = load(vm, image, sizeof(image), initrd, big, "");
	CHECK_EQ(l.r, -ENOSPC);
	CHECK(strstr(l.err, "does not fit") != NULL);
	free(initrd);
	fake_vm_free(vm);
}

static void missing_files(void)
{
	struct boot_files f;
	capture_begin();
	int r = boot_files_open(&f, "/nonexistent/vmlinuz", NULL);
	const char *err = capture_end();
	CHECK_EQ(r, -ENOENT);
	CHECK(strstr(err, "kernel /nonexistent/vmlinuz: No such file") != NULL);
	capture_begin();
	r = boot_files_open(&f, "/tmp", NULL);
	err = capture_end();
	CHECK_EQ(r, -EINVAL);
	CHECK(strstr(err, "not a regular file") != NULL);
}

/* A minimal ELF64 PVH kernel: one PT_LOAD at 2 MiB (with bss), one PT_NOTE. */
static uint8_t elf[4096 + 8192];
#define ELF_LOAD_OFF 4096
#define ELF_NOTE_OFF 0x200

static void make_pvh(uint64_t entry)
{
	memset(elf, 0, sizeof(elf));
	Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 2;
	Elf64_Phdr *ph = (Elf64_Phdr *)(elf + sizeof(*eh));
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = ELF_LOAD_OFF, .p_paddr = 0x200000,
			      .p_filesz = 8192, .p_memsz = 16384 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = ELF_NOTE_OFF, .p_filesz = 20 };
	uint32_t note[5] = { 4, 4, 18, 0, (uint32_t)entry };
	memcpy(&note[3], "Xen", 4);
	memcpy(elf + ELF_NOTE_OFF, note, sizeof(note));
	for (size_t i = 0; i < 8192; i++)
		elf[ELF_LOAD_OFF + i] = (uint8_t)(i * 13);
}

static void pvh_start_info(void)
{
	struct vm *vm = fake_vm(RAM);
	make_pvh(0x200010);
	/* The bss part of the segment must come out zero even over old contents. */
	memset(gm_ptr(&vm->mem, 0x202000, 8192), 0xee, 8192);
	uint8_t initrd[3000];
	memset(initrd, 0x42, sizeof(initrd));
	struct loaded l = load(vm, elf, sizeof(elf), initrd, sizeof(initrd), "pvh cmdline");
	CHECK_EQ(l.r, 0);
	CHECK_EQ(l.e.mode, BOOT_MODE_PVH32);
	CHECK_EQ(l.e.rip, 0x200010);
	CHECK_EQ(l.e.arg, BOOT_PVH_INFO_ADDR);
	CHECK(!memcmp(gm_ptr(&vm->mem, 0x200000, 8192), elf + ELF_LOAD_OFF, 8192));
	const uint8_t *bss = gm_ptr(&vm->mem, 0x202000, 8192);
	CHECK(bss[0] == 0 && bss[8191] == 0);

	const uint32_t *si = gm_ptr(&vm->mem, BOOT_PVH_INFO_ADDR, 56);
	CHECK_EQ(si[0], 0x336ec578);
	CHECK_EQ(si[1], 1);
	CHECK_EQ(si[3], 1); /* one module */
	uint64_t modlist, cmdline, rsdp, memmap;
	memcpy(&modlist, si + 4, 8);
	memcpy(&cmdline, si + 6, 8);
	memcpy(&rsdp, si + 8, 8);
	memcpy(&memmap, si + 10, 8);
	CHECK(!strcmp(gm_ptr(&vm->mem, cmdline, 12), "pvh cmdline"));
	CHECK_EQ(rsdp, ACPI_TABLES_ADDR);
	const uint64_t *mod = gm_ptr(&vm->mem, modlist, 32);
	CHECK_EQ(mod[1], sizeof(initrd));
	CHECK(!memcmp(gm_ptr(&vm->mem, mod[0], sizeof(initrd)), initrd, sizeof(initrd)));
	struct mem_range map[BOOT_MAX_MEMMAP];
	size_t n = boot_memmap(&vm->mem, map, BOOT_MAX_MEMMAP);
	CHECK_EQ(si[12], n);
	const uint8_t *mt = gm_ptr(&vm->mem, memmap, n * 24);
	for (size_t i = 0; i < n; i++) {
		uint64_t a, s;
		uint32_t t;
		memcpy(&a, mt + 24 * i, 8);
		memcpy(&s, mt + 24 * i + 8, 8);
		memcpy(&t, mt + 24 * i + 16, 4);
		CHECK(a == map[i].addr && s == map[i].size && t == map[i].type);
	}
	fake_vm_free(vm);
}

static void pvh_malformed(void)
{
	struct vm *vm = fake_vm(RAM);
	struct loaded l;
	Elf64_Phdr *ph = (Elf64_Phdr *)(elf + sizeof(Elf64_Ehdr));

	make_pvh(0x200010);
	elf[ELF_NOTE_OFF + 8] = 17; /* wrong note type */
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "PVH entry note"));

	make_pvh(0x900000); /* entry outside every segment */
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "not inside a loaded segment"));

	make_pvh(0x200010);
	ph[0].p_offset = 0xfffffffffffff000ull; /* offset + size wraps */
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "outside the file"));

	make_pvh(0x200010);
	ph[0].p_paddr = 0x7000; /* over the boot structures */
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "outside guest RAM above 1 MiB"));

	make_pvh(0x200010);
	ph[0].p_paddr = RAM - 4096; /* runs off the end of RAM */
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "outside guest RAM"));

	make_pvh(0x200010);
	ph[0].p_filesz = ph[0].p_memsz + 1;
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL);

	make_pvh(0x200010);
	((Elf64_Ehdr *)elf)->e_phnum = 1000;
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "program header table"));

	make_pvh(0x200010);
	((Elf64_Ehdr *)elf)->e_machine = EM_AARCH64;
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "not x86"));

	make_pvh(0x200010);
	uint32_t huge = 0xfffffff0; /* note name size runs past the segment */
	memcpy(elf + ELF_NOTE_OFF, &huge, 4);
	l = load(vm, elf, sizeof(elf), NULL, 0, "");
	CHECK(l.r == -EINVAL && strstr(l.err, "PVH entry note"));
	fake_vm_free(vm);
}

static void memmap_with_high_memory(void)
{
	struct guest_mem gm;
	CHECK_EQ(gm_init(&gm, 4 * GiB), 0);
	struct mem_range map[BOOT_MAX_MEMMAP];
	size_t n = boot_memmap(&gm, map, BOOT_MAX_MEMMAP);
	uint64_t ram = 0;
	for (size_t i = 0; i < n; i++)
		if (map[i].type == E820_RAM)
			ram += map[i].size;
	CHECK_EQ(map[n - 1].addr, HIGHMEM_BASE);
	CHECK_EQ(map[n - 1].size, 4 * GiB - LOWMEM_LIMIT);
	CHECK_EQ(ram, 4 * GiB - (0x100000 - EBDA_START));
	gm_destroy(&gm);
}

int main(void)
{
	RUN("boot", bzimage_boot_params);
	RUN("boot", bzimage_without_initrd);
	RUN("boot", bzimage_malformed);
	RUN("boot", bzimage_cmdline_and_initrd_limits);
	RUN("boot", missing_files);
	RUN("boot", pvh_start_info);
	RUN("boot", pvh_malformed);
	RUN("boot", memmap_with_high_memory);
	UNIT_EXIT();
}
