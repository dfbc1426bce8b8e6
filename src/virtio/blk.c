// SPDX-License-Identifier: MIT
/*
 * virtio-blk (virtio 1.x section 5.2) on keel's block stack.  Each queue
 * has its own I/O thread (one queue per vCPU by default): it pops requests,
 * validates them against the disk and hands them to the stack, never
 * waiting; completions arrive out of order on whatever thread the stack
 * completes on, write the status byte, fill the used ring and raise the
 * queue's MSI-X vector through its irqfd.  When the stack is full (-EAGAIN)
 * the queue stops popping until one of its requests completes.
 *
 * Request size: the device offers SEG_MAX and SIZE_MAX, so a conforming
 * driver's largest read or write is BLK_MAX_DATA (126 segments of 1 MiB;
 * size_max is no smaller, so that Linux sends a 1 MiB request from
 * contiguous memory in one segment, as to QEMU, which offers none);
 * a longer one (a chain may carry up to 4 GiB, e.g. many buffers that all
 * point at the same guest memory) is completed with S_IOERR before anything
 * reaches the stack, so no layer below sees or buffers more than that.  Only
 * the total counts: a segment over size_max within it (firmware drivers
 * that ignore size_max send one buffer per request) is taken.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block/block.h"
#include "vmm/config.h"
#include "base/iothread.h"
#include "base/util.h"
#include "vmm/vm.h"
#include "virtio.h"

#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX 126
#define BLK_SIZE_MAX (1024u * 1024) /* bytes per data segment (size_max) */
#define BLK_MAX_DATA ((uint64_t)BLK_SEG_MAX * BLK_SIZE_MAX) /* the longest read or write taken */
#define BLK_MAX_IOV (BLK_SEG_MAX + 2) /* header, data segments, status */
#define BLK_PIPELINE_MIN (128u * 1024) /* completions reaped after submitting a request this long (process()) */
#define SECTOR 512ull

/* Feature bits. */
#define F_SIZE_MAX 1
#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_TOPOLOGY 10
#define F_MQ 12
#define F_DISCARD 13
#define F_WRITE_ZEROES 14

/* Request types and status codes. */
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };
enum { SUBMIT = 256, NO_STATUS = 257 }; /* parse() results besides a status */

struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max, seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads, sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp, alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback, unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
	uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap, unused1[3];
} __attribute__((packed)); /* 60 bytes: no tail padding after the 64-bit capacity */
static_assert(sizeof(struct virtio_blk_config) == 60, "virtio-blk config layout");

struct virtio_blk_outhdr {
	uint32_t type, reserved;
	uint64_t sector;
};
static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio-blk request header layout");

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors, flags;
};
static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "virtio-blk discard segment layout");

struct vblk;
struct vblk_queue;

struct vblk_req {
	struct blk_req breq;
	struct vq_elem elem;
	struct vblk_queue *q;
	uint8_t *status; /* host pointer to the status byte */
	uint32_t written; /* bytes the device writes into the chain on success */
	struct iovec iov[BLK_MAX_IOV];
	struct iovec data[BLK_MAX_IOV];
	struct vblk_req *next_free;
};

struct vblk_queue {
	struct vblk *dev;
	unsigned index;
	pthread_mutex_t proc_lock; /* held while the queue is processed */
	pthread_mutex_t free_lock;
	struct vblk_req *free;
	struct vblk_req *reqs; /* BLK_QUEUE_SIZE slots, handed out first as needed (fresh), then from free */
	unsigned fresh;        /* slots of reqs handed out so far (free_lock) */
	_Atomic(struct vblk_req *) stalled; /* popped, refused with -EAGAIN, to submit again */
	_Atomic bool starved;               /* every request slot is in flight */
	int resume_efd;           /* written by a completion while stalled */
	struct iothread thread;
	bool thread_started;
	bool polling; /* the thread reaps the stack's completions (attached as a poller) */
	bool spinning; /* its thread busy-polls the ring: leave kicks off (under proc_lock) */
};

