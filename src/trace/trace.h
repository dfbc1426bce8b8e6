// SPDX-License-Identifier: MIT
/*
 * Event tracing: the API for code that emits events.
 *
 *   TRACE(VCPU_EXIT, reason, addr, size, write, ticks);
 *
 * Every event is declared once, in TRACE_EVENT_LIST below: its ID, group,
 * name and up to five fields, each with a kind that says how readers print
 * it (the print format is derived from the kinds).  TRACE() checks at
 * compile time that it gets as many values as the event has field slots.
 *
 * Cost: a disabled event is one byte load and a predicted branch (its
 * arguments are not evaluated).  An enabled one writes one 64-byte record
 * to the calling thread's ring in shared memory: no system call, no lock,
 * no allocation.  Each emitting thread gets its own ring, claimed on its
 * first event or by trace_thread_start(); threads that live and die with
 * the VM (vCPUs, I/O threads) call trace_thread_start(name) when they start
 * and trace_thread_stop() before they exit, so that their ring is found
 * again by name (vcpu0 keeps its ring across guest reboots).
 *
 * Durations (fields of kind DURATION, printed in ns) take differences of
 * trace_now(), which counts TSC ticks: t0 = trace_now(); ...;
 * TRACE(BLOCK_COMPLETE, ..., trace_now() - t0).
 *
 * For the block stack and virtio devices (declared, for them to emit):
 *
 *   TRACE(BLOCK_SUBMIT, trace_str8(dev->layer), req->op, req->tag, req->offset, req->len);
 *   TRACE(BLOCK_COMPLETE, trace_str8(dev->layer), req->op, req->tag, req->status, trace_now() - t0);
 *   TRACE(CACHE_MISS, offset, len);   TRACE(CACHE_EVICT, offset, len, dirty);
 *   TRACE(VIRTIO_KICK, trace_str8("blk0"), queue);
 *   TRACE(VIRTIO_COMPLETE, trace_str8("blk0"), queue, head_id, used_len);
 *
 * keel trace report computes block latency percentiles per layer and op
 * from BLOCK_COMPLETE's latency_ns.
 *
 * Until trace_init() runs (unit tests, fuzzers, other commands) every event
 * is disabled and TRACE() does nothing.  Readers (keel tracefs, keel trace
 * record) enable events and read rings through src/trace/view.h.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#else
#include <time.h>
#endif

/*
 * E(ID, group, name, f1, f2, f3, f4, f5): each f is F(name, KIND) (one
 * 64-bit slot), F2(name, KIND) (two slots: STR16) or N (unused).  At most 5
 * slots.  Kinds: U64, S64, HEX, DURATION (trace_now() ticks, printed as ns),
 * STR8/STR16 (short names packed by trace_str8()/trace_str16()),
 * EXIT_REASON (KVM_EXIT_*), BLK_OP (enum blk_op), MILESTONE (enum
 * trace_milestone).
 */
#define TRACE_EVENT_LIST(E, F, F2, N)                                                                   \
	/* vCPU threads: every VM exit keel handles; addr is the port or MMIO address. */              \
	E(VCPU_EXIT, vcpu, exit, F(reason, EXIT_REASON), F(addr, HEX), F(size, U64), F(write, U64),   \
	  F(handle_ns, DURATION))                                                                       \
	/* Interrupt injection: a GSI line driven (vm_set_irq), an MSI sent. */                        \
	E(IRQ_INJECT, irq, inject, F(gsi, U64), F(level, U64), N, N, N)                                 \
	E(IRQ_MSI, irq, msi, F(addr, HEX), F(data, HEX), N, N, N)                                       \
	/* virtio devices: the driver kicked a queue; a request went back to the used ring. */         \
	E(VIRTIO_KICK, virtio, kick, F(dev, STR8), F(queue, U64), N, N, N)                              \
	E(VIRTIO_COMPLETE, virtio, complete, F(dev, STR8), F(queue, U64), F(id, U64), F(len, U64), N)  \
	/* An I/O thread's busy-polling window changed (iothread_set_poll()) after a sleep of slept_ns. */ \
	E(IOTHREAD_POLL, iothread, poll, F2(thread, STR16), F(window_ns, U64), F(slept_ns, U64), N, N)  \
	/* The block stack, per layer (blk_dev.layer: "file", "cache", "part", ...). */                \
	E(BLOCK_SUBMIT, block, submit, F(layer, STR8), F(op, BLK_OP), F(tag, HEX), F(offset, U64),     \
	  F(len, U64))                                                                                  \
	E(BLOCK_COMPLETE, block, complete, F(layer, STR8), F(op, BLK_OP), F(tag, HEX), F(status, S64), \
	  F(latency_ns, DURATION))                                                                      \
	/* The block cache (byte offsets and lengths on the device below it). */                       \
	E(CACHE_HIT, cache, hit, F(offset, U64), F(len, U64), N, N, N)                                  \
	E(CACHE_MISS, cache, miss, F(offset, U64), F(len, U64), N, N, N)                                \
	E(CACHE_EVICT, cache, evict, F(offset, U64), F(len, U64), F(dirty, U64), N, N)                  \
	E(CACHE_WRITEBACK, cache, writeback, F(offset, U64), F(len, U64), N, N, N)                      \
	/* A long read or write sent past the cache to the device below (cache_req.c: bypass_run()). */ \
	E(CACHE_BYPASS, cache, bypass, F(op, BLK_OP), F(offset, U64), F(len, U64), N, N)                \
	/* keel run's set-up and boot steps (enum trace_milestone), µs since keel started. */          \
	E(BOOT_MILESTONE, boot, milestone, F(what, MILESTONE), F(since_start_us, U64), N, N, N)         \
	/* Components (vCPUs, devices, I/O threads) starting and stopping. */                          \
	E(COMPONENT_START, component, start, F2(name, STR16), F(id, U64), N, N, N)                      \
	E(COMPONENT_STOP, component, stop, F2(name, STR16), F(id, U64), F(status, S64), N, N)           \
	/* keel trace selftest's emitters: check = trace_test_check(emitter, n). */                    \
	E(TEST_SEQ, test, seq, F(emitter, U64), F(n, U64), F(check, HEX), N, N)

