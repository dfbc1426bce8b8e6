/* SPDX-License-Identifier: MIT */
/*
 * keeltest=blkbench: random 4 KiB reads and writes on the first virtio-blk
 * disk, with the driver running in ring 3 (bench/block, run under keel and
 * under QEMU).
 *
 * Ring 0 does only what needs it (on an instruction-emulating KVM every
 * ring-0 instruction is emulated): the IDT, a TSS (exception stack, I/O
 * bitmap), and an IRET to CPL 3 with IOPL 3.  Everything else runs natively in ring 3: the
 * ACPI table walk (for the PM timer), TSC calibration against the PM timer,
 * the PCI scan through ports 0xcf8/0xcfc, the virtio 1.x modern PCI set-up
 * (capabilities, a memory BAR -- assigned by us if firmware left it at 0 or
 * above 4 GiB --, VERSION_1 only, one queue, no MSI-X: the used ring is
 * polled and interrupts are suppressed with VRING_AVAIL_F_NO_INTERRUPT), and
 * the benchmark loop.  Kicks are 16-bit writes to the notify address,
 * skipped while the device sets VRING_USED_F_NO_NOTIFY.
 *
 * With keeltest.blk.packed=1 the queue is a packed virtqueue (VIRTIO_F_RING_PACKED,
 * which the device must offer: keel --virtio-packed on, QEMU packed=on) and
 * each request one ring descriptor pointing to an indirect table of three,
 * as Linux's driver does; with =2 it is three ring descriptors chained
 * (QEMU 7.2 places the used entries of such chains wrongly when it
 * completes several at once: fixed in later QEMU).  The slot number is the
 * buffer id, the driver's event area says DISABLE (we poll), and kicks are
 * skipped while the device's says DISABLE.
 *
 * Points: read and write at queue depth 1 and 32 (keeltest.blk.qd=N changes
 * the second; keeltest.blk.rw=read or =write runs only those,
 * keeltest.blk.depth=N only that depth), each a closed loop at a fixed depth: a warm-up of
 * keeltest.blk.warm_ms (200), then keeltest.blk.ms (2000) measured, or
 * keeltest.blk.ops completions if given.  Offsets are uniform random 4 KiB
 * blocks in the first keeltest.blk.span_mb MiB (default: the whole disk).
 * Latency is RDTSC from just before the request is published on the avail
 * ring to the poll that sees it in the used ring; the TSC rate is measured
 * against the ACPI PM timer (3.579545 MHz) over 100 ms.  One line per point:
 *   blkbench: rw=read qd=1 ops=N ns=T iops=I p50_ns=A p99_ns=B kicks=K kick_ns=C errors=E
 * (kicks: notify writes made, kick_ns: their mean duration as the driver
 * sees it), after one line with the mean cost of an idle notify, a port
 * read and an MMIO read of the device (exit costs, for reading the rest).
 * then "blkbench: done" and the debug-exit port (EXIT_PASS, or EXIT_FAIL if
 * a request failed or the device could not be set up).
 */
#include "guest.h"

#define SEL_UDATA 0x23 /* GDT 0x20 | RPL 3 */
#define SEL_UCODE 0x2b /* GDT 0x28 | RPL 3 */
#define SEL_TSS 0x30
#define RFLAGS_IOPL3 0x3002 /* IOPL 3, reserved bit 1, interrupts off */

/* Guest-physical work area (identity-mapped, checked against the memory map). */
#define AREA 0x1000000ull              /* 16 MiB */
#define RING_DESC (AREA + 0x0000)      /* up to 256 descriptors */
#define RING_AVAIL (AREA + 0x1000)
#define RING_USED (AREA + 0x2000)
#define HDRS (AREA + 0x4000)           /* request headers, 16 bytes per slot */
#define STATUS (AREA + 0x5000)         /* status bytes, one per slot */
#define INDIRECT (AREA + 0x6000)       /* packed=1: a 3-entry indirect table per slot */
#define DATA (AREA + 0x10000)          /* 4 KiB per slot */
#define USTACK_TOP (AREA + 0x100000)
#define LAT (AREA + 0x100000)          /* latencies, 32-bit TSC cycles */
#define LAT_MAX (2u << 20)
#define AREA_END (LAT + 4ull * LAT_MAX)

#define QSIZE_MAX 128
#define SLOTS_MAX (QSIZE_MAX / 3) /* three descriptors per request */
#define BAR_FALLBACK 0xd0000000u  /* where an unassigned BAR goes */

