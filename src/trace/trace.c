// SPDX-License-Identifier: MIT
/*
 * The emitting side of tracing, in the keel process: the trace memory, ring
 * claiming, and trace_record().
 */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "events.h"
#include "ring.h"
#include "runtime.h"
#include "view.h"
#include "base/util.h"

union trace_ctl_page trace_ctl_page __attribute__((aligned(4096)));

/* Private: readers can write the shared copies of these, so keel never trusts those. */
static struct {
	bool ready;
	int memfd;
	uint8_t *rings;
	size_t rings_len;
	uint32_t nr_rings;
	uint32_t max_records;
	uint64_t stride;
	uint64_t start_ns;
} tr = { .memfd = -1 };

/* Bumped by every trace_init(): a thread's ring from an earlier one is stale. */
static uint32_t generation;

static _Thread_local struct trace_producer tls;

static struct trace_ctl *ctl(void)
{
	return (struct trace_ctl *)(void *)&trace_ctl_page;
}

static struct trace_ring *ring_at(uint32_t i)
{
	return (struct trace_ring *)(void *)(tr.rings + (size_t)i * tr.stride);
}

static void ring_set_name(struct trace_ring *r, const char *name)
{
	/* Relaxed: readers copy the name word by word and print what they get. */
	store_relaxed(&r->name[0], trace_str8_at(name, 0));
	store_relaxed(&r->name[1], trace_str8_at(name, 8));
}

static bool ring_has_name(struct trace_ring *r, const char *name)
{
	return load_relaxed(&r->name[0]) == trace_str8_at(name, 0) &&
	       load_relaxed(&r->name[1]) == trace_str8_at(name, 8);
}

/* Rings ever claimed, bounded by what we made (the shared count is readers' to see). */
static uint32_t rings_used(void)
{
	/* Acquire: pairs with the claimer's CAS; its ring's state is checked separately. */
	uint32_t n = load_acquire(&ctl()->rings_used);
	return n < tr.nr_rings ? n : tr.nr_rings;
}

static bool name_taken(const char *name)
{
	uint32_t used = rings_used();
	for (uint32_t i = 0; i < used; i++)
		if (load_acquire(&ring_at(i)->state) != TRACE_RING_FREE && ring_has_name(ring_at(i), name))
			return true;
	return false;
}

/* Take over a released ring: named `name`, or any if name is NULL. */
static struct trace_ring *take_released(const char *name)
{
	uint32_t used = rings_used();
	for (uint32_t i = 0; i < used; i++) {
		struct trace_ring *r = ring_at(i);
		uint32_t expect = TRACE_RING_RELEASED;
		if (load_relaxed(&r->state) != TRACE_RING_RELEASED || (name && !ring_has_name(r, name)))
			continue;
		/* Acquire (CAS, acq_rel): the previous owner's last head and dropped are visible. */
		if (atomic_compare_exchange_strong_explicit(&r->state, &expect, TRACE_RING_OWNED, memory_order_acq_rel,
							    memory_order_relaxed))
			return r;
	}
	return NULL;
}

static bool claim(struct trace_producer *p, const char *want)
{
	if (!tr.ready)
		return false;
	char name[16];
	if (want && *want)
		snprintf(name, sizeof(name), "%s", want);
	else
		snprintf(name, sizeof(name), "tid%d", (int)gettid());

	struct trace_ctl *c = ctl();
	struct trace_ring *r = take_released(name);
	if (!r) {
		uint32_t n = load_relaxed(&c->rings_used);
		while (n < tr.nr_rings) {
			if (atomic_compare_exchange_weak_explicit(&c->rings_used, &n, n + 1, memory_order_acq_rel,
								  memory_order_relaxed)) {
				r = ring_at(n);
				char unique[16];
				snprintf(unique, sizeof(unique), "%s", name);
				for (unsigned k = 2; name_taken(unique) && k < 1000; k++)
					snprintf(unique, sizeof(unique), "%.10s-%u", name, k);
				ring_set_name(r, unique);
				store_relaxed(&r->mask, load_relaxed(&c->buffer_mask) & (tr.max_records - 1));
				store_relaxed(&r->mode, load_relaxed(&c->default_mode));
				store_relaxed(&r->tid, (uint32_t)gettid());
				/* Release: name, size and mode are set before readers see the ring in use. */
				store_release(&r->state, TRACE_RING_OWNED);
				break;
			}
		}
	}
	if (!r) {
		r = take_released(NULL); /* every ring taken once: reuse another thread's */
		if (!r)
			return false;
		ring_set_name(r, name);
	}
	store_relaxed(&r->tid, (uint32_t)gettid());
	trace_producer_attach(p, r, tr.max_records);
	p->generation = generation;
	return true;
}

static inline __attribute__((always_inline)) void record(bool have_ts, uint64_t ts, unsigned id, uint64_t a0,
							  uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	/* Relaxed: tracing_on is a switch; nothing is ordered against it. */
	if (!load_relaxed(&ctl()->tracing_on))
		return;
	struct trace_producer *p = &tls;
	if (__builtin_expect(!p->ring || p->generation != generation, 0)) {
		p->ring = NULL;
		if (!claim(p, NULL)) {
			add_relaxed(&ctl()->no_ring, 1);
			return;
		}
	}
	trace_ring_put(p, have_ts ? ts : trace_now(), id, a0, a1, a2, a3, a4);
}

void trace_record(unsigned id, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	record(false, 0, id, a0, a1, a2, a3, a4);
}

void trace_record_at(uint64_t ts, unsigned id, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
	record(true, ts, id, a0, a1, a2, a3, a4);
}

