/* SPDX-License-Identifier: MIT */
/*
 * The virglrenderer backend: 3D contexts, command streams, every RESOURCE_CREATE_3D
 * target, and HOST3D blobs. Written against Debian 12's virglrenderer 0.10.4 stable API.
 *
 * Resource handles are the guest's resource ids. Images are exported with
 * virgl_renderer_execute(EXPORT_QUERY) (fd, fourcc, modifier, planes); blobs with
 * virgl_renderer_resource_export_blob(). A resource the renderer cannot export keeps
 * fd -1 and ASSIGN_UUID on it fails with an error reply.
 *
 * virglrenderer is a process-wide singleton: one backend of this kind per process.
 * It has no protected allocations: protected resources are refused (-EOPNOTSUPP).
 * Fences: the device asks sync() before answering a fenced request; it creates a renderer
 * fence and polls until the renderer signals it.
 */
#include "backend.h"
#include "macro.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/virtio_gpu.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <virglrenderer.h>

/* The header only declares it; its layout is virtio_gpu_box's (QEMU relies on the same). */
struct virgl_box {
	uint32_t x, y, z, w, h, d;
};

/* virgl bind flags (virgl_hw.h) used for the 2D resources created on the guest's behalf. */
#define VIRGL_BIND_RENDER_TARGET (1u << 1)
#define VIRGL_BIND_SAMPLER_VIEW  (1u << 3)
#define VIRGL_BIND_SCANOUT       (1u << 18)

/* How long sync() waits for the renderer before answering anyway. */
#define SYNC_TIMEOUT_MS 10000

struct virgl_backend {
	struct gpu_backend base;
	char *render_node;
	uint32_t next_fence;
	uint32_t last_signalled;
};

struct virgl_buffer {
	struct gpu_buffer base;
	uint32_t handle;
	bool blob;
	uint8_t *map; /* mmap of an exported fd, or virgl_renderer_resource_map()'s */
	size_t map_size;
	bool renderer_mapped;
};

static bool in_use;

static void
write_fence(void *cookie, uint32_t fence)
{
	struct virgl_backend *v = cookie;

	if ((int32_t)(fence - v->last_signalled) > 0)
		v->last_signalled = fence;
}

static int
get_drm_fd(void *cookie)
{
	struct virgl_backend *v = cookie;
	const char *node = v->render_node != NULL ? v->render_node : "/dev/dri/renderD128";

	return open(node, O_RDWR | O_CLOEXEC);
}

static struct virgl_renderer_callbacks callbacks = {
	.version = 2,
	.write_fence = write_fence,
	.get_drm_fd = get_drm_fd,
};

/*
 * The export of a GL texture through EGL (virgl_renderer_get_fd_for_texture2), for renderers
 * that allocate textures without GBM (EXPORT_QUERY then has nothing to say). One plane; the
 * modifier is not reported, so it is recorded as DRM_FORMAT_MOD_INVALID (implicit).
 */
