// SPDX-License-Identifier: MIT
/* keel-devtest's line protocol (proto.h): parse, validate, then act. */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "machine.h"
#include "vmm/vm.h"

#define DT_BULK_MAX (1u << 20)
#define DT_MSI_WAIT_MAX_MS 60000

void dt_out_free(struct dt_out *o)
{
	free(o->buf);
	*o = (struct dt_out){ 0 };
}

static int reserve(struct dt_out *o, size_t more)
{
	if (o->len + more + 1 <= o->cap)
		return 0;
	size_t cap = MAX(o->cap * 2, o->len + more + 1);
	cap = MAX(cap, (size_t)256);
	char *b = realloc(o->buf, cap);
	if (!b)
		return -ENOMEM;
	o->buf = b;
	o->cap = cap;
	return 0;
}

__attribute__((format(printf, 2, 3))) static int put(struct dt_out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(o, (size_t)n))
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
	return 0;
}

/* Split line into at most max words (in place).  Returns the count, or max + 1 if there are more. */
static unsigned split(char *line, char **w, unsigned max)
{
	unsigned n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = t;
	}
	return n;
}

/* A whole number in C notation, within [0, max]. */
static bool num(const char *s, uint64_t max, uint64_t *v)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end || x > max)
		return false;
	*v = x;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

struct access {
	const char *name;
	unsigned size;
	bool pio, write;
};

static const struct access accesses[] = {
	{ "outb", 1, true, true },    { "outw", 2, true, true },    { "outl", 4, true, true },
	{ "inb", 1, true, false },    { "inw", 2, true, false },    { "inl", 4, true, false },
	{ "writeb", 1, false, true }, { "writew", 2, false, true }, { "writel", 4, false, true },
	{ "writeq", 8, false, true }, { "readb", 1, false, false }, { "readw", 2, false, false },
	{ "readl", 4, false, false }, { "readq", 8, false, false },
};

static int access(struct dt_machine *m, const struct access *a, char **w, unsigned n, struct dt_out *o)
{
	uint64_t addr, value = 0;
	if (n != (a->write ? 3u : 2u))
		return put(o, "ERR %s takes %s\n", a->name, a->write ? "an address and a value" : "an address");
	if (!num(w[1], a->pio ? 0xffff : UINT64_MAX, &addr))
		return put(o, "ERR %s: bad %s '%s'\n", a->name, a->pio ? "port" : "address", w[1]);
	if (a->write && !num(w[2], io_ones(a->size), &value))
		return put(o, "ERR %s: bad %u-byte value '%s'\n", a->name, a->size, w[2]);
	if (a->pio && a->write) {
		dt_pio_write(m, (uint16_t)addr, a->size, value);
		return put(o, "OK\n");
	}
	if (a->write) {
		dt_mem_write(m, addr, a->size, value);
		return put(o, "OK\n");
	}
	value = a->pio ? dt_pio_read(m, (uint16_t)addr, a->size) : dt_mem_read(m, addr, a->size);
	return put(o, "OK 0x%llx\n", (unsigned long long)value);
}

static int bulk_read(struct dt_machine *m, uint64_t addr, uint64_t len, struct dt_out *o)
{
	uint8_t *b = malloc(len);
	if (!b)
		return -ENOMEM;
	int r = dt_ram_read(m, addr, b, len);
	if (r) {
		free(b);
		return put(o, "ERR read: 0x%llx+0x%llx is not all RAM\n", (unsigned long long)addr, (unsigned long long)len);
	}
	r = reserve(o, 4 + 2 * len);
	if (!r) {
		static const char digits[] = "0123456789abcdef";
		memcpy(o->buf + o->len, "OK ", 3);
		o->len += 3;
		for (uint64_t i = 0; i < len; i++) {
			o->buf[o->len++] = digits[b[i] >> 4];
			o->buf[o->len++] = digits[b[i] & 15];
		}
		o->buf[o->len++] = '\n';
		o->buf[o->len] = 0;
	}
	free(b);
	return r;
}

static int bulk_write(struct dt_machine *m, uint64_t addr, uint64_t len, const char *hex, struct dt_out *o)
{
	if (strlen(hex) != 2 * len)
		return put(o, "ERR write: %llu bytes need %llu hex digits\n", (unsigned long long)len,
			   (unsigned long long)(2 * len));
	uint8_t *b = malloc(len);
	if (!b)
		return -ENOMEM;
	for (uint64_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(b);
			return put(o, "ERR write: '%c%c' is not a hex byte\n", hex[2 * i], hex[2 * i + 1]);
		}
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	int r = dt_ram_write(m, addr, b, len);
	free(b);
	if (r)
		return put(o, "ERR write: 0x%llx+0x%llx is not all RAM\n", (unsigned long long)addr, (unsigned long long)len);
	return put(o, "OK\n");
}

static int bulk(struct dt_machine *m, char **w, unsigned n, struct dt_out *o)
{
	bool is_read = !strcmp(w[0], "read"), is_write = !strcmp(w[0], "write");
	unsigned want = is_read ? 3 : 4;
	uint64_t addr, len, byte = 0;
	if (n != want)
		return put(o, "ERR %s takes %s\n", w[0], is_read ? "ADDR LEN" : is_write ? "ADDR LEN HEX" : "ADDR LEN BYTE");
	if (!num(w[1], UINT64_MAX, &addr) || !num(w[2], DT_BULK_MAX, &len) || len == 0)
		return put(o, "ERR %s: bad address or length (1 to %u bytes)\n", w[0], DT_BULK_MAX);
	if (is_read)
		return bulk_read(m, addr, len, o);
	if (is_write)
		return bulk_write(m, addr, len, w[3], o);
	if (!num(w[3], 0xff, &byte))
		return put(o, "ERR memset: bad byte '%s'\n", w[3]);
	uint8_t *b = malloc(len);
	if (!b)
		return -ENOMEM;
	memset(b, (int)byte, len);
	int r = dt_ram_write(m, addr, b, len);
	free(b);
	return r ? put(o, "ERR memset: not all RAM\n") : put(o, "OK\n");
}

