/* SPDX-License-Identifier: MIT */
/*
 * The GBM backend: image resources are GBM buffer objects on a render node, exported as
 * dma-bufs with the layout GBM chose (fourcc, modifier, plane offsets and strides).
 *
 * Buffers are allocated LINEAR: the guest fills them through CPU transfers (mmap of the
 * dma-buf bracketed by DMA_BUF_IOCTL_SYNC) and video decoders write them in place. YUV
 * buffers get the same extra rows as the memfd backend's (gpu_layout_host()) so a decoder
 * can write its padded frame. A driver that cannot allocate a YUV format itself (virgl's,
 * for one) gets one R8 buffer holding all the planes, as minigbm does. Protected images ask
 * for GBM_BO_USE_PROTECTED and are never mapped. Opaque blobs need no GPU: they come from
 * the memfd backend.
 */
#include "backend.h"
#include "macro.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <gbm.h>
#include <linux/dma-buf.h>
#include <linux/virtio_gpu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>

struct gbm_backend {
	struct gpu_backend base;
	int drm_fd;
	struct gbm_device *gbm;
	struct gpu_backend *memfd; /* blobs */
};

struct gbm_buffer {
	struct gpu_buffer base;
	struct gbm_bo *bo;
	uint8_t *map;
	size_t map_size;
};

static int
open_render_node(const char *path, int *ret_fd)
{
	int fd;

	if (path != NULL) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return negative_errno();
		*ret_fd = fd;
		return 0;
	}
	for (int minor = 128; minor < 192; minor++) {
		char node[32];
		snprintf(node, sizeof(node), "/dev/dri/renderD%d", minor);
		fd = open(node, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
	}
	return -ENODEV;
}

static bool
is_ours(const struct gbm_backend *g, const struct gpu_buffer *buffer)
{
	return buffer->backend == &g->base;
}

static void
destroy_gbm_buffer(struct gbm_buffer *b)
{
	if (b->map != NULL)
		munmap(b->map, b->map_size);
	safe_close(b->base.fd);
	if (b->bo != NULL)
		gbm_bo_destroy(b->bo);
	free(b);
}

/* The layout GBM chose; every plane must live in the bo's single dma-buf. */
/*
 * Planes of a YUV image allocated as one R8 buffer of luma_rows * 3 / 2 rows (for drivers
 * that cannot allocate the YUV format itself, as minigbm does): luma, then the chroma
 * planes with the buffer's stride (NV12/NV21) or half of it (YV12/I420).
 */
static int
layout_from_r8(struct gbm_buffer *b, const struct gpu_format *f, uint32_t luma_rows)
{
	struct gpu_layout *l = &b->base.layout;
	uint32_t stride = gbm_bo_get_stride(b->bo);
	uint64_t off;

	if (stride == 0 || stride % 2 != 0)
		return -EINVAL;
	l->num_planes = f->num_planes;
	l->planes[0] = (struct gpu_plane_layout){.offset = 0, .stride = stride, .rows = luma_rows};
	off = (uint64_t)stride * luma_rows;
	for (unsigned p = 1; p < f->num_planes; p++) {
		uint32_t cs = f->num_planes == 2 ? stride : stride / 2;
		l->planes[p] = (struct gpu_plane_layout){
			.offset = off,
			.stride = cs,
			.rows = luma_rows / 2,
		};
		off += (uint64_t)cs * (luma_rows / 2);
	}
	return 0;
}

/*
 * The layout GBM chose; every plane must live in the bo's single dma-buf. r8_luma_rows is
 * non-zero for a YUV image allocated as R8 (layout_from_r8()).
 */
