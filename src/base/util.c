// SPDX-License-Identifier: MIT
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum log_level log_level = LOG_NORMAL;
static const char *log_name;

void log_set_name(const char *name)
{
	log_name = name;
}

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = log_name ? snprintf(buf, sizeof(buf), "keel(%s): %s", log_name, prefix)
			 : snprintf(buf, sizeof(buf), "keel: %s", prefix);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	/* One write per message so lines from several threads do not mix. */
	(void)write_full(STDERR_FILENO, buf, len);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
	exit(1);
}

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog("error: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	if (log_level < LOG_NORMAL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	if (log_level < LOG_VERBOSE)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	uint64_t v = 0;
	while (*s >= '0' && *s <= '9') {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		s++;
	}
	*out = v;
	*end = s;
	return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int r = parse_u64(s, &v, &end);
	if (r)
		return r;
	if (*end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	const char *end;
	uint64_t v, unit;
	int r = parse_u64(s, &v, &end);
	if (r)
		return r;
	switch (*end) {
	case '\0': unit = default_unit; break;
	case 'b': case 'B': unit = 1; break;
	case 'k': case 'K': unit = KiB; break;
	case 'm': case 'M': unit = MiB; break;
	case 'g': case 'G': unit = GiB; break;
	case 't': case 'T': unit = 1024 * GiB; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		/* Accept "M", "MB", "MiB" alike. */
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B' && unit != 1)
			end++;
		if (*end)
			return -EINVAL;
	}
	if (unit && v > UINT64_MAX / unit)
		return -ERANGE;
	*out = v * unit;
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int parse_cpu_list(const char *s, char sep, cpu_set_t *out)
{
	CPU_ZERO(out);
	if (!s)
		return -EINVAL;
	while (*s == ' ' || *s == '\t')
		s++;
	for (;;) {
		uint64_t a, b;
		const char *end;
		int r = parse_u64(s, &a, &end);
		if (r)
			return r;
		b = a;
		if (*end == '-') {
			r = parse_u64(end + 1, &b, &end);
			if (r)
				return r;
		}
		if (a >= CPU_SETSIZE || b >= CPU_SETSIZE || b < a)
			return -ERANGE;
		for (uint64_t c = a; c <= b; c++)
			CPU_SET((size_t)c, out);
		if (*end != sep) {
			s = end;
			break;
		}
		s = end + 1;
	}
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	return *s ? -EINVAL : 0;
}

void format_cpu_list(const cpu_set_t *set, char *buf, size_t len)
{
	size_t n = 0;
	if (len)
		buf[0] = 0;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, set) || (c > 0 && CPU_ISSET(c - 1, set)))
			continue;
		int e = c;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
			e++;
		if (n >= len)
			return; /* truncated (snprintf ended it with a NUL) */
		int w = e > c ? snprintf(buf + n, len - n, "%s%d-%d", n ? "," : "", c, e)
			      : snprintf(buf + n, len - n, "%s%d", n ? "," : "", c);
		if (w < 0)
			return;
		n += (size_t)w;
	}
	if (!n && len)
		snprintf(buf, len, "none");
}
