// SPDX-License-Identifier: MIT
/*
 * keel tracefs MOUNTPOINT: every running keel process as a directory laid
 * out like Linux's tracefs, driven with cat, echo, grep and tail.
 *
 * VMs are found in the runtime directory (runtime.h), rescanned on each
 * readdir of the root and each lookup of an unknown name; each is connected
 * once and its trace memory mapped, so reads and writes go straight to the
 * shared memory.  A VM that exits leaves the listing; files already open on
 * it keep working (trace_pipe drains, then reports EOF).
 *
 * Files are generated when opened (a consistent snapshot per open, served
 * by offset), except trace_pipe: each open handle is an append-only stream
 * of the records it consumed; reads at its end take more records, and block
 * (polling the rings) when there are none, unless O_NONBLOCK (EAGAIN).
 *
 * `tail -f trace_pipe` works because of two sizes: lseek(SEEK_END) on the
 * open handle (the kernel asks with the handle) gets what its stream holds
 * after taking what is ready (at least 1, so that tail's first read waits
 * for a record instead of reading to an end of file that never comes), and
 * stat() gets 2^62, more than any reader's position, so tail's polling never
 * takes the file for truncated and reads on whenever records arrive.
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "../config.h"
#include "cmd.h"
#include "events.h"
#include "runtime.h"
#include "view.h"
#include "../util.h"

#define POLL_NS (5 * 1000 * 1000)         /* a blocked trace_pipe read looks again this often */
#define PIPE_KEEP (256 * 1024)           /* stream bytes kept behind the furthest read */
#define PIPE_BATCH 4096                  /* records taken per fill at most */
#define PIPE_STAT_SIZE (1ll << 62)       /* trace_pipe's size in stat(): see fs_getattr */

struct vm_entry {
	struct vm_entry *next;
	char name[TRACE_NAME_MAX + 1];
	struct trace_view view;
	int refs; /* the list's, plus one per resolved node */
	bool listed;
	bool seen;
};

static pthread_mutex_t vms_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vm_entry *vms;
static int runtime_fd = -1;
static time_t mount_time;

static void vm_put(struct vm_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&vms_lock);
	bool last = --e->refs == 0;
	pthread_mutex_unlock(&vms_lock);
	if (last) {
		trace_view_close(&e->view);
		free(e);
	}
}

/* Unlist entries that are not `seen` or whose VM exited (open files keep theirs).  vms_lock held. */
static void drop_unseen_locked(void)
{
	for (struct vm_entry **pp = &vms; *pp;) {
		struct vm_entry *e = *pp;
		if (e->seen && !trace_view_gone(&e->view)) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		e->listed = false;
		if (--e->refs == 0) {
			trace_view_close(&e->view);
			free(e);
		}
	}
}

/* Drop VMs that exited or whose socket went; connect to new sockets.  vms_lock held. */
static void rescan_locked(void)
{
	for (struct vm_entry *e = vms; e; e = e->next)
		e->seen = true;
	drop_unseen_locked(); /* the exited first: a new VM may have taken the name */
	for (struct vm_entry *e = vms; e; e = e->next)
		e->seen = false;
	int fd = runtime_fd >= 0 ? dup(runtime_fd) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d && fd >= 0)
		close(fd);
	if (d) {
		rewinddir(d);
		struct dirent *de;
		while ((de = readdir(d))) {
			size_t n = strlen(de->d_name), sl = strlen(TRACE_SOCK_SUFFIX);
			if (n <= sl || strcmp(de->d_name + n - sl, TRACE_SOCK_SUFFIX) ||
			    !trace_valid_name(de->d_name, n - sl))
				continue;
			char name[TRACE_NAME_MAX + 1];
			memcpy(name, de->d_name, n - sl);
			name[n - sl] = 0;
			struct vm_entry *e = vms;
			while (e && strcmp(e->name, name))
				e = e->next;
			if (e) {
				e->seen = true;
				continue;
			}
			struct vm_entry *ne = calloc(1, sizeof(*ne));
			if (!ne)
				break;
			char err[160];
			int r = trace_view_connect(&ne->view, runtime_fd, de->d_name, err, sizeof(err));
			if (r) {
				free(ne);
				if (r == -ECONNREFUSED) /* a killed keel's socket: tidy up after it */
					trace_runtime_remove_stale(runtime_fd, de->d_name);
				continue; /* or not a keel */
			}
			snprintf(ne->name, sizeof(ne->name), "%s", name);
			ne->refs = 1;
			ne->listed = ne->seen = true;
			ne->next = vms;
			vms = ne;
		}
		closedir(d);
	}
	drop_unseen_locked();
}

