// SPDX-License-Identifier: MIT
/*
 * The reading side of tracing: a trace memory mapped from a keel process
 * (keel tracefs, keel trace record), validated once, then read and
 * controlled through the protocol of ring.h.  The mapping is treated as
 * hostile: the geometry is copied and checked once, indices are masked, and
 * records are copied and validated before they are printed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "sbuf.h"

struct trace_view {
	uint8_t *base;
	size_t size;
	bool mapped; /* base is our mmap (trace_view_close unmaps it) */
	struct trace_ctl *ctl;
	uint32_t nr_rings;
	uint32_t max_records;
	uint64_t rings_offset;
	uint64_t stride;
	char name[TRACE_NAME_MAX + 1];
	int pid;
	uint32_t clock;
	uint64_t anchor_ticks, anchor_ns;
	uint64_t tick_mult; /* ns = ticks * tick_mult >> 32 */
	int pidfd;          /* -1: none */
};

/* Validate and adopt a trace memory at base (size bytes).  0 or -EINVAL with err set. */
int trace_view_attach(struct trace_view *v, void *base, size_t size, char *err, size_t errlen);
/* Map a trace memfd (it must be sealed against shrinking) and attach. */
int trace_view_map_fd(struct trace_view *v, int memfd, char *err, size_t errlen);
/* Connect to dir_fd/file (a keel runtime socket), receive and map its memory. */
int trace_view_connect(struct trace_view *v, int dir_fd, const char *file, char *err, size_t errlen);
void trace_view_close(struct trace_view *v);
/* Measure the TSC rate against the anchor (waits up to 20 ms for a young process). */
void trace_view_calibrate(struct trace_view *v);
/* The keel process has exited (or said it stopped emitting for good). */
bool trace_view_gone(const struct trace_view *v);

uint32_t trace_view_nr_rings(const struct trace_view *v);
/* Ring i, or NULL if unused. */
struct trace_ring *trace_view_ring(const struct trace_view *v, uint32_t i);
/* Ring i's thread name, printable, at most 16 characters. */
void trace_view_ring_name(const struct trace_view *v, uint32_t i, char out[17]);
/* Ring index named name, or -1. */
int trace_view_ring_find(const struct trace_view *v, const char *name);
/* A timestamp as CLOCK_MONOTONIC ns. */
uint64_t trace_view_ns(const struct trace_view *v, uint64_t ticks);

/* Consuming reads, in timestamp order across rings (trace_pipe). */
struct trace_cursor {
	uint32_t n;
	struct trace_rec *peek;
	bool *have;
	uint64_t *seen_overrun, *seen_dropped; /* losses already reported */
};
int trace_cursor_init(struct trace_cursor *c, const struct trace_view *v);
void trace_cursor_free(struct trace_cursor *c);
/* Next record (ring < 0: any ring), taken: 1, or 0 when none is ready. */
int trace_cursor_take(const struct trace_view *v, struct trace_cursor *c, int ring, struct trace_rec *out);
/* Append "[LOST N EVENTS]" lines for losses since the last call. */
void trace_cursor_report_losses(const struct trace_view *v, struct trace_cursor *c, int ring, struct sbuf *out);

/* Append one record as a trace line. */
void trace_view_format(const struct trace_view *v, const struct trace_rec *rec, struct sbuf *out);
/* The whole `trace` file (ring < 0: every ring): header and a snapshot, oldest first. */
void trace_view_snapshot_text(const struct trace_view *v, int ring, struct sbuf *out);
/* The `stats` file. */
void trace_view_stats_text(const struct trace_view *v, int ring, struct sbuf *out);
struct trace_totals {
	struct trace_ring_stats sum;
	uint64_t no_ring;
};
void trace_view_totals(const struct trace_view *v, int ring, struct trace_totals *t);

/* Controls.  Each returns 0 or -EINVAL and then changes nothing. */
/* set_event syntax: "group:event", "group:*", "group:", "*:*", "event" or "group", "!..." to disable;
 * separated by spaces, commas or newlines.  truncate: disable everything first. */
int trace_set_events(struct trace_ctl *c, const char *text, bool truncate, char *err, size_t errlen);
void trace_get_events(struct trace_ctl *c, struct sbuf *out);
void trace_set_enabled(struct trace_ctl *c, int id, bool on);
bool trace_get_enabled(struct trace_ctl *c, int id);
/* Parse "0" or "1" (with an optional newline). */
int trace_parse_bool(const char *s, size_t len, bool *out);
/* buffer_size_kb: 4 .. max, rounded down to a power of two; empties the buffers. */
int trace_view_set_buffer_kb(const struct trace_view *v, const char *s, size_t len);
uint64_t trace_view_buffer_kb(const struct trace_view *v);
uint64_t trace_view_max_buffer_kb(const struct trace_view *v);
/* Overwrite (true) or stop mode: ring < 0 sets every ring and the default for new ones. */
void trace_view_set_overwrite(const struct trace_view *v, int ring, bool overwrite);
bool trace_view_get_overwrite(const struct trace_view *v, int ring);
/* Discard unread records (ring < 0: all). */
void trace_view_clear(const struct trace_view *v, int ring);
/* Check a set_event list without applying it (keel run --trace).  0 or -EINVAL with err set. */
int trace_check_events(const char *text, char *err, size_t errlen);
