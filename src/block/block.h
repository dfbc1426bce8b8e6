// SPDX-License-Identifier: MIT
/*
 * The block-request interface.  Every layer of keel's block stack (file,
 * cache, part, and whatever comes later) is a struct blk_dev and speaks only
 * this interface to the layer above and the layer below, so a layer can later
 * move into its own sandboxed process without the others changing.
 *
 * Requests are tagged and asynchronous: submit() starts one, done() reports
 * its end, and completions arrive in any order.  A device has a bounded queue
 * depth; a submit beyond it returns -EAGAIN and the submitter retries after
 * one of its requests completed (back-pressure, never unbounded queues).
 *
 * Durability rules every layer keeps:
 *  - BLK_FLUSH completes only after every write that completed before the
 *    flush was submitted is durable in the layers below (and on the medium).
 *  - A write with BLK_FUA is durable when it completes.
 *  - No layer reorders a flush before a write that completed earlier.
 */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "trace/trace.h"

enum blk_op {
	BLK_READ,
	BLK_WRITE,
	BLK_FLUSH,
	BLK_DISCARD,      /* contents of the range become undefined (zero for file) */
	BLK_WRITE_ZEROES, /* range reads as zeroes afterwards */
};

#define BLK_FUA (1u << 0)   /* write: durable when it completes */
#define BLK_UNMAP (1u << 1) /* write-zeroes: the layer may deallocate */

struct blk_req;
typedef void blk_done_fn(struct blk_req *req);

struct blk_req {
	/* Filled in by the submitter; layers never modify them. */
	enum blk_op op;
	unsigned flags;
	uint64_t tag;   /* the submitter's own cookie */
	uint64_t offset; /* bytes, a multiple of the device's block_size */
	uint64_t len;    /* bytes, a multiple of block_size; read/write: sum of iov lengths */
	const struct iovec *iov; /* read/write only; caller keeps it alive until done */
	unsigned iovcnt;
	/*
	 * Called exactly once per accepted request, from any thread (possibly
	 * inside submit()).  It must not wait for another request of the same
	 * stack to complete.
	 */
	blk_done_fn *done;
	void *opaque;      /* the submitter's */
	/* Set by the layer before it calls done(). */
	int status; /* 0 or -errno (-EIO, -EROFS, -EINVAL, -ENOSPC, ...) */
	/* Set by blk_submit() while block events are traced; read by blk_req_done(). */
	uint64_t trace_t0;
	const char *trace_layer;
};

struct blk_dev;

struct blk_ops {
	/*
	 * Start req.  0: accepted; req->done() runs exactly once, possibly
	 * before submit returns (so a submitter never holds a lock its done()
	 * takes).  -EAGAIN: queue_depth requests are in flight; retry after a
	 * completion.  Any other -errno: refused (bad range, read-only, ...);
	 * done() is not called.
	 */
	int (*submit)(struct blk_dev *dev, struct blk_req *req);
	/* Wait for in-flight requests, write back what is dirty, free the layer and those below. */
	void (*close)(struct blk_dev *dev);
	/*
	 * Start the layer's threads (NULL for a layer without any); see
	 * blk_start().  Until then the layer completes each request inside
	 * submit() and does no background work.  0 or -errno.
	 */
	int (*start)(struct blk_dev *dev);
	/*
	 * Completion polling, for the layer where completions arise (the file
	 * layer; NULL elsewhere: blk_poll() and friends go down to it).
	 * poll(): call done() for what has finished, on the calling thread,
	 * without blocking; returns how many.  completion_fd(): an fd that
	 * turns readable when poll() may find something.  poller(): a poller
	 * attaches (true) or detaches (false); while one is attached the
	 * layer's own thread leaves the reaping to the pollers.  pending():
	 * whether poll() would find something, without a system call (for a
	 * poller that spins rather than waits on the fd).
	 */
	int (*poll)(struct blk_dev *dev);
	bool (*pending)(struct blk_dev *dev);
	int (*completion_fd)(struct blk_dev *dev);
	void (*poller)(struct blk_dev *dev, bool attach);
};