struct vblk {
	struct virtio_dev *vd;
	unsigned index;
	struct blk_dev *disk; /* the stack, opened before the machine is built */
	const struct blk_options *opts;
	pthread_mutex_t inflight_lock;
	pthread_cond_t idle;
	unsigned inflight;
	struct vblk_queue q[VIRTIO_MAX_QUEUES];
};

static unsigned vblk_count(const struct vm_config *cfg)
{
	return vm_config_disks_on(cfg, BLK_IF_VIRTIO);
}

static int vblk_boot_disk(const struct vm_config *cfg, unsigned index)
{
	return vm_config_disk_of(cfg, BLK_IF_VIRTIO, index);
}


/* Offer what the disk can do: Linux reads a zero discard limit as "unlimited". */
static void offer_features(struct vblk *b)
{
	struct blk_dev *d = b->disk;
	uint64_t f = 1ull << F_SIZE_MAX | 1ull << F_SEG_MAX | 1ull << F_BLK_SIZE | 1ull << F_TOPOLOGY |
		     (b->vd->nr_queues > 1 ? 1ull << F_MQ : 0);
	if (d) {
		if (d->volatile_cache)
			f |= 1ull << F_FLUSH;
		if (d->can_discard && !d->read_only)
			f |= 1ull << F_DISCARD;
		if (d->can_write_zeroes && !d->read_only)
			f |= 1ull << F_WRITE_ZEROES;
		if (d->read_only)
			f |= 1ull << F_RO;
	}
	if (b->opts && b->opts->readonly)
		f |= 1ull << F_RO;
	b->vd->features = f;
}

void virtio_blk_attach(void *state, struct blk_dev *disk, const struct blk_options *opts)
{
	struct vblk *b = state;
	b->disk = disk;
	b->opts = opts;
	offer_features(b);
}

/* --- completion ---------------------------------------------------------- */

static void put_req(struct vblk_queue *q, struct vblk_req *r)
{
	pthread_mutex_lock(&q->free_lock);
	r->next_free = q->free;
	q->free = r;
	pthread_mutex_unlock(&q->free_lock);
}

/*
 * A free request slot, or NULL.  Slots are taken from the array only when
 * none is free, so the pages of a queue that never has many requests in
 * flight are never touched (256 slots of 4 KiB each: 1 MiB of RSS otherwise).
 */
static struct vblk_req *get_req(struct vblk_queue *q)
{
	pthread_mutex_lock(&q->free_lock);
	struct vblk_req *r = q->free;
	if (r) {
		q->free = r->next_free;
	} else if (q->fresh < BLK_QUEUE_SIZE) {
		r = &q->reqs[q->fresh++];
		r->q = q;
	}
	pthread_mutex_unlock(&q->free_lock);
	return r;
}

/* Wake every queue waiting for room below (a stalled request or an empty pool). */
static void wake_waiting(struct vblk *b)
{
	for (unsigned i = 0; i < b->vd->nr_queues; i++) {
		struct vblk_queue *o = &b->q[i];
		if (atomic_load_explicit(&o->stalled, memory_order_acquire) ||
		    atomic_load_explicit(&o->starved, memory_order_acquire)) {
			uint64_t one = 1;
			(void)!write(o->resume_efd, &one, sizeof(one));
		}
	}
}

/*
 * Finish a request exactly once: status byte, used ring, interrupt, waking
 * waiters, accounting.  The in-flight count drops last: once it reaches zero
 * a reset may go on to free the device, so nothing of it is touched after.
 */
static void finish(struct vblk_req *r, uint8_t status)
{
	struct vblk_queue *q = r->q;
	struct vblk *b = q->dev;
	uint32_t len = 0;
	if (r->status) {
		*r->status = status;
		len = (status == S_OK ? r->written : 0) + 1;
	}
	virtio_complete(b->vd, q->index, &r->elem, len);
	put_req(q, r);
	wake_waiting(b);
	pthread_mutex_lock(&b->inflight_lock);
	if (--b->inflight == 0)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->inflight_lock);
}

static void stack_done(struct blk_req *breq)
{
	struct vblk_req *r = breq->opaque;
	finish(r, breq->status == 0 ? S_OK : S_IOERR);
}

/* --- request parsing ----------------------------------------------------- */

