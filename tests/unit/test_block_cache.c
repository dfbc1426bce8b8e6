// SPDX-License-Identifier: MIT
/*
 * The block stack's cache layer: its flush and FUA rules, fills racing with
 * writes, the durability model, back-pressure, read-only, scan resistance and
 * requests larger than the cache, against a recording fake lower layer
 * (blkfake.h); and many concurrent requests through a cache over a file.
 */
#include <sched.h>

#include "blkfake.h"
#include "blktest.h"
#include "block/block.h"
#include "unit.h"
#include "base/util.h"

/* Random work through a cache over a file; then the file itself must hold what was written. */
static void cache_file_case(enum blk_cache_mode mode, uint64_t csize, unsigned n, uint64_t seed)
{
	char path[300];
	tmp_image(path, sizeof(path), 16 * MiB);
	struct blk_dev *f = open_file(path, false, false), *d = f ? open_cache(f, mode, csize) : NULL;
	CHECK(d);
	if (!d) {
		blk_close(f);
		unlink(path);
		return;
	}
	CHECK(!strcmp(d->layer, "cache") && d->lower == f);
	CHECK_EQ(d->volatile_cache, mode == BLK_CACHE_WRITEBACK);
	static struct work w;
	work_init(&w, d, 48);
	work_run(&w, n, seed);
	check_work(&w, n);
	blk_close(d); /* writes back and flushes */
	CHECK(file_matches(path, w.shadow, 0, 16 * MiB));
	work_fini(&w);
	unlink(path);
}

static void cache_writeback_small(void)
{
	cache_file_case(BLK_CACHE_WRITEBACK, 256 * KiB, 5000, 11); /* 4 lines: eviction all the time */
}

static void cache_writeback_large(void)
{
	cache_file_case(BLK_CACHE_WRITEBACK, 8 * MiB, 5000, 12);
}

static void cache_writethrough(void)
{
	cache_file_case(BLK_CACHE_WRITETHROUGH, 1 * MiB, 3000, 13);
}

/* The flush rule, step by step against a fake that holds every request until released. */
struct expect_below {
	uint64_t off[4];
	const uint8_t *data[4];
	size_t len[4];
	unsigned n, flushes_seen, bad;
};

static void check_below(struct fake *f)
{
	struct expect_below *e = f->test;
	e->flushes_seen++;
	for (unsigned i = 0; i < e->n; i++)
		if (memcmp(f->vol + e->off[i], e->data[i], e->len[i]))
			e->bad++;
}

/* Release lower requests (writes before flushes) until q is done. */
static void release_until(struct fake *f, struct flag_req *q)
{
	while (!atomic_load(&q->done))
		if (!fake_release_one(f, BLK_WRITE) && !fake_release_one(f, BLK_READ) && !fake_release_one(f, -1))
			sched_yield(); /* the write-back thread may still be about to submit */
}

