// SPDX-License-Identifier: MIT
/* The event table, generated from TRACE_EVENT_LIST, and record formatting. */
#include "events.h"

#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"

#define EV_DESC_(id, g, n, f1, f2, f3, f4, f5)                                                  \
	[TE_##id] = { .group = #g, .name = #n, .nslots = TE_NS_##id, .fields = { f1 f2 f3 f4 f5 } },
#define EV_FIELD_(fname, kind) { #fname, TF_##kind },
const struct trace_event_desc trace_events[TE_COUNT] = { TRACE_EVENT_LIST(EV_DESC_, EV_FIELD_, EV_FIELD_, ) };

#define EV_CHECK_(id, g, n, f1, f2, f3, f4, f5) \
	_Static_assert(TE_NS_##id <= TRACE_MAX_SLOTS, #id ": more than 5 field slots");
TRACE_EVENT_LIST(EV_CHECK_, TRACE_ONE_, TRACE_TWO_, )

static const char *const exit_reasons[] = {
	[KVM_EXIT_UNKNOWN] = "unknown",
	[KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug",
	[KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	[KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr",
	[KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi",
	[KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
	[KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	[KVM_EXIT_HYPERV] = "hyperv",
	[KVM_EXIT_X86_RDMSR] = "rdmsr",
	[KVM_EXIT_X86_WRMSR] = "wrmsr",
};

/* enum blk_op of src/block/block.h, in its order. */
static const char *const blk_ops[] = { "read", "write", "flush", "discard", "write_zeroes" };

static const char *const milestones[TM_COUNT] = {
	[TM_START] = "start",
	[TM_KVM_OPEN] = "kvm_open",
	[TM_RAM] = "ram_allocated",
	[TM_BUILT] = "machine_built",
	[TM_SANDBOX] = "sandbox_up",
	[TM_VCPUS_STARTED] = "vcpus_started",
	[TM_VM_STOPPED] = "vm_stopped",
};

const char *trace_exit_reason_name(uint64_t reason)
{
	return reason < ARRAY_SIZE(exit_reasons) ? exit_reasons[reason] : NULL;
}

static const char *symbol(enum trace_field_kind kind, uint64_t v)
{
	switch (kind) {
	case TF_EXIT_REASON:
		return trace_exit_reason_name(v);
	case TF_BLK_OP:
		return v < ARRAY_SIZE(blk_ops) ? blk_ops[v] : NULL;
	case TF_MILESTONE:
		return v < ARRAY_SIZE(milestones) ? milestones[v] : NULL;
	default:
		return NULL;
	}
}

uint64_t trace_events_hash(void)
{
	uint64_t h = 0xcbf29ce484222325ull;
	char buf[256];
	for (unsigned i = 0; i < TE_COUNT; i++) {
		const struct trace_event_desc *e = &trace_events[i];
		int n = snprintf(buf, sizeof(buf), "%s:%s", e->group, e->name);
		for (unsigned f = 0; f < TRACE_MAX_SLOTS && e->fields[f].name && n > 0 && (size_t)n < sizeof(buf); f++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",%s/%d", e->fields[f].name, e->fields[f].kind);
		for (const char *p = buf; *p; p++)
			h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
		h = (h ^ ';') * 0x100000001b3ull;
	}
	return h;
}

unsigned trace_groups(const char *out[TRACE_MAX_GROUPS])
{
	unsigned n = 0;
	for (unsigned i = 0; i < TE_COUNT; i++) {
		unsigned j = 0;
		while (j < n && strcmp(out[j], trace_events[i].group))
			j++;
		if (j == n && n < TRACE_MAX_GROUPS)
			out[n++] = trace_events[i].group;
	}
	return n;
}

int trace_event_find(const char *group, const char *name)
{
	for (unsigned i = 0; i < TE_COUNT; i++)
		if (!strcmp(trace_events[i].group, group) && !strcmp(trace_events[i].name, name))
			return (int)i;
	return -1;
}

/* Packed names from shared memory: printable name characters only. */
static void unpack_name(const uint64_t *w, unsigned words, char *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < words * 8; i++) {
		char c = (char)(w[i / 8] >> (8 * (i % 8)));
		if (!c)
			break;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || c == '.' || c == '/' || c == ':';
		out[n++] = ok ? c : '?';
	}
	out[n] = 0;
}

#define APPEND(...)                                                              \
	do {                                                                     \
		if (n < len) {                                                   \
			int m_ = snprintf(buf + n, len - n, __VA_ARGS__);        \
			n = m_ < 0 ? len : MIN(len - 1, n + (size_t)m_);         \
		}                                                                \
	} while (0)

size_t trace_format_fields(const struct trace_rec *rec, uint64_t tick_mult, char *buf, size_t len)
{
	size_t n = 0;
	if (!len)
		return 0;
	buf[0] = 0;
	if (rec->id >= TE_COUNT) {
		APPEND("unknown event %u", rec->id);
		return n;
	}
	const struct trace_event_desc *e = &trace_events[rec->id];
	unsigned slot = 0;
	for (unsigned f = 0; f < TRACE_MAX_SLOTS && e->fields[f].name && slot < TRACE_MAX_SLOTS; f++) {
		const struct trace_field *fd = &e->fields[f];
		uint64_t v = rec->arg[slot];
		APPEND("%s%s=", f ? " " : "", fd->name);
		char s[24];
		const char *sym;
		switch (fd->kind) {
		case TF_S64:
			APPEND("%" PRId64, (int64_t)v);
			break;
		case TF_HEX:
			APPEND("0x%" PRIx64, v);
			break;
		case TF_DURATION:
			APPEND("%" PRIu64, (uint64_t)(((unsigned __int128)v * tick_mult) >> 32));
			break;
		case TF_STR8:
			unpack_name(&rec->arg[slot], 1, s);
			APPEND("%s", s);
			break;
		case TF_STR16:
			unpack_name(&rec->arg[slot], slot + 1 < TRACE_MAX_SLOTS ? 2 : 1, s);
			APPEND("%s", s);
			slot++;
			break;
		case TF_EXIT_REASON:
		case TF_BLK_OP:
		case TF_MILESTONE:
			sym = symbol(fd->kind, v);
			if (sym)
				APPEND("%s", sym);
			else
				APPEND("%" PRIu64, v);
			break;
		case TF_U64:
		default:
			APPEND("%" PRIu64, v);
			break;
		}
		slot++;
	}
	return n;
}

static const char *kind_type(enum trace_field_kind k)
{
	switch (k) {
	case TF_S64: return "s64";
	case TF_STR8: return "char[8]";
	case TF_STR16: return "char[16]";
	default: return "u64";
	}
}

static const char *kind_format(enum trace_field_kind k)
{
	switch (k) {
	case TF_S64: return "%lld";
	case TF_HEX: return "0x%llx";
	case TF_STR8:
	case TF_STR16:
	case TF_EXIT_REASON:
	case TF_BLK_OP:
	case TF_MILESTONE: return "%s";
	default: return "%llu";
	}
}

size_t trace_format_event_file(unsigned id, char *buf, size_t len)
{
	size_t n = 0;
	if (!len)
		return 0;
	buf[0] = 0;
	if (id >= TE_COUNT)
		return 0;
	const struct trace_event_desc *e = &trace_events[id];
	APPEND("name: %s\nID: %u\nformat:\n", e->name, id);
	APPEND("\tfield:u64 common_seq;\toffset:0;\tsize:8;\tsigned:0;\n");
	APPEND("\tfield:u64 common_timestamp;\toffset:8;\tsize:8;\tsigned:0;\n");
	APPEND("\tfield:u64 common_type;\toffset:16;\tsize:8;\tsigned:0;\n\n");
	unsigned off = 24;
	for (unsigned f = 0; f < TRACE_MAX_SLOTS && e->fields[f].name; f++) {
		const struct trace_field *fd = &e->fields[f];
		unsigned size = fd->kind == TF_STR16 ? 16 : 8;
		APPEND("\tfield:%s %s;\toffset:%u;\tsize:%u;\tsigned:%d;\n", kind_type(fd->kind), fd->name, off, size,
		       fd->kind == TF_S64);
		off += size;
	}
	APPEND("\nprint fmt: \"");
	for (unsigned f = 0; f < TRACE_MAX_SLOTS && e->fields[f].name; f++)
		APPEND("%s%s=%s", f ? " " : "", e->fields[f].name, kind_format(e->fields[f].kind));
	APPEND("\"");
	for (unsigned f = 0; f < TRACE_MAX_SLOTS && e->fields[f].name; f++) {
		const struct trace_field *fd = &e->fields[f];
		switch (fd->kind) {
		case TF_DURATION: APPEND(", ticks_to_ns(REC->%s)", fd->name); break;
		case TF_EXIT_REASON: APPEND(", kvm_exit_reason(REC->%s)", fd->name); break;
		case TF_BLK_OP: APPEND(", blk_op(REC->%s)", fd->name); break;
		case TF_MILESTONE: APPEND(", boot_milestone(REC->%s)", fd->name); break;
		default: APPEND(", REC->%s", fd->name); break;
		}
	}
	APPEND("\n");
	if (n + 1 >= len)
		return n;
	APPEND("\n# timestamps: the TSC (rdtsc), printed as CLOCK_MONOTONIC seconds; *_ns fields: TSC ticks, printed as ns\n");
	return n;
}