struct blk_dev {
	const struct blk_ops *ops;
	const char *layer;      /* "file", "cache", "part": for messages and tracing */
	uint64_t size;          /* bytes */
	uint32_t block_size;    /* logical block size in bytes: 512 or 4096 */
	uint32_t queue_depth;   /* most requests in flight at once */
	bool read_only;
	bool volatile_cache;    /* completed writes may not be durable until FLUSH */
	bool can_discard;
	bool can_write_zeroes;
	uint32_t discard_granularity; /* bytes */
	struct blk_dev *lower;  /* the layer below; NULL for the bottom */
};

/* Submit r to d (traced as block:submit, and its latency as block:complete, when enabled). */
static inline int blk_submit(struct blk_dev *d, struct blk_req *r)
{
	r->trace_t0 = 0;
	if (trace_enabled(TE_BLOCK_SUBMIT) || trace_enabled(TE_BLOCK_COMPLETE)) {
		r->trace_t0 = trace_now();
		r->trace_layer = d->layer;
		TRACE(BLOCK_SUBMIT, trace_str8(d->layer), r->op, r->tag, r->offset, r->len);
	}
	return d->ops->submit(d, r);
}

/* What a layer calls to complete an accepted request: traces it, then r->done(r). */
static inline void blk_req_done(struct blk_req *r)
{
	if (r->trace_t0)
		TRACE(BLOCK_COMPLETE, trace_str8(r->trace_layer), r->op, r->tag, r->status, trace_now() - r->trace_t0);
	r->done(r);
}

/* The layer of d's stack that polls (see blk_ops.poll), or NULL. */
static inline struct blk_dev *blk_poll_layer(struct blk_dev *d)
{
	while (d && !d->ops->poll)
		d = d->lower;
	return d;
}

/*
 * Polling: a thread that submits to d (a virtio-blk queue thread, a
 * harness's driver) may reap completions itself, which saves the wake-up
 * of a second thread per request (see src/block/file.c).  It attaches,
 * watches blk_completion_fd() (-1: the stack cannot be polled) and calls
 * blk_poll() when the fd turns readable (or, spinning, when
 * blk_poll_pending() says so); it detaches before the stack closes.
 * While any poller is attached, only pollers complete requests.
 */
static inline int blk_poll(struct blk_dev *d)
{
	struct blk_dev *p = blk_poll_layer(d);
	return p ? p->ops->poll(p) : 0;
}

static inline bool blk_poll_pending(struct blk_dev *d)
{
	struct blk_dev *p = blk_poll_layer(d);
	return p && p->ops->pending(p);
}

static inline int blk_completion_fd(struct blk_dev *d)
{
	struct blk_dev *p = blk_poll_layer(d);
	return p ? p->ops->completion_fd(p) : -1;
}

static inline void blk_poller_attach(struct blk_dev *d, bool attach)
{
	struct blk_dev *p = blk_poll_layer(d);
	if (p)
		p->ops->poller(p, attach);
}

static inline void blk_close(struct blk_dev *d)
{
	if (d)
		d->ops->close(d);
}

/*
 * Start the threads of every layer of the stack d tops (the completion
 * thread of the file layer, the cache's write-back thread); a second call
 * does nothing.  A stack comes up without threads: all it needs from the
 * kernel but threads (files, io_uring_setup) is done at open, and until
 * blk_start() each request completes inside submit() -- enough for set-up.
 * keel calls blk_start() after sandbox_enter(), which needs a single-threaded
 * process for its namespaces and still allows new threads.  0 or -errno.
 */
int blk_start(struct blk_dev *d);

