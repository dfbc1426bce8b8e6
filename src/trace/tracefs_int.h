// SPDX-License-Identifier: MIT
/* keel tracefs's private interface: what tracefs.c, tracefs_vms.c and tracefs_nodes.c share. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "ring.h"
#include "sbuf.h"
#include "view.h"

/* tracefs_vms.c: the running VMs */

struct vm_entry {
	struct vm_entry *next;
	char name[TRACE_NAME_MAX + 1];
	struct trace_view view;
	int refs; /* the list's, plus one per resolved node */
	bool listed;
	bool seen;
};

extern pthread_mutex_t tfs_vms_lock;
extern struct vm_entry *tfs_vms;
extern int tfs_runtime_fd;

void tfs_vm_put(struct vm_entry *e);
void tfs_rescan_locked(void);
struct vm_entry *tfs_vm_get(const char *name);

/* tracefs_nodes.c: paths and what the files hold */

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

const struct name_kind *tfs_dir_files(enum node_kind k, size_t *count);
int tfs_resolve(const char *path, struct node *n);
void tfs_node_put(struct node *n);
bool tfs_is_dir(enum node_kind k);
bool tfs_is_writable(enum node_kind k);
bool tfs_is_pipe(enum node_kind k);
void tfs_generate(const struct node *n, struct sbuf *out);
int tfs_apply_write(const struct node *n, const char *data, size_t len, bool *trunc_pending);
