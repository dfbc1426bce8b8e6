// SPDX-License-Identifier: MIT
/*
 * Tracing: the ring protocol alone and under concurrency (a producer at full
 * rate against one or two consumers and a snapshot reader, both modes: every
 * record is delivered at most once, intact, and delivered + overrun +
 * dropped adds up to what was written), resizing and clearing, hostile
 * trace memory, the event table and formats, set_event parsing, the
 * in-process emitter (trace_init, TRACE, rings by thread name), the runtime
 * socket (stale and busy names, handing over the memfd), and the report
 * parser.  `make tsan` runs this file under ThreadSanitizer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "trace/events.h"
#include "trace/report.h"
#include "trace/ring.h"
#include "trace/runtime.h"
#include "trace/trace.h"
#include "trace/view.h"
#include "unit.h"
#include "base/util.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SCALE 20 /* sanitizers slow every access down */
#else
#define SCALE 1
#endif

/* A ring of `records` slots in plain memory. */
static struct trace_ring *ring_new(uint32_t records, enum trace_mode mode)
{
	size_t size = TRACE_RING_HEADER + (size_t)records * TRACE_SLOT_SIZE;
	struct trace_ring *r = aligned_alloc(64, size);
	memset(r, 0, size);
	atomic_store(&r->mask, records - 1);
	atomic_store(&r->mode, mode);
	atomic_store(&r->state, TRACE_RING_OWNED);
	return r;
}

static void put(struct trace_producer *p, uint64_t k)
{
	trace_ring_put(p, k, TE_TEST_SEQ, 7, k, trace_test_check(7, k), k ^ 0xa5a5, ~k);
}

/* A record put() wrote, intact. */
static bool intact(const struct trace_rec *r)
{
	uint64_t k = r->arg[1];
	return r->id == TE_TEST_SEQ && r->arg[0] == 7 && r->ts == k && r->arg[2] == trace_test_check(7, k) &&
	       r->arg[3] == (k ^ 0xa5a5) && r->arg[4] == ~k;
}

static void ring_basic(void)
{
	struct trace_ring *r = ring_new(16, TRACE_MODE_OVERWRITE);
	struct trace_producer p = { 0 };
	trace_producer_attach(&p, r, 16);
	struct trace_rec rec;
	CHECK_EQ(trace_ring_take(r, 16, &rec), 0);
	for (uint64_t k = 0; k < 10; k++)
		put(&p, k);
	for (uint64_t k = 0; k < 10; k++) {
		CHECK_EQ(trace_ring_take(r, 16, &rec), 1);
		CHECK_EQ(rec.n, k);
		CHECK(intact(&rec));
		CHECK_EQ(rec.arg[1], k);
	}
	CHECK_EQ(trace_ring_take(r, 16, &rec), 0);
	struct trace_ring_stats s;
	trace_ring_stats(r, 16, &s);
	CHECK_EQ(s.written, 10);
	CHECK_EQ(s.consumed, 10);
	CHECK_EQ(s.entries, 0);
	CHECK_EQ(s.overrun + s.dropped + s.cleared, 0);
	free(r);
}

/* A 16-record ring in `mode` after p put 100 records, and its stats. */
static struct trace_ring *ring_after_100(enum trace_mode mode, struct trace_producer *p, struct trace_ring_stats *s)
{
	struct trace_ring *r = ring_new(16, mode);
	trace_producer_attach(p, r, 16);
	for (uint64_t k = 0; k < 100; k++)
		put(p, k);
	trace_ring_stats(r, 16, s);
	CHECK_EQ(s->written, 100);
	CHECK_EQ(s->entries, 16);
	return r;
}

static void ring_full_overwrite(void)
{
	struct trace_producer p = { 0 };
	struct trace_ring_stats s;
	struct trace_ring *r = ring_after_100(TRACE_MODE_OVERWRITE, &p, &s);
	CHECK_EQ(s.overrun, 84); /* pending: not read yet, but already counted */
	struct trace_rec rec;
	for (uint64_t k = 84; k < 100; k++) {
		CHECK_EQ(trace_ring_take(r, 16, &rec), 1);
		CHECK_EQ(rec.arg[1], k); /* the newest are kept */
	}
	CHECK_EQ(trace_ring_take(r, 16, &rec), 0);
	trace_ring_stats(r, 16, &s);
	CHECK_EQ(s.consumed, 16);
	CHECK_EQ(s.overrun, 84);
	CHECK_EQ(atomic_load(&r->overrun), 84);
	free(r);
}