/* The running VM named name, with a reference; rescans if it is not known or has exited. */
static struct vm_entry *vm_get(const char *name)
{
	pthread_mutex_lock(&vms_lock);
	struct vm_entry *e = NULL;
	for (int pass = 0; pass < 2 && !e; pass++) {
		if (pass)
			rescan_locked();
		for (e = vms; e && strcmp(e->name, name); e = e->next)
			;
		if (e && !pass && trace_view_gone(&e->view))
			e = NULL; /* the rescan drops it (and finds a new VM of that name) */
	}
	if (e)
		e->refs++;
	pthread_mutex_unlock(&vms_lock);
	return e;
}

enum node_kind {
	N_ROOT,
	N_VM,
	N_README,
	N_TRACING_ON,
	N_TRACE,
	N_TRACE_PIPE,
	N_STATS,
	N_BUFFER_SIZE,
	N_BUFFER_TOTAL,
	N_SET_EVENT,
	N_AVAILABLE,
	N_EVENTS,
	N_EVENTS_ENABLE,
	N_GROUP,
	N_GROUP_ENABLE,
	N_EVENT,
	N_EVENT_ENABLE,
	N_EVENT_FORMAT,
	N_EVENT_ID,
	N_OPTIONS,
	N_OPT_OVERWRITE,
	N_PER_THREAD,
	N_THREAD,
	N_THREAD_TRACE,
	N_THREAD_PIPE,
	N_THREAD_STATS,
	N_THREAD_OVERWRITE,
};

struct node {
	enum node_kind kind;
	struct vm_entry *vm;
	const char *group;
	int event;
	int ring;
};

struct name_kind {
	const char *name;
	enum node_kind kind;
};

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

/* Resolve a path; on success n->vm (if any) holds a reference: node_put() it. */
static int resolve(const char *path, struct node *n)
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
	n->vm = vm_get(comp[0]);
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
	vm_put(n->vm);
	n->vm = NULL;
	return r;
}

static bool is_dir(enum node_kind k)
{
	return k == N_ROOT || k == N_VM || k == N_EVENTS || k == N_GROUP || k == N_EVENT || k == N_OPTIONS ||
	       k == N_PER_THREAD || k == N_THREAD;
}

static bool is_writable(enum node_kind k)
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

static bool is_pipe(enum node_kind k)
{
	return k == N_TRACE_PIPE || k == N_THREAD_PIPE;
}

struct handle {
	struct node node;
	pthread_mutex_t lock;
	struct sbuf text;    /* the generated file, or the stream window */
	uint64_t base;       /* trace_pipe: stream offset of text.p[0] */
	uint64_t furthest;   /* trace_pipe: furthest offset read */
	struct trace_cursor cur;
	bool cursor_ok;
	bool gave_data;      /* trace_pipe: delivered something */
	bool trunc_pending;  /* set_event opened with O_TRUNC: clear with the first good write or on close */
	bool wrote;
};

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
static void generate(const struct node *n, struct sbuf *out)
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

static void node_put(struct node *n)
{
	vm_put(n->vm);
	n->vm = NULL;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi);

