// SPDX-License-Identifier: MIT
/*
 * The block stack's entry points: --disk option parsing, blk_open() (which
 * checks the image, then stacks file -> part -> cache), the request checks
 * every layer shares, and blk_io_sync() for set-up code and tests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "internal.h"
#include "base/util.h"

#define CACHE_SIZE_DEFAULT (64 * MiB)
#define CACHE_SIZE_MIN (1 * MiB)
#define CACHE_SIZE_MAX (1024 * GiB)
#define PARTITION_MAX 1024

/* ---- shared helpers ---------------------------------------------------- */

int blk_req_check(const struct blk_dev *d, const struct blk_req *r)
{
	uint64_t bs = d->block_size;
	switch (r->op) {
	case BLK_READ:
	case BLK_WRITE:
		if (r->flags & ~(r->op == BLK_WRITE ? BLK_FUA : 0u))
			return -EINVAL;
		if (r->iovcnt > BLK_IOV_MAX || (r->iovcnt && !r->iov))
			return -EINVAL;
		{
			uint64_t sum = 0;
			for (unsigned i = 0; i < r->iovcnt; i++) {
				if (r->iov[i].iov_len > UINT64_MAX - sum)
					return -EINVAL;
				sum += r->iov[i].iov_len;
			}
			if (sum != r->len)
				return -EINVAL;
		}
		break;
	case BLK_FLUSH:
		if (r->flags || r->offset || r->len)
			return -EINVAL;
		return 0;
	case BLK_DISCARD:
		if (r->flags)
			return -EINVAL;
		break;
	case BLK_WRITE_ZEROES:
		if (r->flags & ~BLK_UNMAP)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (!bs || r->offset % bs || r->len % bs || r->offset > d->size || r->len > d->size - r->offset)
		return -EINVAL;
	if (r->op != BLK_READ && d->read_only)
		return -EROFS;
	if ((r->op == BLK_DISCARD && !d->can_discard) || (r->op == BLK_WRITE_ZEROES && !d->can_write_zeroes))
		return -EOPNOTSUPP;
	return 0;
}

/* Walk iov from byte skip for n bytes, calling fn on each piece. */
#define IOV_WALK(iov, cnt, skip, n, BODY)                                                   \
	do {                                                                                \
		uint64_t _skip = (skip);                                                    \
		size_t _left = (n), _done = 0;                                              \
		for (unsigned _i = 0; _i < (cnt) && _left; _i++) {                          \
			size_t _l = (iov)[_i].iov_len;                                      \
			if (_skip >= _l) {                                                  \
				_skip -= _l;                                                \
				continue;                                                   \
			}                                                                   \
			uint8_t *piece = (uint8_t *)(iov)[_i].iov_base + _skip;             \
			size_t plen = MIN(_l - (size_t)_skip, _left);                       \
			size_t pdone = _done;                                               \
			BODY;                                                               \
			(void)pdone;                                                        \
			_skip = 0;                                                          \
			_left -= plen;                                                      \
			_done += plen;                                                      \
		}                                                                           \
	} while (0)

void blk_iov_from_buf(const struct iovec *iov, unsigned cnt, uint64_t skip, const void *src, size_t n)
{
	IOV_WALK(iov, cnt, skip, n, memcpy(piece, (const uint8_t *)src + pdone, plen));
}

void blk_iov_to_buf(const struct iovec *iov, unsigned cnt, uint64_t skip, void *dst, size_t n)
{
	IOV_WALK(iov, cnt, skip, n, memcpy((uint8_t *)dst + pdone, piece, plen));
}

void blk_iov_zero(const struct iovec *iov, unsigned cnt, uint64_t skip, size_t n)
{
	IOV_WALK(iov, cnt, skip, n, memset(piece, 0, plen));
}

struct iovec *blk_iov_tail(const struct iovec *iov, unsigned cnt, uint64_t skip, unsigned *outcnt)
{
	unsigned i = 0;
	while (i < cnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	if (i == cnt)
		return NULL;
	struct iovec *t = calloc(cnt - i, sizeof(*t));
	if (!t)
		return NULL;
	for (unsigned j = i; j < cnt; j++)
		t[j - i] = iov[j];
	t[0].iov_base = (uint8_t *)t[0].iov_base + skip;
	t[0].iov_len -= (size_t)skip;
	*outcnt = cnt - i;
	return t;
}

int blk_start(struct blk_dev *d)
{
	if (!d)
		return 0;
	int r = blk_start(d->lower); /* completions must flow before a layer above needs them */
	if (r)
		return r;
	return d->ops->start ? d->ops->start(d) : 0;
}

void blk_name_thread(const char *name)
{
	(void)pthread_setname_np(pthread_self(), name);
}

/* ---- blk_io_sync ------------------------------------------------------- */

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void sync_done(struct blk_req *r)
{
	struct sync_wait *w = r->opaque;
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int blk_io_sync(struct blk_dev *d, enum blk_op op, unsigned flags, uint64_t offset, void *buf, uint64_t len)
{
	struct sync_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct iovec iov = { .iov_base = buf, .iov_len = (size_t)len };
	bool data = op == BLK_READ || op == BLK_WRITE;
	struct blk_req r = {
		.op = op, .flags = flags, .offset = offset, .len = len,
		.iov = data ? &iov : NULL, .iovcnt = data ? 1 : 0, .done = sync_done, .opaque = &w,
	};
	int rc;
	/* -EAGAIN: others' requests fill the queue; one of them completes soon. */
	while ((rc = blk_submit(d, &r)) == -EAGAIN) {
		struct timespec ts = { .tv_nsec = 50000 };
		nanosleep(&ts, NULL);
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return r.status;
}

/* ---- --disk option parsing --------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * Cut the next comma-separated item off *sp, in place.  ",," stands for a
 * comma inside a value (as in QEMU), so a path may contain commas.
 */
static char *next_item(char **sp)
{
	char *s = *sp, *w = s, *r = s;
	if (!s)
		return NULL;
	for (;;) {
		if (*r == ',' && r[1] == ',') {
			*w++ = ',';
			r += 2;
		} else if (*r == ',' || !*r) {
			*sp = *r ? r + 1 : NULL;
			*w = 0;
			return s;
		} else {
			*w++ = *r++;
		}
	}
}

int blk_parse_disk_option(char *s, struct blk_options *o, char *err, size_t errlen)
{
	static const char *const keys[] = { "path", "format", "cache", "cache-size", "readonly", "partition", "serial", "queues", "poll-us", "cpus", "if", "bootindex" };
	bool seen[ARRAY_SIZE(keys)] = { false };
	memset(o, 0, sizeof(*o));
	o->format = BLK_FORMAT_RAW;
	o->cache = BLK_CACHE_WRITEBACK;
	o->cache_size = CACHE_SIZE_DEFAULT;
	o->poll_us = BLK_POLL_US_DEFAULT;
	o->cpus_mode = BLK_CPUS_ANY;
	o->bootindex = -1;
	if (errlen)
		err[0] = 0;
	if (!s)
		return fail(err, errlen, "the disk option is empty; it needs path=FILE");

	char *item;
	while ((item = next_item(&s))) {
		if (!*item)
			return fail(err, errlen, "empty item in the disk option (two commas in a row?)");
		char *val = strchr(item, '=');
		if (val)
			*val++ = 0;
		size_t k = 0;
		while (k < ARRAY_SIZE(keys) && strcmp(item, keys[k]))
			k++;
		if (k == ARRAY_SIZE(keys))
			return fail(err, errlen,
				    "unknown disk option '%.40s' (known: path, format, cache, cache-size, readonly, "
				    "partition, serial, queues, poll-us, cpus, if, bootindex)",
				    item);
		if (seen[k])
			return fail(err, errlen, "disk option '%s' is given twice", keys[k]);
		seen[k] = true;
		if (!val && k != 4)
			return fail(err, errlen, "disk option '%s' needs a value (%s=...)", keys[k], keys[k]);
		uint64_t v;
		switch (k) {
		case 0:
			if (!*val)
				return fail(err, errlen, "path= is empty; it names the disk image");
			o->path = val;
			break;
		case 1:
			if (strcmp(val, "raw"))
				return fail(err, errlen, "disk format '%.40s' is not supported (only format=raw)", val);
			break;
		case 2:
			if (!strcmp(val, "writeback"))
				o->cache = BLK_CACHE_WRITEBACK;
			else if (!strcmp(val, "writethrough"))
				o->cache = BLK_CACHE_WRITETHROUGH;
			else if (!strcmp(val, "none"))
				o->cache = BLK_CACHE_NONE;
			else
				return fail(err, errlen, "cache=%.40s is not one of writeback, writethrough, none", val);
			break;
		case 3:
			if (parse_size(val, 1, &v))
				return fail(err, errlen, "cache-size=%.40s is not a size (such as 64M or 1G)", val);
			if (v < CACHE_SIZE_MIN || v > CACHE_SIZE_MAX)
				return fail(err, errlen, "cache-size=%.40s is out of range (1M to 1T)", val);
			o->cache_size = v;
			break;
		case 4:
			if (!val || !strcmp(val, "on"))
				o->readonly = true;
			else if (!strcmp(val, "off"))
				o->readonly = false;
			else
				return fail(err, errlen, "readonly=%.40s: expected readonly, readonly=on or readonly=off",
					    val);
			break;
		case 5:
			if (parse_uint(val, 1, PARTITION_MAX, &v))
				return fail(err, errlen, "partition=%.40s is not a partition number from 1 to %d", val,
					    PARTITION_MAX);
			o->partition = (unsigned)v;
			break;
		case 7:
			if (parse_uint(val, 1, BLK_QUEUES_MAX, &v))
				return fail(err, errlen, "queues=%.40s is not a number of queues from 1 to %d", val,
					    BLK_QUEUES_MAX);
			o->queues = (unsigned)v;
			break;
		case 8:
			if (parse_uint(val, 0, BLK_POLL_US_MAX, &v))
				return fail(err, errlen,
					    "poll-us=%.40s is not a busy-polling time from 0 (off) to %d microseconds", val,
					    BLK_POLL_US_MAX);
			o->poll_us = (unsigned)v;
			break;
		case 9:
			if (!strcmp(val, "auto"))
				o->cpus_mode = BLK_CPUS_AUTO;
			else if (!strcmp(val, "any"))
				o->cpus_mode = BLK_CPUS_ANY;
			else if (!parse_cpu_list(val, ':', &o->cpus))
				o->cpus_mode = BLK_CPUS_LIST;
			else
				return fail(err, errlen,
					    "cpus=%.40s is not auto, any or a CPU list such as 1 or 0-3:6 (CPUs below %d)",
					    val, CPU_SETSIZE);
			break;
		case 10:
			if (!strcmp(val, "virtio"))
				o->iface = BLK_IF_VIRTIO;
			else if (!strcmp(val, "ahci"))
				o->iface = BLK_IF_AHCI;
			else
				return fail(err, errlen, "if=%.40s is not one of virtio, ahci", val);
			break;
		case 11:
			if (parse_uint(val, 0, BLK_BOOTINDEX_MAX, &v))
				return fail(err, errlen, "bootindex=%.40s is not a number from 0 to %d", val,
					    BLK_BOOTINDEX_MAX);
			o->bootindex = (int)v;
			break;
		case 6: {
			size_t n = strlen(val);
			if (!n || n > BLK_SERIAL_MAX)
				return fail(err, errlen, "serial=%.40s must be 1 to %d characters", val, BLK_SERIAL_MAX);
			for (size_t i = 0; i < n; i++)
				if (val[i] < 0x20 || val[i] > 0x7e)
					return fail(err, errlen, "serial= may hold printable ASCII only (byte %zu is 0x%02x)",
						    i, (unsigned char)val[i]);
			memcpy(o->serial, val, n + 1);
			break;
		}
		}
	}
	if (!o->path)
		return fail(err, errlen, "the disk option needs path=FILE");
	if (o->cache == BLK_CACHE_NONE && seen[3])
		return fail(err, errlen, "cache-size= has no meaning with cache=none");
	if (o->iface != BLK_IF_VIRTIO && (seen[7] || seen[8] || seen[9]))
		return fail(err, errlen, "queues=, poll-us= and cpus= apply to if=virtio disks only");
	return 0;
}

/* ---- blk_open ---------------------------------------------------------- */

int blk_open(const struct blk_options *o, struct blk_dev **out, char *err, size_t errlen)
{
	struct stat st;
	char why[512];
	int r;
	*out = NULL;
	if (stat(o->path, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		return r;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file or block device", o->path);
		return -EINVAL;
	}
	if (access(o->path, o->readonly ? R_OK : R_OK | W_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s%s", o->path, strerror(errno),
			 o->readonly || access(o->path, R_OK) < 0 ? "" : " (to use it read-only, add ,readonly)");
		return r;
	}
	if (S_ISREG(st.st_mode) && st.st_size == 0) {
		snprintf(err, errlen, "%s: the image is empty", o->path);
		return -EINVAL;
	}
	if (S_ISREG(st.st_mode) && st.st_size % 512) {
		snprintf(err, errlen, "%s: its size, %lld bytes, is not a multiple of 512", o->path,
			 (long long)st.st_size);
		return -EINVAL;
	}

	struct blk_dev *file, *top;
	r = blk_file_open(o->path, o->readonly, o->cache == BLK_CACHE_NONE, &file, err, errlen);
	if (r)
		return r;
	top = file;
	if (o->partition) {
		r = blk_part_open(file, o->partition, &top, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s: %s", o->path, why);
			goto close_file;
		}
		if (why[0])
			log_info("%s: %s", o->path, why);
	}
	if (o->cache != BLK_CACHE_NONE) {
		struct blk_dev *c;
		r = blk_cache_open(top, o->cache, o->cache_size, &c, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s: %s", o->path, why);
			goto close_top;
		}
		top = c;
	}
	*out = top;
	return 0;

close_top:
	blk_close(top); /* part closes file too */
	return r;
close_file:
	blk_close(file);
	return r;
}
