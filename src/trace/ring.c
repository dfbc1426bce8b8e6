// SPDX-License-Identifier: MIT
/* The consumer half of the ring protocol (ring.h); the producer half is inline there. */
#include "ring.h"

int trace_ring_copy(struct trace_ring *r, uint64_t mask, uint64_t n, struct trace_rec *out)
{
	struct trace_slot *s = &r->slots[n & mask];
	uint64_t want = 2 * n + 2;
	/* Acquire: pairs with the producer's release of seq: record n's payload is visible. */
	if (load_acquire(&s->seq) != want)
		return 0;
	uint64_t ts = load_relaxed(&s->ts);
	uint64_t id = load_relaxed(&s->id);
	for (unsigned i = 0; i < TRACE_MAX_SLOTS; i++)
		out->arg[i] = load_relaxed(&s->arg[i]);
	/* Acquire fence: the copy above is complete before seq is read again; if the producer
	 * started overwriting the slot meanwhile, its busy mark is what we read (seqlock). */
	fence_acquire();
	if (load_relaxed(&s->seq) != want)
		return 0;
	out->n = n;
	out->ts = ts;
	out->id = id > UINT32_MAX ? UINT32_MAX : (uint32_t)id;
	return 1;
}

int trace_ring_peek(struct trace_ring *r, uint32_t max_records, struct trace_rec *out)
{
	/* Each round moves tail on or returns; the bound only guards against a hostile producer. */
	for (uint64_t round = 0; round < 2 * (uint64_t)max_records + 4; round++) {
		uint64_t mask = trace_ring_capacity(r, max_records) - 1;
		/* Relaxed: other consumers' tail moves carry nothing we read. */
		uint64_t t = load_relaxed(&r->tail);
		/* Acquire: pairs with the producer's release of head: every record below it is complete. */
		uint64_t h = load_acquire(&r->head);
		if (t >= h)
			return 0;
		uint64_t expect = t;
		if (h - t > mask + 1) {
			/* Overwritten before anyone read them: whoever moves tail past them counts them. */
			uint64_t to = h - (mask + 1);
			if (cas_release(&r->tail, &expect, to))
				add_relaxed(&r->overrun, to - t);
			continue;
		}
		if (trace_ring_copy(r, mask, t, out))
			return 1;
		/* Below head but not in its slot: overwritten meanwhile, or misplaced by a resize. */
		if (cas_release(&r->tail, &expect, t + 1))
			add_relaxed(&r->overrun, 1);
	}
	return 0;
}

bool trace_ring_commit(struct trace_ring *r, const struct trace_rec *rec)
{
	uint64_t expect = rec->n;
	/* Release: our copy of the slot is complete before a stop-mode producer, which reads
	 * tail with acquire, may write the slot again. */
	return cas_release(&r->tail, &expect, rec->n + 1);
}

int trace_ring_take(struct trace_ring *r, uint32_t max_records, struct trace_rec *out)
{
	for (;;) {
		if (!trace_ring_peek(r, max_records, out))
			return 0;
		if (trace_ring_commit(r, out))
			return 1;
	}
}

void trace_ring_clear(struct trace_ring *r, uint32_t max_records)
{
	for (;;) {
		uint64_t cap = trace_ring_capacity(r, max_records);
		uint64_t t = load_relaxed(&r->tail);
		/* Acquire: pairs with the producer's release of head (as in peek). */
		uint64_t h = load_acquire(&r->head);
		if (t >= h)
			return;
		uint64_t lost = h - t > cap ? h - t - cap : 0;
		uint64_t expect = t;
		if (cas_release(&r->tail, &expect, h)) {
			if (lost)
				add_relaxed(&r->overrun, lost);
			add_relaxed(&r->cleared, h - t - lost);
			return;
		}
	}
}

void trace_ring_stats(struct trace_ring *r, uint32_t max_records, struct trace_ring_stats *s)
{
	uint64_t cap = trace_ring_capacity(r, max_records);
	uint64_t t = load_relaxed(&r->tail);
	uint64_t h = load_acquire(&r->head);
	uint64_t overrun = load_relaxed(&r->overrun);
	uint64_t cleared = load_relaxed(&r->cleared);
	if (t > h)
		t = h; /* only a hostile writer gets here */
	uint64_t pending = h - t > cap ? h - t - cap : 0;
	s->capacity = cap;
	s->dropped = load_relaxed(&r->dropped);
	s->written = h + s->dropped;
	s->entries = h - t - pending;
	s->overrun = overrun + pending;
	s->cleared = cleared;
	s->consumed = t >= overrun + cleared ? t - overrun - cleared : 0;
}
