// SPDX-License-Identifier: MIT
/*
 * Firmware log port (--firmware-log FILE): QEMU's debugcon at port 0x402,
 * where SeaBIOS writes its debug output once a read of the port returns
 * 0xe9.  Bytes are collected per line and written to the file whole; the
 * port exists only when a log is asked for (without it SeaBIOS reads 0xff
 * and prints nothing, so a VM without a log pays no exit per byte).
 *
 * The guest decides what it writes: the log is a byte stream, cut into
 * lines of at most LINE_MAX bytes; nothing in it is interpreted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/util.h"
#include "vmm/device.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#define LINE_MAX_BYTES 256
#define DEBUGCON_READBACK 0xe9

struct firmware_log {
	pthread_mutex_t lock;
	int fd;
	size_t len;
	char line[LINE_MAX_BYTES];
};

static void flush_line(struct firmware_log *l)
{
	size_t done = 0;
	while (l->fd >= 0 && done < l->len) {
		ssize_t n = write(l->fd, l->line + done, l->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a full disk loses log lines, never the guest's progress */
		done += (size_t)n;
	}
	l->len = 0;
}

static uint64_t log_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque, (void)off, (void)size;
	return DEBUGCON_READBACK;
}

static void log_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct firmware_log *l = opaque;
	(void)off;
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < size; i++) {
		char c = (char)(value >> (8 * i));
		l->line[l->len++] = c;
		if (c == '\n' || l->len == sizeof(l->line))
			flush_line(l);
	}
	pthread_mutex_unlock(&l->lock);
}

static bool log_wanted(const struct vm_config *cfg)
{
	return cfg->firmware_log != NULL;
}

static int log_create(struct vm *vm, void **state)
{
	struct firmware_log *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	l->fd = vm->firmware_log_fd;
	*state = l;
	return 0;
}

static void log_destroy(void *state)
{
	struct firmware_log *l = state;
	flush_line(l);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static const struct io_range_desc firmware_log_pio[] = {
	{ PORT_FIRMWARE_LOG, 1, { log_read, log_write } },
};

const struct device_desc firmware_log_device = {
	.name = "firmware-log",
	.wanted = log_wanted,
	.create = log_create,
	.destroy = log_destroy,
	.pio = firmware_log_pio,
	.nr_pio = ARRAY_SIZE(firmware_log_pio),
};
