// SPDX-License-Identifier: MIT
/*
 * Where the host completes a disk's I/O, and so where the threads that
 * submit and reap its requests should run (`--disk ...,cpus=auto`).
 *
 * A host block device with fewer interrupt vectors than CPUs (a
 * single-queue virtio disk in a cloud VM, an AHCI controller) delivers
 * every completion on the CPUs its interrupt is routed to.  A thread that
 * submitted from another CPU learns of the completion only through an
 * inter-processor interrupt (blk-mq's remote completion, io_uring's task
 * work).  On this project's development VM, whose disk's one request vector
 * goes to CPU 1, QD1 4 KiB O_DIRECT reads from plain io_uring reach 18-19k
 * IOPS on CPU 1 and 10-11k on CPU 0 (docs/benchmarks.md).  NVMe drives with
 * a queue per CPU complete on the submitting CPU anyway: their vectors
 * cover every CPU, and nothing is pinned.
 *
 * Not the default (cpus=any is): every VM on such a host would pin its
 * busy-polling queue threads to the same CPU.  Two test guests at QD1 on
 * this VM, both cpus=auto: 7990 and 269 IOPS; both cpus=any: 3583 and
 * 4169 (docs/known-issues.md).
 *
 * blk_completion_cpus() finds the device under a file in sysfs (the block
 * device of st_dev, or st_rdev for a device node; its parent for a
 * partition; then up its device path to the first node with MSI vectors,
 * or a PCI function's legacy IRQ), keeps the vectors that carry the
 * interrupts (at least 1/16 of the busiest one's count in
 * /proc/interrupts: a configuration-change vector fires now and then) and
 * unites their effective affinities (/proc/irq/N).  Stacked devices
 * (device mapper, md, loop) and files in memory (tmpfs) have no such
 * device: -ENODEV, and keel leaves its threads to the scheduler.
 *
 * All of it runs at start-up, before the sandbox closes /sys and /proc.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "block.h"
#include "base/util.h"

#define DEPTH_MAX 8  /* device-path levels walked up from the block device */
#define IRQS_MAX 256 /* vectors of one device considered */
#define BUSY_SHARE 16

/* snprintf into a PATH_MAX buffer; -ENAMETOOLONG when it does not fit. */
__attribute__((format(printf, 2, 3))) static int path_fmt(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* The first line of a small sysfs/procfs file, NUL-terminated.  0 or -errno. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int r = fgets(buf, (int)len, f) ? 0 : -EIO;
	fclose(f);
	return r;
}

/* The interrupt vectors of the device at dir or of its nearest ancestor with any. */
static int device_irqs(const char *sys, char *dir, unsigned *irqs, unsigned *n)
{
	char path[PATH_MAX], line[32], real[PATH_MAX], top[PATH_MAX];
	if (!realpath(sys, real) || path_fmt(top, "%s/devices/", real))
		return -ENODEV; /* dir is a resolved path: compare it with one */
	for (unsigned depth = 0; depth < DEPTH_MAX && !strncmp(dir, top, strlen(top)); depth++) {
		DIR *d = path_fmt(path, "%s/msi_irqs", dir) ? NULL : opendir(path);
		if (d) {
			struct dirent *e;
			uint64_t v;
			while ((e = readdir(d)) && *n < IRQS_MAX)
				if (!parse_uint(e->d_name, 0, UINT_MAX, &v))
					irqs[(*n)++] = (unsigned)v;
			closedir(d);
			if (*n)
				return 0;
		}
		uint64_t v;
		if (!path_fmt(path, "%s/vendor", dir) && !access(path, F_OK) && !path_fmt(path, "%s/irq", dir) &&
		    !read_line(path, line, sizeof(line))) {
			line[strcspn(line, "\n")] = 0;
			if (!parse_uint(line, 1, UINT_MAX, &v)) {
				irqs[(*n)++] = (unsigned)v; /* a PCI function's legacy interrupt */
				return 0;
			}
		}
		char *slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = 0;
	}
	return -ENODEV;
}

/* Each vector's interrupt count from proc's interrupts file; -errno if it cannot be read. */
static int irq_counts(const char *proc, const unsigned *irqs, unsigned n, uint64_t *counts)
{
	char path[PATH_MAX];
	if (path_fmt(path, "%s/interrupts", proc))
		return -ENAMETOOLONG;
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char *s = line, *end;
		while (*s == ' ')
			s++;
		if (*s < '0' || *s > '9')
			continue; /* the header, or a named line such as NMI */
		unsigned long irq = strtoul(s, &end, 10);
		if (*end != ':')
			continue;
		uint64_t sum = 0;
		for (s = end + 1;;) {
			unsigned long long c = strtoull(s, &end, 10);
			if (end == s)
				break;
			sum += c;
			s = end;
		}
		for (unsigned i = 0; i < n; i++)
			if (irqs[i] == irq)
				counts[i] = sum;
	}
	free(line);
	fclose(f);
	return 0;
}

