// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the kernel loaders: the input is a kernel image
 * (bzImage or PVH ELF, picked by its magic as keel does), with an initrd,
 * loaded into guest RAM.  Images are user input, not trusted.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#include "boot/boot.h"
#include "fake.h"
#include "vmm/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem gm;
static int kfd = -1, ifd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (kfd < 0) {
		log_level = LOG_QUIET;
		if (gm_init(&gm, 32 << 20))
			abort();
		kfd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
		ifd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
		if (write(ifd, "initrd", 6) != 6)
			abort();
	}
	if (ftruncate(kfd, 0) || pwrite(kfd, data, size, 0) != (ssize_t)size)
		return 0;
	struct boot_files f = {
		.kernel_path = "fuzz", .kernel_fd = kfd, .kernel_size = size,
		.initrd_path = "fuzz-initrd", .initrd_fd = ifd, .initrd_size = 6,
	};
	struct boot_entry e;
	int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
	dup2(null, STDERR_FILENO); /* loaders explain every rejection; not interesting here */
	(void)boot_load(&gm, &f, "console=ttyS0", ACPI_TABLES_ADDR, &e);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(null);
	return 0;
}
