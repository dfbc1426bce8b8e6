// SPDX-License-Identifier: MIT
/*
 * The bottom of the block stack: a raw image file or block device driven
 * through io_uring.
 *
 *  - READ/WRITE are readv/writev; BLK_FUA is RWF_DSYNC.  A short transfer is
 *    resubmitted for the rest; a read that reaches the end of the file (the
 *    image shrank under us) reads zeroes for what is left.
 *  - FLUSH is IORING_OP_FSYNC with IORING_FSYNC_DATASYNC.
 *  - DISCARD punches a hole (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
 *    where the file system cannot, the discard succeeds and does nothing
 *    (a discarded range's contents are undefined).
 *  - WRITE_ZEROES is FALLOC_FL_ZERO_RANGE (a punched hole with BLK_UNMAP);
 *    where the file system cannot (tmpfs has no ZERO_RANGE), zeroes are
 *    written, a megabyte at a time.
 *  - With direct (cache=none) the image is opened O_DIRECT; a read or write
 *    whose buffers do not meet the file system's memory alignment goes
 *    through its slot's bounce buffer, BLK_BOUNCE_CHUNK bytes per step (a
 *    read copies each chunk out, a write copies each one in before it is
 *    submitted).  A slot allocates that buffer with its first such request,
 *    once it holds the slot, and keeps it: bounce memory is at most
 *    FILE_QUEUE_DEPTH * BLK_BOUNCE_CHUNK (16 MiB), whatever the guest asks.
 *
 * Threading: submit() may be called from any thread; it fills the submission
 * ring under f->lock.  Once blk_start() has run, one completion thread
 * ("blk-file") sleeps in io_uring_enter() and calls done() for each finished
 * request, in whatever order the kernel finishes them.  Before that (set-up,
 * before the sandbox) submit() itself waits for the request and completes
 * it.
 *
 * Pollers: the kernel finishes a read or write on the thread that submitted
 * it (io_uring task work), and only then wakes the thread waiting for the
 * completion.  Where that is another thread, each request costs a second
 * wake-up.  So the threads that submit can reap too: an eventfd registered
 * with the ring (blk_completion_fd()) turns readable with each completion,
 * and blk_poll() completes what is there on the calling thread.  While a
 * poller is attached (blk_poller_attach(), e.g. virtio-blk's queue threads,
 * which watch the eventfd), the completion thread stays asleep and the
 * pollers reap everything, the cache's background writes included; it takes
 * over again when the last one detaches.  With several pollers (one per
 * queue) every completion wakes each of them; the one that submitted is
 * awake anyway and usually reaps first.
 *
 * The file and the ring (io_uring_setup) are opened at open; after that the
 * layer needs io_uring_enter, futex and, to start its thread, clone
 * (src/sandbox.c allows them).
 *
 * At most FILE_QUEUE_DEPTH requests are in flight; a submit beyond that
 * gets -EAGAIN.  A request's slot is freed before its done() runs, so a
 * submitter may submit again from inside done().
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block.h"
#include "internal.h"
#include "base/util.h"

#define FILE_QUEUE_DEPTH 128
#define ZERO_BUF_SIZE (64 * KiB)
#define ZERO_IOVS 16 /* one zero-writing step: up to 1 MiB */
#define RETRIES_MAX 100

struct fslot {
	struct blk_req *req;
	struct fslot *next_free;
	uint64_t done_bytes;       /* read/write progress (zero writing included) */
	struct iovec *rest;        /* what is left after a short transfer (malloc'd) */
	unsigned restcnt;
	void *bounce;              /* BLK_BOUNCE_CHUNK bytes for misaligned O_DIRECT requests; kept with the slot */
	bool bouncing;             /* this request goes through bounce, a chunk per step */
	size_t bfill;              /* write: bytes from done_bytes on already copied into bounce */
	struct iovec biov;         /* the current step's part of bounce */
	bool zero_write;           /* write-zeroes done by writing zeroes */
	unsigned retries;          /* -EAGAIN/-EINTR results resubmitted */
	struct iovec ziov[ZERO_IOVS];
};

