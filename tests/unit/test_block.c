// SPDX-License-Identifier: MIT
/*
 * The block stack (src/block): each layer alone and stacked, driven by many
 * concurrent requests checked against a shadow copy; the cache's flush and
 * FUA rules against a recording fake bottom layer (blkfake.h); partition
 * tables, good and malformed; --disk option parsing.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "blkfake.h"
#include "block/block.h"
#include "unit.h"
#include "util.h"

static char tmpdir[256];
static bool have_uring = true;
static char uring_why[256];

/* A temporary image of size bytes (sparse); the caller unlinks it. */
static void tmp_image(char *path, size_t n, uint64_t size)
{
	snprintf(path, n, "%s/keel-blk-XXXXXX", tmpdir);
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		abort();
	close(fd);
}

static uint64_t rnd(uint64_t *s)
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

static void work_done(struct blk_req *r)
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

static bool overlaps_inflight(struct work *w, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < W_SLOTS; i++) {
		struct wreq *q = &w->slots[i];
		if (q->busy && q->req.op != BLK_FLUSH && off < q->req.offset + q->req.len && q->req.offset < off + len)
			return true;
	}
	return false;
}

/* Split [buf, buf+len) into 1..8 iovecs at block boundaries... or anywhere (the layers must not care). */
static unsigned split(struct wreq *q, uint64_t len, uint64_t *s)
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

static void work_init(struct work *w, struct blk_dev *d, unsigned qd)
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

