// SPDX-License-Identifier: MIT
/*
 * virtio-console (virtio 1.x section 5.3), one port without MULTIPORT:
 * queue 0 receives (host to guest), queue 1 transmits.  Guest output goes to
 * the --virtio-console file, or to stdout with --virtio-console stdio, which
 * also routes the terminal's input here instead of to the UART.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm/config.h"
#include "base/iothread.h"
#include "base/util.h"
#include "vmm/vm.h"
#include "virtio.h"

#define CON_QUEUE_SIZE 128
#define CON_MAX_IOV 64
enum { RXQ = 0, TXQ = 1 };

struct virtio_console_config {
	uint16_t cols, rows;
	uint32_t max_nr_ports;
};
static_assert(sizeof(struct virtio_console_config) == 8, "virtio-console config layout");

struct vcon {
	struct virtio_dev *vd;
	pthread_mutex_t proc_lock; /* held while a queue is processed or input is pushed */
	struct iothread thread;
	bool thread_started;
	int out_fd;        /* -1: output discarded */
	int rx_ready_efd;  /* told when the guest added receive buffers (stdio mode) */
	bool owns_input;
};

static unsigned vcon_count(const struct vm_config *cfg)
{
	return cfg->virtio_console ? 1 : 0;
}

static void drain_tx(struct vcon *s)
{
	struct virtio_dev *vd = s->vd;
	struct virtqueue *vq = &vd->vq[TXQ];
	for (;;) {
		struct vq_elem e;
		struct iovec iov[CON_MAX_IOV];
		int r;
		while ((r = vq_pop(vq, &e, iov, CON_MAX_IOV)) == 1) {
			/* Output buffers are device-readable only; anything else is completed unread. */
			if (e.error == VQ_OK && e.nr_in == 0 && s->out_fd >= 0) {
				for (unsigned i = 0; i < e.nr_out; i++)
					if (write_full(s->out_fd, iov[i].iov_base, iov[i].iov_len))
						break;
			}
			virtio_complete(vd, TXQ, &e, 0);
		}
		if (r < 0) {
			vd->needs_reset(vd);
			return;
		}
		if (!vq_enable_notify(vq))
			return;
	}
}

static void vcon_kick(void *state, unsigned q)
{
	struct vcon *s = state;
	pthread_mutex_lock(&s->proc_lock);
	virtio_drain_kick(s->vd, q);
	if (q == TXQ) {
		drain_tx(s);
	} else if (s->rx_ready_efd >= 0) {
		/* New receive buffers: the console may have input waiting for them. */
		uint64_t one = 1;
		(void)!write(s->rx_ready_efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&s->proc_lock);
}

/* The console's input: copy into the guest's receive buffers.  Returns the bytes taken. */
static size_t vcon_rx_push(void *dev, const uint8_t *buf, size_t len)
{
	struct vcon *s = dev;
	struct virtio_dev *vd = s->vd;
	size_t taken = 0;
	pthread_mutex_lock(&s->proc_lock);
	while (taken < len) {
		struct vq_elem e;
		struct iovec iov[CON_MAX_IOV];
		int r = vq_pop(&vd->vq[RXQ], &e, iov, CON_MAX_IOV);
		if (r < 0)
			vd->needs_reset(vd);
		if (r != 1)
			break;
		uint32_t n = 0;
		if (e.error == VQ_OK && e.nr_out == 0) {
			for (unsigned i = 0; i < e.nr_in && taken < len; i++) {
				size_t c = MIN(iov[i].iov_len, len - taken);
				memcpy(iov[i].iov_base, buf + taken, c);
				taken += c;
				n += (uint32_t)c;
			}
		}
		virtio_complete(vd, RXQ, &e, n);
	}
	if (taken < len)
		(void)vq_enable_notify(&vd->vq[RXQ]); /* kick us when buffers arrive */
	pthread_mutex_unlock(&s->proc_lock);
	return taken;
}

void virtio_console_attach(void *state, int out_fd)
{
	struct vcon *s = state;
	s->out_fd = out_fd;
}

size_t virtio_console_input(void *state, const uint8_t *buf, size_t len)
{
	return vcon_rx_push(state, buf, len);
}

static void thread_kick_rx(void *opaque)
{
	vcon_kick(opaque, RXQ);
}

static void thread_kick_tx(void *opaque)
{
	vcon_kick(opaque, TXQ);
}

static int vcon_create(struct virtio_dev *vd, unsigned index, void **state)
{
	(void)index;
	struct vcon *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vd = vd;
	s->out_fd = -1;
	s->rx_ready_efd = -1;
	pthread_mutex_init(&s->proc_lock, NULL);
	vd->nr_queues = 2;
	vd->queue_max_size = CON_QUEUE_SIZE;
	vd->features = 0;
	struct vm *vm = vd->vm;
	if (vm) {
		s->out_fd = vm->virtio_console_fd;
		if (vm->cfg->virtio_console_stdio) {
			/* The terminal's input now goes to this port instead of the UART. */
			s->owns_input = true;
			s->rx_ready_efd = vm->serial.rx_ready_efd;
			vm->serial.rx_push = vcon_rx_push;
			vm->serial.dev = s;
		}
	}
	*state = s;
	return 0;
}

static void vcon_destroy(void *state)
{
	struct vcon *s = state;
	if (s->owns_input && s->vd->vm && s->vd->vm->serial.dev == s) {
		s->vd->vm->serial.rx_push = NULL;
		s->vd->vm->serial.dev = NULL;
	}
	if (s->thread_started)
		iothread_destroy(&s->thread);
	pthread_mutex_destroy(&s->proc_lock);
	free(s);
}

static void vcon_config_read(void *state, uint32_t off, void *buf, uint32_t len)
{
	(void)state;
	struct virtio_console_config c = { .cols = 0, .rows = 0, .max_nr_ports = 1 };
	memcpy(buf, (uint8_t *)&c + off, len);
}

static void vcon_start(void *state)
{
	struct vcon *s = state;
	if (s->vd->harness || s->thread_started)
		return;
	/* Threads start with the driver (after keel's sandbox is up), once per device. */
	const struct virtio_io_handler h[] = {
		{ s->vd->kick_fd[RXQ], thread_kick_rx, s },
		{ s->vd->kick_fd[TXQ], thread_kick_tx, s },
	};
	s->thread_started = !virtio_start_iothread(s->vd, &s->thread, "virtio-con", h, ARRAY_SIZE(h), NULL);
}

static void vcon_reset(void *state)
{
	struct vcon *s = state;
	/* Requests complete inside the handlers: once none runs, nothing is in flight. */
	pthread_mutex_lock(&s->proc_lock);
	pthread_mutex_unlock(&s->proc_lock);
}

const struct virtio_device_desc virtio_console_desc = {
	.name = "virtio-console",
	.device_id = 3,
	.pci_class = 0x078000,
	.count = vcon_count,
	.create = vcon_create,
	.destroy = vcon_destroy,
	.config_size = sizeof(struct virtio_console_config),
	.config_read = vcon_config_read,
	.start = vcon_start,
	.reset = vcon_reset,
	.queue_kick = vcon_kick,
};
