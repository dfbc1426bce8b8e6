// SPDX-License-Identifier: MIT
/*
 * Packed virtqueues (virtio 1.1 and later, section 2.8), device side.  One
 * ring of descriptors: the driver makes a chain available by writing its
 * descriptors and then the head's flags (AVAIL equal to its wrap counter,
 * USED not); the device hands the chain back with one used descriptor (the
 * buffer id, the length written, AVAIL and USED both equal to the device's
 * wrap counter) written at its own used position, which then skips as many
 * descriptors as the chain took.  Chains may complete out of order.
 *
 * The same hostile-guest rules as the split ring (virtqueue.c): each
 * descriptor is copied once and only the copy is used; a chain's walk is
 * bounded by the ring (longer: the ring is corrupt, the device needs
 * reset), an indirect table by its length; a malformed chain is walked to
 * its end anyway, so that its buffer id is known and it is completed, with
 * an error, exactly once.
 */
#include <errno.h>

#include "base/barrier.h"
#include "vq_internal.h"

int packed_enable(struct virtqueue *vq, uint16_t size, uint64_t desc, uint64_t driver, uint64_t device)
{
	/* Any size up to the maximum; descriptor ring 16-aligned, event areas 4-aligned. */
	if (size == 0 || size > VQ_MAX_SIZE || (desc & 15) || (driver & 3) || (device & 3))
		return -EINVAL;
	void *r = gm_ptr(vq->mem, desc, 16ull * size);
	void *drv = gm_ptr(vq->mem, driver, sizeof(struct vring_packed_event));
	void *dev = gm_ptr(vq->mem, device, sizeof(struct vring_packed_event));
	if (!r || !drv || !dev) {
		vq->errors[VQ_ERR_RING_ADDR]++;
		return -EINVAL;
	}
	vq->ring = r;
	vq->driver_event = drv;
	vq->device_event = dev;
	return 0;
}

/* Whether a descriptor with these flags is available in the lap of wrap counter `wrap`. */
static bool is_avail(uint16_t flags, bool wrap)
{
	return !!(flags & VRING_PACKED_DESC_F_AVAIL) == wrap && !!(flags & VRING_PACKED_DESC_F_USED) != wrap;
}

bool packed_has_avail(struct virtqueue *vq)
{
	return is_avail(load_u16(&vq->ring[vq->last_avail].flags), vq->avail_wrap);
}

/* Take the buffers of one ring descriptor d, the chain's count-th (directly or through its table). */
static enum vq_error take(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov,
			  struct vq_chain *c, const struct vring_packed_desc *d, unsigned count)
{
	if (!(d->flags & VRING_DESC_F_INDIRECT))
		return vq_add_buf(vq, e, iov, max_iov, c, d->addr, d->len, d->flags & VRING_DESC_F_WRITE);
	/* An indirect table is its chain's only ring descriptor (as keel's split rings require). */
	if (count != 1 || (d->flags & VRING_DESC_F_NEXT) || d->len == 0 || d->len % 16 ||
	    d->len / 16 > VQ_MAX_SIZE)
		return VQ_ERR_INDIRECT;
	const uint8_t *table = gm_ptr(vq->mem, d->addr, d->len);
	if (!table)
		return VQ_ERR_INDIRECT;
	/* The table's entries follow each other; only WRITE means anything there (the spec). */
	for (unsigned i = 0; i < d->len / 16; i++) {
		struct vring_packed_desc x;
		vq_copy_desc(&x, table + 16ull * i);
		if (x.flags & VRING_DESC_F_INDIRECT)
			return VQ_ERR_NESTED;
		enum vq_error err = vq_add_buf(vq, e, iov, max_iov, c, x.addr, x.len, x.flags & VRING_DESC_F_WRITE);
		if (err)
			return err;
	}
	return VQ_OK;
}

