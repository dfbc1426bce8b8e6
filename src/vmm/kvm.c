// SPDX-License-Identifier: MIT
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel.h"
#include "base/util.h"
#include "layout.h"
#include "vm.h"

struct required_cap {
	int cap;
	const char *name;
	const char *why;
};

static const struct required_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM in user memory" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "real-mode TSS placement" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", "EPT identity map placement" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC, IOAPIC and local APICs" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID configuration" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "SMP start-up" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "interrupt routing" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "device notifications off the vCPU thread" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts from I/O threads" },
};

int kvm_open(int passed_fd)
{
	int fd = passed_fd;
	if (fd < 0) {
		fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e == ENOENT)
				log_error("/dev/kvm does not exist: this host offers no KVM (a VM without nested "
					  "virtualization, or kvm_intel/kvm_amd not loaded, or virtualization off in the "
					  "firmware); on such a host `make run` boots the guest inside the lab (QEMU "
					  "emulating an AMD-V machine, tests/lab/lab.sh), and keel-devtest tests device "
					  "models without a CPU");
			else if (e == EACCES || e == EPERM)
				log_error("/dev/kvm: permission denied (add your user to group 'kvm', "
					  "or pass an open descriptor with --kvm-fd)");
			else
				log_error("/dev/kvm: %s", strerror(e));
			return -e;
		}
	} else {
		struct stat st;
		if (fstat(fd, &st) < 0) {
			log_error("--kvm-fd %d: not an open file descriptor", fd);
			return -EBADF;
		}
		if (!S_ISCHR(st.st_mode)) {
			log_error("--kvm-fd %d: not /dev/kvm (not a character device)", fd);
			return -ENODEV;
		}
		/* Keep it out of anything we might ever exec. */
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}

	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version < 0) {
		log_error("%s is not a KVM device (KVM_GET_API_VERSION: %s)",
			  passed_fd >= 0 ? "--kvm-fd" : "/dev/kvm", strerror(errno));
		goto close_fd;
	}
	if (version != KVM_API_VERSION) {
		log_error("KVM API version %d is not supported (keel needs %d)", version, KVM_API_VERSION);
		goto close_fd;
	}
	int missing = 0;
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		const struct required_cap *c = &required_caps[i];
		if (ioctl(fd, KVM_CHECK_EXTENSION, c->cap) <= 0) {
			log_error("KVM lacks %s (needed for %s)", c->name, c->why);
			missing++;
		}
	}
	if (missing)
		goto close_fd;
	return fd;

close_fd:
	if (passed_fd < 0)
		close(fd);
	return -ENOTSUP;
}

struct kvm_cpuid2 *kvm_supported_cpuid(int kvm_fd)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		int e = errno;
		free(c);
		if (e != E2BIG)
			return NULL;
	}
	return NULL;
}

unsigned kvm_max_vcpus(int kvm_fd)
{
	int n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	return n > 0 ? (unsigned)n : 1;
}

/* The in-kernel interrupt controllers as KVM_CREATE_IRQCHIP and KVM_CREATE_PIT2 left them. */
struct kvm_chip_state {
	struct kvm_irqchip chips[3]; /* PIC master, PIC slave, IOAPIC */
	struct kvm_pit_state2 pit;
};

static int snapshot_chips(struct vm *vm)
{
	struct kvm_chip_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (unsigned i = 0; i < 3; i++) {
		s->chips[i].chip_id = i;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s->chips[i]) < 0)
			goto fail;
	}
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &s->pit) < 0)
		goto fail;
	vm->chip_state = s;
	return 0;
fail:;
	int r = -errno;
	free(s);
	log_error("reading the interrupt controllers' reset state: %s", strerror(-r));
	return r;
}

int kvm_reset_chips(struct vm *vm)
{
	const struct kvm_chip_state *s = vm->chip_state;
	for (unsigned i = 0; i < 3; i++)
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s->chips[i]) < 0)
			return -errno;
	struct kvm_pit_state2 pit = s->pit;
	return ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0 ? -errno : 0;
}

int kvm_create_vm(struct vm *vm)
{
	int r;
	unsigned max = kvm_max_vcpus(vm->kvm_fd);
	if (vm->nr_vcpus > max) {
		log_error("--cpus %u: KVM on this host allows at most %u vCPUs", vm->nr_vcpus, max);
		return -EINVAL;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EINVAL;
	}
	vm->supported_cpuid = kvm_supported_cpuid(vm->kvm_fd);
	if (!vm->supported_cpuid) {
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -EINVAL;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		r = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		goto free_cpuid;
	}
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		r = -errno;
		log_error("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		goto close_vm;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
		r = -errno;
		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto close_vm;
	}
	/* Memory slots first: with an in-kernel irqchip present, each slot
	 * update waits for an SRCU grace period (6 ms measured here). */
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gm_region *g = &vm->mem.regions[i];
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = g->gpa,
			.memory_size = g->len,
			.userspace_addr = (uint64_t)(uintptr_t)(vm->mem.host + g->offset),
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			r = -errno;
			log_error("KVM_SET_USER_MEMORY_REGION (slot %u, %llu MiB): %s", i,
				  (unsigned long long)(g->len >> 20), strerror(errno));
			goto close_vm;
		}
	}
	if (vm->rom) {
		/* The firmware image, read-only: the guest's writes to it exit as MMIO and are dropped. */
		bool ro = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
		struct kvm_userspace_memory_region region = {
			.slot = vm->mem.nr_regions,
			.flags = ro ? KVM_MEM_READONLY : 0,
			.guest_phys_addr = FIRMWARE_END - vm->rom_size,
			.memory_size = vm->rom_size,
			.userspace_addr = (uint64_t)(uintptr_t)vm->rom,
		};
		if (!ro)
			log_info("this KVM cannot map memory read-only; the guest could write to its firmware image");
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			r = -errno;
			log_error("KVM_SET_USER_MEMORY_REGION (firmware, %llu KiB): %s",
				  (unsigned long long)(vm->rom_size >> 10), strerror(errno));
			goto close_vm;
		}
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		r = -errno;
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto close_vm;
	}
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		r = -errno;
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		goto close_vm;
	}
	r = snapshot_chips(vm);
	if (r)
		goto close_vm;
	return 0;

close_vm:
	close(vm->vm_fd);
	vm->vm_fd = -1;
free_cpuid:
	free(vm->supported_cpuid);
	vm->supported_cpuid = NULL;
	return r;
}

void kvm_destroy_vm(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	vm->vm_fd = -1;
	free(vm->chip_state);
	vm->chip_state = NULL;
	free(vm->supported_cpuid);
	vm->supported_cpuid = NULL;
}

/* --- the accelerator interface (accel.h) --------------------------------- */

static void kvm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level ? 1 : 0 };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		log_debug("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

static int kvm_set_gsi_routing(struct vm *vm, const struct kvm_irq_routing *table)
{
	return ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0 ? -errno : 0;
}

static int kvm_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };
	return ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

static int kvm_ioeventfd(struct vm *vm, const struct kvm_ioeventfd *io)
{
	struct kvm_ioeventfd copy = *io;
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &copy) < 0 ? -errno : 0;
}

const struct accel_ops kvm_accel = {
	.name = "kvm",
	.set_irq = kvm_set_irq,
	.set_gsi_routing = kvm_set_gsi_routing,
	.irqfd = kvm_irqfd,
	.ioeventfd = kvm_ioeventfd,
};
