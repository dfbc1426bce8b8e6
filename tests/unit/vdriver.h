// SPDX-License-Identifier: MIT
/*
 * A minimal virtio-pci driver for host-side harnesses: it plays the guest
 * against a virtio device model in plain memory (a guest_mem without a VM),
 * through the same BAR and configuration-space accesses a guest makes.
 * Rings live at fixed guest addresses; chains are written by hand so tests
 * can also write malformed ones.  With VIRTIO_F_RING_PACKED negotiated
 * (`want` names it) the queues are packed: the descriptor ring at
 * vd_desc(q), the driver event area at vd_avail(q), the device's at
 * vd_used(q) (the vd_p* helpers).
 */
#pragma once

#include <string.h>
#include <unistd.h>

#include "vmm/guest_mem.h"
#include "dev/pci.h"
#include "virtio/virtio.h"

#define VD_RING_BASE 0x10000ull   /* queue q's rings at VD_RING_BASE + q * VD_RING_STRIDE */
#define VD_RING_STRIDE 0x10000ull
#define VD_DATA_BASE 0x400000ull  /* buffers */

struct vdrv {
	struct guest_mem mem;
	struct virtio_pci *vp;
	struct pci_bus bus;
	int slot;
	uint16_t qsize[VIRTIO_MAX_QUEUES];
	uint16_t avail_idx[VIRTIO_MAX_QUEUES]; /* packed: next ring position to fill */
	uint16_t used_seen[VIRTIO_MAX_QUEUES]; /* packed: next ring position to read back */
	bool packed;
	bool avail_wrap[VIRTIO_MAX_QUEUES], used_wrap[VIRTIO_MAX_QUEUES];
};

static inline uint64_t vd_desc(unsigned q) { return VD_RING_BASE + q * VD_RING_STRIDE; }
static inline uint64_t vd_avail(unsigned q) { return vd_desc(q) + 0x4000; }
static inline uint64_t vd_used(unsigned q) { return vd_desc(q) + 0x8000; }

static inline uint64_t vd_rd(struct vdrv *d, uint64_t off, unsigned size)
{
	return virtio_pci_bar_read(d->vp, off, size);
}

static inline void vd_wr(struct vdrv *d, uint64_t off, unsigned size, uint64_t v)
{
	virtio_pci_bar_write(d->vp, off, size, v);
}

static inline void *vd_ptr(struct vdrv *d, uint64_t gpa, uint64_t len)
{
	return gm_ptr(&d->mem, gpa, len);
}

/*
 * virtio-blk requests: slot k's 16-byte header at VD_BLK_REQ(k), its status
 * byte right after.  vd_blk_hdr() writes the header (type, sector) and a
 * 0xee status that the device must overwrite; it returns the header's address.
 */
#define VD_BLK_REQ(k) (VD_DATA_BASE + 0x100000 + 32ull * (k))
static inline uint64_t vd_blk_hdr(struct vdrv *d, unsigned k, uint32_t type, uint64_t sector)
{
	uint64_t hdr = VD_BLK_REQ(k);
	uint32_t *h = vd_ptr(d, hdr, 16);
	h[0] = type;
	h[1] = 0;
	memcpy(h + 2, &sector, 8);
	*(uint8_t *)vd_ptr(d, hdr + 16, 1) = 0xee;
	return hdr;
}

static inline uint8_t vd_blk_status(struct vdrv *d, unsigned k)
{
	return *(uint8_t *)vd_ptr(d, VD_BLK_REQ(k) + 16, 1);
}

