// SPDX-License-Identifier: MIT
/*
 * The virtio 1.x PCI transport (modern only, virtio spec 4.1): one memory
 * BAR holding the common configuration, ISR, device configuration, notify
 * area and MSI-X table/PBA, described by vendor capabilities.  Kicks land on
 * an eventfd through KVM ioeventfd (no exit to keel); interrupts leave
 * through an irqfd per MSI-X vector whose GSI route follows the guest's
 * MSI-X table.  There is no INTx: drivers must use MSI-X.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/accel.h"
#include "vmm/config.h"
#include "vmm/irq_route.h"
#include "dev/pci.h"
#include "trace/trace.h"
#include "base/util.h"
#include "vmm/vm.h"
#include "virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)

/* virtio_pci_cap cfg_type values. */
enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_PCI_CFG = 5 };

struct virtio_pci_cap {
	uint8_t cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2];
	uint32_t offset, length;
};
static_assert(sizeof(struct virtio_pci_cap) == 16, "virtio_pci_cap layout");

struct virtio_pci_notify_cap {
	struct virtio_pci_cap cap;
	uint32_t notify_off_multiplier;
};
static_assert(sizeof(struct virtio_pci_notify_cap) == 20, "virtio_pci_notify_cap layout");

struct virtio_pci_cfg_cap {
	struct virtio_pci_cap cap;
	uint8_t pci_cfg_data[4];
};
static_assert(sizeof(struct virtio_pci_cfg_cap) == 20, "virtio_pci_cfg_cap layout");

struct msix_cap {
	uint8_t id, next;
	uint16_t control;
	uint32_t table, pba;
};
static_assert(sizeof(struct msix_cap) == 12, "MSI-X capability layout");
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_CTRL_ENABLE 0x8000

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};
static_assert(sizeof(struct msix_entry) == 16, "MSI-X table entry layout");

struct queue_regs {
	uint16_t size, vector, enable;
	uint32_t desc[2], driver[2], device[2];
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev vd;
	const struct virtio_device_desc *desc;
	void *state;
	char name[24];
	pthread_mutex_t lifecycle; /* serialises device reset and start */
	pthread_mutex_t lock; /* the registers below */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint16_t msix_config, queue_select;
	uint8_t status, config_generation, isr;
	struct queue_regs q[VIRTIO_MAX_QUEUES];
	unsigned nr_vectors;
	struct msix_entry msix[MAX_VECTORS];
	uint64_t pba[(MAX_VECTORS + 63) / 64];
	bool msix_enabled, msix_maskall;
	int vector_fd[MAX_VECTORS];
	unsigned gsi[MAX_VECTORS];
	unsigned nr_irqfds;     /* vectors bound to their GSI (vector_fd[0 .. nr_irqfds)) */
	uint64_t ioeventfd_bar; /* where the notify ioeventfds are, 0: none */
	unsigned msix_cap_off, cfg_cap_off;
	pthread_mutex_t intx_lock; /* serialises INTx updates (sync_intx) */
};

/* --- interrupts ---------------------------------------------------------- */

static bool vector_masked(const struct virtio_pci *vp, unsigned v)
{
	return !vp->msix_enabled || vp->msix_maskall || (vp->msix[v].ctrl & 1);
}

/*
 * Keep vector v's KVM route in step with its table entry: installed while
 * MSI-X is on and the entry holds an address, whether masked or not (masking
 * only decides whether keel fires, under vp->lock), so an injection never
 * meets a missing route.  Returns true if the routing table changed (the
 * caller commits).  Lock held.
 */
static bool route_vector(struct virtio_pci *vp, unsigned v)
{
	if (!vp->vd.vm)
		return false;
	uint64_t addr = (uint64_t)vp->msix[v].addr_hi << 32 | vp->msix[v].addr_lo;
	bool valid = vp->msix_enabled && addr;
	return irq_msi_set(&vp->vd.vm->irq, vp->gsi[v], valid, addr, vp->msix[v].data);
}

static void commit_routes(struct virtio_pci *vp)
{
	int r = vp->vd.vm ? irq_commit(&vp->vd.vm->irq) : 0;
	if (r)
		log_debug("%s: MSI routes: %s", vp->name, strerror(-r));
}

static void fire(struct virtio_pci *vp, unsigned v)
{
	TRACE(IRQ_MSI, (uint64_t)vp->msix[v].addr_hi << 32 | vp->msix[v].addr_lo, vp->msix[v].data);
	uint64_t one = 1;
	(void)!write(vp->vector_fd[v], &one, sizeof(one));
}

