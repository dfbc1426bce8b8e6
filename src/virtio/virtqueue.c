// SPDX-License-Identifier: MIT
#include "virtqueue.h"

#include <errno.h>
#include <string.h>

#include "../barrier.h"

static const char *const error_names[VQ_NR_ERRORS] = {
	[VQ_OK] = "ok",
	[VQ_ERR_HEAD_RANGE] = "head index out of range",
	[VQ_ERR_AVAIL_IDX] = "avail index moved by more than the queue size",
	[VQ_ERR_RING_ADDR] = "ring outside guest RAM",
	[VQ_ERR_NEXT_RANGE] = "next index out of range",
	[VQ_ERR_LOOP] = "descriptor loop",
	[VQ_ERR_BUF_ADDR] = "buffer outside guest RAM",
	[VQ_ERR_ZERO_LEN] = "zero-length buffer",
	[VQ_ERR_ORDER] = "device-readable buffer after a device-writable one",
	[VQ_ERR_INDIRECT] = "malformed indirect descriptor",
	[VQ_ERR_NESTED] = "nested indirect descriptor",
	[VQ_ERR_TOO_MANY] = "too many buffers in one chain",
	[VQ_ERR_LEN_OVERFLOW] = "chain length overflows",
};

const char *vq_error_name(enum vq_error e)
{
	return (unsigned)e < VQ_NR_ERRORS ? error_names[e] : "?";
}

void vq_init(struct virtqueue *vq, const struct guest_mem *mem)
{
	memset(vq, 0, sizeof(*vq));
	pthread_mutex_init(&vq->lock, NULL);
	vq->mem = mem;
}

void vq_destroy(struct virtqueue *vq)
{
	pthread_mutex_destroy(&vq->lock);
}

void vq_reset(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	vq->size = 0;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->event_idx = vq->ready = vq->broken = false;
	vq->desc = NULL;
	vq->avail = vq->used_hdr = vq->avail_event = NULL;
	vq->used_ring = NULL;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->generation++;
	pthread_mutex_unlock(&vq->lock);
}

int vq_enable(struct virtqueue *vq, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
	      bool event_idx)
{
	/* Split rings: a power of two, descriptor table 16-aligned, avail 2-aligned, used 4-aligned. */
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)) || (desc & 15) || (avail & 1) ||
	    (used & 3))
		return -EINVAL;
	uint64_t desc_len = 16ull * size;
	uint64_t avail_len = 2ull * (3 + size);
	uint64_t used_len = 6ull + 8ull * size;
	void *d = gm_ptr(vq->mem, desc, desc_len);
	void *a = gm_ptr(vq->mem, avail, avail_len);
	void *u = gm_ptr(vq->mem, used, used_len);
	if (!d || !a || !u) {
		vq->errors[VQ_ERR_RING_ADDR]++;
		return -EINVAL;
	}
	pthread_mutex_lock(&vq->lock);
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->event_idx = event_idx;
	vq->desc = d;
	vq->avail = a;
	vq->used_hdr = u;
	vq->used_ring = (struct vring_used_elem *)((uint8_t *)u + 4);
	vq->avail_event = (uint16_t *)((uint8_t *)u + 4 + 8ull * size);
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->broken = false;
	vq->ready = true;
	vq->generation++; /* nothing popped before this enable may complete into the new ring */
	pthread_mutex_unlock(&vq->lock);
	return 0;
}

/*
 * One copy of a descriptor the guest may be rewriting: every byte is read
 * exactly once (volatile), whatever the table's alignment, and only the
 * copy is used afterwards.
 */
static struct vring_desc read_desc(const struct vring_desc *p)
{
	const volatile uint8_t *src = (const volatile uint8_t *)p;
	uint8_t b[sizeof(struct vring_desc)];
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = src[i];
	struct vring_desc d;
	memcpy(&d, b, sizeof(d));
	return d;
}

/* A malformed chain: the head is still completed (with an error), but no buffer of it is used. */
static int fail(struct virtqueue *vq, struct vq_elem *e, enum vq_error err)
{
	vq->errors[err]++;
	e->error = err;
	e->nr_in = e->nr_out = 0;
	e->in_len = e->out_len = 0;
	return 1;
}

bool vq_has_avail(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	bool r = vq->ready && !vq->broken && load_u16(&vq->avail[1]) != vq->last_avail;
	pthread_mutex_unlock(&vq->lock);
	return r;
}

static int pop_locked(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov);

int vq_pop(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov)
{
	/* Under the lock so that a reset from a vCPU thread never runs in the middle of a pop. */
	pthread_mutex_lock(&vq->lock);
	int r = pop_locked(vq, e, iov, max_iov);
	pthread_mutex_unlock(&vq->lock);
	return r;
}