static void work_fini(struct work *w)
{
	for (unsigned i = 0; i < W_SLOTS; i++) {
		free(w->slots[i].buf);
		free(w->slots[i].expect);
	}
	free(w->shadow);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

static void work_wait_idle(struct work *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->inflight)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

/* n random requests, up to w->qd in flight; mostly small, some large; no two in flight overlap. */
static void work_run(struct work *w, unsigned n, uint64_t seed)
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
static bool work_verify_all(struct work *w)
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

static void check_work(struct work *w, unsigned n)
{
	CHECK_EQ(w->submitted, n);
	CHECK_EQ(w->completed, n);
	CHECK_EQ(w->bad_status, 0);
	CHECK_EQ(w->bad_data, 0);
	CHECK_EQ(w->bad_eagain, 0);
	CHECK(work_verify_all(w));
}

/* Compare the image file with the shadow (after close). */
static bool file_matches(const char *path, const uint8_t *shadow, uint64_t off, uint64_t size)
{
	int fd = open(path, O_RDONLY);
	uint8_t *buf = malloc(size);
	bool ok = fd >= 0 && pread_full(fd, buf, size, off) == 0 && !memcmp(buf, shadow, size);
	free(buf);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ---- option parsing and request checks ---------------------------------- */

static void parse_good(void)
{
	struct blk_options o;
	char err[256], s1[] = "path=disk.img";
	CHECK_EQ(blk_parse_disk_option(s1, &o, err, sizeof(err)), 0);
	CHECK(!strcmp(o.path, "disk.img"));
	CHECK_EQ(o.cache, BLK_CACHE_WRITEBACK);
	CHECK_EQ(o.cache_size, 64 * MiB);
	CHECK(!o.readonly);
	CHECK_EQ(o.partition, 0);
	CHECK_EQ(o.serial[0], 0);

	char s2[] = "path=/a,,b.img,format=raw,cache=writethrough,cache-size=2G,readonly,partition=3,serial=ABC 123";
	CHECK_EQ(blk_parse_disk_option(s2, &o, err, sizeof(err)), 0);
	CHECK(!strcmp(o.path, "/a,b.img"));
	CHECK_EQ(o.cache, BLK_CACHE_WRITETHROUGH);
	CHECK_EQ(o.cache_size, 2 * GiB);
	CHECK(o.readonly);
	CHECK_EQ(o.partition, 3);
	CHECK(!strcmp(o.serial, "ABC 123"));

	char s3[] = "cache=none,path=x,readonly=off,serial=12345678901234567890";
	CHECK_EQ(blk_parse_disk_option(s3, &o, err, sizeof(err)), 0);
	CHECK_EQ(o.cache, BLK_CACHE_NONE);
	CHECK(!o.readonly);
	CHECK_EQ(strlen(o.serial), 20);
}

static void parse_bad(void)
{
	static const struct {
		const char *in, *msg;
	} cases[] = {
		{ "", "empty item" },
		{ "format=raw", "needs path=FILE" },
		{ "path=", "path= is empty" },
		{ "path", "'path' needs a value" },
		{ "path=a,path=b", "'path' is given twice" },
		{ "path=a,size=1G", "unknown disk option 'size'" },
		{ "path=a,format=qcow2", "'qcow2' is not supported" },
		{ "path=a,cache=fast", "cache=fast is not one of writeback, writethrough, none" },
		{ "path=a,cache-size=lots", "cache-size=lots is not a size" },
		{ "path=a,cache-size=4k", "cache-size=4k is out of range" },
		{ "path=a,cache=none,cache-size=8M", "no meaning with cache=none" },
		{ "path=a,readonly=maybe", "readonly=maybe" },
		{ "path=a,partition=0", "partition=0 is not a partition number" },
		{ "path=a,partition=x", "partition=x is not a partition number" },
		{ "path=a,serial=123456789012345678901", "must be 1 to 20 characters" },
		{ "path=a,serial=", "must be 1 to 20 characters" },
		{ "path=a,serial=a\tb", "printable ASCII only" },
		{ "path=a,,", "needs path=FILE" }, /* ",," is a comma in the path; no path= then? it is: "a," */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct blk_options o;
		char err[256] = "", buf[128];
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		int r = blk_parse_disk_option(buf, &o, err, sizeof(err));
		if (i == ARRAY_SIZE(cases) - 1) {
			CHECK_EQ(r, 0); /* "path=a,," is the path "a," */
			CHECK(r || !strcmp(o.path, "a,"));
			continue;
		}
		CHECK_EQ(r, -EINVAL);
		if (!strstr(err, cases[i].msg)) {
			fprintf(stderr, "parse_bad: '%s' gave '%s', expected '%s'\n", cases[i].in, err, cases[i].msg);
			CHECK(strstr(err, cases[i].msg));
		}
		CHECK(!strchr(err, '\n'));
	}
}

static void req_checks(void)
{
	struct fake *f = fake_new(1 * MiB, 512, 8, FAKE_SYNC);
	struct blk_dev *d = &f->dev;
	uint8_t buf[1024];
	struct iovec iov = { buf, 512 };
	struct blk_req r = { .op = BLK_READ, .offset = 0, .len = 512, .iov = &iov, .iovcnt = 1 };
	CHECK_EQ(blk_req_check(d, &r), 0);
	r.offset = 100;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* misaligned */
	r.offset = 1 * MiB;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* past the end */
	r.offset = UINT64_MAX - 511;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* wraps */
	r.offset = 0;
	r.len = 1024;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* iov sum differs */
	r.len = 512;
	r.flags = BLK_FUA;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* FUA on a read */
	r.flags = 0;
	r.iovcnt = BLK_IOV_MAX + 1;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL);
	r.iovcnt = 1;
	r.op = (enum blk_op)42;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL);
	struct blk_req fl = { .op = BLK_FLUSH, .len = 512 };
	CHECK_EQ(blk_req_check(d, &fl), -EINVAL);
	struct blk_req wz = { .op = BLK_WRITE_ZEROES, .flags = BLK_FUA, .len = 512 };
	CHECK_EQ(blk_req_check(d, &wz), -EINVAL);
	d->read_only = true;
	r.op = BLK_WRITE;
	CHECK_EQ(blk_req_check(d, &r), -EROFS);
	wz.flags = BLK_UNMAP;
	CHECK_EQ(blk_req_check(d, &wz), -EROFS);
	r.op = BLK_READ;
	CHECK_EQ(blk_req_check(d, &r), 0);
	d->read_only = false;
	d->can_discard = false;
	struct blk_req dc = { .op = BLK_DISCARD, .len = 512 };
	CHECK_EQ(blk_req_check(d, &dc), -EOPNOTSUPP);
	fake_free(f);
}

