// SPDX-License-Identifier: MIT
/*
 * The block stack's file layer (io_uring) alone: reads, writes, discard and
 * write-zeroes on a sparse image, many concurrent requests checked against a
 * shadow copy, a bounded queue when done() stalls, an image that shrinks,
 * tmpfs without FALLOC_FL_ZERO_RANGE, O_DIRECT (cache=none), misaligned
 * O_DIRECT requests bounced in chunks with bounded memory, and pollers
 * (threads that reap completions themselves, with the completion thread
 * standing aside while they are attached).
 */
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "blktest.h"
#include "block/block.h"
#include "unit.h"
#include "base/util.h"

static void file_basic(void)
{
	char path[300], err[256];
	tmp_image(path, sizeof(path), 4 * MiB);
	struct blk_dev *d = open_file(path, false, false), *d2 = NULL;
	CHECK(d);
	if (!d)
		goto out;
	CHECK_EQ(d->size, 4 * MiB);
	CHECK_EQ(d->block_size, 512);
	CHECK(d->volatile_cache);
	CHECK(!strcmp(d->layer, "file"));
	uint8_t *a = malloc(64 * KiB), *b = malloc(64 * KiB);
	memset(a, 0x5a, 64 * KiB);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 8192, a, 64 * KiB), 0);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, BLK_FUA, 1 * MiB, a, 4096), 0);
	CHECK_EQ(blk_io_sync(d, BLK_FLUSH, 0, 0, NULL, 0), 0);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 8192, b, 64 * KiB), 0);
	CHECK(!memcmp(a, b, 64 * KiB));
	/* A sparse file's holes read as zeroes. */
	memset(b, 1, 4096);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 2 * MiB, b, 4096), 0);
	CHECK(b[0] == 0 && !memcmp(b, b + 1, 4095));
	/* Discard and write-zeroes read back as zeroes; so does write-zeroes with UNMAP. */
	CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 8192, NULL, 8192), 0);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, 16384, NULL, 4096), 0);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, BLK_UNMAP, 20480, NULL, 8192), 0);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 8192, b, 64 * KiB), 0);
	/* [8192, 28672) is zero now: 20480 bytes from the start of what was read. */
	for (size_t i = 0; i < 64 * KiB; i++)
		if (b[i] != (i < 20480 ? 0 : 0x5a)) {
			CHECK(!"discard/write-zeroes contents");
			break;
		}
	/* Refusals. */
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 100, b, 512), -EINVAL);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 4 * MiB, b, 512), -EINVAL);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 500), -EINVAL);
	CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 4 * MiB - 512, NULL, 1024), -EINVAL);
	blk_close(d);

	d = open_file(path, true, false);
	CHECK(d && d->read_only);
	if (d) {
		CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 0, a, 512), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, 0, NULL, 512), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 0, NULL, 512), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 1 * MiB, b, 4096), 0);
		CHECK(!memcmp(a, b, 4096));
		blk_close(d);
	}
	/* A missing file: one line naming it. */
	char missing[320];
	snprintf(missing, sizeof(missing), "%s/no-such-image", tmpdir);
	CHECK_EQ(blk_file_open(missing, false, false, &d2, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no-such-image: No such file or directory"));
	free(a);
	free(b);
out:
	unlink(path);
}

static void file_random(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 16 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	static struct work w;
	work_init(&w, d, 200); /* more than the queue depth: -EAGAIN must come, and only then */
	work_run(&w, 6000, 1);
	check_work(&w, 6000);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 0, 16 * MiB));
	work_fini(&w);
out:
	unlink(path);
}


