// SPDX-License-Identifier: MIT
/*
 * Port-I/O and MMIO dispatch.  Devices describe their ranges in static const
 * tables (struct io_range_desc); the VM registers them on a bus at creation.
 * After set-up a bus is read-only, so vCPU threads look it up without locks;
 * each device serialises its own state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All-ones value of an access of `size` bytes (what a read from nothing returns). */
static inline uint64_t io_ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

struct io_ops {
	/* offset is relative to the range base; size is 1, 2, 4 or 8. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct io_range_desc {
	uint64_t base;
	uint64_t len;
	struct io_ops ops;
};

struct bus_entry {
	uint64_t base;
	uint64_t len;
	const struct io_ops *ops;
	void *opaque;
};

struct bus {
	const char *name;
	struct bus_entry *entries; /* sorted by base, non-overlapping */
	size_t nr, cap;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);
/* 0, -EEXIST if the range overlaps another, -EINVAL if empty or wrapping. */
int bus_add(struct bus *b, uint64_t base, uint64_t len, const struct io_ops *ops, void *opaque);
/*
 * Dispatch an access wholly inside one registered range.  An access nobody
 * handles reads as all-ones and is dropped on write; the return value says
 * whether someone handled it.
 */
bool bus_read(const struct bus *b, uint64_t addr, unsigned size, uint64_t *value);
bool bus_write(const struct bus *b, uint64_t addr, unsigned size, uint64_t value);
