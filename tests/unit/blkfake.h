// SPDX-License-Identifier: MIT
/*
 * A fake bottom layer for block-stack tests: a RAM disk that models a
 * volatile write cache and records what it is asked.
 *
 * Each 512-byte sector has a volatile copy (what reads see) and a durable
 * copy (what survives a power cut), each with a version (bumped by every
 * write).  A write lands in the volatile copy when it completes (and in the
 * durable one too with BLK_FUA); a flush makes durable what the volatile
 * copy held when the flush was submitted, sector by sector where that is
 * newer than what is durable already.
 *
 * Completion modes: FAKE_SYNC completes inside submit(); FAKE_THREAD
 * completes on its own thread in random order; FAKE_MANUAL holds requests
 * until the test releases them (fake_release*), which completes them on the
 * test's thread.  Every submit is logged.  on_flush (if set) runs when a
 * flush is submitted, with the fake's lock held, to check what is below.
 *
 * struct flag_req is a request that counts its completions and, with a fake
 * below, records what the fake had made durable when done() ran.
 */
#pragma once

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"

enum fake_mode { FAKE_SYNC, FAKE_THREAD, FAKE_MANUAL };

#define FAKE_LOG_MAX 65536
#define FAKE_PENDING_MAX 1024

struct fake_log {
	enum blk_op op;
	unsigned flags;
	uint64_t offset, len;
};

struct fake {
	struct blk_dev dev;
	enum fake_mode mode;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool stop, closed;
	uint8_t *vol, *dur;
	uint64_t *vver, *dver, version; /* per sector */
	uint8_t *flush_snap[FAKE_PENDING_MAX]; /* per pending flush: the volatile copy at submit, then versions */
	struct blk_req *pending[FAKE_PENDING_MAX];
	unsigned npending;
	struct fake_log log[FAKE_LOG_MAX];
	unsigned nlog;
	unsigned submits, completions;
	int fail_writes; /* complete writes with this status (0: succeed) */
	void (*on_flush)(struct fake *f);
	void *test;      /* the test's */
	unsigned seed;
};

static inline struct fake *fake_of(struct blk_dev *d)
{
	return (struct fake *)d;
}

/* Apply r's effect (called with the lock held); returns its status. */
static inline int fake_apply(struct fake *f, struct blk_req *r, uint8_t *snap)
{
	uint8_t *p = f->vol + r->offset;
	switch (r->op) {
	case BLK_READ: {
		size_t done = 0;
		for (unsigned i = 0; i < r->iovcnt; i++) {
			memcpy(r->iov[i].iov_base, p + done, r->iov[i].iov_len);
			done += r->iov[i].iov_len;
		}
		return 0;
	}
	case BLK_WRITE: {
		if (f->fail_writes)
			return f->fail_writes;
		size_t done = 0;
		for (unsigned i = 0; i < r->iovcnt; i++) {
			memcpy(p + done, r->iov[i].iov_base, r->iov[i].iov_len);
			done += r->iov[i].iov_len;
		}
		f->version++;
		for (uint64_t s = r->offset / 512; s < (r->offset + r->len) / 512; s++) {
			f->vver[s] = f->version;
			if (r->flags & BLK_FUA) {
				memcpy(f->dur + s * 512, f->vol + s * 512, 512);
				f->dver[s] = f->version;
			}
		}
		return 0;
	}
	case BLK_DISCARD:
	case BLK_WRITE_ZEROES:
		memset(p, 0, r->len);
		f->version++;
		for (uint64_t s = r->offset / 512; s < (r->offset + r->len) / 512; s++)
			f->vver[s] = f->version;
		return 0;
	case BLK_FLUSH:
		if (snap) {
			const uint64_t *ver = (const uint64_t *)(snap + f->dev.size);
			for (uint64_t s = 0; s < f->dev.size / 512; s++)
				if (ver[s] > f->dver[s]) {
					memcpy(f->dur + s * 512, snap + s * 512, 512);
					f->dver[s] = ver[s];
				}
			free(snap);
		}
		return 0;
	}
	return -EINVAL;
}

/* Complete pending[i] (lock held on entry, dropped around done()). */
static inline void fake_complete_locked(struct fake *f, unsigned i)
{
	struct blk_req *r = f->pending[i];
	uint8_t *snap = f->flush_snap[i];
	f->pending[i] = f->pending[f->npending - 1];
	f->flush_snap[i] = f->flush_snap[f->npending - 1];
	f->npending--;
	r->status = fake_apply(f, r, snap);
	f->completions++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	r->done(r);
	pthread_mutex_lock(&f->lock);
}

