// SPDX-License-Identifier: MIT
/*
 * The virtqueue core: split virtqueues (virtio 1.x section 2.7) and packed
 * virtqueues (section 2.8, in packed.c) as seen by the device, with
 * indirect descriptors and EVENT_IDX.  Devices use one API for both.  The
 * rings live in
 * guest memory and the guest is hostile: every ring and descriptor access
 * goes through gm_ptr(), every shared field is read once into a local and
 * validated before use, and every walk is bounded.
 *
 * Threading: one thread pops from a queue at a time (its I/O thread); pushes
 * (completions) may come from any thread and are serialised by vq->lock.
 */
#pragma once

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

#define VQ_MAX_SIZE 1024

/* Guest-visible layout (little-endian; keel runs on x86 only). */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
static_assert(sizeof(struct vring_desc) == 16, "virtio descriptor layout");

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
static_assert(sizeof(struct vring_used_elem) == 8, "virtio used element layout");

/* A packed ring's descriptor (also the layout of its indirect tables). */
struct vring_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};
static_assert(sizeof(struct vring_packed_desc) == 16, "virtio packed descriptor layout");

/* A packed ring's event suppression structure (driver's and device's). */
struct vring_packed_event {
	uint16_t off_wrap; /* descriptor ring offset, wrap counter in bit 15 */
	uint16_t flags;
};
static_assert(sizeof(struct vring_packed_event) == 4, "virtio packed event suppression layout");

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED (1u << 15)
#define VRING_PACKED_EVENT_ENABLE 0
#define VRING_PACKED_EVENT_DISABLE 1
#define VRING_PACKED_EVENT_DESC 2 /* only with EVENT_IDX: at the descriptor off_wrap names */
#define VRING_PACKED_EVENT_WRAP (1u << 15)

/* Why a chain was refused (for messages, counters and tests). */
enum vq_error {
	VQ_OK = 0,
	VQ_ERR_HEAD_RANGE,    /* head index >= queue size: ring corrupt, device needs reset */
	VQ_ERR_AVAIL_IDX,     /* avail idx moved by more than the queue size: needs reset */
	VQ_ERR_RING_ADDR,     /* ring not in guest RAM: needs reset */
	VQ_ERR_NEXT_RANGE,    /* next index >= table size */
	VQ_ERR_LOOP,          /* chain longer than its table (a loop) */
	VQ_ERR_BUF_ADDR,      /* buffer not (wholly) in guest RAM */
	VQ_ERR_ZERO_LEN,      /* zero-length buffer */
	VQ_ERR_ORDER,         /* device-readable buffer after a device-writable one */
	VQ_ERR_INDIRECT,      /* bad indirect table (size, address, NEXT with INDIRECT) */
	VQ_ERR_NESTED,        /* indirect descriptor inside an indirect table */
	VQ_ERR_TOO_MANY,      /* more buffers than the caller's iovec array */
	VQ_ERR_LEN_OVERFLOW,  /* total length overflows 32 bits */
	VQ_ERR_CHAIN_LEN,     /* packed: chain longer than the ring: needs reset */
	VQ_NR_ERRORS
};

const char *vq_error_name(enum vq_error e);