static void
export_texture(struct virgl_buffer *b, const struct gpu_buffer_desc *desc)
{
	struct virgl_renderer_resource_info info;
	struct gpu_layout *l = &b->base.layout;
	int fd = -1, stride = 0, offset = 0;
	off_t size;

	if (desc->format == NULL || desc->format->num_planes != 1 ||
	    virgl_renderer_resource_get_info((int)b->handle, &info) != 0 || info.tex_id == 0 ||
	    virgl_renderer_get_fd_for_texture2(info.tex_id, &fd, &stride, &offset) != 0 || fd < 0)
		return;
	/* a dma-buf smaller than the image (nested virgl exports its guest stub) is no export */
	if (stride <= 0 || offset < 0 || (size = lseek(fd, 0, SEEK_END)) <= 0 ||
	    (uint64_t)size < (uint64_t)offset + (uint64_t)stride * desc->height) {
		close(fd);
		return;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	b->base.fd = fd;
	l->fourcc = desc->format->fourcc;
	l->modifier = DRM_FORMAT_MOD_INVALID;
	l->width = desc->width;
	l->height = desc->height;
	l->num_planes = 1;
	l->planes[0] = (struct gpu_plane_layout){
		.offset = (uint64_t)offset,
		.stride = (uint32_t)stride,
		.rows = desc->height,
	};
	l->size = (uint64_t)size;
}

/* Export query for an image: fd and layout. Missing export support leaves fd at -1. */
static void
query_export(struct virgl_buffer *b, const struct gpu_buffer_desc *desc)
{
	struct virgl_renderer_export_query q = {
		.hdr = {.stype = VIRGL_RENDERER_STRUCTURE_TYPE_EXPORT_QUERY,
			.stype_version = 0,
			.size = sizeof(q)},
		.in_resource_id = b->handle,
		.in_export_fds = 1,
	};
	struct gpu_layout *l = &b->base.layout;
	off_t size;

	if (virgl_renderer_execute(&q, sizeof(q)) != 0 || q.out_num_fds == 0 || q.out_fourcc == 0) {
		export_texture(b, desc);
		return;
	}
	/* one registry entry is one fd: a resource split over several buffers is not exported */
	for (uint32_t i = 1; i < q.out_num_fds && i < 4; i++) {
		if (q.out_fds[i] >= 0)
			close(q.out_fds[i]);
	}
	if (q.out_num_fds != 1 || q.out_fds[0] < 0) {
		if (q.out_fds[0] >= 0)
			close(q.out_fds[0]);
		return;
	}
	b->base.fd = q.out_fds[0];
	fcntl(b->base.fd, F_SETFD, FD_CLOEXEC);
	l->fourcc = q.out_fourcc;
	l->modifier = q.out_modifier;
	l->width = desc->width;
	l->height = desc->height;
	l->num_planes = 0;
	for (unsigned p = 0; p < 4; p++) {
		if (q.out_strides[p] == 0)
			break;
		l->planes[p].offset = q.out_offsets[p];
		l->planes[p].stride = q.out_strides[p];
		l->planes[p].rows = desc->format != NULL
					    ? gpu_format_plane_height(desc->format, p, desc->height)
					    : desc->height;
		l->num_planes = p + 1;
	}
	size = lseek(b->base.fd, 0, SEEK_END);
	l->size = size > 0 ? (uint64_t)size : 0;
}

static int
create_image(struct virgl_backend *v, struct virgl_buffer *b, const struct gpu_buffer_desc *desc)
{
	struct virgl_renderer_resource_create_args args = {.handle = desc->resource_id};
	int r;

	if (desc->args_3d != NULL) {
		const struct gpu_create_3d_args *a = desc->args_3d;
		args.target = a->target;
		args.format = a->format;
		args.bind = a->bind;
		args.width = a->width;
		args.height = a->height;
		args.depth = a->depth;
		args.array_size = a->array_size;
		args.last_level = a->last_level;
		args.nr_samples = a->nr_samples;
		args.flags = a->flags;
	} else {
		/* RESOURCE_CREATE_2D, as QEMU's virtio-gpu-gl creates it */
		args.target = 2; /* PIPE_TEXTURE_2D */
		args.format = desc->format->virgl_format;
		args.bind = VIRGL_BIND_RENDER_TARGET | VIRGL_BIND_SAMPLER_VIEW |
			    (desc->scanout ? VIRGL_BIND_SCANOUT : 0);
		args.width = desc->width;
		args.height = desc->height;
		args.depth = 1;
		args.array_size = 1;
		args.flags = VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP;
	}
	r = virgl_renderer_resource_create(&args, NULL, 0);
	if (r != 0)
		return r < 0 ? r : -EINVAL;
	query_export(b, desc);
	return 0;
}

static int
create_blob(struct virgl_backend *v, struct virgl_buffer *b, const struct gpu_buffer_desc *desc)
{
	struct virgl_renderer_resource_create_blob_args args = {
		.res_handle = desc->resource_id,
		.ctx_id = desc->ctx_id,
		.blob_mem = desc->blob_mem,
		.blob_flags = desc->blob_flags,
		.blob_id = desc->blob_id,
		.size = desc->size,
		.iovecs = desc->backing,
		.num_iovs = desc->n_backing,
	};
	uint32_t fd_type = 0, map_info = 0;
	int fd = -1, r;

	r = virgl_renderer_resource_create_blob(&args);
	if (r != 0)
		return r < 0 ? r : -EINVAL;
	b->blob = true;
	b->base.layout.size = desc->size;
	if (virgl_renderer_resource_get_map_info(b->handle, &map_info) == 0)
		b->base.map_info = map_info & VIRTIO_GPU_MAP_CACHE_MASK;
	if (virgl_renderer_resource_export_blob(b->handle, &fd_type, &fd) == 0 && fd >= 0) {
		if (fd_type == VIRGL_RENDERER_BLOB_FD_TYPE_DMABUF ||
		    fd_type == VIRGL_RENDERER_BLOB_FD_TYPE_SHM) {
			b->base.fd = fd;
			fcntl(fd, F_SETFD, FD_CLOEXEC);
		} else {
			close(fd); /* opaque: meaningless outside the renderer */
		}
	}
	return 0;
}

static int
virgl_buffer_create(struct gpu_backend *backend, const struct gpu_buffer_desc *desc,
		    struct gpu_buffer **ret_buffer)
{
	struct virgl_backend *v = (struct virgl_backend *)backend;
	struct virgl_buffer *b;
	int r = -EINVAL;

	if (desc->protected_)
		return -EOPNOTSUPP;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->base.backend = backend;
	b->base.fd = -1;
	b->base.map_info = VIRTIO_GPU_MAP_CACHE_CACHED;
	b->handle = desc->resource_id;
	switch (desc->kind) {
	case GPU_BUFFER_IMAGE:
		if (desc->format == NULL && desc->args_3d == NULL)
			break;
		r = create_image(v, b, desc);
		break;
	case GPU_BUFFER_BLOB:
		r = create_blob(v, b, desc);
		break;
	}
	if (r < 0) {
		free(b);
		return r;
	}
	b->base.cpu_mappable = b->base.fd >= 0 || b->blob;
	*ret_buffer = &b->base;
	return 0;
}

static void
virgl_buffer_destroy(struct gpu_backend *backend, struct gpu_buffer *buffer)
{
	struct virgl_buffer *b = (struct virgl_buffer *)buffer;

	if (b == NULL)
		return;
	if (b->renderer_mapped)
		virgl_renderer_resource_unmap(b->handle);
	else if (b->map != NULL)
		munmap(b->map, b->map_size);
	safe_close(b->base.fd);
	virgl_renderer_resource_unref(b->handle);
	free(b);
}

static int
virgl_begin_cpu(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access,
		bool allow_protected, uint8_t **ret_base)
{
	struct virgl_buffer *b = (struct virgl_buffer *)buffer;

	if (b->map == NULL) {
		if (b->base.fd >= 0 && b->base.layout.size > 0) {
			void *p = mmap(NULL, (size_t)b->base.layout.size, PROT_READ | PROT_WRITE,
				       MAP_SHARED, b->base.fd, 0);
			if (p == MAP_FAILED)
				return negative_errno();
			b->map = p;
			b->map_size = (size_t)b->base.layout.size;
		} else if (b->blob) {
			void *p = NULL;
			uint64_t size = 0;
			if (virgl_renderer_resource_map(b->handle, &p, &size) != 0 || p == NULL)
				return -EOPNOTSUPP;
			b->map = p;
			b->map_size = (size_t)size;
			b->renderer_mapped = true;
		} else {
			return -EOPNOTSUPP;
		}
	}
	if (b->base.fd >= 0) {
		struct dma_buf_sync sync = {.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW};
		ioctl(b->base.fd, DMA_BUF_IOCTL_SYNC, &sync); /* fails harmlessly on shm */
	}
	*ret_base = b->map;
	return 0;
}

static void
virgl_end_cpu(struct gpu_backend *backend, struct gpu_buffer *buffer, unsigned access)
{
	if (buffer->fd >= 0) {
		struct dma_buf_sync sync = {.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW};
		ioctl(buffer->fd, DMA_BUF_IOCTL_SYNC, &sync);
	}
}

static int
virgl_transfer(struct gpu_backend *backend, struct gpu_buffer *buffer, bool to_host,
	       const struct gpu_transfer *t, const struct iovec *backing, unsigned n)
{
	struct virgl_buffer *b = (struct virgl_buffer *)buffer;
	struct virgl_box box = {.x = t->x, .y = t->y, .z = 0, .w = t->w, .h = t->h, .d = 1};
	int r;

	/* NULL iovecs: the renderer uses the backing attached to the resource */
	if (to_host)
		r = virgl_renderer_transfer_write_iov(b->handle, t->ctx_id, (int)t->level,
						      t->stride, t->layer_stride, &box, t->offset,
						      NULL, 0);
	else
		r = virgl_renderer_transfer_read_iov(b->handle, t->ctx_id, t->level, t->stride,
						     t->layer_stride, &box, t->offset, NULL, 0);
	return r == 0 ? 0 : -EINVAL;
}

static int
virgl_attach_backing(struct gpu_backend *backend, struct gpu_buffer *buffer,
		     const struct iovec *backing, unsigned n)
{
	struct virgl_buffer *b = (struct virgl_buffer *)buffer;

	/* the renderer keeps the array: the device keeps it alive until detach */
	return virgl_renderer_resource_attach_iov((int)b->handle, (struct iovec *)backing,
						  (int)n) == 0
		       ? 0
		       : -EINVAL;
}

static void
virgl_detach_backing(struct gpu_backend *backend, struct gpu_buffer *buffer)
{
	struct virgl_buffer *b = (struct virgl_buffer *)buffer;
	struct iovec *iov = NULL;
	int n = 0;

	virgl_renderer_resource_detach_iov((int)b->handle, &iov, &n);
}

static int
virgl_ctx_create(struct gpu_backend *backend, uint32_t ctx_id, uint32_t context_init,
		 const char *name)
{
	uint32_t nlen = (uint32_t)strlen(name);
	int r;

	/* with_flags wants a capset id in context_init; 0 means the classic virgl context */
	if (context_init == 0)
		r = virgl_renderer_context_create(ctx_id, nlen, name);
	else
		r = virgl_renderer_context_create_with_flags(ctx_id, context_init, nlen, name);
	return r == 0 ? 0 : -EINVAL;
}

static void
virgl_ctx_destroy(struct gpu_backend *backend, uint32_t ctx_id)
{
	virgl_renderer_context_destroy(ctx_id);
}

static void
virgl_ctx_attach(struct gpu_backend *backend, uint32_t ctx_id, struct gpu_buffer *buffer)
{
	virgl_renderer_ctx_attach_resource((int)ctx_id,
					   (int)((struct virgl_buffer *)buffer)->handle);
}

static void
virgl_ctx_detach(struct gpu_backend *backend, uint32_t ctx_id, struct gpu_buffer *buffer)
{
	virgl_renderer_ctx_detach_resource((int)ctx_id,
					   (int)((struct virgl_buffer *)buffer)->handle);
}

static int
virgl_submit_3d(struct gpu_backend *backend, uint32_t ctx_id, void *cmds, uint32_t size)
{
	if (size % 4 != 0)
		return -EINVAL;
	return virgl_renderer_submit_cmd(cmds, (int)ctx_id, (int)(size / 4)) == 0 ? 0 : -EINVAL;
}

static uint32_t
virgl_num_capsets(struct gpu_backend *backend)
{
	uint32_t ver = 0, size = 0;

	virgl_renderer_get_cap_set(VIRTIO_GPU_CAPSET_VIRGL2, &ver, &size);
	return ver > 0 ? 2 : 1;
}

static int
virgl_capset_info(struct gpu_backend *backend, uint32_t index, uint32_t *ret_id,
		  uint32_t *ret_max_version, uint32_t *ret_max_size)
{
	uint32_t id = index == 0 ? VIRTIO_GPU_CAPSET_VIRGL : VIRTIO_GPU_CAPSET_VIRGL2;

	if (index >= virgl_num_capsets(backend))
		return -EINVAL;
	virgl_renderer_get_cap_set(id, ret_max_version, ret_max_size);
	*ret_id = id;
	return 0;
}

static int
virgl_capset(struct gpu_backend *backend, uint32_t id, uint32_t version, void *buf, uint32_t size)
{
	uint32_t max_ver = 0, max_size = 0;

	virgl_renderer_get_cap_set(id, &max_ver, &max_size);
	if (max_size == 0 || version > max_ver || size < max_size)
		return -EINVAL;
	virgl_renderer_fill_caps(id, version, buf);
	return (int)max_size;
}

static int
virgl_sync(struct gpu_backend *backend, uint32_t ctx_id)
{
	struct virgl_backend *v = (struct virgl_backend *)backend;
	uint32_t fence = ++v->next_fence;
	int poll_fd;

	if (virgl_renderer_create_fence((int)fence, ctx_id) != 0)
		return -EIO;
	poll_fd = virgl_renderer_get_poll_fd();
	for (int waited = 0; (int32_t)(fence - v->last_signalled) > 0; waited++) {
		if (waited >= SYNC_TIMEOUT_MS)
			return -ETIMEDOUT; /* answer anyway: a guest must never wait forever */
		if (poll_fd >= 0) {
			struct pollfd pfd = {.fd = poll_fd, .events = POLLIN};
			poll(&pfd, 1, 1);
		} else {
			usleep(1000);
		}
		virgl_renderer_poll();
	}
	return 0;
}

static void
virgl_backend_destroy(struct gpu_backend *backend)
{
	struct virgl_backend *v = (struct virgl_backend *)backend;

	virgl_renderer_cleanup(v);
	free(v->render_node);
	free(v);
	in_use = false;
}

static const struct gpu_backend_ops virgl_ops = {
	.name = "virgl",
	.destroy = virgl_backend_destroy,
	.buffer_create = virgl_buffer_create,
	.buffer_destroy = virgl_buffer_destroy,
	.begin_cpu = virgl_begin_cpu,
	.end_cpu = virgl_end_cpu,
	.transfer = virgl_transfer,
	.attach_backing = virgl_attach_backing,
	.detach_backing = virgl_detach_backing,
	.ctx_create = virgl_ctx_create,
	.ctx_destroy = virgl_ctx_destroy,
	.ctx_attach = virgl_ctx_attach,
	.ctx_detach = virgl_ctx_detach,
	.submit_3d = virgl_submit_3d,
	.num_capsets = virgl_num_capsets,
	.capset_info = virgl_capset_info,
	.capset = virgl_capset,
	.sync = virgl_sync,
};

int
gpu_backend_virgl_new(const char *render_node, struct gpu_backend **ret_backend)
{
	struct virgl_backend *v;
	int r;

	if (in_use)
		return -EBUSY;
	if (render_node != NULL ? access(render_node, R_OK | W_OK) < 0
				: access("/dev/dri/renderD128", R_OK | W_OK) < 0)
		return -ENODEV;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	v->base.ops = &virgl_ops;
	if (render_node != NULL && (v->render_node = strdup(render_node)) == NULL) {
		free(v);
		return -ENOMEM;
	}
	r = virgl_renderer_init(v, VIRGL_RENDERER_USE_EGL | VIRGL_RENDERER_THREAD_SYNC, &callbacks);
	if (r != 0) {
		free(v->render_node);
		free(v);
		return r < 0 ? r : -ENODEV;
	}
	in_use = true;
	*ret_backend = &v->base;
	return 0;
}
