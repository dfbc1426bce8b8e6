// SPDX-License-Identifier: MIT
/*
 * The block stack as a whole: --disk option parsing, the request checks every
 * layer makes, completion order through stacked layers, many concurrent
 * requests through a partition (and a cache over it) over a file, blk_open()
 * and its error messages, and a stack used before blk_start().
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkfake.h"
#include "blktest.h"
#include "block/block.h"
#include "unit.h"
#include "base/util.h"

/* ---- option parsing and request checks ---------------------------------- */

static void parse_good(void)
{
	struct blk_options o;
	char err[256], s1[] = "path=disk.img";
	CHECK_EQ(blk_parse_disk_option(s1, &o, err, sizeof(err)), 0);
	CHECK(!strcmp(o.path, "disk.img"));
	CHECK_EQ(o.cache, BLK_CACHE_WRITEBACK);
	CHECK_EQ(o.cache_size, 64 * MiB);
	CHECK(!o.readonly);
	CHECK_EQ(o.partition, 0);
	CHECK_EQ(o.serial[0], 0);
	CHECK_EQ(o.poll_us, BLK_POLL_US_DEFAULT);
	CHECK_EQ(o.cpus_mode, BLK_CPUS_ANY);

	char s2[] = "path=/a,,b.img,format=raw,cache=writethrough,cache-size=2G,readonly,partition=3,serial=ABC 123";
	CHECK_EQ(blk_parse_disk_option(s2, &o, err, sizeof(err)), 0);
	CHECK(!strcmp(o.path, "/a,b.img"));
	CHECK_EQ(o.cache, BLK_CACHE_WRITETHROUGH);
	CHECK_EQ(o.cache_size, 2 * GiB);
	CHECK(o.readonly);
	CHECK_EQ(o.partition, 3);
	CHECK(!strcmp(o.serial, "ABC 123"));

	char s3[] = "cache=none,path=x,readonly=off,serial=12345678901234567890,poll-us=0";
	CHECK_EQ(blk_parse_disk_option(s3, &o, err, sizeof(err)), 0);
	CHECK_EQ(o.poll_us, 0);
	CHECK_EQ(o.cache, BLK_CACHE_NONE);
	CHECK(!o.readonly);
	CHECK_EQ(strlen(o.serial), 20);

	char s4[] = "path=x,cpus=auto";
	CHECK_EQ(blk_parse_disk_option(s4, &o, err, sizeof(err)), 0);
	CHECK_EQ(o.cpus_mode, BLK_CPUS_AUTO);
	char s5[] = "path=x,cpus=1-3:6,cache=none";
	CHECK_EQ(blk_parse_disk_option(s5, &o, err, sizeof(err)), 0);
	CHECK_EQ(o.cpus_mode, BLK_CPUS_LIST);
	CHECK_EQ(CPU_COUNT(&o.cpus), 4);
	CHECK(!CPU_ISSET(0, &o.cpus) && CPU_ISSET(1, &o.cpus) && CPU_ISSET(3, &o.cpus) && CPU_ISSET(6, &o.cpus));
	CHECK_EQ(o.cache, BLK_CACHE_NONE);
	char s6[] = "path=x,cpus=any";
	CHECK_EQ(blk_parse_disk_option(s6, &o, err, sizeof(err)), 0);
	CHECK_EQ(o.cpus_mode, BLK_CPUS_ANY);
}

