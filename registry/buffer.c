/* SPDX-License-Identifier: MIT */
#include "buffer.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "macro.h"

#ifndef DMA_BUF_MAGIC
#define DMA_BUF_MAGIC 0x444d4142
#endif
#ifndef SECRETMEM_MAGIC
#define SECRETMEM_MAGIC 0x5345434d
#endif

static const struct cb_format_desc formats[] = {
	/* RGB, one plane */
	{ DRM_FORMAT_ARGB8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_XRGB8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_ABGR8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_XBGR8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_RGBA8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_RGBX8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_BGRA8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_BGRX8888, 1, { 4 }, 1, 1 },
	{ DRM_FORMAT_RGB565, 1, { 2 }, 1, 1 },
	{ DRM_FORMAT_R8, 1, { 1 }, 1, 1 },
	{ DRM_FORMAT_GR88, 1, { 2 }, 1, 1 },
	/* YUV */
	{ DRM_FORMAT_NV12, 2, { 1, 2 }, 2, 2 },
	{ DRM_FORMAT_NV21, 2, { 1, 2 }, 2, 2 },
	{ DRM_FORMAT_NV16, 2, { 1, 2 }, 2, 1 },
	{ DRM_FORMAT_P010, 2, { 2, 4 }, 2, 2 },
	{ DRM_FORMAT_YUV420, 3, { 1, 1, 1 }, 2, 2 },
	{ DRM_FORMAT_YVU420, 3, { 1, 1, 1 }, 2, 2 },
	{ DRM_FORMAT_YUV422, 3, { 1, 1, 1 }, 2, 1 },
	{ DRM_FORMAT_YUV444, 3, { 1, 1, 1 }, 1, 1 },
	{ DRM_FORMAT_YUYV, 1, { 2 }, 1, 1 },
};

const struct cb_format_desc *
cb_format_lookup(uint32_t fourcc)
{
	for (unsigned i = 0; i < ARRAY_SIZE(formats); i++) {
		if (formats[i].fourcc == fourcc)
			return &formats[i];
	}
	return NULL;
}

static int
refuse(const char **ret_reason, const char *reason)
{
	*ret_reason = reason;
	return -EINVAL;
}

int
cb_buffer_classify(int fd, enum crossbuf_fd_kind *ret_kind, uint64_t *ret_size,
		   const char **ret_reason)
{
	struct statfs sfs;
	struct stat st;
	int flags, seals;
	off_t end;

	if (fd < 0 || fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
		*ret_reason = "not an open fd";
		return -EBADF;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_ACCMODE) != O_RDWR)
		return refuse(ret_reason, "fd is not open for reading and writing");

	switch ((unsigned long)sfs.f_type) {
	case DMA_BUF_MAGIC:
		/* A dma-buf's size is reported by seeking to its end (its offset is unused). */
		end = lseek(fd, 0, SEEK_END);
		if (end <= 0)
			return refuse(ret_reason, "dma-buf has no size");
		lseek(fd, 0, SEEK_SET);
		*ret_kind = CROSSBUF_FD_KIND_DMABUF;
		*ret_size = (uint64_t)end;
		return 0;
	case SECRETMEM_MAGIC:
		if (st.st_size <= 0)
			return refuse(ret_reason, "memfd_secret has no size");
		*ret_kind = CROSSBUF_FD_KIND_MEMFD_SECRET;
		*ret_size = (uint64_t)st.st_size;
		return 0;
	case TMPFS_MAGIC:
	case HUGETLBFS_MAGIC:
		if (!S_ISREG(st.st_mode))
			return refuse(ret_reason, "not a regular shared-memory file");
		seals = fcntl(fd, F_GET_SEALS);
		if (seals < 0)
			return refuse(ret_reason, "shared-memory file is not a memfd");
		if (!(seals & F_SEAL_SHRINK))
			return refuse(ret_reason, "memfd is not sealed with F_SEAL_SHRINK");
		if (st.st_size <= 0)
			return refuse(ret_reason, "memfd has no size");
		*ret_kind = CROSSBUF_FD_KIND_MEMFD;
		*ret_size = (uint64_t)st.st_size;
		return 0;
	default:
		return refuse(ret_reason, "not a dma-buf, sealed memfd or memfd_secret");
	}
}