/* ---- the file layer ----------------------------------------------------- */

static struct blk_dev *open_file(const char *path, bool ro, bool direct)
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

/* done() blocks until the gate opens: the completion thread stalls, the queue fills up. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	unsigned entered, done;
};
static struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0 };
static atomic_int gate_counts[512];

static void gate_done(struct blk_req *r)
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
	char err[256];
	snprintf(direct_path, sizeof(direct_path), "/var/tmp/keel-blk-direct-XXXXXX");
	int fd = mkstemp(direct_path);
	if (fd < 0 || ftruncate(fd, 4 * MiB) < 0) {
		SKIP("block", "file_direct", "cannot create a file in /var/tmp");
		return;
	}
	close(fd);
	struct blk_dev *d = NULL;
	int r = blk_file_open(direct_path, false, true, &d, err, sizeof(err));
	if (r == -EINVAL && strstr(err, "O_DIRECT")) {
		printf("SKIP block/file_direct: %s\n", err);
	} else {
		blk_close(d);
		unit_run("block", "file_direct", file_direct_body);
	}
	unlink(direct_path);
}

/* ---- the cache ---------------------------------------------------------- */

static struct blk_dev *open_cache(struct blk_dev *lower, enum blk_cache_mode mode, uint64_t size)
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

struct flag_req {
	struct blk_req req;
	struct iovec iov;
	atomic_int done;
	struct fake *f;
	int lower_flushes_done; /* fake completions of FLUSH when done() ran */
	bool durable;           /* for writes: in the fake's durable copy when done() ran */
};

static unsigned fake_flushes_done(struct fake *f)
{
	unsigned n = 0;
	for (unsigned i = 0; i < f->nlog; i++)
		n += f->log[i].op == BLK_FLUSH;
	return n - fake_count(f, BLK_FLUSH);
}

static void flag_done(struct blk_req *r)
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

static int flag_submit(struct blk_dev *d, struct flag_req *q, struct fake *f, enum blk_op op, unsigned flags,
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
	uint8_t buf[64 * 1024];
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
			len = (1 + rnd(&s) % (rnd(&s) % 4 ? 8 : 128)) * 512;
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
	static uint8_t buf[65536];
	static const unsigned hot[] = { 0, 4, 2, 6, 6, 2, 4, 0 };
	for (size_t i = 0; i < ARRAY_SIZE(hot); i++)
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, hot[i] * 65536ull, buf, 65536), 0);
	unsigned before = f->nlog;
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, hot[i] * 65536ull, buf, 65536), 0);
	CHECK_EQ(f->nlog, before); /* hits */
	for (uint64_t off = 1 * MiB; off < 5 * MiB; off += 65536)
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, off, buf, 65536), 0);
	CHECK(f->nlog > before + 60);
	before = f->nlog;
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, hot[i] * 65536ull + 512, buf, 4096), 0);
	CHECK_EQ(f->nlog, before); /* still hits */
	blk_close(d);
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

/* Completions pass up in the order they come from below, not in submission order. */
static unsigned order[8], norder;
static void order_done(struct blk_req *r)
{
	order[norder++] = (unsigned)r->tag;
}

