// SPDX-License-Identifier: MIT
/* Command-line parsing for `keel run`, driven by one option table. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/*
 * Parse `keel run` arguments (argv[0] is "run").  On success returns 0 and
 * fills cfg.  On a bad value writes one line to err and returns
 * KEEL_EXIT_USAGE; on --help writes the help to out and returns -1.
 */
int cli_parse_run(int argc, char **argv, struct vm_config *cfg, FILE *out, FILE *err);
void cli_print_run_help(FILE *out);

/*
 * Another program that builds the same machine from the same options
 * (keel-devtest): its name, its own extra options (each with a metavar, a
 * help line and a handler taking ctx), whether --kernel may be left out,
 * and whether --kvm-fd is refused.
 */
struct cli_extra_option {
	const char *name;
	const char *metavar;
	const char *help;
	int (*apply)(void *ctx, const char *arg, FILE *err);
};
struct cli_variant {
	const char *prog;    /* "keel run", "keel-devtest" */
	const char *summary; /* the help's first paragraph */
	bool kernel_optional;
	bool refuse_kvm_fd;
	const struct cli_extra_option *extra;
	size_t nr_extra;
	void *ctx;
};
int cli_parse_variant(const struct cli_variant *v, int argc, char **argv, struct vm_config *cfg, FILE *out,
		      FILE *err);
