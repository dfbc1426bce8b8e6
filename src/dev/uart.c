// SPDX-License-Identifier: MIT
/*
 * 16550A UART as COM1 (port 0x3f8, IRQ 4).  The transmitter is infinitely
 * fast: THR writes go straight to the character back-end and THRE is set
 * again at once.  The receiver has the 16-byte FIFO with trigger levels;
 * the console pushes input only as fast as the FIFO drains (no overruns
 * from the host side).  Loopback mode (MCR bit 4) feeds THR into the FIFO.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/device.h"
#include "vmm/layout.h"
#include "base/util.h"
#include "vmm/vm.h"

enum {
	REG_RBR_THR_DLL = 0,
	REG_IER_DLM = 1,
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI 0x01 /* received data available */
#define IER_THRI 0x02 /* THR empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI 0x08  /* modem status */

#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0c /* character timeout */
#define IIR_FIFO 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS 0x1e

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

#define FIFO_SIZE 16

struct uart {
	pthread_mutex_t lock;
	struct vm *vm;
	struct chardev *chr;
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thri_pending; /* THRE interrupt latched, cleared by IIR read or THR write */
	bool irq_level;
	bool rx_blocked; /* the back-end has input waiting for FIFO space */
	uint8_t rx[FIFO_SIZE];
	unsigned rx_head, rx_count;
};

static unsigned rx_capacity(const struct uart *u)
{
	return (u->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart *u)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };
	return (u->fcr & FCR_ENABLE) ? levels[u->fcr >> 6] : 1;
}

static uint8_t pending_iir(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & LSR_ERRORS))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count)
		return u->rx_count >= rx_trigger(u) ? IIR_RDI : IIR_CTI;
	if ((u->ier & IER_THRI) && u->thri_pending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & 0x0f))
		return IIR_MSI;
	return IIR_NONE;
}

/* Recompute the interrupt line; called with the lock held after every change. */
static void update_irq(struct uart *u)
{
	bool level = pending_iir(u) != IIR_NONE;
	if (level != u->irq_level) {
		u->irq_level = level;
		vm_set_irq(u->vm, IRQ_COM1, level);
	}
}

/* The FIFO has room again: let a console with pending input push more. */
static void wake_rx(struct uart *u)
{
	if (!u->rx_blocked)
		return;
	u->rx_blocked = false;
	uint64_t one = 1;
	(void)!write(u->chr->rx_ready_efd, &one, sizeof(one));
}

static void rx_clear(struct uart *u)
{
	u->rx_head = u->rx_count = 0;
	u->lsr &= (uint8_t)~LSR_DR;
	wake_rx(u);
}

/* Add one byte to the receive FIFO; sets OE and drops it when full. */
static void rx_put(struct uart *u, uint8_t b)
{
	if (u->rx_count >= rx_capacity(u)) {
		u->lsr |= LSR_OE;
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % FIFO_SIZE] = b;
	u->rx_count++;
	u->lsr |= LSR_DR;
}

static uint8_t modem_status_lines(const struct uart *u)
{
	if (u->mcr & MCR_LOOP) {
		uint8_t m = 0;
		m |= (u->mcr & MCR_RTS) ? MSR_CTS : 0;
		m |= (u->mcr & MCR_DTR) ? MSR_DSR : 0;
		m |= (u->mcr & MCR_OUT1) ? MSR_RI : 0;
		m |= (u->mcr & MCR_OUT2) ? MSR_DCD : 0;
		return m;
	}
	return MSR_CTS | MSR_DSR | MSR_DCD; /* a connected terminal */
}

static void set_modem_lines(struct uart *u, uint8_t lines)
{
	uint8_t old = u->msr & 0xf0, delta = 0;
	if ((old ^ lines) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ lines) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		delta |= MSR_TERI; /* trailing edge of ring indicator */
	if ((old ^ lines) & MSR_DCD)
		delta |= MSR_DDCD;
	u->msr = (uint8_t)(lines | (u->msr & 0x0f) | delta);
}