static void out_of_order(void)
{
	struct fake *f = fake_new(1 * MiB, 512, 16, FAKE_MANUAL);
	uint8_t *img = f->vol;
	img[510] = 0x55;
	img[511] = 0xaa;
	uint8_t *e = img + 446;
	e[4] = 0x83;
	uint32_t lba = 8, cnt = 2040;
	memcpy(e + 8, &lba, 4);
	memcpy(e + 12, &cnt, 4);
	fake_set_mode(f, FAKE_SYNC);
	struct blk_dev *p = NULL, *c = NULL;
	char err[256];
	CHECK_EQ(blk_part_open(&f->dev, 1, &p, err, sizeof(err)), 0);
	if (!p) {
		fake_free(f);
		return;
	}
	fake_set_mode(f, FAKE_MANUAL);
	c = open_cache(p, BLK_CACHE_WRITEBACK, 1 * MiB);
	static struct blk_req r[8];
	static struct iovec iov[8];
	static uint8_t buf[8][512];
	for (int layer = 0; layer < 2; layer++) {
		norder = 0;
		for (unsigned i = 0; i < 8; i++) {
			iov[i] = (struct iovec){ buf[i], 512 };
			r[i] = (struct blk_req){ .op = BLK_READ, .tag = i, .offset = (uint64_t)i * 128 * KiB + (layer ? 65536 : 0),
						 .len = 512, .iov = &iov[i], .iovcnt = 1, .done = order_done };
			CHECK_EQ(blk_submit(layer ? c : p, &r[i]), 0);
		}
		/* Complete the newest first. */
		while (f->npending) {
			pthread_mutex_lock(&f->lock);
			unsigned best = 0;
			for (unsigned i = 1; i < f->npending; i++)
				if (f->pending[i]->offset > f->pending[best]->offset)
					best = i;
			fake_complete_locked(f, best);
			pthread_mutex_unlock(&f->lock);
		}
		CHECK_EQ(norder, 8);
		for (unsigned i = 0; i < norder; i++)
			CHECK_EQ(order[i], 7 - i);
	}
	fake_set_mode(f, FAKE_SYNC);
	blk_close(c);
	fake_free(f);
}

/* ---- partitions --------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void mbr_entry(uint8_t *sec, int i, uint8_t status, uint8_t type, uint32_t lba, uint32_t count)
{
	uint8_t *e = sec + 446 + 16 * i;
	e[0] = status;
	e[4] = type;
	put32(e + 8, lba);
	put32(e + 12, count);
	sec[510] = 0x55;
	sec[511] = 0xaa;
}

/* Open partition n of the fake's image; 0 or -errno with the message in err. */
static int try_part(struct fake *f, unsigned n, struct blk_dev **p, char *err, size_t errlen)
{
	*p = NULL;
	err[0] = 0;
	return blk_part_open(&f->dev, n, p, err, errlen);
}

#define EXPECT_PART_ERR(f, n, text)                                                            \
	do {                                                                                   \
		struct blk_dev *_p;                                                            \
		char _err[256];                                                                \
		int _r = try_part(f, n, &_p, _err, sizeof(_err));                              \
		CHECK(_r < 0 && !_p);                                                          \
		if (!strstr(_err, text)) {                                                     \
			fprintf(stderr, "partition %u: '%s', expected '%s'\n", n, _err, text); \
			CHECK(strstr(_err, text));                                             \
		}                                                                              \
	} while (0)

/* Partition n must be at blocks [first, first + count): size, and where a write lands. */
static void check_part_at(struct fake *f, unsigned n, uint64_t first, uint64_t count)
{
	struct blk_dev *p;
	char err[256];
	uint32_t bs = f->dev.block_size;
	int r = try_part(f, n, &p, err, sizeof(err));
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "partition %u: %s\n", n, err);
		return;
	}
	CHECK_EQ(p->size, count * bs);
	CHECK(!strcmp(p->layer, "part"));
	uint8_t *buf = malloc(bs);
	memset(buf, (int)(0x40 + n), bs);
	CHECK_EQ(blk_io_sync(p, BLK_WRITE, 0, 0, buf, bs), 0);
	CHECK_EQ(blk_io_sync(p, BLK_WRITE, 0, (count - 1) * bs, buf, bs), 0);
	CHECK(!memcmp(f->vol + first * bs, buf, bs));
	CHECK(!memcmp(f->vol + (first + count - 1) * bs, buf, bs));
	CHECK_EQ(blk_io_sync(p, BLK_READ, 0, count * bs, buf, bs), -EINVAL);
	CHECK_EQ(blk_io_sync(p, BLK_WRITE, 0, (count - 1) * bs, buf, 0), 0);
	CHECK_EQ(blk_io_sync(p, BLK_DISCARD, 0, (count - 1) * bs, NULL, 2 * (uint64_t)bs), -EINVAL);
	CHECK_EQ(blk_io_sync(p, BLK_FLUSH, 0, 0, NULL, 0), 0);
	/* Put the bytes back: later partitions of the same image are checked against the table. */
	memset(f->vol + first * bs, 0, bs);
	memset(f->vol + (first + count - 1) * bs, 0, bs);
	free(buf);
	p->lower = NULL; /* keep the fake: close only the part layer */
	blk_close(p);
}