static void file_backpressure(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 4 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	unsigned qd = d->queue_depth, accepted = 0;
	static struct blk_req reqs[512];
	static struct iovec iov[512];
	static uint8_t bufs[512][512];
	gate.open = false;
	gate.entered = gate.done = 0;
	memset(gate_counts, 0, sizeof(gate_counts));
	for (unsigned i = 0; i < qd; i++) {
		iov[i] = (struct iovec){ bufs[i], 512 };
		reqs[i] = (struct blk_req){ .op = BLK_READ, .tag = i, .offset = (uint64_t)i * 512, .len = 512,
					    .iov = &iov[i], .iovcnt = 1, .done = gate_done };
		CHECK_EQ(blk_submit(d, &reqs[i]), 0);
		accepted++;
	}
	/* Wait until the completion thread is stuck in a done(): no more slots come back. */
	pthread_mutex_lock(&gate.lock);
	while (!gate.entered)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	unsigned extra = 0;
	int rc = 0;
	for (unsigned i = qd; i < 512 && rc == 0; i++) {
		iov[i] = (struct iovec){ bufs[i], 512 };
		reqs[i] = (struct blk_req){ .op = BLK_READ, .tag = i, .offset = (uint64_t)(i % qd) * 512, .len = 512,
					    .iov = &iov[i], .iovcnt = 1, .done = gate_done };
		rc = blk_submit(d, &reqs[i]);
		if (!rc)
			extra++;
	}
	/*
	 * The queue is bounded: with done() stalled, only the slots of the
	 * requests reaped before it (at most a queue's worth) came back.
	 */
	CHECK_EQ(rc, -EAGAIN);
	CHECK(extra <= qd);
	pthread_mutex_lock(&gate.lock);
	accepted += extra;
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	while (gate.done < accepted)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	for (unsigned i = 0; i < accepted; i++)
		CHECK_EQ(atomic_load(&gate_counts[i]), 1);
	blk_close(d);
out:
	unlink(path);
}

/* The image shrinks under the layer: reads past its end read zeroes, short reads are finished. */
static void file_eof(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 1 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	uint8_t *a = malloc(128 * KiB), *b = malloc(128 * KiB);
	memset(a, 0x33, 128 * KiB);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 0, a, 128 * KiB), 0);
	CHECK_EQ(truncate(path, 100000), 0);
	memset(b, 0xff, 128 * KiB);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 128 * KiB), 0);
	CHECK(!memcmp(b, a, 100000));
	for (size_t i = 100000; i < 128 * KiB; i++)
		if (b[i]) {
			CHECK(!"zeroes past the end of the file");
			break;
		}
	blk_close(d);
	free(a);
	free(b);
out:
	unlink(path);
}

/*
 * On tmpfs (/dev/shm): no FALLOC_FL_ZERO_RANGE, so write-zeroes writes
 * zeroes (in 1 MiB steps); and, on many kernels, no O_DIRECT, refused with a
 * clear message.
 */
static char shm_path[300];
static void file_tmpfs_body(void)
{
	char err[256];
	struct blk_dev *d = open_file(shm_path, false, false);
	CHECK(d);
	if (!d)
		return;
	uint8_t *a = malloc(4 * MiB), *b = malloc(4 * MiB);
	memset(a, 0x6c, 4 * MiB);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 0, a, 4 * MiB), 0);
	for (int i = 0; i < 2; i++) { /* the second time the layer knows ZERO_RANGE is missing */
		uint64_t off = 512 + (uint64_t)i * 4096, len = 3 * MiB + 1024;
		CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, off, NULL, len), 0);
		memset(a + off, 0, len);
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 4 * MiB), 0);
		CHECK(!memcmp(a, b, 4 * MiB));
	}
	CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 8192, NULL, 65536), 0);
	memset(a + 8192, 0, 65536);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 4 * MiB), 0);
	CHECK(!memcmp(a, b, 4 * MiB));
	blk_close(d);
	struct blk_dev *x = NULL;
	int r = blk_file_open(shm_path, false, true, &x, err, sizeof(err));
	if (r) {
		CHECK_EQ(r, -EINVAL);
		CHECK(strstr(err, "does not support O_DIRECT (cache=none); use cache=writeback or cache=writethrough"));
	} else {
		blk_close(x); /* this kernel's tmpfs does O_DIRECT */
	}
	free(a);
	free(b);
}

