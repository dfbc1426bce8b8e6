// SPDX-License-Identifier: MIT
/*
 * keel-devtest: keel's machine without a CPU, driven by a test program
 * (machine.h, proto.h).  A binary of its own, built beside keel and never
 * reached from it: it takes keel run's options (the same machine: disks,
 * consoles, entropy, packed rings, tracing, the sandbox), refuses --kvm-fd,
 * needs no kernel, and says what it is when it starts.
 *
 *   keel-devtest --fd N [keel run options]        a connected socket (socketpair)
 *   keel-devtest --socket PATH [keel run options]  listen on PATH, serve one connection
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"
#include "boot/boot.h"
#include "machine.h"
#include "proto.h"
#include "trace/trace.h"
#include "vmm/cli.h"
#include "vmm/config.h"
#include "vmm/run.h"
#include "vmm/sandbox.h"
#include "vmm/vm.h"
#include "vmm/vm_lifecycle.h"

struct devtest_opts {
	int fd;
	const char *socket;
};

static int opt_fd(void *ctx, const char *a, FILE *err)
{
	struct devtest_opts *o = ctx;
	uint64_t v;
	if (parse_uint(a, 0, 65535, &v)) {
		fprintf(err, "keel-devtest: --fd: '%s' is not a descriptor number\n", a);
		return KEEL_EXIT_USAGE;
	}
	o->fd = (int)v;
	return 0;
}

static int opt_socket(void *ctx, const char *a, FILE *err)
{
	struct devtest_opts *o = ctx;
	if (!*a || strlen(a) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(err, "keel-devtest: --socket: needs a path of at most 107 bytes\n");
		return KEEL_EXIT_USAGE;
	}
	o->socket = a;
	return 0;
}

static const struct cli_extra_option extra[] = {
	{ "fd", "N", "the test program's connected socket (e.g. one end of a socketpair)", opt_fd },
	{ "socket", "PATH", "listen on this Unix socket and serve one test program", opt_socket },
};

/* Listen on path and take one connection.  The connected descriptor or -errno (reported). */
static int accept_one(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0) {
		int r = -errno;
		log_error("--socket %s: %s", path, strerror(errno));
		if (l >= 0)
			close(l);
		return r;
	}
	int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	int r = c < 0 ? -errno : c;
	if (c < 0)
		log_error("--socket %s: accept: %s", path, strerror(errno));
	close(l);
	unlink(path);
	return r;
}

