// SPDX-License-Identifier: MIT
/* Guest-memory accessor bounds, CPUID shaping, the VM-exit handler table, I/O-thread polling. */
#include <asm/kvm_para.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/cpuid.h"
#include "vmm/device.h"
#include "fake.h"
#include "base/iothread.h"
#include "vmm/layout.h"
#include "unit.h"
#include "vmm/vcpu.h"

static void guest_mem_bounds(void)
{
	struct guest_mem gm;
	CHECK_EQ(gm_init(&gm, 0), -EINVAL);
	CHECK_EQ(gm_init(&gm, 64 * MiB), 0);
	CHECK_EQ(gm.nr_regions, 1);
	CHECK(gm_ptr(&gm, 0, 1) == gm.host);
	CHECK(gm_ptr(&gm, 64 * MiB - 1, 1) == gm.host + 64 * MiB - 1);
	CHECK(gm_ptr(&gm, 64 * MiB - 1, 2) == NULL);
	CHECK(gm_ptr(&gm, 64 * MiB, 1) == NULL);
	CHECK(gm_ptr(&gm, 0, 0) == NULL);
	CHECK(gm_ptr(&gm, 1, UINT64_MAX) == NULL);          /* gpa + len wraps */
	CHECK(gm_ptr(&gm, UINT64_MAX, 1) == NULL);
	CHECK(gm_ptr(&gm, UINT64_MAX - 10, 20) == NULL);
	CHECK(gm_ptr(&gm, 4096, 64 * MiB) == NULL);
	uint8_t b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, c[8];
	CHECK_EQ(gm_write(&gm, 100, b, 8), 0);
	CHECK_EQ(gm_read(&gm, 100, c, 8), 0);
	CHECK(!memcmp(b, c, 8));
	CHECK_EQ(gm_read(&gm, 64 * MiB - 4, c, 8), -EFAULT);
	CHECK_EQ(gm_clear(&gm), 0);
	CHECK_EQ(((uint8_t *)gm_ptr(&gm, 100, 1))[0], 0);
	gm_destroy(&gm);

	/* Above LOWMEM_LIMIT (2.75 GiB) RAM continues at 4 GiB; nothing maps the hole, and no range crosses it. */
	CHECK_EQ(gm_init(&gm, 4 * GiB), 0);
	CHECK_EQ(gm.nr_regions, 2);
	CHECK_EQ(gm_lowmem_end(&gm), LOWMEM_LIMIT);
	CHECK(gm_ptr(&gm, LOWMEM_LIMIT - 1, 1) != NULL);
	CHECK(gm_ptr(&gm, LOWMEM_LIMIT, 1) == NULL);
	CHECK(gm_ptr(&gm, PCI_ECAM_BASE, 4) == NULL);
	CHECK(gm_ptr(&gm, HIGHMEM_BASE, 1) == gm.host + LOWMEM_LIMIT);
	CHECK(gm_ptr(&gm, HIGHMEM_BASE + 4 * GiB - LOWMEM_LIMIT - 1, 1) != NULL);
	CHECK(gm_ptr(&gm, HIGHMEM_BASE + 4 * GiB - LOWMEM_LIMIT, 1) == NULL);
	CHECK(gm_ptr(&gm, LOWMEM_LIMIT - 4, 8) == NULL);
	gm_destroy(&gm);
}