struct file_dev {
	struct blk_dev dev;
	int fd;
	bool direct;
	uint32_t mem_align; /* O_DIRECT buffer alignment */
	struct io_uring ring;
	pthread_t thread;
	bool threaded;        /* blk_start() started the completion thread */
	pthread_mutex_t lock; /* the rings, the free list, inflight, threaded */
	pthread_cond_t idle;  /* inflight dropped to 0 */
	pthread_cond_t wake;  /* for the completion thread: the last poller left, or close() */
	unsigned inflight;
	unsigned pollers;     /* attached pollers: the completion thread does not wait on the ring */
	bool stopping;        /* close(): the completion thread ends */
	int efd;              /* eventfd the ring signals on every completion */
	struct fslot *free;
	void *zeroes; /* ZERO_BUF_SIZE zero bytes, aligned for O_DIRECT */
	/* Set once the file system refused ZERO_RANGE: later write-zeroes write zeroes straight away. */
	atomic_bool no_zero_range;
	uint64_t bounce_bytes; /* held in the slots' bounce buffers (under lock) */
	struct fslot slots[FILE_QUEUE_DEPTH];
};

static struct file_dev *to_file(struct blk_dev *d)
{
	return container_of(d, struct file_dev, dev);
}

/* The iovec array a read/write slot transfers from its current progress on. */
static const struct iovec *slot_iov(struct fslot *s, unsigned *cnt)
{
	if (s->bouncing) {
		*cnt = 1;
		return &s->biov;
	}
	if (s->rest) {
		*cnt = s->restcnt;
		return s->rest;
	}
	*cnt = s->req->iovcnt;
	return s->req->iov;
}

/*
 * A bounced request's next step: the chunk of at most BLK_BOUNCE_CHUNK
 * bytes from done_bytes on.  A write copies in what of it is not in the
 * buffer yet (a short write leaves its unwritten part there, see
 * bounce_done()), so each byte is read from the caller's memory once.
 */
static void bounce_step(struct fslot *s)
{
	struct blk_req *r = s->req;
	size_t n = (size_t)MIN(r->len - s->done_bytes, (uint64_t)BLK_BOUNCE_CHUNK);
	if (r->op == BLK_WRITE && s->bfill < n) {
		blk_iov_to_buf(r->iov, r->iovcnt, s->done_bytes + s->bfill, (uint8_t *)s->bounce + s->bfill,
			       n - s->bfill);
		s->bfill = n;
	}
	s->biov = (struct iovec){ .iov_base = s->bounce, .iov_len = n };
}

/* A bounced step moved res bytes (before done_bytes counts them): copy a read's out, keep a write's rest. */
static void bounce_done(struct fslot *s, size_t res)
{
	struct blk_req *r = s->req;
	if (r->op == BLK_READ) {
		blk_iov_from_buf(r->iov, r->iovcnt, s->done_bytes, s->bounce, res);
		return;
	}
	s->bfill -= res;
	memmove(s->bounce, (uint8_t *)s->bounce + res, s->bfill);
}

