// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the block-stack unit tests (test_block_*.c): temporary
 * images, a concurrent random workload checked against a shadow copy,
 * opening and starting a file or cache layer, a completion gate that stalls
 * done(), MBR entries, and each test's setup (including whether io_uring
 * works here, without which the tests over a real file are skipped).
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "unit.h"
#include "base/util.h"

static char tmpdir[256];
static bool have_uring = true;
static char uring_why[256];

/* A temporary image of size bytes (sparse); the caller unlinks it. */
static inline void tmp_image(char *path, size_t n, uint64_t size)
{
	snprintf(path, n, "%s/keel-blk-XXXXXX", tmpdir);
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		abort();
	close(fd);
}

static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- a concurrent random workload checked against a shadow copy --------- */

#define W_SLOTS 256
#define W_MAXLEN (256 * 1024)

struct wreq {
	struct blk_req req;
	struct iovec iov[8];
	uint8_t *buf, *expect;
	struct work *w;
	uint64_t seq;
	atomic_int completions;
	bool busy;
};

struct work {
	struct blk_dev *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *shadow;
	struct wreq slots[W_SLOTS];
	unsigned inflight, qd;
	uint64_t submitted, completed, eagain, bad_eagain, bad_data, bad_status, ooo, last_seq_done;
	bool discard_zeroes; /* a discard reads back as zeroes */
	bool no_discard;
	bool fua_only_writes;
	uint64_t limit; /* offsets in [0, limit) */
};

static inline void work_done(struct blk_req *r)
{
	struct wreq *q = (struct wreq *)r;
	struct work *w = q->w;
	atomic_fetch_add(&q->completions, 1);
	pthread_mutex_lock(&w->lock);
	if (r->status)
		w->bad_status++;
	else if (r->op == BLK_READ && memcmp(q->buf, q->expect, r->len))
		w->bad_data++;
	if (q->seq < w->last_seq_done)
		w->ooo++;
	w->last_seq_done = q->seq;
	w->completed++;
	w->inflight--;
	q->busy = false;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static inline bool overlaps_inflight(struct work *w, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < W_SLOTS; i++) {
		struct wreq *q = &w->slots[i];
		if (q->busy && q->req.op != BLK_FLUSH && off < q->req.offset + q->req.len && q->req.offset < off + len)
			return true;
	}
	return false;
}

/* Split [buf, buf+len) into 1..8 iovecs at block boundaries... or anywhere (the layers must not care). */
static inline unsigned split(struct wreq *q, uint64_t len, uint64_t *s)
{
	unsigned n = 1 + (unsigned)(rnd(s) % 8);
	size_t done = 0;
	unsigned k = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		size_t piece = i == n - 1 ? len - done : (size_t)(rnd(s) % (len - done + 1));
		if (!piece)
			continue;
		q->iov[k++] = (struct iovec){ .iov_base = q->buf + done, .iov_len = piece };
		done += piece;
	}
	if (done < len)
		q->iov[k++] = (struct iovec){ .iov_base = q->buf + done, .iov_len = len - done };
	return k;
}

static inline void work_init(struct work *w, struct blk_dev *d, unsigned qd)
{
	memset(w, 0, sizeof(*w));
	w->d = d;
	w->qd = qd;
	w->limit = d->size;
	w->discard_zeroes = true;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->shadow = calloc(1, d->size);
	for (unsigned i = 0; i < W_SLOTS; i++) {
		w->slots[i].buf = malloc(W_MAXLEN);
		w->slots[i].expect = malloc(W_MAXLEN);
		w->slots[i].w = w;
	}
}