/* Deliver a pending message of vector v if it is unmasked now.  Lock held. */
static void deliver_pending(struct virtio_pci *vp, unsigned v)
{
	if (!vector_masked(vp, v) && (vp->pba[v / 64] & (1ull << (v % 64)))) {
		vp->pba[v / 64] &= ~(1ull << (v % 64));
		fire(vp, v);
	}
}

/*
 * Without MSI-X the device interrupts through INTA# (virtio 1.x, 4.1.4.5):
 * the pin is high while the ISR has a bit set, and reading the ISR clears
 * it.  intx_lock orders the updates, so the last decision reaches the pin
 * (it is taken before vp->lock and before the PCI bus lock, never inside
 * them).
 */
static void sync_intx(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->intx_lock);
	pthread_mutex_lock(&vp->lock);
	bool level = vp->isr && !vp->msix_enabled;
	pthread_mutex_unlock(&vp->lock);
	pci_dev_set_intx(&vp->pci, level);
	pthread_mutex_unlock(&vp->intx_lock);
}

/* Raise the vector a queue or the configuration uses (read under the lock), or INTx without MSI-X. */
static void raise_vector(struct virtio_pci *vp, const uint16_t *vector, uint8_t isr_bit)
{
	pthread_mutex_lock(&vp->lock);
	vp->isr |= isr_bit;
	unsigned v = *vector;
	bool intx = !vp->msix_enabled;
	/* Mask check and injection under one lock: a concurrent mask cannot slip between them. */
	if (v < vp->nr_vectors) {
		if (vector_masked(vp, v))
			vp->pba[v / 64] |= 1ull << (v % 64);
		else
			fire(vp, v);
	}
	pthread_mutex_unlock(&vp->lock);
	if (intx)
		sync_intx(vp);
}

static void transport_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_pci *vp = vd->transport;
	if (q < vd->nr_queues)
		raise_vector(vp, &vp->q[q].vector, 1);
}

static void transport_config_changed(struct virtio_dev *vd)
{
	struct virtio_pci *vp = vd->transport;
	pthread_mutex_lock(&vp->lock);
	vp->config_generation++;
	pthread_mutex_unlock(&vp->lock);
	raise_vector(vp, &vp->msix_config, 2);
}

static void transport_needs_reset(struct virtio_dev *vd)
{
	struct virtio_pci *vp = vd->transport;
	pthread_mutex_lock(&vp->lock);
	bool was = vp->status & VIRTIO_STATUS_NEEDS_RESET;
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	pthread_mutex_unlock(&vp->lock);
	if (!was) {
		log_error("%s: the driver broke a virtqueue; the device needs a reset", vp->name);
		raise_vector(vp, &vp->msix_config, 2);
	}
}

void virtio_complete(struct virtio_dev *vd, unsigned q, const struct vq_elem *e, uint32_t len)
{
	TRACE(VIRTIO_COMPLETE, vd->trace_name, q, e->head, len);
	if (vq_push(&vd->vq[q], e, len))
		vd->notify(vd, q);
}

void virtio_drain_kick(struct virtio_dev *vd, unsigned q)
{
	uint64_t n;
	/* A harness kicks by calling queue_kick() itself: its eventfd is never written. */
	if (!vd->harness)
		(void)!read(vd->kick_fd[q], &n, sizeof(n));
	TRACE(VIRTIO_KICK, vd->trace_name, q);
}

int virtio_start_iothread(struct virtio_dev *vd, struct iothread *t, const char *name,
			  const struct virtio_io_handler *h, unsigned n, const struct virtio_io_poll *poll)
{
	int rc = iothread_init(t, name);
	for (unsigned i = 0; i < n && !rc; i++)
		rc = iothread_add(t, h[i].fd, h[i].fn, h[i].opaque);
	if (!rc && poll && poll->max_ns)
		rc = iothread_set_poll(t, poll->max_ns, poll->poll, poll->notify, poll->opaque);
	if (!rc && poll && poll->cpus)
		rc = iothread_set_cpus(t, poll->cpus);
	if (!rc)
		rc = iothread_start(t);
	if (rc) {
		iothread_destroy(t);
		log_error("%s: cannot start its I/O thread %s: %s", vd->name, name, strerror(-rc));
		vd->needs_reset(vd);
	}
	return rc;
}

/* --- ioeventfd ----------------------------------------------------------- */