static void ring_full_stop(void)
{
	struct trace_producer p = { 0 };
	struct trace_ring_stats s;
	struct trace_ring *r = ring_after_100(TRACE_MODE_STOP, &p, &s);
	CHECK_EQ(s.dropped, 84);
	CHECK_EQ(s.overrun, 0);
	struct trace_rec rec;
	for (uint64_t k = 0; k < 8; k++) {
		CHECK_EQ(trace_ring_take(r, 16, &rec), 1);
		CHECK_EQ(rec.arg[1], k); /* the oldest are kept */
	}
	for (uint64_t k = 100; k < 110; k++) /* room for 8 more */
		put(&p, k);
	trace_ring_stats(r, 16, &s);
	CHECK_EQ(s.written, 110);
	CHECK_EQ(s.dropped, 86);
	CHECK_EQ(s.entries, 16);
	CHECK_EQ(s.entries + s.consumed + s.overrun + s.dropped + s.cleared, s.written);
	free(r);
}

/* Concurrency: one producer at full rate, consumers and a snapshot reader. */
struct conc {
	struct trace_ring *r;
	uint32_t records;
	uint64_t n;
	atomic_bool done;
	/* per consumer */
	uint64_t got[2], bad[2], order[2], gaps[2];
	uint8_t *seen; /* 1 per payload k: duplicates show as 2 */
	atomic_uint dup;
	uint64_t snap_records, snap_bad;
};

static void *producer(void *arg)
{
	struct conc *c = arg;
	struct trace_producer p = { 0 };
	trace_producer_attach(&p, c->r, c->records);
	for (uint64_t k = 0; k < c->n; k++)
		put(&p, k);
	atomic_store(&c->done, true);
	return NULL;
}

struct consumer_arg {
	struct conc *c;
	int idx;
};

static void *consumer(void *arg)
{
	struct consumer_arg *a = arg;
	struct conc *c = a->c;
	uint64_t last_k = UINT64_MAX, last_n = UINT64_MAX;
	for (;;) {
		bool done = atomic_load(&c->done);
		struct trace_rec rec;
		int got = 0;
		while (trace_ring_take(c->r, c->records, &rec)) {
			got = 1;
			c->got[a->idx]++;
			if (!intact(&rec)) {
				c->bad[a->idx]++;
				continue;
			}
			uint64_t k = rec.arg[1];
			if (last_k != UINT64_MAX && k <= last_k)
				c->order[a->idx]++;
			if (last_n != UINT64_MAX && rec.n != last_n + 1)
				c->gaps[a->idx]++;
			last_k = k;
			last_n = rec.n;
			if (k < c->n && atomic_fetch_add((_Atomic uint8_t *)&c->seen[k], 1))
				atomic_fetch_add(&c->dup, 1);
		}
		if (done && !got)
			return NULL;
	}
}

static void *snapshotter(void *arg)
{
	struct conc *c = arg;
	while (!atomic_load(&c->done)) {
		uint64_t h = atomic_load(&c->r->head), cap = c->records;
		uint64_t start = h > cap ? h - cap : 0;
		for (uint64_t n = start; n < h; n++) {
			struct trace_rec rec;
			if (trace_ring_copy(c->r, cap - 1, n, &rec)) {
				c->snap_records++;
				/* Record n carries payload n, or a later one where stop mode dropped some. */
				if (!intact(&rec) || rec.arg[1] < n)
					c->snap_bad++;
			}
		}
	}
	return NULL;
}

static void run_conc(enum trace_mode mode, int consumers, bool snapshot, uint64_t n, uint32_t records)
{
	struct conc *c = calloc(1, sizeof(*c));
	c->r = ring_new(records, mode);
	c->records = records;
	c->n = n;
	c->seen = calloc(n, 1);
	pthread_t pt, ct[2], st;
	struct consumer_arg ca[2] = { { c, 0 }, { c, 1 } };
	for (int i = 0; i < consumers; i++)
		pthread_create(&ct[i], NULL, consumer, &ca[i]);
	if (snapshot)
		pthread_create(&st, NULL, snapshotter, c);
	pthread_create(&pt, NULL, producer, c);
	pthread_join(pt, NULL);
	for (int i = 0; i < consumers; i++)
		pthread_join(ct[i], NULL);
	if (snapshot)
		pthread_join(st, NULL);

	struct trace_ring_stats s;
	trace_ring_stats(c->r, records, &s);
	uint64_t got = c->got[0] + c->got[1];
	CHECK_EQ(s.written, n);
	CHECK_EQ(s.entries, 0);
	CHECK_EQ(s.consumed, got); /* exactly what the consumers delivered */
	CHECK_EQ(got + s.overrun + s.dropped, n);
	CHECK_EQ(c->bad[0] + c->bad[1], 0);
	CHECK_EQ(atomic_load(&c->dup), 0);
	CHECK_EQ(c->order[0] + c->order[1], 0); /* each consumer sees records in order */
	if (mode == TRACE_MODE_STOP) {
		CHECK_EQ(s.overrun, 0);
		if (consumers == 1)
			CHECK_EQ(c->gaps[0], 0); /* nothing lost after it was written */
	} else {
		CHECK_EQ(s.dropped, 0);
	}
	CHECK_EQ(c->snap_bad, 0);
	CHECK(got > 0);
	free(c->seen);
	free(c->r);
	free(c);
}

