// SPDX-License-Identifier: MIT
/*
 * `keel run`: parse options, open everything the VM needs, sandbox
 * ourselves, then boot, run and (on guest reboot) boot again.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "block/block.h"
#include "boot/boot.h"
#include "cli.h"
#include "console.h"
#include "kvm.h"
#include "probe.h"
#include "sandbox.h"
#include "trace/trace.h"
#include "base/util.h"
#include "vm.h"
#include "vcpu.h"
#include "vm_lifecycle.h"
#include "accel.h"

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/*
 * A --cdrom is bad input when it is not an ISO image keel can read: one line
 * and exit 2 before anything is written (the serial file included).  An ISO
 * is a whole number of 2048-byte sectors.
 */
static int check_cdroms(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct blk_options *o = &cfg->disks[i];
		if (o->media != BLK_MEDIA_CDROM)
			continue;
		struct stat st;
		int fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			log_error("--cdrom %s: %s", o->path, strerror(errno));
			return -errno;
		}
		int r = fstat(fd, &st) < 0 ? -errno : 0;
		close(fd);
		if (r) {
			log_error("--cdrom %s: %s", o->path, strerror(-r));
			return r;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			log_error("--cdrom %s: not a regular file or block device", o->path);
			return -EINVAL;
		}
		if (S_ISREG(st.st_mode) && (st.st_size == 0 || st.st_size % 2048)) {
			log_error("--cdrom %s: %lld bytes is not an ISO image (a whole number of 2048-byte sectors)", o->path,
				  (long long)st.st_size);
			return -EINVAL;
		}
	}
	return 0;
}

static int open_serial_output(const struct vm_config *cfg)
{
	switch (cfg->serial) {
	case SERIAL_STDIO:
		return STDOUT_FILENO;
	case SERIAL_FILE: {
		int fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			log_error("--serial file:%s: %s", cfg->serial_path, strerror(errno));
		return fd < 0 ? -errno : fd;
	}
	case SERIAL_NONE:
	default:
		return -1;
	}
}

static int block_stop_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
		sigaddset(&set, stop_signals[i]);
	sigaddset(&set, SIGUSR1); /* the vCPU kick: only vCPU threads take it */
	sigaddset(&set, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	sigdelset(&set, SIGUSR1);
	sigdelset(&set, SIGPIPE);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Wait for the VM to stop, feeding console input and watching for signals. */
static void event_loop(struct vm *vm, struct console *con, int sig_fd)
{
	while (!vm_stopping(vm)) {
		struct pollfd p[4] = {
			{ .fd = vm->stop_efd, .events = POLLIN },
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = console_poll_fd(con, vm), .events = POLLIN },
			{ .fd = trace_server_fd(), .events = POLLIN }, /* keel tracefs / trace record connecting */
		};
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, 0);
			break;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				log_info("stopping the VM on signal %s", strsignal((int)si.ssi_signo));
				/* SIGQUIT: also print where every vCPU is (debugging a hung guest). */
				vm->dump_on_stop = si.ssi_signo == SIGQUIT;
				vm_request_stop(vm, VM_STOP_QUIT, 128 + (int)si.ssi_signo);
			}
		}
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			console_service(con, vm);
		if (p[3].revents & POLLIN)
			trace_server_service();
	}
}

/* Map how the VM stopped to keel's exit status; -1 means boot again. */
static int exit_status(struct vm *vm)
{
	int reason = atomic_load(&vm->stop_reason);
	switch (reason) {
	case VM_STOP_POWEROFF:
		log_debug("guest powered off");
		return KEEL_EXIT_OK;
	case VM_STOP_RESET:
		if (vm->cfg->on_reboot == ON_REBOOT_RESTART) {
			log_info("guest rebooted; restarting it");
			return -1;
		}
		log_info("guest rebooted; exiting (--on-reboot=exit)");
		return KEEL_EXIT_OK;
	case VM_STOP_DEBUG_EXIT:
		return vm->stop_status;
	case VM_STOP_CRASH:
		log_error("guest crashed; exiting");
		return KEEL_EXIT_GUEST_CRASH;
	case VM_STOP_QUIT:
		return vm->stop_status ? KEEL_EXIT_ERROR : KEEL_EXIT_OK;
	default:
		return KEEL_EXIT_ERROR;
	}
}

struct probe_job {
	pthread_t thread;
	int kvm_fd;
	int r;
	struct probe_result result;
};

static void *probe_thread(void *arg)
{
	struct probe_job *j = arg;
	j->r = probe_host(j->kvm_fd, &j->result);
	return NULL;
}

static void report_probe(const struct probe_result *p)
{
	if (p->emulated)
		log_info("this host's KVM emulates guest kernel-mode code (no VT-x/AMD-V: %.0f ns per loop "
			 "iteration, hardware takes ~1 ns); guest kernel code runs hundreds of times slower than on hardware; XSAVE, AVX, "
			 "SMAP, POPCNT and CMPXCHG16B are hidden from the guest",
			 p->ns_per_iteration);
	else
		log_debug("hardware virtualization: %.1f ns per probe loop iteration", p->ns_per_iteration);
}

