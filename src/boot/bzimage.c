// SPDX-License-Identifier: MIT
/* Linux x86 boot protocol: bzImage with a 64-bit entry point (protocol 2.12+). */
#include <asm/bootparam.h>
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/layout.h"
#include "base/util.h"
#include "boot.h"

static_assert(sizeof(struct boot_params) == 4096, "zero page is one page");
static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry layout");
static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "setup header offset");
static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x70, "acpi_rsdp_addr offset");
static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820 table offset");

#define SETUP_HDR_OFFSET 0x1f1
#define MIN_PROTOCOL 0x020c /* 2.12: xloadflags, 64-bit entry point */

int bzimage_load(struct guest_mem *gm, const struct boot_files *f, const uint8_t *hdr, size_t hdr_len,
		 const char *cmdline, uint64_t rsdp_addr, struct boot_entry *entry)
{
	const char *path = f->kernel_path;
	struct setup_header sh;
	if (hdr_len < SETUP_HDR_OFFSET + sizeof(sh)) {
		log_error("kernel %s: truncated setup header", path);
		return -EINVAL;
	}
	memcpy(&sh, hdr + SETUP_HDR_OFFSET, sizeof(sh));

	if (sh.version < MIN_PROTOCOL || !(sh.xloadflags & XLF_KERNEL_64)) {
		log_error("kernel %s: boot protocol %u.%02u without a 64-bit entry point; keel needs 2.12+ "
			  "(Linux 3.8 or newer, x86_64)",
			  path, sh.version >> 8, sh.version & 0xff);
		return -EINVAL;
	}
	if (!(sh.loadflags & LOADED_HIGH)) {
		log_error("kernel %s: a zImage (loaded low) is not supported; use a bzImage", path);
		return -EINVAL;
	}
	uint64_t setup_sects = sh.setup_sects ? sh.setup_sects : 4;
	uint64_t setup_size = (setup_sects + 1) * 512;
	if (setup_size >= f->kernel_size) {
		log_error("kernel %s: setup (%llu bytes) is larger than the file; the image is truncated", path,
			  (unsigned long long)setup_size);
		return -EINVAL;
	}
	uint64_t payload = f->kernel_size - setup_size;
	if ((uint64_t)sh.syssize * 16 > payload) {
		log_error("kernel %s: header says %llu bytes of kernel, file holds %llu; the image is truncated",
			  path, (unsigned long long)sh.syssize * 16, (unsigned long long)payload);
		return -EINVAL;
	}
	if (!sh.relocatable_kernel && sh.code32_start != KERNEL_LOAD_ADDR) {
		log_error("kernel %s: not relocatable and wants to load at 0x%x; keel loads at 0x%llx", path,
			  sh.code32_start, (unsigned long long)KERNEL_LOAD_ADDR);
		return -EINVAL;
	}
	uint64_t need = MAX((uint64_t)sh.init_size, payload);
	struct boot_layout l = { .kernel_end = KERNEL_LOAD_ADDR + need };
	void *dst = gm_ptr(gm, KERNEL_LOAD_ADDR, need);
	if (!dst) {
		log_error("kernel %s: needs %llu MiB of RAM above 1 MiB to decompress; give the VM more --memory",
			  path, (unsigned long long)(need >> 20) + 1);
		return -ENOSPC;
	}
	int r = pread_full(f->kernel_fd, dst, payload, setup_size);
	if (r) {
		log_error("kernel %s: read failed: %s", path, strerror(-r));
		return r;
	}

	uint64_t cmdline_max = sh.cmdline_size ? sh.cmdline_size : 255;
	r = boot_write_cmdline(gm, cmdline, cmdline_max, path, &l);
	if (r)
		return r;
	uint64_t initrd_max = sh.initrd_addr_max ? (uint64_t)sh.initrd_addr_max + 1 : 0x38000000;
	r = boot_place_initrd(gm, f, initrd_max, &l);
	if (r)
		return r;

	struct boot_params *bp = gm_ptr(gm, BOOT_PARAMS_ADDR, sizeof(*bp));
	if (!bp)
		return -EFAULT;
	memset(bp, 0, sizeof(*bp));
	/* Copy the header as far as the kernel says it extends (byte 0x201 is the jump's offset). */
	size_t hdr_end = 0x202 + hdr[0x201];
	size_t copy = MIN(hdr_end, SETUP_HDR_OFFSET + sizeof(sh)) - SETUP_HDR_OFFSET;
	memcpy(&bp->hdr, hdr + SETUP_HDR_OFFSET, copy);
	bp->hdr.type_of_loader = 0xff; /* undefined loader */
	bp->hdr.loadflags = (uint8_t)((bp->hdr.loadflags | CAN_USE_HEAP) & ~KEEP_SEGMENTS);
	bp->hdr.heap_end_ptr = 0xfe00;
	bp->hdr.vid_mode = 0xffff; /* "normal" */
	bp->hdr.cmd_line_ptr = (uint32_t)l.cmdline_addr;
	bp->hdr.ramdisk_image = (uint32_t)l.initrd_addr;
	bp->hdr.ramdisk_size = (uint32_t)l.initrd_size;
	bp->hdr.code32_start = (uint32_t)KERNEL_LOAD_ADDR;
	if (sh.version >= 0x020e)
		bp->acpi_rsdp_addr = rsdp_addr;

	struct mem_range map[BOOT_MAX_MEMMAP];
	size_t n = boot_memmap(gm, map, ARRAY_SIZE(map));
	for (size_t i = 0; i < n; i++)
		bp->e820_table[i] = (struct boot_e820_entry){ map[i].addr, map[i].size, map[i].type };
	bp->e820_entries = (uint8_t)n;

	uint64_t cr3;
	r = boot_write_gdt(gm);
	if (!r)
		r = boot_write_identity_paging(gm, &cr3);
	if (r)
		return r;
	*entry = (struct boot_entry){
		.mode = BOOT_MODE_LINUX64,
		.rip = KERNEL_LOAD_ADDR + 0x200, /* 64-bit entry: startup_64 */
		.arg = BOOT_PARAMS_ADDR,
		.cr3 = cr3,
	};
	return 0;
}
