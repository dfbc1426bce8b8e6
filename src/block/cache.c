// SPDX-License-Identifier: MIT
/*
 * keel's RAM cache: write-back (or write-through) caching of the layer below
 * in 64 KiB lines.
 *
 * Lines.  64 KiB lines keep the bookkeeping small (1024 lines for the
 * default 64 MiB), make write-back and read-ahead requests large, and with a
 * VALID/DIRTY state per block (512 or 4096 bytes) a partial write never has
 * to read the rest of its line first.  A demand miss reads only the blocks it
 * needs (rounded to 4 KiB; the rest of the line when the reads are
 * sequential); read-ahead reads whole lines.
 *
 * Replacement: segmented LRU.  New lines enter the probation list; a hit by
 * a request that does not continue a sequential stream promotes the line to
 * the protected list (at most 3/4 of the lines; its least recent lines fall
 * back to probation).  Victims come from probation's cold end first, so a
 * sequential scan or read-ahead does not flush out the hot set.  Only clean,
 * idle lines are evicted; when none is, the oldest dirty lines are written
 * back first and the request waits.
 *
 * Long requests bypass it (cache_req.c: bypass_run()): a read or write of
 * BYPASS_MIN bytes or more goes down as one request with the caller's own
 * buffers, unless a read's range holds dirty blocks; a write first drops
 * the blocks it covers.  Streaming I/O gains nothing from a second copy in
 * RAM (in the cached modes the host's page cache is below), and 64 KiB
 * lines would split it into many lower requests, each copied twice.
 *
 * Requests (cache_req.c).  An upper request is handled line by line, in
 * order, under one mutex; data is copied between the caller's iovecs and the
 * lines.  A step that cannot go on (a miss being read, no line to evict, no
 * free lower request) parks the request on the line or on the cache's wait
 * list, and it is run again from that step when the reason is gone.  Hits
 * complete inside submit().  Lower requests are issued only after the mutex is dropped (a
 * layer may complete inside its submit()), and a completion that arrives
 * inside such a submit on the same thread is deferred, so stacks stay flat.
 *
 * Coherency.  At most one lower request per line is in flight (line->busy).
 * Buffered writes copy into the line even while it is being written back
 * (write-back sends a snapshot, so later data just makes the line dirty
 * again).  A fill copies only blocks still invalid when it completes, and
 * is dropped if blocks were invalidated meanwhile (line->gen), so a write or
 * discard racing a read miss wins.  FUA/write-through writes wait for the
 * line's lower request, so lower writes of a block happen in the order the
 * cache took them.  Discard/write-zeroes wait for busy lines in their range,
 * invalidate what is cached there and pass down; while one is in flight no
 * fill or write of an overlapping line is issued.
 *
 * Durability (cache_wb.c): every time a line becomes dirty it takes the next
 * write sequence number.  A flush records the current number and is passed
 * down only when no dirty line and no lower write in flight carries an older
 * one, i.e. when every write completed before the flush is below; it
 * completes when the lower flush does.  FUA writes (all writes with
 * BLK_CACHE_WRITETHROUGH) are written through with BLK_FUA and complete when
 * the lower write does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache.h"
#include "internal.h"
#include "base/util.h"

#define CACHE_LINES_MIN 4
#define RA_MAX_LINES 16    /* read-ahead window: 1 MiB (a quarter of the cache at most) */
#define EVICT_SCAN 64      /* lines looked at from each list's cold end */

static struct cache *to_cache(struct blk_dev *d)
{
	return container_of(d, struct cache, dev);
}

/* ---- lists and lookup -------------------------------------------------- */

static void lru_remove(struct cache *c, struct line *l)
{
	struct lru *q = l->list == LIST_FREE ? &c->freel : l->list == LIST_PROB ? &c->prob : &c->prot;
	if (l->list == LIST_NONE)
		return;
	if (l->prev)
		l->prev->next = l->next;
	else
		q->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		q->tail = l->prev;
	l->prev = l->next = NULL;
	l->list = LIST_NONE;
	q->n--;
}

static void lru_push(struct cache *c, struct line *l, enum list_id id)
{
	struct lru *q = id == LIST_FREE ? &c->freel : id == LIST_PROB ? &c->prob : &c->prot;
	lru_remove(c, l);
	l->prev = NULL;
	l->next = q->head;
	if (q->head)
		q->head->prev = l;
	else
		q->tail = l;
	q->head = l;
	l->list = (uint8_t)id;
	q->n++;
}

/*
 * An access: the first one (which brought the line in) and sequential
 * streams leave a probation line where it is; other hits promote it.
 */