static void part_mbr(void)
{
	struct fake *f = fake_new(8 * MiB, 512, 16, FAKE_SYNC); /* 16384 blocks */
	uint8_t *m = f->vol;
	mbr_entry(m, 0, 0x80, 0x83, 2048, 4096);
	mbr_entry(m, 1, 0x00, 0x83, 6144, 2048);
	mbr_entry(m, 2, 0x00, 0x05, 8192, 8192);
	/* Logical partitions: EBRs at 8192 and 12288. */
	mbr_entry(m + 8192 * 512, 0, 0, 0x83, 2048, 1024);
	mbr_entry(m + 8192 * 512, 1, 0, 0x05, 4096, 4096);
	mbr_entry(m + 12288 * 512, 0, 0, 0x83, 2048, 1024);
	check_part_at(f, 1, 2048, 4096);
	check_part_at(f, 2, 6144, 2048);
	check_part_at(f, 5, 10240, 1024);
	check_part_at(f, 6, 14336, 1024);
	EXPECT_PART_ERR(f, 3, "partition 3 is an extended partition");
	EXPECT_PART_ERR(f, 4, "partition 4 does not exist (the MBR has 5 partitions: 1, 2, 3, 5, 6)");
	EXPECT_PART_ERR(f, 7, "partition 7 does not exist");
	EXPECT_PART_ERR(f, 0, "partition 0 does not exist");

	/* A looping chain of EBRs ends with a message. */
	mbr_entry(m + 12288 * 512, 1, 0, 0x05, 0, 4096);
	EXPECT_PART_ERR(f, 6, "chain of logical partitions is broken");
	mbr_entry(m + 12288 * 512, 1, 0, 0, 0, 0);
	mbr_entry(m + 12288 * 512, 0, 0, 0x83, 2048, 9999);
	EXPECT_PART_ERR(f, 6, "logical partition 6");

	memset(m, 0, 512);
	mbr_entry(m, 0, 0, 0x83, 2048, 4096);
	mbr_entry(m, 1, 0, 0x83, 6144, 2048);
	EXPECT_PART_ERR(f, 3, "partition 3 does not exist (the MBR has 2 partitions)");
	mbr_entry(m, 1, 0, 0x83, 6000, 2048);
	EXPECT_PART_ERR(f, 1, "partitions 1 and 2 overlap");
	mbr_entry(m, 1, 0, 0x83, 6144, 16384);
	EXPECT_PART_ERR(f, 1, "partition 2 (blocks 6144+16384) does not lie inside the disk");
	mbr_entry(m, 1, 0, 0x83, 0, 100);
	EXPECT_PART_ERR(f, 2, "does not lie inside the disk");
	mbr_entry(m, 1, 0x12, 0x83, 6144, 2048);
	EXPECT_PART_ERR(f, 1, "status byte 0x12");
	memset(m, 0, 512);
	EXPECT_PART_ERR(f, 1, "no partition table");
	fake_free(f);
}

/* A GPT: protective MBR, header at block 1, 128 entries of 128 bytes at block 2. */
struct gpt_spec {
	uint64_t first_usable, last_usable, entries_lba;
	uint32_t nentries, esize, hsize;
	struct {
		uint64_t first, last;
	} part[8]; /* entry i+1; first == 0: unused */
};

static void gpt_default(struct gpt_spec *g, uint64_t blocks, uint32_t bs)
{
	memset(g, 0, sizeof(*g));
	g->nentries = 128;
	g->esize = 128;
	g->hsize = 92;
	g->entries_lba = 2;
	g->first_usable = 2 + (128 * 128 + bs - 1) / bs;
	g->last_usable = blocks - g->first_usable;
}

