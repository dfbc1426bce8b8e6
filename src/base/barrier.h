// SPDX-License-Identifier: MIT
/*
 * Memory-ordering helpers for data shared between threads and processes.
 * Each names the ordering it gives, so that a call site reads as the
 * protocol it implements; every use carries a comment saying what it pairs
 * with.  All take pointers to _Atomic objects.
 *
 *   load_relaxed / store_relaxed   no ordering: only freedom from tearing
 *                                  and from data races
 *   load_acquire                   later accesses of this thread stay after
 *                                  it; pairs with a store_release (or a
 *                                  release fence before a store) whose value
 *                                  it reads
 *   store_release                  earlier accesses of this thread are
 *                                  visible to whoever acquires this value
 *   fence_release                  earlier stores become visible no later
 *                                  than any later store (seqlock writers)
 *   fence_acquire                  earlier loads are complete before any
 *                                  later load (seqlock readers' re-check)
 *   fence_full                     earlier stores are visible before any
 *                                  later load (the virtqueue notification
 *                                  Dekker: publish our index, then read the
 *                                  other side's suppression field)
 *   load_u16 / store_u16           one untorn access to a 16-bit field of
 *                                  guest-shared memory (not _Atomic there)
 *   load_u32 / store_u32           the same for an aligned 32-bit field (a
 *                                  packed ring's event suppression: offset
 *                                  and flags read or written together)
 *   cas_release                    compare-and-swap, release on success
 *                                  (what was read before it is done),
 *                                  relaxed on failure
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define fence_release() atomic_thread_fence(memory_order_release)
#define fence_acquire() atomic_thread_fence(memory_order_acquire)
#define cas_release(p, expected, desired)                                                         \
	atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_release, \
						memory_order_relaxed)
#define add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define fence_full() atomic_thread_fence(memory_order_seq_cst)

/* Guest-shared ring fields are plain memory to the guest: accessed once, never torn. */
static inline uint16_t load_u16(const uint16_t *p)
{
	return atomic_load_explicit((const _Atomic uint16_t *)p, memory_order_relaxed);
}

static inline void store_u16(uint16_t *p, uint16_t v)
{
	atomic_store_explicit((_Atomic uint16_t *)p, v, memory_order_relaxed);
}

static inline uint32_t load_u32(const uint32_t *p)
{
	return atomic_load_explicit((const _Atomic uint32_t *)p, memory_order_relaxed);
}

static inline void store_u32(uint32_t *p, uint32_t v)
{
	atomic_store_explicit((_Atomic uint32_t *)p, v, memory_order_relaxed);
}
