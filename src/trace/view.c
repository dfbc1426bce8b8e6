// SPDX-License-Identifier: MIT
/* Reading and controlling a keel process's trace memory (see view.h). */
#include "view.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "runtime.h"
#include "base/util.h"

#define MAX_TOTAL (1ull << 40)
#define CALIBRATE_NS (20 * 1000 * 1000ull)

static int fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static bool power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

int trace_view_attach(struct trace_view *v, void *base, size_t size, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->pidfd = -1;
	if (size < TRACE_CTL_SIZE)
		return fail(err, errlen, -EINVAL, "trace memory of %zu bytes is too small", size);
	/* Copy the header once and check the copy: the writer may change it under us. */
	struct trace_ctl h;
	memcpy(&h, base, offsetof(struct trace_ctl, tracing_on));
	if (memcmp(h.magic, TRACE_MAGIC, 8))
		return fail(err, errlen, -EINVAL, "not a keel trace memory (bad magic)");
	if (h.version != TRACE_VERSION)
		return fail(err, errlen, -EINVAL, "trace format version %u, this keel reads %u", h.version,
			    TRACE_VERSION);
	if (h.events_hash != trace_events_hash() || h.nr_events != TE_COUNT)
		return fail(err, errlen, -EINVAL, "the VM's keel has another event table (another keel version)");
	if (h.ctl_size != TRACE_CTL_SIZE || h.ring_header_size != TRACE_RING_HEADER || h.slot_size != TRACE_SLOT_SIZE ||
	    h.rings_offset != TRACE_CTL_SIZE)
		return fail(err, errlen, -EINVAL, "trace memory layout differs from this keel's");
	if (h.nr_rings < 1 || h.nr_rings > TRACE_MAX_RINGS || !power_of_two(h.max_records) ||
	    h.max_records < TRACE_MIN_BUFFER / TRACE_SLOT_SIZE || h.max_records > TRACE_MAX_BUFFER / TRACE_SLOT_SIZE)
		return fail(err, errlen, -EINVAL, "trace memory geometry out of range (%u rings of %u records)",
			    h.nr_rings, h.max_records);
	uint64_t stride = TRACE_RING_HEADER + (uint64_t)h.max_records * TRACE_SLOT_SIZE;
	uint64_t total = TRACE_CTL_SIZE + (uint64_t)h.nr_rings * stride;
	if (h.ring_stride != stride || h.total_size != total || total > size || total > MAX_TOTAL)
		return fail(err, errlen, -EINVAL, "trace memory sizes inconsistent (%" PRIu64 " bytes needed, %zu mapped)",
			    total, size);
	if (h.clock != TRACE_CLOCK_TSC && h.clock != TRACE_CLOCK_MONOTONIC)
		return fail(err, errlen, -EINVAL, "unknown trace clock %u", h.clock);
	size_t nl = strnlen(h.name, TRACE_NAME_MAX);
	if (!trace_valid_name(h.name, nl))
		return fail(err, errlen, -EINVAL, "trace memory carries an invalid VM name");
	memcpy(v->name, h.name, nl);
	v->name[nl] = 0;
	v->base = base;
	v->size = size;
	v->ctl = base;
	v->nr_rings = h.nr_rings;
	v->max_records = h.max_records;
	v->rings_offset = h.rings_offset;
	v->stride = stride;
	v->pid = h.pid;
	v->clock = h.clock;
	v->anchor_ticks = h.anchor_ticks;
	v->anchor_ns = h.anchor_ns;
	v->tick_mult = 1ull << 32;
	return 0;
}

