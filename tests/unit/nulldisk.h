// SPDX-License-Identifier: MIT
/*
 * A disk that stores nothing, for virtio-blk tests: it counts what reaches
 * it and completes it at once (any size, no memory), so a test can show
 * what a request does or does not get past the device model.
 */
#pragma once

#include "block/block.h"

struct nulldisk {
	struct blk_dev dev;
	unsigned submits;
	uint64_t last_len;
};

static int null_submit(struct blk_dev *dev, struct blk_req *q)
{
	struct nulldisk *n = (struct nulldisk *)dev;
	n->submits++;
	n->last_len = q->len;
	q->status = 0;
	q->done(q);
	return 0;
}

static void null_close(struct blk_dev *dev)
{
	(void)dev;
}

static const struct blk_ops null_ops = { .submit = null_submit, .close = null_close };

/* A 1 TiB null disk of 512-byte blocks taking qd requests at once. */
#define NULLDISK(qd)                                                                                 \
	{ .dev = { .ops = &null_ops, .layer = "null", .size = 1ull << 40, .block_size = 512,                   \
		   .queue_depth = (qd) } }
