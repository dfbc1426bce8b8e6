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
			if (pass == 0)
				continue;
			uint64_t a = MAX(start, line_start(l)), e = MIN(end, line_end(c, l));
			for (uint64_t s = (a - line_start(l)) / c->bs; s < (e - line_start(l)) / c->bs; s++) {
				if (l->sec[s] & SEC_DIRTY)
					l->ndirty--;
				l->sec[s] = 0;
			}
			l->gen++;
			if (!l->ndirty)
				fifo_remove(c, l);
		}
		if (pass == 0 && !c->ofree) {
			park(c, cr);
			return;
		}
	}
	struct cop *op = op_get(c);
	op->kind = OP_PASS;
	c->pass_busy++;
	op->cr = cr;
	op->rstart = start;
	op->rend = end;
	op->lreq = (struct blk_req){ .op = r->op, .flags = r->flags, .offset = r->offset, .len = r->len };
	cr->pending++;
	batch_queue(b, op);
	creq_end(c, cr, b);
}

/* Carry a request on from where it stopped. */
void creq_run(struct cache *c, struct creq *cr, struct batch *b)
{
	struct blk_req *r = cr->req;
	if (r->op == BLK_DISCARD || r->op == BLK_WRITE_ZEROES) {
		pass_run(c, cr, b);
		return;
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
	op_put(c, op);
	if (!--cr->pending && cr->ended)
		creq_finish(c, cr, b);
}
