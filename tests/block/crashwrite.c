// SPDX-License-Identifier: MIT
/*
 * crashwrite: crash consistency of keel's block stack (file + write-back
 * cache), driven by tests/block/run.sh.
 *
 *   crashwrite write IMAGE SEED [WRITES]
 *	Open IMAGE (path=IMAGE,cache=writeback,cache-size=1M), then issue
 *	random writes (up to 16 in flight, never two overlapping ones in
 *	flight; one in ten with BLK_FUA) and now and then a FLUSH.  Each
 *	512-byte sector written carries a stamp: magic, the write's sequence
 *	number, the sector's own number, a CRC32.  The log on stdout, written
 *	unbuffered and only after the event:
 *	  W SEQ OFFSET LEN FUA   write SEQ completed (FUA 0/1)
 *	  S ID                   flush ID is about to be submitted
 *	  F ID                   flush ID completed
 *	  C                      all done and the stack closed
 *	After WRITES writes (default: until killed) it closes the stack.
 *
 *   crashwrite verify IMAGE LOG
 *	Check IMAGE after a kill against LOG: every sector holds zeroes or
 *	an intact stamp naming itself, and no older write than required:
 *	a write acknowledged before "S ID" of a completed "F ID", an
 *	acknowledged FUA write, and after "C" every acknowledged write.
 *	Writes to one sector never overlap in flight, so later means newer.
 *
 *   crashwrite sandbox IMAGE
 *	Open the stack, enter keel's sandbox (namespaces, seccomp), start the
 *	stack's threads, then write, flush, read back and close: a system
 *	call the allowlist lacks stops it with a message.
 *
 * Exit status 0 when all is well, 1 with a message on stderr otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "block/block.h"
#include "vmm/sandbox.h"
#include "base/util.h"

#define MAGIC 0x6b65656c626c6b31ull /* "keelblk1" */
#define INFLIGHT 16
#define MAXLEN (256 * 1024) /* past the cache's bypass cutoff too (cache_req.c) */

struct stamp {
	uint64_t magic, seq, sector;
	uint32_t crc, pad;
};

struct slot {
	struct blk_req req;
	struct iovec iov;
	uint8_t buf[MAXLEN];
	uint64_t seq;
	bool busy;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct slot slots[INFLIGHT + 1]; /* the last is the flush */
static unsigned busy_count;
static int failed;

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && write_full(STDOUT_FILENO, line, (size_t)n))
		_exit(1);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_sector(uint8_t *p, uint64_t seq, uint64_t sector)
{
	struct stamp st = { .magic = MAGIC, .seq = seq, .sector = sector };
	for (size_t i = sizeof(st); i < 512; i++)
		p[i] = (uint8_t)(seq * 31 + sector * 7 + i);
	memcpy(p, &st, sizeof(st));
	st.crc = (uint32_t)crc32(0, p, 512);
	memcpy(p, &st, sizeof(st));
}

/* 0: zeroes; 1: intact stamp for sector (*seq set); -1: anything else. */
static int check_sector(uint8_t *p, uint64_t sector, uint64_t *seq)
{
	static const uint8_t zero[512];
	if (!memcmp(p, zero, 512)) {
		*seq = 0;
		return 0;
	}
	struct stamp st;
	memcpy(&st, p, sizeof(st));
	uint32_t crc = st.crc;
	st.crc = 0;
	memcpy(p, &st, sizeof(st));
	if (st.magic != MAGIC || st.sector != sector || (uint32_t)crc32(0, p, 512) != crc)
		return -1;
	*seq = st.seq;
	return 1;
}

