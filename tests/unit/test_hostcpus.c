// SPDX-License-Identifier: MIT
/*
 * Where a disk's queue threads run (cpus=): CPU lists, finding the CPUs
 * that take a host device's completions in a made-up sysfs and procfs
 * (a single-queue virtio disk and its partition, an NVMe drive with a
 * vector per CPU, a legacy PCI interrupt, stacked and missing devices,
 * missing and malformed proc files), the placement decision, and an I/O
 * thread that pins itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "base/iothread.h"
#include "unit.h"
#include "base/util.h"

static char root[64];

/* Write text into root/path, making its directories. */
__attribute__((format(printf, 2, 3))) static void put(const char *path, const char *fmt, ...)
{
	char full[512], *s;
	snprintf(full, sizeof(full), "%s/%s", root, path);
	for (s = full + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		(void)mkdir(full, 0755);
		*s = '/';
	}
	FILE *f = fopen(full, "w");
	CHECK(f);
	if (!f)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* root/path -> target (relative, as sysfs links are). */
static void link_to(const char *target, const char *path)
{
	char full[512];
	snprintf(full, sizeof(full), "%s/%s", root, path);
	CHECK_EQ(symlink(target, full), 0);
}

static void rm(const char *path)
{
	char full[512];
	snprintf(full, sizeof(full), "%s/%s", root, path);
	CHECK_EQ(unlink(full), 0);
}

/* The CPUs found for maj:min as a list, or the error as "-N". */
static const char *found(unsigned maj, unsigned min)
{
	static char out[64];
	char sys[96], proc[96];
	cpu_set_t s;
	snprintf(sys, sizeof(sys), "%s/sys", root);
	snprintf(proc, sizeof(proc), "%s/proc", root);
	int r = blk_completion_cpus_at(sys, proc, maj, min, &s);
	if (r)
		snprintf(out, sizeof(out), "%d", r);
	else
		format_cpu_list(&s, out, sizeof(out));
	return out;
}

#define EXPECT_FOUND(maj, min, want)                                                             \
	do {                                                                                     \
		const char *_got = found(maj, min);                                              \
		if (strcmp(_got, want))                                                          \
			fprintf(stderr, "%u:%u: found '%s', expected '%s'\n", maj, min, _got, want); \
		CHECK(!strcmp(_got, want));                                                      \
	} while (0)

static void cpu_lists(void)
{
	cpu_set_t s;
	char buf[64];
	CHECK_EQ(parse_cpu_list("0-3,6", ',', &s), 0);
	format_cpu_list(&s, buf, sizeof(buf));
	CHECK(!strcmp(buf, "0-3,6"));
	CHECK_EQ(parse_cpu_list(" 1\n", ',', &s), 0);
	CHECK_EQ(CPU_COUNT(&s), 1);
	CHECK(CPU_ISSET(1, &s));
	CHECK_EQ(parse_cpu_list("2:4-5:7", ':', &s), 0);
	format_cpu_list(&s, buf, sizeof(buf));
	CHECK(!strcmp(buf, "2,4-5,7"));
	CHECK_EQ(parse_cpu_list("1023", ',', &s), 0);
	CHECK_EQ(parse_cpu_list("1024", ',', &s), -ERANGE);
	CHECK_EQ(parse_cpu_list("3-1", ',', &s), -ERANGE);
	CHECK_EQ(parse_cpu_list("2:4", ',', &s), -EINVAL);
	CHECK_EQ(parse_cpu_list("1,", ',', &s), -EINVAL);
	CHECK_EQ(parse_cpu_list("", ',', &s), -EINVAL);
	CHECK_EQ(parse_cpu_list("-1", ',', &s), -EINVAL);
	CHECK_EQ(parse_cpu_list("1-", ',', &s), -EINVAL);
	CHECK_EQ(parse_cpu_list("99999999999999999999", ',', &s), -ERANGE);
	CHECK_EQ(parse_cpu_list(NULL, ',', &s), -EINVAL);
	CPU_ZERO(&s);
	format_cpu_list(&s, buf, sizeof(buf));
	CHECK(!strcmp(buf, "none"));
	for (int c = 0; c < 64; c += 2)
		CPU_SET(c, &s);
	format_cpu_list(&s, buf, 10); /* truncated, still a string */
	CHECK(strlen(buf) == 9 && !strncmp(buf, "0,2,4,6,8", 9));
}

/*
 * A made-up machine: a virtio disk (one request vector on CPU 1, its
 * configuration vector on CPU 0) with a partition; an NVMe drive (admin
 * vector on CPU 0, I/O vectors on CPUs 0 and 1); a disk behind a legacy
 * interrupt; a loop device; a disk whose device has no interrupts.
 */
static void make_tree(void)
{
	snprintf(root, sizeof(root), "/tmp/keel-hostcpus-XXXXXX");
	CHECK(mkdtemp(root));
	put("sys/devices/pci0000:00/0000:00:02.0/vendor", "0x1af4\n");
	put("sys/devices/pci0000:00/0000:00:02.0/irq", "11\n");
	put("sys/devices/pci0000:00/0000:00:02.0/msi_irqs/35", "msix\n");
	put("sys/devices/pci0000:00/0000:00:02.0/msi_irqs/36", "msix\n");
	put("sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/size", "0\n");
	put("sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/vda1/partition", "1\n");
	link_to("../../../virtio1", "sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/device");
	put("sys/devices/pci0000:00/0000:00:04.0/vendor", "0x8086\n");
	put("sys/devices/pci0000:00/0000:00:04.0/msi_irqs/40", "msix\n");
	put("sys/devices/pci0000:00/0000:00:04.0/msi_irqs/41", "msix\n");
	put("sys/devices/pci0000:00/0000:00:04.0/msi_irqs/42", "msix\n");
	put("sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/size", "0\n");
	link_to("../../nvme0", "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/device");
	put("sys/devices/pci0000:00/0000:00:05.0/vendor", "0x8086\n");
	put("sys/devices/pci0000:00/0000:00:05.0/irq", "10\n");
	put("sys/devices/pci0000:00/0000:00:05.0/ata1/host0/block/sda/size", "0\n");
	link_to("../../../host0", "sys/devices/pci0000:00/0000:00:05.0/ata1/host0/block/sda/device");
	put("sys/devices/platform/quiet/block/xda/size", "0\n");
	link_to("../../../quiet", "sys/devices/platform/quiet/block/xda/device");
	put("sys/devices/virtual/block/loop0/size", "0\n");
	put("sys/dev/block/.keep", "\n");
	link_to("../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda", "sys/dev/block/254:0");
	link_to("../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda/vda1", "sys/dev/block/254:1");
	link_to("../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1", "sys/dev/block/259:0");
	link_to("../../devices/pci0000:00/0000:00:05.0/ata1/host0/block/sda", "sys/dev/block/8:0");
	link_to("../../devices/platform/quiet/block/xda", "sys/dev/block/9:0");
	link_to("../../devices/virtual/block/loop0", "sys/dev/block/7:0");
	put("proc/interrupts", "           CPU0       CPU1\n"
			       "  10:        500          0   IO-APIC  10-fasteoi   ahci\n"
			       "  35:          0          1   PCI-MSIX-0000:00:02.0   0-edge   virtio1-config\n"
			       "  36:          0   23920385   PCI-MSIX-0000:00:02.0   1-edge   virtio1-req.0\n"
			       "  40:         12          0   PCI-MSIX-0000:00:04.0   0-edge   nvme0q0\n"
			       "  41:       9000          0   PCI-MSIX-0000:00:04.0   1-edge   nvme0q1\n"
			       "  42:          0       8000   PCI-MSIX-0000:00:04.0   2-edge   nvme0q2\n"
			       "NMI:          0          0   Non-maskable interrupts\n");
	put("proc/irq/10/effective_affinity_list", "0\n");
	put("proc/irq/11/effective_affinity_list", "0-1\n");
	put("proc/irq/35/effective_affinity_list", "0\n");
	put("proc/irq/36/effective_affinity_list", "1\n");
	put("proc/irq/40/effective_affinity_list", "0\n");
	put("proc/irq/41/effective_affinity_list", "0\n");
	put("proc/irq/42/smp_affinity_list", "1\n"); /* no effective list: the configured one */
}

static void completion_cpus(void)
{
	make_tree();
	EXPECT_FOUND(254, 0, "1");   /* the request vector; the configuration vector fired once */
	EXPECT_FOUND(254, 1, "1");   /* a partition: its disk's device */
	EXPECT_FOUND(259, 0, "0-1"); /* a vector per CPU: everywhere */
	EXPECT_FOUND(8, 0, "0");     /* a legacy interrupt, two levels up */
	EXPECT_FOUND(9, 0, "-19");   /* a device without interrupts */
	EXPECT_FOUND(7, 0, "-19");   /* loop: no device */
	EXPECT_FOUND(7, 1, "-19");   /* no such block device */

	/* Interrupt counts unknown: every vector counts. */
	rm("proc/interrupts");
	EXPECT_FOUND(254, 0, "0-1");
	put("proc/interrupts", "           CPU0       CPU1\n 35: 0 0 config\n 36: 0 0 req.0\n");
	EXPECT_FOUND(254, 0, "0-1"); /* nothing fired yet: all of them */
	put("proc/interrupts", " 35: 0 1 config\n 36: 7 100 req.0\n");
	EXPECT_FOUND(254, 0, "1");

	/* Unreadable or malformed affinities are skipped; none left: not found. */
	put("proc/irq/36/effective_affinity_list", "one\n");
	EXPECT_FOUND(254, 0, "-19");
	rm("proc/irq/36/effective_affinity_list");
	put("proc/irq/36/smp_affinity_list", "0-1\n");
	EXPECT_FOUND(254, 0, "0-1");

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK_EQ(system(cmd), 0);
}

static void placement(void)
{
	struct blk_options o;
	char why[320], err[320] = "";
	cpu_set_t out, allowed;
	CHECK_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	int first = 0;
	while (first < CPU_SETSIZE && !CPU_ISSET(first, &allowed))
		first++;

	memset(&o, 0, sizeof(o));
	o.path = "/proc/self/exe";
	o.cpus_mode = BLK_CPUS_ANY;
	CHECK_EQ(blk_thread_cpus(&o, 1, &out, why, sizeof(why), err, sizeof(err)), 0);
	CHECK(strstr(why, "cpus=any"));

	o.cpus_mode = BLK_CPUS_LIST;
	CPU_ZERO(&o.cpus);
	CPU_SET(first, &o.cpus);
	CPU_SET(1023, &o.cpus); /* not ours: dropped */
	CHECK_EQ(blk_thread_cpus(&o, 4, &out, why, sizeof(why), err, sizeof(err)), 1);
	CHECK_EQ(CPU_COUNT(&out), 1);
	CHECK(CPU_ISSET(first, &out));

	CPU_ZERO(&o.cpus);
	CPU_SET(1023, &o.cpus);
	CHECK_EQ(blk_thread_cpus(&o, 1, &out, why, sizeof(why), err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "/proc/self/exe: cpus=1023 names none of the CPUs keel may run on"));

	/* A file in memory has no host device: auto leaves the threads alone. */
	int fd = memfd_create("hostcpus", MFD_CLOEXEC);
	CHECK(fd >= 0);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	o.path = path;
	o.cpus_mode = BLK_CPUS_AUTO;
	CHECK_EQ(blk_thread_cpus(&o, 1, &out, why, sizeof(why), err, sizeof(err)), 0);
	CHECK(strstr(why, "no host device"));
	CHECK_EQ(CPU_COUNT(&out), 0);
	close(fd);
	o.path = "/nonexistent/disk.img";
	CHECK_EQ(blk_thread_cpus(&o, 1, &out, why, sizeof(why), err, sizeof(err)), 0);
}

/* An I/O thread asked to run on one CPU runs there. */
static void iothread_pins(void)
{
	cpu_set_t allowed, one;
	CHECK_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	int last = CPU_SETSIZE - 1;
	while (last > 0 && !CPU_ISSET(last, &allowed))
		last--;
	CPU_ZERO(&one);
	CPU_SET(last, &one);
	struct iothread t;
	CHECK_EQ(iothread_init(&t, "pin-test"), 0);
	CHECK_EQ(iothread_set_cpus(&t, &one), 0);
	CHECK_EQ(iothread_start(&t), 0);
	CHECK_EQ(iothread_set_cpus(&t, &one), -EBUSY);
	for (int i = 0; i < 2000 && atomic_load(&t.pin_result) == 1; i++)
		usleep(1000);
	CHECK_EQ(atomic_load(&t.pin_result), 0);
	cpu_set_t got;
	CHECK_EQ(pthread_getaffinity_np(t.thread, sizeof(got), &got), 0);
	CHECK(CPU_EQUAL(&got, &one));
	iothread_destroy(&t);
}

int main(void)
{
	log_level = LOG_QUIET;
	RUN("hostcpus", cpu_lists);
	RUN("hostcpus", completion_cpus);
	RUN("hostcpus", placement);
	RUN("hostcpus", iothread_pins);
	UNIT_EXIT();
}
