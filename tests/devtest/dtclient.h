// SPDX-License-Identifier: MIT
/*
 * A client of keel-devtest (src/devtest/proto.h): start it on one end of a
 * socketpair with keel run's options, then make a guest's accesses --
 * ports, memory (RAM and MMIO), PCI configuration space -- watch
 * interrupts and move the virtual clock.  Device tests use it as a guest's
 * driver would use the hardware; it includes nothing of keel's own source.
 *
 * Errors in the conversation itself (keel-devtest died, said ERR to a
 * well-formed command) are counted in d->errors with the first message kept;
 * tests CHECK that it stayed 0.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DTC_ECAM 0xb0000000ull

struct dtc {
	pid_t pid;
	FILE *io;
	int errors;
	char first_error[256];
	char line[1 << 21]; /* the last answer (a 1 MiB read is 2 MiB of hex) */
	char cmd[1 << 18];  /* the command being sent (a 64 KiB write is 128 KiB of hex) */
};

#define DTC_WRITE_CHUNK (64u << 10)

static inline void dtc_error(struct dtc *d, const char *fmt, ...)
{
	if (!d->errors++) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->first_error, sizeof(d->first_error), fmt, ap);
		va_end(ap);
	}
}

/*
 * Start keel-devtest ($KEEL_DEVTEST, else $KEEL_BUILD/keel-devtest) with the
 * NULL-terminated options.  Its stderr goes to errlog (NULL: /dev/null).
 * 0 or -1.
 */