/* The queues' notify addresses in BAR 0 at `bar` signal their kick eventfds (or no longer). */
static void set_ioeventfds(struct virtio_pci *vp, uint64_t bar, bool assign)
{
	if (!vp->vd.vm || vp->vd.harness)
		return;
	for (unsigned q = 0; q < vp->vd.nr_queues; q++) {
		struct kvm_ioeventfd io = {
			.addr = bar + VIRTIO_PCI_NOTIFY + VIRTIO_PCI_NOTIFY_MULT * q,
			.len = 2,
			.fd = vp->vd.kick_fd[q],
			.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
		};
		int r = vp->vd.vm->accel->ioeventfd(vp->vd.vm, &io);
		if (r)
			log_debug("%s: ioeventfd for queue %u: %s", vp->name, q, strerror(-r));
	}
	vp->ioeventfd_bar = assign ? bar : 0;
}

static void bar_moved(struct pci_dev *d, unsigned bar, uint64_t old, uint64_t now)
{
	struct virtio_pci *vp = d->opaque;
	if (bar != 0)
		return;
	if (old)
		set_ioeventfds(vp, old, false);
	if (now)
		set_ioeventfds(vp, now, true);
}

/* --- common configuration ------------------------------------------------ */

static void device_reset(struct virtio_pci *vp)
{
	/* Queues first: no pop after this, and completions of older requests are dropped. */
	for (unsigned q = 0; q < vp->vd.nr_queues; q++)
		vq_reset(&vp->vd.vq[q]);
	vp->desc->reset(vp->state);
	pthread_mutex_lock(&vp->lock);
	vp->dfselect = vp->gfselect = 0;
	vp->driver_features = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->queue_select = 0;
	vp->status = 0;
	vp->isr = 0;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->q[q] = (struct queue_regs){ .size = vp->vd.queue_max_size, .vector = VIRTIO_MSI_NO_VECTOR };
	pthread_mutex_unlock(&vp->lock);
}

static uint64_t offered_features(const struct virtio_pci *vp)
{
	uint64_t f = vp->vd.features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC |
		     1ull << VIRTIO_F_EVENT_IDX;
	/* Packed rings on request (--virtio-packed), as QEMU's packed=on; harnesses choose themselves. */
	if (!vp->vd.vm || vp->vd.vm->cfg->virtio_packed)
		f |= 1ull << VIRTIO_F_RING_PACKED;
	return f;
}

/* Enable queue q with the addresses the driver wrote.  Lock held. */
static void enable_queue(struct virtio_pci *vp, unsigned q)
{
	struct queue_regs *r = &vp->q[q];
	uint64_t desc = (uint64_t)r->desc[1] << 32 | r->desc[0];
	uint64_t avail = (uint64_t)r->driver[1] << 32 | r->driver[0];
	uint64_t used = (uint64_t)r->device[1] << 32 | r->device[0];
	bool event_idx = vp->driver_features & (1ull << VIRTIO_F_EVENT_IDX);
	bool packed = vp->driver_features & (1ull << VIRTIO_F_RING_PACKED);
	if (vq_enable(&vp->vd.vq[q], r->size, desc, avail, used, event_idx, packed)) {
		log_debug("%s: queue %u: rings not in guest RAM or misaligned; not enabled", vp->name, q);
		return;
	}
	r->enable = 1;
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off, unsigned size)
{
	unsigned qs = vp->queue_select;
	struct queue_regs *q = qs < vp->vd.nr_queues ? &vp->q[qs] : NULL;
	uint64_t f = offered_features(vp);
	switch (size << 8 | off) {
	case 4 << 8 | VPC_DFSELECT: return vp->dfselect;
	case 4 << 8 | VPC_DF: return vp->dfselect < 2 ? (uint32_t)(f >> (32 * vp->dfselect)) : 0;
	case 4 << 8 | VPC_GFSELECT: return vp->gfselect;
	case 4 << 8 | VPC_GF:
		return vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0;
	case 2 << 8 | VPC_MSIX_CONFIG: return vp->msix_config;
	case 2 << 8 | VPC_NUM_QUEUES: return vp->vd.nr_queues;
	case 1 << 8 | VPC_STATUS: return vp->status;
	case 1 << 8 | VPC_CFG_GENERATION: return vp->config_generation;
	case 2 << 8 | VPC_Q_SELECT: return vp->queue_select;
	case 2 << 8 | VPC_Q_SIZE: return q ? q->size : 0;
	case 2 << 8 | VPC_Q_MSIX_VECTOR: return q ? q->vector : VIRTIO_MSI_NO_VECTOR;
	case 2 << 8 | VPC_Q_ENABLE: return q ? q->enable : 0;
	case 2 << 8 | VPC_Q_NOFF: return q ? qs : 0;
	case 4 << 8 | VPC_Q_DESCLO: return q ? q->desc[0] : 0;
	case 4 << 8 | VPC_Q_DESCHI: return q ? q->desc[1] : 0;
	case 4 << 8 | VPC_Q_AVAILLO: return q ? q->driver[0] : 0;
	case 4 << 8 | VPC_Q_AVAILHI: return q ? q->driver[1] : 0;
	case 4 << 8 | VPC_Q_USEDLO: return q ? q->device[0] : 0;
	case 4 << 8 | VPC_Q_USEDHI: return q ? q->device[1] : 0;
	default: return 0; /* wrong width or reserved: reads as zero */
	}
}