static void cache_flush_rules(void)
{
	struct fake *f = fake_new(4 * MiB, 512, 64, FAKE_MANUAL);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 1 * MiB);
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	static uint8_t a[8192], b[4096], c[4096], e[4096];
	memset(a, 0xa1, sizeof(a));
	memset(b, 0xb2, sizeof(b));
	memset(c, 0xc3, sizeof(c));
	memset(e, 0xe5, sizeof(e));
	struct flag_req wa, wb, fl, fua, fl2, we, fl3;
	CHECK_EQ(flag_submit(d, &wa, f, BLK_WRITE, 0, 0, a, sizeof(a)), 0);
	CHECK_EQ(flag_submit(d, &wb, f, BLK_WRITE, 0, 1 * MiB + 512, b, sizeof(b)), 0);
	release_until(f, &wa);
	release_until(f, &wb);

	/* FLUSH: the lower flush only once A and B are below; the upper one only after it. */
	struct expect_below ex = { .off = { 0, 1 * MiB + 512 }, .data = { a, b }, .len = { sizeof(a), sizeof(b) }, .n = 2 };
	f->test = &ex;
	f->on_flush = check_below;
	CHECK_EQ(flag_submit(d, &fl, f, BLK_FLUSH, 0, 0, NULL, 0), 0);
	CHECK(!atomic_load(&fl.done)); /* the write-back is held below */
	CHECK(fake_count(f, BLK_WRITE) > 0);
	CHECK_EQ(fake_count(f, BLK_FLUSH), 0);
	release_until(f, &fl);
	CHECK_EQ(atomic_load(&fl.done), 1);
	CHECK_EQ(fl.req.status, 0);
	CHECK(ex.flushes_seen >= 1);
	CHECK_EQ(ex.bad, 0);
	CHECK(fl.lower_flushes_done >= 1);
	CHECK(!memcmp(f->dur, a, sizeof(a)) && !memcmp(f->dur + 1 * MiB + 512, b, sizeof(b)));

	/* FUA: down with FUA, complete only when that write has. */
	CHECK_EQ(flag_submit(d, &fua, f, BLK_WRITE, BLK_FUA, 2 * MiB, c, sizeof(c)), 0);
	CHECK(!atomic_load(&fua.done));
	bool fua_below = false;
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->npending; i++)
		fua_below |= f->pending[i]->op == BLK_WRITE && (f->pending[i]->flags & BLK_FUA) &&
			     f->pending[i]->offset == 2 * MiB;
	pthread_mutex_unlock(&f->lock);
	CHECK(fua_below);
	release_until(f, &fua);
	CHECK_EQ(fua.req.status, 0);
	CHECK(fua.durable);

	/* A failed write-back fails the flush that needed it; the data stays and the next flush writes it. */
	CHECK_EQ(flag_submit(d, &we, f, BLK_WRITE, 0, 3 * MiB, e, sizeof(e)), 0);
	release_until(f, &we);
	f->fail_writes = -EIO;
	ex = (struct expect_below){ 0 };
	f->on_flush = NULL;
	CHECK_EQ(flag_submit(d, &fl2, f, BLK_FLUSH, 0, 0, NULL, 0), 0);
	release_until(f, &fl2);
	CHECK_EQ(fl2.req.status, -EIO);
	f->fail_writes = 0;
	ex = (struct expect_below){ .off = { 3 * MiB }, .data = { e }, .len = { sizeof(e) }, .n = 1 };
	f->on_flush = check_below;
	CHECK_EQ(flag_submit(d, &fl3, f, BLK_FLUSH, 0, 0, NULL, 0), 0);
	release_until(f, &fl3);
	CHECK_EQ(fl3.req.status, 0);
	CHECK_EQ(ex.bad, 0);
	CHECK(ex.flushes_seen >= 1);
	CHECK(!memcmp(f->dur + 3 * MiB, e, sizeof(e)));

	/* close() writes back and flushes what is left. */
	struct flag_req wl;
	static uint8_t l[512];
	memset(l, 0x77, sizeof(l));
	CHECK_EQ(flag_submit(d, &wl, f, BLK_WRITE, 0, 4 * MiB - 512, l, sizeof(l)), 0);
	release_until(f, &wl);
	fake_set_mode(f, FAKE_SYNC); /* close() waits; nobody would release */
	fake_release_all(f);
	blk_close(d);
	CHECK(!memcmp(f->dur + 4 * MiB - 512, l, sizeof(l)));
	fake_free(f);
}

static void cache_writethrough_fua(void)
{
	struct fake *f = fake_new(1 * MiB, 4096, 64, FAKE_MANUAL);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITETHROUGH, 1 * MiB);
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	CHECK(!d->volatile_cache);
	CHECK_EQ(d->block_size, 4096);
	static uint8_t x[16384], y[16384];
	memset(x, 0x42, sizeof(x));
	struct flag_req w, r;
	CHECK_EQ(flag_submit(d, &w, f, BLK_WRITE, 0, 61440, x, sizeof(x)), 0); /* crosses a line */
	CHECK(!atomic_load(&w.done));
	unsigned fua = 0;
	for (unsigned i = 0; i < f->nlog; i++)
		fua += f->log[i].op == BLK_WRITE && (f->log[i].flags & BLK_FUA);
	CHECK_EQ(fua, 2);
	release_until(f, &w);
	CHECK(w.durable);
	/* A read of what was written is a hit: nothing goes below. */
	unsigned before = f->nlog;
	CHECK_EQ(flag_submit(d, &r, f, BLK_READ, 0, 61440, y, sizeof(y)), 0);
	CHECK_EQ(atomic_load(&r.done), 1);
	CHECK_EQ(f->nlog, before);
	CHECK(!memcmp(x, y, sizeof(x)));
	fake_set_mode(f, FAKE_SYNC);
	fake_release_all(f);
	blk_close(d);
	fake_free(f);
}

