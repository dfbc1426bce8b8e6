// SPDX-License-Identifier: MIT
/*
 * virtio devices, independent of the transport.  A device model describes
 * itself with one static const struct virtio_device_desc; the PCI transport
 * (virtio_pci.c) owns the registers, virtqueues, interrupts and kick
 * eventfds, and calls the device through the descriptor.  Devices list
 * themselves in virtio_devices[] (virtio_pci.c); nothing switches on their
 * identity anywhere else.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/iothread.h"
#include "virtqueue.h"

struct vm;
struct vm_config;

#define VIRTIO_MAX_QUEUES 64

/* Device-independent feature bits. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_RING_PACKED 34

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* What a device model sees of its transport. */
struct virtio_dev {
	const char *name;               /* e.g. "virtio-blk0", for messages */
	uint64_t trace_name;            /* "blk0", packed for trace records */
	const struct guest_mem *mem;
	struct vm *vm;                  /* NULL in host-side harnesses */
	unsigned nr_queues;             /* set by the device's create() */
	uint16_t queue_max_size;        /* set by create(); power of two <= VQ_MAX_SIZE */
	uint64_t features;              /* device-specific bits offered, set by create() */
	uint64_t negotiated;            /* valid from start() on */
	struct virtqueue vq[VIRTIO_MAX_QUEUES];
	int kick_fd[VIRTIO_MAX_QUEUES]; /* eventfd the guest's notify lands on (ioeventfd) */
	bool harness;                   /* no threads: the harness calls queue_kick() itself */
	/* Transport services. */
	void (*notify)(struct virtio_dev *vd, unsigned q); /* raise q's interrupt */
	void (*config_changed)(struct virtio_dev *vd);
	void (*needs_reset)(struct virtio_dev *vd); /* DEVICE_NEEDS_RESET + config interrupt */
	void *transport;
};

/* Consume a pending kick of queue q (before processing it). */
void virtio_drain_kick(struct virtio_dev *vd, unsigned q);
/* Complete e with len and raise the queue's interrupt if the driver wants one. */
void virtio_complete(struct virtio_dev *vd, unsigned q, const struct vq_elem *e, uint32_t len);

/* One handler of a device's I/O thread: fn(opaque) runs whenever fd is readable. */
struct virtio_io_handler {
	int fd;
	iothread_fn *fn;
	void *opaque;
};

/*
 * A thread's busy-polling (see iothread_set_poll()); max_ns 0: none.  And
 * where it runs (iothread_set_cpus()); cpus NULL: wherever the scheduler
 * puts it.
 */
struct virtio_io_poll {
	unsigned max_ns;
	iothread_poll_fn *poll;
	iothread_notify_fn *notify;
	void *opaque;
	const cpu_set_t *cpus;
};

/*
 * Start I/O thread t, named name, running the n handlers (and polling as
 * poll says, if not NULL).  On failure the
 * device cannot go on: the error is logged (naming the device and why) and
 * DEVICE_NEEDS_RESET is set.  0 or -errno.
 */
int virtio_start_iothread(struct virtio_dev *vd, struct iothread *t, const char *name,
			  const struct virtio_io_handler *h, unsigned n, const struct virtio_io_poll *poll);