/* A status write.  Returns true if the device must be reset (done without the lock). */
static bool write_status(struct virtio_pci *vp, uint8_t v, bool *start)
{
	if (v == 0)
		return true;
	uint8_t old = vp->status;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* Refuse features we did not offer, and legacy (VERSION_1 is required). */
		uint64_t f = vp->driver_features;
		if ((f & ~offered_features(vp)) || !(f & (1ull << VIRTIO_F_VERSION_1)))
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		else
			vp->vd.negotiated = f;
	}
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(v & VIRTIO_STATUS_FEATURES_OK))
			v &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
		else
			*start = true;
	}
	/* The driver sets bits; only a reset clears them (NEEDS_RESET is the device's to set). */
	vp->status = (uint8_t)(old | (v & ~VIRTIO_STATUS_NEEDS_RESET));
	return false;
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned size, uint32_t v)
{
	bool reset = false, start = false;
	pthread_mutex_lock(&vp->lock);
	unsigned qs = vp->queue_select;
	struct queue_regs *q = qs < vp->vd.nr_queues ? &vp->q[qs] : NULL;
	/* Queue registers are frozen while the queue is enabled (spec 4.1.4.3.2). */
	bool q_writable = q && !q->enable && !(vp->status & VIRTIO_STATUS_DRIVER_OK);
	bool f_writable = !(vp->status & VIRTIO_STATUS_FEATURES_OK);
	switch (size << 8 | off) {
	case 4 << 8 | VPC_DFSELECT: vp->dfselect = v; break;
	case 4 << 8 | VPC_GFSELECT: vp->gfselect = v; break;
	case 4 << 8 | VPC_GF:
		if (f_writable && vp->gfselect < 2) {
			unsigned sh = 32 * vp->gfselect;
			vp->driver_features = (vp->driver_features & ~(0xffffffffull << sh)) | (uint64_t)v << sh;
		}
		break;
	case 2 << 8 | VPC_MSIX_CONFIG:
		vp->msix_config = (uint16_t)v < vp->nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case 1 << 8 | VPC_STATUS: reset = write_status(vp, (uint8_t)v, &start); break;
	case 2 << 8 | VPC_Q_SELECT: vp->queue_select = (uint16_t)v; break;
	case 2 << 8 | VPC_Q_SIZE:
		/* Up to the maximum, a power of two unless the rings are packed; others are ignored. */
		if (q_writable && v && v <= vp->vd.queue_max_size &&
		    (!(v & (v - 1)) || (vp->driver_features & (1ull << VIRTIO_F_RING_PACKED))))
			q->size = (uint16_t)v;
		break;
	case 2 << 8 | VPC_Q_MSIX_VECTOR:
		if (q)
			q->vector = (uint16_t)v < vp->nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case 2 << 8 | VPC_Q_ENABLE:
		if (q_writable && v == 1)
			enable_queue(vp, qs);
		break;
	case 4 << 8 | VPC_Q_DESCLO: if (q_writable) q->desc[0] = v; break;
	case 4 << 8 | VPC_Q_DESCHI: if (q_writable) q->desc[1] = v; break;
	case 4 << 8 | VPC_Q_AVAILLO: if (q_writable) q->driver[0] = v; break;
	case 4 << 8 | VPC_Q_AVAILHI: if (q_writable) q->driver[1] = v; break;
	case 4 << 8 | VPC_Q_USEDLO: if (q_writable) q->device[0] = v; break;
	case 4 << 8 | VPC_Q_USEDHI: if (q_writable) q->device[1] = v; break;
	default: break; /* read-only, reserved or wrong width: ignored */
	}
	pthread_mutex_unlock(&vp->lock);
	/* Reset and start of one device never overlap, whichever vCPUs write the status. */
	if (reset || start) {
		pthread_mutex_lock(&vp->lifecycle);
		if (reset)
			device_reset(vp);
		else
			vp->desc->start(vp->state);
		pthread_mutex_unlock(&vp->lifecycle);
		if (reset)
			sync_intx(vp); /* the ISR is clear: INTA# goes low */
	}
}

