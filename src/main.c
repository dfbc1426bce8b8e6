// SPDX-License-Identifier: MIT
/* keel: a VMM on Linux KVM, one unprivileged process per VM. */
#include <stdio.h>
#include <string.h>

#include "vmm/config.h"
#include "vmm/run.h"
#include "trace/cmd.h"

#ifndef KEEL_VERSION
#define KEEL_VERSION "0.1"
#endif

struct command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "run", "boot a kernel in a new VM (keel run --help)", cmd_run },
	{ "tracefs", "mount running VMs' traces as a file system (keel tracefs --help)", cmd_tracefs },
	{ "trace", "record a VM's trace to a file, or report on one (keel trace --help)", cmd_trace },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: keel COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n  keel --version    print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return KEEL_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return KEEL_EXIT_OK;
	}
	if (!strcmp(cmd, "--version")) {
		printf("keel %s\n", KEEL_VERSION);
		return KEEL_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "keel: unknown command '%s' (see keel --help)\n", cmd);
	return KEEL_EXIT_USAGE;
}
