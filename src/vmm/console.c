// SPDX-License-Identifier: MIT
#include "console.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"
#include "vm.h"

#define ESCAPE_KEY 0x01 /* Ctrl-A */

static struct termios saved_termios;
static volatile int saved_fd = -1;

void console_restore(void)
{
	int fd = saved_fd;
	if (fd >= 0)
		tcsetattr(fd, TCSANOW, &saved_termios);
}

int console_init(struct console *c, int in_fd)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = in_fd;
	if (in_fd < 0 || !isatty(in_fd))
		return 0;
	struct termios t;
	if (tcgetattr(in_fd, &t) < 0)
		return -errno;
	saved_termios = t;
	/* Raw input, but keep output processing so that "\n" still starts a new line. */
	t.c_iflag &= (tcflag_t) ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= (tcflag_t) ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= (tcflag_t) ~(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(in_fd, TCSANOW, &t) < 0)
		return -errno;
	saved_fd = in_fd;
	atexit(console_restore);
	c->tty = true;
	return 0;
}

int console_poll_fd(const struct console *c, const struct vm *vm)
{
	if (c->in_fd < 0 || !vm->serial.rx_push)
		return -1;
	if (c->len > c->off)
		return vm->serial.rx_ready_efd; /* wait for FIFO space */
	return c->eof ? -1 : c->in_fd;
}

static void print_help(void)
{
	static const char help[] = "\r\nkeel console keys:\r\n"
				   "  Ctrl-A x       quit keel (the guest is stopped)\r\n"
				   "  Ctrl-A h       this help\r\n"
				   "  Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n";
	(void)write_full(STDERR_FILENO, help, sizeof(help) - 1);
}

/* Interpret escapes in place; returns the number of bytes for the guest. */
static size_t filter_escapes(struct console *c, struct vm *vm, uint8_t *p, size_t n)
{
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = p[i];
		if (!c->escape) {
			if (b == ESCAPE_KEY)
				c->escape = true;
			else
				p[out++] = b;
			continue;
		}
		c->escape = false;
		switch (b) {
		case 'x':
		case 'X':
			vm_request_stop(vm, VM_STOP_QUIT, 0);
			return out;
		case 'h':
		case 'H':
		case '?':
			print_help();
			break;
		case ESCAPE_KEY:
			p[out++] = b;
			break;
		default:
			break; /* unknown escape: ignored, as in QEMU */
		}
	}
	return out;
}

void console_service(struct console *c, struct vm *vm)
{
	if (c->len > c->off) {
		uint64_t drain;
		(void)!read(vm->serial.rx_ready_efd, &drain, sizeof(drain));
	} else {
		ssize_t n = read(c->in_fd, c->buf, sizeof(c->buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				return;
			n = 0;
		}
		if (n == 0) {
			c->eof = true; /* the guest keeps running without input */
			return;
		}
		c->off = 0;
		c->len = c->tty ? filter_escapes(c, vm, c->buf, (size_t)n) : (size_t)n;
	}
	if (c->len > c->off && vm->serial.rx_push)
		c->off += vm->serial.rx_push(vm->serial.dev, c->buf + c->off, c->len - c->off);
}

void console_attach(struct console *c, struct vm *vm)
{
	if (c->len > c->off && vm->serial.rx_push)
		c->off += vm->serial.rx_push(vm->serial.dev, c->buf + c->off, c->len - c->off);
}