static void file_tmpfs(void)
{
	snprintf(shm_path, sizeof(shm_path), "/dev/shm/keel-blk-XXXXXX");
	int fd = mkstemp(shm_path);
	if (fd < 0 || ftruncate(fd, 8 * MiB) < 0) {
		SKIP("block", "file_tmpfs", "cannot create a file in /dev/shm");
		if (fd >= 0)
			unlink(shm_path);
		return;
	}
	close(fd);
	unit_run("block", "file_tmpfs", file_tmpfs_body);
	unlink(shm_path);
}

/* An image in /var/tmp for O_DIRECT (tmpfs may refuse it); false, the test reported skipped, where there is none. */
static bool direct_image(const char *name, char *path, size_t n, uint64_t size)
{
	char err[256];
	snprintf(path, n, "/var/tmp/keel-blk-direct-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		printf("SKIP block/%s: cannot create a file in /var/tmp\n", name);
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return false;
	}
	close(fd);
	struct blk_dev *d = NULL;
	int r = blk_file_open(path, false, true, &d, err, sizeof(err));
	if (r == -EINVAL && strstr(err, "O_DIRECT")) {
		printf("SKIP block/%s: %s\n", name, err);
		unlink(path);
		return false;
	}
	blk_close(d);
	return true;
}

/* ---- cache=none: misaligned buffers bounce in chunks, bounded memory -------- */

#define BSEG (36 * KiB)   /* segment length and the image's period: chunk boundaries fall inside segments */
#define BNSEG 126          /* segments per request (virtio-blk's SEG_MAX) */
#define BREQ_LEN ((uint64_t)BNSEG * BSEG)
#define BREGION (4 * BREQ_LEN) /* the image's patterned part */
#define BAUDIT_SEG (4 * MiB)

struct breq {
	struct blk_req req;
	struct iovec iov[BNSEG];
	atomic_int completions;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inflight, completed, failed;
} bq = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static void bq_done(struct blk_req *r)
{
	struct breq *q = (struct breq *)r;
	atomic_fetch_add(&q->completions, 1);
	pthread_mutex_lock(&bq.lock);
	bq.failed += r->status != 0;
	bq.completed++;
	bq.inflight--;
	pthread_cond_broadcast(&bq.cond);
	pthread_mutex_unlock(&bq.lock);
}

/* Submit q, waiting for a completion while the queue is full (-EAGAIN). */
static void bq_submit(struct blk_dev *d, struct breq *q)
{
	atomic_store(&q->completions, 0);
	q->req.done = bq_done;
	pthread_mutex_lock(&bq.lock);
	bq.inflight++;
	pthread_mutex_unlock(&bq.lock);
	int rc;
	while ((rc = blk_submit(d, &q->req)) == -EAGAIN) {
		pthread_mutex_lock(&bq.lock);
		unsigned seen = bq.completed;
		while (bq.completed == seen && bq.inflight > 1)
			pthread_cond_wait(&bq.cond, &bq.lock);
		pthread_mutex_unlock(&bq.lock);
	}
	if (rc) {
		pthread_mutex_lock(&bq.lock);
		bq.inflight--;
		bq.failed++;
		pthread_mutex_unlock(&bq.lock);
	}
}

static void bq_wait_idle(void)
{
	pthread_mutex_lock(&bq.lock);
	while (bq.inflight)
		pthread_cond_wait(&bq.cond, &bq.lock);
	pthread_mutex_unlock(&bq.lock);
}

/*
 * Resident bytes per byte of memory touched: ThreadSanitizer's shadow adds
 * about four (measured: 79 MiB of peak RSS for 15 MiB of bounce buffers);
 * ASan's eighth fits in the check's slack.
 */
#if defined(__SANITIZE_THREAD__)
#define RSS_PER_BYTE 6
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RSS_PER_BYTE 6
#endif
#endif
#ifndef RSS_PER_BYTE
#define RSS_PER_BYTE 1
#endif

static long peak_rss_kib(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return u.ru_maxrss;
}

/*
 * cache=none with buffers misaligned by one byte, as a hostile guest may
 * send them: the audit's request (126 segments of 4 MiB all at one 4 MiB
 * buffer, 504 MiB), then as many 4.4 MiB requests in flight as the queue
 * takes, reads and writes, many with 126 segments at the same memory.  The
 * image is one 36 KiB pattern repeated and every segment a multiple of it,
 * so whatever the order, each read segment and each written block must hold
 * the pattern: checked byte for byte.  The bounce memory stays within
 * queue_depth * BLK_BOUNCE_CHUNK (the layer's count, and the peak RSS, which
 * unbounded would have grown by the requests in flight: over 500 MiB).
 */
