// SPDX-License-Identifier: MIT
/*
 * The trace memory: one memfd shared by the keel process (producers) and
 * its readers (keel tracefs, keel trace record; the consumers).
 *
 *   offset 0      struct trace_ctl (4 KiB): geometry, clock anchor,
 *                 tracing_on, default mode and size, one enable byte per
 *                 event.  keel maps this page over trace_ctl_page.
 *   offset 4096   nr_rings rings, ring_stride bytes apart: a 256-byte
 *                 header (config, producer and consumer cache lines) and
 *                 max_records slots of 64 bytes.
 *
 * A ring has one producer (the thread that claimed it) and any number of
 * consumers.  Record n lives in slot n & mask.  Protocol:
 *
 * Producer (trace_ring_put): in stop mode, if the ring holds mask+1
 * unconsumed records, count a drop and return.  Else mark the slot busy
 * (seq = 2n+1), release fence, write the payload, seq = 2n+2 (release),
 * head = n+1 (release).  A seqlock per slot: readers never block it.
 *
 * Consumers (trace_ring_take): record r = tail.  If head - r > capacity,
 * r..head-capacity-1 were overwritten: advance tail past them and count
 * them as overrun.  Else copy slot r: valid only if seq read before the
 * copy (acquire) and after it (after an acquire fence) both equal 2r+2;
 * otherwise the producer overwrote or misplaced it (a resize), and it is
 * counted as overrun.  The record is delivered by whoever moves tail from r
 * to r+1 with a compare-and-swap (release: in stop mode the producer reuses
 * the slot only after it sees the new tail, with acquire), so several
 * readers never deliver a record twice, and every record number below head
 * ends up counted exactly once: consumed, overrun or cleared.
 *
 * Accounting, per ring: written = head + dropped; and at any quiescent
 * moment written == entries + consumed + overrun + cleared + dropped
 * (trace_ring_stats).
 *
 * Readers treat this memory as hostile (a compromised keel can write
 * anything at any time): every index is masked, every size checked against
 * the memfd's sealed size, every record copied before it is looked at.
 */
#pragma once

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/barrier.h"
#include "trace.h"

#define TRACE_MAGIC "KEELTRC1"
#define TRACE_VERSION 1
#define TRACE_CTL_SIZE 4096u
#define TRACE_CTL_ENABLED_OFFSET 1024u
#define TRACE_RING_HEADER 256u
#define TRACE_SLOT_SIZE 64u
#define TRACE_MAX_RINGS 1024u
#define TRACE_NAME_MAX 64 /* VM names: 1-64 characters */

enum trace_mode { TRACE_MODE_OVERWRITE = 0, TRACE_MODE_STOP = 1 };
enum trace_ring_state { TRACE_RING_FREE = 0, TRACE_RING_OWNED = 1, TRACE_RING_RELEASED = 2 };
enum trace_clock { TRACE_CLOCK_TSC = 1, TRACE_CLOCK_MONOTONIC = 2 };

struct trace_ctl {
	/* Written once by trace_init(), before the memfd is handed to anyone. */
	char magic[8];
	uint32_t version;
	uint32_t ctl_size;
	uint32_t ring_header_size;
	uint32_t slot_size;
	uint32_t nr_rings;
	uint32_t max_records; /* slots per ring: a power of two */
	uint64_t rings_offset;
	uint64_t ring_stride;
	uint64_t total_size;
	uint64_t events_hash; /* trace_events_hash(): readers refuse another event table */
	uint32_t nr_events;
	int32_t pid;
	uint32_t clock;       /* enum trace_clock */
	uint32_t reserved0;
	uint64_t anchor_ticks; /* trace_now() and CLOCK_MONOTONIC ns read together at start */
	uint64_t anchor_ns;
	char name[TRACE_NAME_MAX + 8];
	uint8_t pad0[256 - 168];