void touch(struct cache *c, struct line *l, const struct creq *cr)
{
	if (l->list == LIST_PROB && (cr->sequential || l->fresh)) {
		l->fresh = false;
		return;
	}
	lru_push(c, l, LIST_PROT);
	if (c->prot.n > c->nlines - c->nlines / 4)
		lru_push(c, c->prot.tail, LIST_PROB);
}

static uint64_t hash_of(const struct cache *c, uint64_t lno)
{
	return (lno * 0x9e3779b97f4a7c15ull >> 20) & c->hmask;
}

struct line *lookup(struct cache *c, uint64_t lno)
{
	for (struct line *l = c->hash[hash_of(c, lno)]; l; l = l->hnext)
		if (l->lno == lno)
			return l;
	return NULL;
}

static void hash_remove(struct cache *c, struct line *l)
{
	struct line **pp = &c->hash[hash_of(c, l->lno)];
	while (*pp && *pp != l)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = l->hnext;
	l->hnext = NULL;
}

void fifo_remove(struct cache *c, struct line *l)
{
	if (!l->in_fifo)
		return;
	if (l->dprev)
		l->dprev->dnext = l->dnext;
	else
		c->dhead = l->dnext;
	if (l->dnext)
		l->dnext->dprev = l->dprev;
	else
		c->dtail = l->dprev;
	l->dprev = l->dnext = NULL;
	l->in_fifo = false;
	l->dirty_since = SEQ_NONE;
	c->ndirty_lines--;
}

/* Put l in the dirty FIFO in order of since (usually at the tail). */
void fifo_insert(struct cache *c, struct line *l, uint64_t since)
{
	if (l->in_fifo) {
		if (l->dirty_since <= since)
			return;
		uint64_t t = l->dirty_time;
		fifo_remove(c, l);
		l->dirty_time = t;
	} else {
		l->dirty_time = now_ns();
	}
	struct line *after = c->dtail;
	while (after && after->dirty_since > since)
		after = after->dprev;
	l->dprev = after;
	l->dnext = after ? after->dnext : c->dhead;
	if (l->dnext)
		l->dnext->dprev = l;
	else
		c->dtail = l;
	if (after)
		after->dnext = l;
	else
		c->dhead = l;
	l->dirty_since = since;
	l->in_fifo = true;
	c->ndirty_lines++;
}

/* ---- lower requests ---------------------------------------------------- */

struct cop *op_get(struct cache *c)
{
	struct cop *op = c->ofree;
	if (!op)
		return NULL;
	c->ofree = op->next;
	c->ops_busy++;
	op->in_use = true;
	op->kind = OP_FILL; /* until the caller says otherwise */
	op->line = NULL;
	op->cr = NULL;
	op->status = 0;
	op->covers_since = SEQ_NONE;
	op->holds_range = false;
	return op;
}

void op_put(struct cache *c, struct cop *op)
{
	if (op->kind == OP_PASS && op->holds_range)
		c->pass_busy--;
	op->in_use = false;
	op->next = c->ofree;
	c->ofree = op;
	if (!--c->ops_busy)
		pthread_cond_broadcast(&c->idle);
}

void batch_queue(struct batch *b, struct cop *op)
{
	b->sub[b->nsub++] = op;
}

/* Is a discard, write-zeroes or bypassing write overlapping [start, end) in flight below? */
bool range_busy(struct cache *c, uint64_t start, uint64_t end)
{
	if (!c->pass_busy)
		return false; /* the common case, without a scan */
	for (unsigned i = 0; i < c->nops; i++) {
		const struct cop *op = &c->ops[i];
		if (op->in_use && op->kind == OP_PASS && op->holds_range && op->rstart < end && start < op->rend)
			return true;
	}
	return false;
}

/* Read sectors [first, first + n) of l from below. */
void start_fill(struct cache *c, struct cop *op, struct line *l, unsigned first, unsigned n,
		       struct creq *reader, struct batch *b)
{
	op->kind = OP_FILL;
	op->line = l;
	op->cr = reader;
	op->gen = l->gen;
	op->first = first;
	op->nsec = n;
	op->iov = (struct iovec){ .iov_base = op->buf, .iov_len = (size_t)n * c->bs };
	op->lreq = (struct blk_req){ .op = BLK_READ, .offset = line_start(l) + (uint64_t)first * c->bs,
				     .len = (uint64_t)n * c->bs, .iov = &op->iov, .iovcnt = 1 };
	TRACE(CACHE_MISS, op->lreq.offset, op->lreq.len);
	l->busy = true;
	batch_queue(b, op);
}

/* ---- lines: allocation, eviction, prefetch ------------------------------ */

