// SPDX-License-Identifier: MIT
#include "guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layout.h"

int gm_init(struct guest_mem *gm, uint64_t size)
{
	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	if (!size)
		return -EINVAL;

	int fd = memfd_create("keel-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	int r;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		goto close_fd;
	}
	/* RAM never changes size: seal it so a backend cannot shrink it under us. */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);

	void *host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (host == MAP_FAILED) {
		r = -errno;
		goto close_fd;
	}
	/* Guest RAM never belongs in a core dump of the VMM. */
	(void)madvise(host, size, MADV_DONTDUMP);

	gm->fd = fd;
	gm->host = host;
	gm->size = size;
	uint64_t low = size < LOWMEM_LIMIT ? size : LOWMEM_LIMIT;
	gm->regions[0] = (struct gm_region){ .gpa = 0, .len = low, .offset = 0 };
	gm->nr_regions = 1;
	if (size > low) {
		gm->regions[1] = (struct gm_region){ .gpa = HIGHMEM_BASE, .len = size - low, .offset = low };
		gm->nr_regions = 2;
	}
	return 0;

close_fd:
	close(fd);
	return r;
}

void gm_destroy(struct guest_mem *gm)
{
	if (gm->host)
		munmap(gm->host, gm->size);
	if (gm->fd >= 0)
		close(gm->fd);
	gm->host = NULL;
	gm->fd = -1;
}

int gm_clear(struct guest_mem *gm)
{
	if (fallocate(gm->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)gm->size) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	memset(gm->host, 0, gm->size);
	return 0;
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return NULL;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];
		/* gpa - r->gpa cannot wrap once gpa >= r->gpa; compare lengths only. */
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off >= r->len || len > r->len - off)
			continue;
		return gm->host + r->offset + off;
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t gm_lowmem_end(const struct guest_mem *gm)
{
	return gm->regions[0].gpa + gm->regions[0].len;
}
