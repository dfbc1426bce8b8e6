// SPDX-License-Identifier: MIT
/*
 * Minimal unit-test harness.  Each test function runs once; CHECK records a
 * failure (with file:line and the expression) and carries on.  Output is
 * one line per test, "PASS <suite>/<name>" or "FAIL <suite>/<name>: ...",
 * which tests/run-all.sh counts.  The binary exits 1 if anything failed.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failed_checks;
static int unit_failed_tests;
static char unit_first_failure[512];

#define CHECK(cond)                                                                                     \
	do {                                                                                            \
		if (!(cond)) {                                                                          \
			if (!unit_failed_checks++)                                                      \
				snprintf(unit_first_failure, sizeof(unit_first_failure), "%s:%d: %.300s", \
					 __FILE__, __LINE__, #cond);                                    \
		}                                                                                       \
	} while (0)

#define CHECK_EQ(a, b)                                                                                  \
	do {                                                                                            \
		long long _a = (long long)(a), _b = (long long)(b);                                     \
		if (_a != _b) {                                                                         \
			if (!unit_failed_checks++)                                                      \
				snprintf(unit_first_failure, sizeof(unit_first_failure),                \
					 "%s:%d: %.120s == %.120s (0x%llx != 0x%llx)", __FILE__, __LINE__, #a, #b, \
					 (unsigned long long)_a, (unsigned long long)_b);               \
		}                                                                                       \
	} while (0)

static inline void unit_run(const char *suite, const char *name, void (*fn)(void))
{
	unit_failed_checks = 0;
	unit_first_failure[0] = 0;
	fn();
	if (unit_failed_checks) {
		unit_failed_tests++;
		printf("FAIL %s/%s: %s (%d failed checks)\n", suite, name, unit_first_failure, unit_failed_checks);
	} else {
		printf("PASS %s/%s\n", suite, name);
	}
	fflush(stdout);
}

#define RUN(suite, fn) unit_run(suite, #fn, fn)
#define UNIT_EXIT() return unit_failed_tests ? 1 : 0

/* Report a test that cannot run here, with the reason. */
#define SKIP(suite, name, reason) printf("SKIP %s/%s: %s\n", suite, name, reason)
