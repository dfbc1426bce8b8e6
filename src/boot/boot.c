// SPDX-License-Identifier: MIT
#include "boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/guest_mem.h"
#include "vmm/layout.h"
#include "base/util.h"

static int open_image(const char *path, int *fd_out, uint64_t *size_out, const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		log_error("%s %s: %s", what, path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("%s %s: not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return 0;
}

int boot_files_open(struct boot_files *f, const char *kernel, const char *initrd)
{
	memset(f, 0, sizeof(*f));
	f->kernel_fd = f->initrd_fd = -1;
	f->kernel_path = kernel;
	f->initrd_path = initrd;
	if (!kernel)
		return 0; /* firmware boot: see boot_firmware_open() */
	int r = open_image(kernel, &f->kernel_fd, &f->kernel_size, "kernel");
	if (r)
		return r;
	if (initrd) {
		r = open_image(initrd, &f->initrd_fd, &f->initrd_size, "initrd");
		if (r)
			goto close_kernel;
		if (f->initrd_size == 0) {
			log_error("initrd %s: file is empty", initrd);
			r = -EINVAL;
			goto close_initrd;
		}
	}
	return 0;

close_initrd:
	close(f->initrd_fd);
	f->initrd_fd = -1;
close_kernel:
	close(f->kernel_fd);
	f->kernel_fd = -1;
	return r;
}

void boot_files_close(struct boot_files *f)
{
	if (f->kernel_fd >= 0)
		close(f->kernel_fd);
	if (f->initrd_fd >= 0)
		close(f->initrd_fd);
	f->kernel_fd = f->initrd_fd = -1;
	if (f->firmware)
		munmap(f->firmware, f->firmware_size);
	f->firmware = NULL;
	for (unsigned i = 0; i < f->nr_option_roms; i++)
		free(f->option_roms[i].data);
	f->nr_option_roms = 0;
}

size_t boot_memmap(const struct guest_mem *gm, struct mem_range *out, size_t max)
{
	uint64_t low_end = gm_lowmem_end(gm);
	struct mem_range m[] = {
		{ 0, EBDA_START, E820_RAM },
		{ EBDA_START, 0xa0000 - EBDA_START, E820_RESERVED },
		{ BIOS_AREA_START, BIOS_AREA_END - BIOS_AREA_START, E820_RESERVED },
		{ BIOS_AREA_END, low_end - BIOS_AREA_END, E820_RAM },
		{ PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED },
		{ KVM_IDENTITY_MAP_ADDR, 0x4000, E820_RESERVED },
		{ HIGHMEM_BASE, gm->nr_regions > 1 ? gm->regions[1].len : 0, E820_RAM },
	};
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(m) && n < max; i++)
		if (m[i].size)
			out[n++] = m[i];
	return n;
}

int boot_place_initrd(struct guest_mem *gm, const struct boot_files *f, uint64_t max_addr,
		      struct boot_layout *l)
{
	l->initrd_addr = l->initrd_size = 0;
	if (f->initrd_fd < 0)
		return 0;
	uint64_t top = MIN(gm_lowmem_end(gm), max_addr);
	uint64_t size = f->initrd_size;
	if (size > top || ALIGN_DOWN(top - size, 4096) < ALIGN_UP(l->kernel_end, 4096)) {
		log_error("initrd %s (%llu KiB) does not fit in guest RAM above the kernel; give the VM more --memory",
			  f->initrd_path, (unsigned long long)(size >> 10));
		return -ENOSPC;
	}
	uint64_t addr = ALIGN_DOWN(top - size, 4096);
	void *dst = gm_ptr(gm, addr, size);
	if (!dst)
		return -EFAULT;
	int r = pread_full(f->initrd_fd, dst, size, 0);
	if (r) {
		log_error("initrd %s: read failed: %s", f->initrd_path, strerror(-r));
		return r;
	}
	l->initrd_addr = addr;
	l->initrd_size = size;
	return 0;
}

int boot_write_cmdline(struct guest_mem *gm, const char *cmdline, uint64_t max_len, const char *path,
		       struct boot_layout *l)
{
	size_t len = strlen(cmdline);
	max_len = MIN(max_len, BOOT_CMDLINE_MAX - 1);
	if (len > max_len) {
		log_error("--cmdline is %zu bytes; kernel %s accepts at most %llu", len, path,
			  (unsigned long long)max_len);
		return -E2BIG;
	}
	if (gm_write(gm, BOOT_CMDLINE_ADDR, cmdline, len + 1))
		return -EFAULT;
	l->cmdline_addr = BOOT_CMDLINE_ADDR;
	l->cmdline_size = len + 1;
	return 0;
}

int boot_write_gdt(struct guest_mem *gm)
{
	const uint64_t gdt[BOOT_GDT_ENTRIES] = {
		0,
		0x00cf9b000000ffffull, /* 0x08: 32-bit code, base 0, limit 4 GiB */
		0x00af9b000000ffffull, /* 0x10: 64-bit code */
		0x00cf93000000ffffull, /* 0x18: data, base 0, limit 4 GiB */
		0x00008b0000000067ull, /* 0x20: 32-bit TSS (busy), base 0, limit 0x67 */
	};
	return gm_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt)) ? -EFAULT : 0;
}

int boot_write_identity_paging(struct guest_mem *gm, uint64_t *cr3)
{
	uint64_t pml4 = BOOT_PML4_ADDR, pdpt = pml4 + 0x1000, pd = pdpt + 0x1000;
	uint64_t *p = gm_ptr(gm, pml4, 6 * 0x1000);
	if (!p)
		return -EFAULT;
	memset(p, 0, 6 * 0x1000);
	p[0] = pdpt | 0x3; /* present, writable */
	uint64_t *pdpte = p + 512;
	uint64_t *pde = p + 1024;
	for (unsigned i = 0; i < 4; i++)
		pdpte[i] = (pd + i * 0x1000) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pde[i] = ((uint64_t)i << 21) | 0x83; /* present, writable, 2 MiB page */
	*cr3 = pml4;
	return 0;
}

int boot_load(struct guest_mem *gm, const struct boot_files *f, const char *cmdline, uint64_t rsdp_addr,
	      struct boot_entry *entry)
{
	uint8_t hdr[1024];
	size_t n = (size_t)MIN(f->kernel_size, sizeof(hdr));
	if (n < 64) {
		log_error("kernel %s: file is too small (%llu bytes) to be a kernel", f->kernel_path,
			  (unsigned long long)f->kernel_size);
		return -EINVAL;
	}
	int r = pread_full(f->kernel_fd, hdr, n, 0);
	if (r) {
		log_error("kernel %s: read failed: %s", f->kernel_path, strerror(-r));
		return r;
	}
	if (!memcmp(hdr, ELFMAG, SELFMAG))
		return pvh_load(gm, f, hdr, n, cmdline, rsdp_addr, entry);
	if (n >= 0x206 && hdr[0x1fe] == 0x55 && hdr[0x1ff] == 0xaa && !memcmp(hdr + 0x202, "HdrS", 4))
		return bzimage_load(gm, f, hdr, n, cmdline, rsdp_addr, entry);
	log_error("kernel %s: not a Linux bzImage or a PVH ELF kernel (unknown file format)", f->kernel_path);
	return -EINVAL;
}