static uint64_t start_ns;

/* Set-up milestones, with -v and as boot:milestone events: where the time before the guest's first instruction goes. */
static void milestone(enum trace_milestone m, const char *what)
{
	trace_milestone(m);
	log_debug("%s after %.2f ms", what, (double)(now_ns() - start_ns) / 1e6);
}

/*
 * Open every --disk stack and the virtio-console file now, while keel can
 * still see the file system.  The stacks have no threads yet: they start
 * after the sandbox is up (start_disks()), because the sandbox's namespaces
 * need a single-threaded process.
 */
int run_open_guest_files(struct vm_config *cfg, struct vm *vm)
{
	if (cfg->nr_disks) {
		vm->disks = calloc(cfg->nr_disks, sizeof(*vm->disks));
		if (!vm->disks)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		char err[640];
		int r = blk_open(&cfg->disks[i], &vm->disks[i], err, sizeof(err));
		if (r) {
			log_error("--disk %s", err);
			return r;
		}
		vm->nr_disks++;
		/* Resolve cpus=auto now, while /sys and /proc are there; one queue per vCPU by default (virtio/blk.c). */
		struct blk_options *o = &cfg->disks[i];
		char why[320];
		cpu_set_t cpus;
		r = blk_thread_cpus(o, o->queues ? o->queues : cfg->cpus, &cpus, why, sizeof(why), err, sizeof(err));
		if (r < 0) {
			log_error("--disk %s", err);
			return r;
		}
		o->cpus_mode = r ? BLK_CPUS_LIST : BLK_CPUS_ANY;
		o->cpus = cpus;
		log_debug("--disk %s: queue threads %s", o->path, why);
	}
	if (cfg->firmware_log) {
		vm->firmware_log_fd = open(cfg->firmware_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (vm->firmware_log_fd < 0) {
			log_error("--firmware-log %s: %s", cfg->firmware_log, strerror(errno));
			return -errno;
		}
	}
	if (cfg->virtio_console) {
		if (cfg->virtio_console_stdio) {
			vm->virtio_console_fd = STDOUT_FILENO;
		} else {
			vm->virtio_console_fd = open(cfg->virtio_console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (vm->virtio_console_fd < 0) {
				log_error("--virtio-console %s: %s", cfg->virtio_console, strerror(errno));
				return -errno;
			}
		}
	}
	return 0;
}

void run_close_guest_files(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_disks; i++)
		blk_close(vm->disks[i]); /* writes back what is dirty and flushes */
	free(vm->disks);
	vm->disks = NULL;
	vm->nr_disks = 0;
	if (vm->virtio_console_fd > STDERR_FILENO)
		close(vm->virtio_console_fd);
	vm->virtio_console_fd = -1;
	if (vm->firmware_log_fd >= 0)
		close(vm->firmware_log_fd);
	vm->firmware_log_fd = -1;
}

/* Start the block stacks' threads (sandboxed already).  0 or -errno (reported). */
int run_start_disks(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_disks; i++) {
		int r = blk_start(vm->disks[i]);
		if (r) {
			log_error("--disk %s: cannot start its I/O threads: %s", vm->cfg->disks[i].path, strerror(-r));
			return r;
		}
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	start_ns = now_ns();
	struct vm_config cfg;
	int r = cli_parse_run(argc, argv, &cfg, stdout, stderr);
	if (r < 0)
		return KEEL_EXIT_OK; /* --help */
	if (r)
		return r;
	log_level = (enum log_level)cfg.verbosity;
	char default_name[32];
	if (cfg.name) {
		log_set_name(cfg.name);
	} else {
		snprintf(default_name, sizeof(default_name), "keel-%d", (int)getpid());
		cfg.name = default_name;
	}
	(void)prctl(PR_SET_NAME, cfg.name); /* what ps and top show (truncated to 15 bytes) */

	/* Trace memory and runtime socket: before the sandbox, which leaves no file system. */
	struct trace_options to = {
		.name = cfg.name,
		.nr_rings = cfg.cpus + 8, /* vCPUs, the main thread, I/O threads */
		.buffer_bytes = cfg.trace_buffer,
		.events = cfg.trace_events,
	};
	trace_set_start(start_ns);
	if (trace_init(&to))
		return KEEL_EXIT_ERROR;
	milestone(TM_START, "tracing set up");

	/*
	 * Everything the user named is opened and checked before /dev/kvm is:
	 * a wrong path or a bad image gets its own message on any host, with
	 * or without KVM.
	 */
	int status = KEEL_EXIT_ERROR, kvm_fd = -1;
	struct boot_files files;
	if (boot_files_open(&files, cfg.kernel, cfg.initrd))
		goto fini_trace;
	if ((cfg.firmware && boot_firmware_open(&files, cfg.firmware)) ||
	    boot_option_roms_open(&files, cfg.option_roms, cfg.nr_option_roms) || check_cdroms(&cfg)) {
		status = KEEL_EXIT_USAGE; /* a bad firmware file or ISO is bad input: nothing is written yet */
		goto close_files;
	}
	int out_fd = open_serial_output(&cfg);
	if (cfg.serial == SERIAL_FILE && out_fd < 0)
		goto close_files;
	struct vm vm;
	if (vm_init(&vm, &cfg, &kvm_accel))
		goto close_serial;
	vm.serial.out_fd = out_fd;
	milestone(TM_RAM, "guest RAM allocated");
	if (run_open_guest_files(&cfg, &vm))
		goto fini_vm;
	if (vm_load(&vm, &files))
		goto fini_vm;
	kvm_fd = kvm_open(cfg.kvm_fd);
	if (kvm_fd < 0)
		goto fini_vm;

	milestone(TM_KVM_OPEN, "KVM opened");
	/* The probe's answer is needed only for the vCPUs' CPUID: build the machine meanwhile. */
	struct probe_job probe = { .kvm_fd = kvm_fd };
	bool probing = pthread_create(&probe.thread, NULL, probe_thread, &probe) == 0;
	if (!probing)
		probe.r = probe_host(kvm_fd, &probe.result);
	r = vm_attach_kvm(&vm, kvm_fd);
	if (!r)
		r = vm_build(&vm);
	if (probing)
		pthread_join(probe.thread, NULL); /* before the sandbox: namespaces need one thread */
	milestone(TM_BUILT, "machine built, kernel loaded, host probed");
	if (probe.r)
		log_info("could not probe KVM's speed (%s); assuming hardware virtualization", strerror(-probe.r));
	else
		report_probe(&probe.result);
	vm.emulated_host = !probe.r && probe.result.emulated;
	if (r)
		goto fini_vm;
	if (vm_create_vcpus(&vm) || vm_boot_cpus(&vm, false)) {
		vm_stop(&vm);
		goto fini_vm;
	}

	int sig_fd = block_stop_signals();
	if (sig_fd < 0 || vcpu_signals_init()) {
		log_error("signal set-up failed: %s", strerror(errno));
		goto stop_vm;
	}
	struct console con;
	r = console_init(&con, cfg.serial == SERIAL_STDIO ? STDIN_FILENO : -1);
	if (r)
		log_info("stdin: cannot switch the terminal to raw mode (%s); input is line-buffered", strerror(-r));

	if (cfg.sandbox) {
		struct sandbox_report rep;
		struct sandbox_fds sfds = {
			.vm_fd = vm.vm_fd,
			.vcpu_fd_base = vm.vcpu_fd_base,
			.vcpu_fd_span = vm.vcpu_fd_span,
			.tty_fd = con.tty ? con.in_fd : -1,
		};
		if (sandbox_enter(&rep, &sfds)) {
			vm_stop(&vm);
			goto close_signals;
		}
		if (!rep.namespaces)
			log_debug("sandbox: no namespaces (%s failed); seccomp and dropped capabilities still apply",
				  rep.namespace_error);
		milestone(TM_SANDBOX, "sandbox up");
	}
	if (run_start_disks(&vm)) {
		vm_stop(&vm);
		goto close_signals;
	}

	for (unsigned boot = 0;; boot++) {
		if (boot && vm_restart(&vm, &files))
			break;
		console_attach(&con, &vm);
		TRACE(COMPONENT_START, trace_str16("vm"), boot);
		int started = vm_run_vcpus(&vm);
		milestone(TM_VCPUS_STARTED, "vCPUs started");
		if (started == 0 && cfg.debug_sandbox_violation) {
			/* Test hook: the sandbox must refuse this and stop keel with a message. */
			syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
		}
		event_loop(&vm, &con, sig_fd);
		vm_stop(&vm);
		status = exit_status(&vm);
		TRACE(COMPONENT_STOP, trace_str16("vm"), boot, atomic_load(&vm.stop_reason));
		milestone(TM_VM_STOPPED, "VM stopped");
		if (status >= 0)
			break;
		status = KEEL_EXIT_ERROR;
	}

close_signals:
	console_restore();
	if (sig_fd >= 0)
		close(sig_fd);
	goto fini_vm;
stop_vm:
	vm_stop(&vm);
fini_vm:
	run_close_guest_files(&vm);
	vm_fini(&vm); /* the KVM VM and vCPUs, then /dev/kvm */
	if (kvm_fd >= 0 && cfg.kvm_fd < 0)
		close(kvm_fd);
close_serial:
	if (cfg.serial == SERIAL_FILE && out_fd >= 0)
		close(out_fd);
close_files:
	boot_files_close(&files);
fini_trace:
	trace_fini();
	return status;
}