void trace_thread_start(const char *name)
{
	if (!tr.ready || (tls.ring && tls.generation == generation))
		return;
	tls.ring = NULL;
	(void)claim(&tls, name);
}

void trace_thread_stop(void)
{
	if (tls.ring && tls.generation == generation && tr.ready)
		/* Release: the next owner (acquire CAS) continues from our last head and drop count. */
		store_release(&tls.ring->state, TRACE_RING_RELEASED);
	tls.ring = NULL;
}

void trace_set_start(uint64_t start_ns)
{
	tr.start_ns = start_ns;
}

void trace_milestone(enum trace_milestone m)
{
	TRACE(BOOT_MILESTONE, m, (now_ns() - tr.start_ns) / 1000);
}

static bool power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

int trace_init(const struct trace_options *o)
{
	int r;
	if (tr.ready)
		return -EBUSY;
	uint64_t bytes = o->buffer_bytes ? o->buffer_bytes : TRACE_DEFAULT_BUFFER;
	if (!power_of_two(bytes) || bytes < TRACE_MIN_BUFFER || bytes > TRACE_MAX_BUFFER) {
		log_error("trace buffer size %llu is not a power of two from 4 KiB to 256 MiB",
			  (unsigned long long)bytes);
		return -EINVAL;
	}
	uint32_t nr = o->nr_rings < 1 ? 1 : o->nr_rings > TRACE_MAX_RINGS ? TRACE_MAX_RINGS : o->nr_rings;
	uint32_t max_records = (uint32_t)(bytes / TRACE_SLOT_SIZE);
	uint64_t stride = TRACE_RING_HEADER + (uint64_t)max_records * TRACE_SLOT_SIZE;
	uint64_t total = TRACE_CTL_SIZE + nr * stride;

	int fd = memfd_create("keel-trace", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		r = -errno;
		log_error("tracing: memfd_create: %s", strerror(errno));
		return r;
	}
	if (ftruncate(fd, (off_t)total) < 0) {
		r = -errno;
		log_error("tracing: sizing the trace memory (%llu MiB): %s", (unsigned long long)(total >> 20),
			  strerror(errno));
		goto close_fd;
	}
	void *rings = mmap(NULL, total - TRACE_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, TRACE_CTL_SIZE);
	if (rings == MAP_FAILED) {
		r = -errno;
		log_error("tracing: mapping the trace buffers: %s", strerror(errno));
		goto close_fd;
	}
	/* The control page goes over trace_ctl_page, where trace_enabled() looks. */
	if (mmap(&trace_ctl_page, TRACE_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
	    MAP_FAILED) {
		r = -errno;
		log_error("tracing: mapping the control page: %s", strerror(errno));
		goto unmap_rings;
	}
	struct trace_ctl *c = ctl();
	memcpy(c->magic, TRACE_MAGIC, 8);
	c->version = TRACE_VERSION;
	c->ctl_size = TRACE_CTL_SIZE;
	c->ring_header_size = TRACE_RING_HEADER;
	c->slot_size = TRACE_SLOT_SIZE;
	c->nr_rings = nr;
	c->max_records = max_records;
	c->rings_offset = TRACE_CTL_SIZE;
	c->ring_stride = stride;
	c->total_size = total;
	c->events_hash = trace_events_hash();
	c->nr_events = TE_COUNT;
	c->pid = (int32_t)getpid();
#if defined(__x86_64__) || defined(__i386__)
	c->clock = TRACE_CLOCK_TSC;
#else
	c->clock = TRACE_CLOCK_MONOTONIC;
#endif
	c->anchor_ticks = trace_now();
	c->anchor_ns = now_ns();
	snprintf(c->name, sizeof(c->name), "%s", o->name ? o->name : "keel");
	store_relaxed(&c->default_mode, o->stop_when_full ? TRACE_MODE_STOP : TRACE_MODE_OVERWRITE);
	store_relaxed(&c->buffer_mask, max_records - 1);
	store_relaxed(&c->tracing_on, 1);
	/* Readers can never shrink or grow it (a shrink would fault whoever maps it). */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		log_error("tracing: sealing the trace memory: %s", strerror(errno));
		goto unmap_ctl;
	}
	if (o->events) {
		char err[160];
		r = trace_set_events(c, o->events, false, err, sizeof(err));
		if (r) {
			log_error("--trace: %s", err);
			goto unmap_ctl;
		}
	}
	tr.memfd = fd;
	tr.rings = rings;
	tr.rings_len = total - TRACE_CTL_SIZE;
	tr.nr_rings = nr;
	tr.max_records = max_records;
	tr.stride = stride;
	generation++;
	tr.ready = true;
	trace_thread_start("main");
	if (!o->no_socket)
		(void)trace_server_open(o->name ? o->name : "keel", fd);
	return 0;

unmap_ctl:
	(void)mmap(&trace_ctl_page, TRACE_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		   -1, 0);
unmap_rings:
	munmap(rings, total - TRACE_CTL_SIZE);
close_fd:
	close(fd);
	return r;
}

void trace_fini(void)
{
	if (!tr.ready)
		return;
	trace_thread_stop();
	/* Release: everything written before is visible to a reader that sees exited. */
	store_release(&ctl()->exited, 1);
	trace_server_close();
	/* A fresh zero page: every event disabled again, for a later trace_init() (tests). */
	(void)mmap(&trace_ctl_page, TRACE_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		   -1, 0);
	munmap(tr.rings, tr.rings_len);
	close(tr.memfd);
	tr.ready = false;
	tr.memfd = -1;
}

int trace_memfd(void)
{
	return tr.ready ? tr.memfd : -1;
}
