// SPDX-License-Identifier: MIT
/*
 * blockbench: the host-side halves of bench/block.
 *
 *   blockbench harness [OPTIONS] FILE
 *       keel's virtio-blk device model behind its virtio-pci transport in
 *       harness mode (tests/unit/vdriver.h: guest memory is a plain memfd,
 *       no VM), on a real block stack from blk_open() + blk_start().  This
 *       thread plays the guest driver: it keeps QD requests on the avail
 *       ring and polls the used ring.  A notify write runs the device
 *       inline (it pops and submits to the stack), and while it polls the
 *       used ring the thread also reaps the stack's completions
 *       (blk_poll_pending(), then blk_poll(), attached as a poller), as a
 *       spinning virtio-blk queue thread does in a VM.  Interrupts are suppressed
 *       (VRING_AVAIL_F_NO_INTERRUPT), kicks skipped while the device sets
 *       VRING_USED_F_NO_NOTIFY -- the same driver as the test guest's
 *       keeltest=blkbench (tests/guests/blkbench.c).
 *   blockbench raw [OPTIONS] FILE
 *       liburing on the same file, no keel code: readv/writev of the
 *       request's iovecs (as keel's file layer issues them), O_DIRECT unless
 *       --cache writeback, one thread, io_uring_submit_and_wait(1) per
 *       round; with --poll it submits and then spins on the completion
 *       queue instead of sleeping, as the harness's driver spins on the
 *       used ring.  The limit the harness is measured against.
 *
 * Each point (e.g. read:32, read:8:1M:seq) is a closed loop at a fixed
 * queue depth of requests of one size (4 KiB unless given), data in
 * segments of at most 64 KiB, at random offsets aligned to their size or
 * sequential ones: a warm-up, then a fixed time (or operation count)
 * measured.  Latency: from just before a request is made visible (avail
 * idx store / io_uring submit) to the poll that sees it complete.  One line
 * per point on stdout:
 *   RESULT label=L rw=read bs=4096 pattern=rand qd=1 ops=N ns=T iops=I p50_ns=A p99_ns=B kicks=K kick_ns=C errors=E
 * (harness: kicks made, counted over the whole point, and their mean
 * duration, which includes the device's inline processing; raw: 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "base/util.h"
#include "vdriver.h"

#define BS 4096u                 /* the default request size and the alignment of every offset */
#define SEG (64u * 1024)         /* a request's data in segments of at most this */
#define BS_MAX (4u * 1024 * 1024)
#define DATA_MAX (64u * 1024 * 1024) /* qd * bs at most */
#define QD_MAX 64
#define QSIZE 256 /* qd * (2 + segments per request) descriptors at most */
#define LAT_MAX (4u << 20)
#define POINTS_MAX 16

/* Harness layout in guest memory (rings at VD_RING_BASE, see vdriver.h). */
#define H_HDR VD_DATA_BASE
#define H_STATUS (VD_DATA_BASE + 0x1000)
#define H_DATA (VD_DATA_BASE + 0x10000)
#define H_MEM (H_DATA + DATA_MAX)

struct point {
	bool write;
	bool seq;    /* sequential offsets (else uniformly random, aligned to bs) */
	unsigned qd;
	uint32_t bs; /* bytes per request, a multiple of 4 KiB */
};

static struct {
	const char *mode, *file, *label;
	enum blk_cache_mode cache;
	uint64_t cache_size, span, warm_ns, run_ns, max_ops, seed;
	bool prefill, drop, poll;
	struct point points[POINTS_MAX];
	unsigned npoints;
} opt = {
	.cache = BLK_CACHE_NONE,
	.cache_size = 64 * MiB,
	.warm_ns = 200000000ull,
	.run_ns = 2000000000ull,
	.seed = 1,
};

static uint64_t rng;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t span_bytes; /* offsets fall in [0, span_bytes) */
static uint64_t seq_next;

/* The next request's offset at point p: random or sequential (wrapping), a multiple of p->bs. */
static uint64_t next_offset(const struct point *p)
{
	uint64_t n = span_bytes / p->bs;
	if (!p->seq)
		return (next_rand() >> 11) % n * p->bs;
	if (seq_next + p->bs > n * p->bs)
		seq_next = 0;
	uint64_t off = seq_next;
	seq_next += p->bs;
	return off;
}

