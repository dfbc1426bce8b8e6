// SPDX-License-Identifier: MIT
/*
 * Memory-ordering helpers for memory shared with the guest (virtqueues) and
 * between keel's threads.  Every ordering keel relies on goes through one of
 * these, so each fence is named for what it orders.  On x86 acquire and
 * release cost nothing at run time (they only stop the compiler from
 * reordering); the full fence is an MFENCE/locked instruction.
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

/*
 * Acquire: loads after this point are not performed before the load that
 * precedes it.  Used after reading an index the other side published (avail
 * idx) and before reading the entries that index covers.
 */
static inline void acquire_fence(void)
{
	atomic_thread_fence(memory_order_acquire);
}

/*
 * Release: stores before this point are visible before any store after it.
 * Used after filling used-ring entries and before publishing the used idx.
 */
static inline void release_fence(void)
{
	atomic_thread_fence(memory_order_release);
}

/*
 * Full fence: orders an earlier store before a later load.  Used between
 * publishing the used idx (or avail_event) and reading the guest's
 * suppression fields (used_event, flags, avail idx) so that a driver adding
 * a buffer concurrently cannot be missed by both sides.
 */
static inline void full_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

/* Single loads/stores of guest-shared 16-bit fields, never torn or merged. */
static inline uint16_t load_u16(const uint16_t *p)
{
	return atomic_load_explicit((const _Atomic uint16_t *)p, memory_order_relaxed);
}

static inline void store_u16(uint16_t *p, uint16_t v)
{
	atomic_store_explicit((_Atomic uint16_t *)p, v, memory_order_relaxed);
}
