// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the virtqueue core alone: the input becomes the
 * guest's descriptor table, avail ring and indirect tables (packed: the
 * descriptor ring, event areas and indirect tables); the harness pops every
 * chain (bounded) and completes each, checking that every iovec lies in
 * guest RAM and within the caller's array.  The first byte picks EVENT_IDX
 * (bit 0) and a packed ring of 13 entries (bit 1).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "virtio/virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM (1ull << 20)
#define QSIZE 16
#define MAX_IOV 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	if (!mem.host && gm_init(&mem, MEM))
		abort();
	memset(mem.host, 0, 0x20000);
	/* Descriptors at 0x1000, avail at 0x2000, used at 0x3000, the rest (indirect tables, buffers) after. */
	memcpy(mem.host + 0x1000, data, size < 0x1f000 ? size : 0x1f000);
	struct virtqueue vq;
	vq_init(&vq, &mem);
	bool event_idx = size && (data[0] & 1), packed = size && (data[0] & 2);
	uint16_t qsize = packed ? 13 : QSIZE;
	if (vq_enable(&vq, qsize, 0x1000, 0x2000, 0x3000, event_idx, packed))
		abort();
	for (int i = 0; i < 64; i++) {
		struct vq_elem e;
		struct iovec iov[MAX_IOV + 1];
		iov[MAX_IOV].iov_base = (void *)0x1;
		int r = vq_pop(&vq, &e, iov, MAX_IOV);
		if (iov[MAX_IOV].iov_base != (void *)0x1)
			abort(); /* wrote past the caller's array */
		if (r <= 0)
			break;
		if (packed ? e.ndesc == 0 || e.ndesc > qsize : e.head >= qsize)
			abort();
		for (unsigned k = 0; e.error == VQ_OK && k < e.nr_out + e.nr_in; k++) {
			uint8_t *p = iov[k].iov_base;
			if (p < mem.host || p + iov[k].iov_len > mem.host + MEM || iov[k].iov_len == 0)
				abort();
		}
		(void)vq_push(&vq, &e, e.in_len);
		(void)vq_enable_notify(&vq);
	}
	vq_destroy(&vq);
	return 0;
}
