// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the trace readers (keel tracefs, keel trace record):
 * the trace memory comes from a keel process, which the guest may have
 * compromised, so every byte of it is hostile.  The input overlays a valid
 * trace memory (its header, when the first byte says so, or only what
 * follows), then everything a reader does runs on it: attach, snapshot,
 * stats, consuming reads, formatting, the control writes.  Also the report
 * parser, on the input as text.
 */
#include <stdint.h>
#include <string.h>

#include "trace/events.h"
#include "trace/report.h"
#include "trace/view.h"
#include <stddef.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RINGS 3
#define RECORDS 64
#define TOTAL (TRACE_CTL_SIZE + RINGS * (TRACE_RING_HEADER + RECORDS * TRACE_SLOT_SIZE))

static _Alignas(4096) uint8_t mem[TOTAL];

static void valid_header(void)
{
	memset(mem, 0, sizeof(mem));
	struct trace_ctl *c = (struct trace_ctl *)mem;
	memcpy(c->magic, TRACE_MAGIC, 8);
	c->version = TRACE_VERSION;
	c->ctl_size = TRACE_CTL_SIZE;
	c->ring_header_size = TRACE_RING_HEADER;
	c->slot_size = TRACE_SLOT_SIZE;
	c->nr_rings = RINGS;
	c->max_records = RECORDS;
	c->rings_offset = TRACE_CTL_SIZE;
	c->ring_stride = TRACE_RING_HEADER + RECORDS * TRACE_SLOT_SIZE;
	c->total_size = TOTAL;
	c->events_hash = trace_events_hash();
	c->nr_events = TE_COUNT;
	c->clock = TRACE_CLOCK_TSC;
	c->anchor_ticks = 1000;
	c->anchor_ns = 5000;
	strcpy(c->name, "fuzz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	valid_header();
	/* First byte odd: the input overwrites from offset 0 (header too); even: from the runtime part. */
	size_t at = (data[0] & 1) ? 0 : offsetof(struct trace_ctl, tracing_on);
	size_t n = size - 1 < sizeof(mem) - at ? size - 1 : sizeof(mem) - at;
	memcpy(mem + at, data + 1, n);
	/* The rest of a short input repeats, so that rings fill with plausible-looking garbage. */
	for (size_t i = at + n; n && i < sizeof(mem); i++)
		mem[i] = mem[at + (i - at) % n];

	struct trace_view v;
	char err[160];
	if (trace_view_attach(&v, mem, sizeof(mem), err, sizeof(err)) == 0) {
		v.tick_mult = (data[0] >> 1) + 1;
		struct sbuf b = { 0 };
		trace_view_snapshot_text(&v, -1, &b);
		trace_view_snapshot_text(&v, data[0] % RINGS, &b);
		trace_view_stats_text(&v, -1, &b);
		struct trace_cursor cur;
		if (trace_cursor_init(&cur, &v) == 0) {
			struct trace_rec rec;
			for (int i = 0; i < 300 && trace_cursor_take(&v, &cur, -1, &rec); i++) {
				trace_cursor_report_losses(&v, &cur, (int)rec.ring, &b);
				trace_view_format(&v, &rec, &b);
			}
			trace_cursor_free(&cur);
		}
		char name[17];
		for (uint32_t i = 0; i < RINGS + 1; i++)
			trace_view_ring_name(&v, i, name);
		(void)trace_view_set_buffer_kb(&v, "4", 1);
		trace_view_set_overwrite(&v, -1, data[0] & 2);
		trace_view_clear(&v, -1);
		sb_free(&b);
	}
	/* The same bytes as a trace file for keel trace report. */
	struct report r = { 0 };
	char line[512];
	for (size_t i = 1; i < size;) {
		size_t k = 0;
		while (i < size && data[i] != '\n' && k < sizeof(line) - 1)
			line[k++] = (char)data[i++];
		line[k] = 0;
		i++;
		trace_report_line(&r, line);
	}
	(void)trace_report_percentile(&r, "exit io", 99);
	trace_report_free(&r);
	return 0;
}
