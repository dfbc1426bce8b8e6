// SPDX-License-Identifier: MIT
/*
 * keel trace record: save a running VM's trace to a file.
 * keel trace report: summary tables of a saved trace (or of a tracefs VM
 * directory) and a latency histogram as SVG.
 *
 * Both use the text format of the trace file, so `cat trace > f` and
 * `keel trace record` make the same kind of file, and grep works on both.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/config.h"
#include "cmd.h"
#include "events.h"
#include "report.h"
#include "runtime.h"
#include "view.h"
#include "base/util.h"

/* ---- record ---- */

static volatile sig_atomic_t record_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	record_stop = 1;
}

static void record_usage(FILE *out)
{
	fprintf(out, "usage: keel trace record [options] VM\n\n"
		     "Save the trace of the running VM named VM (see ls on a keel tracefs mount, or\n"
		     "$XDG_RUNTIME_DIR/keel) to a file, consuming it as trace_pipe does, until the VM\n"
		     "exits, Ctrl-C, or --duration.  keel trace report reads the file.\n\n"
		     "options:\n"
		     "  -o, --output FILE     where to write (default: VM.trace)\n"
		     "  -e, --events LIST     enable these events while recording (set_event syntax:\n"
		     "                        vcpu:exit,block:*); restored afterwards\n"
		     "  -d, --duration SECS   stop after this many seconds\n"
		     "  -h, --help            show this help\n");
}

static int flush_text(int fd, struct sbuf *b)
{
	int r = write_full(fd, b->p, b->len);
	sb_consume(b, b->len);
	return r;
}