/* Rows of plane i for a buffer of height rows. */
static uint64_t
plane_rows(const struct cb_format_desc *desc, unsigned plane, uint32_t height)
{
	if (desc == NULL || plane == 0)
		return height;
	return ((uint64_t)height + desc->vsub - 1) / desc->vsub;
}

/* Bytes of a row of plane i for a buffer of width pixels. */
static uint64_t
plane_row_bytes(const struct cb_format_desc *desc, unsigned plane, uint32_t width)
{
	if (plane == 0)
		return (uint64_t)width * desc->cpp[0];
	/* Interleaved chroma (NV12's CbCr pairs) counts cpp per subsampled pixel. */
	return ((uint64_t)width + desc->hsub - 1) / desc->hsub * desc->cpp[plane];
}

int
cb_buffer_info_check(const struct crossbuf_buffer_info *info, enum crossbuf_fd_kind kind,
		     uint64_t size, const char **ret_reason)
{
	const struct cb_format_desc *desc;

	for (unsigned i = 0; i < ARRAY_SIZE(info->reserved); i++) {
		if (info->reserved[i] != 0)
			return refuse(ret_reason, "reserved fields are not zero");
	}
	if (info->flags & ~CROSSBUF_BUFFER_FLAGS_ALL)
		return refuse(ret_reason, "unknown buffer flags");
	if ((info->flags & CROSSBUF_BUFFER_PROTECTED) &&
	    (info->flags & CROSSBUF_BUFFER_GUEST_MAPPABLE))
		return refuse(ret_reason, "a protected buffer cannot be guest-mappable");
	if (info->device_kind > CROSSBUF_DEVICE_TOOL)
		return refuse(ret_reason, "unknown device kind");
	if (info->num_planes > CROSSBUF_MAX_PLANES)
		return refuse(ret_reason, "more than 4 planes");
	if (kind != CROSSBUF_FD_KIND_DMABUF && info->modifier != DRM_FORMAT_MOD_LINEAR &&
	    info->modifier != DRM_FORMAT_MOD_INVALID)
		return refuse(ret_reason, "memfd buffers are linear");

	if (info->fourcc == 0) {
		/* An opaque blob: no layout to check. */
		if (info->num_planes != 0)
			return refuse(ret_reason, "an opaque buffer (fourcc 0) has no planes");
		return 0;
	}
	if (info->num_planes == 0 || info->width == 0 || info->height == 0)
		return refuse(ret_reason, "an image buffer needs a size and planes");

	desc = cb_format_lookup(info->fourcc);
	if (desc != NULL && info->num_planes != desc->num_planes)
		return refuse(ret_reason, "plane count does not match the fourcc");

	for (unsigned i = 0; i < info->num_planes; i++) {
		const struct crossbuf_plane *p = &info->planes[i];
		uint64_t rows = plane_rows(desc, i, info->height);
		uint64_t end;

		if (p->stride == 0)
			return refuse(ret_reason, "a plane has stride 0");
		if (desc != NULL && info->modifier == DRM_FORMAT_MOD_LINEAR &&
		    p->stride < plane_row_bytes(desc, i, info->width))
			return refuse(ret_reason, "a plane's stride is shorter than its rows");
		/* Tiled layouts are the exporter's business; a linear one must fit. */
		if (info->modifier != DRM_FORMAT_MOD_LINEAR && kind == CROSSBUF_FD_KIND_DMABUF)
			rows = 1;
		/* (2^32 - 1)^2 + 2^32 - 1 < 2^64: cannot overflow */
		end = p->offset + rows * p->stride;
		if (end > size)
			return refuse(ret_reason, "a plane runs past the end of the buffer");
	}
	for (unsigned i = info->num_planes; i < CROSSBUF_MAX_PLANES; i++) {
		if (info->planes[i].offset != 0 || info->planes[i].stride != 0)
			return refuse(ret_reason, "unused planes are not zero");
	}
	return 0;
}