struct virtio_device_desc {
	const char *name;
	uint16_t device_id;  /* virtio device ID: 2 block, 3 console, 4 entropy */
	uint32_t pci_class;  /* class code for the PCI header */
	/* How many instances the configuration asks for. */
	unsigned (*count)(const struct vm_config *cfg);
	/* Optional: which --disk instance `index` presents (its index in cfg->disks), for the boot order. */
	int (*boot_disk)(const struct vm_config *cfg, unsigned index);
	/*
	 * Create instance `index`: set vd->nr_queues, queue_max_size, features.
	 * The kick eventfds exist already.  0 or -errno.
	 */
	int (*create)(struct virtio_dev *vd, unsigned index, void **state);
	void (*destroy)(void *state);
	uint32_t config_size;
	void (*config_read)(void *state, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(void *state, uint32_t off, const void *buf, uint32_t len);
	/* The driver set DRIVER_OK: queues are enabled; start processing. */
	void (*start)(void *state);
	/*
	 * Device reset (queues are already disabled): return only when no request
	 * is in flight and no handler touches guest memory any more.
	 */
	void (*reset)(void *state);
	/* Process queue q (called on the device's I/O thread, or by a harness). */
	void (*queue_kick)(void *state, unsigned q);
};

extern const struct virtio_device_desc virtio_blk_desc;
extern const struct virtio_device_desc virtio_console_desc;
extern const struct virtio_device_desc virtio_rng_desc;

/* Create every virtio device the configuration asks for on vm's PCI bus.  0 or -errno. */
int virtio_pci_create_all(struct vm *vm);
void virtio_pci_destroy_all(struct vm *vm);

/* For harnesses and fuzzers: one virtio-pci function with no VM behind it. */
struct virtio_pci;
struct virtio_pci *virtio_pci_new(const struct virtio_device_desc *desc, unsigned index,
				  const struct guest_mem *mem, struct vm *vm, bool harness);
void virtio_pci_free(struct virtio_pci *vp);
struct pci_dev *virtio_pci_dev(struct virtio_pci *vp);
struct virtio_dev *virtio_pci_vdev(struct virtio_pci *vp);
void *virtio_pci_state(struct virtio_pci *vp);
/* BAR 0 register access (what MMIO to the BAR does). */
uint64_t virtio_pci_bar_read(struct virtio_pci *vp, uint64_t off, unsigned size);
void virtio_pci_bar_write(struct virtio_pci *vp, uint64_t off, unsigned size, uint64_t value);
/* The eventfd each MSI-X vector raises (harnesses read it to see interrupts). */
int virtio_pci_vector_fd(struct virtio_pci *vp, unsigned vector);

/* Harness hooks of individual devices (tests and fuzzers run them without a VM). */
struct blk_dev;
struct blk_options;
void virtio_blk_attach(void *state, struct blk_dev *disk, const struct blk_options *opts);
void virtio_console_attach(void *state, int out_fd);
size_t virtio_console_input(void *state, const uint8_t *buf, size_t len);

/* BAR 0 layout (the capabilities point here). */
#define VIRTIO_PCI_COMMON 0x0000
#define VIRTIO_PCI_COMMON_SIZE 0x38
#define VIRTIO_PCI_ISR 0x1000
#define VIRTIO_PCI_DEVICE 0x2000
#define VIRTIO_PCI_DEVICE_SIZE 0x1000
#define VIRTIO_PCI_NOTIFY 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE 0x4000
#define VIRTIO_PCI_MSIX_PBA 0x5000
#define VIRTIO_PCI_BAR_SIZE 0x8000

/* Common configuration registers (virtio 1.x 4.1.4.3). */
enum {
	VPC_DFSELECT = 0x00,
	VPC_DF = 0x04,
	VPC_GFSELECT = 0x08,
	VPC_GF = 0x0c,
	VPC_MSIX_CONFIG = 0x10,
	VPC_NUM_QUEUES = 0x12,
	VPC_STATUS = 0x14,
	VPC_CFG_GENERATION = 0x15,
	VPC_Q_SELECT = 0x16,
	VPC_Q_SIZE = 0x18,
	VPC_Q_MSIX_VECTOR = 0x1a,
	VPC_Q_ENABLE = 0x1c,
	VPC_Q_NOFF = 0x1e,
	VPC_Q_DESCLO = 0x20,
	VPC_Q_DESCHI = 0x24,
	VPC_Q_AVAILLO = 0x28,
	VPC_Q_AVAILHI = 0x2c,
	VPC_Q_USEDLO = 0x30,
	VPC_Q_USEDHI = 0x34,
};
#define VIRTIO_MSI_NO_VECTOR 0xffff
