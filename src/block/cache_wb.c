// SPDX-License-Identifier: MIT
/*
 * The RAM cache's way down: write-back of dirty lines, FUA write-through
 * completions, flushes, and the write-back thread.
 *
 * Write-back starts, oldest dirty line first (the dirty FIFO is ordered by
 * the write sequence number each line took when it became dirty):
 *  - at once for the lines a pending flush needs (dirty since before it),
 *    and for room when a request waits for a line to evict;
 *  - in the background (the "blk-cache-wb" thread, and completions) when
 *    more than half the lines are dirty, until a quarter are, and for lines
 *    dirty for longer than WB_AGE_NS (the thread looks every WB_PERIOD_MS);
 *    background write-back uses at most half the lower requests.
 * A write-back copies the line's dirty blocks (and valid blocks between
 * them) to a bounce buffer and marks them clean before it is sent, so writes
 * to the line go on meanwhile and just make it dirty again; one write-back
 * per line at a time keeps lower writes of a block in order.
 *
 * A flush F records wseq, the highest sequence number handed out when it
 * was submitted.  Every write that completed before F has a sequence number
 * <= F.fseq in a dirty line or in a lower write in flight (write-back,
 * FUA, or a bypassing write that replaced its dirty blocks) until it is
 * below.  F is passed down once the oldest such number exceeds F.fseq,
 * and completes when the lower flush completes.  If a lower
 * write that carried data F needs fails, F fails with -EIO; the data stays
 * dirty and is tried again later (after WB_RETRY_NS in the background, or
 * at the next flush).  At close, what fails to be written back is reported
 * and dropped.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "internal.h"
#include "base/util.h"

#define WB_PERIOD_MS 250
#define WB_AGE_NS (1000 * 1000000ull)
#define WB_RETRY_NS (1000 * 1000000ull)
#define WB_ERRORS_LOGGED 10

/* The oldest write sequence number not yet below; SEQ_NONE if all are. */
static uint64_t oldest_not_below(const struct cache *c)
{
	uint64_t o = c->dhead ? c->dhead->dirty_since : SEQ_NONE;
	for (unsigned i = 0; i < c->nops; i++) {
		const struct cop *op = &c->ops[i];
		if (op->in_use && (op->kind == OP_WB || op->kind == OP_FUA || op->kind == OP_PASS))
			o = MIN(o, op->covers_since);
	}
	return o;
}

static void flush_unlink(struct cache *c, struct creq *f)
{
	struct creq **pp = &c->fhead, *prev = NULL;
	while (*pp && *pp != f) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = f->next;
	if (c->ftail == f)
		c->ftail = prev;
	f->next = NULL;
}

/* Pass down the flushes whose writes are all below. */
static void flush_progress(struct cache *c, struct batch *b)
{
	uint64_t oldest = oldest_not_below(c);
	for (struct creq *f = c->fhead; f; f = f->next) {
		if (f->lower_sent)
			continue;
		if (oldest <= f->fseq)
			break; /* later flushes have later fseqs */
		struct cop *op = op_get(c);
		if (!op)
			break;
		op->kind = OP_FLUSH;
		op->cr = f;
		op->lreq = (struct blk_req){ .op = BLK_FLUSH };
		f->lower_sent = true;
		f->pending++;
		batch_queue(b, op);
	}
}

/* A lower write carrying writes from since on failed: flushes that needed them fail. */
void fail_flushes(struct cache *c, uint64_t since, struct batch *b)
{
	struct creq *f = c->fhead;
	while (f) {
		struct creq *next = f->next;
		if (!f->lower_sent && f->fseq >= since) {
			flush_unlink(c, f);
			f->status = -EIO;
			creq_finish(c, f, b);
		}
		f = next;
	}
}

void flush_submit(struct cache *c, struct creq *cr, struct batch *b)
{
	(void)b;
	cr->fseq = c->wseq;
	cr->next = NULL;
	if (c->ftail)
		c->ftail->next = cr;
	else
		c->fhead = cr;
	c->ftail = cr;
	/* wb_kick(), which every entry point runs last, starts the write-back and passes it down. */
}

