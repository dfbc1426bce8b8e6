// SPDX-License-Identifier: MIT
/* `keel run` option parsing: defaults, every option, and one clear error line (status 2) per mistake. */
#include <errno.h>

#include "vmm/cli.h"
#include "fake.h"
#include "unit.h"

static char errbuf[1024];

static int parse(struct vm_config *c, const char *const *args)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = (char *)"run";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	FILE *err = fmemopen(errbuf, sizeof(errbuf), "w");
	FILE *out = fopen("/dev/null", "w");
	int r = cli_parse_run(argc, argv, c, out, err);
	fclose(err);
	fclose(out);
	return r;
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void defaults(void)
{
	struct vm_config c;
	CHECK_EQ(parse(&c, ARGS("--kernel", "k")), 0);
	CHECK(!strcmp(c.kernel, "k"));
	CHECK_EQ(c.cpus, 1);
	CHECK_EQ(c.memory, 512ull << 20);
	CHECK(!strcmp(c.cmdline, "console=ttyS0"));
	CHECK(c.initrd == NULL);
	CHECK_EQ(c.serial, SERIAL_STDIO);
	CHECK_EQ(c.on_reboot, ON_REBOOT_RESTART);
	CHECK_EQ(c.kvm_fd, -1);
	CHECK(c.sandbox);
	CHECK(!c.debug_exit);
	CHECK(!c.virtio_packed);
}

static void every_option(void)
{
	struct vm_config c;
	CHECK_EQ(parse(&c, ARGS("-k", "vmlinuz", "-i", "rd", "-a", "quiet", "-c", "4", "-m", "2G", "--serial",
				"file:/tmp/out", "--on-reboot", "exit", "--debug-exit", "--kvm-fd", "3", "--sandbox",
				"off", "--name", "web-1", "--virtio-packed", "on", "-q")),
		 0);
	CHECK(c.virtio_packed);
	CHECK(!strcmp(c.kernel, "vmlinuz") && !strcmp(c.initrd, "rd") && !strcmp(c.cmdline, "quiet"));
	CHECK_EQ(c.cpus, 4);
	CHECK_EQ(c.memory, 2ull << 30);
	CHECK(c.serial == SERIAL_FILE && !strcmp(c.serial_path, "/tmp/out"));
	CHECK_EQ(c.on_reboot, ON_REBOOT_EXIT);
	CHECK(c.debug_exit);
	CHECK_EQ(c.kvm_fd, 3);
	CHECK(!c.sandbox);
	CHECK(!strcmp(c.name, "web-1"));
	CHECK_EQ(c.verbosity, LOG_QUIET);
	CHECK_EQ(parse(&c, ARGS("--kernel=k", "--memory=1024", "--cpus=255", "--serial=none")), 0);
	CHECK_EQ(c.memory, 1024ull << 20); /* plain numbers are MiB, as in QEMU */
	CHECK_EQ(c.cpus, 255);
	CHECK_EQ(c.serial, SERIAL_NONE);
}

static void bad(const char *const *args, const char *message)
{
	struct vm_config c;
	CHECK_EQ(parse(&c, args), KEEL_EXIT_USAGE);
	CHECK(strstr(errbuf, message) != NULL);
	CHECK(!strncmp(errbuf, "keel run: ", 10));
	CHECK(strchr(errbuf, '\n') == errbuf + strlen(errbuf) - 1); /* exactly one line */
}