/* Create the device and bring it to DRIVER_OK with features `want` (VERSION_1 always). 0 or -1. */
static inline int vd_open(struct vdrv *d, const struct virtio_device_desc *desc, uint64_t mem_size,
			  uint64_t want, uint16_t qsize)
{
	memset(d, 0, sizeof(*d));
	if (gm_init(&d->mem, mem_size))
		return -1;
	d->vp = virtio_pci_new(desc, 0, &d->mem, NULL, true);
	if (!d->vp)
		return -1;
	pci_bus_init(&d->bus);
	d->bus.bar_next = 0xc0000000ull;
	d->bus.bar_limit = 0xfec00000ull;
	d->slot = pci_bus_add(&d->bus, virtio_pci_dev(d->vp), -1);
	/* MSI-X on: find the capability and set the enable bit. */
	struct pci_dev *p = virtio_pci_dev(d->vp);
	for (unsigned c = p->cfg[PCI_CAP_PTR], hops = 0; c && hops < 16; c = p->cfg[c + 1], hops++)
		if (p->cfg[c] == PCI_CAP_ID_MSIX)
			pci_config_write(&d->bus, 0, (unsigned)d->slot, 0, c + 2, 2, 0x8000);
	vd_wr(d, VPC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vd_wr(d, VPC_DFSELECT, 4, 1);
	uint64_t offered = vd_rd(d, VPC_DF, 4) << 32;
	vd_wr(d, VPC_DFSELECT, 4, 0);
	offered |= vd_rd(d, VPC_DF, 4);
	uint64_t f = (want | 1ull << VIRTIO_F_VERSION_1) & offered;
	vd_wr(d, VPC_GFSELECT, 4, 0);
	vd_wr(d, VPC_GF, 4, (uint32_t)f);
	vd_wr(d, VPC_GFSELECT, 4, 1);
	vd_wr(d, VPC_GF, 4, (uint32_t)(f >> 32));
	vd_wr(d, VPC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if (!(vd_rd(d, VPC_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK))
		return -1;
	d->packed = f & (1ull << VIRTIO_F_RING_PACKED);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->avail_wrap[q] = d->used_wrap[q] = true;
	unsigned nq = (unsigned)vd_rd(d, VPC_NUM_QUEUES, 2);
	for (unsigned q = 0; q < nq; q++) {
		vd_wr(d, VPC_Q_SELECT, 2, q);
		vd_wr(d, VPC_Q_SIZE, 2, qsize);
		d->qsize[q] = (uint16_t)vd_rd(d, VPC_Q_SIZE, 2);
		vd_wr(d, VPC_Q_MSIX_VECTOR, 2, q + 1);
		vd_wr(d, VPC_Q_DESCLO, 4, (uint32_t)vd_desc(q));
		vd_wr(d, VPC_Q_AVAILLO, 4, (uint32_t)vd_avail(q));
		vd_wr(d, VPC_Q_USEDLO, 4, (uint32_t)vd_used(q));
		vd_wr(d, VPC_Q_ENABLE, 2, 1);
		/* Unmask the queue's MSI-X vector (table entry q + 1, control word). */
		vd_wr(d, VIRTIO_PCI_MSIX_TABLE + 16 * (q + 1) + 12, 4, 0);
	}
	vd_wr(d, VPC_MSIX_CONFIG, 2, 0);
	vd_wr(d, VIRTIO_PCI_MSIX_TABLE + 12, 4, 0);
	vd_wr(d, VPC_STATUS, 1,
	      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return 0;
}

static inline void vd_close(struct vdrv *d)
{
	virtio_pci_free(d->vp);
	pci_bus_destroy(&d->bus);
	gm_destroy(&d->mem);
}

/* Write descriptor i of queue q's table. */
static inline void vd_set_desc(struct vdrv *d, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
			       uint16_t next)
{
	struct vring_desc *t = vd_ptr(d, vd_desc(q) + 16ull * i, 16);
	*t = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

/* Publish head on queue q's avail ring and kick. */
static inline void vd_kick_head(struct vdrv *d, unsigned q, uint16_t head)
{
	uint16_t *a = vd_ptr(d, vd_avail(q), 4 + 2ull * d->qsize[q]);
	a[2 + (d->avail_idx[q] % d->qsize[q])] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	a[1] = ++d->avail_idx[q];
	vd_wr(d, VIRTIO_PCI_NOTIFY + VIRTIO_PCI_NOTIFY_MULT * q, 2, q);
}

static inline uint16_t vd_used_idx(struct vdrv *d, unsigned q)
{
	uint16_t *u = vd_ptr(d, vd_used(q), 4);
	return __atomic_load_n(&u[1], __ATOMIC_ACQUIRE);
}

/* Wait (bounded: about 10 s) until used idx reaches n; returns the used idx seen. */
static inline uint16_t vd_wait_used(struct vdrv *d, unsigned q, uint16_t n)
{
	for (int i = 0; i < 100000 && vd_used_idx(d, q) != n; i++)
		usleep(100);
	return vd_used_idx(d, q);
}

static inline struct vring_used_elem vd_used_elem(struct vdrv *d, unsigned q, uint16_t i)
{
	struct vring_used_elem *u = vd_ptr(d, vd_used(q) + 4 + 8ull * (i % d->qsize[q]), 8);
	return *u;
}

/* Consume queue q's MSI-X vector eventfd: how many interrupts were raised since last time. */
static inline uint64_t vd_interrupts(struct vdrv *d, unsigned q)
{
	uint64_t n = 0;
	if (read(virtio_pci_vector_fd(d->vp, q + 1), &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* ---- packed rings ------------------------------------------------------- */

static inline struct vring_packed_desc *vd_pring(struct vdrv *d, unsigned q)
{
	return vd_ptr(d, vd_desc(q), 16ull * d->qsize[q]);
}

/*
 * Make chain[0 .. n) available at queue q's next ring positions (flags:
 * NEXT, WRITE, INDIRECT; the AVAIL/USED bits are added), the head's flags
 * last, as a driver does; then kick if asked to.
 */
static inline void vd_pchain(struct vdrv *d, unsigned q, const struct vring_packed_desc *chain, unsigned n, bool kick)
{
	struct vring_packed_desc *ring = vd_pring(d, q);
	uint16_t head = d->avail_idx[q], head_flags = 0;
	for (unsigned i = 0; i < n; i++) {
		uint16_t pos = d->avail_idx[q];
		uint16_t f = (uint16_t)(chain[i].flags | (d->avail_wrap[q] ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED));
		ring[pos].addr = chain[i].addr;
		ring[pos].len = chain[i].len;
		ring[pos].id = chain[i].id;
		if (i == 0)
			head_flags = f;
		else
			ring[pos].flags = f;
		if (++d->avail_idx[q] == d->qsize[q]) {
			d->avail_idx[q] = 0;
			d->avail_wrap[q] = !d->avail_wrap[q];
		}
	}
	__atomic_store_n(&ring[head].flags, head_flags, __ATOMIC_RELEASE);
	if (kick)
		vd_wr(d, VIRTIO_PCI_NOTIFY + VIRTIO_PCI_NOTIFY_MULT * q, 2, q);
}

/* Whether the device has written queue q's next used descriptor; if so, its id and len. */
static inline bool vd_pused(struct vdrv *d, unsigned q, uint16_t *id, uint32_t *len)
{
	struct vring_packed_desc *u = &vd_pring(d, q)[d->used_seen[q]];
	uint16_t f = __atomic_load_n(&u->flags, __ATOMIC_ACQUIRE);
	bool w = d->used_wrap[q];
	if (!!(f & VRING_PACKED_DESC_F_AVAIL) != w || !!(f & VRING_PACKED_DESC_F_USED) != w)
		return false;
	*id = u->id;
	*len = u->len;
	return true;
}

/* Step past a used buffer that took ndesc ring descriptors (the driver knows by its id). */
static inline void vd_pused_skip(struct vdrv *d, unsigned q, unsigned ndesc)
{
	unsigned p = d->used_seen[q] + ndesc;
	if (p >= d->qsize[q]) {
		p -= d->qsize[q];
		d->used_wrap[q] = !d->used_wrap[q];
	}
	d->used_seen[q] = (uint16_t)p;
}

/* The driver's event suppression for queue q. */
static inline void vd_pdriver_event(struct vdrv *d, unsigned q, uint16_t off_wrap, uint16_t flags)
{
	struct vring_packed_event *e = vd_ptr(d, vd_avail(q), 4);
	e->off_wrap = off_wrap;
	__atomic_store_n(&e->flags, flags, __ATOMIC_SEQ_CST);
}

static inline struct vring_packed_event vd_pdevice_event(struct vdrv *d, unsigned q)
{
	return *(struct vring_packed_event *)vd_ptr(d, vd_used(q), 4);
}