static void ring_concurrent_overwrite(void)
{
	run_conc(TRACE_MODE_OVERWRITE, 1, false, 2000000 / SCALE, 1024);
}

static void ring_concurrent_stop(void)
{
	run_conc(TRACE_MODE_STOP, 1, false, 2000000 / SCALE, 1024);
}

static void ring_two_consumers_and_snapshot(void)
{
	run_conc(TRACE_MODE_OVERWRITE, 2, true, 1000000 / SCALE, 256);
	run_conc(TRACE_MODE_STOP, 2, true, 1000000 / SCALE, 256);
}

static void ring_clear_and_resize(void)
{
	struct trace_ring *r = ring_new(64, TRACE_MODE_OVERWRITE);
	struct trace_producer p = { 0 };
	trace_producer_attach(&p, r, 64);
	for (uint64_t k = 0; k < 50; k++)
		put(&p, k);
	struct trace_rec rec;
	CHECK_EQ(trace_ring_take(r, 64, &rec), 1);
	trace_ring_clear(r, 64);
	struct trace_ring_stats s;
	trace_ring_stats(r, 64, &s);
	CHECK_EQ(s.cleared, 49);
	CHECK_EQ(s.entries, 0);
	/* Shrink to 16 with records written under the old size, then write on. */
	for (uint64_t k = 50; k < 60; k++)
		put(&p, k);
	atomic_store(&r->mask, 15);
	for (uint64_t k = 60; k < 100; k++)
		put(&p, k);
	while (trace_ring_take(r, 64, &rec))
		CHECK(intact(&rec));
	trace_ring_stats(r, 64, &s);
	CHECK_EQ(s.written, 100);
	CHECK_EQ(s.entries + s.consumed + s.overrun + s.dropped + s.cleared, 100);
	/* A mask wider than the reserve is cut to it: indices stay inside the slots. */
	atomic_store(&r->mask, 0xffffffffu);
	for (uint64_t k = 100; k < 300; k++)
		put(&p, k);
	CHECK_EQ(trace_ring_capacity(r, 64), 64);
	free(r);
}

static void ring_hostile_header(void)
{
	struct trace_ring *r = ring_new(16, TRACE_MODE_OVERWRITE);
	struct trace_rec rec;
	struct trace_ring_stats s;
	/* Garbage everywhere: reads stay in bounds and terminate. */
	memset(r->slots, 0x5a, 16 * TRACE_SLOT_SIZE);
	atomic_store(&r->head, UINT64_MAX - 3);
	atomic_store(&r->tail, 5);
	atomic_store(&r->mask, 0xffffffffu);
	CHECK(trace_ring_take(r, 16, &rec) == 0 || rec.n < UINT64_MAX);
	trace_ring_stats(r, 16, &s);
	atomic_store(&r->head, 3);
	atomic_store(&r->tail, 1000);
	CHECK_EQ(trace_ring_take(r, 16, &rec), 0);
	trace_ring_stats(r, 16, &s);
	CHECK_EQ(s.entries, 0);
	free(r);
}

/* A valid trace memory made by hand, like trace_init makes it. */
static void *make_memory(uint32_t rings, uint32_t records, size_t *size)
{
	uint64_t stride = TRACE_RING_HEADER + (uint64_t)records * TRACE_SLOT_SIZE;
	*size = TRACE_CTL_SIZE + rings * stride;
	struct trace_ctl *c = aligned_alloc(4096, (*size + 4095) & ~(size_t)4095);
	memset(c, 0, *size);
	memcpy(c->magic, TRACE_MAGIC, 8);
	c->version = TRACE_VERSION;
	c->ctl_size = TRACE_CTL_SIZE;
	c->ring_header_size = TRACE_RING_HEADER;
	c->slot_size = TRACE_SLOT_SIZE;
	c->nr_rings = rings;
	c->max_records = records;
	c->rings_offset = TRACE_CTL_SIZE;
	c->ring_stride = stride;
	c->total_size = *size;
	c->events_hash = trace_events_hash();
	c->nr_events = TE_COUNT;
	c->clock = TRACE_CLOCK_MONOTONIC;
	strcpy(c->name, "vm1");
	return c;
}