int trace_cmd_record(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "events", required_argument, NULL, 'e' },
		{ "duration", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *output = NULL, *events = NULL;
	uint64_t duration = 0;
	optind = 1;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":o:e:d:h", longopts, NULL)) != -1;) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'e': events = optarg; break;
		case 'd':
			if (parse_uint(optarg, 1, 86400 * 365, &duration)) {
				fprintf(stderr, "keel trace record: --duration: '%s' is not a number of seconds\n", optarg);
				return KEEL_EXIT_USAGE;
			}
			break;
		case 'h': record_usage(stdout); return KEEL_EXIT_OK;
		case ':':
			fprintf(stderr, "keel trace record: %s: needs a value (see keel trace record --help)\n",
				argv[optind - 1]);
			return KEEL_EXIT_USAGE;
		default:
			fprintf(stderr, "keel trace record: %s: unknown option (see keel trace record --help)\n",
				argv[optind - 1]);
			return KEEL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "keel trace record: needs the name of one VM (see keel trace record --help)\n");
		return KEEL_EXIT_USAGE;
	}
	const char *vm = argv[optind];
	if (!trace_valid_name(vm, strlen(vm))) {
		fprintf(stderr, "keel trace record: '%s' is not a VM name\n", vm);
		return KEEL_EXIT_USAGE;
	}
	const char *why;
	int dir_fd = trace_runtime_dir_open(false, &why);
	if (dir_fd < 0) {
		fprintf(stderr, "keel trace record: no VM named %s is running (runtime directory: %s)\n", vm,
			strerror(-dir_fd));
		return KEEL_EXIT_ERROR;
	}
	int status = KEEL_EXIT_ERROR;
	char file[TRACE_NAME_MAX + 16], err[200];
	snprintf(file, sizeof(file), "%s%s", vm, TRACE_SOCK_SUFFIX);
	struct trace_view v;
	if (trace_view_connect(&v, dir_fd, file, err, sizeof(err))) {
		fprintf(stderr, "keel trace record: no VM named %s is running (%s)\n", vm, err);
		goto close_dir;
	}
	uint8_t saved[TE_COUNT];
	for (unsigned i = 0; i < TE_COUNT; i++)
		saved[i] = trace_get_enabled(v.ctl, (int)i);
	if (events && trace_set_events(v.ctl, events, false, err, sizeof(err))) {
		fprintf(stderr, "keel trace record: --events: %s\n", err);
		status = KEEL_EXIT_USAGE;
		goto close_view;
	}
	char default_out[TRACE_NAME_MAX + 16];
	snprintf(default_out, sizeof(default_out), "%s.trace", vm);
	if (!output)
		output = default_out;
	int fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "keel trace record: %s: %s\n", output, strerror(errno));
		goto restore;
	}
	struct trace_cursor cur;
	if (trace_cursor_init(&cur, &v)) {
		fprintf(stderr, "keel trace record: out of memory\n");
		goto close_out;
	}
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	record_stop = 0;

	struct sbuf b = { 0 };
	sb_printf(&b, "# keel trace record: VM %s (pid %d)\n", v.name, v.pid);
	sb_printf(&b, "#                 THREAD-TID  BUF#   TIMESTAMP  EVENT\n");
	uint64_t deadline = duration ? now_ns() + duration * 1000000000ull : 0, records = 0;
	bool gone = false;
	int werr = 0;
	for (;;) {
		struct trace_rec rec;
		size_t got = 0;
		trace_cursor_report_losses(&v, &cur, -1, &b);
		while (got < 65536 && trace_cursor_take(&v, &cur, -1, &rec)) {
			trace_view_format(&v, &rec, &b);
			got++;
		}
		records += got;
		if (b.len >= 65536 || (!got && b.len))
			werr = werr ? werr : flush_text(fd, &b);
		if (got)
			continue;
		if (gone || record_stop || (deadline && now_ns() >= deadline))
			break;
		gone = trace_view_gone(&v); /* one more pass drains what it wrote last */
		if (!gone) {
			struct timespec ts = { 0, 5 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	trace_cursor_report_losses(&v, &cur, -1, &b);
	struct sbuf st = { 0 };
	trace_view_stats_text(&v, -1, &st);
	sb_printf(&b, "#\n# stats at the end of the recording:\n");
	for (char *line = st.p, *nl; line && *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			break;
		sb_printf(&b, "# %.*s\n", (int)(nl - line), line);
	}
	sb_free(&st);
	werr = werr ? werr : flush_text(fd, &b);
	sb_free(&b);
	trace_cursor_free(&cur);
	if (werr) {
		fprintf(stderr, "keel trace record: writing %s: %s\n", output, strerror(-werr));
	} else {
		struct trace_totals t;
		trace_view_totals(&v, -1, &t);
		fprintf(stderr, "keel trace record: %" PRIu64 " records from %s in %s (%s; lost overall: %" PRIu64
				" overwritten, %" PRIu64 " dropped)\n",
			records, v.name, output, gone ? "the VM exited" : "stopped", t.sum.overrun, t.sum.dropped);
		status = KEEL_EXIT_OK;
	}
close_out:
	if (close(fd) < 0 && status == KEEL_EXIT_OK) {
		fprintf(stderr, "keel trace record: %s: %s\n", output, strerror(errno));
		status = KEEL_EXIT_ERROR;
	}
restore:
	if (events && !trace_view_gone(&v))
		for (unsigned i = 0; i < TE_COUNT; i++)
			trace_set_enabled(v.ctl, (int)i, saved[i]);
close_view:
	trace_view_close(&v);
close_dir:
	close(dir_fd);
	return status;
}

/* ---- report ---- */

static struct series *series_get(struct report *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->s[i].name, name))
			return &r->s[i];
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct series *s = realloc(r->s, cap * sizeof(*s));
		if (!s)
			return NULL;
		r->s = s;
		r->cap = cap;
	}
	struct series *s = &r->s[r->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

static void series_add(struct series *s, uint64_t v)
{
	if (!s)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		uint64_t *p = realloc(s->v, cap * sizeof(*p));
		if (!p)
			return;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	s->sum += v;
}

/* The value of key in "k1=v1 k2=v2 ...", copied to out. */
static bool field(const char *fields, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);
	for (const char *p = fields; p && *p;) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			p += kl + 1;
			size_t n = strcspn(p, " \n");
			if (n >= len)
				n = len - 1;
			memcpy(out, p, n);
			out[n] = 0;
			return true;
		}
		p = strchr(p, ' ');
	}
	return false;
}

static bool field_u64(const char *fields, const char *key, uint64_t *v)
{
	char buf[32];
	return field(fields, key, buf, sizeof(buf)) && !parse_uint(buf, 0, UINT64_MAX, v);
}