static void parse_bad(void)
{
	static const struct {
		const char *in, *msg;
	} cases[] = {
		{ "", "empty item" },
		{ "format=raw", "needs path=FILE" },
		{ "path=", "path= is empty" },
		{ "path", "'path' needs a value" },
		{ "path=a,path=b", "'path' is given twice" },
		{ "path=a,size=1G", "unknown disk option 'size'" },
		{ "path=a,format=qcow2", "'qcow2' is not supported" },
		{ "path=a,cache=fast", "cache=fast is not one of writeback, writethrough, none" },
		{ "path=a,cache-size=lots", "cache-size=lots is not a size" },
		{ "path=a,cache-size=4k", "cache-size=4k is out of range" },
		{ "path=a,cache=none,cache-size=8M", "no meaning with cache=none" },
		{ "path=a,readonly=maybe", "readonly=maybe" },
		{ "path=a,partition=0", "partition=0 is not a partition number" },
		{ "path=a,partition=x", "partition=x is not a partition number" },
		{ "path=a,serial=123456789012345678901", "must be 1 to 20 characters" },
		{ "path=a,serial=", "must be 1 to 20 characters" },
		{ "path=a,serial=a\tb", "printable ASCII only" },
		{ "path=a,poll-us=1001", "poll-us=1001 is not a busy-polling time from 0 (off) to 1000 microseconds" },
		{ "path=a,poll-us=-1", "poll-us=-1 is not a busy-polling time" },
		{ "path=a,cpus=", "cpus= is not auto, any or a CPU list" },
		{ "path=a,cpus=all", "cpus=all is not auto, any or a CPU list such as 1 or 0-3:6" },
		{ "path=a,cpus=3-1", "cpus=3-1 is not" },
		{ "path=a,cpus=1:", "cpus=1: is not" },
		{ "path=a,cpus=99999", "(CPUs below 1024)" },
		{ "path=a,cpus=1,,2", "cpus=1,2 is not" },
		{ "path=a,,", "needs path=FILE" }, /* ",," is a comma in the path; no path= then? it is: "a," */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct blk_options o;
		char err[256] = "", buf[128];
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		int r = blk_parse_disk_option(buf, &o, err, sizeof(err));
		if (i == ARRAY_SIZE(cases) - 1) {
			CHECK_EQ(r, 0); /* "path=a,," is the path "a," */
			CHECK(r || !strcmp(o.path, "a,"));
			continue;
		}
		CHECK_EQ(r, -EINVAL);
		if (!strstr(err, cases[i].msg)) {
			fprintf(stderr, "parse_bad: '%s' gave '%s', expected '%s'\n", cases[i].in, err, cases[i].msg);
			CHECK(strstr(err, cases[i].msg));
		}
		CHECK(!strchr(err, '\n'));
	}
}

static void req_checks(void)
{
	struct fake *f = fake_new(1 * MiB, 512, 8, FAKE_SYNC);
	struct blk_dev *d = &f->dev;
	uint8_t buf[1024];
	struct iovec iov = { buf, 512 };
	struct blk_req r = { .op = BLK_READ, .offset = 0, .len = 512, .iov = &iov, .iovcnt = 1 };
	CHECK_EQ(blk_req_check(d, &r), 0);
	r.offset = 100;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* misaligned */
	r.offset = 1 * MiB;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* past the end */
	r.offset = UINT64_MAX - 511;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* wraps */
	r.offset = 0;
	r.len = 1024;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* iov sum differs */
	r.len = 512;
	r.flags = BLK_FUA;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL); /* FUA on a read */
	r.flags = 0;
	r.iovcnt = BLK_IOV_MAX + 1;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL);
	r.iovcnt = 1;
	r.op = (enum blk_op)42;
	CHECK_EQ(blk_req_check(d, &r), -EINVAL);
	struct blk_req fl = { .op = BLK_FLUSH, .len = 512 };
	CHECK_EQ(blk_req_check(d, &fl), -EINVAL);
	struct blk_req wz = { .op = BLK_WRITE_ZEROES, .flags = BLK_FUA, .len = 512 };
	CHECK_EQ(blk_req_check(d, &wz), -EINVAL);
	d->read_only = true;
	r.op = BLK_WRITE;
	CHECK_EQ(blk_req_check(d, &r), -EROFS);
	wz.flags = BLK_UNMAP;
	CHECK_EQ(blk_req_check(d, &wz), -EROFS);
	r.op = BLK_READ;
	CHECK_EQ(blk_req_check(d, &r), 0);
	d->read_only = false;
	d->can_discard = false;
	struct blk_req dc = { .op = BLK_DISCARD, .len = 512 };
	CHECK_EQ(blk_req_check(d, &dc), -EOPNOTSUPP);
	fake_free(f);
}

/* ---- stacked layers ----------------------------------------------------- */

/* Completions pass up in the order they come from below, not in submission order. */
static unsigned order[8], norder;
static void order_done(struct blk_req *r)
{
	order[norder++] = (unsigned)r->tag;
}

