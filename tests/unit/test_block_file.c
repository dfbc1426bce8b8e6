// SPDX-License-Identifier: MIT
/*
 * The block stack's file layer (io_uring) alone: reads, writes, discard and
 * write-zeroes on a sparse image, many concurrent requests checked against a
 * shadow copy, a bounded queue when done() stalls, an image that shrinks,
 * tmpfs without FALLOC_FL_ZERO_RANGE, O_DIRECT (cache=none), and pollers
 * (threads that reap completions themselves, with the completion thread
 * standing aside while they are attached).
 */
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "blktest.h"
#include "block/block.h"
#include "unit.h"
#include "base/util.h"

static void file_basic(void)
{
	char path[300], err[256];
	tmp_image(path, sizeof(path), 4 * MiB);
	struct blk_dev *d = open_file(path, false, false), *d2 = NULL;
	CHECK(d);
	if (!d)
		goto out;
	CHECK_EQ(d->size, 4 * MiB);
	CHECK_EQ(d->block_size, 512);
	CHECK(d->volatile_cache);
	CHECK(!strcmp(d->layer, "file"));
	uint8_t *a = malloc(64 * KiB), *b = malloc(64 * KiB);
	memset(a, 0x5a, 64 * KiB);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 8192, a, 64 * KiB), 0);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, BLK_FUA, 1 * MiB, a, 4096), 0);
	CHECK_EQ(blk_io_sync(d, BLK_FLUSH, 0, 0, NULL, 0), 0);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 8192, b, 64 * KiB), 0);
	CHECK(!memcmp(a, b, 64 * KiB));
	/* A sparse file's holes read as zeroes. */
	memset(b, 1, 4096);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 2 * MiB, b, 4096), 0);
	CHECK(b[0] == 0 && !memcmp(b, b + 1, 4095));
	/* Discard and write-zeroes read back as zeroes; so does write-zeroes with UNMAP. */
	CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 8192, NULL, 8192), 0);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, 16384, NULL, 4096), 0);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, BLK_UNMAP, 20480, NULL, 8192), 0);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 8192, b, 64 * KiB), 0);
	/* [8192, 28672) is zero now: 20480 bytes from the start of what was read. */
	for (size_t i = 0; i < 64 * KiB; i++)
		if (b[i] != (i < 20480 ? 0 : 0x5a)) {
			CHECK(!"discard/write-zeroes contents");
			break;
		}
	/* Refusals. */
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 100, b, 512), -EINVAL);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 4 * MiB, b, 512), -EINVAL);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 500), -EINVAL);
	CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 4 * MiB - 512, NULL, 1024), -EINVAL);
	blk_close(d);

	d = open_file(path, true, false);
	CHECK(d && d->read_only);
	if (d) {
		CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 0, a, 512), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, 0, NULL, 512), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 0, NULL, 512), -EROFS);
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 1 * MiB, b, 4096), 0);
		CHECK(!memcmp(a, b, 4096));
		blk_close(d);
	}
	/* A missing file: one line naming it. */
	char missing[320];
	snprintf(missing, sizeof(missing), "%s/no-such-image", tmpdir);
	CHECK_EQ(blk_file_open(missing, false, false, &d2, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "no-such-image: No such file or directory"));
	free(a);
	free(b);
out:
	unlink(path);
}

static void file_random(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 16 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	static struct work w;
	work_init(&w, d, 200); /* more than the queue depth: -EAGAIN must come, and only then */
	work_run(&w, 6000, 1);
	check_work(&w, 6000);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 0, 16 * MiB));
	work_fini(&w);
out:
	unlink(path);
}


static void file_backpressure(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 4 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	unsigned qd = d->queue_depth, accepted = 0;
	static struct blk_req reqs[512];
	static struct iovec iov[512];
	static uint8_t bufs[512][512];
	gate.open = false;
	gate.entered = gate.done = 0;
	memset(gate_counts, 0, sizeof(gate_counts));
	for (unsigned i = 0; i < qd; i++) {
		iov[i] = (struct iovec){ bufs[i], 512 };
		reqs[i] = (struct blk_req){ .op = BLK_READ, .tag = i, .offset = (uint64_t)i * 512, .len = 512,
					    .iov = &iov[i], .iovcnt = 1, .done = gate_done };
		CHECK_EQ(blk_submit(d, &reqs[i]), 0);
		accepted++;
	}
	/* Wait until the completion thread is stuck in a done(): no more slots come back. */
	pthread_mutex_lock(&gate.lock);
	while (!gate.entered)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	unsigned extra = 0;
	int rc = 0;
	for (unsigned i = qd; i < 512 && rc == 0; i++) {
		iov[i] = (struct iovec){ bufs[i], 512 };
		reqs[i] = (struct blk_req){ .op = BLK_READ, .tag = i, .offset = (uint64_t)(i % qd) * 512, .len = 512,
					    .iov = &iov[i], .iovcnt = 1, .done = gate_done };
		rc = blk_submit(d, &reqs[i]);
		if (!rc)
			extra++;
	}
	/*
	 * The queue is bounded: with done() stalled, only the slots of the
	 * requests reaped before it (at most a queue's worth) came back.
	 */
	CHECK_EQ(rc, -EAGAIN);
	CHECK(extra <= qd);
	pthread_mutex_lock(&gate.lock);
	accepted += extra;
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	while (gate.done < accepted)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	for (unsigned i = 0; i < accepted; i++)
		CHECK_EQ(atomic_load(&gate_counts[i]), 1);
	blk_close(d);
out:
	unlink(path);
}