void trace_report_line(struct report *r, const char *line)
{
	const char *p = line;
	while (*p == ' ' || *p == '#')
		p++;
	/* A stats table's total row: "total - - - written entries consumed overrun dropped cleared". */
	unsigned long long t[6];
	if (!strncmp(p, "total ", 6) &&
	    sscanf(p, "total - - - %llu %llu %llu %llu %llu %llu", &t[0], &t[1], &t[2], &t[3], &t[4], &t[5]) == 6) {
		for (int i = 0; i < 6; i++)
			r->totals[i] = t[i];
		r->have_totals = true;
		return;
	}
	if (!strncmp(line, "# tracer: nop (keel VM ", 23) || !strncmp(line, "# keel trace record: VM ", 24)) {
		const char *s = strstr(line, "VM ") + 3;
		size_t n = strcspn(s, " ,)\n");
		if (n <= TRACE_NAME_MAX) {
			memcpy(r->vm, s, n);
			r->vm[n] = 0;
		}
		return;
	}
	if (line[0] == '#' || line[0] == '\n' || !line[0])
		return;
	if (strstr(line, "[LOST ")) {
		unsigned long long n;
		const char *l = strstr(line, "[LOST ");
		if (sscanf(l, "[LOST %llu", &n) == 1)
			r->lost_lines += n;
		return;
	}
	/* THREAD-TID [BUF] SECONDS: group:event: fields */
	char group[32], name[32];
	unsigned buf;
	int off = 0;
	if (sscanf(line, " %*s [%u] %*u.%*u: %31[^:]:%31[^:]: %n", &buf, group, name, &off) != 3 || !off) {
		r->unparsed++;
		return;
	}
	const char *fields = line + off;
	int id = trace_event_find(group, name);
	if (id < 0) {
		r->unparsed++;
		return;
	}
	r->lines++;
	r->ev_count[id]++;
	char key[96], s1[32], s2[32];
	uint64_t v;
	if (id == TE_VCPU_EXIT && field(fields, "reason", s1, sizeof(s1)) && field_u64(fields, "handle_ns", &v)) {
		snprintf(key, sizeof(key), "exit %s", s1);
		series_add(series_get(r, key), v);
		/* Where: the port, or the MMIO page (the device register block); addr is hexadecimal. */
		char hex[32], *end;
		if (field(fields, "addr", hex, sizeof(hex)) && !strncmp(hex, "0x", 2)) {
			uint64_t a = strtoull(hex + 2, &end, 16);
			if (strcmp(s1, "io"))
				a &= ~0xfffull;
			snprintf(key, sizeof(key), "at %s 0x%llx", s1, (unsigned long long)a);
			if (end != hex + 2 && !*end)
				series_add(series_get(r, key), v);
		}
	} else if (id == TE_BLOCK_COMPLETE && field(fields, "layer", s1, sizeof(s1)) &&
		   field(fields, "op", s2, sizeof(s2)) && field_u64(fields, "latency_ns", &v)) {
		snprintf(key, sizeof(key), "block %s %s", s1, s2);
		series_add(series_get(r, key), v);
		snprintf(key, sizeof(key), "block %s all", s1);
		series_add(series_get(r, key), v);
	}
}

static void fmt_ns(uint64_t ns, char *buf, size_t len);

/* The busiest places VM exits go to (port, or MMIO page), most exits first: at most 12. */
static void report_places(const struct report *r, FILE *out, uint64_t total_n)
{
	const struct series *top[12];
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct series *s = &r->s[i];
		if (strncmp(s->name, "at ", 3))
			continue;
		size_t k = n < ARRAY_SIZE(top) ? n++ : ARRAY_SIZE(top);
		if (k == ARRAY_SIZE(top)) {
			if (s->n <= top[k - 1]->n)
				continue;
			k--;
		}
		while (k > 0 && top[k - 1]->n < s->n) {
			top[k] = top[k - 1];
			k--;
		}
		top[k] = s;
	}
	if (!n)
		return;
	fprintf(out, "\nVM exits by place (port, or MMIO page), the %zu busiest\n", n);
	fprintf(out, "  %-22s %10s %7s %12s %10s\n", "place", "count", "share", "total", "mean");
	for (size_t i = 0; i < n; i++) {
		char tot[24], mean[24];
		fmt_ns(top[i]->sum, tot, sizeof(tot));
		fmt_ns(top[i]->n ? top[i]->sum / top[i]->n : 0, mean, sizeof(mean));
		fprintf(out, "  %-22s %10zu %6.1f%% %12s %10s\n", top[i]->name + 3, top[i]->n,
			total_n ? 100.0 * (double)top[i]->n / (double)total_n : 0.0, tot, mean);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static uint64_t pct(const struct series *s, double p)
{
	if (!s->n)
		return 0;
	size_t k = (size_t)((p / 100.0) * (double)s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

static void fmt_ns(uint64_t ns, char *buf, size_t len)
{
	if (ns < 10000)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 10000000000ull)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.1f s", (double)ns / 1e9);
}

static int cmp_series_count(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	return x->n > y->n ? -1 : x->n < y->n;
}

/* Sort each series' values, and the series by count. */
static void finish(struct report *r)
{
	if (r->sorted)
		return;
	for (size_t i = 0; i < r->n; i++)
		if (r->s[i].n)
			qsort(r->s[i].v, r->s[i].n, sizeof(uint64_t), cmp_u64);
	if (r->n)
		qsort(r->s, r->n, sizeof(*r->s), cmp_series_count);
	r->sorted = true;
}

uint64_t trace_report_percentile(struct report *r, const char *series, double p)
{
	finish(r);
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->s[i].name, series))
			return pct(&r->s[i], p);
	return 0;
}

