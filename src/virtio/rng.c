// SPDX-License-Identifier: MIT
/*
 * virtio-rng (virtio 1.x section 5.4): one queue of device-writable buffers
 * that keel fills from getrandom().  Present with --rng.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmm/config.h"
#include "base/iothread.h"
#include "base/util.h"
#include "virtio.h"

#define RNG_QUEUE_SIZE 256
#define RNG_MAX_IOV 16
#define RNG_MAX_PER_REQUEST (64 * 1024) /* bytes handed out per request at most */

struct rng {
	struct virtio_dev *vd;
	pthread_mutex_t proc_lock; /* held while the queue is processed */
	struct iothread thread;
	bool thread_started;
};

static unsigned rng_count(const struct vm_config *cfg)
{
	return cfg->rng ? 1 : 0;
}

/* Fill the chain's writable buffers; returns the bytes written (0 for a malformed chain). */
static uint32_t fill(const struct vq_elem *e, const struct iovec *iov)
{
	if (e->error != VQ_OK || e->nr_out != 0)
		return 0; /* an entropy request has only device-writable buffers */
	uint32_t done = 0;
	for (unsigned i = 0; i < e->nr_in && done < RNG_MAX_PER_REQUEST; i++) {
		size_t want = MIN(iov[i].iov_len, (size_t)(RNG_MAX_PER_REQUEST - done));
		ssize_t n = getrandom(iov[i].iov_base, want, 0);
		if (n <= 0)
			break;
		done += (uint32_t)n;
		if ((size_t)n < want)
			break;
	}
	return done;
}

static void rng_kick(void *state, unsigned q)
{
	struct rng *s = state;
	struct virtio_dev *vd = s->vd;
	struct virtqueue *vq = &vd->vq[q];
	pthread_mutex_lock(&s->proc_lock);
	virtio_drain_kick(vd, q);
	for (;;) {
		struct vq_elem e;
		struct iovec iov[RNG_MAX_IOV];
		int r;
		while ((r = vq_pop(vq, &e, iov, RNG_MAX_IOV)) == 1)
			virtio_complete(vd, q, &e, fill(&e, iov));
		if (r < 0) {
			vd->needs_reset(vd);
			break;
		}
		if (!vq_enable_notify(vq))
			break;
	}
	pthread_mutex_unlock(&s->proc_lock);
}

static void rng_thread_kick(void *opaque)
{
	rng_kick(opaque, 0);
}

static int rng_create(struct virtio_dev *vd, unsigned index, void **state)
{
	(void)index;
	struct rng *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vd = vd;
	pthread_mutex_init(&s->proc_lock, NULL);
	vd->nr_queues = 1;
	vd->queue_max_size = RNG_QUEUE_SIZE;
	vd->features = 0;
	*state = s;
	return 0;
}

static void rng_destroy(void *state)
{
	struct rng *s = state;
	if (s->thread_started)
		iothread_destroy(&s->thread);
	pthread_mutex_destroy(&s->proc_lock);
	free(s);
}

static void rng_start(void *state)
{
	struct rng *s = state;
	if (s->vd->harness || s->thread_started)
		return;
	/* Threads start with the driver (after keel's sandbox is up), once per device. */
	const struct virtio_io_handler h[] = { { s->vd->kick_fd[0], rng_thread_kick, s } };
	s->thread_started = !virtio_start_iothread(s->vd, &s->thread, "virtio-rng", h, ARRAY_SIZE(h), NULL);
}

static void rng_reset(void *state)
{
	struct rng *s = state;
	/* Requests complete synchronously: once no handler runs, nothing is in flight. */
	pthread_mutex_lock(&s->proc_lock);
	pthread_mutex_unlock(&s->proc_lock);
}

const struct virtio_device_desc virtio_rng_desc = {
	.name = "virtio-rng",
	.device_id = 4,
	.pci_class = 0x00ff00,
	.count = rng_count,
	.create = rng_create,
	.destroy = rng_destroy,
	.config_size = 0,
	.start = rng_start,
	.reset = rng_reset,
	.queue_kick = rng_kick,
};