/* --- BAR 0 --------------------------------------------------------------- */

static uint64_t msix_read(struct virtio_pci *vp, uint64_t off, unsigned size)
{
	if (off >= VIRTIO_PCI_MSIX_PBA) {
		uint64_t i = (off - VIRTIO_PCI_MSIX_PBA) / 8, sh = 8 * ((off - VIRTIO_PCI_MSIX_PBA) % 8);
		if (i >= ARRAY_SIZE(vp->pba) || sh + 8 * size > 64)
			return 0;
		return (vp->pba[i] >> sh) & io_ones(size);
	}
	uint64_t e = (off - VIRTIO_PCI_MSIX_TABLE) / 16, w = (off % 16) / 4;
	if (e >= vp->nr_vectors || (size != 4 && size != 8) || off % size)
		return 0;
	const uint32_t *f = &vp->msix[e].addr_lo;
	return size == 8 ? (uint64_t)f[w + 1] << 32 | f[w] : f[w];
}

static void msix_write(struct virtio_pci *vp, uint64_t off, unsigned size, uint64_t v)
{
	if (off >= VIRTIO_PCI_MSIX_PBA)
		return; /* the PBA is read-only */
	uint64_t e = (off - VIRTIO_PCI_MSIX_TABLE) / 16, w = (off % 16) / 4;
	if (e >= vp->nr_vectors || (size != 4 && size != 8) || off % size)
		return;
	uint32_t *f = &vp->msix[e].addr_lo;
	for (unsigned i = 0; i < size / 4; i++) {
		uint32_t val = (uint32_t)(v >> (32 * i));
		f[w + i] = w + i == 3 ? (val & 1) : val; /* vector control: only the mask bit */
	}
	if (route_vector(vp, (unsigned)e))
		commit_routes(vp);
	deliver_pending(vp, (unsigned)e);
}

uint64_t virtio_pci_bar_read(struct virtio_pci *vp, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	if (off < VIRTIO_PCI_COMMON + VIRTIO_PCI_COMMON_SIZE) {
		pthread_mutex_lock(&vp->lock);
		v = common_read(vp, (unsigned)off, size);
		pthread_mutex_unlock(&vp->lock);
	} else if (off == VIRTIO_PCI_ISR && size == 1) {
		pthread_mutex_lock(&vp->lock);
		v = vp->isr; /* read-to-clear */
		vp->isr = 0;
		pthread_mutex_unlock(&vp->lock);
		sync_intx(vp);
	} else if (off >= VIRTIO_PCI_DEVICE && off < VIRTIO_PCI_DEVICE + VIRTIO_PCI_DEVICE_SIZE) {
		uint32_t o = (uint32_t)(off - VIRTIO_PCI_DEVICE);
		uint8_t buf[8] = { 0 };
		if (o < vp->desc->config_size && size <= vp->desc->config_size - o && vp->desc->config_read)
			vp->desc->config_read(vp->state, o, buf, size);
		memcpy(&v, buf, size);
	} else if (off >= VIRTIO_PCI_MSIX_TABLE && off < VIRTIO_PCI_BAR_SIZE) {
		pthread_mutex_lock(&vp->lock);
		v = msix_read(vp, off, size);
		pthread_mutex_unlock(&vp->lock);
	}
	return v;
}

void virtio_pci_bar_write(struct virtio_pci *vp, uint64_t off, unsigned size, uint64_t value)
{
	if (off < VIRTIO_PCI_COMMON + VIRTIO_PCI_COMMON_SIZE) {
		common_write(vp, (unsigned)off, size, (uint32_t)value);
	} else if (off >= VIRTIO_PCI_DEVICE && off < VIRTIO_PCI_DEVICE + VIRTIO_PCI_DEVICE_SIZE) {
		uint32_t o = (uint32_t)(off - VIRTIO_PCI_DEVICE);
		if (o < vp->desc->config_size && size <= vp->desc->config_size - o && vp->desc->config_write)
			vp->desc->config_write(vp->state, o, &value, size);
	} else if (off >= VIRTIO_PCI_NOTIFY && off < VIRTIO_PCI_NOTIFY + VIRTIO_PCI_NOTIFY_MULT * VIRTIO_MAX_QUEUES) {
		/* Reached only without ioeventfd (other widths, harnesses): kick by hand. */
		unsigned q = (unsigned)(off - VIRTIO_PCI_NOTIFY) / VIRTIO_PCI_NOTIFY_MULT;
		if (q >= vp->vd.nr_queues)
			return;
		if (vp->vd.harness) {
			vp->desc->queue_kick(vp->state, q);
		} else {
			uint64_t one = 1;
			(void)!write(vp->vd.kick_fd[q], &one, sizeof(one));
		}
	} else if (off >= VIRTIO_PCI_MSIX_TABLE && off < VIRTIO_PCI_BAR_SIZE) {
		pthread_mutex_lock(&vp->lock);
		msix_write(vp, off, size, value);
		pthread_mutex_unlock(&vp->lock);
	}
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	return virtio_pci_bar_read(opaque, off, size);
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	virtio_pci_bar_write(opaque, off, size, value);
}

