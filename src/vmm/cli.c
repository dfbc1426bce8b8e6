// SPDX-License-Identifier: MIT
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <string.h>

#include "trace/trace.h"
#include "trace/view.h"
#include "trace/ring.h"
#include "trace/runtime.h"
#include "base/util.h"

struct cli_error {
	FILE *err;
	const char *option;
	const char *prog;
};

__attribute__((format(printf, 2, 3))) static int usage_error(struct cli_error *e, const char *fmt, ...)
{
	va_list ap;
	fprintf(e->err, "%s: --%s: ", e->prog, e->option);
	va_start(ap, fmt);
	vfprintf(e->err, fmt, ap);
	va_end(ap);
	fputc('\n', e->err);
	return KEEL_EXIT_USAGE;
}

static int opt_kernel(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!*a)
		return usage_error(e, "needs a file name");
	c->kernel = a;
	return 0;
}

static int opt_initrd(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!*a)
		return usage_error(e, "needs a file name");
	c->initrd = a;
	return 0;
}

static int opt_cmdline(struct vm_config *c, const char *a, struct cli_error *e)
{
	(void)e;
	c->cmdline = a;
	c->cmdline_set = true;
	return 0;
}

static int opt_cpus(struct vm_config *c, const char *a, struct cli_error *e)
{
	uint64_t v;
	int r = parse_uint(a, 1, KEEL_MAX_CPUS, &v);
	if (r == -ERANGE)
		return usage_error(e, "'%s' is out of range (1-%u)", a, KEEL_MAX_CPUS);
	if (r)
		return usage_error(e, "'%s' is not a number of vCPUs", a);
	c->cpus = (unsigned)v;
	return 0;
}

static int opt_memory(struct vm_config *c, const char *a, struct cli_error *e)
{
	uint64_t v;
	int r = parse_size(a, MiB, &v);
	if (r)
		return usage_error(e, "'%s' is not a size (examples: 512M, 2G, 1024)", a);
	if (v < KEEL_MIN_MEMORY || v > KEEL_MAX_MEMORY)
		return usage_error(e, "'%s' is out of range (16M-1T)", a);
	if (v % (2 * MiB))
		return usage_error(e, "'%s' is not a multiple of 2 MiB", a);
	c->memory = v;
	return 0;
}

static int opt_serial(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!strcmp(a, "stdio")) {
		c->serial = SERIAL_STDIO;
	} else if (!strcmp(a, "none")) {
		c->serial = SERIAL_NONE;
	} else if (!strncmp(a, "file:", 5) && a[5]) {
		c->serial = SERIAL_FILE;
		c->serial_path = a + 5;
	} else {
		return usage_error(e, "'%s' is not one of stdio, file:PATH, none", a);
	}
	return 0;
}

static int opt_on_reboot(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!strcmp(a, "restart"))
		c->on_reboot = ON_REBOOT_RESTART;
	else if (!strcmp(a, "exit"))
		c->on_reboot = ON_REBOOT_EXIT;
	else
		return usage_error(e, "'%s' is not one of restart, exit", a);
	return 0;
}

static int opt_debug_exit(struct vm_config *c, const char *a, struct cli_error *e)
{
	(void)a, (void)e;
	c->debug_exit = true;
	return 0;
}

static int opt_kvm_fd(struct vm_config *c, const char *a, struct cli_error *e)
{
	uint64_t v;
	if (parse_uint(a, 0, 1 << 20, &v))
		return usage_error(e, "'%s' is not a file descriptor number", a);
	c->kvm_fd = (int)v;
	return 0;
}

static int on_off(const char *a, bool *v, struct cli_error *e)
{
	if (!strcmp(a, "on"))
		*v = true;
	else if (!strcmp(a, "off"))
		*v = false;
	else
		return usage_error(e, "'%s' is not one of on, off", a);
	return 0;
}

static int opt_sandbox(struct vm_config *c, const char *a, struct cli_error *e)
{
	return on_off(a, &c->sandbox, e);
}

static int opt_virtio_packed(struct vm_config *c, const char *a, struct cli_error *e)
{
	return on_off(a, &c->virtio_packed, e);
}