static inline void work_fini(struct work *w)
{
	for (unsigned i = 0; i < W_SLOTS; i++) {
		free(w->slots[i].buf);
		free(w->slots[i].expect);
	}
	free(w->shadow);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

static inline void work_wait_idle(struct work *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->inflight)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

/* n random requests, up to w->qd in flight; mostly small, some large; no two in flight overlap. */
static inline void work_run(struct work *w, unsigned n, uint64_t seed)
{
	uint64_t s = seed | 1;
	uint32_t bs = w->d->block_size;
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_lock(&w->lock);
		while (w->inflight >= w->qd)
			pthread_cond_wait(&w->cond, &w->lock);
		struct wreq *q = NULL;
		for (unsigned k = 0; k < W_SLOTS && !q; k++)
			if (!w->slots[k].busy)
				q = &w->slots[k];
		uint64_t kind = rnd(&s) % 100, off, len;
		uint64_t blocks = w->limit / bs;
		for (;;) {
			uint64_t maxb = rnd(&s) % 8 ? 16 : W_MAXLEN / bs;
			len = (1 + rnd(&s) % maxb) * bs;
			if (len > w->limit)
				len = bs;
			/* Cluster half the requests in a small hot area, so that caches hit. */
			uint64_t span = rnd(&s) % 2 ? MIN(blocks, 512) : blocks;
			off = rnd(&s) % (span - len / bs + 1) * bs;
			if (!overlaps_inflight(w, off, len))
				break;
		}
		struct blk_req *r = &q->req;
		*r = (struct blk_req){ .offset = off, .len = len, .done = work_done };
		if (kind < 45) {
			r->op = BLK_READ;
			memcpy(q->expect, w->shadow + off, len);
			memset(q->buf, 0xee, len);
		} else if (kind < 85 || w->no_discard) {
			r->op = BLK_WRITE;
			for (uint64_t b = 0; b < len; b += 8) {
				uint64_t v = rnd(&s);
				memcpy(q->buf + b, &v, 8);
			}
			memcpy(w->shadow + off, q->buf, len);
			if (w->fua_only_writes || rnd(&s) % 10 == 0)
				r->flags = BLK_FUA;
		} else if (kind < 90) {
			r->op = BLK_FLUSH;
			r->offset = r->len = 0;
		} else if (kind < 95) {
			r->op = BLK_DISCARD;
			if (w->discard_zeroes)
				memset(w->shadow + off, 0, len);
		} else {
			r->op = BLK_WRITE_ZEROES;
			r->flags = rnd(&s) % 2 ? BLK_UNMAP : 0;
			memset(w->shadow + off, 0, len);
		}
		if (r->op == BLK_DISCARD && !w->discard_zeroes)
			r->op = BLK_WRITE_ZEROES, memset(w->shadow + off, 0, len);
		if (r->op == BLK_READ || r->op == BLK_WRITE) {
			r->iovcnt = split(q, len, &s);
			r->iov = q->iov;
		}
		q->busy = true;
		q->seq = w->submitted++;
		atomic_store(&q->completions, 0);
		/*
		 * Others in flight before this submit: only completions make it
		 * smaller meanwhile, and it counts requests whose done() has not
		 * run yet, so a layer saying -EAGAIN must have had its queue
		 * depth's worth among them.
		 */
		unsigned before = w->inflight++;
		pthread_mutex_unlock(&w->lock);
		int rc;
		while ((rc = blk_submit(w->d, r)) == -EAGAIN) {
			pthread_mutex_lock(&w->lock);
			w->eagain++;
			if (before < w->d->queue_depth)
				w->bad_eagain++;
			uint64_t seen = w->completed;
			while (w->completed == seen && w->inflight > 1)
				pthread_cond_wait(&w->cond, &w->lock);
			before = w->inflight - 1;
			pthread_mutex_unlock(&w->lock);
		}
		if (rc) {
			pthread_mutex_lock(&w->lock);
			w->bad_status++;
			w->inflight--;
			q->busy = false;
			pthread_mutex_unlock(&w->lock);
		}
	}
	work_wait_idle(w);
	for (unsigned i = 0; i < W_SLOTS; i++)
		CHECK(atomic_load(&w->slots[i].completions) <= 1);
}