static struct kvm_cpuid2 *fake_supported(void)
{
	static const struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0xd },
		{ .function = 1, .eax = 0x806f8, .ebx = 0xff0800, .ecx = 0xfefa3203, .edx = 0x178bfbff },
		{ .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x121 },
		{ .function = 4, .index = 3, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x163 },
		{ .function = 7, .ebx = 0xffffffff, .ecx = 0xffffffff, .edx = 0xffffffff },
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 1, .ebx = 2, .ecx = 0x100 },
		/* no sub-leaf 1: the host's leaf describes its SMT level only */
		{ .function = 0xd, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 7, .ebx = 0x340 },
		{ .function = 0x1f, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 1 },
		{ .function = KVM_CPUID_SIGNATURE, .eax = 0x40000001 },
		{ .function = KVM_CPUID_FEATURES, .eax = 0xffffffff, .edx = 1 },
		{ .function = 0x80000001, .ecx = 0xffffffff },
		{ .function = 0x80000002 }, /* the brand string: KVM zeroes it */
		{ .function = 0x80000003 },
		{ .function = 0x80000004, .eax = 0x20202020 }, /* one KVM did not zero: kept */
		{ .function = 0x80000008, .eax = 0x3028, .ecx = 0x7003 },
	};
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(e));
	c->nent = sizeof(e) / sizeof(e[0]);
	memcpy(c->entries, e, sizeof(e));
	return c;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static void cpuid_shaping(void)
{
	struct kvm_cpuid2 *sup = fake_supported();
	struct cpuid_options o = { .nr_cpus = 3, .tsc_deadline = true };
	struct kvm_cpuid2 *c = cpuid_build(sup, 2, &o);
	const struct kvm_cpuid_entry2 *e = find(c, 1, 0);
	CHECK_EQ(e->ebx >> 24, 2);          /* APIC ID */
	CHECK_EQ((e->ebx >> 16) & 0xff, 3); /* logical processors */
	CHECK(e->ecx & (1u << 31));          /* hypervisor */
	CHECK(e->ecx & (1u << 26));          /* XSAVE kept on real hardware */
	CHECK(e->ecx & (1u << 24));          /* TSC deadline offered */
	e = find(c, 0xb, 1);
	CHECK(e->eax == 2 && e->ebx == 3 && e->edx == 2 && e->ecx == 0x201);
	e = find(c, 0xb, 0);
	CHECK(e->ebx == 1 && e->edx == 2 && e->ecx == 0x100);
	e = find(c, 0xb, 2);
	CHECK(e && e->eax == 0 && e->ebx == 0 && e->ecx == 2 && e->edx == 2); /* the end of the levels */
	CHECK(find(c, 0x1f, 0) == NULL);
	e = find(c, 4, 3);
	CHECK_EQ(e->eax >> 26, 2);
	CHECK_EQ((e->eax >> 14) & 0xfff, 2); /* L3 shared by all three */
	e = find(c, 4, 0);
	CHECK_EQ((e->eax >> 14) & 0xfff, 0);
	e = find(c, KVM_CPUID_SIGNATURE, 0);
	CHECK(!memcmp(&e->ebx, "KVMK", 4) && !memcmp(&e->ecx, "VMKV", 4) && !memcmp(&e->edx, "M\0\0\0", 4));
	e = find(c, KVM_CPUID_FEATURES, 0);
	CHECK(e->eax & (1u << KVM_FEATURE_CLOCKSOURCE2));
	CHECK(!(e->eax & (1u << KVM_FEATURE_MSI_EXT_DEST_ID)));
	CHECK(!(e->eax & (1u << KVM_FEATURE_HC_MAP_GPA_RANGE)));
	CHECK_EQ(e->edx, 0);
	e = find(c, 0x80000008, 0);
	CHECK_EQ(e->ecx & 0xff, 2);
	e = find(c, 0x80000001, 0);
	CHECK(!(e->ecx & (1u << 22))); /* TOPOEXT hidden */
	unsigned r[4];
	cpuid_host(0x80000000, r);
	if (r[0] >= 0x80000004) {
		cpuid_host(0x80000003, r);
		e = find(c, 0x80000003, 0);
		CHECK(e->eax == r[0] && e->ebx == r[1] && e->ecx == r[2] && e->edx == r[3]); /* the host's name */
	}
	e = find(c, 0x80000004, 0);
	CHECK(e->eax == 0x20202020 && e->ebx == 0);
	free(c);

	o = (struct cpuid_options){ .nr_cpus = 1, .emulated_host = true };
	c = cpuid_build(sup, 0, &o);
	e = find(c, 1, 0);
	CHECK(!(e->ecx & ((1u << 26) | (1u << 27) | (1u << 28) | (1u << 23) | (1u << 13))));
	CHECK(e->ecx & (1u << 0)); /* SSE3 untouched */
	CHECK(!(e->ecx & (1u << 24))); /* no TSC deadline unless KVM offers it */
	e = find(c, 7, 0);
	CHECK(!(e->ebx & ((1u << 5) | (1u << 20) | (1u << 16))));
	CHECK(e->ebx & (1u << 0)); /* FSGSBASE untouched */
	e = find(c, 0xd, 0);
	CHECK(e->eax == 0 && e->ebx == 0);
	CHECK_EQ(cpuid_phys_bits(sup), 0x28);
	free(c);
	free(sup);
}