	/* Run-time state, read and written by both sides. */
	_Atomic uint32_t tracing_on;    /* 0: events are not recorded (enable bytes keep their state) */
	_Atomic uint32_t default_mode;  /* enum trace_mode of rings claimed from now on */
	_Atomic uint32_t buffer_mask;   /* capacity - 1 of rings claimed from now on */
	_Atomic uint32_t rings_used;    /* rings ever claimed (a high-water mark) */
	_Atomic uint32_t exited;        /* keel has stopped emitting for good */
	uint32_t pad1;
	_Atomic uint64_t no_ring;       /* events lost because every ring was taken */
	uint8_t pad2[TRACE_CTL_ENABLED_OFFSET - 256 - 32];

	_Atomic uint8_t enabled[TRACE_MAX_EVENTS];
	uint8_t pad3[TRACE_CTL_SIZE - TRACE_CTL_ENABLED_OFFSET - TRACE_MAX_EVENTS];
};
static_assert(sizeof(struct trace_ctl) == TRACE_CTL_SIZE, "control page size");
static_assert(__builtin_offsetof(struct trace_ctl, name) == 96, "trace_ctl layout");
static_assert(__builtin_offsetof(struct trace_ctl, tracing_on) == 256, "trace_ctl layout");
static_assert(__builtin_offsetof(struct trace_ctl, enabled) == TRACE_CTL_ENABLED_OFFSET, "enable bytes");
static_assert(sizeof(union trace_ctl_page) == TRACE_CTL_SIZE, "control page size");

/* One record: one cache line. */
struct trace_slot {
	_Atomic uint64_t seq; /* 2n+1 while record n is written, 2n+2 once it is complete */
	_Atomic uint64_t ts;  /* trace_now() */
	_Atomic uint64_t id;  /* enum trace_event_id */
	_Atomic uint64_t arg[TRACE_MAX_SLOTS];
};
static_assert(sizeof(struct trace_slot) == TRACE_SLOT_SIZE, "a record is one cache line");

struct trace_ring {
	/* Config: written at claim time and by readers (mode, size), read by the producer. */
	_Atomic uint32_t state; /* enum trace_ring_state */
	_Atomic uint32_t mask;  /* capacity - 1, capacity a power of two <= max_records */
	_Atomic uint32_t mode;  /* enum trace_mode */
	_Atomic uint32_t tid;
	_Atomic uint64_t name[2]; /* thread name, NUL-padded */
	uint8_t pad0[64 - 32];
	/* Producer line: written by the producer only. */
	_Atomic uint64_t head;    /* records written */
	_Atomic uint64_t dropped; /* stop mode: records refused because the ring was full */
	uint8_t pad1[64 - 16];
	/* Consumer line: written by readers only. */
	_Atomic uint64_t tail;    /* next record to consume */
	_Atomic uint64_t overrun; /* records overwritten (or misplaced by a resize) before they were read */
	_Atomic uint64_t cleared; /* records discarded unread by a clear or a resize */
	uint8_t pad2[64 - 24];
	uint8_t pad3[64];
	struct trace_slot slots[];
};
static_assert(sizeof(struct trace_ring) == TRACE_RING_HEADER, "ring header size");

/* A producer's private view of its ring (thread-local in keel). */
struct trace_producer {
	struct trace_ring *ring;
	uint64_t head;       /* private copy of ring->head: readers cannot move it */
	uint64_t tail_seen;  /* stop mode: the consumers' tail when last read */
	uint32_t mask_limit; /* max_records - 1: bounds every slot index, whatever readers write */
	uint32_t generation; /* trace_init() call this ring belongs to */
};

/* Attach p to r (r claimed by the caller); picks up where a previous owner stopped. */
static inline void trace_producer_attach(struct trace_producer *p, struct trace_ring *r, uint32_t max_records)
{
	p->ring = r;
	/* Acquire: pairs with the previous owner's release of head, so we continue its numbering. */
	p->head = load_acquire(&r->head);
	p->tail_seen = load_acquire(&r->tail);
	p->mask_limit = max_records - 1;
}