static char bounce_path[300];
static void file_direct_bounce_body(void)
{
	char err[256];
	struct blk_dev *d = NULL;
	CHECK_EQ(blk_file_open(bounce_path, false, true, &d, err, sizeof(err)), 0);
	if (!d)
		return;
	CHECK_EQ(blk_start(d), 0);
	static struct breq reqs[256];
	const unsigned nreq = ARRAY_SIZE(reqs);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	/* src and dst + 1: misaligned; src holds the pattern BNSEG times, dst a byte either side to check. */
	uint8_t *src = malloc(BREQ_LEN + 2), *dst = malloc(BREQ_LEN + 2), *audit = malloc(BAUDIT_SEG + 2);
	for (uint64_t i = 0; i < BSEG; i += 8) {
		uint64_t v = rnd(&seed);
		memcpy(src + 1 + i, &v, 8);
	}
	for (unsigned k = 1; k < BNSEG; k++)
		memcpy(src + 1 + (uint64_t)k * BSEG, src + 1, BSEG);
	memset(dst, 0xee, BREQ_LEN + 2);
	memset(audit, 0xee, BAUDIT_SEG + 2);
	long rss0 = peak_rss_kib();

	/* The audit's request, over the image while it is still a hole: zeroes in the one buffer. */
	struct breq *q = &reqs[0];
	for (unsigned k = 0; k < BNSEG; k++)
		q->iov[k] = (struct iovec){ audit + 1, BAUDIT_SEG };
	q->req = (struct blk_req){ .op = BLK_READ, .offset = 0, .len = (uint64_t)BNSEG * BAUDIT_SEG, .iov = q->iov,
				   .iovcnt = BNSEG };
	bq_submit(d, q);
	bq_wait_idle();
	CHECK_EQ(atomic_load(&q->completions), 1);
	CHECK(audit[0] == 0xee && audit[BAUDIT_SEG + 1] == 0xee);
	CHECK(audit[1] == 0 && !memcmp(audit + 1, audit + 2, BAUDIT_SEG - 1));

	/* The pattern over the region, by writes of four shapes, all from src + 1. */
	static const unsigned per_iov[] = { 1, BNSEG, 2, 9 }; /* segments per iovec */
	for (unsigned w = 0; w < 4; w++) {
		q = &reqs[w];
		unsigned n = 0;
		for (unsigned k = 0; k < BNSEG; k += per_iov[w])
			q->iov[n++] = (struct iovec){ src + 1, (size_t)per_iov[w] * BSEG };
		q->req = (struct blk_req){ .op = BLK_WRITE, .offset = w * BREQ_LEN, .len = BREQ_LEN, .iov = q->iov,
					   .iovcnt = n };
		bq_submit(d, q);
	}
	bq_wait_idle();

	/* The queue full of large misaligned requests: a third writes, the rest reads into dst. */
	size_t dst_len = 0; /* the longest read segment: dst + 1 up to there is read into */
	for (unsigned i = 0; i < nreq; i++) {
		q = &reqs[i];
		bool write = i % 3 == 0;
		uint8_t *buf = (write ? src : dst) + 1;
		unsigned n = 0;
		for (unsigned left = BNSEG; left;) {
			/* Every other request: the audit's shape, 126 segments at the same memory. */
			unsigned k = i % 2 ? 1 : 1 + (unsigned)(rnd(&seed) % left);
			q->iov[n++] = (struct iovec){ buf, (size_t)k * BSEG };
			left -= k;
			if (!write)
				dst_len = MAX(dst_len, (size_t)k * BSEG);
		}
		uint64_t off = rnd(&seed) % (BREGION / BSEG - BNSEG + 1) * BSEG;
		q->req = (struct blk_req){ .op = write ? BLK_WRITE : BLK_READ, .flags = write && i % 5 == 0 ? BLK_FUA : 0,
					   .offset = off, .len = BREQ_LEN, .iov = q->iov, .iovcnt = n };
		bq_submit(d, q);
	}
	bq_wait_idle();
	long rss1 = peak_rss_kib();
	uint64_t bounce = blk_file_bounce_bytes(d), bound = (uint64_t)d->queue_depth * BLK_BOUNCE_CHUNK;
	CHECK(bounce > 0);
	CHECK(bounce <= bound);
	CHECK_EQ(bounce % BLK_BOUNCE_CHUNK, 0);
	/* Unbounded, the audit's request alone added 504 MiB; bounded, at most the bounce buffers and some slack. */
	uint64_t grew = (uint64_t)MAX(rss1 - rss0, 0L) * KiB;
	if (grew > bound * RSS_PER_BYTE + 32 * MiB)
		fprintf(stderr, "file_direct_bounce: peak RSS grew by %llu KiB\n", (unsigned long long)grew / KiB);
	CHECK(grew <= bound * RSS_PER_BYTE + 32 * MiB);
	pthread_mutex_lock(&bq.lock);
	CHECK_EQ(bq.failed, 0);
	CHECK_EQ(bq.completed, 1 + 4 + nreq);
	pthread_mutex_unlock(&bq.lock);
	for (unsigned i = 0; i < nreq; i++)
		CHECK_EQ(atomic_load(&reqs[i].completions), 1);
	CHECK(dst[0] == 0xee && dst[dst_len + 1] == 0xee);
	CHECK(!memcmp(dst + 1, src + 1, dst_len));
	blk_close(d);

	/* The image: the pattern over the region, read without O_DIRECT. */
	int fd = open(bounce_path, O_RDONLY);
	uint8_t *buf = malloc(BREQ_LEN);
	bool same = fd >= 0;
	for (uint64_t off = 0; off < BREGION && same; off += BREQ_LEN)
		same = pread_full(fd, buf, BREQ_LEN, off) == 0 && !memcmp(buf, src + 1, BREQ_LEN);
	CHECK(same);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(src);
	free(dst);
	free(audit);
}

