/* SPDX-License-Identifier: MIT */
/*
 * dma-bufs made of guest memory (/dev/udmabuf), so a guest-memory blob can be exported
 * like any other buffer: the guest's pages themselves, no copy.
 *
 * The kernel wants every piece page-aligned and each memfd sealed with F_SEAL_SHRINK (as a
 * VMM's guest RAM memfd is); it caps a list at 1024 pieces (udmabuf's list_limit).
 */
#pragma once

#include <stdint.h>

#define GPU_UDMABUF_MAX_ITEMS 1024

struct gpu_udmabuf_item {
	int memfd; /* borrowed */
	uint64_t offset;
	uint64_t size;
};

/*
 * Merges adjacent pieces of the same memfd in place and returns how many remain.
 * -EINVAL for an empty or page-misaligned piece.
 */
int gpu_udmabuf_merge(struct gpu_udmabuf_item *items, unsigned n);

/*
 * Creates a dma-buf of the pieces, in order (merged first). *ret_fd is new (the caller
 * closes it), close-on-exec. dev_path NULL means /dev/udmabuf. -EINVAL (see merge),
 * -E2BIG for more than GPU_UDMABUF_MAX_ITEMS pieces after merging, -ENODEV without the
 * device, or the kernel's error.
 */
int gpu_udmabuf_create(const char *dev_path, struct gpu_udmabuf_item *items, unsigned n,
		       int *ret_fd);
