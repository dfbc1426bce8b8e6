// SPDX-License-Identifier: MIT
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

void bus_destroy(struct bus *b)
{
	free(b->entries);
	b->entries = NULL;
	b->nr = b->cap = 0;
}

int bus_add(struct bus *b, uint64_t base, uint64_t len, const struct io_ops *ops, void *opaque)
{
	if (len == 0 || base + len < base)
		return -EINVAL;
	size_t pos = 0;
	while (pos < b->nr && b->entries[pos].base < base)
		pos++;
	/* Neighbours on both sides must not overlap the new range. */
	if (pos > 0) {
		const struct bus_entry *p = &b->entries[pos - 1];
		if (p->base + p->len > base)
			return -EEXIST;
	}
	if (pos < b->nr && base + len > b->entries[pos].base)
		return -EEXIST;
	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct bus_entry *e = realloc(b->entries, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		b->entries = e;
		b->cap = cap;
	}
	memmove(&b->entries[pos + 1], &b->entries[pos], (b->nr - pos) * sizeof(*b->entries));
	b->entries[pos] = (struct bus_entry){ base, len, ops, opaque };
	b->nr++;
	return 0;
}

static const struct bus_entry *bus_find(const struct bus *b, uint64_t addr, unsigned size)
{
	size_t lo = 0, hi = b->nr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_entry *e = &b->entries[mid];
		if (addr < e->base)
			hi = mid;
		else if (addr - e->base >= e->len)
			lo = mid + 1;
		else
			return (size <= e->len - (addr - e->base)) ? e : NULL;
	}
	return NULL;
}

bool bus_read(const struct bus *b, uint64_t addr, unsigned size, uint64_t *value)
{
	const struct bus_entry *e = bus_find(b, addr, size);
	if (!e || !e->ops->read) {
		*value = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
		return false;
	}
	*value = e->ops->read(e->opaque, addr - e->base, size);
	return true;
}

bool bus_write(const struct bus *b, uint64_t addr, unsigned size, uint64_t value)
{
	const struct bus_entry *e = bus_find(b, addr, size);
	if (!e || !e->ops->write)
		return false;
	e->ops->write(e->opaque, addr - e->base, size, value);
	return true;
}