/* Copy len bytes at byte offset off of the iovec list into dst.  0 or -EINVAL if too short. */
static int iov_read(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	uint8_t *d = dst;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = MIN(iov[i].iov_len - off, len);
		memcpy(d, (uint8_t *)iov[i].iov_base + off, c);
		d += c;
		len -= c;
		off = 0;
	}
	return len ? -EINVAL : 0;
}

/* The slice [off, off+len) of an iovec list as a new list in out.  Returns its count. */
static unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *out)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = MIN(iov[i].iov_len - off, len);
		out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[k].iov_len = c;
		k++;
		len -= c;
		off = 0;
	}
	return k;
}

/*
 * Turn a popped chain into a block request.  Returns SUBMIT with r->breq
 * ready, NO_STATUS for a chain without a status byte, or a virtio status to
 * complete with at once (S_OK for GET_ID).
 */
static int parse(struct vblk *b, struct blk_dev *disk, struct vblk_req *r)
{
	struct vq_elem *e = &r->elem;
	struct iovec *out = r->iov, *in = r->iov + e->nr_out;
	r->status = NULL;
	r->written = 0;
	/* A malformed chain has no buffers to trust: completed with length 0, nothing written. */
	if (e->error != VQ_OK || e->nr_in == 0)
		return NO_STATUS;
	/* The status byte is the last byte of the last device-writable buffer. */
	struct iovec *last = &in[e->nr_in - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (!disk)
		return S_IOERR;
	struct virtio_blk_outhdr h;
	if (iov_read(out, e->nr_out, 0, &h, sizeof(h)))
		return S_IOERR;
	uint64_t in_data = e->in_len - 1, out_data = e->out_len - sizeof(h);
	uint64_t sector = h.sector, len;
	struct blk_req *q = &r->breq;
	memset(q, 0, sizeof(*q));
	q->opaque = r;
	q->done = stack_done;
	q->tag = e->head;
	switch (h.type) {
	case T_IN:
	case T_OUT: {
		bool write = h.type == T_OUT;
		len = write ? out_data : in_data;
		if (write && disk->read_only)
			return S_IOERR;
		/* Longer than SEG_MAX * SIZE_MAX allow: refused, whatever the chain's buffers. */
		if (len == 0 || len % disk->block_size || len > BLK_MAX_DATA)
			return S_IOERR;
		q->op = write ? BLK_WRITE : BLK_READ;
		q->iovcnt = write ? iov_slice(out, e->nr_out, sizeof(h), len, r->data)
				  : iov_slice(in, e->nr_in, 0, len, r->data);
		q->iov = r->data;
		r->written = write ? 0 : (uint32_t)len;
		break;
	}
	case T_FLUSH:
		q->op = BLK_FLUSH;
		return SUBMIT;
	case T_GET_ID: {
		char serial[BLK_SERIAL_MAX] = { 0 };
		if (b->opts)
			memcpy(serial, b->opts->serial, strnlen(b->opts->serial, BLK_SERIAL_MAX));
		size_t n = MIN(in_data, (uint64_t)BLK_SERIAL_MAX);
		for (unsigned i = 0, done = 0; i < e->nr_in && done < n; i++) {
			size_t c = MIN(in[i].iov_len, n - done);
			memcpy(in[i].iov_base, serial + done, c);
			done += (unsigned)c;
		}
		r->written = (uint32_t)n;
		return S_OK;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES: {
		bool zero = h.type == T_WRITE_ZEROES;
		struct virtio_blk_discard_write_zeroes seg;
		/* We advertise one segment per request. */
		if (out_data != sizeof(seg) || iov_read(out, e->nr_out, sizeof(h), &seg, sizeof(seg)))
			return S_IOERR;
		if ((zero ? !disk->can_write_zeroes : !disk->can_discard) || disk->read_only)
			return S_UNSUPP;
		if (seg.flags & ~(zero ? 1u : 0u))
			return S_UNSUPP;
		sector = seg.sector;
		len = (uint64_t)seg.num_sectors * SECTOR;
		if (len == 0 || len % disk->block_size)
			return S_IOERR;
		q->op = zero ? BLK_WRITE_ZEROES : BLK_DISCARD;
		q->flags = zero && (seg.flags & 1) ? BLK_UNMAP : 0;
		break;
	}
	default:
		return S_UNSUPP;
	}
	/* Range: sector * 512 + len within the disk, computed without overflow. */
	if (sector > disk->size / SECTOR || len > disk->size - sector * SECTOR || (sector * SECTOR) % disk->block_size)
		return S_IOERR;
	q->offset = sector * SECTOR;
	q->len = len;
	return SUBMIT;
}

/* --- queue processing ---------------------------------------------------- */

/* Submit r; false if the stack is full (r is kept as the queue's stalled request). */
static bool submit(struct vblk_queue *q, struct vblk_req *r)
{
	struct blk_dev *disk = q->dev->disk;
	/*
	 * Published before the submit: a completion racing with an -EAGAIN sees
	 * it and wakes us (release pairs with the acquire in wake_waiting()).
	 */
	atomic_store_explicit(&q->stalled, r, memory_order_release);
	int e = blk_submit(disk, &r->breq);
	if (e == -EAGAIN)
		return false;
	atomic_store_explicit(&q->stalled, NULL, memory_order_relaxed);
	if (e)
		finish(r, S_IOERR); /* refused: done() will not run */
	return true;
}

/* Pop and submit what the driver queued; true if anything was taken. */
static bool process(struct vblk_queue *q)
{
	struct vblk *b = q->dev;
	struct virtio_dev *vd = b->vd;
	struct virtqueue *vq = &vd->vq[q->index];
	bool took = false;
	struct vblk_req *st = atomic_exchange_explicit(&q->stalled, NULL, memory_order_acq_rel);
	if (st && !submit(q, st))
		return false;
	atomic_store_explicit(&q->starved, false, memory_order_relaxed);
	for (;;) {
		for (;;) {
			struct vblk_req *r = get_req(q);
			if (!r) {
				/* Every slot in flight: a completion wakes us (see wake_waiting()). */
				atomic_store_explicit(&q->starved, true, memory_order_seq_cst);
				r = get_req(q);
				if (!r)
					return took;
				atomic_store_explicit(&q->starved, false, memory_order_relaxed);
			}
			int p = vq_pop(vq, &r->elem, r->iov, BLK_MAX_IOV);
			if (p != 1) {
				put_req(q, r);
				if (p < 0) {
					vd->needs_reset(vd);
					return took;
				}
				break;
			}
			took = true;
			pthread_mutex_lock(&b->inflight_lock);
			b->inflight++;
			pthread_mutex_unlock(&b->inflight_lock);
			int s = parse(b, b->disk, r);
			if (s != SUBMIT) {
				finish(r, s == NO_STATUS ? S_IOERR : (uint8_t)s); /* no status byte: length 0 */
				continue;
			}
			if (!submit(q, r))
				return took; /* resumed by a completion */
			/*
			 * After a long request, what has completed goes back to the
			 * guest now, not after the whole batch: a long buffered read
			 * that hits the host's page cache completes inside its
			 * submit, so with a batch of them the guest would wait for
			 * all the copying before it saw the first, and then keel for
			 * the guest.  Short requests keep their completions for the
			 * end of the batch, where one interrupt serves them all.
			 */
			if (r->breq.len >= BLK_PIPELINE_MIN && q->polling && blk_poll_pending(b->disk))
				blk_poll(b->disk);
		}
		/* A spinning thread comes back without a kick; see queue_notify(). */
		if (q->spinning || !vq_enable_notify(vq))
			return took;
	}
}

static void vblk_kick(void *state, unsigned qi)
{
	struct vblk *b = state;
	struct vblk_queue *q = &b->q[qi];
	pthread_mutex_lock(&q->proc_lock);
	virtio_drain_kick(b->vd, qi);
	process(q);
	pthread_mutex_unlock(&q->proc_lock);
}

static void thread_kick(void *opaque)
{
	struct vblk_queue *q = opaque;
	vblk_kick(q->dev, q->index);
}

static void thread_resume(void *opaque)
{
	struct vblk_queue *q = opaque;
	uint64_t n;
	(void)!read(q->resume_efd, &n, sizeof(n));
	pthread_mutex_lock(&q->proc_lock);
	process(q);
	pthread_mutex_unlock(&q->proc_lock);
}

static void thread_poll(void *opaque)
{
	struct vblk_queue *q = opaque;
	blk_poll(q->dev->disk);
}

/*
 * Busy-polling (iothread_set_poll()): while the queue's thread spins it
 * watches the avail ring and the stack's completion queue itself, and the
 * driver is asked not to kick: a request costs neither a VM exit nor a
 * thread wake-up, and its completion no wake-up either.
 */
static bool queue_poll(void *opaque)
{
	struct vblk_queue *q = opaque;
	struct virtqueue *vq = &q->dev->vd->vq[q->index];
	bool did = q->polling && blk_poll_pending(q->dev->disk) && blk_poll(q->dev->disk) > 0;
	if (vq_has_avail(vq)) {
		pthread_mutex_lock(&q->proc_lock);
		did |= process(q);
		pthread_mutex_unlock(&q->proc_lock);
	}
	return did;
}

static bool queue_notify(void *opaque, bool on)
{
	struct vblk_queue *q = opaque;
	struct virtqueue *vq = &q->dev->vd->vq[q->index];
	bool more = false;
	pthread_mutex_lock(&q->proc_lock);
	q->spinning = !on;
	if (on)
		more = vq_enable_notify(vq);
	else
		vq_disable_notify(vq);
	pthread_mutex_unlock(&q->proc_lock);
	/* Work that cannot go on before a completion makes room does not keep the thread up. */
	return more && !atomic_load_explicit(&q->stalled, memory_order_acquire) &&
	       !atomic_load_explicit(&q->starved, memory_order_acquire);
}

/* --- device -------------------------------------------------------------- */

static int vblk_create(struct virtio_dev *vd, unsigned index, void **state)
{
	struct vblk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->vd = vd;
	b->index = index;
	pthread_mutex_init(&b->inflight_lock, NULL);
	pthread_cond_init(&b->idle, NULL);
	unsigned nq = 1;
	/* index counts virtio disks; disk is where this one is among all --disk options. */
	int disk = vd->vm ? vm_config_disk_of(vd->vm->cfg, BLK_IF_VIRTIO, index) : -1;
	if (disk >= 0) {
		const struct vm_config *cfg = vd->vm->cfg;
		b->opts = &cfg->disks[disk];
		nq = cfg->disks[disk].queues ? cfg->disks[disk].queues : cfg->cpus;
	}
	nq = MIN(MAX(nq, 1u), (unsigned)VIRTIO_MAX_QUEUES);
	vd->nr_queues = nq;
	vd->queue_max_size = BLK_QUEUE_SIZE;
	if (disk >= 0 && (unsigned)disk < vd->vm->nr_disks)
		b->disk = vd->vm->disks[disk];
	offer_features(b);
	int r = 0;
	for (unsigned i = 0; i < nq; i++) {
		struct vblk_queue *q = &b->q[i];
		q->dev = b;
		q->index = i;
		pthread_mutex_init(&q->proc_lock, NULL);
		pthread_mutex_init(&q->free_lock, NULL);
		q->resume_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->reqs = calloc(BLK_QUEUE_SIZE, sizeof(*q->reqs));
		if (q->resume_efd < 0 || !q->reqs) {
			r = -ENOMEM;
			continue;
		}
	}
	*state = b;
	if (r) {
		vd->nr_queues = nq; /* destroy walks them */
		return r;
	}
	return 0;
}

static void vblk_reset(void *state);

static void vblk_destroy(void *state)
{
	struct vblk *b = state;
	vblk_reset(b); /* nothing in flight: no completion can reach the device after this */
	for (unsigned i = 0; i < b->vd->nr_queues; i++) {
		struct vblk_queue *q = &b->q[i];
		if (q->thread_started)
			iothread_destroy(&q->thread);
		if (q->polling)
			blk_poller_attach(b->disk, false);
		if (q->resume_efd >= 0)
			close(q->resume_efd);
		free(q->reqs);
		pthread_mutex_destroy(&q->proc_lock);
		pthread_mutex_destroy(&q->free_lock);
	}
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->inflight_lock);
	free(b);
}

static void vblk_config_read(void *state, uint32_t off, void *buf, uint32_t len)
{
	struct vblk *b = state;
	struct blk_dev *d = b->disk;
	struct virtio_blk_config c = { 0 };
	if (d) {
		unsigned bs = d->block_size;
		c.capacity = d->size / SECTOR;
		c.size_max = BLK_SIZE_MAX;
		c.seg_max = BLK_SEG_MAX;
		c.blk_size = bs;
		c.topology.physical_block_exp = 0;
		c.topology.min_io_size = 1; /* in logical blocks */
		c.writeback = d->volatile_cache;
		c.num_queues = (uint16_t)b->vd->nr_queues;
		uint32_t max = (uint32_t)MIN(d->size / SECTOR, (uint64_t)UINT32_MAX) & ~(uint32_t)(bs / SECTOR - 1);
		c.max_discard_sectors = d->can_discard ? max : 0;
		c.max_discard_seg = 1;
		c.discard_sector_alignment = (uint32_t)MAX(d->discard_granularity, bs) / SECTOR;
		c.max_write_zeroes_sectors = d->can_write_zeroes ? max : 0;
		c.max_write_zeroes_seg = 1;
		c.write_zeroes_may_unmap = d->can_discard;
	}
	memcpy(buf, (uint8_t *)&c + off, len);
}

static void vblk_start(void *state)
{
	struct vblk *b = state;
	if (b->vd->harness)
		return;
	/* Threads start with the driver (after keel's sandbox is up), once per queue. */
	for (unsigned i = 0; i < b->vd->nr_queues; i++) {
		struct vblk_queue *q = &b->q[i];
		if (q->thread_started)
			continue;
		char name[16];
		snprintf(name, sizeof(name), "blk%u-q%u", b->index % 100, i % 100);
		/*
		 * The thread that submits a queue's requests also reaps their
		 * completions (the kernel finishes them on the submitting thread
		 * anyway): one wake-up per request, not two.
		 */
		int cfd = blk_completion_fd(b->disk);
		const struct virtio_io_handler h[] = {
			{ b->vd->kick_fd[i], thread_kick, q },
			{ q->resume_efd, thread_resume, q },
			{ cfd, thread_poll, q },
		};
		if (cfd >= 0)
			blk_poller_attach(b->disk, true);
		const struct virtio_io_poll poll = { b->opts->poll_us * 1000u, queue_poll, queue_notify, q,
						     b->opts->cpus_mode == BLK_CPUS_LIST ? &b->opts->cpus : NULL };
		if (virtio_start_iothread(b->vd, &q->thread, name, h, ARRAY_SIZE(h) - (cfd < 0), &poll)) {
			if (cfd >= 0)
				blk_poller_attach(b->disk, false);
			return;
		}
		q->polling = cfd >= 0;
		q->thread_started = true;
	}
}

static void vblk_reset(void *state)
{
	struct vblk *b = state;
	/* The queues are disabled: once no handler runs and nothing is in flight, we are idle. */
	for (unsigned i = 0; i < b->vd->nr_queues; i++) {
		struct vblk_queue *q = &b->q[i];
		pthread_mutex_lock(&q->proc_lock);
		struct vblk_req *st = atomic_exchange_explicit(&q->stalled, NULL, memory_order_acq_rel);
		if (st)
			finish(st, S_IOERR); /* never submitted: complete it (dropped by the reset queue) */
		pthread_mutex_unlock(&q->proc_lock);
	}
	pthread_mutex_lock(&b->inflight_lock);
	while (b->inflight)
		pthread_cond_wait(&b->idle, &b->inflight_lock);
	pthread_mutex_unlock(&b->inflight_lock);
}

const struct virtio_device_desc virtio_blk_desc = {
	.name = "virtio-blk",
	.device_id = 2,
	.pci_class = 0x018000,
	.count = vblk_count,
	.boot_disk = vblk_boot_disk,
	.create = vblk_create,
	.destroy = vblk_destroy,
	.config_size = sizeof(struct virtio_blk_config),
	.config_read = vblk_config_read,
	.start = vblk_start,
	.reset = vblk_reset,
	.queue_kick = vblk_kick,
};