static struct line *find_victim(struct lru *q)
{
	unsigned n = 0;
	for (struct line *l = q->tail; l && n < EVICT_SCAN; l = l->prev, n++)
		if (!l->busy && !l->ndirty && !l->wait_head)
			return l;
	return NULL;
}

/*
 * A line for lno (not cached).  NULL when none can be had now.  A demand
 * (make_room) may evict a protected line, and if none is clean, starts the
 * write-back of the coldest dirty lines so that one is soon; read-ahead takes
 * only free or probation lines.
 */
struct line *alloc_line(struct cache *c, uint64_t lno, bool make_room, struct batch *b)
{
	struct line *l = c->freel.tail;
	if (!l)
		l = find_victim(&c->prob);
	if (!l && make_room)
		l = find_victim(&c->prot);
	if (!l) {
		if (make_room) {
			c->line_wanted = true;
			wb_kick(c, b);
		}
		return NULL;
	}
	if (l->list != LIST_FREE) {
		TRACE(CACHE_EVICT, line_start(l), (uint64_t)l->nsec * c->bs, l->ndirty);
		hash_remove(c, l);
	}
	uint64_t start = lno << LINE_SHIFT;
	l->lno = lno;
	l->nsec = (uint16_t)MIN((uint64_t)c->spl, (c->dev.size - start) / c->bs);
	memset(l->sec, 0, sizeof(l->sec));
	l->gen++;
	l->ndirty = 0;
	l->dirty_since = SEQ_NONE;
	l->retry_after = 0;
	l->fresh = true;
	uint64_t h = hash_of(c, lno);
	l->hnext = c->hash[h];
	c->hash[h] = l;
	lru_push(c, l, LIST_PROB);
	return l;
}

/* Sector range [*first, *end) of l's invalid sectors within [a, e); false if none. */
bool invalid_span(const struct line *l, unsigned a, unsigned e, unsigned *first, unsigned *end)
{
	unsigned f = e, z = a;
	for (unsigned s = a; s < e; s++)
		if (!(l->sec[s] & SEC_VALID)) {
			f = MIN(f, s);
			z = s + 1;
		}
	*first = f;
	*end = z;
	return f < e;
}

/* Read the invalid part of line lno ahead of need, if that is cheap now. */
void prefetch(struct cache *c, uint64_t lno, struct batch *b)
{
	if (lno > (c->dev.size - 1) >> LINE_SHIFT || c->nops - c->ops_busy <= c->nops / 4)
		return;
	uint64_t start = lno << LINE_SHIFT;
	if (range_busy(c, start, start + LINE_SIZE))
		return;
	struct line *l = lookup(c, lno);
	if (!l) {
		l = alloc_line(c, lno, false, b);
		if (!l)
			return;
	}
	unsigned f, e;
	if (l->busy || !invalid_span(l, 0, l->nsec, &f, &e))
		return;
	struct cop *op = op_get(c);
	if (op)
		start_fill(c, op, l, f, e - f, NULL, b);
}

/* ---- waiting ----------------------------------------------------------- */

void park_line(struct line *l, struct creq *cr)
{
	cr->next = NULL;
	if (l->wait_tail)
		l->wait_tail->next = cr;
	else
		l->wait_head = cr;
	l->wait_tail = cr;
}

void park(struct cache *c, struct creq *cr)
{
	cr->next = NULL;
	if (c->gwait_tail)
		c->gwait_tail->next = cr;
	else
		c->gwait_head = cr;
	c->gwait_tail = cr;
}

/* Run again the requests parked on l (it is no longer busy). */
void run_waiters(struct cache *c, struct line *l, struct batch *b)
{
	struct creq *cr = l->wait_head;
	l->wait_head = l->wait_tail = NULL;
	while (cr) {
		struct creq *next = cr->next;
		creq_run(c, cr, b);
		cr = next;
	}
}

/* Run again the requests parked on the cache (something was freed). */
static void run_parked(struct cache *c, struct batch *b)
{
	struct creq *cr = c->gwait_head;
	c->gwait_head = c->gwait_tail = NULL;
	c->line_wanted = false; /* set again by whoever still finds no line */
	while (cr) {
		struct creq *next = cr->next;
		creq_run(c, cr, b);
		cr = next;
	}
}

/* ---- completions and the lock-free tail of every entry point ----------- */

static void handle_completion(struct cop *op);

/* Completions that arrive on a thread already inside the cache wait here (no recursion). */
static _Thread_local struct cop *deferred_head, *deferred_tail;
static _Thread_local int inside;

