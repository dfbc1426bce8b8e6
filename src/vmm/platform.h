// SPDX-License-Identifier: MIT
#pragma once

struct vm;

/* Create every platform device the configuration wants. 0 or -errno (reported). */
int platform_create(struct vm *vm);
/* Destroy them all, newest first, and empty the buses. */
void platform_destroy(struct vm *vm);