#define TRACE_ENUM_(id, g, n, f1, f2, f3, f4, f5) TE_##id,
#define TRACE_IGNORE_(name, kind)
enum trace_event_id { TRACE_EVENT_LIST(TRACE_ENUM_, TRACE_IGNORE_, TRACE_IGNORE_, ) TE_COUNT };

/* Field slots per event, for TRACE()'s argument check: TE_NS_VCPU_EXIT == 5. */
#define TRACE_NSLOTS_(id, g, n, f1, f2, f3, f4, f5) TE_NS_##id = 0 f1 f2 f3 f4 f5,
#define TRACE_ONE_(name, kind) +1
#define TRACE_TWO_(name, kind) +2
enum { TRACE_EVENT_LIST(TRACE_NSLOTS_, TRACE_ONE_, TRACE_TWO_, ) };

#define TRACE_MAX_EVENTS 256
#define TRACE_MAX_SLOTS 5
_Static_assert(TE_COUNT <= TRACE_MAX_EVENTS, "too many trace events");

/* Boot milestones (BOOT_MILESTONE's what). */
enum trace_milestone {
	TM_START,         /* keel run started (options parsed) */
	TM_KVM_OPEN,      /* /dev/kvm open */
	TM_RAM,           /* guest RAM allocated */
	TM_BUILT,         /* machine built, kernel loaded, host probed */
	TM_SANDBOX,       /* sandbox entered */
	TM_VCPUS_STARTED, /* vCPU threads started: the guest runs */
	TM_VM_STOPPED,    /* every vCPU stopped, machine torn down */
	TM_COUNT
};

/*
 * The control page: what a disabled event reads.  Mapped from the trace
 * memfd over this static page by trace_init(), so readers' writes to the
 * enable bytes take effect at once; all zero (everything off) before.
 * The layout is in src/trace/ring.h.
 */
struct trace_ctl;
extern union trace_ctl_page {
	uint8_t bytes[4096];
	struct {
		uint8_t header[1024];
		_Atomic uint8_t enabled[TRACE_MAX_EVENTS]; /* at TRACE_CTL_ENABLED_OFFSET */
	} fast;
} trace_ctl_page;

static inline bool trace_enabled(enum trace_event_id id)
{
	/* Relaxed: a reader's enable shows up within a few events; nothing is ordered against it. */
	return __builtin_expect(atomic_load_explicit(&trace_ctl_page.fast.enabled[id], memory_order_relaxed), 0);
}

/* The trace clock: TSC ticks (rdtsc, ~7 ns here, against ~17 ns for the vDSO clock_gettime). */
static inline uint64_t trace_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

/* Write one record (enabled events only: use TRACE()); _at with a trace_now() taken earlier. */
void trace_record(unsigned id, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4);
void trace_record_at(uint64_t ts, unsigned id, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4);