/* Fill in one SQE for s's next step and submit it.  Called with f->lock held.  0 or -EBUSY. */
static int queue_step(struct file_dev *f, struct fslot *s)
{
	struct blk_req *r = s->req;
	/* The ring has FILE_QUEUE_DEPTH entries, one per slot, each slot one SQE at a time: never full. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
	if (!sqe)
		return -EBUSY;
	uint64_t off = r->offset + s->done_bytes;
	unsigned cnt;
	const struct iovec *iov;

	if (s->zero_write) {
		uint64_t left = r->len - s->done_bytes;
		unsigned n = 0;
		while (left && n < ZERO_IOVS) {
			size_t l = (size_t)MIN(left, ZERO_BUF_SIZE);
			s->ziov[n++] = (struct iovec){ .iov_base = f->zeroes, .iov_len = l };
			left -= l;
		}
		io_uring_prep_writev(sqe, f->fd, s->ziov, n, off);
	} else {
		switch (r->op) {
		case BLK_READ:
			if (s->bouncing)
				bounce_step(s);
			iov = slot_iov(s, &cnt);
			io_uring_prep_readv(sqe, f->fd, iov, cnt, off);
			break;
		case BLK_WRITE:
			if (s->bouncing)
				bounce_step(s); /* copies the chunk in: under f->lock, at most BLK_BOUNCE_CHUNK */
			iov = slot_iov(s, &cnt);
			io_uring_prep_writev(sqe, f->fd, iov, cnt, off);
			if (r->flags & BLK_FUA)
				sqe->rw_flags = RWF_DSYNC;
			break;
		case BLK_FLUSH:
			io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
			break;
		case BLK_DISCARD:
			io_uring_prep_fallocate(sqe, f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, r->len);
			break;
		case BLK_WRITE_ZEROES:
			io_uring_prep_fallocate(sqe, f->fd,
						(r->flags & BLK_UNMAP ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) |
							FALLOC_FL_KEEP_SIZE,
						off, r->len);
			break;
		}
	}
	io_uring_sqe_set_data(sqe, s);
	/*
	 * The SQE is in the ring once io_uring_submit() has run, even when the
	 * enter failed; a failed enter (-EINTR, or -EAGAIN/-EBUSY while the
	 * kernel is short of memory) is tried again until it takes.
	 */
	for (int i = 0; i < RETRIES_MAX; i++) {
		int rc = io_uring_submit(&f->ring);
		if (rc >= 0)
			return 0;
		if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			break;
		sched_yield();
	}
	log_error("block: io_uring_submit keeps failing; requests may stall");
	return 0;
}

/* Queue s's next step from a completion; false (s->req->status set) if that is impossible. */
static bool requeue(struct file_dev *f, struct fslot *s)
{
	if (!queue_step(f, s))
		return true;
	s->req->status = -EIO;
	return false;
}

/*
 * Handle one completion for s, with f->lock held.  true: the request is
 * finished (status set in s->req); false: another step was queued.
 */
static bool step_done(struct file_dev *f, struct fslot *s, int res)
{
	struct blk_req *r = s->req;
	bool rw = s->zero_write || r->op == BLK_READ || r->op == BLK_WRITE;

	if ((res == -EAGAIN || res == -EINTR) && s->retries++ < RETRIES_MAX)
		return !requeue(f, s);
	if (res < 0 && r->op == BLK_DISCARD && (res == -EOPNOTSUPP || res == -EINVAL)) {
		/* The file system cannot punch holes: a discard is only a hint. */
		r->status = 0;
		return true;
	}
	if (res < 0 && r->op == BLK_WRITE_ZEROES && !s->zero_write && (res == -EOPNOTSUPP || res == -EINVAL)) {
		atomic_store(&f->no_zero_range, true);
		s->zero_write = true;
		return !requeue(f, s);
	}
	if (res < 0) {
		r->status = res;
		return true;
	}
	if (!rw) {
		r->status = 0;
		return true;
	}
	uint64_t left = r->len - s->done_bytes;
	if ((uint64_t)res > (s->bouncing ? s->biov.iov_len : left)) {
		r->status = -EIO; /* the kernel moved more than asked: never expected */
		return true;
	}
	if (s->bouncing)
		bounce_done(s, (size_t)res);
	s->done_bytes += (uint64_t)res;
	left -= (uint64_t)res;
	if (!left) {
		r->status = 0;
		return true;
	}
	if (s->zero_write) {
		if (res == 0) {
			r->status = -EIO;
			return true;
		}
		return !requeue(f, s);
	}
	if (res == 0) {
		if (r->op == BLK_WRITE) {
			r->status = -EIO;
			return true;
		}
		/* End of file: the image is shorter than the device; the rest reads as zeroes. */
		blk_iov_zero(r->iov, r->iovcnt, s->done_bytes, (size_t)left);
		r->status = 0;
		return true;
	}
	/* Bounced: the next chunk (or the rest of this one). */
	if (s->bouncing)
		return !requeue(f, s);
	/* Short transfer: the rest goes again. */
	free(s->rest);
	s->rest = blk_iov_tail(r->iov, r->iovcnt, s->done_bytes, &s->restcnt);
	if (!s->rest) {
		r->status = -ENOMEM;
		return true;
	}
	return !requeue(f, s);
}

