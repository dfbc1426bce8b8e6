// SPDX-License-Identifier: MIT
/* keel trace report's parser and tables (report.c), reachable from the unit tests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ring.h"

/* Values of one kind: "exit io", "block cache read", "block cache all". */
struct series {
	char name[96];
	uint64_t *v;
	size_t n, cap;
	uint64_t sum;
};

struct report {
	struct series *s;
	size_t n, cap;
	bool sorted;
	uint64_t ev_count[TE_COUNT];
	uint64_t lines, unparsed, lost_lines;
	bool have_totals;
	uint64_t totals[6]; /* stats' total row: written entries consumed overrun dropped cleared */
	char vm[TRACE_NAME_MAX + 1];
};

/* Feed one line of a trace (or stats) file. */
void trace_report_line(struct report *r, const char *line);
void trace_report_print(struct report *r, FILE *out);
/* Nearest-rank percentile p of a series, 0 if it has no values. */
uint64_t trace_report_percentile(struct report *r, const char *series, double p);
/* Write the latency histogram.  0 or -errno. */
int trace_report_svg(struct report *r, const char *path);
void trace_report_free(struct report *r);

int trace_cmd_record(int argc, char **argv);
int trace_cmd_report(int argc, char **argv);
int trace_cmd_selftest(int argc, char **argv);
