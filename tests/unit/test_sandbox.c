// SPDX-License-Identifier: MIT
/*
 * The sandbox's seccomp filter, on any host (no KVM needed): a child enters
 * the sandbox with stand-in descriptors for the KVM VM and a block of vCPUs
 * (/dev/null: every KVM request on them fails with ENOTTY once the filter
 * lets it through) and makes one call; the filter either lets it reach the
 * kernel or stops the child with its SIGSYS message.  Checks that ioctls go
 * only to the descriptors they are for, that nothing can be asked of
 * /dev/kvm once running (no KVM_CREATE_VM, no new vCPU), and that signals
 * reach only keel's own threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "unit.h"
#include "vmm/sandbox.h"

#define VM_FD 40
#define VCPU_BASE 48 /* a block of 4: 48-51 */
#define VCPU_SPAN 4
#define OTHER_FD 52  /* open, but no KVM descriptor of ours */

enum call {
	VM_IRQ_LINE,       /* allowed: a VM request on the VM */
	VM_CREATE_VM,      /* KVM_CREATE_VM: never after set-up */
	VM_CREATE_VCPU,    /* KVM_CREATE_VCPU: never after set-up */
	VM_RUN,            /* a vCPU request on the VM descriptor */
	VCPU_RUN,          /* allowed: KVM_RUN on the last vCPU of the block */
	VCPU_SET_IRQCHIP,  /* a VM request on a vCPU */
	OTHER_RUN,         /* KVM_RUN on a descriptor outside the block */
	TTY_ON_VM,         /* a terminal request on the VM descriptor */
	TGKILL_SELF,       /* allowed: a signal to one of our own threads */
	TGKILL_PARENT,     /* a signal to another process */
};

/* In the child: set up the descriptors, enter the sandbox, make the call.  Exits 0 if the call got through. */
static void child(enum call c)
{
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, VM_FD) < 0 || dup2(null, OTHER_FD) < 0)
		_exit(90);
	for (int i = 0; i < VCPU_SPAN; i++)
		if (dup2(null, VCPU_BASE + i) < 0)
			_exit(90);
	pid_t parent = getppid();
	struct sandbox_report rep;
	struct sandbox_fds fds = { .vm_fd = VM_FD, .vcpu_fd_base = VCPU_BASE, .vcpu_fd_span = VCPU_SPAN, .tty_fd = -1 };
	if (sandbox_enter(&rep, &fds))
		_exit(91);
	struct kvm_irq_level l = { 0 };
	struct kvm_irqchip chip = { 0 };
	struct termios t;
	long r = 0;
	switch (c) {
	case VM_IRQ_LINE: r = ioctl(VM_FD, KVM_IRQ_LINE, &l); break;
	case VM_CREATE_VM: r = ioctl(VM_FD, KVM_CREATE_VM, 0); break;
	case VM_CREATE_VCPU: r = ioctl(VM_FD, KVM_CREATE_VCPU, 0); break;
	case VM_RUN: r = ioctl(VM_FD, KVM_RUN, 0); break;
	case VCPU_RUN: r = ioctl(VCPU_BASE + VCPU_SPAN - 1, KVM_RUN, 0); break;
	case VCPU_SET_IRQCHIP: r = ioctl(VCPU_BASE, KVM_SET_IRQCHIP, &chip); break;
	case OTHER_RUN: r = ioctl(OTHER_FD, KVM_RUN, 0); break;
	case TTY_ON_VM: r = ioctl(VM_FD, TCGETS, &t); break;
	case TGKILL_SELF: r = syscall(SYS_tgkill, getpid(), gettid(), 0); break;
	case TGKILL_PARENT: r = syscall(SYS_tgkill, parent, parent, 0); break;
	}
	/* Through the filter: /dev/null answers ENOTTY to every ioctl; signal 0 to ourselves succeeds. */
	_exit(r == 0 || errno == ENOTTY ? 0 : 92);
}

/* Run the call in a sandboxed child: its exit status, and what it wrote to stderr. */
static int run(enum call c, char *err, size_t errlen)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		child(c);
	}
	close(p[1]);
	ssize_t n = 0, k;
	while ((k = read(p[0], err + n, errlen - 1 - (size_t)n)) > 0 && (size_t)(n += k) < errlen - 1)
		;
	err[n] = 0;
	close(p[0]);
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect_allowed(enum call c)
{
	char err[512];
	CHECK_EQ(run(c, err, sizeof(err)), 0);
}

static void expect_refused(enum call c, const char *syscall_name)
{
	char err[512], want[96];
	CHECK_EQ(run(c, err, sizeof(err)), 1);
	snprintf(want, sizeof(want), "sandbox: forbidden system call %s ", syscall_name);
	CHECK(strstr(err, want) != NULL);
}

static void ioctls_go_to_their_descriptors(void)
{
	expect_allowed(VM_IRQ_LINE);
	expect_allowed(VCPU_RUN);
	expect_refused(VM_RUN, "ioctl");
	expect_refused(VCPU_SET_IRQCHIP, "ioctl");
	expect_refused(OTHER_RUN, "ioctl");
	expect_refused(TTY_ON_VM, "ioctl");
}

static void nothing_is_created_after_set_up(void)
{
	expect_refused(VM_CREATE_VM, "ioctl");
	expect_refused(VM_CREATE_VCPU, "ioctl");
}

static void signals_only_to_own_threads(void)
{
	expect_allowed(TGKILL_SELF);
	expect_refused(TGKILL_PARENT, "tgkill");
}

int main(void)
{
	RUN("sandbox", ioctls_go_to_their_descriptors);
	RUN("sandbox", nothing_is_created_after_set_up);
	RUN("sandbox", signals_only_to_own_threads);
	UNIT_EXIT();
}