/* Append one record.  Single producer per ring; never blocks. */
static inline void trace_ring_put(struct trace_producer *p, uint64_t ts, uint64_t id, uint64_t a0, uint64_t a1,
				  uint64_t a2, uint64_t a3, uint64_t a4)
{
	struct trace_ring *r = p->ring;
	uint64_t n = p->head;
	/* Relaxed: readers change size and mode rarely; a record written under an old size is
	 * either found or counted as overrun by readers (see the protocol above). */
	uint64_t mask = load_relaxed(&r->mask) & p->mask_limit;
	if (__builtin_expect(load_relaxed(&r->mode) == TRACE_MODE_STOP, 0) && n - p->tail_seen > mask) {
		/* Acquire: pairs with the consumers' release CAS of tail: their copies of the
		 * slots they gave back are complete before we write those slots again. */
		p->tail_seen = load_acquire(&r->tail);
		if (n - p->tail_seen > mask) {
			store_relaxed(&r->dropped, load_relaxed(&r->dropped) + 1); /* we are its only writer */
			return;
		}
	}
	struct trace_slot *s = &r->slots[n & mask];
	store_relaxed(&s->seq, 2 * n + 1);
	/* Release fence: the busy mark is visible no later than any payload store below, so a
	 * reader that copied part of the new payload sees seq changed when it re-checks. */
	fence_release();
	store_relaxed(&s->ts, ts);
	store_relaxed(&s->id, id);
	store_relaxed(&s->arg[0], a0);
	store_relaxed(&s->arg[1], a1);
	store_relaxed(&s->arg[2], a2);
	store_relaxed(&s->arg[3], a3);
	store_relaxed(&s->arg[4], a4);
	/* Release: the payload is visible to whoever reads the completed sequence number. */
	store_release(&s->seq, 2 * n + 2);
	p->head = n + 1;
	/* Release: a reader that sees head > n finds record n complete (or overwritten later). */
	store_release(&r->head, n + 1);
}

/* A record as readers copy it out of a slot. */
struct trace_rec {
	uint64_t n;  /* record number in its ring */
	uint64_t ts; /* trace_now() ticks */
	uint32_t id;
	uint32_t ring;
	uint64_t arg[TRACE_MAX_SLOTS];
};

/*
 * Copy record n out of r (capacity mask+1).  1: valid, in *out.  0: not in
 * its slot any more (overwritten, or misplaced by a resize).
 */
int trace_ring_copy(struct trace_ring *r, uint64_t mask, uint64_t n, struct trace_rec *out);

/*
 * Consumer: look at the next unconsumed record without taking it.
 * 1: *out holds it (valid while tail == out->n); 0: the ring is empty.
 * Skips (and counts as overrun) records that were lost.  max_records bounds
 * the mask read from shared memory.
 */
int trace_ring_peek(struct trace_ring *r, uint32_t max_records, struct trace_rec *out);
/* Take the record peek returned.  true: it is ours to deliver; false: another reader took it. */
bool trace_ring_commit(struct trace_ring *r, const struct trace_rec *rec);
/* peek + commit until one is ours.  1: *out delivered; 0: empty. */
int trace_ring_take(struct trace_ring *r, uint32_t max_records, struct trace_rec *out);

/* Discard what is unread (counted as cleared, or overrun if already overwritten). */
void trace_ring_clear(struct trace_ring *r, uint32_t max_records);

struct trace_ring_stats {
	uint64_t written;  /* head + dropped: records the thread emitted */
	uint64_t entries;  /* readable now */
	uint64_t consumed; /* delivered by trace_pipe readers */
	uint64_t overrun;  /* overwritten before read (overwrite mode) */
	uint64_t dropped;  /* refused because full (stop mode) */
	uint64_t cleared;  /* discarded unread */
	uint64_t capacity; /* records */
};
void trace_ring_stats(struct trace_ring *r, uint32_t max_records, struct trace_ring_stats *s);

/* Capacity (mask + 1) that readers use, bounded by max_records. */
static inline uint64_t trace_ring_capacity(struct trace_ring *r, uint32_t max_records)
{
	uint64_t m = load_relaxed(&r->mask) & (uint64_t)(max_records - 1);
	return m + 1;
}

/* What keel sends a reader on the runtime socket, with the memfd (SCM_RIGHTS). */
#define TRACE_HELLO_MAGIC "KEELHELO"
struct trace_hello {
	char magic[8];
	uint32_t version;
	int32_t pid;
	uint64_t size; /* of the memfd */
};
static_assert(sizeof(struct trace_hello) == 24, "hello message size");