/* trace_pipe: take ready records into the handle's stream, up to want bytes past its end. */
static size_t pipe_fill(struct handle *h, size_t want)
{
	struct trace_view *v = &h->node.vm->view;
	size_t before = h->text.len;
	trace_cursor_report_losses(v, &h->cur, h->node.ring, &h->text);
	struct trace_rec rec;
	for (int i = 0; i < PIPE_BATCH && h->text.len - before < want && !h->text.oom; i++) {
		if (!trace_cursor_take(v, &h->cur, h->node.ring, &rec))
			break;
		/* Losses found while taking it come first: they happened before it. */
		trace_cursor_report_losses(v, &h->cur, (int)rec.ring, &h->text);
		trace_view_format(v, &rec, &h->text);
	}
	trace_cursor_report_losses(v, &h->cur, h->node.ring, &h->text);
	return h->text.len - before;
}

static bool session_exited(void)
{
	struct fuse_context *ctx = fuse_get_context();
	return ctx && ctx->fuse && fuse_session_exited(fuse_get_session(ctx->fuse));
}

static int pipe_read(struct handle *h, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct trace_view *v = &h->node.vm->view;
	uint64_t o = (uint64_t)off;
	if (o < h->base)
		return -EINVAL; /* before what we keep of the stream */
	for (;;) {
		uint64_t end = h->base + h->text.len;
		if (o + size > end)
			pipe_fill(h, (size_t)(o + size - end));
		end = h->base + h->text.len;
		if (o < end)
			break;
		if (h->text.oom)
			return -ENOMEM;
		if (trace_view_gone(v)) {
			if (pipe_fill(h, size))
				continue;
			return 0; /* the VM exited and everything was read */
		}
		if (h->gave_data && !load_relaxed(&v->ctl->tracing_on))
			return 0; /* as Linux: EOF once tracing is off and something was read */
		if (fi->flags & O_NONBLOCK)
			return -EAGAIN;
		if (fuse_interrupted() || session_exited())
			return -EINTR;
		pthread_mutex_unlock(&h->lock);
		struct timespec ts = { 0, POLL_NS };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&h->lock);
	}
	uint64_t end = h->base + h->text.len;
	size_t n = (size_t)MIN((uint64_t)size, end - o);
	memcpy(buf, h->text.p + (o - h->base), n);
	h->gave_data = true;
	if (o + n > h->furthest)
		h->furthest = o + n;
	/* Keep PIPE_KEEP bytes behind the furthest read (tail reads back a little), drop the rest. */
	if (h->furthest - h->base > 2 * PIPE_KEEP) {
		uint64_t drop = h->furthest - h->base - PIPE_KEEP;
		sb_consume(&h->text, (size_t)drop);
		h->base += drop;
	}
	return (int)n;
}