void trace_report_free(struct report *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->s[i].v);
	free(r->s);
	memset(r, 0, sizeof(*r));
}

void trace_report_print(struct report *r, FILE *out)
{
	finish(r);
	fprintf(out, "keel trace report%s%s: %" PRIu64 " records", r->vm[0] ? " of VM " : "", r->vm, r->lines);
	if (r->unparsed)
		fprintf(out, " (%" PRIu64 " lines not understood)", r->unparsed);
	fprintf(out, "\n\nevents\n  %-24s %12s\n", "event", "count");
	for (unsigned i = 0; i < TE_COUNT; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s:%s", trace_events[i].group, trace_events[i].name);
		if (r->ev_count[i])
			fprintf(out, "  %-24s %12" PRIu64 "\n", name, r->ev_count[i]);
	}
	bool any = false;
	for (size_t i = 0; i < r->n; i++)
		if (!strncmp(r->s[i].name, "exit ", 5))
			any = true;
	if (any) {
		uint64_t total_n = 0, total_t = 0;
		for (size_t i = 0; i < r->n; i++)
			if (!strncmp(r->s[i].name, "exit ", 5)) {
				total_n += r->s[i].n;
				total_t += r->s[i].sum;
			}
		fprintf(out, "\nVM exits by reason (handling time in keel)\n");
		fprintf(out, "  %-16s %10s %7s %12s %10s %10s %10s %10s\n", "reason", "count", "share", "total", "mean",
			"p50", "p99", "max");
		for (size_t i = 0; i < r->n; i++) {
			struct series *s = &r->s[i];
			if (strncmp(s->name, "exit ", 5))
				continue;
			char tot[24], mean[24], p50[24], p99[24], mx[24];
			fmt_ns(s->sum, tot, sizeof(tot));
			fmt_ns(s->n ? s->sum / s->n : 0, mean, sizeof(mean));
			fmt_ns(pct(s, 50), p50, sizeof(p50));
			fmt_ns(pct(s, 99), p99, sizeof(p99));
			fmt_ns(s->n ? s->v[s->n - 1] : 0, mx, sizeof(mx));
			fprintf(out, "  %-16s %10zu %6.1f%% %12s %10s %10s %10s %10s\n", s->name + 5, s->n,
				total_n ? 100.0 * (double)s->n / (double)total_n : 0.0, tot, mean, p50, p99, mx);
		}
		char tot[24];
		fmt_ns(total_t, tot, sizeof(tot));
		fprintf(out, "  %-16s %10" PRIu64 " %7s %12s\n", "all", total_n, "100%", tot);
		report_places(r, out, total_n);
	}
	any = false;
	for (size_t i = 0; i < r->n; i++)
		if (!strncmp(r->s[i].name, "block ", 6))
			any = true;
	if (any) {
		fprintf(out, "\nblock request latency by layer and operation\n");
		fprintf(out, "  %-10s %-13s %10s %10s %10s %10s %10s %10s\n", "layer", "op", "count", "p50", "p90",
			"p99", "p99.9", "max");
		for (size_t i = 0; i < r->n; i++) {
			struct series *s = &r->s[i];
			char layer[32], op[32];
			if (strncmp(s->name, "block ", 6) || sscanf(s->name + 6, "%31s %31s", layer, op) != 2)
				continue;
			char p50[24], p90[24], p99[24], p999[24], mx[24];
			fmt_ns(pct(s, 50), p50, sizeof(p50));
			fmt_ns(pct(s, 90), p90, sizeof(p90));
			fmt_ns(pct(s, 99), p99, sizeof(p99));
			fmt_ns(pct(s, 99.9), p999, sizeof(p999));
			fmt_ns(s->n ? s->v[s->n - 1] : 0, mx, sizeof(mx));
			fprintf(out, "  %-10s %-13s %10zu %10s %10s %10s %10s %10s\n", layer, op, s->n, p50, p90, p99,
				p999, mx);
		}
	}
	fprintf(out, "\nlost records\n");
	if (r->have_totals)
		fprintf(out, "  written %" PRIu64 ", overwritten before read %" PRIu64 ", dropped (buffer full) %" PRIu64
			     ", cleared %" PRIu64 "\n",
			r->totals[0], r->totals[3], r->totals[4], r->totals[5]);
	fprintf(out, "  reported in the stream ([LOST N EVENTS] lines): %" PRIu64 "\n", r->lost_lines);
}