void flush_op_done(struct cache *c, struct cop *op, struct batch *b)
{
	struct creq *f = op->cr;
	if (op->lreq.status && !f->status)
		f->status = op->lreq.status;
	op_put(c, op);
	flush_unlink(c, f);
	f->pending--;
	creq_finish(c, f, b);
}

/* Point op's lower request at the next run of its selected sectors; false when none is left. */
static bool wb_next_run(struct cache *c, struct cop *op)
{
	unsigned s = op->cursor, n = op->line->nsec;
	while (s < n && !op->sel[s])
		s++;
	if (s >= n)
		return false;
	unsigned e = s;
	while (e < n && op->sel[e])
		e++;
	op->cursor = e;
	op->first = s;
	op->nsec = e - s;
	size_t off = (size_t)s * c->bs, len = (size_t)(e - s) * c->bs;
	op->iov = (struct iovec){ .iov_base = op->buf + off, .iov_len = len };
	op->lreq = (struct blk_req){ .op = BLK_WRITE, .offset = line_start(op->line) + off, .len = len,
				     .iov = &op->iov, .iovcnt = 1 };
	return true;
}

/* Snapshot l's dirty blocks into op and send them down; false (op unused) if none is dirty. */
static bool start_wb(struct cache *c, struct cop *op, struct line *l, struct batch *b)
{
	unsigned first = l->nsec, last = 0;
	for (unsigned s = 0; s < l->nsec; s++)
		if (l->sec[s] & SEC_DIRTY) {
			first = MIN(first, s);
			last = s;
		}
	if (first > last) { /* never expected: keep the books straight anyway */
		l->ndirty = 0;
		fifo_remove(c, l);
		return false;
	}
	memset(op->sel, 0, sizeof(op->sel));
	for (unsigned s = first; s <= last; s++) {
		op->sel[s] = l->sec[s] & SEC_VALID; /* dirty blocks, and valid ones between them */
		l->sec[s] &= (uint8_t)~SEC_DIRTY;
	}
	memcpy(op->buf + (size_t)first * c->bs, l->data + (size_t)first * c->bs, (size_t)(last - first + 1) * c->bs);
	l->ndirty = 0;
	op->covers_since = l->dirty_since;
	fifo_remove(c, l);
	op->kind = OP_WB;
	op->line = l;
	op->cursor = first;
	TRACE(CACHE_WRITEBACK, line_start(l) + (uint64_t)first * c->bs, (uint64_t)(last - first + 1) * c->bs);
	l->busy = true;
	c->wb_busy++;
	wb_next_run(c, op);
	batch_queue(b, op);
	return true;
}

/* Make op's blocks of l dirty again (a lower write failed). */
static void redirty(struct cache *c, struct cop *op, struct line *l, uint64_t since)
{
	for (unsigned s = 0; s < l->nsec; s++)
		if (op->sel[s] && (l->sec[s] & SEC_VALID) && !(l->sec[s] & SEC_DIRTY)) {
			l->sec[s] |= SEC_DIRTY;
			l->ndirty++;
		}
	if (l->ndirty)
		fifo_insert(c, l, since);
}

static void log_wb_error(struct cache *c, const struct cop *op, int st, bool dropped)
{
	if (c->wb_errors++ >= WB_ERRORS_LOGGED)
		return;
	log_error("block: cache write-back of bytes %llu+%llu failed: %s%s",
		  (unsigned long long)line_start(op->line), (unsigned long long)LINE_SIZE, strerror(-st),
		  dropped ? "; the data is lost" : "; it will be tried again");
}

void wb_op_done(struct cache *c, struct cop *op, struct batch *b)
{
	if (op->lreq.status && !op->status)
		op->status = op->lreq.status;
	if (!op->status && wb_next_run(c, op)) {
		batch_queue(b, op);
		return;
	}
	struct line *l = op->line;
	l->busy = false;
	c->wb_busy--;
	if (op->status) {
		log_wb_error(c, op, op->status, c->closing);
		if (!c->closing) {
			redirty(c, op, l, op->covers_since);
			l->retry_after = now_ns() + WB_RETRY_NS;
			fail_flushes(c, op->covers_since, b);
		}
	}
	op_put(c, op);
	run_waiters(c, l, b);
}

