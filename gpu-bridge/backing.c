/* SPDX-License-Identifier: MIT */
#include "backing.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int
gpu_backing_map_init(struct gpu_backing_map *map, const struct guest_mem *mem,
		     const struct guest_sg_entry *entries, unsigned n)
{
	uint64_t total = 0;
	int r;

	memset(map, 0, sizeof(*map));
	if (n == 0)
		return 0;
	map->entries = calloc(n, sizeof(*map->entries));
	map->iov = calloc(n, sizeof(*map->iov));
	map->starts = calloc(n, sizeof(*map->starts));
	if (map->entries == NULL || map->iov == NULL || map->starts == NULL) {
		gpu_backing_map_finish(map);
		return -ENOMEM;
	}
	r = guest_mem_sg_to_iov(mem, entries, n, map->iov);
	if (r < 0) {
		gpu_backing_map_finish(map);
		return r;
	}
	memcpy(map->entries, entries, n * sizeof(*entries));
	for (unsigned i = 0; i < n; i++) {
		map->starts[i] = total;
		if (__builtin_add_overflow(total, entries[i].len, &total)) {
			gpu_backing_map_finish(map);
			return -EOVERFLOW;
		}
	}
	map->n = n;
	map->size = total;
	return 0;
}

void
gpu_backing_map_finish(struct gpu_backing_map *map)
{
	free(map->entries);
	free(map->iov);
	free(map->starts);
	memset(map, 0, sizeof(*map));
}

int
gpu_backing_map_refresh(struct gpu_backing_map *map, const struct guest_mem *mem)
{
	int r;

	if (map->n == 0)
		return 0;
	r = guest_mem_sg_to_iov(mem, map->entries, map->n, map->iov);
	if (r < 0) {
		/* nothing may be copied through a half-resolved table */
		map->size = 0;
		return r;
	}
	return 0;
}

/* Index of the entry holding byte off (off < size). */
static unsigned
find_entry(const struct gpu_backing_map *map, uint64_t off)
{
	unsigned lo = 0, hi = map->n;

	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;
		if (map->starts[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int
copy(const struct gpu_backing_map *map, uint64_t off, void *buf, size_t len, bool to_guest)
{
	unsigned i;
	size_t done = 0;

	if (len == 0)
		return 0;
	if (off > map->size || len > map->size - off)
		return -EFAULT;
	i = find_entry(map, off);
	while (done < len) {
		uint64_t in_entry = off - map->starts[i];
		size_t n = map->iov[i].iov_len - in_entry;
		uint8_t *host = (uint8_t *)map->iov[i].iov_base + in_entry;
		if (n > len - done)
			n = len - done;
		if (to_guest)
			memcpy(host, (const uint8_t *)buf + done, n);
		else
			memcpy((uint8_t *)buf + done, host, n);
		done += n;
		off += n;
		i++;
	}
	return 0;
}

int
gpu_backing_read(const struct gpu_backing_map *map, uint64_t off, void *dst, size_t len)
{
	return copy(map, off, dst, len, false);
}

int
gpu_backing_write(const struct gpu_backing_map *map, uint64_t off, const void *src, size_t len)
{
	return copy(map, off, (void *)src, len, true);
}