/* A write that lands while a read miss is being filled from below is not undone by the fill. */
static void cache_fill_race(void)
{
	struct fake *f = fake_new(1 * MiB, 512, 64, FAKE_MANUAL);
	memset(f->vol, 0x11, 1 * MiB);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 1 * MiB);
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	static uint8_t line[65536], w[4096], back[65536];
	memset(w, 0x99, sizeof(w));
	struct flag_req rd, wr, rd2, wr2;
	CHECK_EQ(flag_submit(d, &rd, f, BLK_READ, 0, 0, line, sizeof(line)), 0); /* miss: a fill is held below */
	CHECK(!atomic_load(&rd.done));
	CHECK_EQ(fake_count(f, BLK_READ), 1);
	CHECK_EQ(flag_submit(d, &wr, f, BLK_WRITE, 0, 8192, w, sizeof(w)), 0);
	release_until(f, &wr);
	release_until(f, &rd);
	CHECK_EQ(rd.req.status, 0);
	CHECK(line[0] == 0x11 && line[65535] == 0x11); /* the write's blocks may read either way */
	CHECK_EQ(flag_submit(d, &rd2, f, BLK_READ, 0, 0, back, sizeof(back)), 0);
	release_until(f, &rd2);
	CHECK(!memcmp(back + 8192, w, sizeof(w)));
	CHECK(back[0] == 0x11 && back[8191] == 0x11 && back[12288] == 0x11);

	/* Same with a FUA write (it waits for the fill: one lower request per line at a time). */
	CHECK_EQ(flag_submit(d, &rd, f, BLK_READ, 0, 128 * KiB, line, sizeof(line)), 0);
	CHECK(!atomic_load(&rd.done));
	CHECK_EQ(flag_submit(d, &wr2, f, BLK_WRITE, BLK_FUA, 128 * KiB + 4096, w, sizeof(w)), 0);
	release_until(f, &rd);
	release_until(f, &wr2);
	CHECK(wr2.durable);
	CHECK_EQ(flag_submit(d, &rd2, f, BLK_READ, 0, 128 * KiB, back, sizeof(back)), 0);
	release_until(f, &rd2);
	CHECK(!memcmp(back + 4096, w, sizeof(w)) && back[0] == 0x11 && back[8192] == 0x11);
	fake_set_mode(f, FAKE_SYNC);
	fake_release_all(f);
	blk_close(d);
	CHECK(!memcmp(f->dur + 8192, w, sizeof(w)));
	fake_free(f);
}

/* The durability model, with completions below in random order on another thread. */
#define MODEL_SIZE (2 * MiB)
#define MODEL_SECTORS (MODEL_SIZE / 512)

struct model {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fake *f;
	uint64_t last_done[MODEL_SECTORS]; /* id of the last write completed per sector */
	unsigned inflight, bad, checks;
	uint64_t next_id;
};

struct mreq {
	struct blk_req req;
	struct iovec iov;
	struct model *m;
	uint64_t id;
	uint64_t *required; /* flush: copy of last_done at submission */
	uint8_t buf[256 * 1024];
	bool busy;
};

static uint64_t stamp_of(const uint8_t *sec)
{
	uint64_t id;
	memcpy(&id, sec, 8);
	return id;
}

