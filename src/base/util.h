// SPDX-License-Identifier: MIT
/* Small helpers shared by every part of keel: messages, parsing, time. */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* In a spin-wait loop: tells the CPU (PAUSE), and a hypervisor's pause-loop exiting, we spin. */
static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

enum log_level { LOG_QUIET = 0, LOG_NORMAL = 1, LOG_VERBOSE = 2 };
extern enum log_level log_level;
/* Messages read "keel(NAME): ..." once a VM name is set (--name). */
void log_set_name(const char *name);

/* Start-up only: print "keel: <message>" and exit(1). */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* "keel: error: ...", always printed. */
__attribute__((format(printf, 1, 2))) void log_error(const char *fmt, ...);
/* "keel: ...", unless --quiet. */
__attribute__((format(printf, 1, 2))) void log_info(const char *fmt, ...);
/* "keel: ...", only with --verbose. */
__attribute__((format(printf, 1, 2))) void log_debug(const char *fmt, ...);

/*
 * Parse a size such as "512M", "2G", "1536k" or "4096" into bytes.
 * A number without a suffix is multiplied by default_unit (QEMU's -m takes
 * MiB).  Returns 0 or -EINVAL / -ERANGE.
 */
int parse_size(const char *s, uint64_t default_unit, uint64_t *out);
/* Parse a decimal unsigned integer in [min, max]. Returns 0 or -EINVAL/-ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* Read exactly len bytes at offset; -EIO on a short file. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Write all of buf, retrying on EINTR and short writes. */
int write_full(int fd, const void *buf, size_t len);

/*
 * Parse a CPU list such as "0-3,6" (sep ',', as sysfs and procfs write
 * them) or "0-3:6" (sep ':', inside a comma-separated option) into *out.
 * Surrounding blanks and a trailing newline are allowed.  -EINVAL for
 * anything else, -ERANGE for a CPU at or beyond CPU_SETSIZE or a range
 * that runs backwards.
 */
int parse_cpu_list(const char *s, char sep, cpu_set_t *out);
/* Write *set as a list ("0-3,6") into buf; "none" when empty. */
void format_cpu_list(const cpu_set_t *set, char *buf, size_t len);
