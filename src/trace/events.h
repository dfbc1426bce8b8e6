// SPDX-License-Identifier: MIT
/* The event table (built from TRACE_EVENT_LIST) and how readers print records. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "trace.h"

enum trace_field_kind {
	TF_U64,
	TF_S64,
	TF_HEX,
	TF_DURATION,
	TF_STR8,
	TF_STR16, /* two slots */
	TF_EXIT_REASON,
	TF_BLK_OP,
	TF_MILESTONE,
};

struct trace_field {
	const char *name;
	enum trace_field_kind kind;
};

struct trace_event_desc {
	const char *group;
	const char *name;
	unsigned nslots;
	struct trace_field fields[TRACE_MAX_SLOTS];
};

extern const struct trace_event_desc trace_events[TE_COUNT];

/* FNV-1a over every group, name, field and kind: both sides must agree. */
uint64_t trace_events_hash(void);

/* Groups, in table order, each once.  Returns how many. */
#define TRACE_MAX_GROUPS 32
unsigned trace_groups(const char *out[TRACE_MAX_GROUPS]);
/* Event id of group:name, or -1. */
int trace_event_find(const char *group, const char *name);

/*
 * Print rec's fields ("reason=io addr=0x3f8 size=1 ...") into buf (always
 * NUL-terminated); tick_mult converts DURATION fields: ns = ticks *
 * tick_mult >> 32.  Any record, valid or not, prints safely.  Returns the
 * length.
 */
size_t trace_format_fields(const struct trace_rec *rec, uint64_t tick_mult, char *buf, size_t len);
/* The events/<group>/<event>/format file. */
size_t trace_format_event_file(unsigned id, char *buf, size_t len);
/* KVM exit reason name ("io", "mmio", ...) or NULL. */
const char *trace_exit_reason_name(uint64_t reason);
