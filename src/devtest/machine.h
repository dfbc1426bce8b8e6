// SPDX-License-Identifier: MIT
/*
 * Device tests without a CPU (as QEMU's qtest).  The machine is keel's own,
 * built as `keel run` builds it (platform table, PCI, virtio over the PCI
 * transport, block stacks, I/O threads, ACPI tables in RAM), but run by the
 * device-test accelerator instead of KVM: there are no vCPUs, and a test
 * program makes the accesses a guest would make.
 *
 *   - port and MMIO reads and writes go through the same buses and devices
 *     as a vCPU's exits; a write that matches an ioeventfd signals it, as
 *     KVM does, so virtio kicks reach the devices' I/O threads;
 *   - guest RAM is read and written directly;
 *   - interrupt lines are recorded (level, rising edges), and a signalled
 *     irqfd is looked up in the GSI routing table the machine installed: an
 *     MSI route queues its (address, data), as the local APIC would receive it;
 *   - time is a virtual clock that moves only when the test moves it
 *     (vm_clock_advance()); timer-driven devices run then.
 *
 * Used by keel-devtest (main.c: the protocol over a socket, proto.c) and by
 * the generic machine fuzzer (tests/fuzz/fuzz_machine.c).  Never part of
 * `keel`: no code path of keel run reaches it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct dt_machine;

/* The real time the virtual clock starts at: 2026-01-01 00:00:00 UTC. */
#define DT_EPOCH 1767225600

/* Make vm a device-test machine (before vm_build()): its accelerator and a virtual clock.  NULL on ENOMEM. */
struct dt_machine *dt_attach(struct vm *vm);
/* After the machine's devices are gone (vm_stop()). */
void dt_detach(struct dt_machine *m);
struct vm *dt_vm(struct dt_machine *m);

/* Accesses a vCPU would make; sizes 1, 2, 4 (ports) or 1, 2, 4, 8 (memory).  Unhandled: all ones, dropped. */
uint64_t dt_pio_read(struct dt_machine *m, uint16_t port, unsigned size);
void dt_pio_write(struct dt_machine *m, uint16_t port, unsigned size, uint64_t value);
/* Memory: RAM where there is RAM, else MMIO (ioeventfds first). */
uint64_t dt_mem_read(struct dt_machine *m, uint64_t addr, unsigned size);
void dt_mem_write(struct dt_machine *m, uint64_t addr, unsigned size, uint64_t value);
/* Bulk RAM access (RAM only).  0 or -EFAULT. */
int dt_ram_read(struct dt_machine *m, uint64_t addr, void *dst, uint64_t len);
int dt_ram_write(struct dt_machine *m, uint64_t addr, const void *src, uint64_t len);

/* How many ioeventfds a write of size bytes to addr (port if pio) would signal: 0 or 1, as KVM. */
unsigned dt_ioeventfds_at(struct dt_machine *m, bool pio, uint64_t addr, unsigned size);

/* An interrupt line's level and how many times it rose.  -EINVAL for a GSI that is no line. */
int dt_irq(struct dt_machine *m, unsigned gsi, bool *level, uint64_t *raises);
/* The oldest MSI delivered and not yet taken.  False if none. */
bool dt_msi_pop(struct dt_machine *m, uint64_t *addr, uint32_t *data);
/* MSIs the queue had no room for (a test that never takes them). */
uint64_t dt_msi_lost(struct dt_machine *m);

/*
 * Take what the devices signalled (irqfds) and wait up to timeout_ms (0:
 * don't wait, -1: forever) for more, or for fd (-1: none) to be readable.
 * Returns 1 if fd is readable, 0 otherwise, -errno on failure.
 */
int dt_poll(struct dt_machine *m, int timeout_ms, int fd);
/* Wait up to timeout_ms for an MSI and take it.  True if one came. */
bool dt_msi_wait(struct dt_machine *m, int timeout_ms, uint64_t *addr, uint32_t *data);