void trace_view_calibrate(struct trace_view *v)
{
	v->tick_mult = 1ull << 32;
	if (v->clock != TRACE_CLOCK_TSC)
		return;
	uint64_t n1 = now_ns();
	if (n1 > v->anchor_ns && n1 - v->anchor_ns < CALIBRATE_NS) {
		uint64_t wait = CALIBRATE_NS - (n1 - v->anchor_ns);
		struct timespec ts = { 0, (long)wait };
		nanosleep(&ts, NULL);
	}
	uint64_t t1 = trace_now();
	n1 = now_ns();
	if (t1 > v->anchor_ticks && n1 > v->anchor_ns) {
		unsigned __int128 m = ((unsigned __int128)(n1 - v->anchor_ns) << 32) / (t1 - v->anchor_ticks);
		if (m > 0 && m < ((unsigned __int128)1 << 40))
			v->tick_mult = (uint64_t)m;
	}
}

uint64_t trace_view_ns(const struct trace_view *v, uint64_t ticks)
{
	if (v->clock != TRACE_CLOCK_TSC)
		return ticks;
	__int128 d = (__int128)(int64_t)(ticks - v->anchor_ticks);
	__int128 ns = (__int128)v->anchor_ns + ((d * (__int128)v->tick_mult) >> 32);
	return ns < 0 ? 0 : (uint64_t)ns;
}

int trace_view_map_fd(struct trace_view *v, int memfd, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(memfd, &st) < 0)
		return fail(err, errlen, -errno, "fstat: %s", strerror(errno));
	int seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return fail(err, errlen, -EINVAL, "the trace memory is not a sealed memfd");
	if (st.st_size < (off_t)TRACE_CTL_SIZE || (uint64_t)st.st_size > MAX_TOTAL)
		return fail(err, errlen, -EINVAL, "trace memory size %lld out of range", (long long)st.st_size);
	size_t size = (size_t)st.st_size;
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (base == MAP_FAILED)
		return fail(err, errlen, -errno, "mmap: %s", strerror(errno));
	int r = trace_view_attach(v, base, size, err, errlen);
	if (r) {
		munmap(base, size);
		return r;
	}
	v->mapped = true;
	trace_view_calibrate(v);
	return 0;
}

int trace_view_connect(struct trace_view *v, int dir_fd, const char *file, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/%s", dir_fd, file);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return fail(err, errlen, -ENAMETOOLONG, "%s: name too long", file);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(err, errlen, -errno, "socket: %s", strerror(errno));
	int r;
	struct timeval tv = { .tv_sec = 1 }; /* a keel that never answers does not hang us */
	(void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = fail(err, errlen, -errno, "connect: %s", strerror(errno));
		goto close_socket;
	}
	struct trace_hello h;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t got = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
	int fd = -1;
	for (struct cmsghdr *cm = got > 0 ? CMSG_FIRSTHDR(&m) : NULL; cm; cm = CMSG_NXTHDR(&m, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int tmp;
			memcpy(&tmp, CMSG_DATA(cm), sizeof(int));
			if (fd < 0)
				fd = tmp;
			else
				close(tmp);
		}
	}
	if (got != (ssize_t)sizeof(h) || memcmp(h.magic, TRACE_HELLO_MAGIC, 8) || h.version != TRACE_VERSION ||
	    fd < 0) {
		r = fail(err, errlen, -EPROTO, "no valid answer from the VM (%s)",
			 got < 0 ? strerror(errno) : "bad hello");
		goto close_fd;
	}
	r = trace_view_map_fd(v, fd, err, errlen);
	if (r)
		goto close_fd;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.pid > 0)
		v->pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
	if (v->pidfd >= 0)
		(void)fcntl(v->pidfd, F_SETFD, FD_CLOEXEC);
close_fd:
	if (fd >= 0)
		close(fd);
close_socket:
	close(s);
	return r;
}

void trace_view_close(struct trace_view *v)
{
	if (v->mapped && v->base)
		munmap(v->base, v->size);
	if (v->pidfd >= 0)
		close(v->pidfd);
	v->base = NULL;
	v->ctl = NULL;
	v->mapped = false;
	v->pidfd = -1;
}