static void out_of_order(void)
{
	struct fake *f = fake_new(1 * MiB, 512, 16, FAKE_MANUAL);
	uint8_t *img = f->vol;
	img[510] = 0x55;
	img[511] = 0xaa;
	uint8_t *e = img + 446;
	e[4] = 0x83;
	uint32_t lba = 8, cnt = 2040;
	memcpy(e + 8, &lba, 4);
	memcpy(e + 12, &cnt, 4);
	fake_set_mode(f, FAKE_SYNC);
	struct blk_dev *p = NULL, *c = NULL;
	char err[256];
	CHECK_EQ(blk_part_open(&f->dev, 1, &p, err, sizeof(err)), 0);
	if (!p) {
		fake_free(f);
		return;
	}
	fake_set_mode(f, FAKE_MANUAL);
	c = open_cache(p, BLK_CACHE_WRITEBACK, 1 * MiB);
	static struct blk_req r[8];
	static struct iovec iov[8];
	static uint8_t buf[8][512];
	for (int layer = 0; layer < 2; layer++) {
		norder = 0;
		for (unsigned i = 0; i < 8; i++) {
			iov[i] = (struct iovec){ buf[i], 512 };
			r[i] = (struct blk_req){ .op = BLK_READ, .tag = i, .offset = (uint64_t)i * 128 * KiB + (layer ? 65536 : 0),
						 .len = 512, .iov = &iov[i], .iovcnt = 1, .done = order_done };
			CHECK_EQ(blk_submit(layer ? c : p, &r[i]), 0);
		}
		/* Complete the newest first. */
		while (f->npending) {
			pthread_mutex_lock(&f->lock);
			unsigned best = 0;
			for (unsigned i = 1; i < f->npending; i++)
				if (f->pending[i]->offset > f->pending[best]->offset)
					best = i;
			fake_complete_locked(f, best);
			pthread_mutex_unlock(&f->lock);
		}
		CHECK_EQ(norder, 8);
		for (unsigned i = 0; i < norder; i++)
			CHECK_EQ(order[i], 7 - i);
	}
	fake_set_mode(f, FAKE_SYNC);
	blk_close(c);
	fake_free(f);
}

/* An MBR image on disk: partitions at 1 MiB (8 MiB long) and 9 MiB (6 MiB long). */
static void mbr_image(const char *path)
{
	uint8_t sec[512] = { 0 };
	mbr_entry(sec, 0, 0, 0x83, 2048, 16384);
	mbr_entry(sec, 1, 0, 0x83, 18432, 12288);
	int fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, sec, 512, 0) != 512)
		abort();
	close(fd);
}

/* Random work through part (and cache over part) over a file: nothing outside the partition changes. */
static void part_file_case(bool cached)
{
	char path[300], err[256];
	tmp_image(path, sizeof(path), 16 * MiB);
	mbr_image(path);
	struct blk_dev *f = open_file(path, false, false), *p = NULL, *d;
	CHECK(f);
	if (!f)
		goto out;
	CHECK_EQ(blk_part_open(f, 2, &p, err, sizeof(err)), 0);
	if (!p) {
		blk_close(f);
		goto out;
	}
	CHECK_EQ(p->size, 6 * MiB);
	d = cached ? open_cache(p, BLK_CACHE_WRITEBACK, 1 * MiB) : p;
	CHECK(d);
	if (!d) {
		blk_close(p);
		goto out;
	}
	static struct work w;
	work_init(&w, d, 40);
	work_run(&w, 3000, cached ? 21 : 22);
	check_work(&w, 3000);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 9 * MiB, 6 * MiB));
	/* Partition 1 and the last MiB are untouched (zero); the MBR too. */
	uint8_t *zero = calloc(1, 8 * MiB);
	CHECK(file_matches(path, zero, 1 * MiB, 8 * MiB));
	CHECK(file_matches(path, zero, 15 * MiB, 1 * MiB));
	uint8_t sec[512] = { 0 };
	mbr_entry(sec, 0, 0, 0x83, 2048, 16384);
	mbr_entry(sec, 1, 0, 0x83, 18432, 12288);
	CHECK(file_matches(path, sec, 0, 512));
	free(zero);
	work_fini(&w);
out:
	unlink(path);
}

static void part_over_file(void)
{
	part_file_case(false);
}

static void cache_over_part(void)
{
	part_file_case(true);
}

/* ---- blk_open ----------------------------------------------------------- */

static int open_opt(const char *opt, struct blk_dev **d, char *err, size_t errlen)
{
	char s[512];
	struct blk_options o;
	snprintf(s, sizeof(s), "%s", opt);
	int r = blk_parse_disk_option(s, &o, err, errlen);
	if (r)
		return r;
	return blk_open(&o, d, err, errlen);
}

