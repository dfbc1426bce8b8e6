// SPDX-License-Identifier: MIT
/*
 * A virtio-pci driver for device tests, over keel-devtest (dtclient.h): it
 * does what Linux's virtio_pci does, from the outside of keel -- finds the
 * function on the PCI bus, turns on memory decoding and bus mastering,
 * walks the vendor capabilities for the common, notify, ISR and device
 * configuration windows, programs MSI-X, negotiates features, sets up split
 * or packed virtqueues in guest RAM and kicks through the notify window (an
 * ioeventfd in keel).  Completions are seen as a real guest sees them: an
 * MSI with the queue's vector, then the used ring in RAM.  Built only on
 * the Linux UAPI headers.
 */
#pragma once

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "dtclient.h"

#define DTV_VENDOR 0x1af4 /* virtio functions on PCI */
#define DTV_MAX_QUEUES 8
#define DTV_RINGS 0x100000ull     /* queue q's rings at DTV_RINGS + q * 0x10000 */
#define DTV_MSI_ADDR 0xfee00000ull
#define DTV_VECTOR(v) (0x40u + (v)) /* MSI data of vector v: the interrupt vector it asks for */

struct dtv_buf {
	uint64_t addr;
	uint32_t len;
	bool device_writes;
};

struct dtv_queue {
	uint16_t size;
	uint64_t desc, avail, used, notify;
	uint16_t next_avail; /* split: the avail index; packed: the next ring position */
	uint16_t last_used;  /* split: used index seen; packed: next ring position to read */
	bool avail_wrap, used_wrap;
	uint16_t next_id;    /* packed: buffer ids */
};

struct dtv {
	struct dtc *d;
	int dev;
	uint64_t bar[6];
	uint64_t common, isr, devcfg, notify_base, msix_table;
	uint32_t notify_mult;
	unsigned msix_cap;
	uint64_t features;
	bool packed;
	unsigned nq;
	struct dtv_queue q[DTV_MAX_QUEUES];
};

static inline uint64_t dtv_rd(struct dtv *v, uint64_t off, unsigned size)
{
	return dtc_read(v->d, size, v->common + off);
}

static inline void dtv_wr(struct dtv *v, uint64_t off, unsigned size, uint64_t val)
{
	dtc_write(v->d, size, v->common + off, val);
}

/* BAR n's address (64-bit BARs span two registers). */
static inline uint64_t dtv_bar(struct dtv *v, unsigned n)
{
	uint32_t lo = dtc_cfg_read(v->d, (unsigned)v->dev, PCI_BASE_ADDRESS_0 + 4 * n, 4);
	uint64_t a = lo & ~0xfull;
	if ((lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64)
		a |= (uint64_t)dtc_cfg_read(v->d, (unsigned)v->dev, PCI_BASE_ADDRESS_0 + 4 * n + 4, 4) << 32;
	return a;
}

/* Walk the capability list: virtio windows and MSI-X.  0, or -1 if one is missing (device config is optional). */
static inline int dtv_caps(struct dtv *v)
{
	unsigned dev = (unsigned)v->dev, found = 0;
	for (unsigned c = dtc_cfg_read(v->d, dev, PCI_CAPABILITY_LIST, 1) & 0xfc, hops = 0; c && hops < 48;
	     c = dtc_cfg_read(v->d, dev, c + 1, 1) & 0xfc, hops++) {
		unsigned id = dtc_cfg_read(v->d, dev, c, 1);
		if (id == PCI_CAP_ID_MSIX) {
			v->msix_cap = c;
			uint32_t t = dtc_cfg_read(v->d, dev, c + PCI_MSIX_TABLE, 4);
			v->msix_table = v->bar[t & PCI_MSIX_TABLE_BIR] + (t & PCI_MSIX_TABLE_OFFSET);
			continue;
		}
		if (id != PCI_CAP_ID_VNDR)
			continue;
		unsigned type = dtc_cfg_read(v->d, dev, c + offsetof(struct virtio_pci_cap, cfg_type), 1);
		unsigned bar = dtc_cfg_read(v->d, dev, c + offsetof(struct virtio_pci_cap, bar), 1);
		uint32_t off = dtc_cfg_read(v->d, dev, c + offsetof(struct virtio_pci_cap, offset), 4);
		if (bar > 5)
			continue;
		uint64_t at = v->bar[bar] + off;
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG: v->common = at; found |= 1; break;
		case VIRTIO_PCI_CAP_ISR_CFG: v->isr = at; found |= 2; break;
		case VIRTIO_PCI_CAP_DEVICE_CFG: v->devcfg = at; found |= 4; break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			v->notify_base = at;
			v->notify_mult = dtc_cfg_read(v->d, dev, c + sizeof(struct virtio_pci_cap), 4);
			found |= 8;
			break;
		}
	}
	return (found & 11) == 11 && v->msix_cap ? 0 : -1;
}