static void file_direct_bounce(void)
{
	if (!direct_image("file_direct_bounce", bounce_path, sizeof(bounce_path), (uint64_t)BNSEG * BAUDIT_SEG))
		return;
	unit_run("block", "file_direct_bounce", file_direct_bounce_body);
	unlink(bounce_path);
}

/* O_DIRECT (cache=none) with unaligned iovecs (the bounce path); /var/tmp, as tmpfs may refuse O_DIRECT. */
static char direct_path[300];
static void file_direct_body(void)
{
	char err[256];
	struct blk_dev *d = NULL;
	CHECK_EQ(blk_file_open(direct_path, false, true, &d, err, sizeof(err)), 0);
	if (!d)
		return;
	CHECK_EQ(blk_start(d), 0);
	CHECK(d->block_size == 512 || d->block_size == 4096);
	static struct work w;
	work_init(&w, d, 64);
	work_run(&w, 1500, 7);
	check_work(&w, 1500);
	blk_close(d);
	CHECK(file_matches(direct_path, w.shadow, 0, 4 * MiB));
	work_fini(&w);
}

static void file_direct(void)
{
	if (!direct_image("file_direct", direct_path, sizeof(direct_path), 4 * MiB))
		return;
	unit_run("block", "file_direct", file_direct_body);
	unlink(direct_path);
}

/* ---- pollers: the submitting threads reap (blk_poll) ------------------------- */

struct one_req {
	struct blk_req req;
	struct iovec iov;
	atomic_int done;
	pthread_t on; /* the thread done() ran on */
};

static void one_done(struct blk_req *r)
{
	struct one_req *o = (struct one_req *)r;
	o->on = pthread_self();
	atomic_fetch_add(&o->done, 1);
}

static void one_submit(struct blk_dev *d, struct one_req *o, void *buf)
{
	memset(o, 0, sizeof(*o));
	o->iov = (struct iovec){ buf, 4096 };
	o->req = (struct blk_req){ .op = BLK_READ, .offset = 8192, .len = 4096, .iov = &o->iov, .iovcnt = 1,
				   .done = one_done };
	CHECK_EQ(blk_submit(d, &o->req), 0);
}

