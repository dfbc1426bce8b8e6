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
#include <sched.h>
#include <stdbool.h>

typedef void iothread_fn(void *opaque);
/* Busy-polling: poll() does what work it finds without sleeping, true if any. */
typedef bool iothread_poll_fn(void *opaque);
/*
 * notify(opaque, false): the thread spins, the device may stop asking for
 * kicks; notify(opaque, true): it is about to sleep, kicks are wanted
 * again; true if work arrived before they were (then it does not sleep).
 */
typedef bool iothread_notify_fn(void *opaque, bool on);

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
	/* Adaptive busy-polling (iothread_set_poll()); the window is the thread's own. */
	unsigned poll_max_ns;
	unsigned poll_ns; /* the current window: how long it spins before it sleeps */
	bool notify_off;
	iothread_poll_fn *poll;
	iothread_notify_fn *notify;
	void *poll_opaque;
	_Atomic unsigned long poll_hits; /* work found while spinning (tests, tracing) */
	bool pin;        /* iothread_set_cpus(): run on cpus */
	cpu_set_t cpus;
	_Atomic int pin_result; /* 1 before the thread tried; then 0 or -errno (tests) */
};

int iothread_init(struct iothread *t, const char *name);
/* Run fn(opaque) on the thread whenever fd is readable (level-triggered). 0 or -errno. */
int iothread_add(struct iothread *t, int fd, iothread_fn *fn, void *opaque);
/*
 * Spin between events, as QEMU's adaptive polling does: after its handlers
 * ran, the thread calls poll() for up to a window before it sleeps.  The
 * window starts at 0, doubles (from 4 µs, up to max_ns) whenever the thread
 * slept for less than max_ns and longer than the window, and drops to 0
 * when it slept longer than max_ns: an idle device costs no CPU.  Before
 * iothread_start(); max_ns 0 leaves polling off.  0 or -EBUSY.
 */
int iothread_set_poll(struct iothread *t, unsigned max_ns, iothread_poll_fn *poll, iothread_notify_fn *notify,
		      void *opaque);
/*
 * Run the thread on the CPUs in *cpus (before iothread_start()).  The
 * thread sets its own affinity as it starts (the sandbox allows
 * sched_setaffinity on the calling thread only); where that fails it says
 * so once and runs wherever the scheduler puts it.  0 or -EBUSY.
 */
int iothread_set_cpus(struct iothread *t, const cpu_set_t *cpus);
int iothread_start(struct iothread *t);
/* Stop the thread (waits for a running handler to return) and free everything. */
void iothread_destroy(struct iothread *t);
