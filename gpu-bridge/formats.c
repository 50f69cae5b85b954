/* SPDX-License-Identifier: MIT */
#include "formats.h"

#include "macro.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <linux/virtio_gpu.h>
#include <string.h>
#include <strings.h>

#define RGB(v, f, n)                                                                               \
	{                                                                                          \
		.virgl_format = (v), .fourcc = (f), .name = (n), .yuv = false, .num_planes = 1,    \
		.cpp = {4}, .hsub = 1, .vsub = 1                                                   \
	}

/*
 * virtio-gpu formats name bytes in memory order; DRM fourccs name a little-endian word from
 * the most significant byte: B8G8R8A8 (bytes B, G, R, A) is the word A:R:G:B, ARGB8888.
 * This is the mapping of the Linux driver (virtio_gpu_translate_format) and of QEMU.
 */
static const struct gpu_format formats[] = {
	RGB(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, DRM_FORMAT_ARGB8888, "B8G8R8A8"),
	RGB(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, DRM_FORMAT_XRGB8888, "B8G8R8X8"),
	RGB(VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, DRM_FORMAT_BGRA8888, "A8R8G8B8"),
	RGB(VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, DRM_FORMAT_BGRX8888, "X8R8G8B8"),
	RGB(VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, DRM_FORMAT_ABGR8888, "R8G8B8A8"),
	RGB(VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, DRM_FORMAT_RGBX8888, "X8B8G8R8"),
	RGB(VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, DRM_FORMAT_RGBA8888, "A8B8G8R8"),
	RGB(VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, DRM_FORMAT_XBGR8888, "R8G8B8X8"),
	{.virgl_format = GPU_VIRGL_FORMAT_NV12,
	 .fourcc = DRM_FORMAT_NV12,
	 .name = "NV12",
	 .yuv = true,
	 .num_planes = 2,
	 .cpp = {1, 2},
	 .hsub = 2,
	 .vsub = 2},
	{.virgl_format = GPU_VIRGL_FORMAT_NV21,
	 .fourcc = DRM_FORMAT_NV21,
	 .name = "NV21",
	 .yuv = true,
	 .num_planes = 2,
	 .cpp = {1, 2},
	 .hsub = 2,
	 .vsub = 2},
	/* YV12: Y, then Cr (V), then Cb (U) */
	{.virgl_format = GPU_VIRGL_FORMAT_YV12,
	 .fourcc = DRM_FORMAT_YVU420,
	 .name = "YV12",
	 .yuv = true,
	 .num_planes = 3,
	 .cpp = {1, 1, 1},
	 .hsub = 2,
	 .vsub = 2},
	/* IYUV (I420): Y, then Cb (U), then Cr (V) */
	{.virgl_format = GPU_VIRGL_FORMAT_IYUV,
	 .fourcc = DRM_FORMAT_YUV420,
	 .name = "IYUV",
	 .yuv = true,
	 .num_planes = 3,
	 .cpp = {1, 1, 1},
	 .hsub = 2,
	 .vsub = 2},
};

const struct gpu_format *
gpu_format_from_virgl(uint32_t virgl_format)
{
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		if (formats[i].virgl_format == virgl_format)
			return &formats[i];
	}
	return NULL;
}

const struct gpu_format *
gpu_format_from_fourcc(uint32_t fourcc)
{
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		if (formats[i].fourcc == fourcc)
			return &formats[i];
	}
	return NULL;
}

const struct gpu_format *
gpu_format_from_name(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(formats); i++) {
		if (strcasecmp(formats[i].name, name) == 0)
			return &formats[i];
	}
	return NULL;
}

uint32_t
gpu_format_plane_width(const struct gpu_format *f, unsigned p, uint32_t w)
{
	return p == 0 ? w : (w + f->hsub - 1) / f->hsub;
}

uint32_t
gpu_format_plane_height(const struct gpu_format *f, unsigned p, uint32_t h)
{
	return p == 0 ? h : (h + f->vsub - 1) / f->vsub;
}

static int
check_size(uint32_t w, uint32_t h)
{
	if (w == 0 || h == 0 || w > GPU_MAX_DIMENSION || h > GPU_MAX_DIMENSION)
		return -EINVAL;
	return 0;
}

int
gpu_layout_guest(const struct gpu_format *f, uint32_t w, uint32_t h, uint32_t stride0,
		 struct gpu_layout *ret_layout)
{
	struct gpu_layout l = {.fourcc = f->fourcc, .modifier = DRM_FORMAT_MOD_LINEAR};
	uint64_t off = 0;

	if (check_size(w, h) < 0)
		return -EINVAL;
	if (stride0 == 0)
		stride0 = w * f->cpp[0];
	/* bounded so that every product below fits in 64 bits with room to spare */
	if (stride0 < (uint64_t)w * f->cpp[0] || stride0 > 4 * GPU_MAX_DIMENSION * 4)
		return -EINVAL;
	l.width = w;
	l.height = h;
	l.num_planes = f->num_planes;
	for (unsigned p = 0; p < f->num_planes; p++) {
		uint32_t stride;
		if (p == 0)
			stride = stride0;
		else if (f->num_planes == 2)
			stride = stride0; /* interleaved chroma: same bytes per row as luma */
		else
			stride = (stride0 + f->hsub - 1) / f->hsub;
		l.planes[p] = (struct gpu_plane_layout){
			.offset = off,
			.stride = stride,
			.rows = gpu_format_plane_height(f, p, h),
		};
		off += (uint64_t)stride * l.planes[p].rows;
	}
	l.size = off;
	*ret_layout = l;
	return 0;
}

int
gpu_layout_host(const struct gpu_format *f, uint32_t w, uint32_t h, struct gpu_layout *ret_layout)
{
	struct gpu_layout l = {.fourcc = f->fourcc, .modifier = DRM_FORMAT_MOD_LINEAR};
	uint64_t off = 0, page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint32_t stride0, rows0;

	if (check_size(w, h) < 0)
		return -EINVAL;
	if (f->yuv) {
		stride0 = ALIGN_UP(w * f->cpp[0], 128u);
		rows0 = ALIGN_UP(h, 32u) + 2;
	} else {
		stride0 = ALIGN_UP(w * f->cpp[0], 64u);
		rows0 = h;
	}
	l.width = w;
	l.height = h;
	l.num_planes = f->num_planes;
	for (unsigned p = 0; p < f->num_planes; p++) {
		uint32_t stride = p == 0 || f->num_planes == 2 ? stride0 : stride0 / f->hsub;
		l.planes[p] = (struct gpu_plane_layout){
			.offset = off,
			.stride = stride,
			.rows = gpu_format_plane_height(f, p, rows0),
		};
		off = ALIGN_UP(off + (uint64_t)stride * l.planes[p].rows, 64u);
	}
	l.size = ALIGN_UP(off, page);
	*ret_layout = l;
	return 0;
}