void batch_run(struct cache *c, struct batch *b)
{
	inside++;
	for (unsigned i = 0; i < b->nsub; i++) {
		struct cop *op = b->sub[i];
		op->lreq.done = cache_op_done;
		op->lreq.opaque = op;
		op->lreq.status = 0;
		int rc = blk_submit(c->dev.lower, &op->lreq);
		if (rc) {
			/* The pool never exceeds the lower queue depth: any refusal is an error. */
			op->lreq.status = rc == -EAGAIN ? -EIO : rc;
			cache_op_done(&op->lreq);
		}
	}
	for (unsigned i = 0; i < b->nfin; i++)
		blk_req_done(b->fin[i]);
	if (inside > 1) {
		inside--;
		return;
	}
	/* The outermost call handles what was deferred, staying "inside" so that nothing nests. */
	while (deferred_head) {
		struct cop *op = deferred_head;
		deferred_head = op->dnext;
		if (!deferred_head)
			deferred_tail = NULL;
		handle_completion(op);
	}
	inside--;
}

void cache_op_done(struct blk_req *lreq)
{
	struct cop *op = lreq->opaque;
	if (inside) {
		op->dnext = NULL;
		if (deferred_tail)
			deferred_tail->dnext = op;
		else
			deferred_head = op;
		deferred_tail = op;
		return;
	}
	handle_completion(op);
}

static void handle_completion(struct cop *op)
{
	struct cache *c = op->c;
	struct batch b;
	b.nsub = b.nfin = 0;
	b.bg = true;
	pthread_mutex_lock(&c->lock);
	switch (op->kind) {
	case OP_FILL: fill_done(c, op, &b); break;
	case OP_WB: wb_op_done(c, op, &b); break;
	case OP_FUA: fua_op_done(c, op, &b); break;
	case OP_FLUSH: flush_op_done(c, op, &b); break;
	case OP_PASS: pass_done(c, op, &b); break;
	}
	run_parked(c, &b);
	wb_kick(c, &b);
	pthread_mutex_unlock(&c->lock);
	batch_run(c, &b);
}

/* The write-back thread's and close()'s entry: start what write-back is due. */
void cache_kick(struct cache *c, bool bg)
{
	struct batch b;
	b.nsub = b.nfin = 0;
	b.bg = bg;
	pthread_mutex_lock(&c->lock);
	wb_kick(c, &b);
	pthread_mutex_unlock(&c->lock);
	batch_run(c, &b);
}

/* ---- the interface ----------------------------------------------------- */

static int cache_submit(struct blk_dev *d, struct blk_req *r)
{
	struct cache *c = to_cache(d);
	int rc = blk_req_begin(d, r);
	if (rc)
		return rc < 0 ? rc : 0;
	struct batch b;
	b.nsub = b.nfin = 0;
	b.bg = false;
	pthread_mutex_lock(&c->lock);
	struct creq *cr = c->cfree;
	if (!cr || c->closing) {
		pthread_mutex_unlock(&c->lock);
		return -EAGAIN;
	}
	c->cfree = cr->next;
	c->nreq++;
	*cr = (struct creq){ .req = r, .pos = r->offset };
	switch (r->op) {
	case BLK_FLUSH:
		flush_submit(c, cr, &b);
		break;
	case BLK_READ:
		cr->sequential = r->offset == c->ra_next;
		cr->bypass = r->len >= BYPASS_MIN;
		/* Read-ahead is for streams of short reads; a long one bypasses the cache (below). */
		c->ra_win = cr->sequential && !cr->bypass ? MIN(MAX(c->ra_win * 2, 2u), c->ra_max) : 0;
		c->ra_next = r->offset + r->len;
		creq_run(c, cr, &b);
		for (uint64_t i = 0, lno = (c->ra_next + LINE_SIZE - 1) >> LINE_SHIFT; i < c->ra_win; i++)
			prefetch(c, lno + i, &b);
		break;
	case BLK_WRITE:
		cr->sequential = r->offset == c->wr_next;
		cr->bypass = r->len >= BYPASS_MIN;
		c->wr_next = r->offset + r->len;
		creq_run(c, cr, &b);
		break;
	default:
		creq_run(c, cr, &b);
		break;
	}
	wb_kick(c, &b);
	pthread_mutex_unlock(&c->lock);
	batch_run(c, &b);
	return 0;
}

static void cache_close(struct blk_dev *d)
{
	struct cache *c = to_cache(d);
	pthread_mutex_lock(&c->lock);
	while (c->nreq)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	wb_fini(c);
	wb_drain(c);
	blk_close(d->lower);
	free(c->hash);
	munmap(c->mem, c->memlen);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c->lines);
	free(c);
}

static int cache_start(struct blk_dev *d)
{
	return wb_thread_start(to_cache(d));
}

