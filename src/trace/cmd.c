// SPDX-License-Identifier: MIT
/* keel trace SUBCOMMAND: record, report (and selftest, for the tests). */
#include <stdio.h>
#include <string.h>

#include "vmm/config.h"
#include "cmd.h"
#include "report.h"

static void trace_usage(FILE *out)
{
	fprintf(out, "usage: keel trace COMMAND [options]\n\n"
		     "commands:\n"
		     "  record   save a running VM's trace to a file (keel trace record --help)\n"
		     "  report   summary tables and a latency histogram of a trace (keel trace report --help)\n\n"
		     "Live traces: keel tracefs MOUNTPOINT (keel tracefs --help).\n");
}

int cmd_trace(int argc, char **argv)
{
	if (argc < 2) {
		trace_usage(stderr);
		return KEEL_EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		trace_usage(stdout);
		return KEEL_EXIT_OK;
	}
	if (!strcmp(sub, "record"))
		return trace_cmd_record(argc - 1, argv + 1);
	if (!strcmp(sub, "report"))
		return trace_cmd_report(argc - 1, argv + 1);
	if (!strcmp(sub, "selftest"))
		return trace_cmd_selftest(argc - 1, argv + 1);
	fprintf(stderr, "keel trace: unknown command '%s' (see keel trace --help)\n", sub);
	return KEEL_EXIT_USAGE;
}