/*
 * Handle the completions in the ring (f->lock held): finished requests'
 * slots go back to the free list and the requests to fin[] (their done()
 * is for the caller to run, without the lock).  Returns how many.  close()'s
 * wake-up (a NOP without a slot) only ends the wait.
 *
 * Only those there on entry: a step queued from here may complete inside
 * io_uring_submit() (a read of a hole), and taking its completion too would
 * chain a long request's steps without advancing the head until the
 * completion queue overflowed (nothing here flushes that: a stall).  It is
 * left for the next round (the eventfd signalled it): the ring holds at
 * most two completions per slot, i.e. its 2 * FILE_QUEUE_DEPTH entries.
 */
static unsigned reap_locked(struct file_dev *f, struct blk_req **fin)
{
	unsigned nfin = 0, seen = 0, ready = io_uring_cq_ready(&f->ring), head;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&f->ring, head, cqe)
	{
		if (seen == ready)
			break;
		struct fslot *s = io_uring_cqe_get_data(cqe);
		seen++;
		if (!s)
			continue;
		if (!step_done(f, s, cqe->res))
			continue;
		struct blk_req *r = s->req;
		free(s->rest);
		s->req = NULL;
		s->next_free = f->free;
		f->free = s;
		fin[nfin++] = r;
	}
	io_uring_cq_advance(&f->ring, seen);
	f->inflight -= nfin;
	if (nfin && !f->inflight)
		pthread_cond_broadcast(&f->idle);
	return nfin;
}

/* Wait for a completion (f->lock held only by the caller that polls). */
static int wait_cqe(struct file_dev *f)
{
	struct io_uring_cqe *cqe;
	int rc = io_uring_wait_cqe(&f->ring, &cqe);
	if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
		log_error("block: io_uring_wait_cqe: %s", strerror(-rc));
	return rc;
}

