/* SPDX-License-Identifier: MIT */
#include "guest-mem.h"

#include <errno.h>
#include <string.h>

void
guest_mem_init(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
}

static int
ranges_overlap(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size)
{
	return a < b + b_size && b < a + a_size;
}

int
guest_mem_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host)
{
	return guest_mem_add_region_fd(gm, gpa, size, host, -1, 0);
}

int
guest_mem_add_region_fd(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host, int fd,
			uint64_t fd_offset)
{
	uint64_t end;

	if (size == 0 || host == NULL || __builtin_add_overflow(gpa, size, &end) ||
	    (fd >= 0 && __builtin_add_overflow(fd_offset, size, &end)))
		return -EINVAL;
	for (unsigned i = 0; i < gm->n_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		if (ranges_overlap(gpa, size, r->gpa, r->size))
			return -EINVAL;
	}
	if (gm->n_regions == GUEST_MEM_MAX_REGIONS)
		return -ENOSPC;
	gm->regions[gm->n_regions++] = (struct guest_mem_region){
		.gpa = gpa,
		.size = size,
		.host = host,
		.fd = fd < 0 ? -1 : fd,
		.fd_offset = fd < 0 ? 0 : fd_offset,
	};
	return 0;
}

static const struct guest_mem_region *
find_region(const struct guest_mem *gm, uint64_t gpa)
{
	for (unsigned i = 0; i < gm->n_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *
guest_mem_translate(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	const struct guest_mem_region *r;

	if (len == 0)
		return NULL;
	r = find_region(gm, gpa);
	if (r == NULL || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

int
guest_mem_fd(const struct guest_mem *gm, uint64_t gpa, uint64_t len, int *ret_fd,
	     uint64_t *ret_offset)
{
	const struct guest_mem_region *r;

	if (len == 0)
		return -ENOENT;
	r = find_region(gm, gpa);
	if (r == NULL || r->fd < 0 || len > r->size - (gpa - r->gpa))
		return -ENOENT;
	*ret_fd = r->fd;
	*ret_offset = r->fd_offset + (gpa - r->gpa);
	return 0;
}

/*
 * Calls fn on each piece of [gpa, gpa + len), split at region boundaries. The whole range
 * is checked first, so nothing is copied when any part of it is unmapped.
 */
static int
guest_mem_walk(const struct guest_mem *gm, uint64_t gpa, size_t len,
	       void (*fn)(uint8_t *host, size_t n, size_t done, void *ctx), void *ctx)
{
	size_t done = 0;

	if (fn != NULL) {
		int r = guest_mem_walk(gm, gpa, len, NULL, NULL);
		if (r < 0)
			return r;
	}

	while (done < len) {
		const struct guest_mem_region *r = find_region(gm, gpa);
		if (r == NULL)
			return -EFAULT;
		uint64_t avail = r->size - (gpa - r->gpa);
		size_t n = avail < len - done ? (size_t)avail : len - done;
		if (fn != NULL)
			fn(r->host + (gpa - r->gpa), n, done, ctx);
		done += n;
		gpa += n;
	}
	return 0;
}

static void
read_piece(uint8_t *host, size_t n, size_t done, void *ctx)
{
	memcpy((uint8_t *)ctx + done, host, n);
}

static void
write_piece(uint8_t *host, size_t n, size_t done, void *ctx)
{
	memcpy(host, (const uint8_t *)ctx + done, n);
}

int
guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len)
{
	return guest_mem_walk(gm, gpa, len, read_piece, buf);
}

int
guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len)
{
	return guest_mem_walk(gm, gpa, len, write_piece, (void *)buf);
}

int
guest_mem_sg_to_iov(const struct guest_mem *gm, const struct guest_sg_entry *sg, unsigned n,
		    struct iovec *ret_iov)
{
	for (unsigned i = 0; i < n; i++) {
		void *host = guest_mem_translate(gm, sg[i].gpa, sg[i].len);
		if (host == NULL)
			return -EFAULT;
		ret_iov[i] = (struct iovec){ .iov_base = host, .iov_len = sg[i].len };
	}
	return 0;
}