/* The image shrinks under the layer: reads past its end read zeroes, short reads are finished. */
static void file_eof(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 1 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	uint8_t *a = malloc(128 * KiB), *b = malloc(128 * KiB);
	memset(a, 0x33, 128 * KiB);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 0, a, 128 * KiB), 0);
	CHECK_EQ(truncate(path, 100000), 0);
	memset(b, 0xff, 128 * KiB);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 128 * KiB), 0);
	CHECK(!memcmp(b, a, 100000));
	for (size_t i = 100000; i < 128 * KiB; i++)
		if (b[i]) {
			CHECK(!"zeroes past the end of the file");
			break;
		}
	blk_close(d);
	free(a);
	free(b);
out:
	unlink(path);
}

/*
 * On tmpfs (/dev/shm): no FALLOC_FL_ZERO_RANGE, so write-zeroes writes
 * zeroes (in 1 MiB steps); and, on many kernels, no O_DIRECT, refused with a
 * clear message.
 */
static char shm_path[300];
static void file_tmpfs_body(void)
{
	char err[256];
	struct blk_dev *d = open_file(shm_path, false, false);
	CHECK(d);
	if (!d)
		return;
	uint8_t *a = malloc(4 * MiB), *b = malloc(4 * MiB);
	memset(a, 0x6c, 4 * MiB);
	CHECK_EQ(blk_io_sync(d, BLK_WRITE, 0, 0, a, 4 * MiB), 0);
	for (int i = 0; i < 2; i++) { /* the second time the layer knows ZERO_RANGE is missing */
		uint64_t off = 512 + (uint64_t)i * 4096, len = 3 * MiB + 1024;
		CHECK_EQ(blk_io_sync(d, BLK_WRITE_ZEROES, 0, off, NULL, len), 0);
		memset(a + off, 0, len);
		CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 4 * MiB), 0);
		CHECK(!memcmp(a, b, 4 * MiB));
	}
	CHECK_EQ(blk_io_sync(d, BLK_DISCARD, 0, 8192, NULL, 65536), 0);
	memset(a + 8192, 0, 65536);
	CHECK_EQ(blk_io_sync(d, BLK_READ, 0, 0, b, 4 * MiB), 0);
	CHECK(!memcmp(a, b, 4 * MiB));
	blk_close(d);
	struct blk_dev *x = NULL;
	int r = blk_file_open(shm_path, false, true, &x, err, sizeof(err));
	if (r) {
		CHECK_EQ(r, -EINVAL);
		CHECK(strstr(err, "does not support O_DIRECT (cache=none); use cache=writeback or cache=writethrough"));
	} else {
		blk_close(x); /* this kernel's tmpfs does O_DIRECT */
	}
	free(a);
	free(b);
}

static void file_tmpfs(void)
{
	snprintf(shm_path, sizeof(shm_path), "/dev/shm/keel-blk-XXXXXX");
	int fd = mkstemp(shm_path);
	if (fd < 0 || ftruncate(fd, 8 * MiB) < 0) {
		SKIP("block", "file_tmpfs", "cannot create a file in /dev/shm");
		if (fd >= 0)
			unlink(shm_path);
		return;
	}
	close(fd);
	unit_run("block", "file_tmpfs", file_tmpfs_body);
	unlink(shm_path);
}

/* O_DIRECT (cache=none) with unaligned iovecs (the bounce path); /var/tmp, as tmpfs may refuse O_DIRECT. */
static char direct_path[300];
static void file_direct_body(void)
{
	char err[256];
	struct blk_dev *d = NULL;
	CHECK_EQ(blk_file_open(direct_path, false, true, &d, err, sizeof(err)), 0);
	if (!d)
		return;
	CHECK_EQ(blk_start(d), 0);
	CHECK(d->block_size == 512 || d->block_size == 4096);
	static struct work w;
	work_init(&w, d, 64);
	work_run(&w, 1500, 7);
	check_work(&w, 1500);
	blk_close(d);
	CHECK(file_matches(direct_path, w.shadow, 0, 4 * MiB));
	work_fini(&w);
}

static void file_direct(void)
{
	char err[256];
	snprintf(direct_path, sizeof(direct_path), "/var/tmp/keel-blk-direct-XXXXXX");
	int fd = mkstemp(direct_path);
	if (fd < 0 || ftruncate(fd, 4 * MiB) < 0) {
		SKIP("block", "file_direct", "cannot create a file in /var/tmp");
		return;
	}
	close(fd);
	struct blk_dev *d = NULL;
	int r = blk_file_open(direct_path, false, true, &d, err, sizeof(err));
	if (r == -EINVAL && strstr(err, "O_DIRECT")) {
		printf("SKIP block/file_direct: %s\n", err);
	} else {
		blk_close(d);
		unit_run("block", "file_direct", file_direct_body);
	}
	unlink(direct_path);
}