static inline int dtc_start(struct dtc *d, const char *errlog, const char *const *opts)
{
	memset(d, 0, sizeof(*d));
	char bin[512];
	const char *env = getenv("KEEL_DEVTEST"), *build = getenv("KEEL_BUILD");
	snprintf(bin, sizeof(bin), "%s", env ? env : "");
	if (!env)
		snprintf(bin, sizeof(bin), "%s/keel-devtest", build ? build : "build");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	const char *argv[64] = { bin, "--fd", "3" };
	unsigned n = 3;
	for (unsigned i = 0; opts && opts[i] && n < 62; i++)
		argv[n++] = opts[i];
	argv[n] = NULL;
	fflush(stdout);
	d->pid = fork();
	if (d->pid == 0) {
		int e = open(errlog ? errlog : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (e >= 0)
			dup2(e, STDERR_FILENO);
		dup2(sv[1], 3); /* dup2 clears close-on-exec on 3 */
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(sv[1]);
	if (d->pid < 0) {
		close(sv[0]);
		return -1;
	}
	d->io = fdopen(sv[0], "r+");
	return d->io ? 0 : -1;
}

/* Send one command; the answer's text after "OK" (maybe empty), or NULL after ERR or a broken connection. */
__attribute__((format(printf, 2, 3))) static inline const char *dtc_cmd(struct dtc *d, const char *fmt, ...)
{
	char *cmd = d->cmd;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(d->cmd), fmt, ap);
	va_end(ap);
	if (!d->io || fprintf(d->io, "%s\n", cmd) < 0 || fflush(d->io) || !fgets(d->line, sizeof(d->line), d->io)) {
		dtc_error(d, "%.60s: no answer (keel-devtest gone)", cmd);
		return NULL;
	}
	d->line[strcspn(d->line, "\n")] = 0;
	if (strncmp(d->line, "OK", 2)) {
		dtc_error(d, "%.60s: %.120s", cmd, d->line);
		return NULL;
	}
	return d->line[2] == ' ' ? d->line + 3 : d->line + 2;
}

/* A command expected to be refused: its ERR text, or NULL (an error) if it was accepted. */
static inline const char *dtc_cmd_err(struct dtc *d, const char *cmd)
{
	if (!d->io || fprintf(d->io, "%s\n", cmd) < 0 || fflush(d->io) || !fgets(d->line, sizeof(d->line), d->io))
		return NULL;
	d->line[strcspn(d->line, "\n")] = 0;
	return strncmp(d->line, "ERR ", 4) ? NULL : d->line + 4;
}

static inline uint64_t dtc_num(struct dtc *d, const char *s)
{
	return s ? strtoull(s, NULL, 0) : (dtc_error(d, "no number"), ~0ull);
}

static inline uint64_t dtc_in(struct dtc *d, unsigned size, uint16_t port)
{
	return dtc_num(d, dtc_cmd(d, "in%c 0x%x", size == 1 ? 'b' : size == 2 ? 'w' : 'l', port));
}

static inline void dtc_out(struct dtc *d, unsigned size, uint16_t port, uint64_t v)
{
	dtc_cmd(d, "out%c 0x%x 0x%llx", size == 1 ? 'b' : size == 2 ? 'w' : 'l', port, (unsigned long long)v);
}

static inline char dtc_sz(unsigned size)
{
	return size == 1 ? 'b' : size == 2 ? 'w' : size == 4 ? 'l' : 'q';
}

static inline uint64_t dtc_read(struct dtc *d, unsigned size, uint64_t addr)
{
	return dtc_num(d, dtc_cmd(d, "read%c 0x%llx", dtc_sz(size), (unsigned long long)addr));
}

static inline void dtc_write(struct dtc *d, unsigned size, uint64_t addr, uint64_t v)
{
	dtc_cmd(d, "write%c 0x%llx 0x%llx", dtc_sz(size), (unsigned long long)addr, (unsigned long long)v);
}

/* Bulk RAM access, in pieces the protocol takes. */
static inline void dtc_memwrite(struct dtc *d, uint64_t addr, const void *buf, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	static char hex[2 * DTC_WRITE_CHUNK + 1];
	const uint8_t *b = buf;
	while (len) {
		size_t n = len < DTC_WRITE_CHUNK ? len : DTC_WRITE_CHUNK;
		for (size_t i = 0; i < n; i++) {
			hex[2 * i] = digits[b[i] >> 4];
			hex[2 * i + 1] = digits[b[i] & 15];
		}
		hex[2 * n] = 0;
		dtc_cmd(d, "write 0x%llx %zu %s", (unsigned long long)addr, n, hex);
		addr += n, b += n, len -= n;
	}
}

static inline void dtc_memread(struct dtc *d, uint64_t addr, void *buf, size_t len)
{
	uint8_t *b = buf;
	while (len) {
		size_t n = len < (1u << 20) ? len : (1u << 20);
		const char *hex = dtc_cmd(d, "read 0x%llx %zu", (unsigned long long)addr, n);
		if (!hex || strlen(hex) != 2 * n) {
			dtc_error(d, "short read");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			char byte[3] = { hex[2 * i], hex[2 * i + 1], 0 };
			b[i] = (uint8_t)strtoul(byte, NULL, 16);
		}
		addr += n, b += n, len -= n;
	}
}

static inline void dtc_memset(struct dtc *d, uint64_t addr, int c, size_t len)
{
	dtc_cmd(d, "memset 0x%llx %zu 0x%x", (unsigned long long)addr, len, c & 0xff);
}

static inline uint64_t dtc_clock_step(struct dtc *d, uint64_t ns)
{
	return dtc_num(d, dtc_cmd(d, "clock_step %llu", (unsigned long long)ns));
}

/* An interrupt line: its level, and how many times it rose. */
static inline bool dtc_irq(struct dtc *d, unsigned gsi, uint64_t *raises)
{
	const char *s = dtc_cmd(d, "irq %u", gsi);
	unsigned level = 0;
	unsigned long long r = 0;
	if (!s || sscanf(s, "%u %llx", &level, &r) != 2)
		dtc_error(d, "irq %u: bad answer", gsi);
	if (raises)
		*raises = r;
	return level;
}

/* Wait up to ms for an MSI; its address and data.  False on timeout. */
static inline bool dtc_msi_wait(struct dtc *d, unsigned ms, uint64_t *addr, uint32_t *data)
{
	char cmd[32];
	snprintf(cmd, sizeof(cmd), "msi_wait %u", ms);
	if (!d->io || fprintf(d->io, "%s\n", cmd) < 0 || fflush(d->io) || !fgets(d->line, sizeof(d->line), d->io)) {
		dtc_error(d, "msi_wait: no answer");
		return false;
	}
	unsigned long long a;
	unsigned v;
	if (sscanf(d->line, "OK %llx %x", &a, &v) != 2)
		return false;
	*addr = a;
	*data = v;
	return true;
}

/* An MSI already delivered, without waiting. */
static inline bool dtc_msi(struct dtc *d, uint64_t *addr, uint32_t *data)
{
	const char *s = dtc_cmd(d, "msi");
	unsigned long long a;
	unsigned v;
	if (!s || sscanf(s, "%llx %x", &a, &v) != 2)
		return false;
	*addr = a;
	*data = v;
	return true;
}

/* End keel-devtest (quit, then its exit status; 128 + N if killed by signal N). */
static inline int dtc_stop(struct dtc *d)
{
	if (d->io) {
		dtc_cmd(d, "quit");
		fclose(d->io);
		d->io = NULL;
	}
	int st;
	if (d->pid <= 0 || waitpid(d->pid, &st, 0) != d->pid)
		return -1;
	d->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- PCI configuration space through ECAM (bus 0) ---- */

static inline uint64_t dtc_ecam(unsigned dev, unsigned fn, unsigned off)
{
	return DTC_ECAM + ((uint64_t)dev << 15) + ((uint64_t)fn << 12) + off;
}

static inline uint32_t dtc_cfg_read(struct dtc *d, unsigned dev, unsigned off, unsigned size)
{
	return (uint32_t)dtc_read(d, size, dtc_ecam(dev, 0, off));
}

static inline void dtc_cfg_write(struct dtc *d, unsigned dev, unsigned off, unsigned size, uint32_t v)
{
	dtc_write(d, size, dtc_ecam(dev, 0, off), v);
}

/* The n-th (0-based) function on bus 0 with this vendor and device id: its device number, or -1. */
static inline int dtc_pci_find(struct dtc *d, uint16_t vendor, uint16_t device, unsigned n)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		uint32_t id = dtc_cfg_read(d, dev, 0, 4);
		if (id == ((uint32_t)device << 16 | vendor) && n-- == 0)
			return (int)dev;
	}
	return -1;
}