static int
read_layout(struct gbm_backend *g, struct gbm_buffer *b, const struct gpu_buffer_desc *desc,
	    uint32_t r8_luma_rows)
{
	struct gpu_layout *l = &b->base.layout;
	int planes = gbm_bo_get_plane_count(b->bo);
	union gbm_bo_handle h0 = gbm_bo_get_handle_for_plane(b->bo, 0);
	off_t size;
	int r;

	if (planes < 1 || planes > GPU_MAX_PLANES)
		return -EINVAL;
	l->fourcc = desc->format->fourcc;
	l->modifier = gbm_bo_get_modifier(b->bo);
	/* drivers without modifier support say INVALID; we asked for a linear buffer */
	if (l->modifier == DRM_FORMAT_MOD_INVALID)
		l->modifier = DRM_FORMAT_MOD_LINEAR;
	l->width = desc->width;
	l->height = desc->height;
	if (r8_luma_rows != 0) {
		r = layout_from_r8(b, desc->format, r8_luma_rows);
		if (r < 0)
			return r;
	} else {
		l->num_planes = (uint32_t)planes;
		for (int p = 0; p < planes; p++) {
			union gbm_bo_handle h = gbm_bo_get_handle_for_plane(b->bo, p);
			if (h.u32 != h0.u32)
				return -EINVAL; /* planes in separate buffers: not one entry */
			l->planes[p].offset = gbm_bo_get_offset(b->bo, p);
			l->planes[p].stride = gbm_bo_get_stride_for_plane(b->bo, p);
			l->planes[p].rows = gpu_format_plane_height(desc->format, (unsigned)p,
								    gbm_bo_get_height(b->bo));
		}
	}
	/*
	 * Not gbm_bo_get_fd(): Mesa exports it without DRM_RDWR, and a read-only dma-buf cannot
	 * be mapped for writing, by us (transfers) or by a consumer (a decoder writing frames).
	 */
	if (drmPrimeHandleToFD(g->drm_fd, h0.u32, DRM_CLOEXEC | DRM_RDWR, &b->base.fd) < 0) {
		b->base.fd = -1;
		return negative_errno();
	}
	size = lseek(b->base.fd, 0, SEEK_END);
	if (size <= 0)
		return -EIO;
	l->size = (uint64_t)size;
	return 0;
}

static int
gbm_buffer_create(struct gpu_backend *backend, const struct gpu_buffer_desc *desc,
		  struct gpu_buffer **ret_buffer)
{
	struct gbm_backend *g = (struct gbm_backend *)backend;
	struct gpu_layout padded;
	struct gbm_buffer *b;
	uint32_t flags = GBM_BO_USE_LINEAR, r8_luma_rows = 0;
	uint32_t alloc_fourcc, alloc_width, alloc_height;
	int r;

	switch (desc->kind) {
	case GPU_BUFFER_BLOB:
		return g->memfd->ops->buffer_create(g->memfd, desc, ret_buffer);
	case GPU_BUFFER_IMAGE:
		break;
	}
	if (desc->format == NULL)
		return -EINVAL;
	r = gpu_layout_host(desc->format, desc->width, desc->height, &padded);
	if (r < 0)
		return r;
	if (!desc->format->yuv)
		flags |= GBM_BO_USE_RENDERING | (desc->scanout ? GBM_BO_USE_SCANOUT : 0);
	if (desc->protected_)
		flags |= GBM_BO_USE_PROTECTED;
	alloc_fourcc = desc->format->fourcc;
	alloc_width = desc->width;
	alloc_height = padded.planes[0].rows;
	if (!gbm_device_is_format_supported(g->gbm, desc->format->fourcc, flags)) {
		/* YUV the driver cannot allocate: one R8 buffer with the planes inside */
		if (!desc->format->yuv ||
		    !gbm_device_is_format_supported(g->gbm, DRM_FORMAT_R8, flags))
			return -EINVAL;
		r8_luma_rows = padded.planes[0].rows;
		alloc_fourcc = DRM_FORMAT_R8;
		alloc_width = ALIGN_UP(desc->width, 128u);
		alloc_height = r8_luma_rows + r8_luma_rows / 2;
	}

	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->base.backend = backend;
	b->base.fd = -1;
	b->base.protected_ = desc->protected_;
	b->base.cpu_mappable = !desc->protected_;
	b->base.map_info = VIRTIO_GPU_MAP_CACHE_WC;
	b->bo = gbm_bo_create(g->gbm, alloc_width, alloc_height, alloc_fourcc, flags);
	if (b->bo == NULL) {
		r = negative_errno();
		free(b);
		return r;
	}
	r = read_layout(g, b, desc, r8_luma_rows);
	if (r < 0) {
		destroy_gbm_buffer(b);
		return r;
	}
	*ret_buffer = &b->base;
	return 0;
}

