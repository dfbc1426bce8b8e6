// SPDX-License-Identifier: MIT
/*
 * trace_bench: what tracing costs (run through bench/trace).
 *
 *   disabled   a loop with a disabled TRACE() against the same loop without it
 *   enabled    records written by TRACE() (overwrite mode, no reader)
 *   exits      keel's VM-exit handling (exits.c's table, the UART's line
 *              status register, as the test guest's console loop reads it)
 *              with tracing off against every event enabled, alternating
 *   marker F   the peer: write(2) of a short event to ftrace's trace_marker F
 *
 * Each figure is the median of RUNS runs (default 21); ns per event or exit.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake.h"
#include "vmm/platform.h"
#include "trace/trace.h"
#include "trace/view.h"
#include "vmm/vcpu.h"

static int runs = 21;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

#define BARRIER() __asm__ volatile("" ::: "memory")

static __attribute__((noinline)) double loop_empty(uint64_t n)
{
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++)
		BARRIER(); /* the enable byte is loaded again every iteration, as in real code */
	return (double)(now_ns() - t0) / (double)n;
}

static __attribute__((noinline)) double loop_trace(uint64_t n)
{
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		TRACE(TEST_SEQ, 1, i, i);
		BARRIER();
	}
	return (double)(now_ns() - t0) / (double)n;
}

static struct vm *vm;
static struct vcpu vcpu;
static union {
	struct kvm_run run;
	uint8_t bytes[4096];
} page;

static __attribute__((noinline)) double loop_exits(uint64_t n)
{
	struct kvm_run *run = &page.run;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		run->exit_reason = KVM_EXIT_IO;
		run->io.direction = KVM_EXIT_IO_IN;
		run->io.size = 1;
		run->io.port = 0x3fd; /* COM1 line status */
		run->io.count = 1;
		run->io.data_offset = 2048;
		(void)vcpu_handle_exit(&vcpu);
	}
	return (double)(now_ns() - t0) / (double)n;
}

static void set_all(struct trace_view *v, bool on)
{
	for (int i = 0; i < TE_COUNT; i++)
		trace_set_enabled(v->ctl, i, on);
}

static int bench_marker(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	double *v = calloc((size_t)runs, sizeof(double));
	const uint64_t n = 20000;
	char msg[64];
	int len = snprintf(msg, sizeof(msg), "keel-bench exit reason=2 port=0x3fd\n");
	for (int r = 0; r < runs; r++) {
		uint64_t t0 = now_ns();
		for (uint64_t i = 0; i < n; i++)
			if (write(fd, msg, (size_t)len) != len) {
				perror("write trace_marker");
				return 1;
			}
		v[r] = (double)(now_ns() - t0) / (double)n;
	}
	printf("RESULT ftrace_marker %.1f\n", median(v, runs));
	free(v);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (getenv("RUNS"))
		runs = atoi(getenv("RUNS")) | 1;
	if (runs < 1)
		runs = 1;
	if (argc == 3 && !strcmp(argv[1], "marker"))
		return bench_marker(argv[2]);
	log_level = LOG_QUIET;
	double *a = calloc((size_t)runs, sizeof(double)), *b = calloc((size_t)runs, sizeof(double)),
	       *d = calloc((size_t)runs, sizeof(double));

	/* 1. Disabled: nothing is initialised, as in any keel that nobody traces. */
	const uint64_t n1 = 20000000;
	for (int r = 0; r < runs; r++) {
		a[r] = loop_empty(n1);
		b[r] = loop_trace(n1);
		d[r] = b[r] - a[r];
	}
	printf("RESULT disabled_loop %.2f\nRESULT empty_loop %.2f\nRESULT disabled %.2f\n", median(b, runs),
	       median(a, runs), median(d, runs));

	/* 2. Enabled: records into this thread's ring, overwriting (nobody reads). */
	struct trace_options o = { .name = "bench", .nr_rings = 4, .buffer_bytes = 1 << 20, .no_socket = true };
	if (trace_init(&o))
		return 1;
	struct trace_view v;
	char err[160];
	if (trace_view_map_fd(&v, trace_memfd(), err, sizeof(err))) {
		fprintf(stderr, "trace_bench: %s\n", err);
		return 1;
	}
	trace_set_enabled(v.ctl, TE_TEST_SEQ, true);
	const uint64_t n2 = 4000000;
	(void)loop_trace(n2); /* fault the ring in */
	for (int r = 0; r < runs; r++)
		a[r] = loop_trace(n2) - loop_empty(n2);
	printf("RESULT enabled %.2f\n", median(a, runs));
	trace_set_enabled(v.ctl, TE_TEST_SEQ, false);

	/* 3. VM-exit handling, tracing off and every event on, alternating. */
	vm = fake_vm(64 << 20);
	static struct vm_config cfg = { .cpus = 1, .debug_exit = true };
	vm->cfg = &cfg;
	vm->run_size = sizeof(page);
	if (platform_create(vm))
		return 1;
	vcpu = (struct vcpu){ .vm = vm, .fd = -1, .run = &page.run };
	const uint64_t n3 = 2000000;
	set_all(&v, true);
	(void)loop_exits(n3);
	for (int r = 0; r < runs; r++) {
		set_all(&v, false);
		a[r] = loop_exits(n3);
		set_all(&v, true);
		b[r] = loop_exits(n3);
		d[r] = b[r] - a[r];
	}
	set_all(&v, false);
	printf("RESULT exit_off %.1f\nRESULT exit_on %.1f\nRESULT exit_delta %.1f\n", median(a, runs), median(b, runs),
	       median(d, runs));
	struct trace_totals t;
	trace_view_totals(&v, -1, &t);
	printf("RESULT records_written %llu\n", (unsigned long long)t.sum.written);
	platform_destroy(vm);
	fake_vm_free(vm);
	trace_view_close(&v);
	trace_fini();
	free(a);
	free(b);
	free(d);
	return 0;
}