static int pop_locked(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov)
{
	memset(e, 0, sizeof(*e));
	if (!vq->ready)
		return 0;
	if (vq->broken)
		return -EIO;
	uint16_t avail_idx = load_u16(&vq->avail[1]);
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return 0;
	if (pending > vq->size) {
		vq->errors[VQ_ERR_AVAIL_IDX]++;
		vq->broken = true;
		return -EIO;
	}
	/* The ring entries the index covers were written before the index (driver's wmb). */
	fence_acquire();
	uint16_t head = load_u16(&vq->avail[2 + (vq->last_avail & (vq->size - 1))]);
	if (head >= vq->size) {
		vq->errors[VQ_ERR_HEAD_RANGE]++;
		vq->broken = true;
		return -EIO;
	}
	vq->last_avail++;
	e->head = head;
	e->generation = vq->generation;

	const struct vring_desc *table = vq->desc;
	unsigned table_size = vq->size, idx = head, visited = 0, n = 0;
	bool indirect = false, seen_write = false;
	uint64_t out_len = 0, in_len = 0;
	for (;;) {
		/* Every step visits a new entry of the current table: at most table_size steps. */
		if (++visited > table_size)
			return fail(vq, e, VQ_ERR_LOOP);
		struct vring_desc d = read_desc(&table[idx]);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (indirect)
				return fail(vq, e, VQ_ERR_NESTED);
			if ((d.flags & VRING_DESC_F_NEXT) || visited != 1 || d.len == 0 || d.len % 16 ||
			    d.len / 16 > VQ_MAX_SIZE)
				return fail(vq, e, VQ_ERR_INDIRECT);
			table = gm_ptr(vq->mem, d.addr, d.len);
			if (!table)
				return fail(vq, e, VQ_ERR_INDIRECT);
			table_size = d.len / 16;
			indirect = true;
			idx = 0;
			visited = 0;
			continue;
		}
		if (d.len == 0)
			return fail(vq, e, VQ_ERR_ZERO_LEN);
		void *p = gm_ptr(vq->mem, d.addr, d.len);
		if (!p)
			return fail(vq, e, VQ_ERR_BUF_ADDR);
		bool write = d.flags & VRING_DESC_F_WRITE;
		if (!write && seen_write)
			return fail(vq, e, VQ_ERR_ORDER);
		if (n >= max_iov)
			return fail(vq, e, VQ_ERR_TOO_MANY);
		if ((write ? in_len : out_len) + d.len > UINT32_MAX)
			return fail(vq, e, VQ_ERR_LEN_OVERFLOW);
		/* Counted only once its iovec entry exists: nr_out + nr_in == entries filled. */
		iov[n].iov_base = p;
		iov[n].iov_len = d.len;
		n++;
		if (write) {
			seen_write = true;
			in_len += d.len;
			e->nr_in++;
		} else {
			out_len += d.len;
			e->nr_out++;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
		if (idx >= table_size)
			return fail(vq, e, VQ_ERR_NEXT_RANGE);
	}
	e->out_len = (uint32_t)out_len;
	e->in_len = (uint32_t)in_len;
	return 1;
}

/* virtio's vring_need_event(): has new_idx passed event since old? (all mod 2^16) */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* Called with vq->lock held after used idx moved to vq->used_idx. */
static bool should_notify(struct virtqueue *vq)
{
	/* Our used idx store must be visible before we read the driver's suppression state. */
	fence_full();
	if (!vq->event_idx)
		return !(load_u16(&vq->avail[0]) & VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t used_event = load_u16(&vq->avail[2 + vq->size]);
	bool valid = vq->signalled_valid;
	uint16_t old = vq->signalled_used;
	vq->signalled_valid = true;
	vq->signalled_used = vq->used_idx;
	return !valid || need_event(used_event, vq->used_idx, old);
}

bool vq_push_batch(struct virtqueue *vq, uint32_t generation, const struct vring_used_elem *elems,
		   unsigned n)
{
	pthread_mutex_lock(&vq->lock);
	if (!vq->ready || n == 0 || generation != vq->generation || n > vq->size) {
		pthread_mutex_unlock(&vq->lock);
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		volatile struct vring_used_elem *u = &vq->used_ring[(uint16_t)(vq->used_idx + i) & (vq->size - 1)];
		u->id = elems[i].id;
		u->len = elems[i].len;
	}
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	/* The used entries are visible before the index that publishes them. */
	fence_release();
	store_u16(&vq->used_hdr[1], vq->used_idx);
	bool notify = should_notify(vq);
	pthread_mutex_unlock(&vq->lock);
	return notify;
}

bool vq_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t len)
{
	struct vring_used_elem u = { .id = e->head, .len = len };
	return vq_push_batch(vq, e->generation, &u, 1);
}

bool vq_enable_notify(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	bool more = false;
	if (vq->ready && !vq->broken) {
		if (vq->event_idx)
			store_u16(vq->avail_event, vq->last_avail);
		else
			store_u16(&vq->used_hdr[0], 0); /* NO_NOTIFY off */
		/* Publish the kick request before re-reading avail idx (pairs with the driver's mb). */
		fence_full();
		more = load_u16(&vq->avail[1]) != vq->last_avail;
	}
	pthread_mutex_unlock(&vq->lock);
	return more;
}

void vq_disable_notify(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	if (vq->ready && !vq->broken && !vq->event_idx)
		store_u16(&vq->used_hdr[0], VRING_USED_F_NO_NOTIFY);
	pthread_mutex_unlock(&vq->lock);
}
