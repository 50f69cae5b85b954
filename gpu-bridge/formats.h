/* SPDX-License-Identifier: MIT */
/*
 * Pixel formats the gpu-bridge understands and the memory layouts of their planes.
 *
 * virtio-gpu names formats by Gallium's pipe_format numbers: the 2D formats of
 * linux/virtio_gpu.h (RGB only) are a subset, and RESOURCE_CREATE_3D uses the same numbers
 * for the YUV formats a guest's minigbm allocates for video. No header on Debian 12 defines
 * the virgl numbers, so they are written here.
 *
 * Two layouts exist for one image:
 *   - the guest layout: how the guest's backing pages hold the image (tight rows, planes one
 *     after the other), which is what TRANSFER commands copy from;
 *   - the host layout: how the host buffer holds it. The memfd backend pads it for a video
 *     decoder writing in place (see gpu_layout_host()); GBM and virglrenderer report theirs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* virgl (pipe_format) numbers beyond linux/virtio_gpu.h's enum virtio_gpu_formats. */
#define GPU_VIRGL_FORMAT_YV12 163
#define GPU_VIRGL_FORMAT_IYUV 165
#define GPU_VIRGL_FORMAT_NV12 166
#define GPU_VIRGL_FORMAT_NV21 167

/* pipe_texture_target values used by RESOURCE_CREATE_3D. */
#define GPU_PIPE_BUFFER     0
#define GPU_PIPE_TEXTURE_2D 2

#define GPU_MAX_PLANES 4

/* Largest width or height accepted for an image resource (also bounds every stride). */
#define GPU_MAX_DIMENSION 16384

struct gpu_format {
	uint32_t virgl_format; /* pipe_format / enum virtio_gpu_formats */
	uint32_t fourcc;       /* DRM_FORMAT_* */
	const char *name;
	bool yuv;           /* not allowed in RESOURCE_CREATE_2D */
	uint8_t num_planes; /* 1 to 3 */
	uint8_t cpp[3];     /* bytes per sample unit in each plane */
	uint8_t hsub, vsub; /* chroma subsampling of planes 1 and 2 */
};

/* The format of a virgl / virtio-gpu format number, or NULL if unknown. */
const struct gpu_format *gpu_format_from_virgl(uint32_t virgl_format);
/* The format of a DRM fourcc, or NULL if unknown. */
const struct gpu_format *gpu_format_from_fourcc(uint32_t fourcc);
/* The format named name ("NV12", "B8G8R8A8_UNORM", ...; any case), or NULL if unknown. */
const struct gpu_format *gpu_format_from_name(const char *name);

struct gpu_plane_layout {
	uint64_t offset; /* bytes from the start of the buffer */
	uint32_t stride; /* bytes per row */
	uint32_t rows;   /* rows allocated (may exceed the image's rows: padding) */
};

struct gpu_layout {
	uint32_t fourcc;   /* 0 for an opaque blob */
	uint64_t modifier; /* DRM_FORMAT_MOD_LINEAR for memory laid out here */
	uint32_t width, height;
	uint32_t num_planes;
	struct gpu_plane_layout planes[GPU_MAX_PLANES];
	uint64_t size; /* bytes the buffer must have */
};

/* Width in pixels and rows of plane p of a w x h image. */
uint32_t gpu_format_plane_width(const struct gpu_format *f, unsigned p, uint32_t w);
uint32_t gpu_format_plane_height(const struct gpu_format *f, unsigned p, uint32_t h);

/*
 * The guest layout of a w x h image: plane 0's stride is stride0 (0 means width x cpp),
 * the chroma planes' strides follow from it, and the planes are packed one after the
 * other. -EINVAL for a zero or too large size or a stride0 smaller than a row.
 */
int gpu_layout_guest(const struct gpu_format *f, uint32_t w, uint32_t h, uint32_t stride0,
		     struct gpu_layout *ret_layout);

/*
 * The host layout the memfd backend allocates, suitable for a video decoder writing into
 * it in place (libavcodec's get_buffer2 with avcodec_align_dimensions2's padding):
 *   - RGB: stride = width x 4 rounded up to 64 bytes, no extra rows;
 *   - YUV: luma stride = width rounded up to 128 bytes (so half-width chroma strides stay
 *     64-byte aligned), luma rows = height rounded up to 32 plus 2 (H.264's edge rows:
 *     1280x720 gets 738 rows); chroma planes follow with half the rows.
 * Plane offsets are 64-byte aligned; size is rounded up to the page size.
 */
int gpu_layout_host(const struct gpu_format *f, uint32_t w, uint32_t h,
		    struct gpu_layout *ret_layout);
