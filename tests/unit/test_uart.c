// SPDX-License-Identifier: MIT
/* 16550A register semantics, driven through the device's own port table. */
#include <fcntl.h>
#include <poll.h>

#include "vmm/device.h"
#include "fake.h"
#include "unit.h"

static struct vm *vm;
static void *uart;
static int out_pipe[2];

static uint8_t rd(unsigned reg)
{
	return (uint8_t)uart_com1_device.pio[0].ops.read(uart, reg, 1);
}

static void wr(unsigned reg, uint8_t v)
{
	uart_com1_device.pio[0].ops.write(uart, reg, 1, v);
}

static void setup(void)
{
	vm = fake_vm(0);
	pipe2(out_pipe, O_NONBLOCK | O_CLOEXEC);
	vm->serial.out_fd = out_pipe[1];
	uart_com1_device.create(vm, &uart);
}

static void teardown(void)
{
	uart_com1_device.destroy(uart);
	close(out_pipe[0]);
	close(out_pipe[1]);
	fake_vm_free(vm);
}

static size_t drain_output(char *buf, size_t cap)
{
	ssize_t n = read(out_pipe[0], buf, cap);
	return n > 0 ? (size_t)n : 0;
}

static bool rx_ready_signalled(void)
{
	uint64_t v;
	return read(vm->serial.rx_ready_efd, &v, sizeof(v)) == sizeof(v);
}

static void reset_state(void)
{
	setup();
	CHECK_EQ(uart_com1_device.pio[0].base, 0x3f8);
	CHECK_EQ(rd(5), 0x60); /* THRE | TEMT */
	CHECK_EQ(rd(2), 0x01); /* no interrupt pending, FIFO off */
	CHECK_EQ(rd(6) & 0xf0, 0xb0); /* CTS, DSR, DCD: a terminal is attached */
	CHECK_EQ(rd(1), 0);
	CHECK_EQ(rd(3), 0);
	teardown();
}

static void divisor_latch_and_scratch(void)
{
	setup();
	wr(3, 0x80);
	wr(0, 0x01);
	wr(1, 0x02);
	CHECK_EQ(rd(0), 0x01);
	CHECK_EQ(rd(1), 0x02);
	wr(3, 0x03);
	CHECK_EQ(rd(3), 0x03);
	CHECK_EQ(rd(1), 0x00); /* IER again, untouched by the DLM write */
	char b[8];
	CHECK_EQ(drain_output(b, sizeof(b)), 0); /* DLL writes are not data */
	wr(7, 0xa5);
	CHECK_EQ(rd(7), 0xa5);
	wr(1, 0xff);
	CHECK_EQ(rd(1), 0x0f);
	teardown();
}

static void transmit_and_thre_interrupt(void)
{
	setup();
	wr(0, 'h');
	wr(0, 'i');
	char b[8];
	CHECK_EQ(drain_output(b, sizeof(b)), 2);
	CHECK(!memcmp(b, "hi", 2));
	CHECK_EQ(rd(5) & 0x60, 0x60);
	CHECK_EQ(rd(2), 0x01); /* THRE interrupts not enabled */
	wr(1, 0x02);           /* enabling them with THR empty raises one */
	CHECK_EQ(rd(2), 0x02);
	CHECK_EQ(rd(2), 0x01); /* reading IIR acknowledged it */
	wr(0, '!');
	CHECK_EQ(rd(2), 0x02); /* THR empty again after the byte went out */
	wr(0, '?');            /* a THR write clears the latched one and sets it again */
	wr(1, 0x00);
	CHECK_EQ(rd(2), 0x01);
	teardown();
}

static void fifo_trigger_and_timeout(void)
{
	setup();
	wr(2, 0xc7); /* FIFO on, cleared, trigger level 14 */
	wr(1, 0x01); /* received-data interrupts */
	const uint8_t in[20] = "abcdefghijklmnopqrs";
	size_t took = vm->serial.rx_push(vm->serial.dev, in, 20);
	CHECK_EQ(took, 16);
	CHECK_EQ(rd(5) & 0x01, 0x01);
	CHECK_EQ(rd(2), 0xc4); /* data available: 16 >= 14 */
	CHECK_EQ(rd(0), 'a');
	CHECK(rx_ready_signalled()); /* the console may push again */
	CHECK_EQ(rd(0), 'b');
	CHECK_EQ(rd(0), 'c');
	CHECK_EQ(rd(2), 0xcc); /* 13 left, below the trigger: character timeout */
	for (int i = 0; i < 13; i++)
		CHECK_EQ(rd(0), 'd' + i);
	CHECK_EQ(rd(5) & 0x01, 0);
	CHECK_EQ(rd(2), 0xc1);
	CHECK_EQ(rd(0), 0); /* empty FIFO reads 0 */
	teardown();
}

