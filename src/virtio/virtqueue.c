// SPDX-License-Identifier: MIT
#include "virtqueue.h"

#include <errno.h>
#include <string.h>

#include "base/barrier.h"
#include "vq_internal.h"

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
	[VQ_ERR_CHAIN_LEN] = "descriptor chain longer than the ring",
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
	vq->event_idx = vq->packed = vq->ready = vq->broken = false;
	vq->desc = NULL;
	vq->avail = vq->used_hdr = vq->avail_event = NULL;
	vq->used_ring = NULL;
	vq->ring = NULL;
	vq->driver_event = vq->device_event = NULL;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->avail_wrap = vq->used_wrap = false;
	vq->signalled_valid = false;
	vq->generation++;
	pthread_mutex_unlock(&vq->lock);
}

static int split_enable(struct virtqueue *vq, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
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
	vq->desc = d;
	vq->avail = a;
	vq->used_hdr = u;
	vq->used_ring = (struct vring_used_elem *)((uint8_t *)u + 4);
	vq->avail_event = (uint16_t *)((uint8_t *)u + 4 + 8ull * size);
	return 0;
}

int vq_enable(struct virtqueue *vq, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
	      bool event_idx, bool packed)
{
	pthread_mutex_lock(&vq->lock);
	int r = packed ? packed_enable(vq, size, desc, avail, used) : split_enable(vq, size, desc, avail, used);
	if (!r) {
		vq->size = size;
		vq->desc_gpa = desc;
		vq->avail_gpa = avail;
		vq->used_gpa = used;
		vq->event_idx = event_idx;
		vq->packed = packed;
		vq->last_avail = vq->used_idx = vq->signalled_used = 0;
		vq->avail_wrap = vq->used_wrap = true; /* packed: both wrap counters start at 1 */
		vq->signalled_valid = false;
		vq->broken = false;
		vq->ready = true;
		vq->generation++; /* nothing popped before this enable may complete into the new ring */
	}
	pthread_mutex_unlock(&vq->lock);
	return r;
}

int vq_fail(struct virtqueue *vq, struct vq_elem *e, enum vq_error err)
{
	vq->errors[err]++;
	e->error = err;
	e->nr_in = e->nr_out = 0;
	e->in_len = e->out_len = 0;
	return 1;
}

enum vq_error vq_add_buf(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov,
			 struct vq_chain *c, uint64_t addr, uint32_t len, bool write)
{
	if (len == 0)
		return VQ_ERR_ZERO_LEN;
	void *p = gm_ptr(vq->mem, addr, len);
	if (!p)
		return VQ_ERR_BUF_ADDR;
	if (!write && c->seen_write)
		return VQ_ERR_ORDER;
	if (c->n >= max_iov)
		return VQ_ERR_TOO_MANY;
	if ((write ? c->in_len : c->out_len) + len > UINT32_MAX)
		return VQ_ERR_LEN_OVERFLOW;
	/* Counted only once its iovec entry exists: nr_out + nr_in == entries filled. */
	iov[c->n].iov_base = p;
	iov[c->n].iov_len = len;
	c->n++;
	if (write) {
		c->seen_write = true;
		c->in_len += len;
		e->nr_in++;
	} else {
		c->out_len += len;
		e->nr_out++;
	}
	return VQ_OK;
}

void vq_chain_done(struct vq_elem *e, const struct vq_chain *c)
{
	e->out_len = (uint32_t)c->out_len;
	e->in_len = (uint32_t)c->in_len;
}

bool vq_has_avail(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	bool r = vq->ready && !vq->broken &&
		 (vq->packed ? packed_has_avail(vq) : load_u16(&vq->avail[1]) != vq->last_avail);
	pthread_mutex_unlock(&vq->lock);
	return r;
}

static int split_pop(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov);

int vq_pop(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov)
{
	/* Under the lock so that a reset from a vCPU thread never runs in the middle of a pop. */
	pthread_mutex_lock(&vq->lock);
	memset(e, 0, sizeof(*e));
	int r = 0;
	if (vq->ready && vq->broken)
		r = -EIO;
	else if (vq->ready)
		r = vq->packed ? packed_pop(vq, e, iov, max_iov) : split_pop(vq, e, iov, max_iov);
	pthread_mutex_unlock(&vq->lock);
	return r;
}

static int split_pop(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov)
{
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
	unsigned table_size = vq->size, idx = head, visited = 0;
	bool indirect = false;
	struct vq_chain c = { 0 };
	for (;;) {
		/* Every step visits a new entry of the current table: at most table_size steps. */
		if (++visited > table_size)
			return vq_fail(vq, e, VQ_ERR_LOOP);
		struct vring_desc d;
		vq_copy_desc(&d, &table[idx]);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (indirect)
				return vq_fail(vq, e, VQ_ERR_NESTED);
			if ((d.flags & VRING_DESC_F_NEXT) || visited != 1 || d.len == 0 || d.len % 16 ||
			    d.len / 16 > VQ_MAX_SIZE)
				return vq_fail(vq, e, VQ_ERR_INDIRECT);
			table = gm_ptr(vq->mem, d.addr, d.len);
			if (!table)
				return vq_fail(vq, e, VQ_ERR_INDIRECT);
			table_size = d.len / 16;
			indirect = true;
			idx = 0;
			visited = 0;
			continue;
		}
		enum vq_error err = vq_add_buf(vq, e, iov, max_iov, &c, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (err)
			return vq_fail(vq, e, err);
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
		if (idx >= table_size)
			return vq_fail(vq, e, VQ_ERR_NEXT_RANGE);
	}
	vq_chain_done(e, &c);
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

static bool split_push(struct virtqueue *vq, const struct vq_used *elems, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		volatile struct vring_used_elem *u = &vq->used_ring[(uint16_t)(vq->used_idx + i) & (vq->size - 1)];
		u->id = elems[i].id;
		u->len = elems[i].len;
	}
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	/* The used entries are visible before the index that publishes them. */
	fence_release();
	store_u16(&vq->used_hdr[1], vq->used_idx);
	return should_notify(vq);
}

bool vq_push_batch(struct virtqueue *vq, uint32_t generation, const struct vq_used *elems, unsigned n)
{
	pthread_mutex_lock(&vq->lock);
	bool notify = false;
	if (vq->ready && n && generation == vq->generation && n <= vq->size)
		notify = vq->packed ? packed_push(vq, elems, n) : split_push(vq, elems, n);
	pthread_mutex_unlock(&vq->lock);
	return notify;
}

bool vq_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t len)
{
	struct vq_used u = { .id = e->head, .ndesc = e->ndesc, .len = len };
	return vq_push_batch(vq, e->generation, &u, 1);
}

bool vq_enable_notify(struct virtqueue *vq)
{
	pthread_mutex_lock(&vq->lock);
	bool more = false;
	if (vq->ready && !vq->broken && vq->packed) {
		more = packed_enable_notify(vq);
	} else if (vq->ready && !vq->broken) {
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
	if (vq->ready && !vq->broken && vq->packed)
		packed_disable_notify(vq);
	else if (vq->ready && !vq->broken && !vq->event_idx)
		store_u16(&vq->used_hdr[0], VRING_USED_F_NO_NOTIFY);
	pthread_mutex_unlock(&vq->lock);
}