static void model_done(struct blk_req *r)
{
	struct mreq *q = (struct mreq *)r;
	struct model *m = q->m;
	struct fake *f = m->f;
	unsigned bad = r->status != 0;
	pthread_mutex_lock(&f->lock);
	if (!bad && r->op == BLK_FLUSH)
		for (unsigned s = 0; s < MODEL_SECTORS; s++)
			bad += stamp_of(f->dur + (size_t)s * 512) < q->required[s];
	if (!bad && r->op == BLK_WRITE && (r->flags & BLK_FUA))
		for (uint64_t s = r->offset / 512; s < (r->offset + r->len) / 512; s++)
			bad += stamp_of(f->dur + s * 512) < q->id;
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&m->lock);
	if (r->op == BLK_WRITE)
		for (uint64_t s = r->offset / 512; s < (r->offset + r->len) / 512; s++)
			m->last_done[s] = q->id;
	if (r->op == BLK_READ)
		for (uint64_t s = 0; s < r->len / 512; s++)
			if (stamp_of(q->buf + s * 512 + 8) != r->offset / 512 + s && stamp_of(q->buf + s * 512))
				bad++;
	m->bad += bad;
	m->checks++;
	free(q->required);
	q->required = NULL;
	q->busy = false;
	m->inflight--;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void cache_durability_model(void)
{
	struct fake *f = fake_new(MODEL_SIZE, 512, 32, FAKE_THREAD);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 256 * KiB);
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	static struct model m;
	static struct mreq q[32];
	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&m.lock, NULL);
	pthread_cond_init(&m.cond, NULL);
	m.f = f;
	uint64_t s = 99;
	unsigned n = 4000, flushes = 0, fuas = 0;
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_lock(&m.lock);
		struct mreq *r = NULL;
		while (!r) {
			for (unsigned k = 0; k < 32 && !r; k++)
				if (!q[k].busy)
					r = &q[k];
			if (!r)
				pthread_cond_wait(&m.cond, &m.lock);
		}
		uint64_t kind = rnd(&s) % 100, off = 0, len = 0;
		for (bool clash = true; clash && kind >= 8;) {
			len = (1 + rnd(&s) % (rnd(&s) % 4 ? 8 : 512)) * 512; /* 128 KiB or more: bypassing */
			off = rnd(&s) % (MODEL_SECTORS - len / 512 + 1) * 512;
			clash = false;
			for (unsigned k = 0; k < 32; k++)
				clash |= q[k].busy && q[k].req.op != BLK_FLUSH && off < q[k].req.offset + q[k].req.len &&
					 q[k].req.offset < off + len;
		}
		r->m = &m;
		r->busy = true;
		r->id = ++m.next_id;
		r->iov = (struct iovec){ r->buf, len };
		r->req = (struct blk_req){ .offset = off, .len = len, .iov = &r->iov, .iovcnt = 1, .done = model_done };
		if (kind < 8) {
			r->req = (struct blk_req){ .op = BLK_FLUSH, .done = model_done };
			r->required = malloc(sizeof(m.last_done));
			memcpy(r->required, m.last_done, sizeof(m.last_done));
			flushes++;
		} else if (kind < 40) {
			r->req.op = BLK_READ;
		} else {
			r->req.op = BLK_WRITE;
			if (kind < 50) {
				r->req.flags = BLK_FUA;
				fuas++;
			}
			for (uint64_t k = 0; k < len / 512; k++) {
				uint64_t v[2] = { r->id, off / 512 + k };
				memcpy(r->buf + k * 512, v, 16);
				memset(r->buf + k * 512 + 16, (int)(r->id & 0xff), 512 - 16);
			}
		}
		m.inflight++;
		pthread_mutex_unlock(&m.lock);
		int rc;
		while ((rc = blk_submit(d, &r->req)) == -EAGAIN)
			sched_yield();
		CHECK_EQ(rc, 0);
	}
	pthread_mutex_lock(&m.lock);
	while (m.inflight)
		pthread_cond_wait(&m.cond, &m.lock);
	pthread_mutex_unlock(&m.lock);
	CHECK_EQ(m.bad, 0);
	CHECK_EQ(m.checks, n);
	CHECK(flushes > 100 && fuas > 100);
	blk_close(d);
	/* After close, everything completed is durable. */
	for (unsigned k = 0; k < MODEL_SECTORS; k++)
		CHECK(stamp_of(f->dur + (size_t)k * 512) >= m.last_done[k]);
	fake_free(f);
}

static void cache_backpressure(void)
{
	struct fake *f = fake_new(16 * MiB, 512, 256, FAKE_MANUAL);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 16 * MiB);
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	static struct blk_req r[200];
	static struct iovec iov[200];
	static uint8_t buf[200][512];
	memset(gate_counts, 0, sizeof(gate_counts));
	gate.open = true;
	gate.entered = gate.done = 0;
	unsigned accepted = 0;
	int rc = 0;
	for (unsigned i = 0; i < 200 && !rc; i++) {
		iov[i] = (struct iovec){ buf[i], 512 };
		/* Each in its own line, away from the last one's read-ahead: all misses. */
		r[i] = (struct blk_req){ .op = BLK_READ, .tag = i, .offset = (uint64_t)(i % 100) * 128 * KiB + (i / 100) * 64 * KiB,
					 .len = 512, .iov = &iov[i], .iovcnt = 1, .done = gate_done };
		rc = blk_submit(d, &r[i]);
		accepted += !rc;
	}
	CHECK_EQ(rc, -EAGAIN);
	CHECK_EQ(accepted, d->queue_depth);
	fake_set_mode(f, FAKE_SYNC);
	fake_release_all(f);
	for (unsigned i = 0; i < accepted; i++)
		CHECK_EQ(atomic_load(&gate_counts[i]), 1);
	blk_close(d);
	fake_free(f);
}