bool trace_view_gone(const struct trace_view *v)
{
	/* Acquire: pairs with keel's release of exited: every record it wrote is visible. */
	if (load_acquire(&v->ctl->exited))
		return true;
	if (v->pidfd < 0)
		return false;
	struct pollfd p = { .fd = v->pidfd, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

uint32_t trace_view_nr_rings(const struct trace_view *v)
{
	/* Acquire: pairs with the claimer's CAS (each ring's state is checked on its own). */
	uint32_t n = load_acquire(&v->ctl->rings_used);
	return n < v->nr_rings ? n : v->nr_rings;
}

struct trace_ring *trace_view_ring(const struct trace_view *v, uint32_t i)
{
	if (i >= v->nr_rings)
		return NULL;
	struct trace_ring *r = (struct trace_ring *)(void *)(v->base + v->rings_offset + (uint64_t)i * v->stride);
	/* Acquire: pairs with the claimer's release of state: its name, size and mode are set. */
	return load_acquire(&r->state) == TRACE_RING_FREE ? NULL : r;
}

void trace_view_ring_name(const struct trace_view *v, uint32_t i, char out[17])
{
	out[0] = 0;
	struct trace_ring *r = trace_view_ring(v, i);
	if (!r)
		return;
	uint64_t w[2] = { load_relaxed(&r->name[0]), load_relaxed(&r->name[1]) };
	unsigned n = 0;
	for (unsigned k = 0; k < 16; k++) {
		char c = (char)(w[k / 8] >> (8 * (k % 8)));
		if (!c)
			break;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || (c == '.' && k > 0); /* a directory name under per_thread: never . or .. */
		out[n++] = ok ? c : '_';
	}
	if (!n)
		snprintf(out, 17, "ring%u", i);
	else
		out[n] = 0;
}

int trace_view_ring_find(const struct trace_view *v, const char *name)
{
	uint32_t n = trace_view_nr_rings(v);
	for (uint32_t i = 0; i < n; i++) {
		char s[17];
		trace_view_ring_name(v, i, s);
		if (s[0] && !strcmp(s, name))
			return (int)i;
	}
	return -1;
}

int trace_cursor_init(struct trace_cursor *c, const struct trace_view *v)
{
	memset(c, 0, sizeof(*c));
	c->n = v->nr_rings;
	c->peek = calloc(c->n, sizeof(*c->peek));
	c->have = calloc(c->n, sizeof(*c->have));
	c->seen_overrun = calloc(c->n, sizeof(uint64_t));
	c->seen_dropped = calloc(c->n, sizeof(uint64_t));
	if (!c->peek || !c->have || !c->seen_overrun || !c->seen_dropped) {
		trace_cursor_free(c);
		return -ENOMEM;
	}
	/* Losses before this reader came are in stats; the stream reports later ones. */
	for (uint32_t i = 0; i < c->n; i++) {
		struct trace_ring *r = trace_view_ring(v, i);
		if (r) {
			c->seen_overrun[i] = load_relaxed(&r->overrun);
			c->seen_dropped[i] = load_relaxed(&r->dropped);
		}
	}
	return 0;
}

void trace_cursor_free(struct trace_cursor *c)
{
	free(c->peek);
	free(c->have);
	free(c->seen_overrun);
	free(c->seen_dropped);
	memset(c, 0, sizeof(*c));
}

int trace_cursor_take(const struct trace_view *v, struct trace_cursor *c, int ring, struct trace_rec *out)
{
	uint32_t used = trace_view_nr_rings(v);
	if (used > c->n)
		used = c->n;
	for (;;) {
		int best = -1;
		for (uint32_t i = 0; i < used; i++) {
			if (ring >= 0 && (uint32_t)ring != i)
				continue;
			struct trace_ring *r = trace_view_ring(v, i);
			if (!r)
				continue;
			/* A peeked record is still next only while nobody moved tail. */
			if (c->have[i] && load_relaxed(&r->tail) != c->peek[i].n)
				c->have[i] = false;
			if (!c->have[i])
				c->have[i] = trace_ring_peek(r, v->max_records, &c->peek[i]) == 1;
			if (c->have[i] && (best < 0 || c->peek[i].ts < c->peek[best].ts))
				best = (int)i;
		}
		if (best < 0)
			return 0;
		c->have[best] = false;
		if (trace_ring_commit(trace_view_ring(v, (uint32_t)best), &c->peek[best])) {
			*out = c->peek[best];
			out->ring = (uint32_t)best;
			return 1;
		}
		/* Another reader took it: look again. */
	}
}

static void format_task(const struct trace_view *v, uint32_t ring, char *buf, size_t len)
{
	char name[17];
	trace_view_ring_name(v, ring, name);
	struct trace_ring *r = trace_view_ring(v, ring);
	unsigned tid = r ? load_relaxed(&r->tid) : 0;
	char task[40];
	snprintf(task, sizeof(task), "%s-%u", name, tid);
	snprintf(buf, len, "%22s", task);
}

void trace_cursor_report_losses(const struct trace_view *v, struct trace_cursor *c, int ring, struct sbuf *out)
{
	uint32_t used = trace_view_nr_rings(v);
	for (uint32_t i = 0; i < used && i < c->n; i++) {
		if (ring >= 0 && (uint32_t)ring != i)
			continue;
		struct trace_ring *r = trace_view_ring(v, i);
		if (!r)
			continue;
		uint64_t o = load_relaxed(&r->overrun), d = load_relaxed(&r->dropped);
		char task[40];
		if (o > c->seen_overrun[i] || d > c->seen_dropped[i])
			format_task(v, i, task, sizeof(task));
		if (o > c->seen_overrun[i])
			sb_printf(out, "%s [%03u] [LOST %" PRIu64 " EVENTS: overwritten before they were read]\n", task,
				  i, o - c->seen_overrun[i]);
		if (d > c->seen_dropped[i])
			sb_printf(out, "%s [%03u] [LOST %" PRIu64 " EVENTS: dropped, the buffer was full]\n", task, i,
				  d - c->seen_dropped[i]);
		c->seen_overrun[i] = o;
		c->seen_dropped[i] = d;
	}
}

void trace_view_format(const struct trace_view *v, const struct trace_rec *rec, struct sbuf *out)
{
	char task[40], fields[512];
	format_task(v, rec->ring, task, sizeof(task));
	trace_format_fields(rec, v->tick_mult, fields, sizeof(fields));
	uint64_t ns = trace_view_ns(v, rec->ts);
	const char *group = "?", *name = "?";
	if (rec->id < TE_COUNT) {
		group = trace_events[rec->id].group;
		name = trace_events[rec->id].name;
	}
	sb_printf(out, "%s [%03u] %6" PRIu64 ".%06" PRIu64 ": %s:%s: %s\n", task, rec->ring, ns / 1000000000u,
		  ns / 1000 % 1000000u, group, name, fields);
}

static int cmp_rec(const void *a, const void *b)
{
	const struct trace_rec *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->ring != y->ring)
		return x->ring < y->ring ? -1 : 1;
	return x->n < y->n ? -1 : x->n > y->n;
}

/* Ring i with its stats in *s, if it is in use and selected (ring < 0: every ring); else NULL. */
static struct trace_ring *selected_ring(const struct trace_view *v, int ring, uint32_t i, struct trace_ring_stats *s)
{
	struct trace_ring *r = trace_view_ring(v, i);
	if (!r || (ring >= 0 && (uint32_t)ring != i))
		return NULL;
	trace_ring_stats(r, v->max_records, s);
	return r;
}

void trace_view_totals(const struct trace_view *v, int ring, struct trace_totals *t)
{
	memset(t, 0, sizeof(*t));
	uint32_t used = trace_view_nr_rings(v);
	for (uint32_t i = 0; i < used; i++) {
		struct trace_ring_stats s;
		struct trace_ring *r = selected_ring(v, ring, i, &s);
		if (!r)
			continue;
		t->sum.written += s.written;
		t->sum.entries += s.entries;
		t->sum.consumed += s.consumed;
		t->sum.overrun += s.overrun;
		t->sum.dropped += s.dropped;
		t->sum.cleared += s.cleared;
		t->sum.capacity += s.capacity;
	}
	t->no_ring = load_relaxed(&v->ctl->no_ring);
}

void trace_view_snapshot_text(const struct trace_view *v, int ring, struct sbuf *out)
{
	uint32_t used = trace_view_nr_rings(v);
	size_t cap = 0;
	for (uint32_t i = 0; i < used; i++)
		if (trace_view_ring(v, i) && (ring < 0 || (uint32_t)ring == i))
			cap += trace_ring_capacity(trace_view_ring(v, i), v->max_records);
	struct trace_rec *recs = cap ? malloc(cap * sizeof(*recs)) : NULL;
	size_t n = 0;
	uint64_t written = 0, lost = 0;
	for (uint32_t i = 0; i < used && (recs || !cap); i++) {
		struct trace_ring *r = trace_view_ring(v, i);
		if (!r || (ring >= 0 && (uint32_t)ring != i))
			continue;
		uint64_t c = trace_ring_capacity(r, v->max_records);
		uint64_t t = load_relaxed(&r->tail);
		/* Acquire: pairs with the producer's release of head: records below it are complete. */
		uint64_t h = load_acquire(&r->head);
		written += h + load_relaxed(&r->dropped);
		lost += load_relaxed(&r->overrun) + load_relaxed(&r->dropped);
		if (t > h)
			continue;
		uint64_t start = h - t > c ? h - c : t;
		lost += start - t;
		/* Our share of recs is c: the capacity may have shrunk since we counted, never grow past it. */
		for (uint64_t k = start; k < h && n < cap; k++) {
			if (trace_ring_copy(r, c - 1, k, &recs[n])) {
				recs[n].ring = i;
				n++;
			}
		}
	}
	if (n)
		qsort(recs, n, sizeof(*recs), cmp_rec);
	sb_printf(out, "# tracer: nop (keel VM %s, pid %d)\n#\n", v->name, v->pid);
	sb_printf(out, "# entries-in-buffer/entries-written: %zu/%" PRIu64 "   #B:%u\n", n, written, used);
	sb_printf(out, "# lost (overwritten or dropped, see stats): %" PRIu64 "%s\n#\n", lost,
		  cap && !recs ? "  [out of memory: no records shown]" : "");
	sb_printf(out, "#                 THREAD-TID  BUF#   TIMESTAMP  EVENT\n");
	sb_printf(out, "#                      | |      |        |        |\n");
	for (size_t k = 0; k < n; k++)
		trace_view_format(v, &recs[k], out);
	free(recs);
}

static const char *mode_name(uint32_t m)
{
	return m == TRACE_MODE_STOP ? "stop" : "overwrite";
}

void trace_view_stats_text(const struct trace_view *v, int ring, struct sbuf *out)
{
	uint32_t used = trace_view_nr_rings(v);
	sb_printf(out, "# keel VM %s (pid %d): one buffer per thread; counts in records of %u bytes\n", v->name, v->pid,
		  TRACE_SLOT_SIZE);
	sb_printf(out, "# written = entries + consumed + overrun + dropped + cleared\n");
	sb_printf(out, "%-16s %8s %-9s %9s %12s %12s %12s %12s %12s %12s\n", "thread", "tid", "mode", "size_kb",
		  "written", "entries", "consumed", "overrun", "dropped", "cleared");
	for (uint32_t i = 0; i < used; i++) {
		struct trace_ring_stats s;
		struct trace_ring *r = selected_ring(v, ring, i, &s);
		if (!r)
			continue;
		char name[17];
		trace_view_ring_name(v, i, name);
		bool live = load_relaxed(&r->state) == TRACE_RING_OWNED;
		sb_printf(out, "%-16s %8u %-9s %9" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64
			  " %12" PRIu64 " %12" PRIu64 "%s\n",
			  name, load_relaxed(&r->tid), mode_name(load_relaxed(&r->mode)),
			  s.capacity * TRACE_SLOT_SIZE / 1024, s.written, s.entries, s.consumed, s.overrun, s.dropped,
			  s.cleared, live ? "" : "  (thread exited)");
	}
	if (ring < 0) {
		struct trace_totals t;
		trace_view_totals(v, -1, &t);
		sb_printf(out, "%-16s %8s %-9s %9s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64
			  " %12" PRIu64 "\n",
			  "total", "-", "-", "-", t.sum.written, t.sum.entries, t.sum.consumed, t.sum.overrun,
			  t.sum.dropped, t.sum.cleared);
		sb_printf(out, "no_buffer: %" PRIu64 " (events lost because all %u buffers were taken)\n", t.no_ring,
			  v->nr_rings);
		sb_printf(out, "tracing_on: %u\n", load_relaxed(&v->ctl->tracing_on) ? 1 : 0);
		sb_printf(out, "vm: %s\n", trace_view_gone(v) ? "exited" : "running");
	}
}

/* set_event */

static bool is_sep(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == ',' || c == '\r';
}

static bool match(const char *pat, size_t plen, const char *s)
{
	if ((plen == 1 && pat[0] == '*') || plen == 0)
		return true;
	return strlen(s) == plen && !memcmp(pat, s, plen);
}

/* Mark in sel[] the events one token names; false if it names none. */
static bool select_events(const char *tok, size_t len, bool sel[TE_COUNT])
{
	const char *colon = memchr(tok, ':', len);
	bool any = false;
	for (unsigned i = 0; i < TE_COUNT; i++) {
		bool m;
		if (colon)
			m = match(tok, (size_t)(colon - tok), trace_events[i].group) &&
			    match(colon + 1, len - (size_t)(colon - tok) - 1, trace_events[i].name);
		else /* a bare word: an event name, or a whole group */
			m = len && (match(tok, len, trace_events[i].name) || match(tok, len, trace_events[i].group));
		if (m) {
			sel[i] = true;
			any = true;
		}
	}
	return any;
}

int trace_set_events(struct trace_ctl *c, const char *text, bool truncate, char *err, size_t errlen)
{
	int8_t want[TE_COUNT];
	memset(want, -1, sizeof(want)); /* -1: unchanged */
	if (truncate)
		memset(want, 0, sizeof(want));
	const char *p = text;
	/* Check everything first: a bad token changes nothing. */
	while (*p) {
		while (*p && is_sep(*p))
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && !is_sep(*p))
			p++;
		bool off = *s == '!';
		const char *tok = s + off;
		size_t len = (size_t)(p - tok);
		bool sel[TE_COUNT] = { false };
		if (!select_events(tok, len, sel))
			return fail(err, errlen, -EINVAL, "no event matches '%.*s' (see available_events)", (int)(p - s),
				    s);
		for (unsigned i = 0; i < TE_COUNT; i++)
			if (sel[i])
				want[i] = off ? 0 : 1;
	}
	for (unsigned i = 0; i < TE_COUNT; i++)
		if (want[i] >= 0)
			trace_set_enabled(c, (int)i, want[i]);
	return 0;
}