/* Exit handlers against a hand-made kvm_run. */
static struct vm *exit_vm;
static struct vcpu exit_vcpu;
static union {
	struct kvm_run run;
	uint8_t bytes[8192];
} run_page;
static uint8_t last_port_byte;
static unsigned port_writes;

static uint64_t port_read(void *o, uint64_t off, unsigned size)
{
	(void)o, (void)size;
	return 0xa0 + off;
}
static void port_write(void *o, uint64_t off, unsigned size, uint64_t v)
{
	(void)o, (void)off, (void)size;
	last_port_byte = (uint8_t)v;
	port_writes++;
}
static const struct io_ops port_ops = { port_read, port_write };

static void exit_setup(void)
{
	exit_vm = fake_vm(0);
	exit_vm->run_size = sizeof(run_page);
	bus_add(&exit_vm->pio, 0x500, 4, &port_ops, NULL);
	memset(&run_page, 0, sizeof(run_page));
	exit_vcpu = (struct vcpu){ .vm = exit_vm, .fd = -1, .run = &run_page.run };
}

static void exit_table(void)
{
	exit_setup();
	struct kvm_run *run = &run_page.run;
	/* rep outsb of 3 bytes */
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = 1;
	run->io.port = 0x501;
	run->io.count = 3;
	run->io.data_offset = 4096;
	memcpy(run_page.bytes + 4096, "xyz", 3);
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 0);
	CHECK_EQ(port_writes, 3);
	CHECK_EQ(last_port_byte, 'z');
	/* inw from a handled and from an unhandled port */
	run->io.direction = KVM_EXIT_IO_IN;
	run->io.size = 2;
	run->io.count = 1;
	run->io.port = 0x502;
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 0);
	CHECK_EQ(run_page.bytes[4096], 0xa2);
	run->io.port = 0x600;
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 0);
	CHECK_EQ(run_page.bytes[4096], 0xff);
	CHECK_EQ(stop_reason(exit_vm), VM_RUNNING);

	/* A data area outside the run page: stop, do not touch memory. */
	run->io.data_offset = sizeof(run_page) - 1;
	capture_begin();
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 1);
	CHECK(strstr(capture_end(), "malformed port I/O exit") != NULL);
	CHECK_EQ(stop_reason(exit_vm), VM_STOP_ERROR);
	clear_stop(exit_vm);
	run->io.data_offset = 4096;
	run->io.size = 3;
	capture_begin();
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 1);
	capture_end();
	clear_stop(exit_vm);

	/* MMIO to nowhere reads all-ones; an impossible length stops the VM. */
	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = 0xd0000000;
	run->mmio.len = 4;
	run->mmio.is_write = 0;
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 0);
	uint32_t v;
	memcpy(&v, run->mmio.data, 4);
	CHECK_EQ(v, 0xffffffff);
	run->mmio.len = 9;
	capture_begin();
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 1);
	capture_end();
	clear_stop(exit_vm);

	/* Crashes stop the VM with a message and a (here unavailable) register dump. */
	static const struct {
		uint32_t reason;
		const char *msg;
	} crashes[] = {
		{ KVM_EXIT_SHUTDOWN, "triple fault" },
		{ KVM_EXIT_INTERNAL_ERROR, "KVM instruction emulation failed" },
		{ KVM_EXIT_FAIL_ENTRY, "could not enter the guest" },
		{ 1000, "unexpected KVM exit reason 1000" },
		{ KVM_EXIT_DEBUG, "unexpected KVM exit reason 4" },
	};
	for (size_t i = 0; i < sizeof(crashes) / sizeof(crashes[0]); i++) {
		run->exit_reason = crashes[i].reason;
		run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
		run->internal.ndata = 100; /* more than the array holds: must be bounded */
		capture_begin();
		CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 1);
		const char *err = capture_end();
		CHECK(strstr(err, crashes[i].msg) != NULL);
		CHECK(strstr(err, "registers unavailable") != NULL);
		CHECK_EQ(stop_reason(exit_vm), VM_STOP_CRASH);
		clear_stop(exit_vm);
	}
	run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	run->system_event.type = KVM_SYSTEM_EVENT_RESET;
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 1);
	CHECK_EQ(stop_reason(exit_vm), VM_STOP_RESET);
	clear_stop(exit_vm);
	run->exit_reason = KVM_EXIT_INTR;
	CHECK_EQ(vcpu_handle_exit(&exit_vcpu), 0);
	fake_vm_free(exit_vm);
}

