// SPDX-License-Identifier: MIT
/*
 * The device-test accelerator (accel.h) and the accesses a test makes in
 * place of vCPUs (machine.h).  What KVM would do with an interrupt line, a
 * routing table, an irqfd or an ioeventfd is done here in the same terms
 * (KVM's UAPI structures), and recorded for the test to look at.
 */
#include "machine.h"

#include <errno.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "vmm/accel.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#define DT_GSIS 1024      /* KVM's default routing table size is about this */
#define DT_IRQFDS 512
#define DT_IOEVENTFDS 512
#define DT_MSI_QUEUE 1024

struct dt_ioeventfd {
	uint64_t addr, datamatch;
	uint32_t len, flags;
	int fd;
};

struct dt_machine {
	struct vm *vm;
	pthread_mutex_t lock;
	bool level[IOAPIC_PINS];
	uint64_t raises[IOAPIC_PINS];
	/* The routing table as last installed: for each GSI, an MSI (addr, data) or an irqchip pin. */
	struct {
		bool msi, pin;
		uint64_t addr;
		uint32_t data;
	} route[DT_GSIS];
	struct {
		int fd;
		unsigned gsi;
	} irqfd[DT_IRQFDS];
	unsigned nr_irqfds;
	struct dt_ioeventfd ioeventfd[DT_IOEVENTFDS];
	unsigned nr_ioeventfds;
	struct {
		uint64_t addr;
		uint32_t data;
	} msi[DT_MSI_QUEUE];
	unsigned msi_head, msi_count;
	uint64_t msi_lost;
};

static struct dt_machine *of(struct vm *vm)
{
	return vm->accel_state;
}

/* --- the accelerator ----------------------------------------------------- */

/* Level-triggered lines; a rising edge is counted (the test sees pulses too). Lock held. */
static void line(struct dt_machine *m, unsigned gsi, bool level)
{
	if (gsi >= IOAPIC_PINS)
		return;
	if (level && !m->level[gsi])
		m->raises[gsi]++;
	m->level[gsi] = level;
}

static void dt_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	struct dt_machine *m = of(vm);
	pthread_mutex_lock(&m->lock);
	line(m, gsi, level);
	pthread_mutex_unlock(&m->lock);
}