static int opt_name(struct vm_config *c, const char *a, struct cli_error *e)
{
	/* The name is also the VM's trace-fs directory: one rule for both (trace_valid_name). */
	size_t n = strlen(a);
	if (n == 0 || n > TRACE_NAME_MAX)
		return usage_error(e, "needs 1 to %d characters", TRACE_NAME_MAX);
	if (!trace_valid_name(a, n))
		return usage_error(e, "'%s' may only hold letters, digits, '-', '_' and '.'", a);
	c->name = a;
	return 0;
}

static int opt_trace(struct vm_config *c, const char *a, struct cli_error *e)
{
	char err[160];
	if (trace_check_events(a, err, sizeof(err)))
		return usage_error(e, "%s", err);
	c->trace_events = a;
	return 0;
}

static int opt_trace_buffer(struct vm_config *c, const char *a, struct cli_error *e)
{
	uint64_t v;
	if (parse_size(a, KiB, &v) || v < TRACE_MIN_BUFFER || v > TRACE_MAX_BUFFER || (v & (v - 1)))
		return usage_error(e, "'%s' is not a power of two from 4K to 256M (examples: 64K, 1M)", a);
	c->trace_buffer = v;
	return 0;
}

static int opt_quiet(struct vm_config *c, const char *a, struct cli_error *e)
{
	(void)a, (void)e;
	c->verbosity = LOG_QUIET;
	return 0;
}

static int opt_verbose(struct vm_config *c, const char *a, struct cli_error *e)
{
	(void)a, (void)e;
	c->verbosity = LOG_VERBOSE;
	return 0;
}

static int opt_sandbox_violation(struct vm_config *c, const char *a, struct cli_error *e)
{
	(void)a, (void)e;
	c->debug_sandbox_violation = true;
	return 0;
}

static int opt_disk(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (c->nr_disks == KEEL_MAX_DISKS)
		return usage_error(e, "at most %u disks", KEEL_MAX_DISKS);
	char msg[160];
	/* The parser splits the argument in place; argv strings are ours to modify. */
	if (blk_parse_disk_option((char *)a, &c->disks[c->nr_disks], msg, sizeof(msg)))
		return usage_error(e, "%s", msg);
	c->nr_disks++;
	return 0;
}

static int opt_cdrom(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (c->nr_disks == KEEL_MAX_DISKS)
		return usage_error(e, "at most %u disks and CD-ROMs", KEEL_MAX_DISKS);
	if (!*a)
		return usage_error(e, "needs an ISO image file name");
	struct blk_options *o = &c->disks[c->nr_disks];
	char msg[160];
	/* A CD-ROM is a read-only AHCI (ATAPI) disk of the whole file: the same parser gives the defaults. */
	char spec[] = "path=x";
	if (blk_parse_disk_option(spec, o, msg, sizeof(msg)))
		return usage_error(e, "%s", msg);
	o->path = a;
	o->readonly = true;
	o->iface = BLK_IF_AHCI;
	o->media = BLK_MEDIA_CDROM;
	c->nr_disks++;
	return 0;
}

static int opt_firmware(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!*a)
		return usage_error(e, "needs bios or a firmware image file name");
	c->firmware = a;
	return 0;
}

static int opt_firmware_log(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!*a)
		return usage_error(e, "needs a file name");
	c->firmware_log = a;
	return 0;
}

static int opt_option_rom(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!*a)
		return usage_error(e, "needs a file name");
	if (c->nr_option_roms == KEEL_MAX_OPTION_ROMS)
		return usage_error(e, "at most %d option ROMs", KEEL_MAX_OPTION_ROMS);
	c->option_roms[c->nr_option_roms++] = a;
	return 0;
}