static void gpt_write(struct fake *f, const struct gpt_spec *g)
{
	uint32_t bs = f->dev.block_size;
	uint64_t blocks = f->dev.size / bs;
	uint8_t *img = f->vol;
	memset(img, 0, 2 * bs);
	mbr_entry(img, 0, 0, 0xee, 1, (uint32_t)MIN(blocks - 1, 0xffffffffull));
	size_t abytes = (size_t)g->nentries * g->esize;
	uint8_t *arr = img + g->entries_lba * bs;
	if (g->entries_lba * bs + abytes <= f->dev.size) {
		memset(arr, 0, abytes);
		for (unsigned i = 0; i < 8 && i < g->nentries; i++) {
			if (!g->part[i].first)
				continue;
			uint8_t *e = arr + (size_t)i * g->esize;
			memset(e, 0xaf, 16); /* type GUID */
			memset(e + 16, (int)i + 1, 16);
			put64(e + 32, g->part[i].first);
			put64(e + 40, g->part[i].last);
		}
	}
	uint8_t *h = img + bs;
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000);
	put32(h + 12, g->hsize);
	put64(h + 24, 1);
	put64(h + 32, blocks - 1);
	put64(h + 40, g->first_usable);
	put64(h + 48, g->last_usable);
	memset(h + 56, 0x11, 16);
	put32(h + 16, 0);
	put64(h + 72, g->entries_lba);
	put32(h + 80, g->nentries);
	put32(h + 84, g->esize);
	uint32_t acrc = g->entries_lba * bs + abytes <= f->dev.size ? (uint32_t)crc32(0, arr, (uInt)abytes) : 0;
	put32(h + 88, acrc);
	uint32_t hcrc = (uint32_t)crc32(0, h, MIN(g->hsize, bs));
	put32(h + 16, hcrc);
}

static void part_gpt(void)
{
	for (uint32_t bs = 512; bs <= 4096; bs *= 8) {
		struct fake *f = fake_new(8 * MiB, bs, 16, FAKE_SYNC);
		uint64_t blocks = 8 * MiB / bs;
		struct gpt_spec g;
		gpt_default(&g, blocks, bs);
		g.part[0].first = 256, g.part[0].last = 511;
		g.part[1].first = 512, g.part[1].last = 1023;
		g.part[3].first = 1024, g.part[3].last = g.last_usable;
		gpt_write(f, &g);
		check_part_at(f, 1, 256, 256);
		check_part_at(f, 2, 512, 512);
		check_part_at(f, 4, 1024, g.last_usable - 1024 + 1);
		EXPECT_PART_ERR(f, 3, "partition 3 does not exist (the GPT has 3 partitions: 1, 2, 4)");
		EXPECT_PART_ERR(f, 129, "partition 129 does not exist (the GPT has 3 partitions");

		/* Malformed tables: each one rejected with its reason. */
		f->vol[bs + 60] ^= 1; /* a header byte after the CRC was computed */
		EXPECT_PART_ERR(f, 1, "GPT header's CRC32 is wrong");
		gpt_write(f, &g);
		f->vol[2 * bs + 40] ^= 1; /* an entry byte */
		EXPECT_PART_ERR(f, 1, "entry array's CRC32 is wrong");
		gpt_write(f, &g);
		f->vol[bs] = 'X';
		EXPECT_PART_ERR(f, 1, "no GPT header");

		struct gpt_spec b = g;
		b.part[1].last = g.last_usable + 1;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 2, "is not inside the GPT's usable blocks");
		b = g;
		b.part[1].first = 600, b.part[1].last = 500;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 2, "is not inside the GPT's usable blocks");
		b = g;
		b.part[1].first = 400;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 2, "partition 2 overlaps partition 1");
		b = g;
		b.entries_lba = 1;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "overlaps the header");
		b = g;
		b.first_usable = 3;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "overlaps the usable blocks");
		b = g;
		b.last_usable = blocks;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "are not inside the disk");
		b = g;
		b.esize = 100;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "entry size 100 is invalid");
		b = g;
		b.nentries = 1000000;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "too many");
		b = g;
		b.hsize = bs + 8;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "header size");
		b = g;
		b.entries_lba = blocks - 2;
		b.last_usable = blocks - 40;
		gpt_write(f, &b);
		EXPECT_PART_ERR(f, 1, "leaves the disk");
		fake_free(f);
	}
}