/*
 * Adaptive busy-polling of an I/O thread: events that come soon after the
 * thread slept open its window; while it spins, poll() finds work nobody
 * signalled, with the device's notifications off; after the window they are
 * back on; a sleep longer than the maximum closes the window again.
 */
struct spin_dev {
	int efd;
	atomic_uint events, polled;
	atomic_bool work, notify_on, polled_with_notify_on;
};

static void spin_event(void *o)
{
	struct spin_dev *d = o;
	uint64_t n;
	(void)!read(d->efd, &n, sizeof(n));
	atomic_fetch_add(&d->events, 1);
}

static bool spin_poll(void *o)
{
	struct spin_dev *d = o;
	if (!atomic_exchange(&d->work, false))
		return false;
	if (atomic_load(&d->notify_on))
		atomic_store(&d->polled_with_notify_on, true);
	atomic_fetch_add(&d->polled, 1);
	return true;
}

static bool spin_notify(void *o, bool on)
{
	struct spin_dev *d = o;
	atomic_store(&d->notify_on, on);
	return false;
}

/* Wait up to ms for *v to reach want. */
static bool wait_for(atomic_uint *v, unsigned want, unsigned ms)
{
	for (unsigned i = 0; i < ms * 10 && atomic_load(v) < want; i++)
		usleep(100);
	return atomic_load(v) >= want;
}

static void iothread_polling(void)
{
	enum { MAX_NS = 200 * 1000 * 1000 }; /* long, so that the test's own delays stay well inside it */
	static struct spin_dev d;
	d.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	atomic_store(&d.notify_on, true);
	struct iothread t;
	CHECK_EQ(iothread_init(&t, "test-spin"), 0);
	CHECK_EQ(iothread_add(&t, d.efd, spin_event, &d), 0);
	CHECK_EQ(iothread_set_poll(&t, MAX_NS, spin_poll, spin_notify, &d), 0);
	CHECK_EQ(iothread_start(&t), 0);
	CHECK_EQ(iothread_set_poll(&t, MAX_NS, spin_poll, spin_notify, &d), -EBUSY);
	/* Window 0: work nobody signals stays undone. */
	atomic_store(&d.work, true);
	usleep(20 * 1000);
	CHECK_EQ(atomic_load(&d.polled), 0);
	atomic_store(&d.work, false);
	/* Sixteen quick events: the window doubles from 4 µs on each (to 131 ms). */
	uint64_t one = 1;
	for (unsigned i = 1; i <= 16; i++) {
		CHECK_EQ(write(d.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
		CHECK(wait_for(&d.events, i, 1000));
	}
	/* Spinning now: unsignalled work is found, with notifications off. */
	atomic_store(&d.work, true);
	CHECK(wait_for(&d.polled, 1, 1000));
	CHECK(!atomic_load(&d.polled_with_notify_on));
	/* The window runs out: notifications on again before the thread sleeps. */
	for (unsigned i = 0; i < 5000 && !atomic_load(&d.notify_on); i++)
		usleep(100);
	CHECK(atomic_load(&d.notify_on));
	/* Counted after poll() returned, before notify(true): ordered by notify_on. */
	CHECK(atomic_load(&t.poll_hits) >= 1);
	/* Idle for longer than the maximum: the next event closes the window. */
	usleep(MAX_NS / 1000 + 50 * 1000);
	CHECK_EQ(write(d.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	CHECK(wait_for(&d.events, 17, 1000));
	usleep(1000);
	atomic_store(&d.work, true);
	usleep(20 * 1000);
	CHECK_EQ(atomic_load(&d.polled), 1);
	iothread_destroy(&t);
	close(d.efd);
}

int main(void)
{
	RUN("core", guest_mem_bounds);
	RUN("core", cpuid_shaping);
	RUN("core", exit_table);
	RUN("core", iothread_polling);
	UNIT_EXIT();
}
