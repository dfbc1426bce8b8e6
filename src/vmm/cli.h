// SPDX-License-Identifier: MIT
/* Command-line parsing for `keel run`, driven by one option table. */
#pragma once

#include <stdio.h>

#include "config.h"

/*
 * Parse `keel run` arguments (argv[0] is "run").  On success returns 0 and
 * fills cfg.  On a bad value writes one line to err and returns
 * KEEL_EXIT_USAGE; on --help writes the help to out and returns -1.
 */
int cli_parse_run(int argc, char **argv, struct vm_config *cfg, FILE *out, FILE *err);
void cli_print_run_help(FILE *out);
