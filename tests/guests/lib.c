/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "guest.h"

#define COM1 0x3f8

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dd = d;
	const uint8_t *ss = s;
	while (n--)
		*dd++ = *ss++;
	return d;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *dd = d;
	while (n--)
		*dd++ = (uint8_t)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0x07); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

void putc_serial(char c)
{
	if (c == '\n')
		putc_serial('\r');
	while (!(inb(COM1 + 5) & 0x20))
		cpu_relax();
	outb(COM1, (uint8_t)c);
}

static void put_str(const char *s)
{
	while (*s)
		putc_serial(*s++);
}

static void put_num(uint64_t v, unsigned base, int width)
{
	char buf[24];
	int n = 0;
	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n < width)
		buf[n++] = '0';
	while (n)
		putc_serial(buf[--n]);
}

static void vprint(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putc_serial(*fmt);
			continue;
		}
		fmt++;
		bool lng = false;
		if (*fmt == 'l') {
			lng = true;
			fmt++;
		}
		switch (*fmt) {
		case 's': put_str(va_arg(ap, const char *)); break;
		case 'c': putc_serial((char)va_arg(ap, int)); break;
		case 'u': put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0); break;
		case 'x': put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0); break;
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			if (v < 0) {
				putc_serial('-');
				v = -v;
			}
			put_num((uint64_t)v, 10, 0);
			break;
		}
		case '%': putc_serial('%'); break;
		default: putc_serial('?'); break;
		}
	}
}

void print(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

unsigned failures;

void check(bool ok, const char *name, const char *fmt, ...)
{
	print(ok ? "ok %s" : "FAIL %s", name);
	if (fmt && *fmt) {
		va_list ap;
		va_start(ap, fmt);
		print(": ");
		vprint(fmt, ap);
		va_end(ap);
	}
	print("\n");
	if (!ok)
		failures++;
}

const char *param(const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = boot.cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *start = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - start) > kl && !memcmp(start, key, kl) && start[kl] == '=') {
			size_t n = (size_t)(p - start) - kl - 1;
			if (n >= len)
				n = len - 1;
			memcpy(buf, start + kl + 1, n);
			buf[n] = 0;
			return buf;
		}
	}
	return NULL;
}

uint64_t param_u64(const char *key, uint64_t dflt)
{
	char buf[32];
	if (!param(key, buf, sizeof(buf)))
		return dflt;
	uint64_t v = 0;
	unsigned base = 10;
	const char *s = buf;
	if (s[0] == '0' && s[1] == 'x') {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		unsigned d = (*s >= '0' && *s <= '9') ? (unsigned)(*s - '0') : (unsigned)((*s | 0x20) - 'a' + 10);
		if (d >= base)
			return dflt;
		v = v * base + d;
	}
	return v;
}

uint32_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;
	while (n--) {
		h ^= *b++;
		h *= 16777619u;
	}
	return h;
}

void guest_exit(uint8_t code)
{
	outb(0xf4, code);
	/* No debug-exit port (or it was ignored): power off through ACPI if we can. */
	acpi_poweroff();
	for (;;)
		__asm__ volatile("cli; hlt");
}