/* ---- pollers: the submitting threads reap (blk_poll) ------------------------- */

struct one_req {
	struct blk_req req;
	struct iovec iov;
	atomic_int done;
	pthread_t on; /* the thread done() ran on */
};

static void one_done(struct blk_req *r)
{
	struct one_req *o = (struct one_req *)r;
	o->on = pthread_self();
	atomic_fetch_add(&o->done, 1);
}

static void one_submit(struct blk_dev *d, struct one_req *o, void *buf)
{
	memset(o, 0, sizeof(*o));
	o->iov = (struct iovec){ buf, 4096 };
	o->req = (struct blk_req){ .op = BLK_READ, .offset = 8192, .len = 4096, .iov = &o->iov, .iovcnt = 1,
				   .done = one_done };
	CHECK_EQ(blk_submit(d, &o->req), 0);
}

/* Wait until the completion fd is readable (at most 5 s). */
static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 5000) == 1;
}

static void file_poll_attached(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 1 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	int fd = blk_completion_fd(d);
	CHECK(fd >= 0);
	void *buf = malloc(4096);
	static struct one_req o;
	/* Attached: the completion thread leaves the request to this thread. */
	blk_poller_attach(d, true);
	one_submit(d, &o, buf);
	usleep(100 * 1000);
	CHECK_EQ(atomic_load(&o.done), 0);
	int n = 0;
	for (int i = 0; i < 100 && !atomic_load(&o.done); i++)
		if (fd_readable(fd))
			n += blk_poll(d);
	CHECK_EQ(n, 1);
	CHECK_EQ(atomic_load(&o.done), 1);
	CHECK(pthread_equal(o.on, pthread_self()));
	CHECK_EQ(blk_poll(d), 0);
	/* Detached: the completion thread reaps again, including what is in flight as the last poller leaves. */
	one_submit(d, &o, buf);
	blk_poller_attach(d, false);
	for (int i = 0; i < 500 && !atomic_load(&o.done); i++)
		usleep(10 * 1000);
	CHECK_EQ(atomic_load(&o.done), 1);
	CHECK(!pthread_equal(o.on, pthread_self()));
	free(buf);
	blk_close(d);
out:
	unlink(path);
}

struct poller {
	struct blk_dev *d;
	atomic_bool stop;
	atomic_ulong reaped;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct pollfd pf = { .fd = blk_completion_fd(p->d), .events = POLLIN };
	while (!atomic_load(&p->stop))
		if (poll(&pf, 1, 20) == 1)
			atomic_fetch_add(&p->reaped, (unsigned long)blk_poll(p->d));
	return NULL;
}

static void *toggler_main(void *arg)
{
	struct poller *p = arg;
	while (!atomic_load(&p->stop)) {
		blk_poller_attach(p->d, false);
		usleep(200);
		blk_poller_attach(p->d, true);
		usleep(300);
	}
	return NULL;
}

/* Two polling threads, one poller leaving and coming back all the time, and the completion thread: each request completes once. */
static void file_poll_concurrent(void)
{
	char path[300];
	tmp_image(path, sizeof(path), 16 * MiB);
	struct blk_dev *d = open_file(path, false, false);
	CHECK(d);
	if (!d)
		goto out;
	static struct work w;
	static struct poller p, t;
	p = (struct poller){ .d = d };
	t = (struct poller){ .d = d };
	pthread_t th[3];
	blk_poller_attach(d, true);
	blk_poller_attach(d, true);
	pthread_create(&th[0], NULL, poller_main, &p);
	pthread_create(&th[1], NULL, poller_main, &p);
	pthread_create(&th[2], NULL, toggler_main, &t);
	work_init(&w, d, 64);
	work_run(&w, 4000, 3);
	work_wait_idle(&w);
	atomic_store(&t.stop, true);
	pthread_join(th[2], NULL);
	atomic_store(&p.stop, true);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	CHECK(atomic_load(&p.reaped) > 0);
	blk_poller_attach(d, false);
	blk_poller_attach(d, false);
	work_run(&w, 500, 4); /* the completion thread alone again */
	check_work(&w, 4500);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 0, 16 * MiB));
	work_fini(&w);
out:
	unlink(path);
}

int main(void)
{
	blkt_init();
	if (!have_uring) {
		static const char *const names[] = { "file_basic", "file_random", "file_backpressure",
						     "file_eof", "file_direct", "file_tmpfs", "file_poll_attached",
						     "file_poll_concurrent" };
		blkt_skip_uring(names, ARRAY_SIZE(names));
		UNIT_EXIT();
	}
	RUN("block", file_basic);
	RUN("block", file_random);
	RUN("block", file_backpressure);
	RUN("block", file_eof);
	RUN("block", file_poll_attached);
	RUN("block", file_poll_concurrent);
	file_direct();
	file_tmpfs();
	UNIT_EXIT();
}