static const struct blk_ops cache_ops = { .submit = cache_submit, .close = cache_close, .start = cache_start };

/*
 * The cache's memory: a memfd of its own, so that it is named in
 * /proc/PID/smaps ("/memfd:keel-block-cache") and a measurement of keel's
 * memory can tell the cached data (what QEMU leaves in the host's page
 * cache) from the rest; plain anonymous memory where memfds are not there.
 */
static void *map_lines(size_t len)
{
	int fd = memfd_create("keel-block-cache", MFD_CLOEXEC);
	if (fd < 0)
		return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *m = ftruncate(fd, (off_t)len) ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m;
}

int blk_cache_open(struct blk_dev *lower, enum blk_cache_mode mode, uint64_t size, struct blk_dev **out, char *err,
		   size_t errlen)
{
	*out = NULL;
	if (mode != BLK_CACHE_WRITEBACK && mode != BLK_CACHE_WRITETHROUGH) {
		snprintf(err, errlen, "the RAM cache is only for cache=writeback or cache=writethrough");
		return -EINVAL;
	}
	if (size < CACHE_LINES_MIN * LINE_SIZE) {
		snprintf(err, errlen, "a cache of %llu bytes is too small (at least %u KiB)", (unsigned long long)size,
			 CACHE_LINES_MIN * LINE_SIZE / 1024);
		return -EINVAL;
	}
	if ((lower->block_size != 512 && lower->block_size != 4096) || !lower->size || lower->size % lower->block_size) {
		snprintf(err, errlen, "the cache cannot use a device of %llu bytes in %u-byte blocks",
			 (unsigned long long)lower->size, lower->block_size);
		return -EINVAL;
	}
	struct cache *c = calloc(1, sizeof(*c));
	if (!c)
		goto out_of_memory;
	c->mode = mode;
	c->bs = lower->block_size;
	c->spl = LINE_SIZE / c->bs;
	uint64_t dev_lines = (lower->size + LINE_SIZE - 1) >> LINE_SHIFT;
	c->nlines = (unsigned)MIN(size / LINE_SIZE, MAX(dev_lines, (uint64_t)CACHE_LINES_MIN));
	c->nops = MIN((unsigned)OPS_MAX, lower->queue_depth ? lower->queue_depth : 1u);
	c->ra_max = MIN((unsigned)RA_MAX_LINES, c->nlines / 4);
	c->dirty_hi = c->nlines / 2;
	c->dirty_lo = c->nlines / 4;
	uint64_t hsize = 1;
	while (hsize < 2ull * c->nlines)
		hsize <<= 1;
	c->hmask = hsize - 1;
	c->hash = calloc(hsize, sizeof(*c->hash));
	c->lines = calloc(c->nlines, sizeof(*c->lines));
	if (!c->hash || !c->lines)
		goto free_cache;
	c->memlen = ((size_t)c->nlines + c->nops) * LINE_SIZE;
	c->mem = map_lines(c->memlen);
	if (c->mem == MAP_FAILED)
		goto free_cache;
	for (unsigned i = 0; i < c->nlines; i++) {
		c->lines[i].data = c->mem + (size_t)i * LINE_SIZE;
		c->lines[i].dirty_since = SEQ_NONE;
		lru_push(c, &c->lines[i], LIST_FREE);
	}
	for (unsigned i = c->nops; i-- > 0;) {
		c->ops[i].c = c;
		c->ops[i].buf = c->mem + ((size_t)c->nlines + i) * LINE_SIZE;
		c->ops[i].next = c->ofree;
		c->ofree = &c->ops[i];
	}
	for (unsigned i = CACHE_QUEUE_DEPTH; i-- > 0;) {
		c->creqs[i].next = c->cfree;
		c->cfree = &c->creqs[i];
	}
	c->ra_next = c->wr_next = UINT64_MAX;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	wb_init(c);
	c->dev = (struct blk_dev){
		.ops = &cache_ops, .layer = "cache", .size = lower->size, .block_size = lower->block_size,
		.queue_depth = CACHE_QUEUE_DEPTH, .read_only = lower->read_only,
		.volatile_cache = mode == BLK_CACHE_WRITEBACK, .can_discard = lower->can_discard,
		.can_write_zeroes = lower->can_write_zeroes, .discard_granularity = lower->discard_granularity,
		.lower = lower,
	};
	*out = &c->dev;
	return 0;

free_cache:
	free(c->hash);
	free(c->lines);
	free(c);
out_of_memory:
	snprintf(err, errlen, "out of memory for a %llu-byte cache", (unsigned long long)size);
	return -ENOMEM;
}