static void
gbm_buffer_destroy(struct gpu_backend *backend, struct gpu_buffer *buffer)
{
	struct gbm_backend *g = (struct gbm_backend *)backend;

	if (buffer == NULL)
		return;
	if (!is_ours(g, buffer)) {
		g->memfd->ops->buffer_destroy(g->memfd, buffer);
		return;
	}
	destroy_gbm_buffer((struct gbm_buffer *)buffer);
}

static void
dmabuf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync sync = {.flags = flags};

	while (ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync) < 0 && (errno == EINTR || errno == EAGAIN))
		;
}

static uint64_t
sync_flags(unsigned access)
{
	uint64_t f = 0;

	if (access & GPU_CPU_READ)
		f |= DMA_BUF_SYNC_READ;
	if (access & GPU_CPU_WRITE)
		f |= DMA_BUF_SYNC_WRITE;
	return f;
}

static int
gbm_begin_cpu(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access,
	      bool allow_protected, uint8_t **ret_base)
{
	struct gbm_backend *g = (struct gbm_backend *)backend;
	struct gbm_buffer *b = (struct gbm_buffer *)buffer;

	if (!is_ours(g, buffer))
		return g->memfd->ops->begin_cpu(g->memfd, buffer, access, allow_protected,
						ret_base);
	/* protected GBM memory is not CPU-accessible at all */
	if (buffer->protected_ || !buffer->cpu_mappable)
		return -EPERM;
	if (b->map == NULL) {
		void *p = mmap(NULL, (size_t)buffer->layout.size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, buffer->fd, 0);
		if (p == MAP_FAILED)
			return negative_errno();
		b->map = p;
		b->map_size = (size_t)buffer->layout.size;
	}
	dmabuf_sync(buffer->fd, DMA_BUF_SYNC_START | sync_flags(access));
	*ret_base = b->map;
	return 0;
}

static void
gbm_end_cpu(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access)
{
	struct gbm_backend *g = (struct gbm_backend *)backend;

	if (!is_ours(g, buffer)) {
		g->memfd->ops->end_cpu(g->memfd, buffer, access);
		return;
	}
	dmabuf_sync(buffer->fd, DMA_BUF_SYNC_END | sync_flags(access));
}

static void
gbm_backend_destroy(struct gpu_backend *backend)
{
	struct gbm_backend *g = (struct gbm_backend *)backend;

	gpu_backend_destroy(g->memfd);
	gbm_device_destroy(g->gbm);
	close(g->drm_fd);
	free(g);
}

static const struct gpu_backend_ops gbm_ops = {
	.name = "gbm",
	.destroy = gbm_backend_destroy,
	.buffer_create = gbm_buffer_create,
	.buffer_destroy = gbm_buffer_destroy,
	.begin_cpu = gbm_begin_cpu,
	.end_cpu = gbm_end_cpu,
};

int
gpu_backend_gbm_new(const char *render_node, struct gpu_backend **ret_backend)
{
	struct gbm_backend *g;
	int r;

	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->base.ops = &gbm_ops;
	r = open_render_node(render_node, &g->drm_fd);
	if (r < 0) {
		free(g);
		return r == -ENOENT ? -ENODEV : r;
	}
	g->gbm = gbm_create_device(g->drm_fd);
	if (g->gbm == NULL) {
		close(g->drm_fd);
		free(g);
		return -ENODEV;
	}
	r = gpu_backend_memfd_new(&g->memfd);
	if (r < 0) {
		gbm_device_destroy(g->gbm);
		close(g->drm_fd);
		free(g);
		return r;
	}
	*ret_backend = &g->base;
	return 0;
}