static void cache_readonly(void)
{
	struct fake *f = fake_new(1 * MiB, 512, 16, FAKE_SYNC);
	memset(f->vol, 0x21, 1 * MiB);
	f->dev.read_only = true;
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 1 * MiB);
	CHECK(d && d->read_only);
	if (d) {
		uint8_t b[4096];
		CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 0, b, 4096), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, 0, NULL, 4096), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 0, NULL, 4096), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 4096, b, 4096), 0);
		CHECK(b[0] == 0x21 && b[4095] == 0x21);
		CHECK_EQ(blk_io_sync(d, BLK_FLUSH, 0, 0, NULL, 0), 0);
		blk_close(d);
	}
	fake_free(f);
}

/*
 * Replacement: lines read twice (not as part of a sequential stream) survive
 * a sequential scan of four times the cache's size, read-ahead and all.
 */
static void cache_scan_resistance(void)
{
	struct fake *f = fake_new(8 * MiB, 512, 32, FAKE_SYNC);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 1 * MiB); /* 16 lines */
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	static uint8_t buf[65536]; /* shorter than BYPASS_MIN: through the cache */
	static const unsigned hot[] = { 0, 4, 2, 6, 6, 2, 4, 0 };
	for (size_t i = 0; i < ARRAY_SIZE(hot); i++)
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, hot[i] * 65536ull, buf, sizeof(buf)), 0);
	unsigned before = f->nlog;
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, hot[i] * 65536ull, buf, sizeof(buf)), 0);
	CHECK_EQ(f->nlog, before); /* hits */
	for (uint64_t off = 1 * MiB; off < 5 * MiB; off += sizeof(buf))
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, off, buf, sizeof(buf)), 0);
	CHECK(f->nlog > before + 60);
	before = f->nlog;
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, hot[i] * 65536ull + 512, buf, 4096), 0);
	CHECK_EQ(f->nlog, before); /* still hits */
	blk_close(d);
	fake_free(f);
}

/*
 * Reads and writes of 128 KiB or more bypass the cache: one lower request
 * with the caller's buffers.  A read over dirty blocks takes the cached
 * path; a write drops the blocks it covers, dirty ones too, and a flush
 * waits for it then (and fails if it fails); write-through sends it with FUA.
 */