static void view_validation(void)
{
	size_t size;
	struct trace_ctl *c = make_memory(2, 64, &size);
	struct trace_view v;
	char err[200];
	CHECK_EQ(trace_view_attach(&v, c, size, err, sizeof(err)), 0);
	CHECK(!strcmp(v.name, "vm1"));
	CHECK_EQ(trace_view_attach(&v, c, size - 1, err, sizeof(err)), -EINVAL); /* shorter than it says */
	CHECK_EQ(trace_view_attach(&v, c, 100, err, sizeof(err)), -EINVAL);
	struct {
		size_t off;
		uint64_t val;
		unsigned width;
	} bad[] = {
		{ offsetof(struct trace_ctl, magic), 0, 1 },
		{ offsetof(struct trace_ctl, version), 2, 4 },
		{ offsetof(struct trace_ctl, slot_size), 32, 4 },
		{ offsetof(struct trace_ctl, nr_rings), 0, 4 },
		{ offsetof(struct trace_ctl, nr_rings), 1u << 30, 4 },
		{ offsetof(struct trace_ctl, max_records), 63, 4 },
		{ offsetof(struct trace_ctl, max_records), 1u << 31, 4 },
		{ offsetof(struct trace_ctl, ring_stride), 1, 8 },
		{ offsetof(struct trace_ctl, total_size), 1ull << 50, 8 },
		{ offsetof(struct trace_ctl, events_hash), 42, 8 },
		{ offsetof(struct trace_ctl, clock), 9, 4 },
		{ offsetof(struct trace_ctl, name), '/', 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct trace_ctl *d = make_memory(2, 64, &size);
		memcpy((uint8_t *)d + bad[i].off, &bad[i].val, bad[i].width);
		err[0] = 0;
		CHECK_EQ(trace_view_attach(&v, d, size, err, sizeof(err)), -EINVAL);
		CHECK(err[0] != 0);
		free(d);
	}
	free(c);
}

static void view_hostile_contents(void)
{
	size_t size;
	struct trace_ctl *c = make_memory(3, 64, &size);
	struct trace_view v;
	char err[200];
	CHECK_EQ(trace_view_attach(&v, c, size, err, sizeof(err)), 0);
	/* Everything after the validated header is garbage from a compromised keel. */
	uint64_t x = 0x123456789abcdefull;
	for (uint8_t *p = (uint8_t *)c + 256; p < (uint8_t *)c + size; p++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		*p = (uint8_t)x;
	}
	struct sbuf b = { 0 };
	trace_view_snapshot_text(&v, -1, &b);
	trace_view_stats_text(&v, -1, &b);
	struct trace_cursor cur;
	CHECK_EQ(trace_cursor_init(&cur, &v), 0);
	struct trace_rec rec;
	for (int i = 0; i < 1000 && trace_cursor_take(&v, &cur, -1, &rec); i++)
		trace_view_format(&v, &rec, &b);
	trace_cursor_report_losses(&v, &cur, -1, &b);
	trace_cursor_free(&cur);
	CHECK(!b.oom);
	for (size_t i = 0; i < b.len; i++)
		CHECK(b.p[i] == '\n' || (b.p[i] >= 0x20 && b.p[i] < 0x7f)); /* printable text only */
	sb_free(&b);
	free(c);
}

static void event_table(void)
{
	for (unsigned i = 0; i < TE_COUNT; i++) {
		const struct trace_event_desc *e = &trace_events[i];
		CHECK(e->group && e->name);
		CHECK_EQ(trace_event_find(e->group, e->name), i);
		unsigned slots = 0;
		for (unsigned f = 0; f < TRACE_MAX_SLOTS && e->fields[f].name; f++)
			slots += e->fields[f].kind == TF_STR16 ? 2 : 1;
		CHECK_EQ(slots, e->nslots);
		CHECK(slots >= 1 && slots <= TRACE_MAX_SLOTS);
		char buf[2048];
		size_t n = trace_format_event_file(i, buf, sizeof(buf));
		CHECK(n > 0 && n < sizeof(buf) - 1);
		CHECK(strstr(buf, "print fmt: \"") != NULL);
	}
	CHECK_EQ(trace_event_find("vcpu", "nope"), -1);
	CHECK_EQ(trace_events_hash(), trace_events_hash());
	const char *g[TRACE_MAX_GROUPS];
	unsigned ng = trace_groups(g);
	CHECK(ng >= 8);
	const char *want[] = { "vcpu", "irq", "virtio", "block", "cache", "boot", "component" };
	for (size_t w = 0; w < ARRAY_SIZE(want); w++) {
		bool found = false;
		for (unsigned i = 0; i < ng; i++)
			found = found || !strcmp(g[i], want[w]);
		CHECK(found);
	}
}

static void record_formats(void)
{
	char buf[512];
	struct trace_rec r = { .id = TE_VCPU_EXIT, .arg = { 2 /* KVM_EXIT_IO */, 0x3f8, 1, 1, 3000 } };
	trace_format_fields(&r, 1ull << 31 /* 0.5 ns per tick */, buf, sizeof(buf));
	CHECK(!strcmp(buf, "reason=io addr=0x3f8 size=1 write=1 handle_ns=1500"));
	r = (struct trace_rec){ .id = TE_BLOCK_COMPLETE,
				.arg = { trace_str8("cache"), 1, 0xabc, (uint64_t)-5, 100 } };
	trace_format_fields(&r, 1ull << 32, buf, sizeof(buf));
	CHECK(!strcmp(buf, "layer=cache op=write tag=0xabc status=-5 latency_ns=100"));
	r = (struct trace_rec){ .id = TE_COMPONENT_START, .arg = { trace_str16("uart-com1"), 3 } };
	trace_format_fields(&r, 1ull << 32, buf, sizeof(buf));
	CHECK(!strcmp(buf, "name=uart-com1 id=3"));
	r = (struct trace_rec){ .id = TE_BOOT_MILESTONE, .arg = { TM_SANDBOX, 12 } };
	trace_format_fields(&r, 1ull << 32, buf, sizeof(buf));
	CHECK(!strcmp(buf, "what=sandbox_up since_start_us=12"));
	r = (struct trace_rec){ .id = TE_COUNT + 7 };
	trace_format_fields(&r, 1ull << 32, buf, sizeof(buf));
	CHECK(strstr(buf, "unknown event") != NULL);
	r = (struct trace_rec){ .id = TE_VIRTIO_KICK, .arg = { 0x0a0d1b2c3dfe4142ull, 1 } }; /* junk name bytes */
	trace_format_fields(&r, 1ull << 32, buf, sizeof(buf));
	for (const char *p = buf; *p; p++)
		CHECK(*p >= 0x20 && *p < 0x7f);
	/* Long names are cut, short ones padded with zeros. */
	CHECK_EQ(trace_str8("ab"), 0x6261);
	CHECK_EQ(trace_str8_at("abcdefghij", 8), 0x6a69);
	CHECK_EQ(trace_str8_at("abc", 8), 0);
}

static void set_event_syntax(void)
{
	static struct trace_ctl c;
	char err[160];
	struct sbuf b = { 0 };
	CHECK_EQ(trace_set_events(&c, "vcpu:exit", false, err, sizeof(err)), 0);
	CHECK(trace_get_enabled(&c, TE_VCPU_EXIT));
	CHECK(!trace_get_enabled(&c, TE_IRQ_INJECT));
	CHECK_EQ(trace_set_events(&c, "block:* , cache:\nirq", false, err, sizeof(err)), 0);
	CHECK(trace_get_enabled(&c, TE_BLOCK_SUBMIT) && trace_get_enabled(&c, TE_BLOCK_COMPLETE));
	CHECK(trace_get_enabled(&c, TE_CACHE_EVICT) && trace_get_enabled(&c, TE_IRQ_MSI));
	CHECK_EQ(trace_set_events(&c, "!cache:evict", false, err, sizeof(err)), 0);
	CHECK(!trace_get_enabled(&c, TE_CACHE_EVICT) && trace_get_enabled(&c, TE_CACHE_HIT));
	/* A bad token anywhere: EINVAL, and nothing changes, truncation included. */
	uint8_t before[TE_COUNT];
	for (unsigned i = 0; i < TE_COUNT; i++)
		before[i] = trace_get_enabled(&c, (int)i);
	CHECK_EQ(trace_set_events(&c, "vcpu:irq boot", true, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "vcpu:irq") != NULL);
	CHECK_EQ(trace_set_events(&c, "nosuch:*", false, err, sizeof(err)), -EINVAL);
	CHECK_EQ(trace_set_events(&c, "!", false, err, sizeof(err)), -EINVAL);
	for (unsigned i = 0; i < TE_COUNT; i++)
		CHECK_EQ(trace_get_enabled(&c, (int)i), before[i]);
	/* Truncate (echo X > set_event): only X afterwards. */
	CHECK_EQ(trace_set_events(&c, "boot\n", true, err, sizeof(err)), 0);
	trace_get_events(&c, &b);
	CHECK(!strcmp(b.p, "boot:milestone\n"));
	CHECK_EQ(trace_set_events(&c, "*:*", false, err, sizeof(err)), 0);
	for (unsigned i = 0; i < TE_COUNT; i++)
		CHECK(trace_get_enabled(&c, (int)i));
	CHECK_EQ(trace_set_events(&c, "", true, err, sizeof(err)), 0);
	for (unsigned i = 0; i < TE_COUNT; i++)
		CHECK(!trace_get_enabled(&c, (int)i));
	bool v;
	CHECK_EQ(trace_parse_bool("1\n", 2, &v), 0);
	CHECK(v);
	CHECK_EQ(trace_parse_bool("0", 1, &v), 0);
	CHECK(!v);
	CHECK_EQ(trace_parse_bool("2\n", 2, &v), -EINVAL);
	CHECK_EQ(trace_parse_bool("10", 2, &v), -EINVAL);
	CHECK_EQ(trace_parse_bool("", 0, &v), -EINVAL);
	CHECK_EQ(trace_check_events("vcpu:exit,boot", err, sizeof(err)), 0);
	CHECK_EQ(trace_check_events("vcpu:exitt", err, sizeof(err)), -EINVAL);
	sb_free(&b);
}

struct emit_arg {
	const char *name;
	unsigned n;
};

static void *emit_named(void *arg)
{
	struct emit_arg *a = arg;
	trace_thread_start(a->name);
	for (unsigned i = 0; i < a->n; i++)
		TRACE(TEST_SEQ, 1, i, trace_test_check(1, i));
	trace_thread_stop();
	return NULL;
}

static void emit_in_process(void)
{
	/* Before trace_init: disabled, nothing happens. */
	CHECK(!trace_enabled(TE_TEST_SEQ));
	TRACE(TEST_SEQ, 1, 2, 3);
	struct trace_options o = { .name = "unit", .nr_rings = 4, .buffer_bytes = 4096, .no_socket = true };
	CHECK_EQ(trace_init(&o), 0);
	CHECK_EQ(trace_init(&o), -EBUSY);
	struct trace_view v;
	char err[160];
	CHECK_EQ(trace_view_map_fd(&v, trace_memfd(), err, sizeof(err)), 0);
	CHECK(!strcmp(v.name, "unit"));
	TRACE(TEST_SEQ, 1, 2, 3); /* disabled: not recorded */
	trace_set_enabled(v.ctl, TE_TEST_SEQ, true);
	CHECK(trace_enabled(TE_TEST_SEQ)); /* the reader's write is what the emitter sees */
	TRACE(TEST_SEQ, 1, 2, trace_test_check(1, 2));
	struct trace_totals t;
	trace_view_totals(&v, -1, &t);
	CHECK_EQ(t.sum.written, 1);
	/* tracing_on 0: enabled events are not recorded. */
	store_relaxed(&v.ctl->tracing_on, 0);
	TRACE(TEST_SEQ, 1, 3, 0);
	store_relaxed(&v.ctl->tracing_on, 1);
	trace_view_totals(&v, -1, &t);
	CHECK_EQ(t.sum.written, 1);

	/* Threads get rings by name; a second thread of the same name takes the first's back. */
	struct emit_arg a = { "worker", 10 };
	pthread_t th;
	pthread_create(&th, NULL, emit_named, &a);
	pthread_join(th, NULL);
	pthread_create(&th, NULL, emit_named, &a);
	pthread_join(th, NULL);
	int w = trace_view_ring_find(&v, "worker");
	CHECK(w >= 0);
	struct trace_ring_stats s;
	trace_ring_stats(trace_view_ring(&v, (uint32_t)w), v.max_records, &s);
	CHECK_EQ(s.written, 20);
	CHECK_EQ(trace_view_nr_rings(&v), 2); /* main and worker */
	struct sbuf b = { 0 };
	trace_view_snapshot_text(&v, -1, &b);
	CHECK(strstr(b.p, "worker-") != NULL);
	CHECK(strstr(b.p, "test:seq: emitter=1 n=9 check=") != NULL);
	sb_free(&b);
	/* More threads than rings: the rest are counted, not silently lost. */
	struct emit_arg more[4] = { { "a", 5 }, { "b", 5 }, { "c", 5 }, { "d", 5 } };
	pthread_t ths[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&ths[i], NULL, emit_named, &more[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(ths[i], NULL);
	trace_view_totals(&v, -1, &t);
	CHECK_EQ(t.sum.written + t.no_ring, 1 + 20 + 20);

	CHECK_EQ(trace_view_set_buffer_kb(&v, "1\n", 2), -EINVAL); /* below 4 KiB */
	CHECK_EQ(trace_view_set_buffer_kb(&v, "8", 1), -EINVAL);   /* above the reserve */
	CHECK_EQ(trace_view_set_buffer_kb(&v, "x", 1), -EINVAL);
	CHECK_EQ(trace_view_buffer_kb(&v), 4);
	trace_view_set_overwrite(&v, -1, false);
	CHECK(!trace_view_get_overwrite(&v, w));
	trace_view_clear(&v, -1);
	trace_view_totals(&v, -1, &t);
	CHECK_EQ(t.sum.entries, 0);
	CHECK_EQ(t.sum.written, t.sum.consumed + t.sum.overrun + t.sum.dropped + t.sum.cleared);

	trace_view_close(&v);
	trace_fini();
	CHECK(!trace_enabled(TE_TEST_SEQ)); /* the page is zero again */
	TRACE(TEST_SEQ, 1, 2, 3);
}

struct client_arg {
	int dir_fd;
	const char *file;
	atomic_int r; /* 1 until the client is done */
	struct trace_view v;
};

static void *client(void *arg)
{
	struct client_arg *c = arg;
	char err[160];
	atomic_store(&c->r, trace_view_connect(&c->v, c->dir_fd, c->file, err, sizeof(err)));
	return NULL;
}

static void runtime_socket(void)
{
	char tmpl[] = "/tmp/keel-unit-XXXXXX";
	char *dir = mkdtemp(tmpl);
	CHECK(dir != NULL);
	if (!dir)
		return;
	setenv("XDG_RUNTIME_DIR", dir, 1);
	const char *why;
	int dir_fd = trace_runtime_dir_open(true, &why);
	CHECK(dir_fd >= 0);

	/* A stale socket (its keel was killed) is replaced; a live one keeps its name. */
	int busy = socket(AF_UNIX, SOCK_STREAM, 0), stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/keel/busy.sock", dir);
	CHECK_EQ(bind(busy, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(listen(busy, 1), 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/keel/stale.sock", dir);
	CHECK_EQ(bind(stale, (struct sockaddr *)&a, sizeof(a)), 0);
	close(stale);

	struct trace_options o = { .name = "stale", .nr_rings = 2, .buffer_bytes = 4096 };
	CHECK_EQ(trace_init(&o), 0);
	CHECK(trace_server_name() && !strcmp(trace_server_name(), "stale"));
	trace_fini();
	struct stat st;
	CHECK(fstatat(dir_fd, "stale.sock", &st, 0) < 0); /* removed at the end */

	o.name = "busy";
	CHECK_EQ(trace_init(&o), 0);
	char want[64];
	snprintf(want, sizeof(want), "busy-%d", (int)getpid());
	CHECK(trace_server_name() && !strcmp(trace_server_name(), want));
	/* A reader connects and gets the memory. */
	struct client_arg c = { .dir_fd = dir_fd };
	atomic_store(&c.r, 1);
	char file[80];
	snprintf(file, sizeof(file), "%s.sock", want);
	c.file = file;
	pthread_t th;
	pthread_create(&th, NULL, client, &c);
	for (int i = 0; i < 2000 && atomic_load(&c.r) == 1; i++) {
		trace_server_service();
		usleep(1000);
	}
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&c.r), 0);
	if (!atomic_load(&c.r)) {
		CHECK(!strcmp(c.v.name, "busy"));
		CHECK_EQ(c.v.pid, getpid());
		CHECK(!trace_view_gone(&c.v));
		trace_fini();
		CHECK(trace_view_gone(&c.v)); /* exited is set at the end */
		trace_view_close(&c.v);
	} else {
		trace_fini();
	}
	close(busy);
	unlinkat(dir_fd, "busy.sock", 0);
	close(dir_fd);
	char keel_dir[128];
	snprintf(keel_dir, sizeof(keel_dir), "%s/keel", dir);
	CHECK_EQ(rmdir(keel_dir), 0); /* nothing left behind */
	rmdir(dir);
	unsetenv("XDG_RUNTIME_DIR");
}

static void report_parser(void)
{
	struct report r = { 0 };
	const char *lines[] = {
		"# tracer: nop (keel VM web-1, pid 42)\n",
		"#                 THREAD-TID  BUF#   TIMESTAMP  EVENT\n",
		"            vcpu0-1234 [001]  12.000001: vcpu:exit: reason=io addr=0x3f8 size=1 write=1 handle_ns=100\n",
		"            vcpu0-1234 [001]  12.000002: vcpu:exit: reason=io addr=0x3f8 size=1 write=1 handle_ns=300\n",
		"            vcpu0-1234 [001]  12.000003: vcpu:exit: reason=mmio addr=0xe0000000 size=4 write=0 handle_ns=50\n",
		"            vcpu0-1234 [001] [LOST 7 EVENTS: overwritten before they were read]\n",
		"               io-99 [002]  12.5: block:complete: layer=cache op=read tag=0x1 status=0 latency_ns=1000\n",
		"               io-99 [002]  12.6: block:complete: layer=cache op=read tag=0x2 status=0 latency_ns=3000\n",
		"               io-99 [002]  12.7: block:complete: layer=file op=write tag=0x3 status=0 latency_ns=90000\n",
		"garbage\n",
		"# total                   - -                 -           10            0            5            3            2            0\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
		trace_report_line(&r, lines[i]);
	CHECK(!strcmp(r.vm, "web-1"));
	CHECK_EQ(r.lines, 6);
	CHECK_EQ(r.unparsed, 1);
	CHECK_EQ(r.lost_lines, 7);
	CHECK_EQ(r.ev_count[TE_VCPU_EXIT], 3);
	CHECK(r.have_totals);
	CHECK_EQ(r.totals[0], 10);
	CHECK_EQ(r.totals[4], 2);
	CHECK_EQ(trace_report_percentile(&r, "exit io", 50), 100);
	CHECK_EQ(trace_report_percentile(&r, "exit io", 99), 300);
	CHECK_EQ(trace_report_percentile(&r, "block cache read", 50), 1000);
	CHECK_EQ(trace_report_percentile(&r, "block cache all", 100), 3000);
	CHECK_EQ(trace_report_percentile(&r, "block file write", 50), 90000);
	/* Exits by place: the port, or the MMIO page. */
	CHECK_EQ(trace_report_percentile(&r, "at io 0x3f8", 100), 300);
	CHECK_EQ(trace_report_percentile(&r, "at mmio 0xe0000000", 50), 50);
	FILE *f = tmpfile();
	trace_report_print(&r, f);
	rewind(f);
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	CHECK(strstr(buf, "VM exits by reason") != NULL);
	CHECK(strstr(buf, "block request latency") != NULL);
	CHECK(strstr(buf, "VM exits by place (port, or MMIO page), the 2 busiest") != NULL);
	const char *io = strstr(buf, "  io 0x3f8"), *mmio = strstr(buf, "  mmio 0xe0000000");
	CHECK(io && mmio && io < mmio); /* most exits first */
	char svg[] = "/tmp/keel-unit-report-XXXXXX";
	int fd = mkstemp(svg);
	close(fd);
	CHECK_EQ(trace_report_svg(&r, svg), 0);
	f = fopen(svg, "r");
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	CHECK(!strncmp(buf, "<svg ", 5));
	unlink(svg);
	trace_report_free(&r);
}

int main(void)
{
	log_level = LOG_QUIET;
	RUN("trace", ring_basic);
	RUN("trace", ring_full_overwrite);
	RUN("trace", ring_full_stop);
	RUN("trace", ring_concurrent_overwrite);
	RUN("trace", ring_concurrent_stop);
	RUN("trace", ring_two_consumers_and_snapshot);
	RUN("trace", ring_clear_and_resize);
	RUN("trace", ring_hostile_header);
	RUN("trace", view_validation);
	RUN("trace", view_hostile_contents);
	RUN("trace", event_table);
	RUN("trace", record_formats);
	RUN("trace", set_event_syntax);
	RUN("trace", emit_in_process);
	RUN("trace", runtime_socket);
	RUN("trace", report_parser);
	UNIT_EXIT();
}