/* Count the values given to TRACE(). */
#define TRACE_NARGS_(...) TRACE_NARGS_N_(__VA_ARGS__, 5, 4, 3, 2, 1, 0)
#define TRACE_NARGS_N_(a, b, c, d, e, n, ...) n
#define TRACE_PAD5_(...) TRACE_PAD5_N_(__VA_ARGS__, 0, 0, 0, 0, 0)
#define TRACE_PAD5_N_(a, b, c, d, e, ...) (uint64_t)(a), (uint64_t)(b), (uint64_t)(c), (uint64_t)(d), (uint64_t)(e)

#define TRACE(ev, ...)                                                                                \
	do {                                                                                          \
		_Static_assert(TRACE_NARGS_(__VA_ARGS__) == TE_NS_##ev,                               \
			       "TRACE(" #ev ", ...): wrong number of values for its fields");        \
		if (trace_enabled(TE_##ev))                                                           \
			trace_record(TE_##ev, TRACE_PAD5_(__VA_ARGS__));                              \
	} while (0)

/* TRACE() with the record's timestamp given: saves a clock read where the caller has one. */
#define TRACE_AT(ts, ev, ...)                                                                         \
	do {                                                                                          \
		_Static_assert(TRACE_NARGS_(__VA_ARGS__) == TE_NS_##ev,                               \
			       "TRACE_AT(" #ev ", ...): wrong number of values for its fields");     \
		if (trace_enabled(TE_##ev))                                                           \
			trace_record_at((ts), TE_##ev, TRACE_PAD5_(__VA_ARGS__));                     \
	} while (0)

/* Pack up to 8 (16) bytes of a name into one (two) field slots; longer names are cut. */
static inline uint64_t trace_str8_at(const char *s, size_t off)
{
	uint64_t v = 0;
	for (size_t i = 0; i < off + 8 && s[i]; i++)
		if (i >= off)
			v |= (uint64_t)(uint8_t)s[i] << (8 * (i - off));
	return v;
}
#define trace_str8(s) trace_str8_at((s), 0)
#define trace_str16(s) trace_str8_at((s), 0), trace_str8_at((s), 8)

/* TEST_SEQ's check value: lets readers detect torn or mixed records. */
static inline uint64_t trace_test_check(uint64_t emitter, uint64_t n)
{
	return (emitter * 0x9e3779b97f4a7c15ull) ^ (n * 0xc2b2ae3d27d4eb4full) ^ 0x5eed;
}

/*
 * Give the calling thread its ring now, named `name` (at most 15
 * characters; a ring released by a thread of the same name is taken over,
 * and a name in use gets a "-2", "-3", ... suffix).  Harmless before
 * trace_init() and when every ring is taken.
 */
void trace_thread_start(const char *name);
/* Hand the calling thread's ring back (its records stay readable). */
void trace_thread_stop(void);

/* Emit BOOT_MILESTONE with the time since trace_set_start() (keel run's start). */
void trace_milestone(enum trace_milestone m);
void trace_set_start(uint64_t start_ns);

/*
 * Set-up, in the keel process, before the sandbox (keel run, keel trace
 * selftest).  Creates the trace memory (one sealed memfd: control page +
 * nr_rings rings of buffer_bytes each), maps it, and the runtime socket
 * through which keel tracefs and keel trace record find this process
 * (src/trace/server.c).  events: a set_event list to enable from the start
 * ("vcpu:exit,boot", "*:*"), or NULL.  0 or -errno (reported).
 */
struct trace_options {
	const char *name;       /* the VM's name: the socket and tracefs directory */
	unsigned nr_rings;      /* threads that can have a ring */
	uint64_t buffer_bytes;  /* per ring: a power of two, TRACE_MIN_BUFFER..TRACE_MAX_BUFFER */
	const char *events;     /* enabled from the start, or NULL */
	bool stop_when_full;    /* mode of every ring: stop (keep oldest) instead of overwrite */
	bool no_socket;         /* tests: no runtime socket */
};
#define TRACE_MIN_BUFFER (4ull << 10)
#define TRACE_MAX_BUFFER (256ull << 20)
#define TRACE_DEFAULT_BUFFER (1ull << 20)
int trace_init(const struct trace_options *o);
/* The listening socket to poll (-1: none), and what to do when it is readable. */
int trace_server_fd(void);
void trace_server_service(void);
/* The two descriptors the sandbox must still allow calls on (accept4, unlinkat). */
void trace_server_fds(int *listen_fd, int *dir_fd);
/* Remove the runtime socket now: async-signal-safe, for keel's fatal-signal paths. */
void trace_server_unlink_now(void);
/* Mark the VM gone for readers, close and remove the socket.  After the last emitting thread stopped. */
void trace_fini(void);
/* The trace memfd (-1 before trace_init): in-process readers map it (tests, selftest, bench). */
int trace_memfd(void);