/* Serve commands until quit or end of input.  0, or -errno if the connection failed. */
static int serve(struct dt_machine *m, int fd)
{
	size_t cap = 65536, len = 0;
	char *in = malloc(cap);
	struct dt_out out = { 0 };
	int r = in ? 0 : -ENOMEM;
	bool quit = false;
	while (!r && !quit) {
		/* Interrupts are collected while waiting for the next command. */
		int ready = dt_poll(m, -1, fd);
		if (ready < 0) {
			r = ready;
			break;
		}
		if (!ready)
			continue;
		if (len == cap) {
			if (cap >= DT_LINE_MAX) {
				/* A line longer than any command: answer once, drop it up to its end. */
				static const char msg[] = "ERR line too long\n";
				r = write_full(fd, msg, sizeof(msg) - 1);
				len = 0;
				continue;
			}
			char *b = realloc(in, cap * 2);
			if (!b) {
				r = -ENOMEM;
				break;
			}
			in = b;
			cap *= 2;
		}
		ssize_t n = read(fd, in + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		len += (size_t)n;
		char *start = in, *nl;
		while (!quit && (nl = memchr(start, '\n', len - (size_t)(start - in)))) {
			*nl = 0;
			out.len = 0;
			int c = dt_command(m, start, &out);
			if (c < 0) {
				r = c;
				break;
			}
			quit = c == 1;
			r = write_full(fd, out.buf, out.len);
			if (r)
				break;
			start = nl + 1;
		}
		len -= (size_t)(start - in);
		memmove(in, start, len);
	}
	free(in);
	dt_out_free(&out);
	return r;
}

int main(int argc, char **argv)
{
	struct devtest_opts opts = { .fd = -1 };
	static const struct cli_variant variant = {
		.prog = "keel-devtest",
		.summary = "keel's machine without a CPU, for device tests: no KVM, no vCPUs; a test program\n"
			   "makes the guest's port, MMIO and memory accesses over a socket, watches its\n"
			   "interrupts and moves its virtual clock (the protocol: src/devtest/proto.h).\n"
			   "Takes keel run's options; --kernel is optional (loaded into RAM, never run).",
		.kernel_optional = true,
		.refuse_kvm_fd = true,
		.extra = extra,
		.nr_extra = ARRAY_SIZE(extra),
	};
	struct cli_variant v = variant;
	v.ctx = &opts;
	struct vm_config cfg;
	int r = cli_parse_variant(&v, argc, argv, &cfg, stdout, stderr);
	if (r < 0)
		return KEEL_EXIT_OK;
	if (r)
		return r;
	if ((opts.fd < 0) == !opts.socket) {
		fprintf(stderr, "keel-devtest: needs one of --fd N and --socket PATH (see keel-devtest --help)\n");
		return KEEL_EXIT_USAGE;
	}
	log_level = (enum log_level)cfg.verbosity;
	log_set_name("devtest");
	char name[32];
	if (!cfg.name) {
		snprintf(name, sizeof(name), "devtest-%d", (int)getpid());
		cfg.name = name;
	}
	char over[160];
	if (opts.socket)
		snprintf(over, sizeof(over), "socket %s", opts.socket);
	else
		snprintf(over, sizeof(over), "descriptor %d", opts.fd);
	if (cfg.verbosity != LOG_QUIET)
		fprintf(stderr, "keel-devtest: device-test mode: no KVM and no vCPUs; a test program drives this "
				"machine over %s (not for running guests)\n", over);
	struct trace_options to = { .name = cfg.name, .nr_rings = 16, .buffer_bytes = cfg.trace_buffer,
				    .events = cfg.trace_events };
	trace_set_start(now_ns());
	if (trace_init(&to))
		return KEEL_EXIT_ERROR;

	int status = KEEL_EXIT_ERROR, fd = opts.fd;
	struct boot_files files = { 0 };
	struct vm vm;
	if ((cfg.kernel || cfg.firmware) && boot_files_open(&files, cfg.kernel, cfg.initrd))
		goto fini_trace;
	/* --firmware: the image in the BIOS area and fw_cfg filled as for a firmware boot (no CPU runs it). */
	if (cfg.firmware && (boot_firmware_open(&files, cfg.firmware) ||
			     boot_option_roms_open(&files, cfg.option_roms, cfg.nr_option_roms))) {
		status = KEEL_EXIT_USAGE;
		goto fini_trace;
	}
	if (vm_init(&vm, &cfg, NULL))
		goto close_files;
	struct dt_machine *m = dt_attach(&vm);
	if (!m)
		goto fini_vm;
	if (cfg.serial == SERIAL_FILE) {
		vm.serial.out_fd = open(cfg.serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (vm.serial.out_fd < 0) {
			log_error("--serial file:%s: %s", cfg.serial_path, strerror(errno));
			goto detach;
		}
	} else if (cfg.serial == SERIAL_STDIO) {
		vm.serial.out_fd = STDOUT_FILENO;
	}
	if (run_open_guest_files(&cfg, &vm))
		goto close_guest_files;
	if ((cfg.kernel || cfg.firmware) && vm_load(&vm, &files))
		goto close_guest_files;
	if (vm_build(&vm))
		goto close_guest_files;
	if (opts.socket) {
		fd = accept_one(opts.socket);
		if (fd < 0)
			goto stop;
	}
	if (cfg.sandbox) {
		struct sandbox_report rep;
		struct sandbox_fds none = { .vm_fd = -1, .vcpu_fd_base = -1, .tty_fd = -1 };
		if (sandbox_enter(&rep, &none))
			goto stop;
	}
	if (run_start_disks(&vm))
		goto stop;
	r = serve(m, fd);
	if (r)
		log_error("the test program's connection: %s", strerror(-r));
	else
		status = KEEL_EXIT_OK;
stop:
	vm_stop(&vm);
close_guest_files:
	run_close_guest_files(&vm);
	if (vm.serial.out_fd > STDERR_FILENO)
		close(vm.serial.out_fd);
detach:
	vm_fini(&vm);
	dt_detach(m);
	goto close_files;
fini_vm:
	vm_fini(&vm);
close_files:
	if (cfg.kernel || cfg.firmware)
		boot_files_close(&files);
fini_trace:
	trace_fini();
	return status;
}