static void transmit(struct uart *u, uint8_t b)
{
	if (u->mcr & MCR_LOOP)
		rx_put(u, b);
	else if (u->chr->out_fd >= 0)
		(void)write_full(u->chr->out_fd, &b, 1);
	u->lsr |= LSR_THRE | LSR_TEMT;
	u->thri_pending = true;
}

static uint64_t uart_read(void *opaque, uint64_t off, unsigned size)
{
	struct uart *u = opaque;
	uint8_t v = 0xff;
	(void)size;
	pthread_mutex_lock(&u->lock);
	switch (off) {
	case REG_RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
			break;
		}
		v = 0;
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % FIFO_SIZE;
			u->rx_count--;
			if (!u->rx_count)
				u->lsr &= (uint8_t)~LSR_DR;
			wake_rx(u);
		}
		break;
	case REG_IER_DLM:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case REG_IIR_FCR:
		v = pending_iir(u);
		if (v == IIR_THRI)
			u->thri_pending = false; /* reading IIR acknowledges THRE */
		if (u->fcr & FCR_ENABLE)
			v |= IIR_FIFO;
		break;
	case REG_LCR:
		v = u->lcr;
		break;
	case REG_MCR:
		v = u->mcr;
		break;
	case REG_LSR:
		v = u->lsr;
		u->lsr &= (uint8_t)~LSR_ERRORS;
		break;
	case REG_MSR:
		v = u->msr;
		u->msr &= 0xf0;
		break;
	case REG_SCR:
		v = u->scr;
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return v;
}

static void uart_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct uart *u = opaque;
	uint8_t v = (uint8_t)value;
	(void)size;
	pthread_mutex_lock(&u->lock);
	switch (off) {
	case REG_RBR_THR_DLL:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			transmit(u, v);
		break;
	case REG_IER_DLM:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling THRE interrupts with an empty THR raises one at once. */
		if (!(u->ier & IER_THRI) && (v & IER_THRI) && (u->lsr & LSR_THRE))
			u->thri_pending = true;
		u->ier = v & 0x0f;
		break;
	case REG_IIR_FCR:
		if ((v ^ u->fcr) & FCR_ENABLE)
			rx_clear(u); /* switching FIFO mode empties the FIFOs */
		if (v & FCR_CLEAR_RX)
			rx_clear(u);
		u->fcr = v & (FCR_ENABLE | 0xc0);
		break;
	case REG_LCR:
		u->lcr = v;
		break;
	case REG_MCR:
		u->mcr = v & 0x1f;
		set_modem_lines(u, modem_status_lines(u));
		if (!(u->mcr & MCR_LOOP))
			wake_rx(u);
		break;
	case REG_SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/* Console input: take as much as the FIFO has room for. */
static size_t uart_rx_push(void *dev, const uint8_t *buf, size_t len)
{
	struct uart *u = dev;
	size_t n = 0;
	pthread_mutex_lock(&u->lock);
	/* In loopback the receiver is disconnected from the line. */
	if (!(u->mcr & MCR_LOOP)) {
		while (n < len && u->rx_count < rx_capacity(u))
			rx_put(u, buf[n++]);
	}
	if (n < len)
		u->rx_blocked = true;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

static int uart_create(struct vm *vm, void **state)
{
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	u->vm = vm;
	u->chr = &vm->serial;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = modem_status_lines(u);
	u->dll = 12; /* 9600 baud */
	vm->serial.rx_push = uart_rx_push;
	vm->serial.dev = u;
	*state = u;
	return 0;
}

static void uart_destroy(void *state)
{
	struct uart *u = state;
	if (u->chr->dev == u) {
		u->chr->rx_push = NULL;
		u->chr->dev = NULL;
	}
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static const struct io_range_desc uart_pio[] = {
	{ PORT_COM1, 8, { uart_read, uart_write } },
};

const struct device_desc uart_com1_device = {
	.name = "uart-com1",
	.create = uart_create,
	.destroy = uart_destroy,
	.pio = uart_pio,
	.nr_pio = ARRAY_SIZE(uart_pio),
};