/*
 * Bring up the n-th virtio device with virtio device id `id` (2 block, 3
 * console, 4 entropy): features `want` (VERSION_1 always) as far as offered,
 * qsize entries per queue, every queue with its own MSI-X vector (queue q:
 * vector q + 1; configuration: vector 0).  0, or -1 (and d->errors or a
 * CHECK in the caller says why).
 */
static inline int dtv_open(struct dtv *v, struct dtc *d, uint16_t id, unsigned n, uint64_t want, uint16_t qsize)
{
	memset(v, 0, sizeof(*v));
	v->d = d;
	v->dev = dtc_pci_find(d, DTV_VENDOR, (uint16_t)(0x1040 + id), n);
	if (v->dev < 0)
		return -1;
	unsigned dev = (unsigned)v->dev;
	dtc_cfg_write(d, dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	for (unsigned b = 0; b < 6; b++)
		v->bar[b] = dtv_bar(v, b);
	if (dtv_caps(v))
		return -1;
	dtv_wr(v, VIRTIO_PCI_COMMON_STATUS, 1, 0); /* reset */
	dtv_wr(v, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	dtv_wr(v, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	uint64_t offered = dtv_rd(v, VIRTIO_PCI_COMMON_DF, 4) << 32;
	dtv_wr(v, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	offered |= dtv_rd(v, VIRTIO_PCI_COMMON_DF, 4);
	v->features = (want | 1ull << VIRTIO_F_VERSION_1) & offered;
	dtv_wr(v, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	dtv_wr(v, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)v->features);
	dtv_wr(v, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	dtv_wr(v, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(v->features >> 32));
	dtv_wr(v, VIRTIO_PCI_COMMON_STATUS, 1,
	       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(dtv_rd(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -1;
	v->packed = v->features & (1ull << VIRTIO_F_RING_PACKED);
	/* MSI-X on; every table entry points at the LAPIC with its own vector, unmasked. */
	dtc_cfg_write(d, dev, v->msix_cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	v->nq = (unsigned)dtv_rd(v, VIRTIO_PCI_COMMON_NUMQ, 2);
	if (v->nq > DTV_MAX_QUEUES)
		v->nq = DTV_MAX_QUEUES;
	for (unsigned e = 0; e <= v->nq; e++) {
		uint64_t t = v->msix_table + PCI_MSIX_ENTRY_SIZE * e;
		dtc_write(d, 4, t + PCI_MSIX_ENTRY_LOWER_ADDR, DTV_MSI_ADDR);
		dtc_write(d, 4, t + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
		dtc_write(d, 4, t + PCI_MSIX_ENTRY_DATA, DTV_VECTOR(e));
		dtc_write(d, 4, t + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	}
	dtv_wr(v, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	for (unsigned q = 0; q < v->nq; q++) {
		struct dtv_queue *vq = &v->q[q];
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_SIZE, 2, qsize);
		vq->size = (uint16_t)dtv_rd(v, VIRTIO_PCI_COMMON_Q_SIZE, 2);
		vq->desc = DTV_RINGS + 0x10000ull * q;
		vq->avail = vq->desc + 0x4000;
		vq->used = vq->desc + 0x8000;
		vq->avail_wrap = vq->used_wrap = true;
		dtc_memset(d, vq->desc, 0, 0x10000);
		vq->notify = v->notify_base + (uint64_t)dtv_rd(v, VIRTIO_PCI_COMMON_Q_NOFF, 2) * v->notify_mult;
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_MSIX, 2, q + 1);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)vq->desc);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)vq->avail);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)vq->used);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
		dtv_wr(v, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	}
	dtv_wr(v, VIRTIO_PCI_COMMON_STATUS, 1,
	       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		       VIRTIO_CONFIG_S_DRIVER_OK);
	return d->errors ? -1 : 0;
}

/* Make a chain of n buffers available on queue q and kick.  Returns the id the device will complete. */
static inline uint16_t dtv_submit(struct dtv *v, unsigned q, const struct dtv_buf *b, unsigned n)
{
	struct dtv_queue *vq = &v->q[q];
	uint16_t id;
	if (q >= v->nq || !vq->size || n > vq->size) {
		dtc_error(v->d, "dtv_submit: queue %u is not set up", q);
		return 0xffff;
	}
	if (!v->packed) {
		/* Split: the chain in descriptors head .. head + n - 1 (one request in flight per slot). */
		uint16_t head = (uint16_t)((vq->next_avail * n) % vq->size);
		for (unsigned i = 0; i < n; i++) {
			struct vring_desc desc = {
				.addr = b[i].addr, .len = b[i].len,
				.flags = (uint16_t)((i + 1 < n ? VRING_DESC_F_NEXT : 0) | (b[i].device_writes ? VRING_DESC_F_WRITE : 0)),
				.next = (uint16_t)((head + i + 1) % vq->size),
			};
			dtc_memwrite(v->d, vq->desc + 16ull * ((head + i) % vq->size), &desc, sizeof(desc));
		}
		dtc_write(v->d, 2, vq->avail + 4 + 2ull * (vq->next_avail % vq->size), head);
		dtc_write(v->d, 2, vq->avail + 2, ++vq->next_avail); /* published after the entry: one thread writes both */
		id = head;
	} else {
		/* Packed: the chain at the next ring positions, the head's flags written last. */
		id = vq->next_id++;
		uint16_t head = vq->next_avail, head_flags = 0;
		for (unsigned i = 0; i < n; i++) {
			uint16_t f = (uint16_t)((i + 1 < n ? VRING_DESC_F_NEXT : 0) | (b[i].device_writes ? VRING_DESC_F_WRITE : 0) |
						(vq->avail_wrap ? 1u << VRING_PACKED_DESC_F_AVAIL : 1u << VRING_PACKED_DESC_F_USED));
			struct vring_packed_desc pd = { .addr = b[i].addr, .len = b[i].len, .id = id, .flags = i ? f : 0 };
			if (!i)
				head_flags = f;
			dtc_memwrite(v->d, vq->desc + 16ull * vq->next_avail, &pd, sizeof(pd));
			if (++vq->next_avail == vq->size) {
				vq->next_avail = 0;
				vq->avail_wrap = !vq->avail_wrap;
			}
		}
		dtc_write(v->d, 2, vq->desc + 16ull * head + 14, head_flags);
	}
	dtc_write(v->d, 2, vq->notify, q);
	return id;
}

/* A completion on queue q, if the device has made one: its id and length. */
static inline bool dtv_used(struct dtv *v, unsigned q, uint16_t *id, uint32_t *len)
{
	struct dtv_queue *vq = &v->q[q];
	if (!v->packed) {
		uint16_t idx = (uint16_t)dtc_read(v->d, 2, vq->used + 2);
		if (idx == vq->last_used)
			return false;
		struct vring_used_elem e;
		dtc_memread(v->d, vq->used + 4 + 8ull * (vq->last_used % vq->size), &e, sizeof(e));
		vq->last_used++;
		*id = (uint16_t)e.id;
		*len = e.len;
		return true;
	}
	struct vring_packed_desc pd;
	dtc_memread(v->d, vq->desc + 16ull * vq->last_used, &pd, sizeof(pd));
	bool avail = pd.flags & (1u << VRING_PACKED_DESC_F_AVAIL), used = pd.flags & (1u << VRING_PACKED_DESC_F_USED);
	if (avail != vq->used_wrap || used != vq->used_wrap)
		return false;
	*id = pd.id;
	*len = pd.len;
	return true;
}

/* Packed rings: step past a used buffer that took ndesc descriptors (split rings need nothing). */
static inline void dtv_used_skip(struct dtv *v, unsigned q, unsigned ndesc)
{
	struct dtv_queue *vq = &v->q[q];
	if (!v->packed)
		return;
	unsigned p = vq->last_used + ndesc;
	if (p >= vq->size) {
		p -= vq->size;
		vq->used_wrap = !vq->used_wrap;
	}
	vq->last_used = (uint16_t)p;
}

/*
 * Wait (up to ms) for queue q's interrupt and then its completion, as a
 * guest would: an MSI to the LAPIC with the queue's vector, then the used
 * ring.  MSIs of other vectors meanwhile are counted in *others (if not
 * NULL).  False if no interrupt came, or it came with nothing used.
 */
static inline bool dtv_wait(struct dtv *v, unsigned q, unsigned ms, uint16_t *id, uint32_t *len, unsigned *others)
{
	for (unsigned tries = 0; tries < 64; tries++) {
		uint64_t addr;
		uint32_t data;
		if (!dtc_msi_wait(v->d, ms, &addr, &data))
			return false;
		if (addr == DTV_MSI_ADDR && data == DTV_VECTOR(q + 1))
			return dtv_used(v, q, id, len);
		if (others)
			++*others;
	}
	return false;
}
