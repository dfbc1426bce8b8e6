// SPDX-License-Identifier: MIT
/*
 * The RAM cache's request steps: an upper request handled line by line
 * (read, buffered write, FUA/write-through write, discard/write-zeroes),
 * and the completions of fills and pass-through requests.  Everything here
 * runs with the cache's mutex held; see cache.c for the design.
 */
#include <string.h>

#include "base/util.h"
#include "cache.h"
#include "internal.h"

#define REQ_PREFETCH 8 /* lines of a large read fetched ahead of its copying */
#define FILL_ALIGN 4096

enum step { STEP_DONE, STEP_PARKED };

/* ---- request steps ----------------------------------------------------- */

void creq_finish(struct cache *c, struct creq *cr, struct batch *b)
{
	struct blk_req *r = cr->req;
	r->status = cr->status;
	b->fin[b->nfin++] = r;
	cr->req = NULL;
	cr->next = c->cfree;
	c->cfree = cr;
	if (!--c->nreq)
		pthread_cond_broadcast(&c->idle);
}

static void creq_end(struct cache *c, struct creq *cr, struct batch *b)
{
	cr->ended = true;
	if (!cr->pending)
		creq_finish(c, cr, b);
}

/* One line's part of a read. */
static enum step read_step(struct cache *c, struct creq *cr, uint64_t lno, unsigned a, unsigned e,
			   struct batch *b)
{
	struct blk_req *r = cr->req;
	struct line *l = lookup(c, lno);
	unsigned f, z;
	if (l && !invalid_span(l, a, e, &f, &z)) {
		TRACE(CACHE_HIT, (lno << LINE_SHIFT) + (uint64_t)a * c->bs, (uint64_t)(e - a) * c->bs);
		blk_iov_from_buf(r->iov, r->iovcnt, cr->pos - r->offset, l->data + (size_t)a * c->bs,
				 (size_t)(e - a) * c->bs);
		touch(c, l, cr);
		return STEP_DONE;
	}
	uint64_t start = lno << LINE_SHIFT;
	if (range_busy(c, start, start + LINE_SIZE)) {
		park(c, cr);
		return STEP_PARKED;
	}
	if (!l && !(l = alloc_line(c, lno, true, b))) {
		park(c, cr);
		return STEP_PARKED;
	}
	if (l->busy) {
		park_line(l, cr);
		return STEP_PARKED;
	}
	struct cop *op = op_get(c);
	if (!op) {
		park(c, cr);
		return STEP_PARKED;
	}
	invalid_span(l, a, e, &f, &z);
	unsigned align = FILL_ALIGN / c->bs;
	f = f / align * align;
	z = cr->sequential ? l->nsec : MIN((unsigned)ALIGN_UP(z, align), (unsigned)l->nsec);
	start_fill(c, op, l, f, z - f, cr, b);
	park_line(l, cr);
	/* A large read: fetch its next lines meanwhile. */
	uint64_t last = (r->offset + r->len - 1) >> LINE_SHIFT;
	for (uint64_t n = lno + 1; n <= last && n <= lno + REQ_PREFETCH; n++)
		prefetch(c, n, b);
	return STEP_PARKED;
}

/* One line's part of a write that goes through to the layer below with FUA. */
static enum step fua_step(struct cache *c, struct creq *cr, struct line *l, unsigned a, unsigned e,
			  struct batch *b)
{
	struct blk_req *r = cr->req;
	if (l->busy) {
		park_line(l, cr);
		return STEP_PARKED;
	}
	struct cop *op;
	if (range_busy(c, line_start(l), line_end(c, l)) || !(op = op_get(c))) {
		park(c, cr);
		return STEP_PARKED;
	}
	size_t off = (size_t)a * c->bs, len = (size_t)(e - a) * c->bs;
	blk_iov_to_buf(r->iov, r->iovcnt, cr->pos - r->offset, l->data + off, len);
	bool had_dirty = false;
	memset(op->sel, 0, sizeof(op->sel));
	for (unsigned s = a; s < e; s++) {
		if (l->sec[s] & SEC_DIRTY) {
			had_dirty = true;
			l->ndirty--;
		}
		l->sec[s] = SEC_VALID;
		op->sel[s] = 1;
	}
	/* Older dirty data in these blocks now goes down with this write. */
	op->covers_since = had_dirty ? l->dirty_since : SEQ_NONE;
	if (!l->ndirty)
		fifo_remove(c, l);
	memcpy(op->buf + off, l->data + off, len);
	op->kind = OP_FUA;
	op->line = l;
	op->cr = cr;
	op->first = a;
	op->nsec = e - a;
	op->iov = (struct iovec){ .iov_base = op->buf + off, .iov_len = len };
	op->lreq = (struct blk_req){ .op = BLK_WRITE, .flags = BLK_FUA, .offset = line_start(l) + off,
				     .len = len, .iov = &op->iov, .iovcnt = 1 };
	l->busy = true;
	cr->pending++;
	batch_queue(b, op);
	return STEP_DONE;
}