static inline void *fake_thread(void *arg)
{
	struct fake *f = arg;
	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		if (!f->npending) {
			pthread_cond_wait(&f->cond, &f->lock);
			continue;
		}
		/* Let a few gather now and then, so that the order really gets mixed. */
		if (f->npending < 4 && rand_r(&f->seed) % 4) {
			pthread_mutex_unlock(&f->lock);
			sched_yield();
			pthread_mutex_lock(&f->lock);
			if (!f->npending)
				continue;
		}
		fake_complete_locked(f, (unsigned)rand_r(&f->seed) % f->npending);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static inline int fake_submit(struct blk_dev *d, struct blk_req *r)
{
	struct fake *f = fake_of(d);
	int rc = blk_req_check(d, r);
	if (rc)
		return rc;
	pthread_mutex_lock(&f->lock);
	if (f->npending >= d->queue_depth) {
		pthread_mutex_unlock(&f->lock);
		return -EAGAIN;
	}
	if (f->nlog < FAKE_LOG_MAX)
		f->log[f->nlog++] = (struct fake_log){ .op = r->op, .flags = r->flags, .offset = r->offset, .len = r->len };
	f->submits++;
	uint8_t *snap = NULL;
	if (r->op == BLK_FLUSH) {
		if (f->on_flush)
			f->on_flush(f);
		snap = malloc(d->size + d->size / 512 * 8);
		memcpy(snap, f->vol, d->size);
		memcpy(snap + d->size, f->vver, d->size / 512 * 8);
	}
	unsigned i = f->npending++;
	f->pending[i] = r;
	f->flush_snap[i] = snap;
	if (f->mode == FAKE_SYNC)
		fake_complete_locked(f, i);
	else
		pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static inline void fake_close(struct blk_dev *d)
{
	struct fake *f = fake_of(d);
	pthread_mutex_lock(&f->lock);
	f->closed = true;
	f->stop = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (f->mode == FAKE_THREAD)
		pthread_join(f->thread, NULL);
	/* The fake outlives close so that tests can look at it; fake_free() frees it. */
}

static const struct blk_ops fake_ops = { .submit = fake_submit, .close = fake_close };

static inline struct fake *fake_new(uint64_t size, uint32_t bs, uint32_t qd, enum fake_mode mode)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->vol = calloc(1, size);
	f->dur = calloc(1, size);
	f->vver = calloc(size / 512, 8);
	f->dver = calloc(size / 512, 8);
	f->mode = mode;
	f->seed = 12345;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->dev = (struct blk_dev){ .ops = &fake_ops, .layer = "fake", .size = size, .block_size = bs,
				   .queue_depth = qd, .volatile_cache = true, .can_discard = true,
				   .can_write_zeroes = true, .discard_granularity = bs };
	if (mode == FAKE_THREAD)
		pthread_create(&f->thread, NULL, fake_thread, f);
	return f;
}

static inline void fake_free(struct fake *f)
{
	if (!f->closed)
		fake_close(&f->dev);
	for (unsigned i = 0; i < f->npending; i++)
		free(f->flush_snap[i]);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f->vol);
	free(f->dur);
	free(f->vver);
	free(f->dver);
	free(f);
}

/* Switch between FAKE_SYNC and FAKE_MANUAL (not to or from FAKE_THREAD). */
static inline void fake_set_mode(struct fake *f, enum fake_mode mode)
{
	pthread_mutex_lock(&f->lock);
	f->mode = mode;
	pthread_mutex_unlock(&f->lock);
}

/* FAKE_MANUAL: how many pending requests have op (or any op, with -1). */
static inline unsigned fake_count(struct fake *f, int op)
{
	unsigned n = 0;
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->npending; i++)
		n += op < 0 || f->pending[i]->op == (enum blk_op)op;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* FAKE_MANUAL: complete one pending request with op (-1: any).  false if none. */
static inline bool fake_release_one(struct fake *f, int op)
{
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->npending; i++)
		if (op < 0 || f->pending[i]->op == (enum blk_op)op) {
			fake_complete_locked(f, i);
			pthread_mutex_unlock(&f->lock);
			return true;
		}
	pthread_mutex_unlock(&f->lock);
	return false;
}

/* FAKE_MANUAL: complete everything pending, including what completions submit. */
static inline void fake_release_all(struct fake *f)
{
	while (fake_release_one(f, -1))
		;
}

/* ---- requests that record their completion ------------------------------ */

struct flag_req {
	struct blk_req req;
	struct iovec iov;
	atomic_int done;
	struct fake *f;
	int lower_flushes_done; /* fake completions of FLUSH when done() ran */
	bool durable;           /* for writes: in the fake's durable copy when done() ran */
};

static inline unsigned fake_flushes_done(struct fake *f)
{
	unsigned n = 0;
	for (unsigned i = 0; i < f->nlog; i++)
		n += f->log[i].op == BLK_FLUSH;
	return n - fake_count(f, BLK_FLUSH);
}

static inline void flag_done(struct blk_req *r)
{
	struct flag_req *q = (struct flag_req *)r;
	if (!q->f) {
		atomic_fetch_add(&q->done, 1);
		return;
	}
	pthread_mutex_lock(&q->f->lock);
	if (r->op == BLK_WRITE)
		q->durable = !memcmp(q->f->dur + r->offset, q->iov.iov_base, r->len);
	pthread_mutex_unlock(&q->f->lock);
	q->lower_flushes_done = (int)fake_flushes_done(q->f);
	atomic_fetch_add(&q->done, 1);
}

static inline int flag_submit(struct blk_dev *d, struct flag_req *q, struct fake *f, enum blk_op op, unsigned flags,
			      uint64_t off, void *buf, uint64_t len)
{
	memset(q, 0, sizeof(*q));
	q->f = f;
	q->iov = (struct iovec){ buf, len };
	q->req = (struct blk_req){ .op = op, .flags = flags, .offset = off, .len = buf ? len : len,
				   .iov = buf ? &q->iov : NULL, .iovcnt = buf ? 1 : 0, .done = flag_done };
	if (op == BLK_FLUSH)
		q->req.len = 0;
	return blk_submit(d, &q->req);
}
