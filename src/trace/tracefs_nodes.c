// SPDX-License-Identifier: MIT
/*
 * keel tracefs: paths resolved to nodes, and what the files hold: the text
 * generated when one is opened, and the changes a write to one makes.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "runtime.h"
#include "tracefs_int.h"
#include "view.h"
#include "base/util.h"

static const struct name_kind vm_files[] = {
	{ "README", N_README },
	{ "tracing_on", N_TRACING_ON },
	{ "trace", N_TRACE },
	{ "trace_pipe", N_TRACE_PIPE },
	{ "stats", N_STATS },
	{ "buffer_size_kb", N_BUFFER_SIZE },
	{ "buffer_total_size_kb", N_BUFFER_TOTAL },
	{ "set_event", N_SET_EVENT },
	{ "available_events", N_AVAILABLE },
	{ "events", N_EVENTS },
	{ "options", N_OPTIONS },
	{ "per_thread", N_PER_THREAD },
};
static const struct name_kind event_files[] = {
	{ "enable", N_EVENT_ENABLE }, { "format", N_EVENT_FORMAT }, { "id", N_EVENT_ID }
};
static const struct name_kind thread_files[] = {
	{ "trace", N_THREAD_TRACE },
	{ "trace_pipe", N_THREAD_PIPE },
	{ "stats", N_THREAD_STATS },
	{ "overwrite", N_THREAD_OVERWRITE },
};

/* The fixed files of a VM, an event or a thread directory (N_VM, N_EVENT, N_THREAD), *count of them. */
const struct name_kind *tfs_dir_files(enum node_kind k, size_t *count)
{
	switch (k) {
	case N_VM:
		*count = ARRAY_SIZE(vm_files);
		return vm_files;
	case N_EVENT:
		*count = ARRAY_SIZE(event_files);
		return event_files;
	case N_THREAD:
		*count = ARRAY_SIZE(thread_files);
		return thread_files;
	default:
		*count = 0;
		return NULL;
	}
}

static int find_kind(const struct name_kind *t, size_t n, const char *name, enum node_kind *k)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, name)) {
			*k = t[i].kind;
			return 0;
		}
	return -ENOENT;
}

static const char *find_group(const char *name)
{
	const char *g[TRACE_MAX_GROUPS];
	unsigned n = trace_groups(g);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(g[i], name))
			return g[i];
	return NULL;
}

/* Resolve a path; on success n->vm (if any) holds a reference: tfs_node_put() it. */
int tfs_resolve(const char *path, struct node *n)
{
	memset(n, 0, sizeof(*n));
	n->event = n->ring = -1;
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	char *comp[8];
	int nc = 0;
	for (char *save = NULL, *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (nc == 8)
			return -ENOENT;
		comp[nc++] = t;
	}
	if (nc == 0) {
		n->kind = N_ROOT;
		return 0;
	}
	if (!trace_valid_name(comp[0], strlen(comp[0])))
		return -ENOENT;
	n->vm = tfs_vm_get(comp[0]);
	if (!n->vm)
		return -ENOENT;
	int r = -ENOENT;
	n->kind = N_VM;
	if (nc == 1)
		return 0;
	if (find_kind(vm_files, ARRAY_SIZE(vm_files), comp[1], &n->kind))
		goto fail;
	switch (n->kind) {
	case N_EVENTS:
		if (nc == 2)
			return 0;
		if (nc == 3 && !strcmp(comp[2], "enable")) {
			n->kind = N_EVENTS_ENABLE;
			return 0;
		}
		n->group = find_group(comp[2]);
		if (!n->group)
			goto fail;
		n->kind = N_GROUP;
		if (nc == 3)
			return 0;
		if (nc == 4 && !strcmp(comp[3], "enable")) {
			n->kind = N_GROUP_ENABLE;
			return 0;
		}
		n->event = trace_event_find(n->group, comp[3]);
		if (n->event < 0)
			goto fail;
		n->kind = N_EVENT;
		if (nc == 4)
			return 0;
		if (nc == 5 && !find_kind(event_files, ARRAY_SIZE(event_files), comp[4], &n->kind))
			return 0;
		goto fail;
	case N_OPTIONS:
		if (nc == 2)
			return 0;
		if (nc == 3 && !strcmp(comp[2], "overwrite")) {
			n->kind = N_OPT_OVERWRITE;
			return 0;
		}
		goto fail;
	case N_PER_THREAD:
		if (nc == 2)
			return 0;
		n->ring = trace_view_ring_find(&n->vm->view, comp[2]);
		if (n->ring < 0)
			goto fail;
		n->kind = N_THREAD;
		if (nc == 3)
			return 0;
		if (nc == 4 && !find_kind(thread_files, ARRAY_SIZE(thread_files), comp[3], &n->kind))
			return 0;
		goto fail;
	default:
		if (nc == 2)
			return 0;
		goto fail;
	}
fail:
	tfs_vm_put(n->vm);
	n->vm = NULL;
	return r;
}