/* One line's part of a write. */
static enum step write_step(struct cache *c, struct creq *cr, uint64_t lno, unsigned a, unsigned e,
			    struct batch *b)
{
	struct blk_req *r = cr->req;
	struct line *l = lookup(c, lno);
	if (!l && !(l = alloc_line(c, lno, true, b))) {
		park(c, cr);
		return STEP_PARKED;
	}
	if ((r->flags & BLK_FUA) || c->mode == BLK_CACHE_WRITETHROUGH) {
		enum step s = fua_step(c, cr, l, a, e, b);
		if (s == STEP_DONE)
			touch(c, l, cr);
		return s;
	}
	blk_iov_to_buf(r->iov, r->iovcnt, cr->pos - r->offset, l->data + (size_t)a * c->bs, (size_t)(e - a) * c->bs);
	for (unsigned s = a; s < e; s++) {
		if (!(l->sec[s] & SEC_DIRTY))
			l->ndirty++;
		l->sec[s] = SEC_VALID | SEC_DIRTY;
	}
	if (!l->in_fifo)
		fifo_insert(c, l, ++c->wseq);
	touch(c, l, cr);
	if (c->ndirty_lines > c->dirty_hi && !c->pressure) {
		c->pressure = true;
		pthread_cond_signal(&c->wake);
	}
	return STEP_DONE;
}

/*
 * Forget l's blocks in [start, end) (they overlap): dirty ones too, whose
 * data the request passed down replaces.  Returns l's dirty_since if dirty
 * blocks were dropped, else SEQ_NONE.
 */
static uint64_t drop_blocks(struct cache *c, struct line *l, uint64_t start, uint64_t end)
{
	uint64_t a = MAX(start, line_start(l)), e = MIN(end, line_end(c, l)), since = SEQ_NONE;
	for (uint64_t s = (a - line_start(l)) / c->bs; s < (e - line_start(l)) / c->bs; s++) {
		if (l->sec[s] & SEC_DIRTY) {
			l->ndirty--;
			since = l->dirty_since;
		}
		l->sec[s] = 0;
	}
	l->gen++; /* a fill in flight would bring back what was there before */
	if (!l->ndirty)
		fifo_remove(c, l);
	return since;
}

/* Send cr's request itself down as an OP_PASS lower request (the cache holds an op for it: c->ofree). */
static void pass_down(struct cache *c, struct creq *cr, bool holds_range, uint64_t covers_since, struct batch *b)
{
	struct blk_req *r = cr->req;
	struct cop *op = op_get(c);
	op->kind = OP_PASS;
	op->holds_range = holds_range;
	c->pass_busy += holds_range;
	op->cr = cr;
	op->rstart = r->offset;
	op->rend = r->offset + r->len;
	op->covers_since = covers_since;
	unsigned flags = r->flags;
	if (r->op == BLK_WRITE && c->mode == BLK_CACHE_WRITETHROUGH)
		flags |= BLK_FUA;
	op->lreq = (struct blk_req){ .op = r->op, .flags = flags, .offset = r->offset, .len = r->len,
				     .iov = r->iov, .iovcnt = r->iovcnt };
	cr->pending++;
	batch_queue(b, op);
	creq_end(c, cr, b);
}

/* Discard / write-zeroes: wait for busy lines in range, invalidate, pass down. */
static void pass_run(struct cache *c, struct creq *cr, struct batch *b)
{
	struct blk_req *r = cr->req;
	uint64_t start = r->offset, end = r->offset + r->len;
	uint64_t first = start >> LINE_SHIFT, last = (end - 1) >> LINE_SHIFT;
	bool scan_all = last - first >= c->nlines;
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = scan_all ? 0 : first; scan_all ? i < c->nlines : i <= last; i++) {
			struct line *l = scan_all ? &c->lines[i] : lookup(c, i);
			if (!l || l->list == LIST_FREE || line_start(l) >= end || line_end(c, l) <= start)
				continue;
			if (pass == 0 && l->busy) {
				park_line(l, cr);
				return;
			}
			if (pass == 1)
				drop_blocks(c, l, start, end); /* the range's contents are undefined or zero now */
		}
		if (pass == 0 && !c->ofree) {
			park(c, cr);
			return;
		}
	}
	pass_down(c, cr, true, SEQ_NONE, b);
}