int packed_pop(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov)
{
	uint16_t pos = vq->last_avail;
	bool wrap = vq->avail_wrap;
	/* The head's flags are read once; they decide, whatever the copy below says. */
	uint16_t head_flags = load_u16(&vq->ring[pos].flags);
	if (!is_avail(head_flags, wrap))
		return 0;
	/* The chain's descriptors were written before its head's flags (the driver's wmb). */
	fence_acquire();
	struct vq_chain c = { 0 };
	struct vring_packed_desc d;
	enum vq_error err = VQ_OK;
	unsigned count = 0;
	for (;;) {
		/* A chain fits in one lap of the ring: a longer one means the ring is corrupt. */
		if (++count > vq->size) {
			vq->errors[VQ_ERR_CHAIN_LEN]++;
			vq->broken = true;
			return -EIO;
		}
		vq_copy_desc(&d, &vq->ring[pos]);
		if (count == 1)
			d.flags = head_flags;
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
		/* After the first error the rest of the chain is only walked, to find its end and id. */
		if (err == VQ_OK)
			err = take(vq, e, iov, max_iov, &c, &d, count);
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
	}
	vq->last_avail = pos;
	vq->avail_wrap = wrap;
	/* The buffer id is the chain's last descriptor's. */
	e->head = d.id;
	e->ndesc = (uint16_t)count;
	e->generation = vq->generation;
	if (err)
		return vq_fail(vq, e, err);
	vq_chain_done(e, &c);
	return 1;
}

/*
 * A ring position with its wrap counter, as one position in a ring twice
 * as long (both counters start at 1, the first lap).  Interrupt decisions
 * compare these modulo 2 * size.
 */
static unsigned lap_pos(const struct virtqueue *vq, unsigned pos, bool wrap)
{
	return (pos + (wrap ? 0u : vq->size)) % (2u * vq->size);
}

/* Called with vq->lock held once used entries up to vq->used_idx are written. */
static bool should_notify(struct virtqueue *vq)
{
	/* Our used flags must be visible before we read the driver's suppression state. */
	fence_full();
	uint32_t ev = load_u32((const uint32_t *)vq->driver_event);
	uint16_t off_wrap = (uint16_t)ev, flags = (uint16_t)(ev >> 16);
	unsigned span = 2u * vq->size, now = lap_pos(vq, vq->used_idx, vq->used_wrap);
	bool valid = vq->signalled_valid;
	unsigned old = vq->signalled_used;
	vq->signalled_valid = true;
	vq->signalled_used = (uint16_t)now;
	if (flags == VRING_PACKED_EVENT_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_DESC || !vq->event_idx || !valid)
		return true; /* ENABLE, or a value we do not know: interrupt */
	/* Interrupt if the descriptor off_wrap names was among those just handed back: [old, now). */
	unsigned event = lap_pos(vq, off_wrap & ~VRING_PACKED_EVENT_WRAP, off_wrap & VRING_PACKED_EVENT_WRAP);
	return (now + span - event - 1) % span < (now + span - old) % span;
}

bool packed_push(struct virtqueue *vq, const struct vq_used *elems, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned ndesc = elems[i].ndesc;
		if (ndesc == 0 || ndesc > vq->size)
			continue; /* not from packed_pop(): a device bug, never the guest's doing */
		volatile struct vring_packed_desc *u = &vq->ring[vq->used_idx];
		u->id = elems[i].id;
		u->len = elems[i].len;
		uint16_t flags = vq->used_wrap ? VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED : 0;
		if (elems[i].len)
			flags |= VRING_DESC_F_WRITE; /* len counts bytes written */
		/* id and len are visible before the flags that hand the descriptor back. */
		fence_release();
		store_u16(&vq->ring[vq->used_idx].flags, flags);
		unsigned next = vq->used_idx + ndesc;
		if (next >= vq->size) {
			next -= vq->size;
			vq->used_wrap = !vq->used_wrap;
		}
		vq->used_idx = (uint16_t)next;
	}
	return should_notify(vq);
}

bool packed_enable_notify(struct virtqueue *vq)
{
	/* With EVENT_IDX: kick when the next descriptor we would pop is made available. */
	uint32_t ev = VRING_PACKED_EVENT_ENABLE;
	if (vq->event_idx)
		ev = (uint32_t)VRING_PACKED_EVENT_DESC << 16 | vq->last_avail |
		     (vq->avail_wrap ? VRING_PACKED_EVENT_WRAP : 0);
	store_u32((uint32_t *)vq->device_event, ev);
	/* Publish the kick request before looking at the ring again (pairs with the driver's mb). */
	fence_full();
	return packed_has_avail(vq);
}

void packed_disable_notify(struct virtqueue *vq)
{
	store_u32((uint32_t *)vq->device_event, (uint32_t)VRING_PACKED_EVENT_DISABLE << 16);
}