/* virtio */
#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_BLK_MODERN 0x1042
#define VIRTIO_BLK_TRANSITIONAL 0x1001
#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
enum {
	C_DFSELECT = 0x00, C_DF = 0x04, C_GFSELECT = 0x08, C_GF = 0x0c, C_MSIX = 0x10, C_STATUS = 0x14,
	C_QSELECT = 0x16, C_QSIZE = 0x18, C_QMSIX = 0x1a, C_QENABLE = 0x1c, C_QNOFF = 0x1e, C_QDESC = 0x20,
	C_QAVAIL = 0x28, C_QUSED = 0x30,
};
#define DESC_NEXT 1
#define DESC_WRITE 2
#define AVAIL_NO_INTERRUPT 1
#define USED_NO_NOTIFY 1
#define DESC_INDIRECT 4
#define PDESC_AVAIL (1u << 7) /* packed rings */
#define PDESC_USED (1u << 15)
#define PEVENT_DISABLE 1

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
struct used_elem {
	uint32_t id, len;
};
struct pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id, flags;
};
_Static_assert(sizeof(struct pdesc) == 16, "virtio packed descriptor layout");
struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};
_Static_assert(sizeof(struct desc) == 16, "virtio descriptor layout");
_Static_assert(sizeof(struct blk_hdr) == 16, "virtio-blk header layout");

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap;
};
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS layout");

extern uint64_t gdt[];
extern char stack_top[];

/*
 * The TSS with an I/O permission bitmap that allows every port.  IOPL 3
 * alone is not enough on this project's instruction-emulating KVM (kvm_pvm):
 * guest ring 3 runs with the hardware's IOPL 0, every port access traps, and
 * the emulator then allows it only by the guest's TSS bitmap.  Initialised
 * (the 0xff terminator), so it lies in .data and costs no emulated clearing.
 */
static struct __attribute__((packed, aligned(16))) {
	struct tss64 tss;
	uint8_t iomap[65536 / 8 + 1];
} tss = { .tss = { .iomap = sizeof(struct tss64) }, .iomap = { [65536 / 8] = 0xff } };

/* --- small helpers (ring 3) ---------------------------------------------- */

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void mfence(void) { __asm__ volatile("mfence" ::: "memory"); }

static inline uint8_t mr8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mr16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline void mw8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mw16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }

