/* SPDX-License-Identifier: MIT */
/*
 * A resource's guest backing: the guest's scatter-gather list resolved once into host
 * addresses, so transfers can copy any byte range of the linear backing quickly (binary
 * search over the entries, no walk from the start for each row).
 */
#pragma once

#include "guest-mem.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct gpu_backing_map {
	struct guest_sg_entry *entries; /* the guest's list, kept to resolve it again */
	struct iovec *iov;
	uint64_t *starts; /* byte offset of each entry in the linear backing */
	unsigned n;
	uint64_t size; /* total bytes */
};

/*
 * Resolves entries through mem. -EFAULT if an entry is empty or not inside one region of
 * guest memory, -EOVERFLOW if the total does not fit, -ENOMEM.
 */
int gpu_backing_map_init(struct gpu_backing_map *map, const struct guest_mem *mem,
			 const struct guest_sg_entry *entries, unsigned n);
void gpu_backing_map_finish(struct gpu_backing_map *map);

/*
 * Resolves the same entries again after the guest memory table changed (the transport
 * remapped it). The iov array is updated in place, so whoever holds it (a renderer) sees
 * the new addresses. -EFAULT if an entry is no longer mapped; the map is then unusable
 * (every copy fails) until finished.
 */
int gpu_backing_map_refresh(struct gpu_backing_map *map, const struct guest_mem *mem);

/* Copies len bytes at offset off of the backing into dst (or from src). -EFAULT if out of range. */
int gpu_backing_read(const struct gpu_backing_map *map, uint64_t off, void *dst, size_t len);
int gpu_backing_write(const struct gpu_backing_map *map, uint64_t off, const void *src, size_t len);
