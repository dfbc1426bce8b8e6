// SPDX-License-Identifier: MIT
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "console.h"
#include "trace/trace.h"
#include "base/util.h"

/* System calls a running keel makes (vCPU and device threads included). */
static const int allowed_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
	SCMP_SYS(pwrite64), SCMP_SYS(close), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(epoll_create1),
	SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(eventfd2),
	SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(madvise), SCMP_SYS(mremap),
	SCMP_SYS(brk), SCMP_SYS(fallocate), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
	SCMP_SYS(fcntl), SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(exit),
	SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
	SCMP_SYS(sigaltstack), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(getrandom), SCMP_SYS(restart_syscall), SCMP_SYS(signalfd4),
	SCMP_SYS(prlimit64), SCMP_SYS(fdatasync),
	/* The block stack (src/block): io_uring set up at open; the steady state only enters the ring. */
	SCMP_SYS(io_uring_enter),
};

/*
 * ioctl requests allowed once running, per descriptor.  Creating anything
 * (VMs, vCPUs, interrupt controllers, memory slots) is done before the
 * sandbox; a guest reboot resets what exists (vm.c, vcpu_reset.c).
 */
static const unsigned long vm_ioctls[] = {
	KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD, KVM_SET_GSI_ROUTING, /* devices */
	KVM_SET_IRQCHIP, KVM_SET_PIT2, /* reboot: the interrupt controllers' reset */
};
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN,
	/* reboot: vcpu_reset() and the boot state */
	KVM_SET_REGS, KVM_SET_SREGS, KVM_SET_FPU, KVM_SET_XSAVE, KVM_SET_XCRS, KVM_SET_MSRS, KVM_SET_MP_STATE,
	KVM_SET_LAPIC, KVM_SET_VCPU_EVENTS, KVM_SET_DEBUGREGS, KVM_SET_NESTED_STATE, KVM_GET_SREGS,
	/* crash and SIGQUIT dumps (vcpu_dump.c) */
	KVM_GET_REGS, KVM_GET_MP_STATE, KVM_GET_VCPU_EVENTS, KVM_GET_LAPIC, KVM_TRANSLATE,
};
static const unsigned long tty_ioctls[] = { TCGETS, TCSETS, TCSETSW };

#define MAX_SYSCALL_NAMES 512
static char syscall_names[MAX_SYSCALL_NAMES][24];

static void sigsys_handler(int sig, siginfo_t *info, void *ctx)
{
	(void)sig, (void)ctx;
	char msg[160];
	int nr = info->si_syscall;
	const char *name = (nr >= 0 && nr < MAX_SYSCALL_NAMES && syscall_names[nr][0]) ? syscall_names[nr] : "?";
	int n = snprintf(msg, sizeof(msg),
			 "keel: sandbox: forbidden system call %s (%d); keel stops (this is a keel bug)\n", name, nr);
	console_restore();
	trace_server_unlink_now(); /* readers should not find a socket nobody answers on */
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n);
	_exit(KEEL_EXIT_ERROR);
}

static void name_syscalls(void)
{
	for (int i = 0; i < MAX_SYSCALL_NAMES; i++) {
		char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);
		if (s) {
			snprintf(syscall_names[i], sizeof(syscall_names[i]), "%s", s);
			free(s);
		}
	}
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = write_full(fd, s, strlen(s));
	close(fd);
	return r;
}

/* New namespaces and an empty, read-only root directory.  0 or -errno, *why set. */
static int isolate(const char **why)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
		*why = "unshare";
		return -errno;
	}
	/* Keep our own ids inside (best effort; without a map we are "nobody"). */
	char map[64];
	(void)write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	(void)write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	(void)write_file("/proc/self/gid_map", map);

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		*why = "making mounts private";
		return -errno;
	}
	static const char *const spots[] = { "/tmp", "/mnt", "/proc", "/dev" };
	const char *dir = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(spots) && !dir; i++) {
		struct stat st;
		if (stat(spots[i], &st) == 0 && S_ISDIR(st.st_mode))
			dir = spots[i];
	}
	if (!dir) {
		*why = "finding a mount point";
		return -ENOENT;
	}
	if (mount("keel-empty", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,nr_inodes=4,mode=0555") <
		    0 ||
	    chdir(dir) < 0) {
		*why = "mounting an empty root";
		return -errno;
	}
	/* Stack the old root under the new one, then let go of it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
		*why = "pivot_root";
		return -errno;
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		*why = "remounting the root read-only";
		return -errno;
	}
	return 0;
}

static int drop_capabilities(void)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
			return -errno;
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return 0;
}

/*
 * ioctl(fd, req) for fd in [base, base + span) (span a power of two, base
 * aligned to it) and req in reqs.  The descriptor and request are ints: only
 * their low 32 bits are compared, as the kernel uses only those.
 */
static int allow_ioctls(scmp_filter_ctx ctx, int base, int span, const unsigned long *reqs, size_t n)
{
	if (base < 0 || span <= 0)
		return 0;
	scmp_datum_t mask = 0xffffffffu & ~(scmp_datum_t)(span - 1);
	int r = 0;
	for (size_t i = 0; !r && i < n; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 2,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, mask, (scmp_datum_t)base),
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, reqs[i]));
	return r;
}

static int install_filter(const struct sandbox_fds *fds)
{
	int r = -ENOMEM;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return r;
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; !r && i < ARRAY_SIZE(allowed_syscalls); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], 0);
	if (!r)
		r = allow_ioctls(ctx, fds->vm_fd, 1, vm_ioctls, ARRAY_SIZE(vm_ioctls));
	if (!r)
		r = allow_ioctls(ctx, fds->vcpu_fd_base, fds->vcpu_fd_span, vcpu_ioctls, ARRAY_SIZE(vcpu_ioctls));
	if (!r)
		r = allow_ioctls(ctx, fds->tty_fd, 1, tty_ioctls, ARRAY_SIZE(tty_ioctls));
	/* Signals to keel's own threads only (the vCPU kick, raise()); no PID namespace is needed for that. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	/* Threads only: clone must carry CLONE_THREAD; clone3's flags cannot be inspected. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/*
	 * Tracing readers (keel tracefs, keel trace record): accept on the runtime socket only,
	 * hand over the trace memfd (sendmsg), and at exit remove the socket, in the runtime
	 * directory only (unlinkat relative to its descriptor, kept from before the sandbox).
	 */
	int listen_fd, dir_fd;
	trace_server_fds(&listen_fd, &dir_fd);
	if (!r && listen_fd >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(accept4), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)listen_fd, 0));
	if (!r && listen_fd >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sendmsg), 0);
	if (!r && dir_fd >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unlinkat), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)dir_fd, 0));
	/* Naming threads (vcpuN) and nothing else prctl can do. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, PR_SET_NAME));
	/* I/O threads pinning themselves (iothread_set_cpus()): the calling thread only. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sched_setaffinity), 1, SCMP_A0(SCMP_CMP_EQ, 0, 0));
	if (!r)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int sandbox_enter(struct sandbox_report *report, const struct sandbox_fds *fds)
{
	memset(report, 0, sizeof(*report));
	name_syscalls();
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return -errno;

	const char *why = NULL;
	int r = isolate(&why);
	report->namespaces = r == 0;
	if (r)
		report->namespace_error = why;

	r = drop_capabilities();
	if (r) {
		log_error("sandbox: dropping capabilities: %s", strerror(-r));
		return r;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = -errno;
		log_error("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return r;
	}
	r = install_filter(fds);
	if (r) {
		log_error("sandbox: installing the seccomp filter: %s", strerror(-r));
		return r;
	}
	return 0;
}
