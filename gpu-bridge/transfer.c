/* SPDX-License-Identifier: MIT */
#include "transfer.h"

#include <errno.h>
#include <string.h>

struct plane_box {
	uint32_t px, py, pw, ph; /* in samples of the plane */
	uint64_t guest_start;    /* backing offset of the plane's first row of the box */
	uint32_t guest_stride;
};

static int
transfer_blob(const struct gpu_layout *host, uint8_t *host_base,
	      const struct gpu_backing_map *backing, const struct gpu_transfer *t, bool to_host)
{
	uint64_t end;

	if (__builtin_add_overflow((uint64_t)t->x, (uint64_t)t->w, &end) || end > host->size)
		return -EINVAL;
	if (t->offset > backing->size || t->w > backing->size - t->offset)
		return -EFAULT;
	if (to_host)
		return gpu_backing_read(backing, t->offset, host_base + t->x, t->w);
	return gpu_backing_write(backing, t->offset, host_base + t->x, t->w);
}

int
gpu_transfer_cpu(const struct gpu_format *format, const struct gpu_layout *host, uint8_t *host_base,
		 const struct gpu_backing_map *backing, const struct gpu_transfer *t, bool to_host)
{
	struct plane_box boxes[GPU_MAX_PLANES];
	struct gpu_layout guest;
	uint64_t first, image_start;
	int r;

	if (format == NULL)
		return transfer_blob(host, host_base, backing, t, to_host);
	if (t->w == 0 || t->h == 0)
		return 0;
	if (t->x > host->width || t->w > host->width - t->x || t->y > host->height ||
	    t->h > host->height - t->y)
		return -EINVAL;
	r = gpu_layout_guest(format, host->width, host->height, t->stride, &guest);
	if (r < 0)
		return r;
	first = (uint64_t)t->y * guest.planes[0].stride + (uint64_t)t->x * format->cpp[0];
	if (t->offset < first)
		return -EINVAL;
	image_start = t->offset - first;

	for (unsigned p = 0; p < format->num_planes; p++) {
		struct plane_box *b = &boxes[p];
		uint32_t hs = p == 0 ? 1 : format->hsub, vs = p == 0 ? 1 : format->vsub;
		uint64_t last_end;
		b->px = t->x / hs;
		b->py = t->y / vs;
		b->pw = (t->x + t->w + hs - 1) / hs - b->px;
		b->ph = (t->y + t->h + vs - 1) / vs - b->py;
		b->guest_stride = guest.planes[p].stride;
		/* all of these are bounded by GPU_MAX_DIMENSION-sized factors: no overflow */
		b->guest_start = image_start + guest.planes[p].offset +
				 (uint64_t)b->py * b->guest_stride +
				 (uint64_t)b->px * format->cpp[p];
		if (b->guest_start < image_start)
			return -EFAULT;
		last_end = b->guest_start + (uint64_t)(b->ph - 1) * b->guest_stride +
			   (uint64_t)b->pw * format->cpp[p];
		if (last_end < b->guest_start || last_end > backing->size)
			return -EFAULT;
		/* the host plane must hold the box too (padded layouts always do) */
		if (b->py + b->ph > host->planes[p].rows ||
		    (uint64_t)(b->px + b->pw) * format->cpp[p] > host->planes[p].stride)
			return -EINVAL;
	}

	for (unsigned p = 0; p < format->num_planes; p++) {
		const struct plane_box *b = &boxes[p];
		size_t row_bytes = (size_t)b->pw * format->cpp[p];
		for (uint32_t row = 0; row < b->ph; row++) {
			uint64_t g = b->guest_start + (uint64_t)row * b->guest_stride;
			uint8_t *h = host_base + host->planes[p].offset +
				     (uint64_t)(b->py + row) * host->planes[p].stride +
				     (uint64_t)b->px * format->cpp[p];
			r = to_host ? gpu_backing_read(backing, g, h, row_bytes)
				    : gpu_backing_write(backing, g, h, row_bytes);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