static const struct io_ops bar_ops = { bar_read, bar_write };

/* --- configuration space ------------------------------------------------- */

/* The VIRTIO_PCI_CAP_PCI_CFG window: a BAR access through configuration space. */
static bool cfg_window(struct virtio_pci *vp, uint64_t *off, unsigned *len)
{
	unsigned c = vp->cfg_cap_off;
	uint32_t o = pci_cfg32(&vp->pci, c + offsetof(struct virtio_pci_cap, offset));
	uint32_t l = pci_cfg32(&vp->pci, c + offsetof(struct virtio_pci_cap, length));
	if (vp->pci.cfg[c + offsetof(struct virtio_pci_cap, bar)] != 0 || (l != 1 && l != 2 && l != 4) ||
	    o % l || o >= VIRTIO_PCI_BAR_SIZE)
		return false;
	*off = o;
	*len = l;
	return true;
}

static void config_reading(struct pci_dev *d, unsigned off, unsigned size)
{
	struct virtio_pci *vp = d->opaque;
	unsigned data = vp->cfg_cap_off + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint64_t o;
	unsigned l;
	if (off + size <= data || off >= data + 4 || !cfg_window(vp, &o, &l))
		return;
	uint32_t v = (uint32_t)virtio_pci_bar_read(vp, o, l);
	memcpy(d->cfg + data, &v, 4);
}

static void config_written(struct pci_dev *d, unsigned off, unsigned size)
{
	struct virtio_pci *vp = d->opaque;
	unsigned data = vp->cfg_cap_off + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	unsigned ctl = vp->msix_cap_off + offsetof(struct msix_cap, control);
	uint64_t o;
	unsigned l;
	if (off < data + 4 && off + size > data && cfg_window(vp, &o, &l)) {
		uint32_t v = pci_cfg32(d, data);
		virtio_pci_bar_write(vp, o, l, v & io_ones(l));
	}
	if (off < ctl + 2 && off + size > ctl) {
		uint16_t c = (uint16_t)(d->cfg[ctl] | d->cfg[ctl + 1] << 8);
		pthread_mutex_lock(&vp->lock);
		vp->msix_enabled = c & MSIX_CTRL_ENABLE;
		vp->msix_maskall = c & MSIX_CTRL_MASKALL;
		bool changed = false;
		for (unsigned v = 0; v < vp->nr_vectors; v++)
			changed |= route_vector(vp, v);
		if (changed)
			commit_routes(vp); /* once for all vectors */
		for (unsigned v = 0; v < vp->nr_vectors; v++)
			deliver_pending(vp, v);
		pthread_mutex_unlock(&vp->lock);
	}
}

static int add_virtio_cap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len)
{
	struct virtio_pci_cap c = { .cap_vndr = PCI_CAP_ID_VNDR, .cap_len = sizeof(c), .cfg_type = type,
				    .offset = off, .length = len };
	return pci_dev_add_cap(d, &c, sizeof(c));
}

