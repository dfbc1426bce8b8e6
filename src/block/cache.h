// SPDX-License-Identifier: MIT
/*
 * The RAM cache's private state, shared by cache.c (lines, lookups,
 * eviction, completions, the interface), cache_req.c (the request steps) and
 * cache_wb.c (write-back, flushes, the write-back thread).  See cache.c for
 * the design.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block.h"

#define LINE_SHIFT 16
#define LINE_SIZE (1u << LINE_SHIFT) /* 64 KiB */
#define SEC_MAX (LINE_SIZE / 512)    /* sectors in a line, at most */
#define CACHE_QUEUE_DEPTH 128        /* upper requests in flight */
#define OPS_MAX 64                   /* lower requests in flight */
#define SEQ_NONE UINT64_MAX

enum { SEC_VALID = 1, SEC_DIRTY = 2 };
enum list_id { LIST_NONE, LIST_FREE, LIST_PROB, LIST_PROT };

struct creq;

struct line {
	uint64_t lno; /* byte offset >> LINE_SHIFT */
	struct line *hnext;
	struct line *prev, *next;   /* its LRU list (probation, protected) or the free list */
	struct line *dprev, *dnext; /* the dirty FIFO, oldest first */
	struct creq *wait_head, *wait_tail; /* requests parked until the line is not busy */
	uint8_t *data;
	uint64_t dirty_since; /* write sequence number when it became dirty; SEQ_NONE when clean */
	uint64_t dirty_time;  /* now_ns() then */
	uint64_t retry_after; /* no background write-back before this (after a failure) */
	uint32_t gen;         /* bumped whenever sectors are invalidated: stale fills are dropped */
	uint16_t nsec;        /* sectors in this line (the device's last line may be short) */
	uint16_t ndirty;      /* dirty sectors */
	uint8_t list;         /* enum list_id */
	bool busy;            /* one lower request for this line is in flight */
	bool in_fifo;
	bool fresh;           /* not accessed since it came in (read-ahead, or its first access now) */
	uint8_t sec[SEC_MAX]; /* SEC_VALID | SEC_DIRTY per sector */
};

struct lru {
	struct line *head, *tail; /* head: most recently used */
	unsigned n;
};

enum op_kind { OP_FILL, OP_WB, OP_FUA, OP_FLUSH, OP_PASS };

/* A request the cache makes of the layer below. */
struct cop {
	struct blk_req lreq;
	struct iovec iov;
	struct cache *c;
	enum op_kind kind;
	bool in_use;
	struct line *line; /* FILL, WB, FUA */
	struct creq *cr;   /* FUA, FLUSH, PASS: the request it serves; FILL: the demand reader */
	uint8_t *buf;      /* LINE_SIZE bounce buffer */
	uint32_t gen;      /* FILL: line->gen when issued */
	unsigned first, nsec; /* FILL, FUA: sectors; WB: the run in flight */
	unsigned cursor;      /* WB: where to look for the next run */
	uint64_t covers_since; /* WB, FUA: oldest write sequence it carries below; SEQ_NONE if none */
	uint64_t rstart, rend; /* PASS: the byte range */
	bool holds_range;      /* PASS: no fill, FUA or write-back overlapping [rstart, rend) starts meanwhile */
	int status;            /* WB: first error among its runs */
	struct cop *next;      /* free list */
	struct cop *dnext;     /* deferred completions (cache.c) */
	uint8_t sel[SEC_MAX];  /* WB, FUA: the sectors it writes */
};

/* An upper request in the cache. */
struct creq {
	struct blk_req *req;
	struct creq *next; /* free list, a wait list or the flush list */
	uint64_t pos;      /* read/write: the next byte to handle */
	uint64_t fseq;     /* flush: every write with a sequence number <= fseq must be below */
	unsigned pending;  /* its lower requests in flight */
	int status;
	bool ended;      /* nothing more to start; finished when pending reaches 0 */
	bool lower_sent; /* flush: the lower flush is issued */
	bool sequential; /* continues the previous request of its kind */
	bool bypass;     /* a large read/write: straight to the layer below if it can (cache_req.c) */
};

/* What a locked section leaves to do once the lock is dropped. */
struct batch {
	struct cop *sub[OPS_MAX];
	unsigned nsub;
	struct blk_req *fin[CACHE_QUEUE_DEPTH];
	unsigned nfin;
	bool bg; /* may start background write-back (not a submitter's thread) */
};