/* Read the whole device back and compare with the shadow. */
static inline bool work_verify_all(struct work *w)
{
	uint8_t *buf = malloc(1 * MiB);
	bool ok = true;
	for (uint64_t off = 0; off < w->d->size && ok; off += 1 * MiB) {
		uint64_t len = MIN(1 * MiB, w->d->size - off);
		ok = blk_io_sync(w->d, BLK_READ, 0, off, buf, len) == 0 && !memcmp(buf, w->shadow + off, len);
	}
	free(buf);
	return ok;
}

static inline void check_work(struct work *w, unsigned n)
{
	CHECK_EQ(w->submitted, n);
	CHECK_EQ(w->completed, n);
	CHECK_EQ(w->bad_status, 0);
	CHECK_EQ(w->bad_data, 0);
	CHECK_EQ(w->bad_eagain, 0);
	CHECK(work_verify_all(w));
}

/* Compare the image file with the shadow (after close). */
static inline bool file_matches(const char *path, const uint8_t *shadow, uint64_t off, uint64_t size)
{
	int fd = open(path, O_RDONLY);
	uint8_t *buf = malloc(size);
	bool ok = fd >= 0 && pread_full(fd, buf, size, off) == 0 && !memcmp(buf, shadow, size);
	free(buf);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ---- opening layers ----------------------------------------------------- */

static inline struct blk_dev *open_file(const char *path, bool ro, bool direct)
{
	struct blk_dev *d = NULL;
	char err[256];
	int r = blk_file_open(path, ro, direct, &d, err, sizeof(err));
	if (r) {
		fprintf(stderr, "blk_file_open: %s\n", err);
		return NULL;
	}
	CHECK_EQ(blk_start(d), 0);
	return d;
}

static inline struct blk_dev *open_cache(struct blk_dev *lower, enum blk_cache_mode mode, uint64_t size)
{
	struct blk_dev *d = NULL;
	char err[256];
	if (blk_cache_open(lower, mode, size, &d, err, sizeof(err))) {
		fprintf(stderr, "blk_cache_open: %s\n", err);
		return NULL;
	}
	CHECK_EQ(blk_start(d), 0);
	return d;
}

/* ---- a completion gate -------------------------------------------------- */

/* done() blocks until the gate opens: the completion thread stalls, the queue fills up. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	unsigned entered, done;
};
static struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0 };
static atomic_int gate_counts[512];

static inline void gate_done(struct blk_req *r)
{
	atomic_fetch_add(&gate_counts[r->tag], 1);
	pthread_mutex_lock(&gate.lock);
	gate.entered++;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.lock);
	gate.done++;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* ---- partition tables --------------------------------------------------- */

static inline void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline void mbr_entry(uint8_t *sec, int i, uint8_t status, uint8_t type, uint32_t lba, uint32_t count)
{
	uint8_t *e = sec + 446 + 16 * i;
	e[0] = status;
	e[4] = type;
	put32(e + 8, lba);
	put32(e + 12, count);
	sec[510] = 0x55;
	sec[511] = 0xaa;
}

/* ---- setup -------------------------------------------------------------- */

/* First thing in main(): the temporary directory, quiet logging, and whether io_uring works. */
static inline void blkt_init(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s", t && *t ? t : "/tmp");
	log_level = LOG_QUIET;

	/* io_uring may be unavailable (old kernel, a container's seccomp profile): say so. */
	char path[300];
	struct blk_dev *d = NULL;
	tmp_image(path, sizeof(path), 1 * MiB);
	if (blk_file_open(path, false, false, &d, uring_why, sizeof(uring_why)))
		have_uring = false;
	else
		blk_close(d);
	unlink(path);
}

/* Without io_uring: report each of the tests that need the file layer as skipped, with the reason. */
static inline void blkt_skip_uring(const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("SKIP block/%s: %s\n", names[i], uring_why);
}
