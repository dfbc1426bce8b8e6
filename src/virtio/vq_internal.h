// SPDX-License-Identifier: MIT
/*
 * Shared by the two ring layouts of the virtqueue core (virtqueue.c: split
 * and the common entry points; packed.c: packed).  Not for devices.
 */
#pragma once

#include <string.h>

#include "virtqueue.h"

/*
 * One copy of a 16-byte descriptor the guest may be rewriting: every byte
 * is read exactly once (volatile), whatever the table's alignment, and only
 * the copy is used afterwards.
 */
static inline void vq_copy_desc(void *dst, const void *src)
{
	const volatile uint8_t *s = (const volatile uint8_t *)src;
	uint8_t b[16];
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = s[i];
	memcpy(dst, b, sizeof(b));
}

/* A chain's buffers as they are collected. */
struct vq_chain {
	unsigned n; /* iovec entries filled */
	bool seen_write;
	uint64_t out_len, in_len;
};

/*
 * Check one buffer (in guest RAM, not empty, readable ones before writable
 * ones, room in iov, lengths in 32 bits) and append it.  VQ_OK or the reason.
 */
enum vq_error vq_add_buf(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov,
			 struct vq_chain *c, uint64_t addr, uint32_t len, bool write);
/* Fill in e's totals once the chain is complete. */
void vq_chain_done(struct vq_elem *e, const struct vq_chain *c);
/* A malformed chain: still completed (with an error), but no buffer of it is used.  Returns 1. */
int vq_fail(struct virtqueue *vq, struct vq_elem *e, enum vq_error err);

/* packed.c; each with vq->lock held. */
int packed_enable(struct virtqueue *vq, uint16_t size, uint64_t desc, uint64_t driver, uint64_t device);
int packed_pop(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov);
bool packed_has_avail(struct virtqueue *vq);
bool packed_push(struct virtqueue *vq, const struct vq_used *elems, unsigned n);
bool packed_enable_notify(struct virtqueue *vq);
void packed_disable_notify(struct virtqueue *vq);