static int clock_cmd(struct dt_machine *m, char **w, unsigned n, struct dt_out *o)
{
	struct vm *vm = dt_vm(m);
	uint64_t now = vm_clock_ns(vm), v = 0;
	if (!strcmp(w[0], "clock")) {
		if (n != 1)
			return put(o, "ERR clock takes nothing\n");
		return put(o, "OK 0x%llx\n", (unsigned long long)now);
	}
	if (n != 2 || !num(w[1], UINT64_MAX, &v))
		return put(o, "ERR %s takes NS\n", w[0]);
	uint64_t to = !strcmp(w[0], "clock_step") ? now + v : v;
	if (to < now)
		return put(o, "ERR %s: the clock does not go back (now 0x%llx)\n", w[0], (unsigned long long)now);
	vm_clock_advance(vm, to);
	return put(o, "OK 0x%llx\n", (unsigned long long)vm_clock_ns(vm));
}

static int irq_cmd(struct dt_machine *m, char **w, unsigned n, struct dt_out *o)
{
	uint64_t gsi, raises;
	bool level;
	if (n != 2 || !num(w[1], UINT32_MAX, &gsi) || dt_irq(m, (unsigned)gsi, &level, &raises))
		return put(o, "ERR irq takes an interrupt line (GSI 0-23)\n");
	return put(o, "OK %d 0x%llx\n", level, (unsigned long long)raises);
}

static int msi_cmd(struct dt_machine *m, char **w, unsigned n, struct dt_out *o)
{
	uint64_t addr, ms = 0;
	uint32_t data;
	if (!strcmp(w[0], "msi")) {
		if (n != 1)
			return put(o, "ERR msi takes nothing\n");
		(void)dt_poll(m, 0, -1);
		if (!dt_msi_pop(m, &addr, &data))
			return put(o, "OK none\n");
	} else {
		if (n != 2 || !num(w[1], DT_MSI_WAIT_MAX_MS, &ms))
			return put(o, "ERR msi_wait takes MS (up to %u)\n", DT_MSI_WAIT_MAX_MS);
		if (!dt_msi_wait(m, (int)ms, &addr, &data))
			return put(o, "ERR timeout\n");
	}
	return put(o, "OK 0x%llx 0x%x\n", (unsigned long long)addr, data);
}

static int ioeventfd_cmd(struct dt_machine *m, char **w, unsigned n, struct dt_out *o)
{
	uint64_t addr, size;
	bool pio = !strcmp(w[0], "ioeventfd_pio");
	if (n != 3 || !num(w[1], pio ? 0xffff : UINT64_MAX, &addr) || !num(w[2], 8, &size) || !size)
		return put(o, "ERR %s takes %s SIZE\n", w[0], pio ? "PORT" : "ADDR");
	return put(o, "OK %u\n", dt_ioeventfds_at(m, pio, addr, (unsigned)size));
}

static int info_cmd(struct dt_machine *m, char **w, unsigned n, struct dt_out *o)
{
	(void)w;
	if (n != 1)
		return put(o, "ERR info takes nothing\n");
	static const char *const reasons[] = {
		[VM_RUNNING] = "none", [VM_STOP_POWEROFF] = "poweroff", [VM_STOP_RESET] = "reset",
		[VM_STOP_DEBUG_EXIT] = "debug-exit", [VM_STOP_CRASH] = "crash", [VM_STOP_QUIT] = "quit",
		[VM_STOP_ERROR] = "error",
	};
	struct vm *vm = dt_vm(m);
	int why = atomic_load(&vm->stop_reason);
	const char *stop = why >= 0 && why < (int)ARRAY_SIZE(reasons) ? reasons[why] : "?";
	return put(o, "OK ram=0x%llx cpus=%u msi_lost=%llu stop=%s:%d\n", (unsigned long long)vm->mem.size,
		   vm->nr_vcpus, (unsigned long long)dt_msi_lost(m), stop, vm->stop_status);
}

struct command {
	const char *name;
	int (*run)(struct dt_machine *m, char **w, unsigned n, struct dt_out *o);
};

static const struct command commands[] = {
	{ "read", bulk },	  { "write", bulk },	     { "memset", bulk },  { "clock", clock_cmd },
	{ "clock_step", clock_cmd }, { "clock_set", clock_cmd }, { "irq", irq_cmd },  { "msi", msi_cmd },
	{ "msi_wait", msi_cmd },     { "info", info_cmd },       { "ioeventfd", ioeventfd_cmd },
	{ "ioeventfd_pio", ioeventfd_cmd },
};

int dt_command(struct dt_machine *m, char *line, struct dt_out *out)
{
	char *w[5];
	unsigned n = split(line, w, 4);
	if (n == 0)
		return put(out, "ERR empty line\n");
	if (n > 4)
		return put(out, "ERR too many words\n");
	if (!strcmp(w[0], "quit")) {
		int r = put(out, "OK\n");
		return r ? r : 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(accesses); i++)
		if (!strcmp(w[0], accesses[i].name))
			return access(m, &accesses[i], w, n, out);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(w[0], commands[i].name))
			return commands[i].run(m, w, n, out);
	return put(out, "ERR unknown command '%.40s'\n", w[0]);
}