/* --boot [order=]LETTERS[,menu=on|off][,splash-time=MS], as QEMU's -boot. */
static int opt_boot(struct vm_config *c, const char *a, struct cli_error *e)
{
	char buf[128];
	if (strlen(a) >= sizeof(buf))
		return usage_error(e, "'%.40s...' is too long", a);
	strcpy(buf, a);
	for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *val = strchr(item, '=');
		const char *order = NULL;
		if (!val) {
			order = item;
		} else {
			*val++ = 0;
			if (!strcmp(item, "order")) {
				order = val;
			} else if (!strcmp(item, "menu")) {
				if (strcmp(val, "on") && strcmp(val, "off"))
					return usage_error(e, "menu=%.40s is not one of on, off", val);
				c->boot_menu = !strcmp(val, "on");
				continue;
			} else if (!strcmp(item, "splash-time")) {
				uint64_t v;
				if (parse_uint(val, 0, 65535, &v))
					return usage_error(e, "splash-time=%.40s is not a time from 0 to 65535 ms", val);
				c->boot_splash_ms = (unsigned)v;
				continue;
			} else {
				return usage_error(e, "unknown item '%.40s' (known: order, menu, splash-time)", item);
			}
		}
		size_t n = strlen(order);
		if (!n || n > KEEL_BOOT_ORDER_MAX)
			return usage_error(e, "order=%.40s: give 1 to %d of the letters c (disk), d (CD-ROM), n (network)",
					   order, KEEL_BOOT_ORDER_MAX);
		for (size_t i = 0; i < n; i++) {
			if (!strchr("cdn", order[i]))
				return usage_error(e, "order=%.40s: '%c' is not c (disk), d (CD-ROM) or n (network)", order,
						   order[i]);
			if (memchr(order, order[i], i))
				return usage_error(e, "order=%.40s: '%c' is given twice", order, order[i]);
		}
		memcpy(c->boot_order, order, n + 1);
	}
	return 0;
}

static int opt_rng(struct vm_config *c, const char *a, struct cli_error *e)
{
	(void)a, (void)e;
	c->rng = true;
	return 0;
}

static int opt_virtio_console(struct vm_config *c, const char *a, struct cli_error *e)
{
	if (!*a)
		return usage_error(e, "needs stdio or a file name");
	c->virtio_console = a;
	c->virtio_console_stdio = !strcmp(a, "stdio");
	return 0;
}

struct option_desc {
	const char *name;
	char short_name; /* 0: none */
	const char *metavar; /* NULL: takes no argument */
	const char *help;
	int (*apply)(struct vm_config *c, const char *arg, struct cli_error *e);
};