static void open_stack(void)
{
	char path[300], opt[400], err[512], want[400];
	struct blk_dev *d = NULL;
	tmp_image(path, sizeof(path), 16 * MiB);
	mbr_image(path);

	snprintf(opt, sizeof(opt), "path=%s,partition=1", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), 0);
	CHECK(d && !strcmp(d->layer, "cache") && !strcmp(d->lower->layer, "part") &&
	      !strcmp(d->lower->lower->layer, "file"));
	CHECK(d && d->size == 8 * MiB && d->volatile_cache && !d->read_only);
	blk_close(d);

	snprintf(opt, sizeof(opt), "path=%s,readonly,cache=writethrough,cache-size=1M", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), 0);
	CHECK(d && d->read_only && !d->volatile_cache && d->size == 16 * MiB);
	blk_close(d);

	/* cache=none: the file alone, O_DIRECT (which some file systems refuse, clearly). */
	snprintf(opt, sizeof(opt), "path=%s,cache=none", path);
	int r = open_opt(opt, &d, err, sizeof(err));
	CHECK(r == 0 || strstr(err, "does not support O_DIRECT"));
	if (!r) {
		CHECK(!strcmp(d->layer, "file") && !d->lower);
		blk_close(d);
	}

	snprintf(opt, sizeof(opt), "path=%s,partition=3", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: partition 3 does not exist (the MBR has 2 partitions)", path);
	CHECK(!strcmp(err, want));

	snprintf(opt, sizeof(opt), "path=%s/missing.img", tmpdir);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s/missing.img: No such file or directory", tmpdir);
	CHECK(!strcmp(err, want));

	snprintf(opt, sizeof(opt), "path=%s", tmpdir);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, ": not a regular file or block device"));

	CHECK_EQ(truncate(path, 1000), 0);
	snprintf(opt, sizeof(opt), "path=%s", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "is not a multiple of 512"));
	CHECK_EQ(truncate(path, 0), 0);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "the image is empty"));

	/* Not writable: the message says how to open it read-only (root may write anyway). */
	CHECK_EQ(truncate(path, 1 * MiB), 0);
	if (geteuid() != 0) {
		chmod(path, 0444);
		CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), -EACCES);
		CHECK(strstr(err, "Permission denied (to use it read-only, add ,readonly)"));
	}
	unlink(path);
}

/* Before blk_start() the stack has no threads: every request completes inside submit(). */
static void stack_unstarted(void)
{
	char path[300], opt[400], err[512];
	struct blk_dev *d = NULL;
	tmp_image(path, sizeof(path), 16 * MiB);
	mbr_image(path);
	snprintf(opt, sizeof(opt), "path=%s,partition=1,cache-size=1M", path);
	CHECK_EQ(open_opt(opt, &d, err, sizeof(err)), 0);
	if (!d)
		goto out;
	static struct work w;
	work_init(&w, d, 16);
	struct flag_req q;
	static uint8_t buf[4096];
	CHECK_EQ(flag_submit(d, &q, NULL, BLK_READ, 0, 1 * MiB, buf, sizeof(buf)), 0);
	CHECK_EQ(atomic_load(&q.done), 1);
	CHECK_EQ(flag_submit(d, &q, NULL, BLK_FLUSH, 0, 0, NULL, 0), 0);
	CHECK_EQ(atomic_load(&q.done), 1);
	work_run(&w, 1000, 31);
	check_work(&w, 1000);
	CHECK_EQ(blk_start(d), 0);
	CHECK_EQ(blk_start(d), 0); /* a second call does nothing */
	work_run(&w, 1000, 32);
	w.submitted -= 1000, w.completed -= 1000;
	check_work(&w, 1000);
	blk_close(d);
	CHECK(file_matches(path, w.shadow, 1 * MiB, 8 * MiB));
	work_fini(&w);
out:
	unlink(path);
}

int main(void)
{
	blkt_init();
	RUN("block", parse_good);
	RUN("block", parse_bad);
	RUN("block", req_checks);
	RUN("block", out_of_order);
	if (!have_uring) {
		static const char *const names[] = { "part_over_file", "cache_over_part", "open_stack",
						     "stack_unstarted" };
		blkt_skip_uring(names, ARRAY_SIZE(names));
		UNIT_EXIT();
	}
	RUN("block", part_over_file);
	RUN("block", cache_over_part);
	RUN("block", open_stack);
	RUN("block", stack_unstarted);
	UNIT_EXIT();
}