static void *completion_thread(void *arg)
{
	struct file_dev *f = arg;
	struct blk_req *fin[FILE_QUEUE_DEPTH];
	blk_name_thread("blk-file");
	pthread_mutex_lock(&f->lock);
	while (!f->stopping) {
		if (f->pollers) {
			pthread_cond_wait(&f->wake, &f->lock);
			continue;
		}
		pthread_mutex_unlock(&f->lock);
		/*
		 * Wait on the eventfd the ring signals with every completion, not
		 * in io_uring_enter(): liburing's wait peeks at the completion
		 * queue without our lock, and a poller may be advancing it.
		 */
		struct pollfd pfd = { .fd = f->efd, .events = POLLIN };
		int rc = poll(&pfd, 1, -1);
		/*
		 * The lock also orders what the submitter wrote to a slot before
		 * what this thread reads (the ring does too, but thread checkers
		 * cannot see that).
		 */
		pthread_mutex_lock(&f->lock);
		/* A poller that attached meanwhile reaps from now on: leave it the eventfd's count. */
		if (rc < 0 || f->pollers)
			continue;
		uint64_t n;
		(void)!read(f->efd, &n, sizeof(n)); /* before reaping, as file_poll() does */
		unsigned nfin = reap_locked(f, fin);
		pthread_mutex_unlock(&f->lock);
		for (unsigned i = 0; i < nfin; i++)
			blk_req_done(fin[i]);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static int file_poll(struct blk_dev *d)
{
	struct file_dev *f = to_file(d);
	struct blk_req *fin[FILE_QUEUE_DEPTH];
	uint64_t n;
	(void)!read(f->efd, &n, sizeof(n)); /* before reaping: a completion after it signals again */
	/* Under the lock: the CQ head is advanced by whichever poller reaps (liburing reads it plainly). */
	pthread_mutex_lock(&f->lock);
	unsigned nfin = reap_locked(f, fin);
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < nfin; i++)
		blk_req_done(fin[i]);
	return (int)nfin;
}

/*
 * Lock-free peek at the completion queue.  The tail is the kernel's
 * (acquire: the entries before it are written); the head is ours, advanced
 * by whichever poller reaps, with liburing's release store, so a relaxed
 * atomic load of it is enough for a hint: a stale value only means one
 * more or one fewer turn of the caller's spin.
 */
static bool file_pending(struct blk_dev *d)
{
	struct file_dev *f = to_file(d);
	unsigned tail = __atomic_load_n(f->ring.cq.ktail, __ATOMIC_ACQUIRE);
	return tail != __atomic_load_n(f->ring.cq.khead, __ATOMIC_RELAXED);
}

static int file_completion_fd(struct blk_dev *d)
{
	return to_file(d)->efd;
}

static void file_poller(struct blk_dev *d, bool attach)
{
	struct file_dev *f = to_file(d);
	pthread_mutex_lock(&f->lock);
	if (attach) {
		f->pollers++;
	} else if (f->pollers && !--f->pollers) {
		pthread_cond_signal(&f->wake); /* its wait_cqe() finds what came meanwhile */
	}
	pthread_mutex_unlock(&f->lock);
}

/* Before blk_start(): the submitter waits for its own request (and completes whatever else finishes). */
static void poll_until_done(struct file_dev *f, struct blk_req *r)
{
	struct blk_req *fin[FILE_QUEUE_DEPTH];
	unsigned nfin = 0;
	bool mine = false;
	while (!mine) {
		if (wait_cqe(f) < 0)
			continue;
		unsigned n = reap_locked(f, fin + nfin);
		for (unsigned i = nfin; i < nfin + n; i++)
			mine |= fin[i] == r;
		nfin += n;
	}
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < nfin; i++)
		blk_req_done(fin[i]);
}