static const struct option_desc run_options[] = {
	{ "kernel", 'k', "FILE", "Linux bzImage or PVH ELF kernel to boot directly, without firmware", opt_kernel },
	{ "initrd", 'i', "FILE", "initial ramdisk, placed high in low memory", opt_initrd },
	{ "cmdline", 'a', "STRING", "kernel command line (default: \"console=ttyS0\")", opt_cmdline },
	{ "cpus", 'c', "N", "number of vCPUs, 1-255 (default: 1)", opt_cpus },
	{ "memory", 'm', "SIZE", "guest RAM, e.g. 512M or 2G; plain numbers are MiB (default: 512M)", opt_memory },
	{ "serial", 0, "MODE", "COM1: stdio (default), file:PATH or none", opt_serial },
	{ "disk", 'd', "SPEC", "disk, repeatable: path=FILE[,if=virtio|ahci][,format=raw][,cache=writeback|writethrough|none][,cache-size=SIZE][,readonly][,partition=N][,serial=S][,bootindex=N][,queues=N][,poll-us=N][,cpus=any|auto|LIST]", opt_disk },
	{ "cdrom", 0, "FILE", "ISO image as a read-only ATAPI CD-ROM on the AHCI controller, repeatable", opt_cdrom },
	{ "firmware", 0, "bios|FILE", "boot through firmware: bios is Debian's SeaBIOS (the default without --kernel), or a BIOS image", opt_firmware },
	{ "firmware-log", 0, "FILE", "write what the firmware prints to its debug port (0x402) to FILE", opt_firmware_log },
	{ "option-rom", 0, "FILE", "an option ROM the firmware runs at start-up (fw_cfg genroms/), repeatable, as QEMU's -option-rom", opt_option_rom },
	{ "boot", 0, "SPEC", "firmware boot order: [order=]LETTERS[,menu=on|off][,splash-time=MS]; c disk, d CD-ROM, n network", opt_boot },
	{ "rng", 0, NULL, "virtio-rng entropy device fed from getrandom()", opt_rng },
	{ "virtio-console", 0, "stdio|FILE", "virtio-console (hvc0): output to FILE, or stdio (then it takes the terminal's input)", opt_virtio_console },
	{ "virtio-packed", 0, "on|off", "offer packed virtqueues (VIRTIO_F_RING_PACKED) to virtio drivers (default: off)", opt_virtio_packed },
	{ "on-reboot", 0, "ACTION", "when the guest reboots: restart (default) or exit with status 0", opt_on_reboot },
	{ "debug-exit", 0, NULL, "port 0xf4 exits keel with status (value << 1) | 1, as QEMU's isa-debug-exit", opt_debug_exit },
	{ "kvm-fd", 0, "N", "use this already-open /dev/kvm descriptor; keel then opens nothing under /dev", opt_kvm_fd },
	{ "sandbox", 0, "on|off", "drop privileges and confine keel with seccomp after set-up (default: on)", opt_sandbox },
	{ "name", 0, "NAME", "name of the VM: in messages and the process name (default: keel-PID)", opt_name },
	{ "trace", 0, "EVENTS", "enable trace events from the start: vcpu:exit,boot:*,... (see keel tracefs)", opt_trace },
	{ "trace-buffer-size", 0, "SIZE", "trace buffer per thread, 4K-256M, a power of two (default: 1M)", opt_trace_buffer },
	{ "quiet", 'q', NULL, "print only errors", opt_quiet },
	{ "verbose", 'v', NULL, "print set-up details", opt_verbose },
	{ "debug-sandbox-violation", 0, NULL, "testing: make a forbidden system call once the sandbox is up", opt_sandbox_violation },
};

static const struct cli_variant run_variant = {
	.prog = "keel run",
	.summary = "Boot a Linux kernel (bzImage or PVH ELF) directly, or disks and CD-ROMs through firmware\n"
		   "(SeaBIOS), in a KVM virtual machine.\n"
		   "COM1 is the console; Ctrl-A x quits, Ctrl-A h lists the other keys.",
};

static void print_help(const struct cli_variant *v, FILE *out)
{
	fprintf(out, "usage: %s [options]\n\n%s\n\noptions:\n", v->prog, v->summary);
	for (size_t i = 0; i < v->nr_extra; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s %s", v->extra[i].name, v->extra[i].metavar);
		fprintf(out, "  %-28s %s\n", left, v->extra[i].help);
	}
	for (size_t i = 0; i < ARRAY_SIZE(run_options); i++) {
		const struct option_desc *o = &run_options[i];
		char left[64];
		snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->short_name ? "-" : "",
			 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
			 o->metavar ? " " : "", o->metavar ? o->metavar : "");
		fprintf(out, "  %-28s %s\n", o->short_name ? left : left + 2, o->help);
	}
	fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
	if (v == &run_variant)
		fprintf(out, "\nexit status: 0 guest powered off, 1 keel failed, 2 bad command line,\n"
			     "3 guest crashed (triple fault or KVM error; registers are printed)\n");
}

void cli_print_run_help(FILE *out)
{
	print_help(&run_variant, out);
}

int cli_parse_run(int argc, char **argv, struct vm_config *cfg, FILE *out, FILE *err)
{
	return cli_parse_variant(&run_variant, argc, argv, cfg, out, err);
}