struct virtqueue {
	pthread_mutex_t lock; /* serialises pushes and interrupt decisions */
	const struct guest_mem *mem;
	/* Set by the transport when the driver enables the queue. */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool packed;    /* VIRTIO_F_RING_PACKED negotiated */
	bool ready;
	/* Host views of the split rings, checked once when the queue is enabled. */
	struct vring_desc *desc;
	uint16_t *avail;                 /* flags, idx, ring[size], used_event */
	uint16_t *used_hdr;              /* flags, idx */
	struct vring_used_elem *used_ring;
	uint16_t *avail_event;
	/* Host views of a packed ring (desc_gpa, avail_gpa = driver area, used_gpa = device area). */
	struct vring_packed_desc *ring;
	struct vring_packed_event *driver_event; /* the driver's wishes about interrupts */
	struct vring_packed_event *device_event; /* ours about kicks */
	/*
	 * Device-private indices.  Split: free-running 16-bit indices.  Packed:
	 * positions in the ring (0 .. size-1) with wrap counters; signalled_used
	 * is then a position in the doubled ring (see packed.c).
	 */
	uint16_t last_avail; /* next avail entry to pop (popper only) */
	uint16_t used_idx;   /* next used entry to fill (under lock) */
	bool avail_wrap;     /* packed: driver ring wrap counter (popper only) */
	bool used_wrap;      /* packed: used ring wrap counter (under lock) */
	uint16_t signalled_used; /* used idx at the last interrupt (under lock) */
	bool signalled_valid;
	bool broken; /* ring-level corruption seen: stop until reset */
	uint32_t generation; /* bumped by every reset: completions of older requests are dropped */
	uint64_t errors[VQ_NR_ERRORS];
};

/* One popped request: the head to complete, and its buffers split by direction. */
struct vq_elem {
	uint16_t head;  /* split: the chain's head; packed: its buffer id */
	uint16_t ndesc; /* packed: ring descriptors the chain took (the used entry skips them) */
	uint32_t generation; /* the queue's generation when popped */
	unsigned nr_out; /* device-readable buffers: iov[0 .. nr_out) */
	unsigned nr_in;  /* device-writable buffers: iov[nr_out .. nr_out + nr_in) */
	uint32_t out_len, in_len;
	enum vq_error error;
};

void vq_init(struct virtqueue *vq, const struct guest_mem *mem);
void vq_destroy(struct virtqueue *vq);
/*
 * Enable the queue at the addresses the driver gave (packed: desc is the
 * descriptor ring, avail the driver area, used the device area).  0, or
 * -EINVAL if a ring is not in RAM, misaligned, or the size is not allowed.
 */
int vq_enable(struct virtqueue *vq, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
	      bool event_idx, bool packed);
/* Back to the reset state (queue disabled, indices zero). */
void vq_reset(struct virtqueue *vq);

/*
 * Pop the next available chain into iov[0 .. max_iov).
 *   1: a request; e->error is VQ_OK, or the reason the chain is malformed
 *      (then it must still be completed, with an error, through vq_push()).
 *   0: nothing available (and, with EVENT_IDX, the driver was asked to kick).
 *  -EIO: the ring itself is corrupt (vq->broken is set): the device needs reset.
 */
int vq_pop(struct virtqueue *vq, struct vq_elem *e, struct iovec *iov, unsigned max_iov);

/* Whether more chains are available right now (a cheap re-check for batching). */
bool vq_has_avail(struct virtqueue *vq);

/*
 * Complete e with len bytes written.  Returns true if the driver wants an
 * interrupt now (EVENT_IDX or NO_INTERRUPT suppression applied).  Safe from
 * any thread.  A request popped before the queue was reset is dropped.
 */
bool vq_push(struct virtqueue *vq, const struct vq_elem *e, uint32_t len);
/* A completion for vq_push_batch(). */
struct vq_used {
	uint16_t id;
	uint16_t ndesc; /* packed only */
	uint32_t len;
};
/* Push n completions of one generation, one interrupt decision for all. */
bool vq_push_batch(struct virtqueue *vq, uint32_t generation, const struct vq_used *elems, unsigned n);

/*
 * Before sleeping: ask the driver for a kick (clear NO_NOTIFY or set avail_event),
 * then re-check.  Returns true if work arrived meanwhile (pop again).
 */
bool vq_enable_notify(struct virtqueue *vq);
/*
 * While the device polls the ring: ask the driver not to kick (NO_NOTIFY;
 * with EVENT_IDX, avail_event is simply left behind; packed: DISABLE).
 * A hint the driver may ignore, as the spec allows.
 */
void vq_disable_notify(struct virtqueue *vq);