static int file_start(struct blk_dev *d)
{
	struct file_dev *f = to_file(d);
	pthread_mutex_lock(&f->lock);
	int r = f->threaded ? 0 : -pthread_create(&f->thread, NULL, completion_thread, f);
	if (!r)
		f->threaded = true;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static bool iov_aligned(const struct blk_req *r, uint32_t a)
{
	for (unsigned i = 0; i < r->iovcnt; i++)
		if ((uintptr_t)r->iov[i].iov_base % a || r->iov[i].iov_len % a)
			return false;
	return true;
}

static int file_submit(struct blk_dev *d, struct blk_req *r)
{
	struct file_dev *f = to_file(d);
	int rc = blk_req_begin(d, r);
	if (rc)
		return rc < 0 ? rc : 0;
	bool bouncing = f->direct && (r->op == BLK_READ || r->op == BLK_WRITE) && !iov_aligned(r, f->mem_align);
	pthread_mutex_lock(&f->lock);
	struct fslot *s = f->free;
	if (!s) {
		pthread_mutex_unlock(&f->lock);
		return -EAGAIN;
	}
	/* A slot's bounce buffer comes with its first misaligned request (at most once per slot: under the lock). */
	if (bouncing && !s->bounce) {
		if (posix_memalign(&s->bounce, MAX(f->mem_align, 4096u), BLK_BOUNCE_CHUNK)) {
			s->bounce = NULL;
			pthread_mutex_unlock(&f->lock);
			return -ENOMEM;
		}
		f->bounce_bytes += BLK_BOUNCE_CHUNK;
	}
	f->free = s->next_free;
	f->inflight++;
	void *bounce = s->bounce;
	*s = (struct fslot){ .req = r, .bounce = bounce, .bouncing = bouncing };
	s->zero_write = r->op == BLK_WRITE_ZEROES && atomic_load(&f->no_zero_range);
	if (queue_step(f, s)) {
		s->next_free = f->free;
		f->free = s;
		f->inflight--;
		pthread_mutex_unlock(&f->lock);
		return -EAGAIN;
	}
	if (!f->threaded) {
		poll_until_done(f, r); /* drops the lock */
		return 0;
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static void file_close(struct blk_dev *d)
{
	struct file_dev *f = to_file(d);
	pthread_mutex_lock(&f->lock);
	if (f->pollers) {
		log_error("block: %s closed with %u pollers attached", d->layer, f->pollers);
		f->pollers = 0;
	}
	pthread_cond_signal(&f->wake); /* a completion thread asleep for pollers reaps again */
	while (f->inflight)
		pthread_cond_wait(&f->idle, &f->lock);
	bool threaded = f->threaded;
	f->stopping = true;
	pthread_cond_signal(&f->wake);
	if (threaded) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		io_uring_submit(&f->ring);
	}
	pthread_mutex_unlock(&f->lock);
	if (threaded)
		pthread_join(f->thread, NULL);
	io_uring_queue_exit(&f->ring);
	close(f->fd);
	close(f->efd);
	free(f->zeroes);
	for (unsigned i = 0; i < FILE_QUEUE_DEPTH; i++)
		free(f->slots[i].bounce);
	pthread_cond_destroy(&f->wake);
	pthread_cond_destroy(&f->idle);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static const struct blk_ops file_ops = {
	.submit = file_submit,
	.close = file_close,
	.start = file_start,
	.poll = file_poll,
	.pending = file_pending,
	.completion_fd = file_completion_fd,
	.poller = file_poller,
};

uint64_t blk_file_bounce_bytes(struct blk_dev *d)
{
	while (d && d->ops != &file_ops)
		d = d->lower;
	if (!d)
		return 0;
	struct file_dev *f = to_file(d);
	pthread_mutex_lock(&f->lock);
	uint64_t n = f->bounce_bytes;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* Block size and O_DIRECT memory alignment of an open image.  0 or -errno with err set. */
static int probe_geometry(struct file_dev *f, const char *path, const struct stat *st, char *err, size_t errlen)
{
	f->dev.block_size = 512;
	f->mem_align = 4096;
	if (S_ISBLK(st->st_mode)) {
		uint64_t bytes;
		int lbs;
		if (ioctl(f->fd, BLKGETSIZE64, &bytes) < 0 || ioctl(f->fd, BLKSSZGET, &lbs) < 0) {
			snprintf(err, errlen, "%s: reading the block device's size: %s", path, strerror(errno));
			return -errno;
		}
		if (lbs != 512 && lbs != 4096) {
			snprintf(err, errlen, "%s: logical block size %d is not supported (512 or 4096)", path, lbs);
			return -EINVAL;
		}
		f->dev.size = bytes;
		f->dev.block_size = (uint32_t)lbs;
		f->mem_align = (uint32_t)lbs;
		f->dev.discard_granularity = (uint32_t)lbs;
	} else {
		f->dev.size = (uint64_t)st->st_size;
		f->dev.discard_granularity = st->st_blksize > 0 ? (uint32_t)st->st_blksize : 4096;
	}
#ifdef STATX_DIOALIGN
	if (f->direct) {
		struct statx sx;
		if (statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
			if (!sx.stx_dio_offset_align) {
				snprintf(err, errlen,
					 "%s: the file system does not support O_DIRECT here (cache=none); use "
					 "cache=writeback or cache=writethrough",
					 path);
				return -EINVAL;
			}
			if (sx.stx_dio_offset_align > 4096) {
				snprintf(err, errlen, "%s: O_DIRECT needs %u-byte alignment; keel supports up to 4096",
					 path, sx.stx_dio_offset_align);
				return -EINVAL;
			}
			f->dev.block_size = MAX(f->dev.block_size, sx.stx_dio_offset_align);
			f->mem_align = MAX(sx.stx_dio_mem_align, 1u);
		}
	}
#endif
	if (f->dev.size % f->dev.block_size) {
		snprintf(err, errlen, "%s: its size, %llu bytes, is not a multiple of its %u-byte blocks", path,
			 (unsigned long long)f->dev.size, f->dev.block_size);
		return -EINVAL;
	}
	if (!f->dev.size) {
		snprintf(err, errlen, "%s: the image is empty", path);
		return -EINVAL;
	}
	return 0;
}

/*
 * The ring is created disabled and limited to the operations this layer
 * submits before it is enabled: io_uring requests bypass seccomp, so a
 * compromised keel must not be able to turn the ring into openat() or
 * connect().  Restrictions cannot be lifted once the ring runs.
 */
static int open_ring(struct file_dev *f)
{
	int r = io_uring_queue_init(FILE_QUEUE_DEPTH, &f->ring, IORING_SETUP_R_DISABLED);
	if (r < 0)
		return r;
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		r = -errno;
		io_uring_queue_exit(&f->ring);
		return r;
	}
	static const uint8_t ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE,
				       IORING_OP_NOP };
	struct io_uring_restriction res[ARRAY_SIZE(ops)];
	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ops[i];
	}
	/* Debian's liburing 2.3 declares but does not export the wrappers: register directly. */
	r = io_uring_register((unsigned)f->ring.ring_fd, IORING_REGISTER_EVENTFD, &f->efd, 1);
	if (!r)
		r = io_uring_register((unsigned)f->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, res, ARRAY_SIZE(res));
	if (!r)
		r = io_uring_register((unsigned)f->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (r < 0) {
		io_uring_queue_exit(&f->ring);
		close(f->efd);
	}
	return r;
}

int blk_file_open(const char *path, bool readonly, bool direct, struct blk_dev **out, char *err, size_t errlen)
{
	int r;
	struct stat st;
	*out = NULL;
	struct file_dev *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	f->direct = direct;
	f->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (f->fd < 0) {
		r = -errno;
		if (direct && errno == EINVAL)
			snprintf(err, errlen,
				 "%s: the file system does not support O_DIRECT (cache=none); use cache=writeback or "
				 "cache=writethrough",
				 path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto free_dev;
	}
	if (fstat(f->fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file or block device", path);
		r = -EINVAL;
		goto close_fd;
	}
	r = probe_geometry(f, path, &st, err, errlen);
	if (r)
		goto close_fd;
	if (posix_memalign(&f->zeroes, 4096, ZERO_BUF_SIZE)) {
		snprintf(err, errlen, "%s: out of memory", path);
		r = -ENOMEM;
		goto close_fd;
	}
	memset(f->zeroes, 0, ZERO_BUF_SIZE);
	r = open_ring(f);
	if (r < 0) {
		snprintf(err, errlen, "%s: io_uring is not available (%s)", path, strerror(-r));
		goto free_zeroes;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->idle, NULL);
	pthread_cond_init(&f->wake, NULL);
	for (int i = FILE_QUEUE_DEPTH - 1; i >= 0; i--) {
		f->slots[i].next_free = f->free;
		f->free = &f->slots[i];
	}
	f->dev = (struct blk_dev){
		.ops = &file_ops, .layer = "file", .size = f->dev.size, .block_size = f->dev.block_size,
		.queue_depth = FILE_QUEUE_DEPTH, .read_only = readonly, .volatile_cache = true,
		.can_discard = !readonly, .can_write_zeroes = !readonly,
		.discard_granularity = f->dev.discard_granularity,
	};
	*out = &f->dev;
	return 0;

free_zeroes:
	free(f->zeroes);
close_fd:
	close(f->fd);
free_dev:
	free(f);
	return r;
}
