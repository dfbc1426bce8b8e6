// SPDX-License-Identifier: MIT
/* Helpers the block layers share (implemented in block.c); not part of the interface. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* Copy n bytes from src into the iovec array, starting skip bytes into it. */
void blk_iov_from_buf(const struct iovec *iov, unsigned cnt, uint64_t skip, const void *src, size_t n);
/* Copy n bytes out of the iovec array, starting skip bytes into it, to dst. */
void blk_iov_to_buf(const struct iovec *iov, unsigned cnt, uint64_t skip, void *dst, size_t n);
/* Zero n bytes of the iovec array, starting skip bytes into it. */
void blk_iov_zero(const struct iovec *iov, unsigned cnt, uint64_t skip, size_t n);
/*
 * A new array (malloc'd, *outcnt entries) describing the iovec array less its
 * first skip bytes; NULL if nothing is left or on allocation failure.
 */
struct iovec *blk_iov_tail(const struct iovec *iov, unsigned cnt, uint64_t skip, unsigned *outcnt);

/* Name the calling thread (best effort; prctl(PR_SET_NAME) is allowed in the sandbox). */
void blk_name_thread(const char *name);