static const char *const palette[] = { "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948" };

#define HIST_LO 4  /* 16 ns */
#define HIST_HI 34 /* 16 s */

static void bucket_label(unsigned b, char *buf, size_t len)
{
	fmt_ns(1ull << b, buf, len);
}

int trace_report_svg(struct report *r, const char *path)
{
	finish(r);
	/* Series to plot: block latency per layer ("all"), else VM exit handling per reason (top 6). */
	const struct series *plot[6];
	unsigned np = 0;
	bool block = false;
	for (size_t i = 0; i < r->n; i++)
		if (!strncmp(r->s[i].name, "block ", 6) && strstr(r->s[i].name, " all"))
			block = true;
	for (size_t i = 0; i < r->n && np < 6; i++) {
		const char *n = r->s[i].name;
		if (block ? (!strncmp(n, "block ", 6) && strstr(n, " all") != NULL) : !strncmp(n, "exit ", 5))
			plot[np++] = &r->s[i];
	}
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	const unsigned W = 760, PH = 170, TOP = 50, LEFT = 70, PW = 660;
	unsigned H = TOP + (np ? np : 1) * (PH + 30) + 30;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" font-family=\"sans-serif\" "
		   "font-size=\"11\">\n", W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%u\" y=\"24\" font-size=\"15\">%s latency histogram%s%s (log2 buckets)</text>\n", LEFT,
		block ? "Block request" : "VM exit handling", r->vm[0] ? ", VM " : "", r->vm);
	if (!np)
		fprintf(f, "<text x=\"%u\" y=\"%u\">no latency events in this trace (enable vcpu:exit or block:complete)"
			   "</text>\n", LEFT, TOP + 20);
	unsigned nb = HIST_HI - HIST_LO + 1;
	double bw = (double)PW / nb;
	for (unsigned k = 0; k < np; k++) {
		const struct series *s = plot[k];
		uint64_t cnt[HIST_HI - HIST_LO + 1] = { 0 }, max = 1;
		for (size_t i = 0; i < s->n; i++) {
			unsigned b = s->v[i] ? 63u - (unsigned)__builtin_clzll(s->v[i]) : 0;
			b = b < HIST_LO ? HIST_LO : b > HIST_HI ? HIST_HI : b;
			cnt[b - HIST_LO]++;
		}
		for (unsigned b = 0; b < nb; b++)
			max = cnt[b] > max ? cnt[b] : max;
		unsigned y0 = TOP + k * (PH + 30);
		char p50[24], p99[24];
		fmt_ns(pct(s, 50), p50, sizeof(p50));
		fmt_ns(pct(s, 99), p99, sizeof(p99));
		fprintf(f, "<text x=\"%u\" y=\"%u\" font-weight=\"bold\">%s: %zu, p50 %s, p99 %s</text>\n", LEFT,
			y0 + 10, s->name, s->n, p50, p99);
		fprintf(f, "<line x1=\"%u\" y1=\"%u\" x2=\"%u\" y2=\"%u\" stroke=\"black\"/>\n", LEFT, y0 + PH, LEFT + PW,
			y0 + PH);
		fprintf(f, "<text x=\"%u\" y=\"%u\" text-anchor=\"end\">%" PRIu64 "</text>\n", LEFT - 4, y0 + 24, max);
		fprintf(f, "<text x=\"%u\" y=\"%u\" text-anchor=\"end\">0</text>\n", LEFT - 4, y0 + PH);
		for (unsigned b = 0; b < nb; b++) {
			double h = (double)(PH - 20) * (double)cnt[b] / (double)max;
			if (cnt[b])
				fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
					   "<title>%" PRIu64 "</title></rect>\n",
					LEFT + b * bw + 1, y0 + PH - h, bw - 2, h, palette[k % 6], cnt[b]);
			if (b % 4 == 0) {
				char lab[24];
				bucket_label(b + HIST_LO, lab, sizeof(lab));
				fprintf(f, "<text x=\"%.1f\" y=\"%u\" text-anchor=\"middle\">%s</text>\n", LEFT + b * bw,
					y0 + PH + 14, lab);
			}
		}
	}
	fprintf(f, "</svg>\n");
	return fclose(f) ? -errno : 0;
}