static uint32_t pci_rd32(unsigned dev, unsigned off)
{
	outl(0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
	return inl(0xcfc);
}

static uint8_t pci_rd8(unsigned dev, unsigned off)
{
	return (uint8_t)(pci_rd32(dev, off) >> (8 * (off & 3)));
}

static void pci_wr32(unsigned dev, unsigned off, uint32_t v)
{
	outl(0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
	outl(0xcfc, v);
}

static void pci_wr16(unsigned dev, unsigned off, uint16_t v)
{
	outl(0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
	outw((uint16_t)(0xcfc + (off & 2)), v);
}

static __attribute__((noreturn)) void fail(const char *why)
{
	print("blkbench: FAIL %s\n", why);
	guest_exit(EXIT_FAIL);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* In-place heap sort (natively in ring 3: a few ms for 10^5 entries). */
static void sift(uint32_t *a, size_t n, size_t i)
{
	for (;;) {
		size_t m = i, l = 2 * i + 1, r = l + 1;
		if (l < n && a[l] > a[m])
			m = l;
		if (r < n && a[r] > a[m])
			m = r;
		if (m == i)
			return;
		uint32_t t = a[i];
		a[i] = a[m];
		a[m] = t;
		i = m;
	}
}

static void sort_u32(uint32_t *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(a, n, i);
	for (size_t e = n; e-- > 1;) {
		uint32_t t = a[0];
		a[0] = a[e];
		a[e] = t;
		sift(a, e, 0);
	}
}

/* --- TSC rate ------------------------------------------------------------ */

static uint64_t tsc_khz;

static uint64_t cyc_to_ns(uint64_t c)
{
	return c * 1000000ull / tsc_khz;
}

/* TSC ticks per ms, measured against the ACPI PM timer over 100 ms. */
static void calibrate_tsc(void)
{
	if (!acpi.pm_tmr)
		fail("no ACPI PM timer to calibrate the TSC against");
	uint16_t port = acpi.pm_tmr;
	uint32_t p0 = inl(port) & 0xffffff, p1;
	uint64_t t0 = rdtsc(), t1;
	/* Wait for the next tick edge, so the start is aligned to it. */
	do {
		p1 = inl(port) & 0xffffff;
		t1 = rdtsc();
	} while (p1 == p0 && t1 - t0 < (1ull << 34));
	p0 = p1;
	t0 = t1;
	uint32_t ticks;
	do {
		p1 = inl(port) & 0xffffff;
		t1 = rdtsc();
		ticks = (p1 - p0) & 0xffffff;
	} while (ticks < 357955 && t1 - t0 < (1ull << 36)); /* 100 ms */
	if (ticks < 357955)
		fail("the PM timer does not advance");
	tsc_khz = (t1 - t0) * 3579545ull / ((uint64_t)ticks * 1000ull);
	if (!tsc_khz)
		fail("TSC calibration gave 0");
}

/* --- the device ---------------------------------------------------------- */

struct vcap {
	bool found;
	unsigned bar;
	uint32_t off, len;
};

static struct {
	unsigned dev; /* PCI slot on bus 0 */
	uint64_t common, notify, config;
	unsigned qsize, slots;
	uint64_t capacity; /* 512-byte sectors */
	uint16_t avail_idx, last_used; /* packed: ring positions */
	bool packed, avail_wrap, used_wrap;
	unsigned chain; /* packed: ring descriptors per request (1: indirect, 3: chained) */
} vb;
static volatile struct pdesc *const pring = (volatile struct pdesc *)RING_DESC;

static volatile struct desc *const desc = (volatile struct desc *)RING_DESC;
static volatile uint16_t *const avail = (volatile uint16_t *)RING_AVAIL; /* flags, idx, ring[] */
static volatile uint16_t *const used = (volatile uint16_t *)RING_USED;   /* flags, idx, then elems */
static volatile struct blk_hdr *const hdr = (volatile struct blk_hdr *)HDRS;
static volatile uint8_t *const status = (volatile uint8_t *)STATUS;

static uint64_t bar_base(unsigned dev, unsigned bar)
{
	unsigned reg = 0x10 + 4 * bar;
	uint32_t lo = pci_rd32(dev, reg);
	if (bar > 5 || (lo & 1))
		fail("virtio capability points at an I/O or invalid BAR");
	bool is64 = ((lo >> 1) & 3) == 2;
	uint64_t base = lo & ~0xfull;
	if (is64)
		base |= (uint64_t)pci_rd32(dev, reg + 4) << 32;
	if (base && base < 0xffffffffull)
		return base;
	/* Unassigned, or above the 4 GiB we map: size it and place it ourselves. */
	uint16_t cmd = (uint16_t)pci_rd32(dev, 0x04);
	pci_wr16(dev, 0x04, (uint16_t)(cmd & ~2u));
	pci_wr32(dev, reg, 0xffffffffu);
	uint32_t size = ~(pci_rd32(dev, reg) & ~0xfu) + 1;
	if (!size || size > 0x01000000u)
		fail("memory BAR of unexpected size");
	pci_wr32(dev, reg, BAR_FALLBACK);
	if (is64)
		pci_wr32(dev, reg + 4, 0);
	pci_wr16(dev, 0x04, cmd);
	print("blkbench: BAR%u was at %lx; placed at %x (%u bytes)\n", bar, base, BAR_FALLBACK, size);
	return BAR_FALLBACK;
}

static void device_init(void)
{
	vb.dev = 32;
	for (unsigned d = 0; d < 32 && vb.dev == 32; d++) {
		uint32_t id = pci_rd32(d, 0);
		if ((id & 0xffff) == VIRTIO_VENDOR &&
		    (id >> 16 == VIRTIO_BLK_MODERN ||
		     (id >> 16 == VIRTIO_BLK_TRANSITIONAL && (pci_rd32(d, 0x2c) >> 16) == 2)))
			vb.dev = d;
	}
	if (vb.dev == 32)
		fail("no virtio-blk device on PCI bus 0");
	unsigned dev = vb.dev;
	struct vcap caps[5] = { 0 }; /* by cfg_type: 1 common, 2 notify, 3 ISR, 4 device */
	uint32_t mult = 0;
	if (pci_rd32(dev, 0x04) & (1u << 20)) {
		unsigned c = pci_rd8(dev, 0x34) & 0xfc;
		for (unsigned hops = 0; c && hops < 48; hops++, c = pci_rd8(dev, c + 1) & 0xfc) {
			if (pci_rd8(dev, c) != 0x09)
				continue;
			unsigned type = pci_rd8(dev, c + 3);
			if (type < 1 || type > 4 || caps[type].found)
				continue;
			caps[type] = (struct vcap){ true, pci_rd8(dev, c + 4), pci_rd32(dev, c + 8), pci_rd32(dev, c + 12) };
			if (type == 2)
				mult = pci_rd32(dev, c + 16);
		}
	}
	if (!caps[1].found || !caps[2].found || !caps[4].found)
		fail("virtio-blk without common, notify and device capabilities");
	uint64_t bars[6] = { 0 };
	for (unsigned t = 1; t <= 4; t++)
		if (caps[t].found && t != 3 && !bars[caps[t].bar])
			bars[caps[t].bar] = bar_base(dev, caps[t].bar);
	/* Memory decoding and bus mastering (QEMU does no DMA without it). */
	pci_wr16(dev, 0x04, (uint16_t)(pci_rd32(dev, 0x04) | 0x6));
	vb.common = bars[caps[1].bar] + caps[1].off;
	vb.config = bars[caps[4].bar] + caps[4].off;
	uint64_t c = vb.common;

	mw8(c + C_STATUS, 0);
	for (unsigned i = 0; i < 1000000 && mr8(c + C_STATUS); i++)
		cpu_relax();
	mw8(c + C_STATUS, ST_ACK);
	mw8(c + C_STATUS, ST_ACK | ST_DRIVER);
	*(volatile uint32_t *)(c + C_DFSELECT) = 1;
	if (!(*(volatile uint32_t *)(c + C_DF) & 1))
		fail("the device does not offer VIRTIO_F_VERSION_1");
	uint64_t pk = param_u64("keeltest.blk.packed", 0);
	vb.packed = pk == 1 || pk == 2;
	vb.chain = pk == 1 ? 1 : 3;
	if (vb.packed && !(*(volatile uint32_t *)(c + C_DF) & 4))
		fail("keeltest.blk.packed: the device does not offer VIRTIO_F_RING_PACKED");
	*(volatile uint32_t *)(c + C_DFSELECT) = 0;
	if (pk == 1 && !(*(volatile uint32_t *)(c + C_DF) & (1u << 28)))
		fail("keeltest.blk.packed=1: the device does not offer VIRTIO_F_INDIRECT_DESC");
	*(volatile uint32_t *)(c + C_GFSELECT) = 0;
	*(volatile uint32_t *)(c + C_GF) = pk == 1 ? 1u << 28 : 0;
	*(volatile uint32_t *)(c + C_GFSELECT) = 1;
	*(volatile uint32_t *)(c + C_GF) = vb.packed ? 5 : 1; /* VERSION_1 only, or with RING_PACKED */
	mw8(c + C_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(mr8(c + C_STATUS) & ST_FEATURES_OK))
		fail("the device refused our features");
	mw16(c + C_MSIX, 0xffff);
	mw16(c + C_QSELECT, 0);
	unsigned max = mr16(c + C_QSIZE);
	vb.qsize = max < QSIZE_MAX ? max : QSIZE_MAX;
	if (vb.qsize < 8 || (vb.qsize & (vb.qsize - 1)))
		fail("queue 0 size is not a power of two of at least 8");
	vb.slots = vb.qsize / 3;

	memset((void *)RING_DESC, 0, DATA - RING_DESC);
	/* We poll: no interrupts (packed: the flags of the driver event area). */
	if (vb.packed)
		avail[1] = PEVENT_DISABLE;
	else
		avail[0] = AVAIL_NO_INTERRUPT;
	vb.avail_wrap = vb.used_wrap = true;
	for (unsigned s = 0; s < vb.slots && !vb.packed; s++) {
		desc[3 * s] = (struct desc){ HDRS + 16 * s, 16, DESC_NEXT, (uint16_t)(3 * s + 1) };
		desc[3 * s + 1] = (struct desc){ DATA + 4096ull * s, 4096, DESC_NEXT, (uint16_t)(3 * s + 2) };
		desc[3 * s + 2] = (struct desc){ STATUS + s, 1, DESC_WRITE, 0 };
	}
	for (uint64_t a = DATA; a < DATA + 4096ull * vb.slots; a += 8)
		*(uint64_t *)a = a * 0x9e3779b97f4a7c15ull; /* something to write */

	mw16(c + C_QSIZE, (uint16_t)vb.qsize);
	mw16(c + C_QMSIX, 0xffff);
	*(volatile uint32_t *)(c + C_QDESC) = (uint32_t)RING_DESC;
	*(volatile uint32_t *)(c + C_QDESC + 4) = 0;
	*(volatile uint32_t *)(c + C_QAVAIL) = (uint32_t)RING_AVAIL;
	*(volatile uint32_t *)(c + C_QAVAIL + 4) = 0;
	*(volatile uint32_t *)(c + C_QUSED) = (uint32_t)RING_USED;
	*(volatile uint32_t *)(c + C_QUSED + 4) = 0;
	vb.notify = bars[caps[2].bar] + caps[2].off + (uint64_t)mr16(c + C_QNOFF) * mult;
	mw16(c + C_QENABLE, 1);
	mw8(c + C_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	vb.capacity = *(volatile uint32_t *)vb.config | (uint64_t)*(volatile uint32_t *)(vb.config + 4) << 32;
	if (mr8(c + C_STATUS) != (ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK))
		fail("the device did not accept DRIVER_OK");
	if (vb.capacity < 8)
		fail("the disk is smaller than 4 KiB");
	print("blkbench: virtio-blk at 00:%x.0, common cfg %lx, notify %lx, queue size %u (%s), %lu sectors\n", dev,
	      vb.common, vb.notify, vb.qsize, !vb.packed ? "split" : vb.chain == 1 ? "packed, indirect" : "packed, chained",
	      vb.capacity);
}

/* --- the benchmark ------------------------------------------------------- */

static uint64_t t_submit[SLOTS_MAX], kicks, kick_cyc, errors;
static uint64_t nblocks; /* 4 KiB blocks to choose from */

/* Packed: slot s's three descriptors at the next ring positions, the head's flags last. */
static void queue_packed(unsigned s, bool write)
{
	const struct pdesc c[3] = {
		{ HDRS + 16 * s, 16, 0, DESC_NEXT },
		{ DATA + 4096ull * s, 4096, 0, (uint16_t)(DESC_NEXT | (write ? 0 : DESC_WRITE)) },
		{ STATUS + s, 1, (uint16_t)s, DESC_WRITE },
	};
	unsigned head = vb.avail_idx, n = vb.chain;
	uint16_t head_flags = 0;
	const struct pdesc *ring_descs = c;
	struct pdesc ind;
	if (n == 1) {
		/* The table: the same three, only WRITE kept (its entries follow each other). */
		volatile struct pdesc *t = (volatile struct pdesc *)(INDIRECT + 48ull * s);
		for (unsigned i = 0; i < 3; i++) {
			t[i].addr = c[i].addr;
			t[i].len = c[i].len;
			t[i].id = 0;
			t[i].flags = (uint16_t)(c[i].flags & DESC_WRITE);
		}
		ind = (struct pdesc){ INDIRECT + 48ull * s, 48, (uint16_t)s, DESC_INDIRECT };
		ring_descs = &ind;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct pdesc *src = &ring_descs[i];
		volatile struct pdesc *d = &pring[vb.avail_idx];
		uint16_t f = (uint16_t)(src->flags | (vb.avail_wrap ? PDESC_AVAIL : PDESC_USED));
		d->addr = src->addr;
		d->len = src->len;
		d->id = src->id;
		if (i)
			d->flags = f;
		else
			head_flags = f;
		if (++vb.avail_idx == vb.qsize) {
			vb.avail_idx = 0;
			vb.avail_wrap = !vb.avail_wrap;
		}
	}
	barrier(); /* x86 keeps stores in order: the chain before its head's flags */
	pring[head].flags = head_flags;
}

static void queue_req(unsigned s, bool write)
{
	hdr[s].type = write ? 1 : 0;
	hdr[s].sector = (next_rand() >> 11) % nblocks * 8;
	status[s] = 0xff;
	if (vb.packed)
		queue_packed(s, write);
	else
		avail[2 + (vb.avail_idx++ & (vb.qsize - 1))] = (uint16_t)(3 * s);
	t_submit[s] = rdtsc();
}

/* The next completed slot, or -1 (packed: the used descriptor at our position; it took vb.chain). */
static int next_used_packed(void)
{
	volatile struct pdesc *d = &pring[vb.last_used];
	uint16_t f = d->flags;
	bool w = vb.used_wrap;
	if (!!(f & PDESC_AVAIL) != w || !!(f & PDESC_USED) != w)
		return -1;
	barrier(); /* x86 keeps loads in order: the flags before the id */
	int id = d->id;
	vb.last_used = (uint16_t)(vb.last_used + vb.chain);
	if (vb.last_used >= vb.qsize) {
		vb.last_used = (uint16_t)(vb.last_used - vb.qsize);
		vb.used_wrap = !vb.used_wrap;
	}
	return id;
}

static void publish(void)
{
	barrier(); /* x86 keeps stores in order: ring entries before the index */
	if (!vb.packed)
		avail[1] = vb.avail_idx;
	mfence(); /* the index store before the NO_NOTIFY load (the device re-checks after clearing it) */
	if (vb.packed ? used[1] != PEVENT_DISABLE : !(used[0] & USED_NO_NOTIFY)) {
		uint64_t t = rdtsc();
		mw16(vb.notify, 0);
		kick_cyc += rdtsc() - t;
		kicks++;
	}
}

static void run_point(bool write, unsigned qd, uint64_t warm_cyc, uint64_t run_cyc, uint64_t max_ops)
{
	uint32_t *lat = (uint32_t *)LAT;
	for (unsigned s = 0; s < qd && !vb.packed; s++)
		desc[3 * s + 1].flags = write ? DESC_NEXT : DESC_NEXT | DESC_WRITE;
	kicks = kick_cyc = errors = 0;
	uint64_t n = 0, start = rdtsc(), mstart = start, mend = start, last = start, nend = 0;
	uint64_t timeout = 10000ull * tsc_khz; /* 10 s without a completion */
	bool measuring = warm_cyc == 0, stop = false;
	unsigned inflight = 0;
	for (unsigned s = 0; s < qd; s++, inflight++)
		queue_req(s, write);
	publish();
	for (;;) {
		uint16_t u = used[1];
		int first = vb.packed ? next_used_packed() : -1;
		uint64_t now = rdtsc();
		if (vb.packed ? first < 0 : u == vb.last_used) {
			if (now - last > timeout)
				fail("no completion for 10 s");
			cpu_relax();
			continue;
		}
		barrier(); /* x86 keeps loads in order: the index before the elements */
		last = now;
		bool queued = false;
		for (int pid = first; vb.packed ? pid >= 0 : vb.last_used != u; pid = vb.packed ? next_used_packed() : -1) {
			unsigned s;
			if (vb.packed) {
				s = (unsigned)pid;
				if (s >= qd)
					fail("the device returned a buffer id we did not submit");
			} else {
				volatile struct used_elem *e = (volatile struct used_elem *)(RING_USED + 4 +
											 8ull * (vb.last_used++ & (vb.qsize - 1)));
				uint32_t id = e->id;
				s = id / 3;
				if (id % 3 || s >= qd)
					fail("the device returned a descriptor we did not submit");
			}
			inflight--;
			if (status[s] != 0)
				errors++;
			if (measuring && !stop) {
				uint64_t c = now - t_submit[s];
				lat[n++] = c > 0xffffffffull ? 0xffffffffu : (uint32_t)c;
			}
			if (!stop) {
				queue_req(s, write);
				inflight++;
				queued = true;
			}
		}
		if (!measuring && now - start >= warm_cyc) {
			measuring = true;
			mstart = now;
		}
		if (measuring && !stop && (now - mstart >= run_cyc || (max_ops && n >= max_ops) || n + qd >= LAT_MAX)) {
			stop = true;
			mend = now;
			nend = n;
		}
		if (queued)
			publish();
		if (stop && !inflight)
			break;
	}
	uint64_t ns = cyc_to_ns(mend - mstart);
	sort_u32(lat, nend);
	uint64_t p50 = nend ? cyc_to_ns(lat[nend / 2]) : 0, p99 = nend ? cyc_to_ns(lat[nend * 99 / 100]) : 0;
	print("blkbench: rw=%s qd=%u ops=%lu ns=%lu iops=%lu p50_ns=%lu p99_ns=%lu kicks=%lu kick_ns=%lu errors=%lu\n",
	      write ? "write" : "read", qd, nend, ns, ns ? nend * 1000000000ull / ns : 0, p50, p99, kicks,
	      kicks ? cyc_to_ns(kick_cyc / kicks) : 0, errors);
	if (errors)
		failures++;
}

static __attribute__((noreturn)) void user_main(void)
{
	print("blkbench: in ring 3\n");
	check_acpi();
	calibrate_tsc();
	uint64_t t0 = rdtsc();
	for (int i = 0; i < 1000; i++)
		(void)rdtsc();
	print("blkbench: tsc_khz=%lu rdtsc_cycles=%lu\n", tsc_khz, (rdtsc() - t0) / 1000);
	device_init();
	/*
	 * What the exits cost here, for reading the results: a notify with
	 * nothing queued (ioeventfd: handled in the kernel, wakes the device's
	 * thread), a port read of the UART and an MMIO read of the device
	 * status (both answered by the VMM in user space).
	 */
	uint64_t c0 = rdtsc();
	for (int i = 0; i < 200; i++)
		mw16(vb.notify, 0);
	uint64_t c1 = rdtsc();
	for (int i = 0; i < 200; i++)
		(void)inb(0x3f8 + 5);
	uint64_t c2 = rdtsc();
	for (int i = 0; i < 200; i++)
		(void)mr8(vb.common + C_STATUS);
	uint64_t c3 = rdtsc();
	print("blkbench: exits idle_notify_ns=%lu port_read_ns=%lu mmio_read_ns=%lu\n", cyc_to_ns((c1 - c0) / 200),
	      cyc_to_ns((c2 - c1) / 200), cyc_to_ns((c3 - c2) / 200));

	uint64_t span = param_u64("keeltest.blk.span_mb", 0) << 11; /* sectors */
	if (!span || span > vb.capacity)
		span = vb.capacity;
	nblocks = span / 8;
	rng ^= param_u64("keeltest.blk.seed", 1);
	uint64_t ms = param_u64("keeltest.blk.ms", 2000), warm = param_u64("keeltest.blk.warm_ms", 200);
	uint64_t ops = param_u64("keeltest.blk.ops", 0);
	unsigned qd = (unsigned)param_u64("keeltest.blk.qd", 32);
	if (qd > vb.slots)
		qd = vb.slots;
	if (qd < 1)
		qd = 1;
	const unsigned depths[2] = { 1, qd };
	unsigned only_depth = (unsigned)param_u64("keeltest.blk.depth", 0); /* 0: both */
	char rw[8];
	bool only_read = param("keeltest.blk.rw", rw, sizeof(rw)) && !memcmp(rw, "read", 5);
	bool only_write = param("keeltest.blk.rw", rw, sizeof(rw)) && !memcmp(rw, "write", 6);
	for (unsigned w = only_write; w < (only_read ? 1u : 2u); w++)
		for (unsigned i = 0; i < 2; i++)
			if (!only_depth || depths[i] == only_depth)
				run_point(w, depths[i], warm * tsc_khz, ops ? ~0ull : ms * tsc_khz, ops);
	print("blkbench: done\n");
	guest_exit(failures ? EXIT_FAIL : EXIT_PASS);
}

/* --- ring 0 -------------------------------------------------------------- */

static bool area_in_ram(void)
{
	for (unsigned i = 0; i < boot.nr_map; i++) {
		const struct mem_entry *e = &boot.map[i];
		if (e->type == 1 && e->addr <= AREA && AREA_END <= e->addr + e->size)
			return true;
	}
	return false;
}

void blkbench(void)
{
	if (!area_in_ram()) {
		print("blkbench: FAIL %lx-%lx is not RAM (give the guest 64 MiB or more)\n", AREA, AREA_END);
		guest_exit(EXIT_FAIL);
	}
	interrupts_init(); /* exceptions in ring 3 report and exit */
	/* A TSS whose RSP0 (the boot stack, no longer needed) takes exceptions from ring 3. */
	uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
	tss.tss.rsp[0] = (uint64_t)stack_top;
	gdt[SEL_TSS / 8] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 | ((limit >> 16) & 0xf) << 48 |
			   ((base >> 24) & 0xff) << 56;
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)SEL_TSS));
	__asm__ volatile("pushq %0\n\t"
			 "pushq %1\n\t"
			 "pushq %2\n\t"
			 "pushq %3\n\t"
			 "pushq %4\n\t"
			 "iretq"
			 :
			 : "i"(SEL_UDATA), "r"(USTACK_TOP - 8), "i"(RFLAGS_IOPL3), "i"(SEL_UCODE), "r"((uint64_t)user_main)
			 : "memory");
	__builtin_unreachable();
}
