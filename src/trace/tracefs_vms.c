// SPDX-License-Identifier: MIT
/*
 * keel tracefs: the registry of running VMs, found in the runtime directory
 * (runtime.h).  The list holds a reference to each VM it shows and each
 * resolved node another, so files open on a VM that exited keep working.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "tracefs_int.h"
#include "view.h"

pthread_mutex_t tfs_vms_lock = PTHREAD_MUTEX_INITIALIZER;
struct vm_entry *tfs_vms;
int tfs_runtime_fd = -1;

void tfs_vm_put(struct vm_entry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&tfs_vms_lock);
	bool last = --e->refs == 0;
	pthread_mutex_unlock(&tfs_vms_lock);
	if (last) {
		trace_view_close(&e->view);
		free(e);
	}
}

/* Unlist entries that are not `seen` or whose VM exited (open files keep theirs).  tfs_vms_lock held. */
static void drop_unseen_locked(void)
{
	for (struct vm_entry **pp = &tfs_vms; *pp;) {
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

/* Drop VMs that exited or whose socket went; connect to new sockets.  tfs_vms_lock held. */
void tfs_rescan_locked(void)
{
	for (struct vm_entry *e = tfs_vms; e; e = e->next)
		e->seen = true;
	drop_unseen_locked(); /* the exited first: a new VM may have taken the name */
	for (struct vm_entry *e = tfs_vms; e; e = e->next)
		e->seen = false;
	int fd = tfs_runtime_fd >= 0 ? dup(tfs_runtime_fd) : -1;
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
			struct vm_entry *e = tfs_vms;
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
			int r = trace_view_connect(&ne->view, tfs_runtime_fd, de->d_name, err, sizeof(err));
			if (r) {
				free(ne);
				if (r == -ECONNREFUSED) /* a killed keel's socket: tidy up after it */
					trace_runtime_remove_stale(tfs_runtime_fd, de->d_name);
				continue; /* or not a keel */
			}
			snprintf(ne->name, sizeof(ne->name), "%s", name);
			ne->refs = 1;
			ne->listed = ne->seen = true;
			ne->next = tfs_vms;
			tfs_vms = ne;
		}
		closedir(d);
	}
	drop_unseen_locked();
}

/* The running VM named name, with a reference; rescans if it is not known or has exited. */
struct vm_entry *tfs_vm_get(const char *name)
{
	pthread_mutex_lock(&tfs_vms_lock);
	struct vm_entry *e = NULL;
	for (int pass = 0; pass < 2 && !e; pass++) {
		if (pass)
			tfs_rescan_locked();
		for (e = tfs_vms; e && strcmp(e->name, name); e = e->next)
			;
		if (e && !pass && trace_view_gone(&e->view))
			e = NULL; /* the rescan drops it (and finds a new VM of that name) */
	}
	if (e)
		e->refs++;
	pthread_mutex_unlock(&tfs_vms_lock);
	return e;
}