struct cache {
	struct blk_dev dev;
	enum blk_cache_mode mode;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the write-back thread (CLOCK_MONOTONIC; cache_wb.c owns it) */
	pthread_cond_t idle; /* close(): requests and lower requests drained */
	pthread_t thread;
	bool threaded; /* the write-back thread runs (blk_start()) */
	bool stopping, closing;
	uint32_t bs, spl; /* block size, sectors per line */
	unsigned nlines;
	struct line *lines;
	uint8_t *mem;
	size_t memlen;
	struct line **hash;
	uint64_t hmask;
	struct lru freel, prob, prot;
	struct line *dhead, *dtail; /* dirty FIFO */
	unsigned ndirty_lines, dirty_hi, dirty_lo;
	bool pressure;    /* writing back until ndirty_lines <= dirty_lo */
	bool line_wanted; /* a request waits for a line to evict */
	struct creq creqs[CACHE_QUEUE_DEPTH];
	struct creq *cfree;
	unsigned nreq;
	struct creq *gwait_head, *gwait_tail; /* parked for a line, an op or a range op */
	struct creq *fhead, *ftail;           /* flushes, in submission order */
	struct cop ops[OPS_MAX];
	struct cop *ofree;
	unsigned nops, ops_busy, wb_busy;
	unsigned pass_busy; /* OP_PASS ops holding a range in flight: range_busy() is free while there are none */
	uint64_t wseq; /* write sequence: bumped when a line becomes dirty */
	uint64_t ra_next, wr_next;
	unsigned ra_win, ra_max; /* read-ahead window, in lines */
	uint64_t wb_errors;
};

static inline uint64_t line_start(const struct line *l)
{
	return l->lno << LINE_SHIFT;
}

static inline uint64_t line_end(const struct cache *c, const struct line *l)
{
	return line_start(l) + (uint64_t)l->nsec * c->bs;
}

/* cache.c */
struct line *lookup(struct cache *c, uint64_t lno);
/* A line for lno (not cached), or NULL; with make_room, write-back starts so that one frees up. */
struct line *alloc_line(struct cache *c, uint64_t lno, bool make_room, struct batch *b);
void touch(struct cache *c, struct line *l, const struct creq *cr);
bool invalid_span(const struct line *l, unsigned a, unsigned e, unsigned *first, unsigned *end);
void start_fill(struct cache *c, struct cop *op, struct line *l, unsigned first, unsigned n, struct creq *reader,
		struct batch *b);
void prefetch(struct cache *c, uint64_t lno, struct batch *b);
void park(struct cache *c, struct creq *cr);
struct cop *op_get(struct cache *c);
void op_put(struct cache *c, struct cop *op);
void fifo_remove(struct cache *c, struct line *l);
void fifo_insert(struct cache *c, struct line *l, uint64_t since);
void park_line(struct line *l, struct creq *cr);
void run_waiters(struct cache *c, struct line *l, struct batch *b);
void creq_finish(struct cache *c, struct creq *cr, struct batch *b);
bool range_busy(struct cache *c, uint64_t start, uint64_t end);
void batch_queue(struct batch *b, struct cop *op);
/* Without the lock: submit b's lower requests, then complete its upper ones. */
void batch_run(struct cache *c, struct batch *b);
/* Without the lock: start the write-back that is due (bg: background write-back too). */
void cache_kick(struct cache *c, bool bg);
blk_done_fn cache_op_done;

/* cache_req.c */
#define BYPASS_MIN (2 * LINE_SIZE) /* reads and writes of 128 KiB or more bypass the cache (cache_req.c) */
void creq_run(struct cache *c, struct creq *cr, struct batch *b);
void fill_done(struct cache *c, struct cop *op, struct batch *b);
void pass_done(struct cache *c, struct cop *op, struct batch *b);

/* cache_wb.c */
void wb_kick(struct cache *c, struct batch *b);
void wb_op_done(struct cache *c, struct cop *op, struct batch *b);
void fua_op_done(struct cache *c, struct cop *op, struct batch *b);
void flush_submit(struct cache *c, struct creq *cr, struct batch *b);
void flush_op_done(struct cache *c, struct cop *op, struct batch *b);
/* A lower write carrying writes from since on failed: the flushes waiting for them fail. */
void fail_flushes(struct cache *c, uint64_t since, struct batch *b);
void wb_init(struct cache *c);
int wb_thread_start(struct cache *c);
void wb_fini(struct cache *c); /* stops the thread if it runs */
void wb_drain(struct cache *c);