static void errors(void)
{
	bad(ARGS("--cpus", "2"), "--kernel is required");
	bad(ARGS("-k", "k", "--cpus", "0"), "--cpus: '0' is out of range (1-255)");
	bad(ARGS("-k", "k", "--cpus", "256"), "out of range");
	bad(ARGS("-k", "k", "--cpus", "two"), "--cpus: 'two' is not a number");
	bad(ARGS("-k", "k", "--cpus", "-1"), "not a number");
	bad(ARGS("-k", "k", "--memory", "lots"), "--memory: 'lots' is not a size");
	bad(ARGS("-k", "k", "--memory", "8M"), "out of range (16M-1T)");
	bad(ARGS("-k", "k", "--memory", "2T"), "out of range");
	bad(ARGS("-k", "k", "--memory", "99999999999999999999"), "not a size");
	bad(ARGS("-k", "k", "--memory", "33M"), "not a multiple of 2 MiB");
	bad(ARGS("-k", "k", "--memory", "1Q"), "not a size");
	bad(ARGS("-k", "k", "--serial", "tcp:1"), "--serial: 'tcp:1' is not one of stdio, file:PATH, none");
	bad(ARGS("-k", "k", "--serial", "file:"), "not one of");
	bad(ARGS("-k", "k", "--on-reboot", "poweroff"), "not one of restart, exit");
	bad(ARGS("-k", "k", "--sandbox", "maybe"), "not one of on, off");
	bad(ARGS("-k", "k", "--virtio-packed", "yes"), "--virtio-packed: 'yes' is not one of on, off");
	bad(ARGS("-k", "k", "--kvm-fd", "x"), "not a file descriptor");
	bad(ARGS("-k", "k", "--name", "a/b"), "may only hold letters");
	bad(ARGS("-k", "k", "--name", ".hidden"), "may only hold");
	bad(ARGS("-k", "k", "--bogus"), "--bogus: unknown option");
	bad(ARGS("-k", "k", "--cpus"), "--cpus: needs a value");
	bad(ARGS("-k", "k", "stray"), "unexpected argument 'stray'");
	bad(ARGS("--kernel", ""), "--kernel: needs a file name");
}

static void help_lists_every_option(void)
{
	char buf[8192];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	cli_print_run_help(f);
	fclose(f);
	static const char *const names[] = { "--kernel", "--initrd", "--cmdline", "--cpus", "--memory", "--serial",
					     "--on-reboot", "--debug-exit", "--kvm-fd", "--sandbox", "--name",
					     "--virtio-packed", "--quiet", "--verbose", "--help", "exit status" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(strstr(buf, names[i]) != NULL);
	struct vm_config c;
	char *argv[] = { (char *)"run", (char *)"--help", NULL };
	FILE *out = fmemopen(buf, sizeof(buf), "w");
	CHECK_EQ(cli_parse_run(2, argv, &c, out, stderr), -1);
	fclose(out);
	CHECK(strstr(buf, "usage: keel run") != NULL);
}

static void sizes_and_numbers(void)
{
	uint64_t v;
	CHECK(parse_size("512M", MiB, &v) == 0 && v == 512 * MiB);
	CHECK(parse_size("2G", MiB, &v) == 0 && v == 2 * GiB);
	CHECK(parse_size("2GiB", MiB, &v) == 0 && v == 2 * GiB);
	CHECK(parse_size("2GB", MiB, &v) == 0 && v == 2 * GiB);
	CHECK(parse_size("1536k", MiB, &v) == 0 && v == 1536 * KiB);
	CHECK(parse_size("4096", 1, &v) == 0 && v == 4096);
	CHECK(parse_size("7b", MiB, &v) == 0 && v == 7);
	CHECK_EQ(parse_size("", MiB, &v), -EINVAL);
	CHECK_EQ(parse_size("M", MiB, &v), -EINVAL);
	CHECK_EQ(parse_size("1MM", MiB, &v), -EINVAL);
	CHECK_EQ(parse_size("-1", MiB, &v), -EINVAL);
	CHECK_EQ(parse_size("17179869184T", MiB, &v), -ERANGE);
	CHECK_EQ(parse_size("18446744073709551616", 1, &v), -ERANGE);
	CHECK(parse_uint("10", 1, 10, &v) == 0 && v == 10);
	CHECK_EQ(parse_uint("11", 1, 10, &v), -ERANGE);
	CHECK_EQ(parse_uint("1x", 1, 10, &v), -EINVAL);
	CHECK_EQ(parse_uint(" 1", 1, 10, &v), -EINVAL);
}

int main(void)
{
	RUN("cli", defaults);
	RUN("cli", every_option);
	RUN("cli", errors);
	RUN("cli", help_lists_every_option);
	RUN("cli", sizes_and_numbers);
	UNIT_EXIT();
}