static int build_config_space(struct virtio_pci *vp)
{
	struct pci_dev *d = &vp->pci;
	pci_dev_init_header(d, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + vp->desc->device_id),
			    vp->desc->pci_class, 1);
	d->cfg[PCI_SUBSYS_VENDOR] = (uint8_t)VIRTIO_PCI_VENDOR;
	d->cfg[PCI_SUBSYS_VENDOR + 1] = VIRTIO_PCI_VENDOR >> 8;
	d->cfg[PCI_SUBSYS_ID] = 0x40; /* modern devices use 0x40 and up */
	d->cfg[PCI_INT_PIN] = 1;      /* INTA#, used while MSI-X is off */
	pci_dev_set_bar(d, 0, VIRTIO_PCI_BAR_SIZE, &bar_ops, vp);
	d->opaque = vp;
	d->bar_moved = bar_moved;
	d->config_reading = config_reading;
	d->config_written = config_written;

	int r = 0;
	if (add_virtio_cap(d, CAP_COMMON, VIRTIO_PCI_COMMON, VIRTIO_PCI_COMMON_SIZE) < 0 ||
	    add_virtio_cap(d, CAP_ISR, VIRTIO_PCI_ISR, 1) < 0 ||
	    (vp->desc->config_size && add_virtio_cap(d, CAP_DEVICE, VIRTIO_PCI_DEVICE, vp->desc->config_size) < 0))
		return -ENOSPC;
	struct virtio_pci_notify_cap n = {
		.cap = { .cap_vndr = PCI_CAP_ID_VNDR, .cap_len = sizeof(n), .cfg_type = CAP_NOTIFY,
			 .offset = VIRTIO_PCI_NOTIFY, .length = VIRTIO_PCI_NOTIFY_MULT * vp->vd.nr_queues },
		.notify_off_multiplier = VIRTIO_PCI_NOTIFY_MULT,
	};
	if (pci_dev_add_cap(d, &n, sizeof(n)) < 0)
		return -ENOSPC;
	struct virtio_pci_cfg_cap pc = { .cap = { .cap_vndr = PCI_CAP_ID_VNDR, .cap_len = sizeof(pc),
						  .cfg_type = CAP_PCI_CFG } };
	r = pci_dev_add_cap(d, &pc, sizeof(pc));
	if (r < 0)
		return r;
	vp->cfg_cap_off = (unsigned)r;
	/* The driver picks bar, offset, length and data of the window. */
	d->wmask[r + offsetof(struct virtio_pci_cap, bar)] = 0xff;
	memset(d->wmask + r + offsetof(struct virtio_pci_cap, offset), 0xff, 8);
	memset(d->wmask + r + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data), 0xff, 4);
	struct msix_cap m = { .id = PCI_CAP_ID_MSIX, .control = (uint16_t)(vp->nr_vectors - 1),
			      .table = VIRTIO_PCI_MSIX_TABLE, .pba = VIRTIO_PCI_MSIX_PBA };
	r = pci_dev_add_cap(d, &m, sizeof(m));
	if (r < 0)
		return r;
	vp->msix_cap_off = (unsigned)r;
	d->wmask[r + offsetof(struct msix_cap, control) + 1] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
	return 0;
}

/* --- life cycle ---------------------------------------------------------- */

struct pci_dev *virtio_pci_dev(struct virtio_pci *vp)
{
	return &vp->pci;
}

struct virtio_dev *virtio_pci_vdev(struct virtio_pci *vp)
{
	return &vp->vd;
}

void *virtio_pci_state(struct virtio_pci *vp)
{
	return vp->state;
}

int virtio_pci_vector_fd(struct virtio_pci *vp, unsigned vector)
{
	return vector < vp->nr_vectors ? vp->vector_fd[vector] : -1;
}

static void close_fds(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (vp->vd.kick_fd[i] >= 0)
			close(vp->vd.kick_fd[i]);
		vp->vd.kick_fd[i] = -1;
	}
	for (unsigned v = 0; v < MAX_VECTORS; v++) {
		if (vp->vector_fd[v] >= 0)
			close(vp->vector_fd[v]);
		vp->vector_fd[v] = -1;
	}
}

/* What virtio_pci_new() set up besides the device model, in reverse. */
static void release(struct virtio_pci *vp)
{
	/* The VM outlives its devices (guest reboots): take back what was bound to its descriptors. */
	if (vp->ioeventfd_bar)
		set_ioeventfds(vp, vp->ioeventfd_bar, false);
	while (vp->nr_irqfds) {
		unsigned v = --vp->nr_irqfds;
		(void)irq_irqfd(&vp->vd.vm->irq, vp->vector_fd[v], vp->gsi[v], false);
	}
	close_fds(vp);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_destroy(&vp->vd.vq[i]);
	pthread_mutex_destroy(&vp->lifecycle);
	pthread_mutex_destroy(&vp->lock);
	pthread_mutex_destroy(&vp->intx_lock);
	free(vp);
}