int blk_completion_cpus_at(const char *sys, const char *proc, unsigned maj, unsigned min, cpu_set_t *out)
{
	char path[PATH_MAX], blk[PATH_MAX], dev[PATH_MAX];
	CPU_ZERO(out);
	if (path_fmt(path, "%s/dev/block/%u:%u", sys, maj, min) || !realpath(path, blk))
		return -ENODEV;
	if (!path_fmt(path, "%s/partition", blk) && !access(path, F_OK)) {
		char *slash = strrchr(blk, '/');
		if (slash)
			*slash = 0; /* a partition: its disk's directory holds it */
	}
	if (path_fmt(path, "%s/device", blk) || !realpath(path, dev))
		return -ENODEV; /* device mapper, md, loop, zram: no device of their own */

	unsigned irqs[IRQS_MAX], n = 0;
	int r = device_irqs(sys, dev, irqs, &n);
	if (r)
		return r;
	uint64_t counts[IRQS_MAX] = { 0 }, busiest = 0;
	if (irq_counts(proc, irqs, n, counts))
		memset(counts, 0, sizeof(counts)); /* unknown: every vector counts */
	for (unsigned i = 0; i < n; i++)
		busiest = MAX(busiest, counts[i]);
	for (unsigned i = 0; i < n; i++) {
		if (counts[i] < busiest / BUSY_SHARE)
			continue;
		char line[4096];
		cpu_set_t s;
		if ((path_fmt(path, "%s/irq/%u/effective_affinity_list", proc, irqs[i]) ||
		     read_line(path, line, sizeof(line))) &&
		    (path_fmt(path, "%s/irq/%u/smp_affinity_list", proc, irqs[i]) ||
		     read_line(path, line, sizeof(line))))
			continue;
		if (parse_cpu_list(line, ',', &s))
			continue;
		CPU_OR(out, out, &s);
	}
	return CPU_COUNT(out) ? 0 : -ENODEV;
}

int blk_completion_cpus(const char *path, cpu_set_t *out)
{
	struct stat st;
	CPU_ZERO(out);
	if (stat(path, &st))
		return -errno;
	dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
	return blk_completion_cpus_at("/sys", "/proc", major(d), minor(d), out);
}

int blk_thread_cpus(const struct blk_options *o, unsigned n, cpu_set_t *out, char *why, size_t whylen, char *err,
		    size_t errlen)
{
	cpu_set_t allowed, u;
	char a[256], b[256];
	CPU_ZERO(out);
	snprintf(why, whylen, "left to the scheduler (cpus=any)");
	if (o->cpus_mode == BLK_CPUS_ANY)
		return 0;
	if (sched_getaffinity(0, sizeof(allowed), &allowed)) {
		snprintf(why, whylen, "left to the scheduler (sched_getaffinity: %s)", strerror(errno));
		return 0;
	}
	format_cpu_list(&allowed, a, sizeof(a));
	if (o->cpus_mode == BLK_CPUS_LIST) {
		CPU_AND(out, &o->cpus, &allowed);
		if (!CPU_COUNT(out)) {
			format_cpu_list(&o->cpus, b, sizeof(b));
			snprintf(err, errlen, "%s: cpus=%s names none of the CPUs keel may run on (%s)", o->path, b, a);
			return -EINVAL;
		}
		format_cpu_list(out, b, sizeof(b));
		snprintf(why, whylen, "on CPUs %s (cpus=)", b);
		return 1;
	}
	int r = blk_completion_cpus(o->path, &u);
	if (r) {
		snprintf(why, whylen, "left to the scheduler (no host device with interrupts found under the image)");
		return 0;
	}
	CPU_AND(&u, &u, &allowed);
	format_cpu_list(&u, b, sizeof(b));
	if (!CPU_COUNT(&u) || CPU_EQUAL(&u, &allowed)) {
		snprintf(why, whylen, "left to the scheduler (the host device completes on CPUs %s of %s)", b, a);
		return 0;
	}
	if ((unsigned)CPU_COUNT(&u) < n) {
		snprintf(why, whylen, "left to the scheduler (%u queue threads, the host device completes on CPUs %s)",
			 n, b);
		return 0;
	}
	*out = u;
	snprintf(why, whylen, "on CPUs %s, where the host device completes its requests (cpus=auto)", b);
	return 1;
}
