/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the device side of a split virtqueue. The input fills 64 KiB of guest
 * memory at guest-physical 0x10000 (zero-padded); a queue of 16 entries has its descriptor
 * table at 0x10000, its available ring at 0x10100 and its used ring at 0x10200. Every chain
 * the guest made available is popped (or the queue breaks), its buffers are touched and it
 * is pushed back.
 */
#include "virtqueue.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_GPA  0x10000u
#define MEM_SIZE 0x10000u

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t mem[MEM_SIZE] __attribute__((aligned(4096)));
	struct guest_mem gm;
	struct vu_virtq vq;

	memset(mem, 0, sizeof(mem));
	memcpy(mem, data, size < sizeof(mem) ? size : sizeof(mem));
	guest_mem_init(&gm);
	/* Two regions, so buffers can straddle them. */
	if (guest_mem_add_region(&gm, MEM_GPA, MEM_SIZE / 2, mem) < 0 ||
	    guest_mem_add_region(&gm, MEM_GPA + MEM_SIZE / 2, MEM_SIZE / 2, mem + MEM_SIZE / 2) < 0)
		abort();
	if (vu_virtq_init(&vq, &gm, 16, mem, mem + 0x100, mem + 0x200, 0) < 0)
		abort();
	for (unsigned i = 0; i < 64; i++) {
		struct vu_elem *elem;
		size_t total = 0;
		int r = vu_virtq_pop(&vq, &elem);

		if (r <= 0)
			break;
		for (unsigned j = 0; j < elem->req.n_in; j++)
			total += elem->req.in[j].iov_len;
		for (unsigned j = 0; j < elem->req.n_out; j++)
			memset(elem->req.out[j].iov_base, 0xa5, elem->req.out[j].iov_len);
		vu_virtq_push(&vq, elem, (uint32_t)total);
	}
	return 0;
}