struct virtio_pci *virtio_pci_new(const struct virtio_device_desc *desc, unsigned index,
				  const struct guest_mem *mem, struct vm *vm, bool harness)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!vp)
		return NULL;
	pthread_mutex_init(&vp->lock, NULL);
	pthread_mutex_init(&vp->intx_lock, NULL);
	pthread_mutex_init(&vp->lifecycle, NULL);
	vp->desc = desc;
	snprintf(vp->name, sizeof(vp->name), "%s%u", desc->name, index);
	vp->vd.name = vp->name;
	char tname[16];
	snprintf(tname, sizeof(tname), "%.4s%u", desc->name + 7, index % 1000); /* "virtio-blk" -> "blk0" */
	vp->vd.trace_name = trace_str8(tname);
	vp->vd.mem = mem;
	vp->vd.vm = vm;
	vp->vd.harness = harness;
	vp->vd.transport = vp;
	vp->vd.notify = transport_notify;
	vp->vd.config_changed = transport_config_changed;
	vp->vd.needs_reset = transport_needs_reset;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		vq_init(&vp->vd.vq[i], mem);
		vp->vd.kick_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	for (unsigned v = 0; v < MAX_VECTORS; v++)
		vp->vector_fd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		if (vp->vd.kick_fd[i] < 0)
			goto free_vp;
	for (unsigned v = 0; v < MAX_VECTORS; v++)
		if (vp->vector_fd[v] < 0)
			goto free_vp;

	int r = desc->create(&vp->vd, index, &vp->state);
	if (r) {
		log_error("%s: %s", vp->name, strerror(-r));
		if (vp->state)
			goto destroy_device;
		goto free_vp;
	}
	if (vp->vd.nr_queues == 0 || vp->vd.nr_queues > VIRTIO_MAX_QUEUES || !vp->vd.queue_max_size ||
	    vp->vd.queue_max_size > VQ_MAX_SIZE || (vp->vd.queue_max_size & (vp->vd.queue_max_size - 1)))
		goto destroy_device;
	vp->nr_vectors = vp->vd.nr_queues + 1;
	if (vm) {
		for (unsigned v = 0; v < vp->nr_vectors; v++) {
			if (irq_msi_alloc(&vm->irq, &vp->gsi[v]) ||
			    irq_irqfd(&vm->irq, vp->vector_fd[v], vp->gsi[v], true)) {
				log_error("%s: cannot set up MSI-X vector %u", vp->name, v);
				goto destroy_device;
			}
			vp->nr_irqfds = v + 1;
		}
	}
	if (build_config_space(vp))
		goto destroy_device;
	device_reset(vp);
	return vp;

destroy_device:
	desc->destroy(vp->state);
free_vp:
	release(vp);
	return NULL;
}

void virtio_pci_free(struct virtio_pci *vp)
{
	if (!vp)
		return;
	/* Quiesce: no request in flight, no handler running, then free. */
	for (unsigned q = 0; q < vp->vd.nr_queues; q++)
		vq_reset(&vp->vd.vq[q]);
	vp->desc->reset(vp->state);
	vp->desc->destroy(vp->state);
	release(vp);
}

static const struct virtio_device_desc *const virtio_devices[] = {
	&virtio_blk_desc,
	&virtio_console_desc,
	&virtio_rng_desc,
};

int virtio_pci_create_all(struct vm *vm)
{
	unsigned total = 0;
	for (size_t i = 0; i < ARRAY_SIZE(virtio_devices); i++)
		total += virtio_devices[i]->count(vm->cfg);
	vm->nr_virtio = 0;
	if (!total)
		return 0;
	vm->virtio = calloc(total, sizeof(*vm->virtio));
	if (!vm->virtio)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(virtio_devices); i++) {
		unsigned n = virtio_devices[i]->count(vm->cfg);
		for (unsigned k = 0; k < n; k++) {
			struct virtio_pci *vp = virtio_pci_new(virtio_devices[i], k, &vm->mem, vm, false);
			if (!vp)
				goto destroy_created;
			vm->virtio[vm->nr_virtio++] = vp;
			int r = pci_bus_add(vm->pci, &vp->pci, -1);
			if (r < 0) {
				log_error("%s: no room on the PCI bus: %s", vp->name, strerror(-r));
				goto destroy_created;
			}
			/* SeaBIOS's name for a virtio disk: the PCI function itself. */
			if (virtio_devices[i]->boot_disk)
				vm_set_boot_path(vm, virtio_devices[i]->boot_disk(vm->cfg, k), "/pci@i0cf8/*@%x", r);
		}
	}
	return 0;

destroy_created:
	virtio_pci_destroy_all(vm);
	return -EINVAL;
}

void virtio_pci_destroy_all(struct vm *vm)
{
	while (vm->nr_virtio)
		virtio_pci_free(vm->virtio[--vm->nr_virtio]);
	free(vm->virtio);
	vm->virtio = NULL;
}
