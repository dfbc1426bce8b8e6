// SPDX-License-Identifier: MIT
/*
 * Guest RAM: one memfd (so that out-of-process device backends can map it),
 * one host mapping, split into at most two guest-physical regions around the
 * PCI hole.  gm_ptr() is the one checked accessor for guest memory: every
 * guest-physical range keel touches goes through it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct gm_region {
	uint64_t gpa;    /* guest-physical start */
	uint64_t len;    /* bytes */
	uint64_t offset; /* offset in the memfd and in the host mapping */
};

struct guest_mem {
	int fd;
	uint8_t *host;
	uint64_t size; /* total RAM bytes */
	unsigned nr_regions;
	struct gm_region regions[2];
};

/* Create the memfd and mapping for size bytes of RAM.  0 or -errno. */
int gm_init(struct guest_mem *gm, uint64_t size);
void gm_destroy(struct guest_mem *gm);
/* Zero all of RAM (returns pages to the host).  0 or -errno. */
int gm_clear(struct guest_mem *gm);

/*
 * Host pointer for [gpa, gpa+len) if the whole range is RAM inside one
 * region, else NULL.  Overflow-safe for any gpa and len; len 0 is refused.
 */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy helpers built on gm_ptr(): 0 or -EFAULT. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/* End of RAM below 4 GiB (exclusive). */
uint64_t gm_lowmem_end(const struct guest_mem *gm);