void trace_get_events(struct trace_ctl *c, struct sbuf *out)
{
	for (unsigned i = 0; i < TE_COUNT; i++)
		if (trace_get_enabled(c, (int)i))
			sb_printf(out, "%s:%s\n", trace_events[i].group, trace_events[i].name);
}

void trace_set_enabled(struct trace_ctl *c, int id, bool on)
{
	if (id >= 0 && id < TE_COUNT)
		/* Relaxed: producers read the byte relaxed; a record is complete whenever it is written. */
		store_relaxed(&c->enabled[id], on ? 1 : 0);
}

bool trace_get_enabled(struct trace_ctl *c, int id)
{
	return id >= 0 && id < TE_COUNT && load_relaxed(&c->enabled[id]);
}

int trace_parse_bool(const char *s, size_t len, bool *out)
{
	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		len--;
	if (len != 1 || (s[0] != '0' && s[0] != '1'))
		return -EINVAL;
	*out = s[0] == '1';
	return 0;
}

uint64_t trace_view_max_buffer_kb(const struct trace_view *v)
{
	return (uint64_t)v->max_records * TRACE_SLOT_SIZE / 1024;
}

uint64_t trace_view_buffer_kb(const struct trace_view *v)
{
	uint64_t mask = load_relaxed(&v->ctl->buffer_mask) & (v->max_records - 1);
	return (mask + 1) * TRACE_SLOT_SIZE / 1024;
}