bool tfs_is_dir(enum node_kind k)
{
	return k == N_ROOT || k == N_VM || k == N_EVENTS || k == N_GROUP || k == N_EVENT || k == N_OPTIONS ||
	       k == N_PER_THREAD || k == N_THREAD;
}

bool tfs_is_writable(enum node_kind k)
{
	switch (k) {
	case N_TRACING_ON:
	case N_TRACE:
	case N_BUFFER_SIZE:
	case N_SET_EVENT:
	case N_EVENTS_ENABLE:
	case N_GROUP_ENABLE:
	case N_EVENT_ENABLE:
	case N_OPT_OVERWRITE:
	case N_THREAD_TRACE:
	case N_THREAD_OVERWRITE:
		return true;
	default:
		return false;
	}
}

bool tfs_is_pipe(enum node_kind k)
{
	return k == N_TRACE_PIPE || k == N_THREAD_PIPE;
}

/* "0", "1" or "X" (mixed) for the enable files. */
static char enable_state(struct trace_ctl *c, const char *group)
{
	int on = 0, off = 0;
	for (unsigned i = 0; i < TE_COUNT; i++) {
		if (group && strcmp(trace_events[i].group, group))
			continue;
		if (trace_get_enabled(c, (int)i))
			on++;
		else
			off++;
	}
	return on && off ? 'X' : on ? '1' : '0';
}

static const char readme[] =
	"keel tracefs: one directory per running keel VM, laid out like Linux's tracefs.\n"
	"\n"
	"  tracing_on            1: enabled events are recorded; 0: they are not (echo 0|1)\n"
	"  trace                 snapshot of every buffer, oldest first; reading does not consume;\n"
	"                        echo > trace empties the buffers\n"
	"  trace_pipe            consuming read, in time order: each record is delivered once;\n"
	"                        blocks when empty, EOF once the VM exited and all was read\n"
	"  stats                 per thread: written, entries, consumed, overrun, dropped, cleared\n"
	"  buffer_size_kb        per-thread buffer size now (max: keel run --trace-buffer-size);\n"
	"                        writable from 4 up to the max, rounded down to a power of two;\n"
	"                        a change empties the buffers\n"
	"  buffer_total_size_kb  size now times threads with a buffer\n"
	"  set_event             enabled events; echo 'vcpu:exit' >> set_event, echo '!vcpu:exit' >>,\n"
	"                        echo > set_event disables all; 'group:*' and '*:*' work\n"
	"  available_events      every event, group:name\n"
	"  events/enable, events/GROUP/enable, events/GROUP/EVENT/enable   0, 1 (X: mixed)\n"
	"  events/GROUP/EVENT/format, id\n"
	"  options/overwrite     1: full buffers overwrite the oldest records (overrun);\n"
	"                        0: they keep the oldest and drop new ones (dropped)\n"
	"  per_thread/THREAD/    trace, trace_pipe, stats and overwrite of one thread's buffer\n"
	"\n"
	"Every lost record is counted (stats) and trace_pipe says [LOST N EVENTS].\n"
	"Bad writes fail with EINVAL and change nothing.\n";

