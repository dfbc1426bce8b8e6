// SPDX-License-Identifier: MIT
/*
 * keel trace selftest (hidden; for tests and benchmarks): the tracing
 * machinery of keel run without a VM.  It sets up the trace memory and the
 * runtime socket exactly as keel run does and serves readers from its main
 * loop, while emitter threads write TEST_SEQ records at full rate when
 * told.  Commands on stdin, one per line:
 *   go      start the emitters (each writes --records records, then stops)
 *   stats   print "STATS written=... entries=... consumed=... overrun=... dropped=... cleared=..."
 *   quit    (or end of input) wait for the emitters, print STATS, exit
 * It prints "READY NAME" once readers can connect and "DONE N" when the
 * emitters have finished.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/config.h"
#include "report.h"
#include "runtime.h"
#include "trace.h"
#include "view.h"
#include "base/util.h"

struct emitter {
	pthread_t thread;
	unsigned id;
	uint64_t records;
	bool joined;
};

static void *emit_thread(void *arg)
{
	struct emitter *e = arg;
	char name[16];
	snprintf(name, sizeof(name), "emit%u", e->id);
	trace_thread_start(name);
	for (uint64_t n = 0; n < e->records; n++)
		TRACE(TEST_SEQ, e->id, n, trace_test_check(e->id, n));
	trace_thread_stop();
	return NULL;
}

static void print_stats(const struct trace_view *v)
{
	struct trace_totals t;
	trace_view_totals(v, -1, &t);
	printf("STATS written=%" PRIu64 " entries=%" PRIu64 " consumed=%" PRIu64 " overrun=%" PRIu64
	       " dropped=%" PRIu64 " cleared=%" PRIu64 " no_buffer=%" PRIu64 "\n",
	       t.sum.written, t.sum.entries, t.sum.consumed, t.sum.overrun, t.sum.dropped, t.sum.cleared, t.no_ring);
	fflush(stdout);
}

int trace_cmd_selftest(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "records", required_argument, NULL, 'r' },
		{ "buffer-size", required_argument, NULL, 'b' },
		{ "mode", required_argument, NULL, 'm' },
		{ "events", required_argument, NULL, 'e' },
		{ 0 },
	};
	const char *name = "selftest", *events = "test:seq";
	uint64_t threads = 2, records = 100000, bytes = 64 * KiB;
	bool stop_mode = false;
	optind = 1;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
		int bad = 0;
		switch (c) {
		case 'n': name = optarg; bad = !trace_valid_name(optarg, strlen(optarg)); break;
		case 't': bad = parse_uint(optarg, 1, 64, &threads); break;
		case 'r': bad = parse_uint(optarg, 0, UINT64_MAX / 2, &records); break;
		case 'b': bad = parse_size(optarg, KiB, &bytes); break;
		case 'm':
			stop_mode = !strcmp(optarg, "stop");
			bad = !stop_mode && strcmp(optarg, "overwrite");
			break;
		case 'e': events = optarg; break;
		default: bad = 1; break;
		}
		if (bad) {
			fprintf(stderr, "keel trace selftest: bad option %s\n", argv[optind - 1]);
			return KEEL_EXIT_USAGE;
		}
	}
	struct trace_options o = {
		.name = name,
		.nr_rings = (unsigned)threads + 2,
		.buffer_bytes = bytes,
		.events = events,
		.stop_when_full = stop_mode,
	};
	if (trace_init(&o))
		return KEEL_EXIT_ERROR;
	int status = KEEL_EXIT_ERROR;
	struct trace_view self;
	char err[160];
	if (trace_view_map_fd(&self, trace_memfd(), err, sizeof(err))) {
		fprintf(stderr, "keel trace selftest: %s\n", err);
		goto fini;
	}
	struct emitter *em = calloc(threads, sizeof(*em));
	if (!em)
		goto close_view;
	printf("READY %s\n", trace_server_name() ? trace_server_name() : "(no socket)");
	fflush(stdout);
	bool started = false, done_said = false, quit = false;
	char line[64];
	size_t ll = 0;
	while (!quit) {
		struct pollfd p[2] = {
			{ .fd = STDIN_FILENO, .events = POLLIN },
			{ .fd = trace_server_fd(), .events = POLLIN },
		};
		if (poll(p, 2, started && !done_said ? 10 : -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN)
			trace_server_service();
		if (started && !done_said) {
			bool all = true;
			for (uint64_t i = 0; i < threads; i++) {
				if (!em[i].joined && pthread_tryjoin_np(em[i].thread, NULL) == 0)
					em[i].joined = true;
				all = all && em[i].joined;
			}
			if (all) {
				printf("DONE %" PRIu64 "\n", threads * records);
				fflush(stdout);
				done_said = true;
			}
		}
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t n = read(STDIN_FILENO, line + ll, sizeof(line) - 1 - ll);
		if (n <= 0) {
			quit = true;
			break;
		}
		ll += (size_t)n;
		line[ll] = 0;
		char *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			if (!strcmp(line, "go") && !started) {
				for (uint64_t i = 0; i < threads; i++) {
					em[i] = (struct emitter){ .id = (unsigned)i, .records = records };
					if (pthread_create(&em[i].thread, NULL, emit_thread, &em[i])) {
						fprintf(stderr, "keel trace selftest: cannot start emitters\n");
						threads = i;
						break;
					}
				}
				started = true;
			} else if (!strcmp(line, "stats")) {
				print_stats(&self);
			} else if (!strcmp(line, "quit")) {
				quit = true;
			}
			size_t used = (size_t)(nl + 1 - line);
			memmove(line, nl + 1, ll - used + 1);
			ll -= used;
		}
		if (ll == sizeof(line) - 1)
			ll = 0; /* an overlong line: dropped */
	}
	if (started)
		for (uint64_t i = 0; i < threads; i++)
			if (!em[i].joined)
				pthread_join(em[i].thread, NULL);
	print_stats(&self);
	status = KEEL_EXIT_OK;
	free(em);
close_view:
	trace_view_close(&self);
fini:
	trace_fini();
	return status;
}