int trace_view_set_buffer_kb(const struct trace_view *v, const char *s, size_t len)
{
	char buf[32];
	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		len--;
	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	uint64_t kb;
	if (parse_uint(buf, TRACE_MIN_BUFFER / 1024, trace_view_max_buffer_kb(v), &kb))
		return -EINVAL;
	uint64_t records = kb * 1024 / TRACE_SLOT_SIZE;
	while (records & (records - 1))
		records &= records - 1; /* round down to a power of two */
	uint32_t mask = (uint32_t)records - 1;
	/* Relaxed: producers pick the size up at their next record.  What the buffers hold is
	 * discarded (cleared) at the old size; records that land under the old size meanwhile are
	 * cleared by the second pass or counted as overrun by readers. */
	store_relaxed(&v->ctl->buffer_mask, mask);
	uint32_t used = trace_view_nr_rings(v);
	for (uint32_t i = 0; i < used; i++) {
		struct trace_ring *r = trace_view_ring(v, i);
		if (r && (load_relaxed(&r->mask) & (v->max_records - 1)) != mask) {
			trace_ring_clear(r, v->max_records);
			store_relaxed(&r->mask, mask);
			trace_ring_clear(r, v->max_records);
		}
	}
	return 0;
}

void trace_view_set_overwrite(const struct trace_view *v, int ring, bool overwrite)
{
	uint32_t m = overwrite ? TRACE_MODE_OVERWRITE : TRACE_MODE_STOP;
	if (ring < 0)
		store_relaxed(&v->ctl->default_mode, m);
	uint32_t used = trace_view_nr_rings(v);
	for (uint32_t i = 0; i < used; i++) {
		struct trace_ring *r = trace_view_ring(v, i);
		if (r && (ring < 0 || (uint32_t)ring == i))
			/* Relaxed: the producer reads the mode at its next record. */
			store_relaxed(&r->mode, m);
	}
}

bool trace_view_get_overwrite(const struct trace_view *v, int ring)
{
	struct trace_ring *r = ring >= 0 ? trace_view_ring(v, (uint32_t)ring) : NULL;
	uint32_t m = r ? load_relaxed(&r->mode) : load_relaxed(&v->ctl->default_mode);
	return m != TRACE_MODE_STOP;
}

void trace_view_clear(const struct trace_view *v, int ring)
{
	uint32_t used = trace_view_nr_rings(v);
	for (uint32_t i = 0; i < used; i++) {
		struct trace_ring *r = trace_view_ring(v, i);
		if (r && (ring < 0 || (uint32_t)ring == i))
			trace_ring_clear(r, v->max_records);
	}
}

int trace_check_events(const char *text, char *err, size_t errlen)
{
	static struct trace_ctl scratch; /* only its enable bytes are written */
	return trace_set_events(&scratch, text, false, err, errlen);
}
