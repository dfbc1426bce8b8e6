// SPDX-License-Identifier: MIT
/*
 * VM-exit handling.  One handler per KVM exit reason, in a table; an exit
 * keel does not expect stops the VM with a register dump instead of being
 * ignored, so a confused guest never spins or hangs keel.
 */
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "trace/trace.h"
#include "base/util.h"
#include "vcpu.h"

typedef int (*exit_handler)(struct vcpu *v);

static int exit_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned size = run->io.size, count = run->io.count;
	uint64_t bytes = (uint64_t)size * count;
	if ((size != 1 && size != 2 && size != 4) || run->io.data_offset > (uint64_t)v->vm->run_size ||
	    bytes > (uint64_t)v->vm->run_size - run->io.data_offset) {
		log_error("vCPU %u: malformed port I/O exit (port 0x%x, size %u, count %u)", v->id, run->io.port,
			  size, count);
		vm_request_stop(v->vm, VM_STOP_ERROR, 0);
		return 1;
	}
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	/* String I/O (rep ins/outs) arrives as count consecutive accesses. */
	for (unsigned i = 0; i < count; i++, data += size) {
		uint64_t val = 0;
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			memcpy(&val, data, size);
			if (!bus_write(&v->vm->pio, run->io.port, size, val))
				log_debug("vCPU %u: write 0x%llx to unhandled port 0x%x", v->id,
					  (unsigned long long)val, run->io.port);
		} else {
			if (!bus_read(&v->vm->pio, run->io.port, size, &val))
				log_debug("vCPU %u: read from unhandled port 0x%x", v->id, run->io.port);
			memcpy(data, &val, size);
		}
	}
	return 0;
}

static int exit_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		log_error("vCPU %u: malformed MMIO exit (length %u)", v->id, len);
		vm_request_stop(v->vm, VM_STOP_ERROR, 0);
		return 1;
	}
	uint64_t val = 0;
	if (run->mmio.is_write) {
		memcpy(&val, run->mmio.data, len);
		if (!bus_write(&v->vm->mmio, run->mmio.phys_addr, len, val & io_ones(len)))
			log_debug("vCPU %u: write to unhandled MMIO 0x%llx", v->id,
				  (unsigned long long)run->mmio.phys_addr);
	} else {
		if (!bus_read(&v->vm->mmio, run->mmio.phys_addr, len, &val))
			log_debug("vCPU %u: read from unhandled MMIO 0x%llx", v->id,
				  (unsigned long long)run->mmio.phys_addr);
		memcpy(run->mmio.data, &val, len);
	}
	return 0;
}

/* Only without an in-kernel LAPIC; re-entering lets KVM wait for the interrupt. */
static int exit_hlt(struct vcpu *v)
{
	(void)v;
	return 0;
}

/* A signal interrupted KVM_RUN; the loop checks for a stop request. */
static int exit_intr(struct vcpu *v)
{
	(void)v;
	return 0;
}

static int crash(struct vcpu *v, const char *what)
{
	log_error("vCPU %u: %s", v->id, what);
	vcpu_dump(v, stderr);
	vm_request_stop(v->vm, VM_STOP_CRASH, 0);
	return 1;
}

static int exit_shutdown(struct vcpu *v)
{
	return crash(v, "triple fault (the guest hit an exception it could not handle)");
}

static int exit_fail_entry(struct vcpu *v)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "KVM could not enter the guest (hardware reason 0x%llx)",
		 (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
	return crash(v, msg);
}

static int exit_internal_error(struct vcpu *v)
{
	char msg[160];
	const char *what;
	switch (v->run->internal.suberror) {
	case KVM_INTERNAL_ERROR_EMULATION: what = "instruction emulation failed"; break;
	case KVM_INTERNAL_ERROR_SIMUL_EX: what = "exception while delivering an exception"; break;
	case KVM_INTERNAL_ERROR_DELIVERY_EV: what = "event delivery failed"; break;
	default: what = "internal error"; break;
	}
	int n = snprintf(msg, sizeof(msg), "KVM %s (suberror %u)", what, v->run->internal.suberror);
	for (unsigned i = 0; i < v->run->internal.ndata && i < 4 && n > 0 && (size_t)n < sizeof(msg); i++)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, " 0x%llx",
			      (unsigned long long)v->run->internal.data[i]);
	return crash(v, msg);
}

static int exit_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(v->vm, VM_STOP_POWEROFF, 0);
		return 1;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(v->vm, VM_STOP_RESET, 0);
		return 1;
	default:
		return crash(v, "guest crash reported by KVM");
	}
}

static const exit_handler exit_handlers[] = {
	[KVM_EXIT_IO] = exit_io,
	[KVM_EXIT_MMIO] = exit_mmio,
	[KVM_EXIT_HLT] = exit_hlt,
	[KVM_EXIT_INTR] = exit_intr,
	[KVM_EXIT_SHUTDOWN] = exit_shutdown,
	[KVM_EXIT_FAIL_ENTRY] = exit_fail_entry,
	[KVM_EXIT_INTERNAL_ERROR] = exit_internal_error,
	[KVM_EXIT_SYSTEM_EVENT] = exit_system_event,
};

static int dispatch(struct vcpu *v, uint32_t reason)
{
	if (reason < ARRAY_SIZE(exit_handlers) && exit_handlers[reason])
		return exit_handlers[reason](v);
	char msg[64];
	snprintf(msg, sizeof(msg), "unexpected KVM exit reason %u", reason);
	return crash(v, msg);
}

/* vcpu:exit, stamped when handling began: reason, port or MMIO address, bytes, direction, time taken. */
static void trace_exit(const struct kvm_run *run, uint32_t reason, uint64_t t0)
{
	uint64_t t1 = trace_now();
	uint64_t addr = 0, size = 0, write = 0;
	if (reason == KVM_EXIT_IO) {
		addr = run->io.port;
		size = (uint64_t)run->io.size * run->io.count;
		write = run->io.direction == KVM_EXIT_IO_OUT;
	} else if (reason == KVM_EXIT_MMIO) {
		addr = run->mmio.phys_addr;
		size = run->mmio.len;
		write = run->mmio.is_write;
	}
	TRACE_AT(t0, VCPU_EXIT, reason, addr, size, write, t1 - t0);
}

int vcpu_handle_exit(struct vcpu *v)
{
	uint32_t reason = v->run->exit_reason;
	/* A disabled event costs this one load and branch; the clock is read only when enabled. */
	if (!trace_enabled(TE_VCPU_EXIT))
		return dispatch(v, reason);
	uint64_t t0 = trace_now();
	int r = dispatch(v, reason);
	trace_exit(v->run, reason, t0);
	return r;
}
