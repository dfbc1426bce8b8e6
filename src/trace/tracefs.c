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
 *
 * This file holds the FUSE operations, trace_pipe and the command;
 * tracefs_vms.c the registry of running VMs, tracefs_nodes.c the paths and
 * what the files hold (tracefs_int.h joins them).
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/config.h"
#include "cmd.h"
#include "events.h"
#include "runtime.h"
#include "tracefs_int.h"
#include "view.h"
#include "base/util.h"

#define POLL_NS (5 * 1000 * 1000)         /* a blocked trace_pipe read looks again this often */
#define PIPE_KEEP (256 * 1024)           /* stream bytes kept behind the furthest read */
#define PIPE_BATCH 4096                  /* records taken per fill at most */
#define PIPE_STAT_SIZE (1ll << 62)       /* trace_pipe's size in stat(): see fs_getattr */

static time_t mount_time;

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
	if (tfs_is_dir(k)) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | (tfs_is_writable(k) ? 0644 : 0444);
		st->st_nlink = 1;
	}
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	if (h) {
		fill_stat(h->node.kind, st);
		pthread_mutex_lock(&h->lock);
		if (tfs_is_pipe(h->node.kind)) {
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
	int r = tfs_resolve(path, &n);
	if (r)
		return r;
	fill_stat(n.kind, st);
	if (tfs_is_pipe(n.kind)) {
		/* A stream has no size; this one is larger than any reader's position, so that
		 * tail -f, which polls fstat, never takes it for truncated and keeps reading. */
		st->st_size = PIPE_STAT_SIZE;
		st->st_mtime = time(NULL);
	}
	tfs_node_put(&n);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	struct node n;
	if (!strcmp(path, "/")) {
		pthread_mutex_lock(&tfs_vms_lock);
		tfs_rescan_locked();
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		for (struct vm_entry *e = tfs_vms; e; e = e->next)
			filler(buf, e->name, NULL, 0, 0);
		pthread_mutex_unlock(&tfs_vms_lock);
		return 0;
	}
	int r = tfs_resolve(path, &n);
	if (r)
		return r;
	if (!tfs_is_dir(n.kind)) {
		tfs_node_put(&n);
		return -ENOTDIR;
	}
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	const char *groups[TRACE_MAX_GROUPS];
	switch (n.kind) {
	case N_VM:
	case N_EVENT:
	case N_THREAD: {
		size_t nf;
		const struct name_kind *f = tfs_dir_files(n.kind, &nf);
		for (size_t i = 0; i < nf; i++)
			filler(buf, f[i].name, NULL, 0, 0);
		break;
	}
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
	default:
		break;
	}
	tfs_node_put(&n);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct node n;
	int r = tfs_resolve(path, &n);
	if (r)
		return r;
	int acc = fi->flags & O_ACCMODE;
	if (tfs_is_dir(n.kind)) {
		tfs_node_put(&n);
		return -EISDIR;
	}
	if (acc != O_RDONLY && !tfs_is_writable(n.kind)) {
		tfs_node_put(&n);
		return -EACCES;
	}
	struct handle *h = calloc(1, sizeof(*h));
	if (!h) {
		tfs_node_put(&n);
		return -ENOMEM;
	}
	h->node = n;
	pthread_mutex_init(&h->lock, NULL);
	struct trace_view *v = &n.vm->view;
	if (tfs_is_pipe(n.kind)) {
		if (trace_cursor_init(&h->cur, v)) {
			tfs_node_put(&h->node);
			free(h);
			return -ENOMEM;
		}
		h->cursor_ok = true;
	} else if ((fi->flags & O_TRUNC) && (n.kind == N_TRACE || n.kind == N_THREAD_TRACE || n.kind == N_SET_EVENT)) {
		/* echo > trace empties the buffers, echo X > set_event replaces the list (as Linux):
		 * done with the first good write, or at close if nothing is written, never after a bad one. */
		h->trunc_pending = true;
	}
	if (!tfs_is_pipe(n.kind) && acc != O_WRONLY) {
		tfs_generate(&n, &h->text);
		if (h->text.oom) {
			sb_free(&h->text);
			tfs_node_put(&h->node);
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
	if (tfs_is_pipe(h->node.kind)) {
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

static int fs_write(const char *path, const char *data, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path, (void)off;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (size > 65536)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	int r = tfs_apply_write(&h->node, data, size, &h->trunc_pending);
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
	int r = tfs_resolve(path, &n);
	if (r)
		return r;
	if (!tfs_is_writable(n.kind)) {
		r = -EACCES;
	} else if (n.kind == N_SET_EVENT) {
		(void)trace_set_events(n.vm->view.ctl, "", true, NULL, 0);
	} else if (n.kind == N_TRACE || n.kind == N_THREAD_TRACE) {
		trace_view_clear(&n.vm->view, n.kind == N_TRACE ? -1 : n.ring);
	}
	tfs_node_put(&n);
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
	tfs_node_put(&h->node);
	free(h);
	return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)tv, (void)fi;
	struct node n;
	int r = tfs_resolve(path, &n);
	if (!r)
		tfs_node_put(&n);
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
	pthread_mutex_lock(&tfs_vms_lock);
	while (tfs_vms) {
		struct vm_entry *e = tfs_vms;
		tfs_vms = e->next;
		if (--e->refs == 0) {
			trace_view_close(&e->view);
			free(e);
		}
	}
	pthread_mutex_unlock(&tfs_vms_lock);
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
	tfs_runtime_fd = trace_runtime_dir_open(true, &why);
	if (tfs_runtime_fd < 0) {
		char dir[PATH_MAX];
		(void)trace_runtime_dir(dir, sizeof(dir));
		fprintf(stderr, "keel tracefs: runtime directory %s: %s (%s)\n", dir, strerror(-tfs_runtime_fd), why);
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
	close(tfs_runtime_fd);
	tfs_runtime_fd = -1;
	return status;
}