/* What --disk asked for (parsed by blk_parse_disk_option()). */
enum blk_format { BLK_FORMAT_RAW };
enum blk_cache_mode {
	BLK_CACHE_WRITEBACK,   /* keel's RAM cache; guest flushes make data durable */
	BLK_CACHE_WRITETHROUGH, /* RAM cache for reads; every write durable on completion */
	BLK_CACHE_NONE,        /* no RAM cache, O_DIRECT; guest flushes fdatasync */
};

#define BLK_SERIAL_MAX 20 /* virtio-blk GET_ID length */

/* Where a disk's queue threads run (cpus=): see blk_thread_cpus(). */
/* Which controller presents the disk to the guest (if=), and as what. */
enum blk_iface { BLK_IF_VIRTIO, BLK_IF_AHCI };
enum blk_media { BLK_MEDIA_DISK, BLK_MEDIA_CDROM };

enum blk_cpus_mode {
	BLK_CPUS_ANY,  /* wherever the scheduler puts them (the default) */
	BLK_CPUS_AUTO, /* on the CPUs that take the host device's completions, when that helps */
	BLK_CPUS_LIST, /* on cpus */
};

struct blk_options {
	const char *path;
	enum blk_format format;
	enum blk_cache_mode cache;
	uint64_t cache_size; /* bytes; default 64 MiB */
	bool readonly;
	unsigned partition; /* 0: whole disk; N: the Nth MBR/GPT partition (1-based) */
	char serial[BLK_SERIAL_MAX + 1];
	enum blk_iface iface; /* if=virtio (default) or if=ahci */
	enum blk_media media; /* a CD-ROM (--cdrom) is read-only, on AHCI */
	int bootindex;        /* bootindex=N, 0-9999; -1: none */
	unsigned queues; /* virtio-blk queues; 0: one per vCPU */
	unsigned poll_us; /* queue threads' busy-polling window at most; 0: off */
	enum blk_cpus_mode cpus_mode; /* keel run resolves AUTO to LIST or ANY at start-up */
	cpu_set_t cpus;               /* BLK_CPUS_LIST */
};

#define BLK_POLL_US_DEFAULT 256
#define BLK_POLL_US_MAX 1000

#define BLK_BOOTINDEX_MAX 9999
#define BLK_QUEUES_MAX 64 /* virtio-blk queues per disk at most */

/*
 * Parse "path=F[,format=raw][,cache=writeback|writethrough|none][,cache-size=SIZE]
 * [,readonly][,partition=N][,serial=S][,queues=Q][,poll-us=U][,cpus=C][,if=virtio|ahci]
 * [,bootindex=B]" into *o
 * (path points into s, which must outlive o; s is modified).  ",," is a comma
 * inside a value.  SIZE is bytes or has a K/M/G/T suffix, 1M to 1T; N is 1 to
 * 1024; S is 1 to 20 printable ASCII characters; Q 1 to 64; U 0 to 1000; C
 * auto, any or a CPU list with ':' between items ("1", "0-3:6"); B 0 to 9999.  0, or
 * -EINVAL with one clear sentence in err.
 */
int blk_parse_disk_option(char *s, struct blk_options *o, char *err, size_t errlen);

/*
 * The CPUs on which the host delivers completions of the block device that
 * holds path (or that path is): the effective affinity of the device's busy
 * interrupt vectors (src/block/hostcpus.c).  0 with *out set, or -ENODEV
 * where there is no such device (device mapper, loop, tmpfs) or -errno.
 * blk_completion_cpus_at() reads sysfs at sys and procfs at proc (tests).
 */
int blk_completion_cpus(const char *path, cpu_set_t *out);
int blk_completion_cpus_at(const char *sys, const char *proc, unsigned maj, unsigned min, cpu_set_t *out);

/*
 * Where the n queue threads of the disk o describes run.  cpus=auto pins
 * them to the CPUs that take the host device's completions when those are
 * some, not all, of the CPUs keel may use and there are at least n of them;
 * cpus=LIST pins them to that list (within keel's own affinity).  1 with
 * *out set: pin; 0: leave them to the scheduler; -EINVAL with one sentence
 * in err: the list names no CPU keel may use.  why says what was decided.
 * Start-up only (reads /sys and /proc).
 */
