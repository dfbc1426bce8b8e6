// SPDX-License-Identifier: MIT
/*
 * PVH boot: an ELF kernel with a XEN_ELFNOTE_PHYS32_ENTRY note, entered in
 * 32-bit protected mode with %ebx pointing at struct hvm_start_info.
 */
#include <assert.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/layout.h"
#include "base/util.h"
#include "boot.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
#define PVH_MAX_PHDRS 64
#define PVH_CMDLINE_MAX 4095

/* Guest-visible structures of the PVH ABI (Xen public header, version 1). */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");

/* Program headers of either ELF class, widened. */
struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static int read_phdrs(const struct boot_files *f, const uint8_t *hdr, size_t hdr_len, struct phdr *out,
		      unsigned *count)
{
	const char *path = f->kernel_path;
	bool is64 = hdr[EI_CLASS] == ELFCLASS64;
	if ((hdr[EI_CLASS] != ELFCLASS64 && hdr[EI_CLASS] != ELFCLASS32) || hdr[EI_DATA] != ELFDATA2LSB) {
		log_error("kernel %s: not a little-endian ELF32/ELF64 file", path);
		return -EINVAL;
	}
	uint64_t phoff;
	unsigned phnum, phentsize, machine, type;
	if (is64) {
		Elf64_Ehdr eh;
		if (hdr_len < sizeof(eh))
			return -EINVAL;
		memcpy(&eh, hdr, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
		machine = eh.e_machine, type = eh.e_type;
	} else {
		Elf32_Ehdr eh;
		if (hdr_len < sizeof(eh))
			return -EINVAL;
		memcpy(&eh, hdr, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
		machine = eh.e_machine, type = eh.e_type;
	}
	if (machine != EM_X86_64 && machine != EM_386) {
		log_error("kernel %s: ELF for machine %u, not x86", path, machine);
		return -EINVAL;
	}
	if (type != ET_EXEC) {
		log_error("kernel %s: ELF type %u is not an executable", path, type);
		return -EINVAL;
	}
	size_t want = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phentsize != want || phnum == 0 || phnum > PVH_MAX_PHDRS) {
		log_error("kernel %s: bad ELF program header table (%u entries of %u bytes)", path, phnum,
			  phentsize);
		return -EINVAL;
	}
	uint64_t table = (uint64_t)phnum * phentsize;
	if (phoff > f->kernel_size || table > f->kernel_size - phoff) {
		log_error("kernel %s: ELF program headers lie outside the file", path);
		return -EINVAL;
	}
	uint8_t buf[PVH_MAX_PHDRS * sizeof(Elf64_Phdr)];
	int r = pread_full(f->kernel_fd, buf, table, phoff);
	if (r)
		return r;
	for (unsigned i = 0; i < phnum; i++) {
		if (is64) {
			Elf64_Phdr p;
			memcpy(&p, buf + i * want, sizeof(p));
			out[i] = (struct phdr){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
		} else {
			Elf32_Phdr p;
			memcpy(&p, buf + i * want, sizeof(p));
			out[i] = (struct phdr){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
		}
	}
	*count = phnum;
	return 0;
}

static bool in_file(const struct boot_files *f, uint64_t off, uint64_t len)
{
	return off <= f->kernel_size && len <= f->kernel_size - off;
}

/* Search one PT_NOTE segment for the PVH entry note.  1 found, 0 not, -errno. */
static int find_pvh_note(const struct boot_files *f, const struct phdr *p, uint64_t *entry)
{
	if (p->filesz > 64 * KiB || !in_file(f, p->offset, p->filesz))
		return 0;
	uint8_t *notes = malloc(p->filesz ? p->filesz : 1);
	if (!notes)
		return -ENOMEM;
	int r = pread_full(f->kernel_fd, notes, p->filesz, p->offset);
	if (r)
		goto free_notes;
	uint64_t off = 0;
	while (p->filesz - off >= sizeof(Elf32_Nhdr)) {
		Elf32_Nhdr nh;
		memcpy(&nh, notes + off, sizeof(nh));
		off += sizeof(nh);
		uint64_t name_len = ALIGN_UP((uint64_t)nh.n_namesz, 4);
		uint64_t desc_len = ALIGN_UP((uint64_t)nh.n_descsz, 4);
		if (name_len > p->filesz - off || desc_len > p->filesz - off - name_len)
			break;
		const uint8_t *name = notes + off, *desc = notes + off + name_len;
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 && !memcmp(name, "Xen", 4) &&
		    (nh.n_descsz == 4 || nh.n_descsz == 8)) {
			uint64_t v = 0;
			memcpy(&v, desc, nh.n_descsz);
			*entry = v;
			r = 1;
			goto free_notes;
		}
		off += name_len + desc_len;
	}
	r = 0;
free_notes:
	free(notes);
	return r;
}

int pvh_load(struct guest_mem *gm, const struct boot_files *f, const uint8_t *hdr, size_t hdr_len,
	     const char *cmdline, uint64_t rsdp_addr, struct boot_entry *entry)
{
	const char *path = f->kernel_path;
	struct phdr ph[PVH_MAX_PHDRS];
	unsigned n;
	int r = read_phdrs(f, hdr, hdr_len, ph, &n);
	if (r)
		return r;

	uint64_t pvh_entry = 0;
	bool found = false;
	for (unsigned i = 0; i < n && !found; i++) {
		if (ph[i].type != PT_NOTE)
			continue;
		r = find_pvh_note(f, &ph[i], &pvh_entry);
		if (r < 0)
			return r;
		found = r == 1;
	}
	if (!found) {
		log_error("kernel %s: ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
			  "boot the bzImage instead or build the kernel with CONFIG_PVH=y",
			  path);
		return -EINVAL;
	}

	struct boot_layout l = { .kernel_end = 0 };
	bool entry_inside = false;
	for (unsigned i = 0; i < n; i++) {
		const struct phdr *p = &ph[i];
		if (p->type != PT_LOAD || p->memsz == 0)
			continue;
		if (p->filesz > p->memsz || !in_file(f, p->offset, p->filesz)) {
			log_error("kernel %s: ELF segment %u lies outside the file", path, i);
			return -EINVAL;
		}
		uint8_t *dst = gm_ptr(gm, p->paddr, p->memsz);
		if (p->paddr < KERNEL_LOAD_ADDR || !dst) {
			log_error("kernel %s: ELF segment %u at 0x%llx+0x%llx is outside guest RAM above 1 MiB", path,
				  i, (unsigned long long)p->paddr, (unsigned long long)p->memsz);
			return -EINVAL;
		}
		if (p->filesz) {
			r = pread_full(f->kernel_fd, dst, p->filesz, p->offset);
			if (r) {
				log_error("kernel %s: read failed: %s", path, strerror(-r));
				return r;
			}
		}
		memset(dst + p->filesz, 0, p->memsz - p->filesz);
		l.kernel_end = MAX(l.kernel_end, p->paddr + p->memsz);
		if (pvh_entry >= p->paddr && pvh_entry - p->paddr < p->memsz)
			entry_inside = true;
	}
	if (!entry_inside || pvh_entry >= 1ull << 32) {
		log_error("kernel %s: PVH entry point 0x%llx is not inside a loaded segment", path,
			  (unsigned long long)pvh_entry);
		return -EINVAL;
	}

	r = boot_write_cmdline(gm, cmdline, PVH_CMDLINE_MAX, path, &l);
	if (r)
		return r;
	r = boot_place_initrd(gm, f, 1ull << 32, &l);
	if (r)
		return r;

	/* hvm_start_info, then the module list, then the memory map. */
	uint64_t info_addr = BOOT_PVH_INFO_ADDR;
	uint64_t mod_addr = info_addr + sizeof(struct hvm_start_info);
	uint64_t map_addr = mod_addr + sizeof(struct hvm_modlist_entry);
	struct mem_range map[BOOT_MAX_MEMMAP];
	size_t nmap = boot_memmap(gm, map, ARRAY_SIZE(map));
	struct hvm_memmap_table_entry *mt = gm_ptr(gm, map_addr, nmap * sizeof(*mt));
	struct hvm_start_info *si = gm_ptr(gm, info_addr, sizeof(*si));
	struct hvm_modlist_entry *mod = gm_ptr(gm, mod_addr, sizeof(*mod));
	if (!mt || !si || !mod)
		return -EFAULT;
	for (size_t i = 0; i < nmap; i++)
		mt[i] = (struct hvm_memmap_table_entry){ map[i].addr, map[i].size, map[i].type, 0 };
	*mod = (struct hvm_modlist_entry){ .paddr = l.initrd_addr, .size = l.initrd_size };
	*si = (struct hvm_start_info){
		.magic = HVM_START_MAGIC,
		.version = 1,
		.nr_modules = l.initrd_size ? 1 : 0,
		.modlist_paddr = l.initrd_size ? mod_addr : 0,
		.cmdline_paddr = l.cmdline_addr,
		.rsdp_paddr = rsdp_addr,
		.memmap_paddr = map_addr,
		.memmap_entries = (uint32_t)nmap,
	};
	r = boot_write_gdt(gm);
	if (r)
		return r;
	*entry = (struct boot_entry){ .mode = BOOT_MODE_PVH32, .rip = pvh_entry, .arg = info_addr };
	return 0;
}