/* An MBR image on disk: partitions at 1 MiB (8 MiB long) and 9 MiB (6 MiB long). */
static void mbr_image(const char *path)
{
	uint8_t sec[512] = { 0 };
	mbr_entry(sec, 0, 0, 0x83, 2048, 16384);
	mbr_entry(sec, 1, 0, 0x83, 18432, 12288);
	int fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, sec, 512, 0) != 512)
		abort();
	close(fd);
}

/* Random work through part (and cache over part) over a file: nothing outside the partition changes. */
static void part_file_case(bool cached)
{
	char path[300], err[256];
	tmp_image(path, sizeof(path), 16 * MiB);
	mbr_image(path);
	struct blk_dev *f = open_file(path, false, false), *p = NULL, *d;
	CHECK(f);
	if (!f)
		goto out;
	CHECK_EQ(blk_part_open(f, 2, &p, err, sizeof(err)), 0);
	if (!p) {
		blk_close(f);
		goto out;
	}
	CHECK_EQ(p->size, 6 * MiB);
	d = cached ? open_cache(p, BLK_CACHE_WRITEBACK, 1 * MiB) : p;
	CHECK(d);
	if (!d) {
		blk_close(p);
		goto out;
	}
	static struct work w;
	work_init(&w, d, 40);
	work_run(&w, 3000, cached ? 21 : 22);
	check_work(&w, 3000);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 9 * MiB, 6 * MiB));
	/* Partition 1 and the last MiB are untouched (zero); the MBR too. */
	uint8_t *zero = calloc(1, 8 * MiB);
	CHECK(file_matches(path, zero, 1 * MiB, 8 * MiB));
	CHECK(file_matches(path, zero, 15 * MiB, 1 * MiB));
	uint8_t sec[512] = { 0 };
	mbr_entry(sec, 0, 0, 0x83, 2048, 16384);
	mbr_entry(sec, 1, 0, 0x83, 18432, 12288);
	CHECK(file_matches(path, sec, 0, 512));
	free(zero);
	work_fini(&w);
out:
	unlink(path);
}

static void part_over_file(void)
{
	part_file_case(false);
}

static void cache_over_part(void)
{
	part_file_case(true);
}

/* ---- blk_open ----------------------------------------------------------- */

static int open_opt(const char *opt, struct blk_dev **d, char *err, size_t errlen)
{
	char s[512];
	struct blk_options o;
	snprintf(s, sizeof(s), "%s", opt);
	int r = blk_parse_disk_option(s, &o, err, errlen);
	if (r)
		return r;
	return blk_open(&o, d, err, errlen);
}

static void open_stack(void)
{
	char path[300], opt[400], err[512], want[400];
	struct blk_dev *d = NULL;
	tmp_image(path, sizeof(path), 16 * MiB);
	mbr_image(path);

	snprintf(opt, sizeof(opt), "path=%s,partition=1", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), 0);
	CHECK(d && !strcmp(d->layer, "cache") && !strcmp(d->lower->layer, "part") &&
	      !strcmp(d->lower->lower->layer, "file"));
	CHECK(d && d->size == 8 * MiB && d->volatile_cache && !d->read_only);
	blk_close(d);

	snprintf(opt, sizeof(opt), "path=%s,readonly,cache=writethrough,cache-size=1M", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), 0);
	CHECK(d && d->read_only && !d->volatile_cache && d->size == 16 * MiB);
	blk_close(d);

	/* cache=none: the file alone, O_DIRECT (which some file systems refuse, clearly). */
	snprintf(opt, sizeof(opt), "path=%s,cache=none", path);
	int r = open_opt(opt, &d, err, sizeof(err));
	CHECK(r == 0 || strstr(err, "does not support O_DIRECT"));
	if (!r) {
		CHECK(!strcmp(d->layer, "file") && !d->lower);
		blk_close(d);
	}

	snprintf(opt, sizeof(opt), "path=%s,partition=3", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: partition 3 does not exist (the MBR has 2 partitions)", path);
	CHECK(!strcmp(err, want));

	snprintf(opt, sizeof(opt), "path=%s/missing.img", tmpdir);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s/missing.img: No such file or directory", tmpdir);
	CHECK(!strcmp(err, want));

	snprintf(opt, sizeof(opt), "path=%s", tmpdir);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, ": not a regular file or block device"));

	CHECK_EQ(truncate(path, 1000), 0);
	snprintf(opt, sizeof(opt), "path=%s", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "is not a multiple of 512"));
	CHECK_EQ(truncate(path, 0), 0);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "the image is empty"));

	/* Not writable: the message says how to open it read-only (root may write anyway). */
	CHECK_EQ(truncate(path, 1 * MiB), 0);
	if (geteuid() != 0) {
		chmod(path, 0444);
		CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EACCES);
		CHECK(strstr(err, "Permission denied (to use it read-only, add ,readonly)"));
	}
	unlink(path);
}

