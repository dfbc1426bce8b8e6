// SPDX-License-Identifier: MIT
/*
 * I/O threads: a thread that waits on a set of file descriptors (epoll) and
 * runs a handler when one becomes readable.  Device models run their queue
 * processing here, woken by ioeventfds, so a guest's kick never runs device
 * code on a vCPU thread.  Handlers are added before iothread_start(); the
 * set is fixed while the thread runs.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>

typedef void iothread_fn(void *opaque);

#define IOTHREAD_MAX_HANDLERS 8

struct iothread {
	char name[16];
	int epfd;
	int stop_efd;
	pthread_t thread;
	bool started;
	unsigned nr;
	struct {
		int fd;
		iothread_fn *fn;
		void *opaque;
	} h[IOTHREAD_MAX_HANDLERS];
};

int iothread_init(struct iothread *t, const char *name);
/* Run fn(opaque) on the thread whenever fd is readable (level-triggered). 0 or -errno. */
int iothread_add(struct iothread *t, int fd, iothread_fn *fn, void *opaque);
int iothread_start(struct iothread *t);
/* Stop the thread (waits for a running handler to return) and free everything. */
void iothread_destroy(struct iothread *t);