static unsigned segs_of(uint32_t bs)
{
	return (bs + SEG - 1) / SEG;
}

/* --- one point's bookkeeping ---------------------------------------------- */

struct run {
	uint32_t *lat;
	uint64_t n, start, mstart, mend, nend, errors;
	uint64_t kicks, kick_ns; /* harness: notify writes and the time they took (the device runs inline) */
	unsigned qd;
	bool measuring, stop;
};

static void run_begin(struct run *r, uint32_t *lat, unsigned qd)
{
	*r = (struct run){ .lat = lat, .qd = qd, .start = now_ns(), .measuring = opt.warm_ns == 0 };
	r->mstart = r->start;
}

/* One completion seen at `now` of a request made visible at t0. */
static void run_complete(struct run *r, uint64_t now, uint64_t t0, bool ok)
{
	if (!ok)
		r->errors++;
	if (r->measuring && !r->stop) {
		uint64_t d = now - t0;
		r->lat[r->n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
}

/* After a batch of completions: phase changes.  Returns true while requests should still be issued. */
static bool run_step(struct run *r, uint64_t now)
{
	if (!r->measuring && now - r->start >= opt.warm_ns) {
		r->measuring = true;
		r->mstart = now;
	}
	if (r->measuring && !r->stop &&
	    ((!opt.max_ops && now - r->mstart >= opt.run_ns) || (opt.max_ops && r->n >= opt.max_ops) ||
	     r->n + r->qd >= LAT_MAX)) {
		r->stop = true;
		r->mend = now;
		r->nend = r->n;
	}
	return !r->stop;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static void run_report(struct run *r, const struct point *p)
{
	uint64_t ns = r->mend - r->mstart, n = r->nend;
	qsort(r->lat, n, sizeof(*r->lat), cmp_u32);
	printf("RESULT label=%s rw=%s bs=%u pattern=%s qd=%u ops=%llu ns=%llu iops=%llu p50_ns=%u p99_ns=%u kicks=%llu kick_ns=%llu "
	       "errors=%llu\n",
	       opt.label, p->write ? "write" : "read", p->bs, p->seq ? "seq" : "rand", p->qd, (unsigned long long)n, (unsigned long long)ns,
	       (unsigned long long)(ns ? n * 1000000000ull / ns : 0), n ? r->lat[n / 2] : 0,
	       n ? r->lat[n * 99 / 100] : 0, (unsigned long long)r->kicks,
	       (unsigned long long)(r->kicks ? r->kick_ns / r->kicks : 0), (unsigned long long)r->errors);
	fflush(stdout);
}

/* --- (a) harness: keel's device model and block stack ---------------------- */

static struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
} *h_hdr;
static_assert(sizeof(struct blk_hdr) == 16, "virtio-blk request header layout");

static struct blk_dev *h_disk; /* the stack the harness reaps */

static int harness_point(struct vdrv *d, const struct point *p, uint32_t *lat)
{
	uint16_t qs = d->qsize[0];
	uint16_t *avail = vd_ptr(d, vd_avail(0), 6 + 2ull * qs);
	uint16_t *used = vd_ptr(d, vd_used(0), 6 + 8ull * qs);
	struct vring_used_elem *uring = (struct vring_used_elem *)(used + 2);
	volatile uint8_t *status = vd_ptr(d, H_STATUS, QD_MAX);
	uint64_t t0[QD_MAX];
	unsigned inflight = 0, nseg = segs_of(p->bs), dpr = 2 + nseg; /* descriptors per request */
	struct run r;

	seq_next = 0;
	for (unsigned s = 0; s < p->qd; s++) {
		unsigned h = dpr * s;
		uint64_t data = H_DATA + (uint64_t)p->bs * s;
		vd_set_desc(d, 0, h, H_HDR + 16ull * s, 16, VRING_DESC_F_NEXT, (uint16_t)(h + 1));
		for (unsigned g = 0; g < nseg; g++)
			vd_set_desc(d, 0, h + 1 + g, data + (uint64_t)SEG * g, MIN(SEG, p->bs - SEG * g),
				    VRING_DESC_F_NEXT | (p->write ? 0 : VRING_DESC_F_WRITE), (uint16_t)(h + 2 + g));
		vd_set_desc(d, 0, h + 1 + nseg, H_STATUS + s, 1, VRING_DESC_F_WRITE, 0);
	}
	avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	uint16_t aidx = d->avail_idx[0], seen = d->used_seen[0];

#define QUEUE(s)                                                                 \
	do {                                                                     \
		h_hdr[s].type = p->write ? 1 : 0;                                \
		h_hdr[s].sector = next_offset(p) / 512;                          \
		status[s] = 0xff;                                                \
		avail[2 + aidx++ % qs] = (uint16_t)(dpr * (s));                  \
		t0[s] = now_ns();                                                \
	} while (0)

	run_begin(&r, lat, p->qd);
	for (unsigned s = 0; s < p->qd; s++, inflight++)
		QUEUE(s);
	bool issuing = true, queued = true;
	for (;;) {
		if (queued) {
			__atomic_store_n(&avail[1], aidx, __ATOMIC_RELEASE);
			/* The index before the NO_NOTIFY load: the device re-checks after clearing it. */
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (!(__atomic_load_n(&used[0], __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY)) {
				uint64_t t = now_ns();
				vd_wr(d, VIRTIO_PCI_NOTIFY, 2, 0); /* runs the device here */
				r.kick_ns += now_ns() - t;
				r.kicks++;
			}
			queued = false;
		}
		if (!issuing && !inflight)
			break;
		uint16_t u = __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);
		if (u == seen) {
			/* What a spinning virtio-blk queue thread does (queue_poll()): peek, then reap. */
			if (blk_poll_pending(h_disk))
				blk_poll(h_disk);
			continue;
		}
		uint64_t now = now_ns();
		for (; seen != u; seen++) {
			uint32_t id = uring[seen % qs].id;
			unsigned s = id / dpr;
			if (id % dpr || s >= p->qd) {
				fprintf(stderr, "blockbench: the device completed descriptor %u, which was not submitted\n", id);
				return -EIO;
			}
			inflight--;
			run_complete(&r, now, t0[s], status[s] == 0);
			if (issuing) {
				QUEUE(s);
				inflight++;
				queued = true;
			}
		}
		issuing = run_step(&r, now);
	}
#undef QUEUE
	d->avail_idx[0] = aidx;
	d->used_seen[0] = seen;
	run_report(&r, p);
	return r.errors ? -EIO : 0;
}

static int run_harness(uint32_t *lat)
{
	struct blk_options o = { .path = opt.file, .cache = opt.cache, .cache_size = opt.cache_size };
	struct blk_dev *disk;
	char err[512];
	int rc = blk_open(&o, &disk, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "blockbench: %s\n", err);
		return rc;
	}
	if (opt.span > disk->size) {
		fprintf(stderr, "blockbench: --span is larger than %s\n", opt.file);
		rc = -EINVAL;
		goto close_disk;
	}
	span_bytes = (opt.span ? opt.span : disk->size) / BS * BS;
	if (opt.prefill) {
		/* Bring the span into the cache (the stack has no threads yet: each read completes in place). */
		void *buf = malloc(64 * KiB);
		for (uint64_t off = 0; buf && off < span_bytes && !rc; off += 64 * KiB)
			rc = blk_io_sync(disk, BLK_READ, 0, off, buf, MIN(64 * KiB, span_bytes - off));
		free(buf);
		if (rc || !buf) {
			fprintf(stderr, "blockbench: prefill: %s\n", strerror(rc ? -rc : ENOMEM));
			rc = rc ? rc : -ENOMEM;
			goto close_disk;
		}
	}
	rc = blk_start(disk);
	if (rc) {
		fprintf(stderr, "blockbench: blk_start: %s\n", strerror(-rc));
		goto close_disk;
	}
	struct vdrv d;
	if (vd_open(&d, &virtio_blk_desc, H_MEM, 0, QSIZE)) {
		fprintf(stderr, "blockbench: cannot bring up the virtio-blk device model\n");
		rc = -EIO;
		goto close_disk;
	}
	virtio_blk_attach(virtio_pci_state(d.vp), disk, &o);
	h_disk = disk;
	blk_poller_attach(disk, true);
	h_hdr = vd_ptr(&d, H_HDR, 16ull * QD_MAX);
	uint8_t *data = vd_ptr(&d, H_DATA, DATA_MAX);
	for (size_t i = 0; i < DATA_MAX; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	for (unsigned i = 0; i < opt.npoints; i++)
		if (d.qsize[0] < opt.points[i].qd * (2 + segs_of(opt.points[i].bs))) {
			fprintf(stderr, "blockbench: queue size %u is too small\n", d.qsize[0]);
			rc = -EINVAL;
		}
	for (unsigned i = 0; i < opt.npoints && !rc; i++)
		rc = harness_point(&d, &opt.points[i], lat);
	blk_poller_attach(disk, false);
	vd_close(&d);
close_disk:
	blk_close(disk);
	return rc;
}

/* --- (d) raw io_uring ---------------------------------------------------- */

static int raw_point(struct io_uring *ring, int fd, uint8_t *bufs, const struct point *p, uint32_t *lat)
{
	static struct iovec iov[QD_MAX][BS_MAX / SEG];
	uint64_t t0[QD_MAX];
	unsigned inflight = 0, nseg = segs_of(p->bs);
	struct run r;

	seq_next = 0;
	for (unsigned s = 0; s < p->qd; s++)
		for (unsigned g = 0; g < nseg; g++)
			iov[s][g] = (struct iovec){ bufs + (size_t)p->bs * s + (size_t)SEG * g, MIN(SEG, p->bs - SEG * g) };
#define QUEUE(s)                                                                                   \
	do {                                                                                       \
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);                                 \
		if (p->write)                                                                      \
			io_uring_prep_writev(sqe, fd, iov[s], nseg, next_offset(p));              \
		else                                                                               \
			io_uring_prep_readv(sqe, fd, iov[s], nseg, next_offset(p));               \
		io_uring_sqe_set_data64(sqe, s);                                                   \
		t0[s] = now_ns();                                                                  \
	} while (0)

	run_begin(&r, lat, p->qd);
	for (unsigned s = 0; s < p->qd; s++, inflight++)
		QUEUE(s);
	bool issuing = true;
	while (inflight) {
		int e;
		if (opt.poll) {
			struct io_uring_cqe *c;
			e = io_uring_submit(ring);
			while (e >= 0 && io_uring_peek_cqe(ring, &c))
				; /* spin: the kernel posts the completion from task work on this thread */
		} else {
			e = io_uring_submit_and_wait(ring, 1);
		}
		if (e < 0 && e != -EINTR && e != -EAGAIN) {
			fprintf(stderr, "blockbench: io_uring_submit_and_wait: %s\n", strerror(-e));
			return e;
		}
		uint64_t now = now_ns();
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(ring, head, cqe)
		{
			unsigned s = (unsigned)io_uring_cqe_get_data64(cqe);
			seen++;
			inflight--;
			run_complete(&r, now, t0[s], cqe->res == (int)p->bs);
			if (issuing) {
				QUEUE(s);
				inflight++;
			}
		}
		io_uring_cq_advance(ring, seen);
		issuing = run_step(&r, now);
	}
#undef QUEUE
	run_report(&r, p);
	return r.errors ? -EIO : 0;
}

static int run_raw(uint32_t *lat)
{
	bool direct = opt.cache == BLK_CACHE_NONE;
	int fd = open(opt.file, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (fd < 0) {
		fprintf(stderr, "blockbench: %s: %s%s\n", opt.file, strerror(errno),
			direct && errno == EINVAL ? " (the file system refuses O_DIRECT; tmpfs does)" : "");
		return -errno;
	}
	int rc;
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < BS || opt.span > (uint64_t)st.st_size) {
		fprintf(stderr, "blockbench: %s: too small for --span (or unreadable)\n", opt.file);
		rc = -EINVAL;
		goto close_fd;
	}
	span_bytes = (opt.span ? opt.span : (uint64_t)st.st_size) / BS * BS;
	uint8_t *bufs;
	if (posix_memalign((void **)&bufs, BS, DATA_MAX)) {
		rc = -ENOMEM;
		goto close_fd;
	}
	for (size_t i = 0; i < DATA_MAX; i++)
		bufs[i] = (uint8_t)(i * 131 + 7);
	struct io_uring ring;
	rc = io_uring_queue_init(128, &ring, 0);
	if (rc < 0) {
		fprintf(stderr, "blockbench: io_uring_queue_init: %s\n", strerror(-rc));
		goto free_bufs;
	}
	for (unsigned i = 0; i < opt.npoints && !rc; i++)
		rc = raw_point(&ring, fd, bufs, &opt.points[i], lat);
	io_uring_queue_exit(&ring);
free_bufs:
	free(bufs);
close_fd:
	close(fd);
	return rc;
}

/* --- command line -------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: blockbench harness|raw [OPTIONS] FILE\n"
		"  -c, --cache none|writeback  harness: the stack's cache mode; raw: O_DIRECT or not (none)\n"
		"  -s, --cache-size SIZE       harness with writeback: keel's cache size (64M)\n"
		"  -w, --span SIZE             random offsets in the first SIZE bytes (the whole file)\n"
		"  -p, --points LIST           RW:QD[:SIZE[:seq]],... e.g. read:1,write:32,read:8:1M:seq\n"
		"                              (read:1,read:32,write:1,write:32: 4 KiB, random offsets)\n"
		"  -t, --ms N                  measured milliseconds per point (2000)\n"
		"  -W, --warm-ms N             warm-up milliseconds per point (200)\n"
		"  -n, --ops N                 measure N completions per point instead of a time\n"
		"  -P, --prefill               harness: read the span through the stack before measuring\n"
		"  -d, --drop                  drop FILE's pages from the host page cache first\n"
		"  -l, --label NAME            the label of the RESULT lines (the mode)\n"
		"      --poll                  raw: spin on the completion queue instead of sleeping\n"
		"      --seed N                random seed (1)\n"
		"      --cpus auto|any|LIST    run where keel's --disk cpus= would put FILE's queue threads\n"
		"                              (a line '# cpus: ...' says where)\n");
}

static int parse_points(char *s)
{
	char *save;
	opt.npoints = 0;
	for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *f[5], *fs;
		unsigned n = 0;
		for (char *t = strtok_r(tok, ":", &fs); t && n < 5; t = strtok_r(NULL, ":", &fs))
			f[n++] = t;
		uint64_t qd, bs = BS;
		if (n < 2 || n > 4 || opt.npoints == POINTS_MAX || parse_uint(f[1], 1, QD_MAX, &qd) ||
		    (n > 2 && (parse_size(f[2], 1, &bs) || !bs || bs % BS || bs > BS_MAX)) ||
		    (n > 3 && strcmp(f[3], "seq")) || (strcmp(f[0], "read") && strcmp(f[0], "write")) ||
		    qd * bs > DATA_MAX || qd * (2 + segs_of((uint32_t)bs)) > QSIZE)
			return -EINVAL;
		opt.points[opt.npoints++] =
			(struct point){ !strcmp(f[0], "write"), n > 3, (unsigned)qd, (uint32_t)bs };
	}
	return opt.npoints ? 0 : -EINVAL;
}

static void bad(const char *what)
{
	fprintf(stderr, "blockbench: bad %s\n", what);
	usage(stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache", required_argument, NULL, 'c' },   { "cache-size", required_argument, NULL, 's' },
		{ "span", required_argument, NULL, 'w' },    { "points", required_argument, NULL, 'p' },
		{ "ms", required_argument, NULL, 't' },      { "warm-ms", required_argument, NULL, 'W' },
		{ "ops", required_argument, NULL, 'n' },     { "prefill", no_argument, NULL, 'P' },
		{ "drop", no_argument, NULL, 'd' },          { "label", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 'S' },    { "help", no_argument, NULL, 'h' },
		{ "poll", no_argument, NULL, 'O' },          { "cpus", required_argument, NULL, 'C' },
		{ 0 },
	};
	char defpoints[] = "read:1,read:32,write:1,write:32";
	parse_points(defpoints);
	uint64_t v;
	int c;
	struct blk_options place = { .cpus_mode = BLK_CPUS_ANY };
	bool pin = false;
	while ((c = getopt_long(argc, argv, "c:s:w:p:t:W:n:Pdl:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'O':
			opt.poll = true;
			break;
		case 'C':
			pin = true;
			if (!strcmp(optarg, "auto"))
				place.cpus_mode = BLK_CPUS_AUTO;
			else if (!strcmp(optarg, "any"))
				place.cpus_mode = BLK_CPUS_ANY;
			else if (!parse_cpu_list(optarg, ':', &place.cpus))
				place.cpus_mode = BLK_CPUS_LIST;
			else
				bad("--cpus (auto, any or a list such as 1 or 0-3:6)");
			break;
		case 'c':
			if (!strcmp(optarg, "none"))
				opt.cache = BLK_CACHE_NONE;
			else if (!strcmp(optarg, "writeback"))
				opt.cache = BLK_CACHE_WRITEBACK;
			else
				bad("--cache (none or writeback)");
			break;
		case 's':
			if (parse_size(optarg, MiB, &opt.cache_size))
				bad("--cache-size");
			break;
		case 'w':
			if (parse_size(optarg, MiB, &opt.span) || opt.span % BS)
				bad("--span (a multiple of 4 KiB)");
			break;
		case 'p':
			if (parse_points(optarg))
				bad("--points (rw:qd[:size[:seq]],..., rw read or write, qd 1-64, size 4K-4M, qd * size <= 64M)");
			break;
		case 't':
		case 'W':
			if (parse_uint(optarg, c == 't' ? 1 : 0, 3600000, &v))
				bad(c == 't' ? "--ms" : "--warm-ms");
			*(c == 't' ? &opt.run_ns : &opt.warm_ns) = v * 1000000ull;
			break;
		case 'n':
			if (parse_uint(optarg, 1, LAT_MAX / 2, &opt.max_ops))
				bad("--ops");
			break;
		case 'P': opt.prefill = true; break;
		case 'd': opt.drop = true; break;
		case 'l': opt.label = optarg; break;
		case 'S':
			if (parse_uint(optarg, 0, UINT64_MAX, &opt.seed))
				bad("--seed");
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2)
		bad("arguments");
	opt.mode = argv[optind];
	opt.file = argv[optind + 1];
	if (strcmp(opt.mode, "harness") && strcmp(opt.mode, "raw"))
		bad("mode (harness or raw)");
	if (!opt.label)
		opt.label = opt.mode;
	rng = 0x9e3779b97f4a7c15ull ^ opt.seed;
	if (!rng)
		rng = 1;

	if (pin) {
		/* Before any thread starts: the stack's threads inherit it. */
		char why[320], err[320];
		cpu_set_t set;
		place.path = opt.file;
		int r = blk_thread_cpus(&place, 1, &set, why, sizeof(why), err, sizeof(err));
		if (r < 0 || (r && sched_setaffinity(0, sizeof(set), &set))) {
			fprintf(stderr, "blockbench: %s\n", r < 0 ? err : strerror(errno));
			return 1;
		}
		printf("# cpus: %s %s\n", opt.label, why);
	}
	if (opt.drop) {
		int fd = open(opt.file, O_RDONLY | O_CLOEXEC);
		int e = fd < 0 || fdatasync(fd) < 0 ? errno : posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (fd >= 0)
			close(fd);
		if (e) {
			fprintf(stderr, "blockbench: %s: cannot drop it from the page cache: %s\n", opt.file, strerror(e));
			return 1;
		}
	}
	uint32_t *lat = malloc(sizeof(*lat) * LAT_MAX);
	if (!lat) {
		fprintf(stderr, "blockbench: out of memory\n");
		return 1;
	}
	log_level = LOG_QUIET;
	int rc = !strcmp(opt.mode, "harness") ? run_harness(lat) : run_raw(lat);
	free(lat);
	return rc ? 1 : 0;
}