/* Wait until the completion fd is readable (at most 5 s). */
static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 5000) == 1;
}

static void file_poll_attached(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 1 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	int fd = blk_completion_fd(d);
	CHECK(fd >= 0);
	void *buf = malloc(4096);
	static struct one_req o;
	/* Attached: the completion thread leaves the request to this thread. */
	blk_poller_attach(d, true);
	one_submit(d, &o, buf);
	usleep(100 * 1000);
	CHECK_EQ(atomic_load(&o.done), 0);
	int n = 0;
	for (int i = 0; i < 100 && !atomic_load(&o.done); i++)
		if (fd_readable(fd))
			n += blk_poll(d);
	CHECK_EQ(n, 1);
	CHECK_EQ(atomic_load(&o.done), 1);
	CHECK(pthread_equal(o.on, pthread_self()));
	CHECK_EQ(blk_poll(d), 0);
	/* Detached: the completion thread reaps again, including what is in flight as the last poller leaves. */
	one_submit(d, &o, buf);
	blk_poller_attach(d, false);
	for (int i = 0; i < 500 && !atomic_load(&o.done); i++)
		usleep(10 * 1000);
	CHECK_EQ(atomic_load(&o.done), 1);
	CHECK(!pthread_equal(o.on, pthread_self()));
	free(buf);
	blk_close(d);
out:
	unlink(path);
}

struct poller {
	struct blk_dev *d;
	atomic_bool stop;
	atomic_ulong reaped;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct pollfd pf = { .fd = blk_completion_fd(p->d), .events = POLLIN };
	while (!atomic_load(&p->stop))
		if (poll(&pf, 1, 20) == 1)
			atomic_fetch_add(&p->reaped, (unsigned long)blk_poll(p->d));
	return NULL;
}

static void *toggler_main(void *arg)
{
	struct poller *p = arg;
	while (!atomic_load(&p->stop)) {
		blk_poller_attach(p->d, false);
		usleep(200);
		blk_poller_attach(p->d, true);
		usleep(300);
	}
	return NULL;
}

/* Two polling threads, one poller leaving and coming back all the time, and the completion thread: each request completes once. */
static void file_poll_concurrent(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 16 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	static struct work w;
	static struct poller p, t;
	p = (struct poller){ .d = d };
	t = (struct poller){ .d = d };
	pthread_t th[3];
	blk_poller_attach(d, true);
	blk_poller_attach(d, true);
	pthread_create(&th[0], NULL, poller_main, &p);
	pthread_create(&th[1], NULL, poller_main, &p);
	pthread_create(&th[2], NULL, toggler_main, &t);
	work_init(&w, d, 64);
	work_run(&w, 4000, 3);
	work_wait_idle(&w);
	atomic_store(&t.stop, true);
	pthread_join(th[2], NULL);
	atomic_store(&p.stop, true);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	CHECK(atomic_load(&p.reaped) > 0);
	blk_poller_attach(d, false);
	blk_poller_attach(d, false);
	work_run(&w, 500, 4); /* the completion thread alone again */
	check_work(&w, 4500);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 0, 16 * MiB));
	work_fini(&w);
out:
	unlink(path);
}

int main(void)
{
	blkt_init();
	if (!have_uring) {
		static const char *const names[] = { "file_basic", "file_random", "file_backpressure",
						     "file_eof", "file_direct", "file_direct_bounce", "file_tmpfs",
						     "file_poll_attached", "file_poll_concurrent" };
		blkt_skip_uring(names, ARRAY_SIZE(names));
		UNIT_EXIT();
	}
	file_direct_bounce(); /* first: its peak-RSS check wants the others' memory not yet touched */
	RUN("block", file_basic);
	RUN("block", file_random);
	RUN("block", file_backpressure);
	RUN("block", file_eof);
	RUN("block", file_poll_attached);
	RUN("block", file_poll_concurrent);
	file_direct();
	file_tmpfs();
	UNIT_EXIT();
}
