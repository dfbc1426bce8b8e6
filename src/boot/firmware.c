// SPDX-License-Identifier: MIT
/*
 * Firmware images (--firmware).  A BIOS image is mapped as the PC's flash
 * is: read-only, ending at 4 GiB, where the reset vector (0xfffffff0) lies
 * 16 bytes below its end; its last 128 KiB also appear at 0xe0000-0xfffff,
 * where real-mode code runs it.  That low copy is ordinary RAM, as on QEMU's
 * PC machine once SeaBIOS has shadowed itself (OpenBSD's vmd does the same),
 * so the chipset's PAM registers need no memory remapping.
 *
 * The image is the user's file, not the guest's, but still outside input:
 * only its size is checked (64 KiB to 16 MiB, whole 64 KiB blocks, as QEMU
 * requires); its contents run in the guest, where they can harm nothing
 * but the guest.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "boot.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

#define SEABIOS_PATH "/usr/share/seabios/bios-256k.bin"
#define FIRMWARE_BLOCK (64 * KiB)

int boot_firmware_open(struct boot_files *f, const char *spec)
{
	bool seabios = !strcmp(spec, "bios");
	const char *path = seabios ? SEABIOS_PATH : spec;
	f->firmware_path = path;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (seabios && e == ENOENT)
			log_error("--firmware bios: %s is missing (install Debian's seabios package)", path);
		else
			log_error("--firmware %s: %s", path, strerror(e));
		return -e;
	}
	int r = -EINVAL;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("--firmware %s: not a regular file", path);
		goto close_fd;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (size < FIRMWARE_BLOCK || size > FIRMWARE_SIZE_MAX || size % FIRMWARE_BLOCK) {
		log_error("--firmware %s: %llu bytes; a BIOS image is 64 KiB to 16 MiB in whole 64 KiB blocks", path,
			  (unsigned long long)size);
		goto close_fd;
	}
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		r = -errno;
		log_error("--firmware %s: %s", path, strerror(errno));
		goto close_fd;
	}
	r = pread_full(fd, m, size, 0);
	if (r) {
		log_error("--firmware %s: read failed: %s", path, strerror(-r));
		munmap(m, size);
		goto close_fd;
	}
	/* What KVM maps read-only is read-only here too. */
	(void)mprotect(m, size, PROT_READ);
	f->firmware = m;
	f->firmware_size = size;
	r = 0;
close_fd:
	close(fd);
	return r;
}

int boot_option_roms_open(struct boot_files *f, const char *const *paths, unsigned n)
{
	for (unsigned i = 0; i < n && i < ARRAY_SIZE(f->option_roms); i++) {
		const char *path = paths[i];
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			log_error("--option-rom %s: %s", path, strerror(e));
			return -e;
		}
		struct stat st;
		uint8_t *data = NULL;
		int r = -EINVAL;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			log_error("--option-rom %s: not a regular file", path);
		} else if (st.st_size < 512 || st.st_size > 256 * 1024 || st.st_size % 512) {
			log_error("--option-rom %s: %lld bytes; an option ROM is 512 bytes to 256 KiB in whole 512-byte blocks",
				  path, (long long)st.st_size);
		} else if (!(data = malloc((size_t)st.st_size))) {
			r = -ENOMEM;
		} else if ((r = pread_full(fd, data, (size_t)st.st_size, 0))) {
			log_error("--option-rom %s: read failed: %s", path, strerror(-r));
		} else if (data[0] != 0x55 || data[1] != 0xaa) {
			log_error("--option-rom %s: no option ROM signature (0x55 0xaa)", path);
			r = -EINVAL;
		}
		close(fd);
		if (r) {
			free(data);
			return r;
		}
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		for (unsigned k = 0; k < f->nr_option_roms; k++) {
			if (!strcmp(f->option_roms[k].name, base)) {
				log_error("--option-rom %s: a second ROM named %s (firmware finds them by file name)", path, base);
				free(data);
				return -EINVAL;
			}
		}
		if (!*base || strlen(base) >= sizeof(f->option_roms[0].name)) {
			log_error("--option-rom %s: the file name must be 1 to %zu characters", path,
				  sizeof(f->option_roms[0].name) - 1);
			free(data);
			return -EINVAL;
		}
		struct boot_rom *rom = &f->option_roms[f->nr_option_roms++];
		snprintf(rom->name, sizeof(rom->name), "%s", base);
		rom->data = data;
		rom->size = (uint32_t)st.st_size;
	}
	return 0;
}

int boot_firmware_load(struct guest_mem *gm, const struct boot_files *f, struct boot_entry *entry)
{
	uint64_t low = MIN(f->firmware_size, FIRMWARE_LOW_MAX);
	int r = gm_write(gm, BIOS_AREA_END - low, f->firmware + f->firmware_size - low, low);
	if (r) {
		log_error("--firmware: guest RAM does not cover the BIOS area");
		return r;
	}
	*entry = (struct boot_entry){ .mode = BOOT_MODE_RESET };
	return 0;
}