static void report_usage(FILE *out)
{
	fprintf(out, "usage: keel trace report [options] FILE|DIR\n\n"
		     "Summarise a trace: a file from keel trace record (or cat trace > FILE), or a VM's\n"
		     "directory on a keel tracefs mount (its trace and stats are read).  Prints event\n"
		     "counts, VM exits by reason with handling time, block request latency percentiles\n"
		     "per layer and operation, and lost records; writes a latency histogram (SVG).\n\n"
		     "options:\n"
		     "      --plot FILE   where to write the histogram (default: FILE.svg for a file,\n"
		     "                    VM-latency.svg in the current directory for a directory)\n"
		     "      --no-plot     do not write it\n"
		     "  -h, --help        show this help\n");
}

/* Feed a file's lines; of a stats file (stats_only) only the total row counts. */
static int feed_file(struct report *r, const char *path, bool stats_only)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) >= 0)
		if (!stats_only || !strncmp(line, "total ", 6))
			trace_report_line(r, line);
	free(line);
	int bad = ferror(f);
	fclose(f);
	return bad ? -EIO : 0;
}

int trace_cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plot", required_argument, NULL, 'p' },
		{ "no-plot", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *plot = NULL;
	bool no_plot = false;
	optind = 1;
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1;) {
		switch (c) {
		case 'p': plot = optarg; break;
		case 'n': no_plot = true; break;
		case 'h': report_usage(stdout); return KEEL_EXIT_OK;
		case ':':
			fprintf(stderr, "keel trace report: %s: needs a value (see keel trace report --help)\n",
				argv[optind - 1]);
			return KEEL_EXIT_USAGE;
		default:
			fprintf(stderr, "keel trace report: %s: unknown option (see keel trace report --help)\n",
				argv[optind - 1]);
			return KEEL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "keel trace report: needs one FILE or DIR (see keel trace report --help)\n");
		return KEEL_EXIT_USAGE;
	}
	const char *in = argv[optind];
	struct stat st;
	if (stat(in, &st) < 0) {
		fprintf(stderr, "keel trace report: %s: %s\n", in, strerror(errno));
		return KEEL_EXIT_ERROR;
	}
	struct report r = { 0 };
	char path[PATH_MAX], plot_buf[PATH_MAX];
	int e;
	if (S_ISDIR(st.st_mode)) {
		snprintf(path, sizeof(path), "%s/trace", in);
		e = feed_file(&r, path, false);
		if (!e) {
			snprintf(path, sizeof(path), "%s/stats", in);
			e = feed_file(&r, path, true);
		}
		if (!plot) {
			const char *base = strrchr(in, '/');
			base = base && base[1] ? base + 1 : in;
			snprintf(plot_buf, sizeof(plot_buf), "%s-latency.svg", r.vm[0] ? r.vm : base);
			plot = plot_buf;
		}
	} else {
		snprintf(path, sizeof(path), "%s", in);
		e = feed_file(&r, path, false);
		if (!plot) {
			snprintf(plot_buf, sizeof(plot_buf), "%s.svg", in);
			plot = plot_buf;
		}
	}
	if (e) {
		fprintf(stderr, "keel trace report: %s: %s\n", path, strerror(-e));
		trace_report_free(&r);
		return KEEL_EXIT_ERROR;
	}
	if (!r.lines && !r.have_totals && r.unparsed) {
		fprintf(stderr, "keel trace report: %s: not a keel trace (%" PRIu64 " lines not understood)\n", in,
			r.unparsed);
		trace_report_free(&r);
		return KEEL_EXIT_ERROR;
	}
	trace_report_print(&r, stdout);
	int status = KEEL_EXIT_OK;
	if (!no_plot) {
		e = trace_report_svg(&r, plot);
		if (e) {
			fprintf(stderr, "keel trace report: %s: %s\n", plot, strerror(-e));
			status = KEEL_EXIT_ERROR;
		} else {
			printf("\nlatency histogram: %s\n", plot);
		}
	}
	trace_report_free(&r);
	return status;
}