static void fill_stat(enum node_kind k, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_atime = st->st_mtime = st->st_ctime = mount_time;
	if (is_dir(k)) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (is_writable(k) ? 0644 : 0444);
		st->st_nlink = 1;
	}
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	if (h) {
		fill_stat(h->node.kind, st);
		pthread_mutex_lock(&h->lock);
		if (is_pipe(h->node.kind)) {
			pipe_fill(h, PIPE_KEEP);
			st->st_size = (off_t)MAX(1, h->base + h->text.len);
			st->st_mtime = time(NULL);
		} else {
			st->st_size = (off_t)h->text.len;
		}
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	struct node n;
	int r = resolve(path, &n);
	if (r)
		return r;
	fill_stat(n.kind, st);
	if (is_pipe(n.kind)) {
		/* A stream has no size; this one is larger than any reader's position, so that
		 * tail -f, which polls fstat, never takes it for truncated and keeps reading. */
		st->st_size = PIPE_STAT_SIZE;
		st->st_mtime = time(NULL);
	}
	node_put(&n);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	struct node n;
	if (!strcmp(path, "/")) {
		pthread_mutex_lock(&vms_lock);
		rescan_locked();
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		for (struct vm_entry *e = vms; e; e = e->next)
			filler(buf, e->name, NULL, 0, 0);
		pthread_mutex_unlock(&vms_lock);
		return 0;
	}
	int r = resolve(path, &n);
	if (r)
		return r;
	if (!is_dir(n.kind)) {
		node_put(&n);
		return -ENOTDIR;
	}
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	const char *groups[TRACE_MAX_GROUPS];
	switch (n.kind) {
	case N_VM:
		for (size_t i = 0; i < ARRAY_SIZE(vm_files); i++)
			filler(buf, vm_files[i].name, NULL, 0, 0);
		break;
	case N_EVENTS: {
		filler(buf, "enable", NULL, 0, 0);
		unsigned ng = trace_groups(groups);
		for (unsigned i = 0; i < ng; i++)
			filler(buf, groups[i], NULL, 0, 0);
		break;
	}
	case N_GROUP:
		filler(buf, "enable", NULL, 0, 0);
		for (unsigned i = 0; i < TE_COUNT; i++)
			if (!strcmp(trace_events[i].group, n.group))
				filler(buf, trace_events[i].name, NULL, 0, 0);
		break;
	case N_EVENT:
		for (size_t i = 0; i < ARRAY_SIZE(event_files); i++)
			filler(buf, event_files[i].name, NULL, 0, 0);
		break;
	case N_OPTIONS:
		filler(buf, "overwrite", NULL, 0, 0);
		break;
	case N_PER_THREAD: {
		uint32_t used = trace_view_nr_rings(&n.vm->view);
		for (uint32_t i = 0; i < used; i++) {
			char name[17];
			trace_view_ring_name(&n.vm->view, i, name);
			if (name[0] && trace_view_ring_find(&n.vm->view, name) == (int)i)
				filler(buf, name, NULL, 0, 0);
		}
		break;
	}
	case N_THREAD:
		for (size_t i = 0; i < ARRAY_SIZE(thread_files); i++)
			filler(buf, thread_files[i].name, NULL, 0, 0);
		break;
	default:
		break;
	}
	node_put(&n);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct node n;
	int r = resolve(path, &n);
	if (r)
		return r;
	int acc = fi->flags & O_ACCMODE;
	if (is_dir(n.kind)) {
		node_put(&n);
		return -EISDIR;
	}
	if (acc != O_RDONLY && !is_writable(n.kind)) {
		node_put(&n);
		return -EACCES;
	}
	struct handle *h = calloc(1, sizeof(*h));
	if (!h) {
		node_put(&n);
		return -ENOMEM;
	}
	h->node = n;
	pthread_mutex_init(&h->lock, NULL);
	struct trace_view *v = &n.vm->view;
	if (is_pipe(n.kind)) {
		if (trace_cursor_init(&h->cur, v)) {
			node_put(&h->node);
			free(h);
			return -ENOMEM;
		}
		h->cursor_ok = true;
	} else if ((fi->flags & O_TRUNC) && (n.kind == N_TRACE || n.kind == N_THREAD_TRACE || n.kind == N_SET_EVENT)) {
		/* echo > trace empties the buffers, echo X > set_event replaces the list (as Linux):
		 * done with the first good write, or at close if nothing is written, never after a bad one. */
		h->trunc_pending = true;
	}
	if (!is_pipe(n.kind) && acc != O_WRONLY) {
		generate(&n, &h->text);
		if (h->text.oom) {
			sb_free(&h->text);
			node_put(&h->node);
			free(h);
			return -ENOMEM;
		}
	}
	fi->direct_io = 1; /* sizes are not known in advance; every read comes here */
	fi->keep_cache = 0;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (size > INT_MAX)
		size = INT_MAX;
	pthread_mutex_lock(&h->lock);
	int r;
	if (is_pipe(h->node.kind)) {
		r = pipe_read(h, buf, size, off, fi);
	} else if ((uint64_t)off >= h->text.len) {
		r = 0;
	} else {
		size_t n = MIN(size, h->text.len - (size_t)off);
		memcpy(buf, h->text.p + off, n);
		r = (int)n;
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

/* Apply a write to a control file.  0, or -EINVAL having changed nothing. */
static int apply_write(struct handle *h, const char *data, size_t len)
{
	struct trace_view *v = &h->node.vm->view;
	struct trace_ctl *c = v->ctl;
	bool b;
	switch (h->node.kind) {
	case N_TRACING_ON:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		store_relaxed(&c->tracing_on, b ? 1 : 0);
		return 0;
	case N_EVENT_ENABLE:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		trace_set_enabled(c, h->node.event, b);
		return 0;
	case N_GROUP_ENABLE:
	case N_EVENTS_ENABLE:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		for (unsigned i = 0; i < TE_COUNT; i++)
			if (h->node.kind == N_EVENTS_ENABLE || !strcmp(trace_events[i].group, h->node.group))
				trace_set_enabled(c, (int)i, b);
		return 0;
	case N_OPT_OVERWRITE:
	case N_THREAD_OVERWRITE:
		if (trace_parse_bool(data, len, &b))
			return -EINVAL;
		trace_view_set_overwrite(v, h->node.kind == N_OPT_OVERWRITE ? -1 : h->node.ring, b);
		return 0;
	case N_BUFFER_SIZE:
		return trace_view_set_buffer_kb(v, data, len);
	case N_TRACE:
	case N_THREAD_TRACE:
		for (size_t i = 0; i < len; i++)
			if (data[i] != '\n' && data[i] != ' ')
				return -EINVAL;
		trace_view_clear(v, h->node.kind == N_TRACE ? -1 : h->node.ring);
		h->trunc_pending = false;
		return 0;
	case N_SET_EVENT: {
		char *text = strndup(data, len);
		if (!text)
			return -ENOMEM;
		char err[160];
		int r = trace_set_events(c, text, h->trunc_pending, err, sizeof(err));
		free(text);
		if (!r)
			h->trunc_pending = false;
		return r;
	}
	default:
		return -EACCES;
	}
}

static int fs_write(const char *path, const char *data, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path, (void)off;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (size > 65536)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	int r = apply_write(h, data, size);
	h->wrote = true; /* even a refused write: `echo bad > set_event` changes nothing at all */
	pthread_mutex_unlock(&h->lock);
	return r ? r : (int)size;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)size;
	if (fi)
		return 0; /* O_TRUNC on open is handled there */
	struct node n;
	int r = resolve(path, &n);
	if (r)
		return r;
	if (!is_writable(n.kind)) {
		r = -EACCES;
	} else if (n.kind == N_SET_EVENT) {
		(void)trace_set_events(n.vm->view.ctl, "", true, NULL, 0);
	} else if (n.kind == N_TRACE || n.kind == N_THREAD_TRACE) {
		trace_view_clear(&n.vm->view, n.kind == N_TRACE ? -1 : n.ring);
	}
	node_put(&n);
	return r;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (h->trunc_pending && !h->wrote) { /* `: > set_event`, `: > trace` */
		if (h->node.kind == N_SET_EVENT)
			(void)trace_set_events(h->node.vm->view.ctl, "", true, NULL, 0);
		else
			trace_view_clear(&h->node.vm->view, h->node.kind == N_TRACE ? -1 : h->node.ring);
	}
	if (h->cursor_ok)
		trace_cursor_free(&h->cur);
	sb_free(&h->text);
	pthread_mutex_destroy(&h->lock);
	node_put(&h->node);
	free(h);
	return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)tv, (void)fi;
	struct node n;
	int r = resolve(path, &n);
	if (!r)
		node_put(&n);
	return r;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->want |= FUSE_CAP_ATOMIC_O_TRUNC & conn->capable;
	/* Everything is live: no caching of names, attributes or data in the kernel. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->nullpath_ok = 0;
	return NULL;
}

static void fs_destroy(void *data)
{
	(void)data;
	pthread_mutex_lock(&vms_lock);
	while (vms) {
		struct vm_entry *e = vms;
		vms = e->next;
		if (--e->refs == 0) {
			trace_view_close(&e->view);
			free(e);
		}
	}
	pthread_mutex_unlock(&vms_lock);
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.truncate = fs_truncate,
	.release = fs_release,
	.utimens = fs_utimens,
	.init = fs_init,
	.destroy = fs_destroy,
};

static void tracefs_usage(FILE *out)
{
	fprintf(out, "usage: keel tracefs [options] MOUNTPOINT\n\n"
		     "Mount a file system showing every running keel VM of this user as a directory laid out\n"
		     "like Linux's tracefs (tracing_on, trace, trace_pipe, stats, events/..., set_event).\n"
		     "VMs are found in $XDG_RUNTIME_DIR/keel (or /tmp/keel-UID); cat MOUNTPOINT/VM/README.\n"
		     "Unmount with fusermount3 -u MOUNTPOINT (or Ctrl-C when in the foreground).\n\n"
		     "options:\n"
		     "  -d, --background             detach once mounted (default: stay in the foreground)\n"
		     "  -o, --options OPTS           extra FUSE mount options (e.g. allow_other)\n"
		     "  -h, --help                   show this help\n");
}

int cmd_tracefs(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "background", no_argument, NULL, 'd' },
		{ "options", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool background = false;
	const char *extra = NULL;
	optind = 1;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":do:h", longopts, NULL)) != -1;) {
		switch (c) {
		case 'd': background = true; break;
		case 'o': extra = optarg; break;
		case 'h': tracefs_usage(stdout); return KEEL_EXIT_OK;
		case ':':
			fprintf(stderr, "keel tracefs: %s: needs a value (see keel tracefs --help)\n", argv[optind - 1]);
			return KEEL_EXIT_USAGE;
		default:
			fprintf(stderr, "keel tracefs: %s: unknown option (see keel tracefs --help)\n", argv[optind - 1]);
			return KEEL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "keel tracefs: needs one MOUNTPOINT (see keel tracefs --help)\n");
		return KEEL_EXIT_USAGE;
	}
	const char *mnt = argv[optind];
	struct stat st;
	if (stat(mnt, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "keel tracefs: %s: not a directory\n", mnt);
		return KEEL_EXIT_USAGE;
	}
	const char *why;
	runtime_fd = trace_runtime_dir_open(true, &why);
	if (runtime_fd < 0) {
		char dir[PATH_MAX];
		(void)trace_runtime_dir(dir, sizeof(dir));
		fprintf(stderr, "keel tracefs: runtime directory %s: %s (%s)\n", dir, strerror(-runtime_fd), why);
		return KEEL_EXIT_ERROR;
	}
	mount_time = time(NULL);
	int status = KEEL_EXIT_ERROR;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char opts[512];
	snprintf(opts, sizeof(opts), "fsname=keel-tracefs,subtype=keel,default_permissions%s%s", extra ? "," : "",
		 extra ? extra : "");
	if (fuse_opt_add_arg(&args, "keel-tracefs") || fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, opts))
		goto free_args;
	struct fuse *f = fuse_new(&args, &ops, sizeof(ops), NULL);
	if (!f) {
		fprintf(stderr, "keel tracefs: bad FUSE options '%s'\n", opts);
		goto free_args;
	}
	if (fuse_mount(f, mnt)) {
		fprintf(stderr, "keel tracefs: cannot mount on %s (is /dev/fuse there, and fusermount3 installed?)\n",
			mnt);
		goto destroy;
	}
	struct fuse_session *se = fuse_get_session(f);
	if (fuse_set_signal_handlers(se)) {
		fprintf(stderr, "keel tracefs: cannot install signal handlers\n");
		goto unmount;
	}
	if (background && fuse_daemonize(0)) {
		fprintf(stderr, "keel tracefs: cannot go to the background\n");
		goto signals;
	}
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (lc) {
		fuse_loop_cfg_set_max_threads(lc, 64);
		fuse_loop_cfg_set_idle_threads(lc, 4);
	}
	/* 0, or the signal that ended it (Ctrl-C, fusermount3 -u): both are a normal end. */
	status = fuse_loop_mt(f, lc) < 0 ? KEEL_EXIT_ERROR : KEEL_EXIT_OK;
	if (lc)
		fuse_loop_cfg_destroy(lc);
signals:
	fuse_remove_signal_handlers(se);
unmount:
	fuse_unmount(f);
destroy:
	fuse_destroy(f);
free_args:
	fuse_opt_free_args(&args);
	close(runtime_fd);
	runtime_fd = -1;
	return status;
}