/* Before blk_start() the stack has no threads: every request completes inside submit(). */
static void stack_unstarted(void)
{
	char path[300], opt[400], err[512];
	struct blk_dev *d = NULL;
	tmp_image(path, sizeof(path), 16 * MiB);
	mbr_image(path);
	snprintf(opt, sizeof(opt), "path=%s,partition=1,cache-size=1M", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), 0);
	if (!d)
		goto out;
	static struct work w;
	work_init(&w, d, 16);
	struct flag_req q;
	static uint8_t buf[4096];
	CHECK_EQ(flag_submit(d, &q, NULL, BLK_READ, 0, 1 * MiB, buf, sizeof(buf)), 0);
	CHECK_EQ(atomic_load(&q.done), 1);
	CHECK_EQ(flag_submit(d, &q, NULL, BLK_FLUSH, 0, 0, NULL, 0), 0);
	CHECK_EQ(atomic_load(&q.done), 1);
	work_run(&w, 1000, 31);
	check_work(&w, 1000);
	CHECK_EQ(blk_start(d), 0);
	CHECK_EQ(blk_start(d), 0); /* a second call does nothing */
	work_run(&w, 1000, 32);
	w.submitted -= 1000, w.completed -= 1000;
	check_work(&w, 1000);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 1 * MiB, 8 * MiB));
	work_fini(&w);
out:
	unlink(path);
}

int main(void)
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

	RUN("block", parse_good);
	RUN("block", parse_bad);
	RUN("block", req_checks);
	RUN("block", part_mbr);
	RUN("block", part_gpt);
	RUN("block", cache_flush_rules);
	RUN("block", cache_writethrough_fua);
	RUN("block", cache_fill_race);
	RUN("block", cache_durability_model);
	RUN("block", cache_backpressure);
	RUN("block", cache_readonly);
	RUN("block", cache_scan_resistance);
	RUN("block", cache_sync_lower_large);
	RUN("block", out_of_order);
	if (!have_uring) {
		static const char *const names[] = { "file_basic", "file_random", "file_backpressure", "file_eof",
						     "file_direct", "file_tmpfs", "cache_writeback_small", "cache_writeback_large",
						     "cache_writethrough", "part_over_file", "cache_over_part", "open_stack",
						     "stack_unstarted" };
		for (size_t i = 0; i < ARRAY_SIZE(names); i++)
			printf("SKIP block/%s: %s\n", names[i], uring_why);
		UNIT_EXIT();
	}
	RUN("block", file_basic);
	RUN("block", file_random);
	RUN("block", file_backpressure);
	RUN("block", file_eof);
	file_direct();
	file_tmpfs();
	RUN("block", cache_writeback_small);
	RUN("block", cache_writeback_large);
	RUN("block", cache_writethrough);
	RUN("block", part_over_file);
	RUN("block", cache_over_part);
	RUN("block", open_stack);
	RUN("block", stack_unstarted);
	UNIT_EXIT();
}