void fua_op_done(struct cache *c, struct cop *op, struct batch *b)
{
	struct line *l = op->line;
	struct creq *cr = op->cr;
	int st = op->lreq.status;
	l->busy = false;
	if (st) {
		if (c->mode == BLK_CACHE_WRITETHROUGH) {
			/* Nothing here is dirty: forget what may not be below. */
			for (unsigned s = 0; s < l->nsec; s++)
				if (op->sel[s])
					l->sec[s] = 0;
			l->gen++;
		} else {
			redirty(c, op, l, op->covers_since != SEQ_NONE ? op->covers_since : ++c->wseq);
			if (op->covers_since != SEQ_NONE)
				fail_flushes(c, op->covers_since, b);
		}
		if (!cr->status)
			cr->status = st;
	}
	op_put(c, op);
	if (!--cr->pending && cr->ended)
		creq_finish(c, cr, b);
	run_waiters(c, l, b);
}

/* Start the write-back that is due, then pass down the flushes that can go. */
void wb_kick(struct cache *c, struct batch *b)
{
	uint64_t urgent = 0;
	bool any_urgent = false;
	for (struct creq *f = c->fhead; f; f = f->next)
		if (!f->lower_sent) {
			urgent = MAX(urgent, f->fseq);
			any_urgent = true;
		}
	if (c->closing) {
		urgent = SEQ_NONE - 1;
		any_urgent = true;
	}
	if (c->pressure && c->ndirty_lines <= c->dirty_lo)
		c->pressure = false;
	uint64_t now = c->dhead ? now_ns() : 0;
	for (struct line *l = c->dhead, *next; l; l = next) {
		next = l->dnext;
		bool need = any_urgent && l->dirty_since <= urgent;
		bool room = c->line_wanted;
		bool bg = b->bg && ((c->pressure && c->ndirty_lines > c->dirty_lo) || now >= l->dirty_time + WB_AGE_NS);
		if (!need && !room && !bg)
			break; /* the rest are younger */
		/* Oldest first: once a line is not needed by a flush, no later one is. */
		if (!need && c->wb_busy >= c->nops / 2)
			break; /* the write-back share of the ops is in use: no more now */
		if (l->busy || (!need && now < l->retry_after))
			continue;
		if (range_busy(c, line_start(l), line_end(c, l)))
			continue;
		struct cop *op = op_get(c);
		if (!op)
			break;
		if (!start_wb(c, op, l, b))
			op_put(c, op);
	}
	flush_progress(c, b);
}

static void *wb_thread(void *arg)
{
	struct cache *c = arg;
	blk_name_thread("blk-cache-wb");
	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += WB_PERIOD_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->wake, &c->lock, &ts);
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->lock);
		cache_kick(c, true);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void wb_init(struct cache *c)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &attr);
	pthread_condattr_destroy(&attr);
}

int wb_thread_start(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	int r = c->threaded ? 0 : -pthread_create(&c->thread, NULL, wb_thread, c);
	if (!r)
		c->threaded = true;
	pthread_mutex_unlock(&c->lock);
	return r;
}

void wb_fini(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	bool threaded = c->threaded;
	pthread_mutex_unlock(&c->lock);
	if (threaded)
		pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->wake);
}

/* close(): write back everything (once; failures are reported and dropped), then flush below. */
void wb_drain(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	for (;;) {
		pthread_mutex_unlock(&c->lock);
		cache_kick(c, false);
		pthread_mutex_lock(&c->lock);
		while (c->ops_busy)
			pthread_cond_wait(&c->idle, &c->lock);
		if (!c->dhead)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	if (c->dev.read_only)
		return;
	int r = blk_io_sync(c->dev.lower, BLK_FLUSH, 0, 0, NULL, 0);
	if (r)
		log_error("block: flushing the image at close failed: %s", strerror(-r));
}