static void cache_bypass(void)
{
	struct fake *f = fake_new(4 * MiB, 512, 64, FAKE_MANUAL);
	memset(f->vol, 0x11, 4 * MiB);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 1 * MiB);
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	static uint8_t big[256 * KiB], back[256 * KiB], small[4096];
	struct flag_req rd, wr, fl, wr2, fl2;
	unsigned n0 = f->nlog;
	CHECK_EQ(flag_submit(d, &rd, f, BLK_READ, 0, 1 * MiB, big, sizeof(big)), 0);
	CHECK_EQ(f->nlog, n0 + 1);
	CHECK(f->log[n0].op == BLK_READ && f->log[n0].offset == 1 * MiB && f->log[n0].len == sizeof(big));
	release_until(f, &rd);
	CHECK(rd.req.status == 0 && big[0] == 0x11 && big[sizeof(big) - 1] == 0x11);

	/* A dirty block inside a long read's range: the read sees it. */
	memset(small, 0x22, sizeof(small));
	CHECK_EQ(flag_submit(d, &wr, f, BLK_WRITE, 0, 1 * MiB + 8192, small, sizeof(small)), 0);
	release_until(f, &wr);
	CHECK_EQ(flag_submit(d, &rd, f, BLK_READ, 0, 1 * MiB, back, sizeof(back)), 0);
	release_until(f, &rd);
	CHECK(!memcmp(back + 8192, small, sizeof(small)) && back[0] == 0x11 && back[sizeof(back) - 1] == 0x11);

	/* A long write over it replaces it; a flush waits until that write is below. */
	memset(big, 0x33, sizeof(big));
	n0 = f->nlog;
	CHECK_EQ(flag_submit(d, &wr, f, BLK_WRITE, 0, 1 * MiB, big, sizeof(big)), 0);
	CHECK(f->nlog == n0 + 1 && f->log[n0].op == BLK_WRITE && f->log[n0].len == sizeof(big));
	CHECK_EQ(flag_submit(d, &fl, f, BLK_FLUSH, 0, 0, NULL, 0), 0);
	CHECK(!atomic_load(&wr.done) && !atomic_load(&fl.done));
	CHECK_EQ(fake_count(f, BLK_FLUSH), 0);
	release_until(f, &fl);
	CHECK(wr.req.status == 0 && fl.req.status == 0);
	CHECK(!memcmp(f->dur + 1 * MiB, big, sizeof(big)));
	CHECK_EQ(flag_submit(d, &rd, f, BLK_READ, 0, 1 * MiB + 8192, back, 4096), 0);
	release_until(f, &rd);
	CHECK(back[0] == 0x33 && back[4095] == 0x33); /* the dropped block does not come back */

	/* The same write failing: the flush that needed the dirty block it replaced fails. */
	CHECK_EQ(flag_submit(d, &wr, f, BLK_WRITE, 0, 2 * MiB + 4096, small, sizeof(small)), 0);
	release_until(f, &wr);
	f->fail_writes = -EIO;
	CHECK_EQ(flag_submit(d, &wr2, f, BLK_WRITE, 0, 2 * MiB, big, 128 * KiB), 0);
	CHECK_EQ(flag_submit(d, &fl2, f, BLK_FLUSH, 0, 0, NULL, 0), 0);
	release_until(f, &wr2);
	release_until(f, &fl2);
	CHECK_EQ(wr2.req.status, -EIO);
	CHECK_EQ(fl2.req.status, -EIO);
	f->fail_writes = 0;
	fake_set_mode(f, FAKE_SYNC);
	fake_release_all(f);
	blk_close(d);
	fake_free(f);

	/* Write-through: down with FUA, durable when it completes. */
	f = fake_new(1 * MiB, 512, 16, FAKE_SYNC);
	d = open_cache(&f->dev, BLK_CACHE_WRITETHROUGH, 1 * MiB);
	CHECK(d);
	if (d) {
		CHECK_EQ(flag_submit(d, &wr, f, BLK_WRITE, 0, 128 * KiB, big, 128 * KiB), 0);
		CHECK(atomic_load(&wr.done) && wr.durable && f->log[f->nlog - 1].flags == BLK_FUA);
		blk_close(d);
	}
	fake_free(f);
}

/* A lower layer that completes inside submit, and requests far larger than the cache. */
static void cache_sync_lower_large(void)
{
	struct fake *f = fake_new(48 * MiB, 512, 32, FAKE_SYNC);
	struct blk_dev *d = open_cache(&f->dev, BLK_CACHE_WRITEBACK, 256 * KiB);
	CHECK(d);
	if (!d) {
		fake_free(f);
		return;
	}
	uint8_t *a = malloc(40 * MiB), *b = malloc(40 * MiB);
	for (size_t i = 0; i < 40 * MiB; i += 8)
		memcpy(a + i, &i, 8);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 4096, a, 40 * MiB), 0);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 4096, b, 40 * MiB), 0);
	CHECK(!memcmp(a, b, 40 * MiB));
	CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, 8192, NULL, 40 * MiB - 8192), 0);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 4096, b, 40 * MiB), 0);
	CHECK(!memcmp(a, b, 4096) && b[4096] == 0 && b[40 * MiB - 1] == 0);
	blk_close(d);
	CHECK(!memcmp(f->dur + 4096, a, 4096));
	free(a);
	free(b);
	fake_free(f);
}

int main(void)
{
	blkt_init();
	RUN("block", cache_flush_rules);
	RUN("block", cache_writethrough_fua);
	RUN("block", cache_fill_race);
	RUN("block", cache_durability_model);
	RUN("block", cache_backpressure);
	RUN("block", cache_readonly);
	RUN("block", cache_scan_resistance);
	RUN("block", cache_sync_lower_large);
	RUN("block", cache_bypass);
	if (!have_uring) {
		static const char *const names[] = { "cache_writeback_small", "cache_writeback_large",
						     "cache_writethrough" };
		blkt_skip_uring(names, ARRAY_SIZE(names));
		UNIT_EXIT();
	}
	RUN("block", cache_writeback_small);
	RUN("block", cache_writeback_large);
	RUN("block", cache_writethrough);
	UNIT_EXIT();
}