static void write_done(struct blk_req *r)
{
	struct slot *s = r->opaque;
	pthread_mutex_lock(&lock);
	if (r->status) {
		fprintf(stderr, "crashwrite: %s failed: %s\n", r->op == BLK_FLUSH ? "flush" : "write", strerror(-r->status));
		failed = 1;
	} else if (r->op == BLK_FLUSH) {
		say("F %llu\n", (unsigned long long)s->seq);
	} else {
		say("W %llu %llu %llu %d\n", (unsigned long long)s->seq, (unsigned long long)r->offset,
		    (unsigned long long)r->len, (r->flags & BLK_FUA) ? 1 : 0);
	}
	s->busy = false;
	busy_count--;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static int open_stack(const char *path, struct blk_dev **d)
{
	char opt[4200], err[512];
	struct blk_options o;
	snprintf(opt, sizeof(opt), "path=%s,cache=writeback,cache-size=1M", path);
	if (blk_parse_disk_option(opt, &o, err, sizeof(err)) || blk_open(&o, d, err, sizeof(err))) {
		fprintf(stderr, "crashwrite: %s\n", err);
		return -1;
	}
	return 0;
}

/* The workload; shadow (if not NULL) gets what was written. */
static int run_writes(struct blk_dev *d, uint64_t seed, uint64_t nwrites, uint8_t *shadow)
{
	uint64_t s = seed * 2654435761u + 1, sectors = d->size / 512, flush_id = 0;
	for (uint64_t seq = 1; seq <= nwrites && !failed; seq++) {
		pthread_mutex_lock(&lock);
		while (busy_count >= INFLIGHT)
			pthread_cond_wait(&cond, &lock);
		struct slot *w = NULL;
		for (unsigned i = 0; i < INFLIGHT && !w; i++)
			if (!slots[i].busy)
				w = &slots[i];
		uint64_t len, off;
		for (bool clash = true; clash;) {
			len = (1 + rnd(&s) % (rnd(&s) % 4 ? 8 : MAXLEN / 512)) * 512;
			/* Half the writes in the first 512 KiB: sectors get overwritten often. */
			uint64_t span = rnd(&s) % 2 ? 1024 : sectors;
			off = rnd(&s) % (span - len / 512 + 1) * 512;
			clash = false;
			for (unsigned i = 0; i < INFLIGHT; i++)
				clash |= slots[i].busy && off < slots[i].req.offset + slots[i].req.len &&
					 slots[i].req.offset < off + len;
		}
		for (uint64_t k = 0; k < len / 512; k++)
			fill_sector(w->buf + k * 512, seq, off / 512 + k);
		if (shadow)
			memcpy(shadow + off, w->buf, len);
		w->seq = seq;
		w->busy = true;
		w->iov = (struct iovec){ w->buf, len };
		w->req = (struct blk_req){ .op = BLK_WRITE, .flags = rnd(&s) % 10 ? 0 : BLK_FUA, .offset = off,
					   .len = len, .iov = &w->iov, .iovcnt = 1, .done = write_done, .opaque = w };
		busy_count++;
		struct slot *f = &slots[INFLIGHT];
		bool flush = !f->busy && rnd(&s) % 32 == 0;
		if (flush) {
			f->busy = true;
			f->seq = ++flush_id;
			f->req = (struct blk_req){ .op = BLK_FLUSH, .done = write_done, .opaque = f };
			busy_count++;
		}
		pthread_mutex_unlock(&lock);
		int r;
		while ((r = blk_submit(d, &w->req)) == -EAGAIN)
			sched_yield();
		if (r) {
			fprintf(stderr, "crashwrite: submit: %s\n", strerror(-r));
			return -1;
		}
		if (flush) {
			say("S %llu\n", (unsigned long long)f->seq);
			while ((r = blk_submit(d, &f->req)) == -EAGAIN)
				sched_yield();
			if (r) {
				fprintf(stderr, "crashwrite: submit flush: %s\n", strerror(-r));
				return -1;
			}
		}
	}
	pthread_mutex_lock(&lock);
	while (busy_count)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return failed ? -1 : 0;
}

static int cmd_write(const char *path, uint64_t seed, uint64_t nwrites)
{
	struct blk_dev *d;
	if (open_stack(path, &d))
		return 1;
	if (blk_start(d)) {
		fprintf(stderr, "crashwrite: starting the block stack's threads failed\n");
		return 1;
	}
	int r = run_writes(d, seed, nwrites, NULL);
	blk_close(d);
	if (r)
		return 1;
	say("C\n");
	return 0;
}

struct pending_flush {
	uint64_t id;
	uint64_t *snap;
};

static int cmd_verify(const char *image, const char *logpath)
{
	FILE *img = fopen(image, "rb"), *log = fopen(logpath, "r");
	struct stat st;
	if (!img || !log || fstat(fileno(img), &st)) {
		fprintf(stderr, "crashwrite: cannot open %s or %s\n", image, logpath);
		return 1;
	}
	uint64_t sectors = (uint64_t)st.st_size / 512;
	uint64_t *acked = calloc(sectors, 8), *required = calloc(sectors, 8);
	struct pending_flush pend[64];
	unsigned npend = 0;
	uint64_t writes = 0, fuas = 0, flushes = 0;
	bool closed = false;
	char line[256];
	while (fgets(line, sizeof(line), log)) {
		unsigned long long a, b, c;
		int fua;
		if (sscanf(line, "W %llu %llu %llu %d", &a, &b, &c, &fua) == 4 && b % 512 == 0 && c % 512 == 0 &&
		    b / 512 + c / 512 <= sectors) {
			writes++;
			fuas += fua == 1;
			for (uint64_t s = b / 512; s < (b + c) / 512; s++) {
				acked[s] = a;
				if (fua == 1)
					required[s] = MAX(required[s], a);
			}
		} else if (sscanf(line, "S %llu", &a) == 1 && npend < 64) {
			pend[npend].id = a;
			pend[npend].snap = malloc(sectors * 8);
			memcpy(pend[npend++].snap, acked, sectors * 8);
		} else if (sscanf(line, "F %llu", &a) == 1) {
			for (unsigned i = 0; i < npend; i++)
				if (pend[i].id == a) {
					for (uint64_t s = 0; s < sectors; s++)
						required[s] = MAX(required[s], pend[i].snap[s]);
					free(pend[i].snap);
					pend[i] = pend[--npend];
					flushes++;
					break;
				}
		} else if (!strcmp(line, "C\n")) {
			closed = true;
			memcpy(required, acked, sectors * 8);
		}
	}
	uint8_t sec[512];
	uint64_t bad = 0, torn = 0, checked = 0;
	for (uint64_t s = 0; s < sectors; s++) {
		uint64_t seq;
		if (fread(sec, 512, 1, img) != 1) {
			fprintf(stderr, "crashwrite: short read of %s\n", image);
			return 1;
		}
		int k = check_sector(sec, s, &seq);
		checked += required[s] > 0;
		if (k < 0) {
			if (torn++ < 5)
				fprintf(stderr, "crashwrite: sector %llu holds neither zeroes nor its own stamp\n",
					(unsigned long long)s);
		} else if (seq < required[s]) {
			if (bad++ < 5)
				fprintf(stderr, "crashwrite: sector %llu holds write %llu; write %llu was acknowledged as durable\n",
					(unsigned long long)s, (unsigned long long)seq, (unsigned long long)required[s]);
		}
	}
	for (unsigned i = 0; i < npend; i++)
		free(pend[i].snap);
	free(acked);
	free(required);
	fclose(img);
	fclose(log);
	printf("%llu writes (%llu FUA) and %llu flushes acknowledged%s; %llu sectors had to be durable; "
	       "%llu lost, %llu damaged\n",
	       (unsigned long long)writes, (unsigned long long)fuas, (unsigned long long)flushes,
	       closed ? ", then closed" : "", (unsigned long long)checked, (unsigned long long)bad,
	       (unsigned long long)torn);
	return bad || torn ? 1 : 0;
}

static int cmd_sandbox(const char *path)
{
	struct blk_dev *d;
	if (open_stack(path, &d))
		return 1;
	struct sandbox_report rep;
	struct sandbox_fds none = { .vm_fd = -1, .vcpu_fd_base = -1, .tty_fd = -1 };
	if (sandbox_enter(&rep, &none)) {
		fprintf(stderr, "crashwrite: entering the sandbox failed\n");
		return 1;
	}
	int r = blk_start(d);
	if (r) {
		fprintf(stderr, "crashwrite: blk_start in the sandbox: %s\n", strerror(-r));
		return 1;
	}
	uint8_t *shadow = calloc(1, d->size), *back = malloc(d->size);
	if (!shadow || !back || run_writes(d, 7, 3000, shadow))
		return 1;
	uint8_t zero[4096] = { 0 };
	if (blk_io_sync(d, BLK_WRITE_ZEROES, 0, 8192, NULL, 4096) || blk_io_sync(d, BLK_DISCARD, 0, 16384, NULL, 4096) ||
	    blk_io_sync(d, BLK_FLUSH, 0, 0, NULL, 0) || blk_io_sync(d, BLK_READ, 0, 0, back, d->size)) {
		fprintf(stderr, "crashwrite: I/O in the sandbox failed\n");
		return 1;
	}
	memcpy(shadow + 8192, zero, 4096);
	memcpy(shadow + 16384, zero, 4096);
	if (memcmp(shadow, back, d->size)) {
		fprintf(stderr, "crashwrite: data read back in the sandbox differs\n");
		return 1;
	}
	blk_close(d);
	printf("sandboxed I/O ok (namespaces: %s)\n", rep.namespaces ? "yes" : rep.namespace_error);
	free(shadow);
	free(back);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed, n = UINT64_MAX;
	if (argc >= 4 && !strcmp(argv[1], "write") && !parse_uint(argv[3], 0, UINT64_MAX, &seed) &&
	    (argc == 4 || (argc == 5 && !parse_uint(argv[4], 1, UINT64_MAX, &n))))
		return cmd_write(argv[2], seed, n);
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "sandbox"))
		return cmd_sandbox(argv[2]);
	fprintf(stderr, "usage: crashwrite write IMAGE SEED [WRITES] | verify IMAGE LOG | sandbox IMAGE\n");
	return 2;
}