static void fifo_disabled_holds_one_byte(void)
{
	setup();
	const uint8_t in[3] = { 1, 2, 3 };
	CHECK_EQ(vm->serial.rx_push(vm->serial.dev, in, 3), 1);
	CHECK_EQ(rd(0), 1);
	CHECK_EQ(vm->serial.rx_push(vm->serial.dev, in + 1, 2), 1);
	wr(2, 0x01); /* enabling the FIFO empties it */
	CHECK_EQ(rd(5) & 0x01, 0);
	CHECK_EQ(vm->serial.rx_push(vm->serial.dev, in, 3), 3);
	wr(2, 0x03); /* clear the receive FIFO */
	CHECK_EQ(rd(5) & 0x01, 0);
	teardown();
}

static void loopback(void)
{
	setup();
	wr(4, 0x10 | 0x0f); /* loopback, DTR, RTS, OUT1, OUT2 */
	/* All four lines up.  CTS, DSR, DCD were already up and RI's delta (TERI)
	 * fires only on its falling edge, so no delta bits. */
	CHECK_EQ(rd(6), 0xf0);
	wr(0, 0x5a);
	char b[4];
	CHECK_EQ(drain_output(b, sizeof(b)), 0); /* nothing leaves the chip */
	CHECK_EQ(rd(5) & 0x01, 0x01);
	CHECK_EQ(rd(0), 0x5a);
	const uint8_t in = 'x';
	CHECK_EQ(vm->serial.rx_push(vm->serial.dev, &in, 1), 0); /* line disconnected */
	/* Overrun: FIFO off holds one byte; the second sets OE, a line-status interrupt. */
	wr(1, 0x04);
	wr(0, 1);
	wr(0, 2);
	CHECK_EQ(rd(2), 0x06);
	CHECK_EQ(rd(5) & 0x02, 0x02);
	CHECK_EQ(rd(5) & 0x02, 0); /* reading LSR cleared it */
	CHECK_EQ(rd(0), 1);
	wr(4, 0x00);
	CHECK(rx_ready_signalled()); /* leaving loopback reconnects the console */
	CHECK_EQ(vm->serial.rx_push(vm->serial.dev, &in, 1), 1);
	teardown();
}

static void modem_status_deltas(void)
{
	setup();
	wr(4, 0x10); /* loopback with all outputs low: every line drops */
	uint8_t m = rd(6);
	CHECK_EQ(m & 0xf0, 0);
	CHECK_EQ(m & 0x0b, 0x0b); /* DCTS, DDSR, DDCD */
	CHECK_EQ(rd(6) & 0x0f, 0); /* deltas clear on read */
	wr(1, 0x08);
	wr(4, 0x12); /* RTS up: CTS rises */
	CHECK_EQ(rd(2), 0x00); /* modem-status interrupt */
	CHECK_EQ(rd(6), 0x11);
	CHECK_EQ(rd(2), 0x01);
	teardown();
}

static void console_backpressure(void)
{
	setup();
	wr(2, 0x01);
	uint8_t big[40];
	memset(big, 'z', sizeof(big));
	CHECK_EQ(vm->serial.rx_push(vm->serial.dev, big, sizeof(big)), 16);
	CHECK(!rx_ready_signalled());
	(void)rd(0);
	CHECK(rx_ready_signalled());
	CHECK(!rx_ready_signalled()); /* once per blocked push */
	teardown();
}

int main(void)
{
	RUN("uart", reset_state);
	RUN("uart", divisor_latch_and_scratch);
	RUN("uart", transmit_and_thre_interrupt);
	RUN("uart", fifo_trigger_and_timeout);
	RUN("uart", fifo_disabled_holds_one_byte);
	RUN("uart", loopback);
	RUN("uart", modem_status_deltas);
	RUN("uart", console_backpressure);
	UNIT_EXIT();
}
