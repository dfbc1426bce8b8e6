// SPDX-License-Identifier: MIT
#include "iothread.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "trace/trace.h"
#include "util.h"

int iothread_init(struct iothread *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	t->epfd = -1;
	atomic_init(&t->pin_result, 1);
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->stop_efd = -1;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0)
		return -errno;
	t->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stop_efd < 0) {
		int r = -errno;
		close(t->epfd);
		t->epfd = -1;
		return r;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->stop_efd, &ev) < 0) {
		int r = -errno;
		close(t->stop_efd);
		close(t->epfd);
		t->stop_efd = t->epfd = -1;
		return r;
	}
	return 0;
}

int iothread_add(struct iothread *t, int fd, iothread_fn *fn, void *opaque)
{
	if (t->started || t->nr == IOTHREAD_MAX_HANDLERS)
		return -EBUSY;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = t->nr };
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	t->h[t->nr].fd = fd;
	t->h[t->nr].fn = fn;
	t->h[t->nr].opaque = opaque;
	t->nr++;
	return 0;
}

int iothread_set_poll(struct iothread *t, unsigned max_ns, iothread_poll_fn *poll, iothread_notify_fn *notify,
		      void *opaque)
{
	if (t->started)
		return -EBUSY;
	t->poll_max_ns = max_ns;
	t->poll = poll;
	t->notify = notify;
	t->poll_opaque = opaque;
	return 0;
}

int iothread_set_cpus(struct iothread *t, const cpu_set_t *cpus)
{
	if (t->started)
		return -EBUSY;
	t->cpus = *cpus;
	t->pin = true;
	return 0;
}

#define POLL_GROW_FROM_NS 4000

/* Spin until poll() finds work or the window closes; true if it found some. */
static bool spin(struct iothread *t, uint64_t start)
{
	if (!t->notify_off) {
		t->notify(t->poll_opaque, false);
		t->notify_off = true;
	}
	do {
		if (t->poll(t->poll_opaque)) {
			atomic_fetch_add_explicit(&t->poll_hits, 1, memory_order_relaxed);
			return true;
		}
		cpu_relax();
	} while (now_ns() - start < t->poll_ns);
	t->notify_off = false;
	return t->notify(t->poll_opaque, true);
}

/* After a sleep of slept_ns: was the window too short to catch it, or is the device idle? */
static void adapt(struct iothread *t, uint64_t slept_ns)
{
	if (slept_ns <= t->poll_ns)
		return;
	unsigned was = t->poll_ns;
	if (slept_ns > t->poll_max_ns)
		t->poll_ns = 0;
	else
		t->poll_ns = MIN(t->poll_ns ? t->poll_ns * 2 : POLL_GROW_FROM_NS, t->poll_max_ns);
	if (t->poll_ns != was)
		TRACE(IOTHREAD_POLL, trace_str16(t->name), t->poll_ns, slept_ns);
}

static void *iothread_main(void *arg)
{
	struct iothread *t = arg;
	pthread_setname_np(pthread_self(), t->name);
	trace_thread_start(t->name); /* its trace ring, found again by name after a reboot */
	if (t->pin) {
		char list[128];
		format_cpu_list(&t->cpus, list, sizeof(list));
		int r = sched_setaffinity(0, sizeof(t->cpus), &t->cpus) ? -errno : 0;
		if (r)
			log_info("%s: cannot run on CPUs %s (%s); the scheduler places it", t->name, list, strerror(-r));
		else
			log_debug("%s: runs on CPUs %s", t->name, list);
		atomic_store(&t->pin_result, r);
	}
	for (;;) {
		struct epoll_event ev[IOTHREAD_MAX_HANDLERS + 1];
		uint64_t start = t->poll_max_ns ? now_ns() : 0;
		bool busy = t->poll_ns && spin(t, start);
		int n = epoll_wait(t->epfd, ev, (int)ARRAY_SIZE(ev), busy ? 0 : -1);
		if (t->poll_max_ns && !busy)
			adapt(t, now_ns() - start);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("%s: epoll_wait: %s", t->name, strerror(errno));
			trace_thread_stop();
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint32_t k = ev[i].data.u32;
			if (k == UINT32_MAX) {
				trace_thread_stop();
				return NULL;
			}
			if (k < t->nr)
				t->h[k].fn(t->h[k].opaque);
		}
	}
}

int iothread_start(struct iothread *t)
{
	int r = pthread_create(&t->thread, NULL, iothread_main, t);
	if (r)
		return -r;
	t->started = true;
	return 0;
}

void iothread_destroy(struct iothread *t)
{
	if (t->started) {
		uint64_t one = 1;
		(void)!write(t->stop_efd, &one, sizeof(one));
		pthread_join(t->thread, NULL);
		t->started = false;
	}
	if (t->stop_efd >= 0)
		close(t->stop_efd);
	if (t->epfd >= 0)
		close(t->epfd);
	t->stop_efd = t->epfd = -1;
}