int cli_parse_variant(const struct cli_variant *v, int argc, char **argv, struct vm_config *cfg, FILE *out,
		      FILE *err)
{
	*cfg = (struct vm_config){
		.cmdline = "console=ttyS0",
		.cpus = 1,
		.memory = 512 * MiB,
		.serial = SERIAL_STDIO,
		.on_reboot = ON_REBOOT_RESTART,
		.kvm_fd = -1,
		.sandbox = true,
		.verbosity = LOG_NORMAL,
	};

	enum { N = ARRAY_SIZE(run_options), X = 8 };
	if (v->nr_extra > X)
		return KEEL_EXIT_USAGE;
	struct option longopts[N + X + 2];
	char shortopts[3 * N + 4];
	size_t s = 0;
	shortopts[s++] = ':'; /* report a missing argument as ':' */
	for (size_t i = 0; i < N; i++) {
		const struct option_desc *o = &run_options[i];
		longopts[i] = (struct option){ o->name, o->metavar ? required_argument : no_argument, NULL, 256 + (int)i };
		if (o->short_name) {
			shortopts[s++] = o->short_name;
			if (o->metavar)
				shortopts[s++] = ':';
		}
	}
	for (size_t i = 0; i < v->nr_extra; i++)
		longopts[N + i] = (struct option){ v->extra[i].name, required_argument, NULL, 1024 + (int)i };
	shortopts[s++] = 'h';
	shortopts[s] = '\0';
	longopts[N + v->nr_extra] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[N + v->nr_extra + 1] = (struct option){ 0 };

	optind = 1;
	opterr = 0;
	for (;;) {
		int idx = -1;
		int c = getopt_long(argc, argv, shortopts, longopts, &idx);
		if (c == -1)
			break;
		if (c == 'h') {
			print_help(v, out);
			return -1;
		}
		if (c == '?' || c == ':') {
			const char *what = argv[optind - 1];
			if (c == ':')
				fprintf(err, "%s: %s: needs a value (see %s --help)\n", v->prog, what, v->prog);
			else
				fprintf(err, "%s: %s: unknown option (see %s --help)\n", v->prog, what, v->prog);
			return KEEL_EXIT_USAGE;
		}
		if (c >= 1024 && c < 1024 + (int)v->nr_extra) {
			int r = v->extra[c - 1024].apply(v->ctx, optarg, err);
			if (r)
				return r;
			continue;
		}
		const struct option_desc *o = NULL;
		if (c >= 256 && c < 256 + (int)N) {
			o = &run_options[c - 256];
		} else {
			for (size_t i = 0; i < N; i++)
				if (run_options[i].short_name == c)
					o = &run_options[i];
		}
		if (!o)
			return KEEL_EXIT_USAGE;
		struct cli_error e = { err, o->name, v->prog };
		if (v->refuse_kvm_fd && o->apply == opt_kvm_fd)
			return usage_error(&e, "%s runs no KVM and opens no /dev/kvm", v->prog);
		int r = o->apply(cfg, o->metavar ? optarg : NULL, &e);
		if (r)
			return r;
	}
	if (optind < argc) {
		fprintf(err, "%s: unexpected argument '%s' (see %s --help)\n", v->prog, argv[optind], v->prog);
		return KEEL_EXIT_USAGE;
	}
	if (cfg->kernel && cfg->firmware) {
		fprintf(err, "%s: --kernel and --firmware exclude each other: a kernel boots directly, without firmware\n",
			v->prog);
		return KEEL_EXIT_USAGE;
	}
	if (!cfg->kernel && (cfg->initrd || cfg->cmdline_set)) {
		fprintf(err, "%s: --%s needs --kernel (firmware boots what the disk holds)\n", v->prog,
			cfg->initrd ? "initrd" : "cmdline");
		return KEEL_EXIT_USAGE;
	}
	if (!cfg->kernel && !cfg->firmware && !v->kernel_optional) {
		if (!cfg->nr_disks) {
			fprintf(err, "%s: --kernel is required, or a --disk or --cdrom to boot through firmware (see %s --help)\n",
				v->prog, v->prog);
			return KEEL_EXIT_USAGE;
		}
		cfg->firmware = "bios"; /* as QEMU: disks and no kernel boot through SeaBIOS */
	}
	if (cfg->kernel && (cfg->boot_order[0] || cfg->boot_menu || cfg->firmware_log || cfg->nr_option_roms)) {
		fprintf(err, "%s: --%s applies to firmware boot, not to --kernel\n", v->prog,
			cfg->firmware_log ? "firmware-log" : cfg->nr_option_roms ? "option-rom" : "boot");
		return KEEL_EXIT_USAGE;
	}
	return 0;
}