static int dt_set_gsi_routing(struct vm *vm, const struct kvm_irq_routing *t)
{
	struct dt_machine *m = of(vm);
	if (t->nr > DT_GSIS * 2)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	memset(m->route, 0, sizeof(m->route));
	int r = 0;
	for (uint32_t i = 0; i < t->nr && !r; i++) {
		const struct kvm_irq_routing_entry *e = &t->entries[i];
		if (e->gsi >= DT_GSIS) {
			r = -EINVAL;
		} else if (e->type == KVM_IRQ_ROUTING_MSI) {
			m->route[e->gsi].msi = true;
			m->route[e->gsi].addr = (uint64_t)e->u.msi.address_hi << 32 | e->u.msi.address_lo;
			m->route[e->gsi].data = e->u.msi.data;
		} else if (e->type == KVM_IRQ_ROUTING_IRQCHIP) {
			m->route[e->gsi].pin = true;
		} else {
			r = -EINVAL;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int dt_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign)
{
	struct dt_machine *m = of(vm);
	int r = assign ? -ENOSPC : -ENOENT;
	pthread_mutex_lock(&m->lock);
	if (assign && gsi < DT_GSIS && m->nr_irqfds < DT_IRQFDS) {
		m->irqfd[m->nr_irqfds].fd = fd;
		m->irqfd[m->nr_irqfds].gsi = gsi;
		m->nr_irqfds++;
		r = 0;
	}
	for (unsigned i = 0; !assign && i < m->nr_irqfds; i++) {
		if (m->irqfd[i].fd == fd && m->irqfd[i].gsi == gsi) {
			m->irqfd[i] = m->irqfd[--m->nr_irqfds];
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static bool same_range(const struct dt_ioeventfd *a, const struct kvm_ioeventfd *b)
{
	uint32_t pio = KVM_IOEVENTFD_FLAG_PIO, dm = KVM_IOEVENTFD_FLAG_DATAMATCH;
	return a->addr == b->addr && a->len == b->len && (a->flags & pio) == (b->flags & pio) &&
	       (a->flags & dm) == (b->flags & dm) && (!(a->flags & dm) || a->datamatch == b->datamatch);
}

static int dt_ioeventfd(struct vm *vm, const struct kvm_ioeventfd *io)
{
	struct dt_machine *m = of(vm);
	uint32_t known = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_DEASSIGN;
	if ((io->flags & ~known) || (io->len != 0 && io->len != 1 && io->len != 2 && io->len != 4 && io->len != 8))
		return -EINVAL;
	int r = 0;
	pthread_mutex_lock(&m->lock);
	unsigned i = 0;
	while (i < m->nr_ioeventfds && !same_range(&m->ioeventfd[i], io))
		i++;
	if (io->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
		if (i < m->nr_ioeventfds && m->ioeventfd[i].fd == io->fd)
			m->ioeventfd[i] = m->ioeventfd[--m->nr_ioeventfds];
		else
			r = -ENOENT;
	} else if (i < m->nr_ioeventfds) {
		r = -EEXIST; /* as KVM: one eventfd per range */
	} else if (m->nr_ioeventfds == DT_IOEVENTFDS) {
		r = -ENOSPC;
	} else {
		m->ioeventfd[m->nr_ioeventfds++] = (struct dt_ioeventfd){
			.addr = io->addr, .datamatch = io->datamatch, .len = io->len,
			.flags = io->flags & ~KVM_IOEVENTFD_FLAG_DEASSIGN, .fd = io->fd,
		};
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static const struct accel_ops devtest_accel = {
	.name = "devtest",
	.set_irq = dt_set_irq,
	.set_gsi_routing = dt_set_gsi_routing,
	.irqfd = dt_irqfd,
	.ioeventfd = dt_ioeventfd,
};

struct dt_machine *dt_attach(struct vm *vm)
{
	struct dt_machine *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->vm = vm;
	vm->accel = &devtest_accel;
	vm->accel_state = m;
	vm->virtual_clock = true;
	vm->virtual_realtime_base = DT_EPOCH;
	atomic_store(&vm->virtual_ns, 0);
	vm->boot_ns = 0;
	return m;
}

void dt_detach(struct dt_machine *m)
{
	if (!m)
		return;
	m->vm->accel_state = NULL;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* --- accesses ------------------------------------------------------------ */

/* The ioeventfd a write would signal, or -1.  Lock held. */
static int ioeventfd_find(struct dt_machine *m, bool pio, uint64_t addr, unsigned size, uint64_t value, bool any_value)
{
	for (unsigned i = 0; i < m->nr_ioeventfds; i++) {
		const struct dt_ioeventfd *e = &m->ioeventfd[i];
		if (!!(e->flags & KVM_IOEVENTFD_FLAG_PIO) != pio || e->addr != addr || (e->len && e->len != size))
			continue;
		if (!any_value && (e->flags & KVM_IOEVENTFD_FLAG_DATAMATCH) &&
		    (value & io_ones(size)) != (e->datamatch & io_ones(size)))
			continue;
		return e->fd;
	}
	return -1;
}

unsigned dt_ioeventfds_at(struct dt_machine *m, bool pio, uint64_t addr, unsigned size)
{
	pthread_mutex_lock(&m->lock);
	int fd = ioeventfd_find(m, pio, addr, size, 0, true);
	pthread_mutex_unlock(&m->lock);
	return fd >= 0;
}

/* A write KVM would hand to an ioeventfd instead of exiting: signal it.  True if one took it. */
static bool ioeventfd_write(struct dt_machine *m, bool pio, uint64_t addr, unsigned size, uint64_t value)
{
	pthread_mutex_lock(&m->lock);
	int fd = ioeventfd_find(m, pio, addr, size, value, false);
	pthread_mutex_unlock(&m->lock);
	if (fd < 0)
		return false;
	uint64_t one = 1;
	(void)!write(fd, &one, sizeof(one));
	return true;
}

static bool valid_size(unsigned size, bool pio)
{
	return size == 1 || size == 2 || size == 4 || (!pio && size == 8);
}

uint64_t dt_pio_read(struct dt_machine *m, uint16_t port, unsigned size)
{
	uint64_t v = io_ones(size);
	if (valid_size(size, true))
		(void)bus_read(&m->vm->pio, port, size, &v);
	return v & io_ones(size);
}

void dt_pio_write(struct dt_machine *m, uint16_t port, unsigned size, uint64_t value)
{
	if (!valid_size(size, true) || ioeventfd_write(m, true, port, size, value))
		return;
	(void)bus_write(&m->vm->pio, port, size, value & io_ones(size));
}

uint64_t dt_mem_read(struct dt_machine *m, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	if (!valid_size(size, false))
		return ~0ull;
	const void *p = gm_ptr(&m->vm->mem, addr, size);
	if (p) {
		memcpy(&v, p, size); /* little-endian, as the guest sees it */
		return v;
	}
	v = io_ones(size);
	(void)bus_read(&m->vm->mmio, addr, size, &v);
	return v & io_ones(size);
}

void dt_mem_write(struct dt_machine *m, uint64_t addr, unsigned size, uint64_t value)
{
	if (!valid_size(size, false))
		return;
	void *p = gm_ptr(&m->vm->mem, addr, size);
	if (p) {
		memcpy(p, &value, size);
		return;
	}
	if (ioeventfd_write(m, false, addr, size, value))
		return;
	(void)bus_write(&m->vm->mmio, addr, size, value & io_ones(size));
}

int dt_ram_read(struct dt_machine *m, uint64_t addr, void *dst, uint64_t len)
{
	return gm_read(&m->vm->mem, addr, dst, len);
}

int dt_ram_write(struct dt_machine *m, uint64_t addr, const void *src, uint64_t len)
{
	return gm_write(&m->vm->mem, addr, src, len);
}

/* --- interrupts ---------------------------------------------------------- */

int dt_irq(struct dt_machine *m, unsigned gsi, bool *level, uint64_t *raises)
{
	if (gsi >= IOAPIC_PINS)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	*level = m->level[gsi];
	*raises = m->raises[gsi];
	pthread_mutex_unlock(&m->lock);
	return 0;
}

struct vm *dt_vm(struct dt_machine *m)
{
	return m->vm;
}

uint64_t dt_msi_lost(struct dt_machine *m)
{
	pthread_mutex_lock(&m->lock);
	uint64_t n = m->msi_lost;
	pthread_mutex_unlock(&m->lock);
	return n;
}

bool dt_msi_pop(struct dt_machine *m, uint64_t *addr, uint32_t *data)
{
	pthread_mutex_lock(&m->lock);
	bool any = m->msi_count > 0;
	if (any) {
		*addr = m->msi[m->msi_head].addr;
		*data = m->msi[m->msi_head].data;
		m->msi_head = (m->msi_head + 1) % DT_MSI_QUEUE;
		m->msi_count--;
	}
	pthread_mutex_unlock(&m->lock);
	return any;
}

/* An irqfd was signalled: inject gsi as KVM would.  Lock held. */
static void inject(struct dt_machine *m, unsigned gsi)
{
	if (m->route[gsi].msi) {
		if (m->msi_count == DT_MSI_QUEUE) {
			m->msi_lost++;
			return;
		}
		unsigned tail = (m->msi_head + m->msi_count) % DT_MSI_QUEUE;
		m->msi[tail].addr = m->route[gsi].addr;
		m->msi[tail].data = m->route[gsi].data;
		m->msi_count++;
	} else if (m->route[gsi].pin && gsi < IOAPIC_PINS) {
		m->raises[gsi]++; /* an edge on the line; its level does not stay up */
	}
}

int dt_poll(struct dt_machine *m, int timeout_ms, int fd)
{
	struct pollfd p[DT_IRQFDS + 1];
	unsigned gsi[DT_IRQFDS];
	pthread_mutex_lock(&m->lock);
	unsigned n = m->nr_irqfds;
	for (unsigned i = 0; i < n; i++) {
		p[i] = (struct pollfd){ .fd = m->irqfd[i].fd, .events = POLLIN };
		gsi[i] = m->irqfd[i].gsi;
	}
	pthread_mutex_unlock(&m->lock);
	p[n] = (struct pollfd){ .fd = fd, .events = POLLIN }; /* fd -1 is ignored by poll() */
	int r = poll(p, n + 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < n; i++) {
		uint64_t count;
		if ((p[i].revents & POLLIN) && read(p[i].fd, &count, sizeof(count)) == sizeof(count))
			inject(m, gsi[i]);
	}
	pthread_mutex_unlock(&m->lock);
	return fd >= 0 && (p[n].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

bool dt_msi_wait(struct dt_machine *m, int timeout_ms, uint64_t *addr, uint32_t *data)
{
	uint64_t end = now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
	for (;;) {
		(void)dt_poll(m, 0, -1);
		if (dt_msi_pop(m, addr, data))
			return true;
		uint64_t now = now_ns();
		if (now >= end)
			return false;
		uint64_t left_ms = (end - now + 999999) / 1000000;
		if (dt_poll(m, (int)MIN(left_ms, 1000u), -1) < 0)
			return false;
	}
}