/*
 * A read or write of BYPASS_MIN bytes or more goes straight to the layer
 * below with the caller's buffers, as one request: streaming I/O gains
 * nothing from a second copy in RAM (the host's page cache is below in the
 * cached modes), and the line-by-line path would split it into 64 KiB
 * lower requests, each copied twice.  (Caches such as bcache let
 * sequential I/O past a cutoff bypass them in the same way.)
 *  - A read bypasses only if no block of its range is dirty here and no
 *    line of it has a lower request in flight (a write-back's data is not
 *    below yet); otherwise it takes the cached path.  It holds no range:
 *    writes may overlap it, as they may any read in flight.
 *  - A write waits for the busy lines of its range, drops the range's
 *    blocks from the cache (dirty ones too: its data replaces theirs) and
 *    holds the range while it is in flight, so that no fill, FUA write or
 *    write-back of an overlapping line is issued before it is below (those
 *    wait in range_busy()).  If it dropped dirty blocks it carries their
 *    write sequence number, so that a flush waits for it as for a
 *    write-back (oldest_not_below()); if it fails, those flushes fail.
 *    With BLK_CACHE_WRITETHROUGH it goes down with BLK_FUA.
 * Returns false when the request should take the cached path instead.
 */
static bool bypass_run(struct cache *c, struct creq *cr, struct batch *b)
{
	struct blk_req *r = cr->req;
	bool write = r->op == BLK_WRITE;
	uint64_t start = r->offset, end = r->offset + r->len;
	uint64_t first = start >> LINE_SHIFT, last = (end - 1) >> LINE_SHIFT;
	if (range_busy(c, start, end)) {
		park(c, cr);
		return true;
	}
	for (uint64_t i = first; i <= last; i++) {
		struct line *l = lookup(c, i);
		if (!l)
			continue;
		if (l->busy) {
			if (!write)
				return false;
			park_line(l, cr);
			return true;
		}
		if (!write && l->ndirty) {
			uint64_t a = (MAX(start, line_start(l)) - line_start(l)) / c->bs;
			uint64_t e = (MIN(end, line_end(c, l)) - line_start(l)) / c->bs;
			for (uint64_t s = a; s < e; s++)
				if (l->sec[s] & SEC_DIRTY)
					return false;
		}
	}
	if (!c->ofree) {
		park(c, cr);
		return true;
	}
	uint64_t covers = SEQ_NONE;
	for (uint64_t i = first; write && i <= last; i++) {
		struct line *l = lookup(c, i);
		uint64_t since = l ? drop_blocks(c, l, start, end) : SEQ_NONE;
		covers = MIN(covers, since);
	}
	TRACE(CACHE_BYPASS, r->op, start, r->len);
	pass_down(c, cr, write, covers, b);
	return true;
}

/* Carry a request on from where it stopped. */
void creq_run(struct cache *c, struct creq *cr, struct batch *b)
{
	struct blk_req *r = cr->req;
	if (r->op == BLK_DISCARD || r->op == BLK_WRITE_ZEROES) {
		pass_run(c, cr, b);
		return;
	}
	if (cr->bypass) {
		if (bypass_run(c, cr, b))
			return;
		cr->bypass = false;
	}
	uint64_t end = r->offset + r->len;
	while (cr->pos < end && !cr->status) {
		uint64_t lno = cr->pos >> LINE_SHIFT, lstart = lno << LINE_SHIFT;
		unsigned a = (unsigned)((cr->pos - lstart) / c->bs);
		unsigned e = (unsigned)((MIN(end, lstart + LINE_SIZE) - lstart) / c->bs);
		enum step s = r->op == BLK_READ ? read_step(c, cr, lno, a, e, b) : write_step(c, cr, lno, a, e, b);
		if (s == STEP_PARKED)
			return;
		cr->pos = lstart + (uint64_t)e * c->bs;
	}
	creq_end(c, cr, b);
}

void fill_done(struct cache *c, struct cop *op, struct batch *b)
{
	struct line *l = op->line;
	int st = op->lreq.status;
	l->busy = false;
	if (!st && op->gen == l->gen) {
		for (unsigned s = op->first; s < op->first + op->nsec; s++)
			if (!(l->sec[s] & SEC_VALID)) {
				memcpy(l->data + (size_t)s * c->bs, op->buf + (size_t)(s - op->first) * c->bs, c->bs);
				l->sec[s] = SEC_VALID;
			}
	}
	if (st && op->cr)
		op->cr->status = st; /* the reader that asked for this fill fails; others try their own */
	op_put(c, op);
	run_waiters(c, l, b);
}

void pass_done(struct cache *c, struct cop *op, struct batch *b)
{
	struct creq *cr = op->cr;
	if (op->lreq.status && !cr->status)
		cr->status = op->lreq.status;
	/* A bypassing write that replaced dirty blocks failed: the flushes that needed those fail too. */
	if (op->lreq.status && op->covers_since != SEQ_NONE)
		fail_flushes(c, op->covers_since, b);
	op_put(c, op);
	if (!--cr->pending && cr->ended)
		creq_finish(c, cr, b);
}