/* Generate a file's text (not trace_pipe). */
void tfs_generate(const struct node *n, struct sbuf *out)
{
	struct trace_view *v = &n->vm->view;
	struct trace_ctl *c = v->ctl;
	switch (n->kind) {
	case N_README:
		sb_append(out, readme, sizeof(readme) - 1);
		break;
	case N_TRACING_ON:
		sb_printf(out, "%u\n", load_relaxed(&c->tracing_on) ? 1 : 0);
		break;
	case N_TRACE:
		trace_view_snapshot_text(v, -1, out);
		break;
	case N_THREAD_TRACE:
		trace_view_snapshot_text(v, n->ring, out);
		break;
	case N_STATS:
		trace_view_stats_text(v, -1, out);
		break;
	case N_THREAD_STATS:
		trace_view_stats_text(v, n->ring, out);
		break;
	case N_BUFFER_SIZE:
		sb_printf(out, "%" PRIu64 " (max %" PRIu64 ")\n", trace_view_buffer_kb(v), trace_view_max_buffer_kb(v));
		break;
	case N_BUFFER_TOTAL: {
		struct trace_totals t;
		trace_view_totals(v, -1, &t);
		sb_printf(out, "%" PRIu64 "\n", t.sum.capacity * TRACE_SLOT_SIZE / 1024);
		break;
	}
	case N_SET_EVENT:
		trace_get_events(c, out);
		break;
	case N_AVAILABLE:
		for (unsigned i = 0; i < TE_COUNT; i++)
			sb_printf(out, "%s:%s\n", trace_events[i].group, trace_events[i].name);
		break;
	case N_EVENTS_ENABLE:
		sb_printf(out, "%c\n", enable_state(c, NULL));
		break;
	case N_GROUP_ENABLE:
		sb_printf(out, "%c\n", enable_state(c, n->group));
		break;
	case N_EVENT_ENABLE:
		sb_printf(out, "%d\n", trace_get_enabled(c, n->event));
		break;
	case N_EVENT_FORMAT: {
		char buf[2048];
		size_t len = trace_format_event_file((unsigned)n->event, buf, sizeof(buf));
		sb_append(out, buf, len);
		break;
	}
	case N_EVENT_ID:
		sb_printf(out, "%d\n", n->event);
		break;
	case N_OPT_OVERWRITE:
		sb_printf(out, "%d\n", trace_view_get_overwrite(v, -1));
		break;
	case N_THREAD_OVERWRITE:
		sb_printf(out, "%d\n", trace_view_get_overwrite(v, n->ring));
		break;
	default:
		break;
	}
}

void tfs_node_put(struct node *n)
{
	tfs_vm_put(n->vm);
	n->vm = NULL;
}

/* Apply a write to a control file.  0, or -EINVAL having changed nothing.  *trunc_pending: opened with O_TRUNC
 * and not emptied yet (see fs_open); a good write to trace or set_event does that and clears it. */
int tfs_apply_write(const struct node *n, const char *data, size_t len, bool *trunc_pending)
{
	struct trace_view *v = &n->vm->view;
	struct trace_ctl *c = v->ctl;
	bool b;
	switch (n->kind) {
	case N_TRACING_ON:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		store_relaxed(&c->tracing_on, b ? 1 : 0);
		return 0;
	case N_EVENT_ENABLE:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		trace_set_enabled(c, n->event, b);
		return 0;
	case N_GROUP_ENABLE:
	case N_EVENTS_ENABLE:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		for (unsigned i = 0; i < TE_COUNT; i++)
			if (n->kind == N_EVENTS_ENABLE || !strcmp(trace_events[i].group, n->group))
				trace_set_enabled(c, (int)i, b);
		return 0;
	case N_OPT_OVERWRITE:
	case N_THREAD_OVERWRITE:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		trace_view_set_overwrite(v, n->kind == N_OPT_OVERWRITE ? -1 : n->ring, b);
		return 0;
	case N_BUFFER_SIZE:
		return trace_view_set_buffer_kb(v, data, len);
	case N_TRACE:
	case N_THREAD_TRACE:
		for (size_t i = 0; i < len; i++)
			if (data[i] != '\n' && data[i] != ' ')
				return -EINVAL;
		trace_view_clear(v, n->kind == N_TRACE ? -1 : n->ring);
		*trunc_pending = false;
		return 0;
	case N_SET_EVENT: {
		char *text = strndup(data, len);
		if (!text)
			return -ENOMEM;
		char err[160];
		int r = trace_set_events(c, text, *trunc_pending, err, sizeof(err));
		free(text);
		if (!r)
			*trunc_pending = false;
		return r;
	}
	default:
		return -EACCES;
	}
}