int blk_thread_cpus(const struct blk_options *o, unsigned n, cpu_set_t *out, char *why, size_t whylen, char *err,
		    size_t errlen);

/*
 * Open the stack o describes: file, then part if a partition is named, then
 * cache unless cache=none.  Checks the image (exists, regular file or block
 * device, readable/writable as asked, partition present) before touching it.
 * 0 with *out set, or -errno with one clear sentence in err.  The stack has
 * no threads yet: see blk_start().
 */
int blk_open(const struct blk_options *o, struct blk_dev **out, char *err, size_t errlen);

/*
 * The layer constructors blk_open() uses.  blk_file_open()'s messages name
 * the path; blk_part_open()'s and blk_cache_open()'s do not know it (they
 * read "partition 3 does not exist ..."): blk_open() puts "path: " before
 * them.  On success the new layer owns lower (closing it closes lower); on
 * failure lower is left open for the caller.  blk_file_open() with direct
 * opens the image O_DIRECT and refuses, saying so, where the file system
 * cannot do that (tmpfs, often).  On success blk_part_open() leaves in err
 * what the user should hear of (a damaged primary GPT; the backup is used),
 * or an empty string.
 */
int blk_file_open(const char *path, bool readonly, bool direct, struct blk_dev **out, char *err,
		  size_t errlen);
int blk_part_open(struct blk_dev *lower, unsigned partition, struct blk_dev **out, char *err,
		  size_t errlen);
int blk_cache_open(struct blk_dev *lower, enum blk_cache_mode mode, uint64_t size,
		   struct blk_dev **out, char *err, size_t errlen);

/*
 * With direct (cache=none), a read or write whose buffers do not meet
 * O_DIRECT's memory alignment goes through its file-layer slot's bounce
 * buffer, BLK_BOUNCE_CHUNK bytes at a time; a slot allocates that buffer
 * with its first such request and keeps it.  blk_file_bounce_bytes(): the
 * bytes the file layer of d's stack holds in bounce buffers, at most
 * queue_depth * BLK_BOUNCE_CHUNK whatever the requests' sizes (0 without a
 * file layer).
 */
#define BLK_BOUNCE_CHUNK (128u * 1024)
uint64_t blk_file_bounce_bytes(struct blk_dev *d);

/*
 * The checks every layer's submit() makes first: a known op, flags that op
 * accepts (BLK_FUA on writes, BLK_UNMAP on write-zeroes), offset and len
 * multiples of block_size inside the device (no overflow), for reads and
 * writes an iovec array of at most BLK_IOV_MAX entries whose lengths sum to
 * len, and no write, discard or write-zeroes on a read-only device.
 * 0, -EINVAL, -EOPNOTSUPP (discard/write-zeroes the device cannot do) or
 * -EROFS.  A zero-length request passes; layers complete it at once.
 */
#define BLK_IOV_MAX 1024 /* IOV_MAX */
int blk_req_check(const struct blk_dev *d, const struct blk_req *r);

/*
 * The start of every layer's submit(): blk_req_check(), and a zero-length
 * read/write/discard completed at once.  Returns -errno (refused), 1
 * (completed: submit returns 0) or 0 (the layer goes on).
 */
static inline int blk_req_begin(const struct blk_dev *d, struct blk_req *r)
{
	int rc = blk_req_check(d, r);
	if (rc)
		return rc;
	if (r->op != BLK_FLUSH && !r->len) {
		r->status = 0;
		blk_req_done(r);
		return 1;
	}
	return 0;
}

/*
 * Synchronous helper for set-up code and tests: submit and wait (retrying
 * while the device answers -EAGAIN).  Returns the request's status, or the
 * -errno submit refused it with.
 */
int blk_io_sync(struct blk_dev *d, enum blk_op op, unsigned flags, uint64_t offset, void *buf,
		uint64_t len);
