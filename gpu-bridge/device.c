/* SPDX-License-Identifier: MIT */
#include "device.h"

#include "backing.h"
#include "edid.h"
#include "macro.h"
#include "transfer.h"
#include "udmabuf.h"

#include <drm_fourcc.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#define DEFAULT_MAX_RESOURCES   16384
#define DEFAULT_MAX_HOST_MEMORY (4ull << 30)
#define MAX_CONTEXTS            1024
#define GPU_MAX_CAPSET_SIZE     (64u << 10)
#define DEFAULT_WIDTH           1024
#define DEFAULT_HEIGHT          768

/* Feature bits this core implements whatever the backend. */
#define BASE_FEATURES                                                                              \
	((1ull << VIRTIO_GPU_F_EDID) | (1ull << VIRTIO_GPU_F_RESOURCE_UUID) |                      \
	 (1ull << VIRTIO_GPU_F_RESOURCE_BLOB))

struct resource {
	uint32_t id;
	uint32_t cmd;                    /* creating command */
	const struct gpu_format *format; /* NULL for blobs and formats only the renderer knows */
	uint32_t width, height;
	struct gpu_buffer *buffer; /* NULL for BLOB_MEM_GUEST */
	struct gpu_backing_map backing;
	bool has_backing;
	bool protected_;
	uint32_t blob_mem, blob_flags;
	uint64_t blob_size;
	bool exported;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	bool mapped;
	uint64_t map_offset;
	bool has_guest_fd;
	int guest_fd;       /* guest-memory blobs: a udmabuf of the guest's pages, once exported */
	uint64_t accounted; /* host bytes counted against max_host_memory */
};

struct scanout {
	bool enabled;
	uint32_t width, height; /* preferred mode */
	uint32_t resource_id;
	struct gpu_rect src;
	bool blob;                     /* set by SET_SCANOUT_BLOB: layout below */
	struct gpu_layout blob_layout; /* planes relative to the blob's start */
	struct {
		uint32_t resource_id; /* 0: hidden */
		uint32_t x, y, hot_x, hot_y;
	} cursor;
};

struct gpu_device {
	struct gpu_device_config config;
	GHashTable *resources; /* id -> struct resource */
	GHashTable *contexts;  /* ctx id (as pointer) -> present */
	struct scanout scanouts[VIRTIO_GPU_MAX_SCANOUTS];
	uint64_t offered, acked;
	uint64_t host_memory;
	struct gpu_exporter exporter;
	void *exporter_userdata;
	bool has_exporter;
	void *capset_buf; /* the last GET_CAPSET's data, until the reply is written */
	uint32_t cursor_image[GPU_CURSOR_SIZE * GPU_CURSOR_SIZE]; /* ARGB8888, for the sink */
};

static bool
negotiated(const struct gpu_device *dev, unsigned bit)
{
	return (dev->acked & (1ull << bit)) != 0;
}

static bool
backend_renders(const struct gpu_device *dev)
{
	return dev->config.backend->ops->submit_3d != NULL;
}

static void
free_resource(struct gpu_device *dev, struct resource *res)
{
	if (res->exported && dev->has_exporter && dev->exporter.remove != NULL)
		dev->exporter.remove(dev->exporter_userdata, res->uuid);
	if (res->mapped && dev->config.unmap_blob != NULL)
		dev->config.unmap_blob(dev->config.map_userdata, res->map_offset,
				       res->buffer != NULL ? res->buffer->layout.size : 0);
	if (res->buffer != NULL) {
		if (res->has_backing && res->cmd != VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB &&
		    dev->config.backend->ops->detach_backing != NULL)
			dev->config.backend->ops->detach_backing(dev->config.backend, res->buffer);
		dev->config.backend->ops->buffer_destroy(dev->config.backend, res->buffer);
	}
	gpu_backing_map_finish(&res->backing);
	if (res->has_guest_fd)
		close(res->guest_fd);
	dev->host_memory -= res->accounted;
	free(res);
}

int
gpu_device_new(const struct gpu_device_config *config, struct gpu_device **ret_device)
{
	struct gpu_device *dev;

	if (config == NULL || ret_device == NULL || config->backend == NULL ||
	    config->mem == NULL || config->num_scanouts == 0 ||
	    config->num_scanouts > VIRTIO_GPU_MAX_SCANOUTS)
		return -EINVAL;
	dev = calloc(1, sizeof(*dev));
	if (dev == NULL)
		return -ENOMEM;
	dev->config = *config;
	if (dev->config.max_resources == 0)
		dev->config.max_resources = DEFAULT_MAX_RESOURCES;
	if (dev->config.max_host_memory == 0)
		dev->config.max_host_memory = DEFAULT_MAX_HOST_MEMORY;
	dev->resources = g_hash_table_new(g_direct_hash, g_direct_equal);
	dev->contexts = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (unsigned i = 0; i < config->num_scanouts; i++) {
		struct scanout *s = &dev->scanouts[i];
		s->width = config->scanouts[i].width ? config->scanouts[i].width : DEFAULT_WIDTH;
		s->height =
			config->scanouts[i].height ? config->scanouts[i].height : DEFAULT_HEIGHT;
	}
	dev->offered = BASE_FEATURES;
	/*
	 * With a renderer: 3D, and context types by capset id (CTX_CREATE's context_init goes
	 * to the renderer). Fenced replies echo ring_idx; they wait for all of the renderer's
	 * work, which is stricter than the per-ring timeline and so correct.
	 */
	if (backend_renders(dev))
		dev->offered |= (1ull << VIRTIO_GPU_F_VIRGL) | (1ull << VIRTIO_GPU_F_CONTEXT_INIT);
	*ret_device = dev;
	return 0;
}

static void disable_scanout(struct gpu_device *dev, unsigned i);
static void hide_cursor(struct gpu_device *dev, unsigned i);

static void
free_all(struct gpu_device *dev)
{
	struct gpu_backend *be = dev->config.backend;
	GHashTableIter it;
	gpointer key, value;

	for (unsigned i = 0; i < dev->config.num_scanouts; i++) {
		disable_scanout(dev, i);
		hide_cursor(dev, i);
		memset(&dev->scanouts[i].cursor, 0, sizeof(dev->scanouts[i].cursor));
	}
	g_hash_table_iter_init(&it, dev->resources);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		g_hash_table_iter_steal(&it);
		free_resource(dev, value);
	}
	g_hash_table_iter_init(&it, dev->contexts);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		if (be->ops->ctx_destroy != NULL)
			be->ops->ctx_destroy(be, GPOINTER_TO_UINT(key));
		g_hash_table_iter_remove(&it);
	}
}

void
gpu_device_reset(struct gpu_device *dev)
{
	free_all(dev);
	dev->acked = 0;
}

void
gpu_device_free(struct gpu_device *dev)
{
	if (dev == NULL)
		return;
	free_all(dev);
	g_hash_table_unref(dev->resources);
	g_hash_table_unref(dev->contexts);
	if (dev->has_exporter && dev->exporter.destroy != NULL)
		dev->exporter.destroy(dev->exporter_userdata);
	free(dev->capset_buf);
	free(dev);
}

void
gpu_device_set_exporter(struct gpu_device *dev, const struct gpu_exporter *ops, void *userdata)
{
	if (dev->has_exporter && dev->exporter.destroy != NULL)
		dev->exporter.destroy(dev->exporter_userdata);
	dev->has_exporter = ops != NULL;
	if (ops != NULL)
		dev->exporter = *ops;
	else
		memset(&dev->exporter, 0, sizeof(dev->exporter));
	dev->exporter_userdata = userdata;
}

uint64_t
gpu_device_get_features(const struct gpu_device *dev)
{
	return dev->offered;
}

int
gpu_device_set_features(struct gpu_device *dev, uint64_t acked)
{
	if (acked & ~dev->offered)
		return -EINVAL;
	dev->acked = acked;
	return 0;
}

void
gpu_device_get_config(const struct gpu_device *dev, struct virtio_gpu_config *ret_config)
{
	uint32_t capsets = 0;

	if (dev->config.backend->ops->num_capsets != NULL)
		capsets = dev->config.backend->ops->num_capsets(dev->config.backend);
	memset(ret_config, 0, sizeof(*ret_config));
	ret_config->num_scanouts = htole32(dev->config.num_scanouts);
	ret_config->num_capsets = htole32(capsets);
}

static struct resource *
lookup(const struct gpu_device *dev, uint32_t id)
{
	return id == 0 ? NULL : g_hash_table_lookup(dev->resources, GUINT_TO_POINTER(id));
}

static bool
rect_inside(const struct gpu_rect *r, uint32_t width, uint32_t height)
{
	return r->x <= width && r->width <= width - r->x && r->y <= height &&
	       r->height <= height - r->y;
}

static uint32_t
errno_to_resp(int error)
{
	switch (error) {
	case -ENOMEM:
	case -EDQUOT:
	case -ENOSPC:
	case -EAGAIN:
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	case -EINVAL:
	case -EFAULT:
	case -EOVERFLOW:
	case -E2BIG:
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	default:
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
}

/* --- export ------------------------------------------------------------------------------ */

static int
fill_buffer_info(const struct resource *res, const struct gpu_layout *l,
		 struct crossbuf_buffer_info *info)
{

	memset(info, 0, sizeof(*info));
	info->width = l->width;
	info->height = l->height;
	info->fourcc = l->fourcc;
	info->modifier = l->fourcc != 0 ? l->modifier : DRM_FORMAT_MOD_LINEAR;
	info->num_planes = l->fourcc != 0 ? l->num_planes : 0;
	for (unsigned p = 0; p < info->num_planes && p < CROSSBUF_MAX_PLANES; p++) {
		if (l->planes[p].offset > UINT32_MAX)
			return -EOVERFLOW;
		info->planes[p].offset = (uint32_t)l->planes[p].offset;
		info->planes[p].stride = l->planes[p].stride;
	}
	if (res->protected_)
		info->flags |= CROSSBUF_BUFFER_PROTECTED;
	if ((res->blob_flags & VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE) ||
	    res->blob_mem == VIRTIO_GPU_BLOB_MEM_GUEST)
		info->flags |= CROSSBUF_BUFFER_GUEST_MAPPABLE;
	info->device_kind = CROSSBUF_DEVICE_GPU;
	info->resource_id = res->id;
	return 0;
}

/* A udmabuf of a guest-memory blob's pages, made once (the registry keeps its own copy). */
static int
guest_blob_fd(struct gpu_device *dev, struct resource *res)
{
	_cleanup_free_ struct gpu_udmabuf_item *items = NULL;
	int r, fd;

	if (res->has_guest_fd)
		return 0;
	if (dev->config.guest_memfd == NULL)
		return -EOPNOTSUPP;
	if (!res->has_backing)
		return -ENODATA;
	items = calloc(res->backing.n, sizeof(*items));
	if (items == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < res->backing.n; i++) {
		const struct guest_sg_entry *e = &res->backing.entries[i];
		r = dev->config.guest_memfd(dev->config.guest_memfd_userdata, e->gpa, e->len,
					    &items[i].memfd, &items[i].offset);
		if (r < 0)
			return r;
		items[i].size = e->len;
	}
	r = gpu_udmabuf_create(dev->config.udmabuf_path, items, res->backing.n, &fd);
	if (r < 0)
		return r;
	res->guest_fd = fd;
	res->has_guest_fd = true;
	return 0;
}

/* Registers res under a new random version-4 UUID, once. */
static int
export_resource(struct gpu_device *dev, struct resource *res)
{
	struct crossbuf_buffer_info info;
	int r, fd;

	if (res->exported)
		return 0;
	if (!dev->has_exporter || dev->exporter.export_uuid == NULL)
		return -ENOTCONN;
	if (res->buffer != NULL && res->buffer->fd >= 0) {
		fd = res->buffer->fd;
		r = fill_buffer_info(res, &res->buffer->layout, &info);
	} else if (res->buffer == NULL && res->blob_mem == VIRTIO_GPU_BLOB_MEM_GUEST) {
		struct gpu_layout opaque = {.size = res->blob_size};
		r = guest_blob_fd(dev, res);
		if (r < 0)
			return r;
		fd = res->guest_fd;
		r = fill_buffer_info(res, &opaque, &info);
	} else {
		return -EOPNOTSUPP; /* the backend cannot export this one */
	}
	if (r < 0)
		return r;
	r = -EEXIST;
	/* A collision of random v4 UUIDs is not going to happen; still, never replace. */
	for (int attempt = 0; attempt < 3 && r == -EEXIST; attempt++) {
		uuid_generate_random(res->uuid);
		r = dev->exporter.export_uuid(dev->exporter_userdata, res->uuid, fd, &info);
	}
	if (r < 0) {
		memset(res->uuid, 0, sizeof(res->uuid));
		return r;
	}
	res->exported = true;
	return 0;
}

static uint32_t
cmd_assign_uuid(struct gpu_device *dev, const struct gpu_request *req, struct gpu_response *resp)
{
	struct resource *res = lookup(dev, req->resource.resource_id);
	int r;

	if (!negotiated(dev, VIRTIO_GPU_F_RESOURCE_UUID))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	/* A blob the guest did not mean to share (the Linux driver never asks for those). */
	if (res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB &&
	    !(res->blob_flags &
	      (VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE | VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE)))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	r = export_resource(dev, res);
	if (r < 0)
		return r == -ENOMEM || r == -EDQUOT ? VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY
						    : VIRTIO_GPU_RESP_ERR_UNSPEC;
	memcpy(resp->uuid.uuid, res->uuid, sizeof(res->uuid));
	return VIRTIO_GPU_RESP_OK_RESOURCE_UUID;
}

/* --- resources --------------------------------------------------------------------------- */

static uint32_t
check_new_id(const struct gpu_device *dev, uint32_t id)
{
	if (id == 0 || lookup(dev, id) != NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (g_hash_table_size(dev->resources) >= dev->config.max_resources)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static bool
policy_protects(const struct gpu_device *dev, const struct gpu_resource_class *c)
{
	return dev->config.protect != NULL && dev->config.protect(dev->config.protect_userdata, c);
}

/* Allocates res's host buffer and adds res to the table; frees res on failure. */
static uint32_t
add_resource(struct gpu_device *dev, struct resource *res, const struct gpu_buffer_desc *desc)
{
	uint64_t estimate = desc->kind == GPU_BUFFER_BLOB
				    ? desc->size
				    : (uint64_t)desc->width * desc->height * 4;
	int r;

	if (desc->kind == GPU_BUFFER_BLOB || desc->format != NULL || desc->args_3d != NULL) {
		if (estimate > dev->config.max_host_memory - dev->host_memory) {
			free_resource(dev, res);
			return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		}
		r = dev->config.backend->ops->buffer_create(dev->config.backend, desc,
							    &res->buffer);
		if (r < 0) {
			res->buffer = NULL;
			free_resource(dev, res);
			return errno_to_resp(r);
		}
		res->accounted = res->buffer->layout.size;
		dev->host_memory += res->accounted;
		if (dev->host_memory > dev->config.max_host_memory) {
			free_resource(dev, res);
			return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		}
	}
	g_hash_table_insert(dev->resources, GUINT_TO_POINTER(res->id), res);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_create_2d(struct gpu_device *dev, const struct gpu_request *req, uint32_t flags)
{
	const struct gpu_format *f = gpu_format_from_virgl(req->create_2d.format);
	uint32_t w = req->create_2d.width, h = req->create_2d.height, ret;
	struct resource *res;

	ret = check_new_id(dev, req->create_2d.resource_id);
	if (ret != VIRTIO_GPU_RESP_OK_NODATA)
		return ret;
	if (f == NULL || f->yuv || w == 0 || h == 0 || w > GPU_MAX_DIMENSION ||
	    h > GPU_MAX_DIMENSION)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	res = calloc(1, sizeof(*res));
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	*res = (struct resource){
		.id = req->create_2d.resource_id,
		.cmd = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
		.format = f,
		.width = w,
		.height = h,
	};
	res->protected_ = (flags & GPU_CREATE_PROTECTED) ||
			  policy_protects(dev, &(struct gpu_resource_class){
						       .resource_id = res->id,
						       .cmd = res->cmd,
						       .fourcc = f->fourcc,
						       .width = w,
						       .height = h,
					       });
	return add_resource(dev, res,
			    &(struct gpu_buffer_desc){
				    .kind = GPU_BUFFER_IMAGE,
				    .resource_id = res->id,
				    .format = f,
				    .width = w,
				    .height = h,
				    .protected_ = res->protected_,
				    .scanout = true,
			    });
}

static uint32_t
cmd_create_3d(struct gpu_device *dev, const struct gpu_request *req, uint32_t flags)
{
	const struct gpu_format *f = gpu_format_from_virgl(req->create_3d.format);
	struct gpu_create_3d_args args = {
		.target = req->create_3d.target,
		.format = req->create_3d.format,
		.bind = req->create_3d.bind,
		.width = req->create_3d.width,
		.height = req->create_3d.height,
		.depth = req->create_3d.depth,
		.array_size = req->create_3d.array_size,
		.last_level = req->create_3d.last_level,
		.nr_samples = req->create_3d.nr_samples,
		.flags = req->create_3d.flags,
	};
	bool plain_2d = args.target == GPU_PIPE_TEXTURE_2D && args.depth <= 1 &&
			args.array_size <= 1 && args.last_level == 0 && args.nr_samples <= 1;
	struct resource *res;
	uint32_t ret;

	ret = check_new_id(dev, req->create_3d.resource_id);
	if (ret != VIRTIO_GPU_RESP_OK_NODATA)
		return ret;
	if (args.width == 0 || args.height == 0 || args.width > GPU_MAX_DIMENSION ||
	    args.height > GPU_MAX_DIMENSION)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	/* Without a renderer, only what a video buffer is: a single 2D texture we know. */
	if (!backend_renders(dev) && (!plain_2d || f == NULL))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (!plain_2d)
		f = NULL; /* the renderer's business: no CPU layout of ours applies */
	res = calloc(1, sizeof(*res));
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	*res = (struct resource){
		.id = req->create_3d.resource_id,
		.cmd = VIRTIO_GPU_CMD_RESOURCE_CREATE_3D,
		.format = f,
		.width = args.width,
		.height = args.height,
	};
	res->protected_ = (flags & GPU_CREATE_PROTECTED) ||
			  policy_protects(dev, &(struct gpu_resource_class){
						       .resource_id = res->id,
						       .cmd = res->cmd,
						       .fourcc = f != NULL ? f->fourcc : 0,
						       .width = args.width,
						       .height = args.height,
					       });
	return add_resource(dev, res,
			    &(struct gpu_buffer_desc){
				    .kind = GPU_BUFFER_IMAGE,
				    .resource_id = res->id,
				    .format = f,
				    .width = args.width,
				    .height = args.height,
				    .ctx_id = req->hdr.ctx_id,
				    .args_3d = &args,
				    .protected_ = res->protected_,
			    });
}

static uint32_t
cmd_create_blob(struct gpu_device *dev, const struct gpu_request *req, uint32_t flags)
{
	const uint32_t all_flags = VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE |
				   VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE |
				   VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE;
	uint32_t mem = req->create_blob.blob_mem, bflags = req->create_blob.blob_flags;
	const struct gpu_backing *b = &req->create_blob.backing;
	struct resource *res;
	uint32_t ret;
	int r;

	if (!negotiated(dev, VIRTIO_GPU_F_RESOURCE_BLOB))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	ret = check_new_id(dev, req->create_blob.resource_id);
	if (ret != VIRTIO_GPU_RESP_OK_NODATA)
		return ret;
	if (bflags & ~all_flags)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (req->create_blob.size == 0 || req->create_blob.size > dev->config.max_host_memory)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	switch (mem) {
	case VIRTIO_GPU_BLOB_MEM_GUEST:
	case VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST:
		if (b->n_entries == 0)
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		break;
	case VIRTIO_GPU_BLOB_MEM_HOST3D:
		if (b->n_entries != 0)
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		break;
	default:
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}

	res = calloc(1, sizeof(*res));
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	*res = (struct resource){
		.id = req->create_blob.resource_id,
		.cmd = VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB,
		.blob_mem = mem,
		.blob_flags = bflags,
		.blob_size = req->create_blob.size,
	};
	res->protected_ = (flags & GPU_CREATE_PROTECTED) ||
			  policy_protects(dev, &(struct gpu_resource_class){
						       .resource_id = res->id,
						       .cmd = res->cmd,
						       .blob_mem = mem,
						       .blob_flags = bflags,
						       .size = res->blob_size,
					       });
	/* Protected memory never lives in, or is copied to, guest pages. */
	if (res->protected_ &&
	    (mem != VIRTIO_GPU_BLOB_MEM_HOST3D || (bflags & VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE))) {
		free(res);
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
	if (b->n_entries > 0) {
		r = gpu_backing_map_init(&res->backing, dev->config.mem, b->entries, b->n_entries);
		if (r < 0) {
			free(res);
			return VIRTIO_GPU_RESP_ERR_UNSPEC;
		}
		res->has_backing = true;
		if (res->backing.size < res->blob_size) {
			free_resource(dev, res);
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		}
	}
	if (mem == VIRTIO_GPU_BLOB_MEM_GUEST) {
		g_hash_table_insert(dev->resources, GUINT_TO_POINTER(res->id), res);
		ret = VIRTIO_GPU_RESP_OK_NODATA;
	} else {
		ret = add_resource(dev, res,
				   &(struct gpu_buffer_desc){
					   .kind = GPU_BUFFER_BLOB,
					   .resource_id = req->create_blob.resource_id,
					   .size = req->create_blob.size,
					   .ctx_id = req->hdr.ctx_id,
					   .blob_id = req->create_blob.blob_id,
					   .blob_mem = mem,
					   .blob_flags = bflags,
					   .protected_ = res->protected_,
					   .backing = res->backing.iov,
					   .n_backing = res->backing.n,
				   });
		if (ret != VIRTIO_GPU_RESP_OK_NODATA)
			return ret; /* res is freed */
				    /* a blob's backing went to the backend with its description */
	}
	/* The Linux driver asks for the UUID right after; the export happens now. */
	if ((bflags & VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE) &&
	    negotiated(dev, VIRTIO_GPU_F_RESOURCE_UUID)) {
		r = export_resource(dev, res);
		if (r < 0) {
			g_hash_table_remove(dev->resources, GUINT_TO_POINTER(res->id));
			free_resource(dev, res);
			return r == -ENOMEM || r == -EDQUOT ? VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY
							    : VIRTIO_GPU_RESP_ERR_UNSPEC;
		}
	}
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static void
disable_scanout(struct gpu_device *dev, unsigned i)
{
	struct scanout *s = &dev->scanouts[i];

	if (s->resource_id == 0)
		return;
	s->resource_id = 0;
	s->blob = false;
	if (dev->config.sink != NULL)
		dev->config.sink->ops->set_scanout(dev->config.sink, i, false, 0, NULL);
}

static uint32_t
cmd_unref(struct gpu_device *dev, const struct gpu_request *req)
{
	struct resource *res = lookup(dev, req->resource.resource_id);

	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	for (unsigned i = 0; i < dev->config.num_scanouts; i++) {
		if (dev->scanouts[i].resource_id == res->id)
			disable_scanout(dev, i);
		if (dev->scanouts[i].cursor.resource_id == res->id)
			hide_cursor(dev, i);
	}
	g_hash_table_remove(dev->resources, GUINT_TO_POINTER(res->id));
	free_resource(dev, res);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_attach_backing(struct gpu_device *dev, const struct gpu_request *req)
{
	struct resource *res = lookup(dev, req->attach_backing.resource_id);
	const struct gpu_backing *b = &req->attach_backing.backing;
	int r;

	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	/* Backing receives the content (TRANSFER_FROM_HOST): never for protected ones. */
	if (res->protected_ || res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB || res->has_backing)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (b->n_entries == 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	r = gpu_backing_map_init(&res->backing, dev->config.mem, b->entries, b->n_entries);
	if (r < 0)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (res->buffer != NULL && dev->config.backend->ops->attach_backing != NULL) {
		r = dev->config.backend->ops->attach_backing(dev->config.backend, res->buffer,
							     res->backing.iov, res->backing.n);
		if (r < 0) {
			gpu_backing_map_finish(&res->backing);
			return errno_to_resp(r);
		}
	}
	res->has_backing = true;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_detach_backing(struct gpu_device *dev, const struct gpu_request *req)
{
	struct resource *res = lookup(dev, req->resource.resource_id);

	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB || !res->has_backing)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (res->buffer != NULL && dev->config.backend->ops->detach_backing != NULL)
		dev->config.backend->ops->detach_backing(dev->config.backend, res->buffer);
	gpu_backing_map_finish(&res->backing);
	res->has_backing = false;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Moves data between res's backing and its host buffer. */
static uint32_t
do_transfer(struct gpu_device *dev, struct resource *res, const struct gpu_transfer *t,
	    bool to_host)
{
	struct gpu_backend *be = dev->config.backend;
	uint8_t *base;
	int r;

	/* Protected content never meets guest memory, in either direction. */
	if (res->protected_)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB &&
	    res->blob_mem == VIRTIO_GPU_BLOB_MEM_GUEST)
		return VIRTIO_GPU_RESP_OK_NODATA; /* the guest's pages are the resource */
	if (!res->has_backing || res->buffer == NULL)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (be->ops->transfer != NULL) {
		r = be->ops->transfer(be, res->buffer, to_host, t, res->backing.iov,
				      res->backing.n);
		return r < 0 ? errno_to_resp(r) : VIRTIO_GPU_RESP_OK_NODATA;
	}
	if (res->format == NULL && res->cmd != VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	r = be->ops->begin_cpu(be, res->buffer, to_host ? GPU_CPU_WRITE : GPU_CPU_READ, false,
			       &base);
	if (r < 0)
		return errno_to_resp(r);
	r = gpu_transfer_cpu(res->format, &res->buffer->layout, base, &res->backing, t, to_host);
	be->ops->end_cpu(be, res->buffer, to_host ? GPU_CPU_WRITE : GPU_CPU_READ);
	return r < 0 ? VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER : VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_transfer_2d(struct gpu_device *dev, const struct gpu_request *req)
{
	struct resource *res = lookup(dev, req->transfer_2d.resource_id);
	const struct gpu_rect *r = &req->transfer_2d.r;

	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB) {
		/* bytes: the rectangle's x and width, as QEMU reads a blob transfer */
		if (res->blob_mem == VIRTIO_GPU_BLOB_MEM_GUEST && !res->protected_)
			return VIRTIO_GPU_RESP_OK_NODATA;
	} else if (!rect_inside(r, res->width, res->height)) {
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	return do_transfer(dev, res,
			   &(struct gpu_transfer){
				   .x = r->x,
				   .y = r->y,
				   .w = r->width,
				   .h = r->height,
				   .offset = req->transfer_2d.offset,
			   },
			   true);
}

static uint32_t
cmd_transfer_3d(struct gpu_device *dev, const struct gpu_request *req, bool to_host)
{
	struct resource *res = lookup(dev, req->transfer_3d.resource_id);
	const struct gpu_box *b = &req->transfer_3d.box;

	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (dev->config.backend->ops->transfer == NULL) {
		/* CPU path: one 2D image level, or bytes of a blob. */
		if (req->transfer_3d.level != 0 || b->z != 0 || b->d > 1)
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		if (res->cmd != VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB &&
		    !rect_inside(&(struct gpu_rect){b->x, b->y, b->w, b->h}, res->width,
				 res->height))
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	return do_transfer(dev, res,
			   &(struct gpu_transfer){
				   .x = b->x,
				   .y = b->y,
				   .w = b->w,
				   .h = b->h,
				   .offset = req->transfer_3d.offset,
				   .stride = req->transfer_3d.stride,
				   .layer_stride = req->transfer_3d.layer_stride,
				   .level = req->transfer_3d.level,
				   .ctx_id = req->hdr.ctx_id,
			   },
			   to_host);
}

/* --- scanouts ---------------------------------------------------------------------------- */

static void
set_scanout(struct gpu_device *dev, unsigned i, struct resource *res, const struct gpu_rect *src)
{
	struct scanout *s = &dev->scanouts[i];

	s->resource_id = res->id;
	s->src = *src;
	if (dev->config.sink != NULL)
		dev->config.sink->ops->set_scanout(dev->config.sink, i, true, res->id, src);
}

static uint32_t
cmd_set_scanout(struct gpu_device *dev, const struct gpu_request *req)
{
	uint32_t id = req->set_scanout.scanout_id;
	struct resource *res;

	if (id >= dev->config.num_scanouts)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	if (req->set_scanout.resource_id == 0) {
		disable_scanout(dev, id);
		return VIRTIO_GPU_RESP_OK_NODATA;
	}
	res = lookup(dev, req->set_scanout.resource_id);
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB || res->format == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (req->set_scanout.r.width == 0 || req->set_scanout.r.height == 0 ||
	    !rect_inside(&req->set_scanout.r, res->width, res->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	dev->scanouts[id].blob = false;
	set_scanout(dev, id, res, &req->set_scanout.r);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_set_scanout_blob(struct gpu_device *dev, const struct gpu_request *req)
{
	uint32_t id = req->set_scanout_blob.scanout_id;
	const struct gpu_format *f = gpu_format_from_virgl(req->set_scanout_blob.format);
	uint32_t w = req->set_scanout_blob.width, h = req->set_scanout_blob.height;
	struct gpu_layout layout = {0};
	struct resource *res;
	uint64_t blob_size;

	if (!negotiated(dev, VIRTIO_GPU_F_RESOURCE_BLOB))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (id >= dev->config.num_scanouts)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	if (req->set_scanout_blob.resource_id == 0) {
		disable_scanout(dev, id);
		return VIRTIO_GPU_RESP_OK_NODATA;
	}
	res = lookup(dev, req->set_scanout_blob.resource_id);
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->cmd != VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (f == NULL || w == 0 || h == 0 || w > GPU_MAX_DIMENSION || h > GPU_MAX_DIMENSION)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (req->set_scanout_blob.r.width == 0 || req->set_scanout_blob.r.height == 0 ||
	    !rect_inside(&req->set_scanout_blob.r, w, h))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	blob_size = res->blob_size;
	layout.fourcc = f->fourcc;
	layout.modifier = DRM_FORMAT_MOD_LINEAR;
	layout.width = w;
	layout.height = h;
	layout.num_planes = f->num_planes;
	layout.size = blob_size;
	for (unsigned p = 0; p < f->num_planes; p++) {
		uint32_t stride = req->set_scanout_blob.strides[p];
		uint64_t off = req->set_scanout_blob.offsets[p];
		uint64_t rows = gpu_format_plane_height(f, p, h);
		uint64_t row = (uint64_t)gpu_format_plane_width(f, p, w) * f->cpp[p];
		/* all factors are below 2^32: the sums below cannot overflow 64 bits */
		if (stride < row || off + (rows - 1) * stride + row > blob_size)
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		layout.planes[p] = (struct gpu_plane_layout){
			.offset = off,
			.stride = stride,
			.rows = (uint32_t)rows,
		};
	}
	dev->scanouts[id].blob = true;
	dev->scanouts[id].blob_layout = layout;
	set_scanout(dev, id, res, &req->set_scanout_blob.r);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Shows scanout i (showing res) to the sink, damage in image coordinates. */
static void
flush_scanout(struct gpu_device *dev, unsigned i, struct resource *res,
	      const struct gpu_rect *damage)
{
	struct gpu_backend *be = dev->config.backend;
	struct scanout *s = &dev->scanouts[i];
	struct gpu_sink *sink = dev->config.sink;
	struct gpu_sink_frame frame = {
		.scanout_id = i,
		.resource_id = res->id,
		.src = s->src,
		.damage = *damage,
		.protected_ = res->protected_,
	};
	_cleanup_free_ uint8_t *copy = NULL;
	uint8_t *base = NULL;
	bool mapped = false;

	if (sink == NULL)
		return;
	frame.layout = s->blob ? &s->blob_layout : &res->buffer->layout;
	if (!res->protected_ || sink->authorized) {
		if (res->buffer != NULL && res->buffer->cpu_mappable &&
		    be->ops->begin_cpu(be, res->buffer, GPU_CPU_READ, sink->authorized, &base) ==
			    0) {
			mapped = true;
			frame.data = base;
		} else if (res->buffer == NULL && res->has_backing) {
			/* guest blob: contiguous already, or gathered for the sink */
			if (res->backing.n == 1) {
				frame.data = res->backing.iov[0].iov_base;
			} else {
				copy = malloc(res->backing.size);
				if (copy != NULL && gpu_backing_read(&res->backing, 0, copy,
								     res->backing.size) == 0)
					frame.data = copy;
			}
		}
	}
	sink->ops->flush(sink, &frame);
	if (mapped)
		be->ops->end_cpu(be, res->buffer, GPU_CPU_READ);
}

static uint32_t
cmd_flush(struct gpu_device *dev, const struct gpu_request *req)
{
	struct resource *res = lookup(dev, req->flush.resource_id);

	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->cmd != VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB &&
	    !rect_inside(&req->flush.r, res->width, res->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	for (unsigned i = 0; i < dev->config.num_scanouts; i++) {
		if (dev->scanouts[i].resource_id == res->id)
			flush_scanout(dev, i, res, &req->flush.r);
	}
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_get_display_info(struct gpu_device *dev, struct gpu_response *resp)
{
	for (unsigned i = 0; i < dev->config.num_scanouts; i++) {
		resp->display_info.pmodes[i].r = (struct gpu_rect){
			.width = dev->scanouts[i].width,
			.height = dev->scanouts[i].height,
		};
		resp->display_info.pmodes[i].enabled = 1;
	}
	return VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
}

static uint32_t
cmd_get_edid(struct gpu_device *dev, const struct gpu_request *req, struct gpu_response *resp)
{
	uint32_t id = req->get_edid.scanout_id;

	if (!negotiated(dev, VIRTIO_GPU_F_EDID))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (id >= dev->config.num_scanouts)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	gpu_edid_generate(dev->scanouts[id].width, dev->scanouts[id].height, id + 1,
			  resp->edid.edid);
	resp->edid.size = GPU_EDID_BLOCK_SIZE;
	return VIRTIO_GPU_RESP_OK_EDID;
}

static uint32_t
cmd_map_blob(struct gpu_device *dev, const struct gpu_request *req, struct gpu_response *resp)
{
	struct resource *res = lookup(dev, req->map_blob.resource_id);
	int r;

	if (!negotiated(dev, VIRTIO_GPU_F_RESOURCE_BLOB))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->protected_)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (res->cmd != VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB || res->buffer == NULL ||
	    !(res->blob_flags & VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE) || res->mapped ||
	    res->buffer->fd < 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (dev->config.map_blob == NULL)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	r = dev->config.map_blob(dev->config.map_userdata, res->buffer->fd, 0, req->map_blob.offset,
				 res->buffer->layout.size);
	if (r < 0)
		return errno_to_resp(r);
	res->mapped = true;
	res->map_offset = req->map_blob.offset;
	resp->map_info.map_info = res->buffer->map_info;
	return VIRTIO_GPU_RESP_OK_MAP_INFO;
}

static uint32_t
cmd_unmap_blob(struct gpu_device *dev, const struct gpu_request *req)
{
	struct resource *res = lookup(dev, req->resource.resource_id);

	if (!negotiated(dev, VIRTIO_GPU_F_RESOURCE_BLOB))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!res->mapped)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (dev->config.unmap_blob != NULL)
		dev->config.unmap_blob(dev->config.map_userdata, res->map_offset,
				       res->buffer->layout.size);
	res->mapped = false;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

/* --- contexts ---------------------------------------------------------------------------- */

static bool
has_context(const struct gpu_device *dev, uint32_t ctx_id)
{
	return ctx_id != 0 && g_hash_table_contains(dev->contexts, GUINT_TO_POINTER(ctx_id));
}

static uint32_t
cmd_ctx_create(struct gpu_device *dev, const struct gpu_request *req)
{
	struct gpu_backend *be = dev->config.backend;
	uint32_t ctx = req->hdr.ctx_id;
	int r;

	if (ctx == 0 || has_context(dev, ctx))
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	if (g_hash_table_size(dev->contexts) >= MAX_CONTEXTS)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	/* Without a renderer a context is bookkeeping: guests create one before they allocate. */
	if (be->ops->ctx_create != NULL) {
		r = be->ops->ctx_create(be, ctx, req->ctx_create.context_init,
					req->ctx_create.name);
		if (r < 0)
			return errno_to_resp(r);
	}
	g_hash_table_add(dev->contexts, GUINT_TO_POINTER(ctx));
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_ctx_destroy(struct gpu_device *dev, const struct gpu_request *req)
{
	struct gpu_backend *be = dev->config.backend;

	if (!has_context(dev, req->hdr.ctx_id))
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	if (be->ops->ctx_destroy != NULL)
		be->ops->ctx_destroy(be, req->hdr.ctx_id);
	g_hash_table_remove(dev->contexts, GUINT_TO_POINTER(req->hdr.ctx_id));
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_ctx_resource(struct gpu_device *dev, const struct gpu_request *req, bool attach)
{
	struct gpu_backend *be = dev->config.backend;
	struct resource *res = lookup(dev, req->resource.resource_id);

	if (!has_context(dev, req->hdr.ctx_id))
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	if (res == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (res->buffer != NULL) {
		if (attach && be->ops->ctx_attach != NULL)
			be->ops->ctx_attach(be, req->hdr.ctx_id, res->buffer);
		if (!attach && be->ops->ctx_detach != NULL)
			be->ops->ctx_detach(be, req->hdr.ctx_id, res->buffer);
	}
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_submit_3d(struct gpu_device *dev, const struct gpu_request *req)
{
	struct gpu_backend *be = dev->config.backend;
	int r;

	if (be->ops->submit_3d == NULL)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (!has_context(dev, req->hdr.ctx_id))
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	r = be->ops->submit_3d(be, req->hdr.ctx_id, req->submit_3d.data, req->submit_3d.size);
	return r < 0 ? errno_to_resp(r) : VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t
cmd_get_capset_info(struct gpu_device *dev, const struct gpu_request *req,
		    struct gpu_response *resp)
{
	struct gpu_backend *be = dev->config.backend;
	uint32_t n = be->ops->num_capsets != NULL ? be->ops->num_capsets(be) : 0;

	if (req->get_capset_info.capset_index >= n || be->ops->capset_info == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (be->ops->capset_info(
		    be, req->get_capset_info.capset_index, &resp->capset_info.capset_id,
		    &resp->capset_info.capset_max_version, &resp->capset_info.capset_max_size) < 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	return VIRTIO_GPU_RESP_OK_CAPSET_INFO;
}

static uint32_t
cmd_get_capset(struct gpu_device *dev, const struct gpu_request *req, struct gpu_response *resp)
{
	struct gpu_backend *be = dev->config.backend;
	uint32_t n = be->ops->num_capsets != NULL ? be->ops->num_capsets(be) : 0;
	int r = -EINVAL;

	if (be->ops->capset_info == NULL || be->ops->capset == NULL)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	/* the capset's size comes from the renderer, not the guest */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id, ver, size;
		if (be->ops->capset_info(be, i, &id, &ver, &size) < 0 ||
		    id != req->get_capset.capset_id)
			continue;
		if (size == 0 || size > GPU_MAX_CAPSET_SIZE)
			break;
		void *buf = realloc(dev->capset_buf, size);
		if (buf == NULL)
			return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		dev->capset_buf = buf;
		memset(buf, 0, size);
		r = be->ops->capset(be, id, req->get_capset.capset_version, buf, size);
		if (r >= 0) {
			resp->capset.data = buf;
			resp->capset.size = size;
		}
		break;
	}
	return r < 0 ? VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER : VIRTIO_GPU_RESP_OK_CAPSET;
}

/* --- cursor ----------------------------------------------------------------------------- */

/* Tells the sink about scanout i's cursor (image: the new shape, or NULL). */
static void
sink_cursor(struct gpu_device *dev, unsigned i, const uint32_t *image)
{
	struct gpu_sink *sink = dev->config.sink;
	const struct scanout *s = &dev->scanouts[i];

	if (sink == NULL || sink->ops->cursor == NULL)
		return;
	sink->ops->cursor(sink, &(struct gpu_sink_cursor){
					.scanout_id = i,
					.x = s->cursor.x,
					.y = s->cursor.y,
					.hot_x = s->cursor.hot_x,
					.hot_y = s->cursor.hot_y,
					.visible = s->cursor.resource_id != 0,
					.image = image,
				});
}

/* Scanout i's cursor goes away (its resource is freed, the device resets). */
static void
hide_cursor(struct gpu_device *dev, unsigned i)
{
	if (dev->scanouts[i].cursor.resource_id == 0)
		return;
	dev->scanouts[i].cursor.resource_id = 0;
	sink_cursor(dev, i, NULL);
}

/* ARGB8888 of the 4-byte pixel p in DRM format fourcc (bytes in memory order). */
static uint32_t
pixel_argb(uint32_t fourcc, const uint8_t *p)
{
	uint32_t a, r, g, b;

	switch (fourcc) {
	case DRM_FORMAT_ARGB8888:
	case DRM_FORMAT_XRGB8888:
		b = p[0], g = p[1], r = p[2], a = p[3];
		break;
	case DRM_FORMAT_ABGR8888:
	case DRM_FORMAT_XBGR8888:
		r = p[0], g = p[1], b = p[2], a = p[3];
		break;
	case DRM_FORMAT_BGRA8888:
	case DRM_FORMAT_BGRX8888:
		a = p[0], r = p[1], g = p[2], b = p[3];
		break;
	case DRM_FORMAT_RGBA8888:
	case DRM_FORMAT_RGBX8888:
		a = p[0], b = p[1], g = p[2], r = p[3];
		break;
	default:
		return 0;
	}
	if (fourcc == DRM_FORMAT_XRGB8888 || fourcc == DRM_FORMAT_XBGR8888 ||
	    fourcc == DRM_FORMAT_BGRX8888 || fourcc == DRM_FORMAT_RGBX8888)
		a = 0xff;
	return a << 24 | r << 16 | g << 8 | b;
}

/* Converts n pixels of fourcc at src into ARGB8888 at dst; src may be dst itself. */
static void
row_argb(uint32_t fourcc, const uint8_t *src, uint32_t *dst, unsigned n)
{
	for (unsigned x = 0; x < n; x++) {
		uint8_t p[4];

		memcpy(p, src + x * 4u, 4);
		dst[x] = pixel_argb(fourcc, p);
	}
}

/*
 * Reads res's image into dev->cursor_image as ARGB8888. What can be a cursor is what QEMU
 * shows: a 64x64 image of 4-byte pixels (any of the RGB formats, converted), or a blob of at
 * least 64 x 64 x 4 bytes read as ARGB8888 rows of 256 bytes (a Linux guest's dumb buffers
 * are guest blobs once RESOURCE_BLOB is negotiated without virgl). -EINVAL for anything else,
 * -EPERM for protected content (never shown), -ENODATA without readable memory.
 */
static int
read_cursor_image(struct gpu_device *dev, struct resource *res)
{
	struct gpu_backend *be = dev->config.backend;
	const uint32_t row = GPU_CURSOR_SIZE * 4;
	uint32_t *dst = dev->cursor_image;
	uint32_t fourcc, stride;
	uint64_t offset;
	uint8_t *base;
	int r;

	if (res->protected_)
		return -EPERM;
	if (res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB) {
		if (res->blob_size < (uint64_t)row * GPU_CURSOR_SIZE)
			return -EINVAL;
		fourcc = DRM_FORMAT_ARGB8888;
		offset = 0;
		stride = row;
	} else {
		if (res->format == NULL || res->format->yuv || res->format->num_planes != 1 ||
		    res->format->cpp[0] != 4 || res->width != GPU_CURSOR_SIZE ||
		    res->height != GPU_CURSOR_SIZE || res->buffer == NULL)
			return -EINVAL;
		fourcc = res->format->fourcc;
		offset = res->buffer->layout.planes[0].offset;
		stride = res->buffer->layout.planes[0].stride;
	}
	if (res->buffer == NULL) {
		/* a guest blob: the pixels are in the guest's pages */
		if (!res->has_backing)
			return -ENODATA;
		r = gpu_backing_read(&res->backing, 0, dst, (size_t)row * GPU_CURSOR_SIZE);
		if (r < 0)
			return -ENODATA;
		for (unsigned y = 0; y < GPU_CURSOR_SIZE; y++)
			row_argb(fourcc, (const uint8_t *)(dst + y * GPU_CURSOR_SIZE),
				 dst + y * GPU_CURSOR_SIZE, GPU_CURSOR_SIZE);
		return 0;
	}
	/* the host buffer (what TRANSFER_TO_HOST filled), checked against its size */
	if (!res->buffer->cpu_mappable || stride < row ||
	    offset + (uint64_t)stride * (GPU_CURSOR_SIZE - 1) + row > res->buffer->layout.size)
		return -ENODATA;
	r = be->ops->begin_cpu(be, res->buffer, GPU_CPU_READ, false, &base);
	if (r < 0)
		return -ENODATA;
	for (unsigned y = 0; y < GPU_CURSOR_SIZE; y++)
		row_argb(fourcc, base + offset + (uint64_t)y * stride, dst + y * GPU_CURSOR_SIZE,
			 GPU_CURSOR_SIZE);
	be->ops->end_cpu(be, res->buffer, GPU_CPU_READ);
	return 0;
}

/*
 * UPDATE_CURSOR sets the shape (read out of the resource now, as QEMU does), hot spot and
 * position; resource 0, or one that cannot be a cursor, hides it. MOVE_CURSOR moves the shape
 * last set: as the virtio spec says, only its position counts (the guest-driver library sends
 * resource 0 there, Linux the current one). The sink hears of each; the cursor queue gets no
 * reply, the returned type is for gpu_device_execute()'s callers.
 */
static uint32_t
cursor(struct gpu_device *dev, const struct gpu_request *req, bool update)
{
	uint32_t id = req->cursor.scanout_id;
	struct scanout *s;
	struct resource *res;
	uint32_t ret = VIRTIO_GPU_RESP_OK_NODATA;
	int r;

	if (id >= dev->config.num_scanouts)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	s = &dev->scanouts[id];
	s->cursor.x = req->cursor.x;
	s->cursor.y = req->cursor.y;
	if (!update) {
		sink_cursor(dev, id, NULL);
		return ret;
	}
	s->cursor.hot_x = req->cursor.hot_x;
	s->cursor.hot_y = req->cursor.hot_y;
	s->cursor.resource_id = 0;
	if (req->cursor.resource_id != 0) {
		res = lookup(dev, req->cursor.resource_id);
		if (res == NULL) {
			ret = VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
		} else {
			r = read_cursor_image(dev, res);
			if (r == 0)
				s->cursor.resource_id = res->id;
			else
				ret = r == -EINVAL ? VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER
						   : VIRTIO_GPU_RESP_ERR_UNSPEC;
		}
	}
	sink_cursor(dev, id, s->cursor.resource_id != 0 ? dev->cursor_image : NULL);
	return ret;
}

/* --- dispatch ---------------------------------------------------------------------------- */

uint32_t
gpu_device_execute(struct gpu_device *dev, const struct gpu_request *req, uint32_t create_flags,
		   struct gpu_response *resp)
{
	uint32_t type = VIRTIO_GPU_RESP_ERR_UNSPEC;

	memset(resp, 0, sizeof(*resp));
	switch ((enum virtio_gpu_ctrl_type)req->hdr.type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
		type = cmd_get_display_info(dev, resp);
		break;
	case VIRTIO_GPU_CMD_GET_EDID:
		type = cmd_get_edid(dev, req, resp);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
		type = cmd_create_2d(dev, req, create_flags);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
		type = cmd_create_3d(dev, req, create_flags);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		type = cmd_create_blob(dev, req, create_flags);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		type = cmd_unref(dev, req);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		type = cmd_attach_backing(dev, req);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		type = cmd_detach_backing(dev, req);
		break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
		type = cmd_transfer_2d(dev, req);
		break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
		type = cmd_transfer_3d(dev, req, true);
		break;
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
		type = cmd_transfer_3d(dev, req, false);
		break;
	case VIRTIO_GPU_CMD_SET_SCANOUT:
		type = cmd_set_scanout(dev, req);
		break;
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
		type = cmd_set_scanout_blob(dev, req);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
		type = cmd_flush(dev, req);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID:
		type = cmd_assign_uuid(dev, req, resp);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
		type = cmd_map_blob(dev, req, resp);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
		type = cmd_unmap_blob(dev, req);
		break;
	case VIRTIO_GPU_CMD_CTX_CREATE:
		type = cmd_ctx_create(dev, req);
		break;
	case VIRTIO_GPU_CMD_CTX_DESTROY:
		type = cmd_ctx_destroy(dev, req);
		break;
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
		type = cmd_ctx_resource(dev, req, true);
		break;
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
		type = cmd_ctx_resource(dev, req, false);
		break;
	case VIRTIO_GPU_CMD_SUBMIT_3D:
		type = cmd_submit_3d(dev, req);
		break;
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
		type = cmd_get_capset_info(dev, req, resp);
		break;
	case VIRTIO_GPU_CMD_GET_CAPSET:
		type = cmd_get_capset(dev, req, resp);
		break;
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
		type = cursor(dev, req, true);
		break;
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
		type = cursor(dev, req, false);
		break;
	case VIRTIO_GPU_UNDEFINED:
	case VIRTIO_GPU_RESP_OK_NODATA:
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO:
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO:
	case VIRTIO_GPU_RESP_OK_CAPSET:
	case VIRTIO_GPU_RESP_OK_EDID:
	case VIRTIO_GPU_RESP_OK_RESOURCE_UUID:
	case VIRTIO_GPU_RESP_OK_MAP_INFO:
	case VIRTIO_GPU_RESP_ERR_UNSPEC:
	case VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY:
	case VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER:
		type = VIRTIO_GPU_RESP_ERR_UNSPEC;
		break;
	}
	/* A fenced reply means "done": let an asynchronous backend finish first. */
	if ((req->hdr.flags & VIRTIO_GPU_FLAG_FENCE) && dev->config.backend->ops->sync != NULL)
		dev->config.backend->ops->sync(dev->config.backend, req->hdr.ctx_id);
	resp->type = type;
	return type;
}

size_t
gpu_device_process(struct gpu_device *dev, const struct cb_request *creq)
{
	struct gpu_request req;
	struct gpu_response resp;
	int r;

	r = gpu_request_decode(creq, &req);
	if (r < 0) {
		memset(&resp, 0, sizeof(resp));
		resp.type = gpu_decode_error_response(r);
	} else {
		gpu_device_execute(dev, &req, 0, &resp);
	}
	r = gpu_response_encode(creq->n_in > 0 ? &req.hdr : NULL, &resp, creq);
	gpu_request_finish(&req);
	if (r < 0) {
		/* no room for the reply: an error header if it fits (see protocol.h) */
		size_t room = iov_size(creq->out, creq->n_out);
		return room >= sizeof(struct virtio_gpu_ctrl_hdr)
			       ? sizeof(struct virtio_gpu_ctrl_hdr)
			       : 0;
	}
	return (size_t)r;
}

/* --- embedder queries -------------------------------------------------------------------- */

unsigned
gpu_device_guest_mem_changed(struct gpu_device *dev)
{
	struct gpu_backend *be = dev->config.backend;
	GHashTableIter it;
	gpointer value;
	unsigned dropped = 0;

	g_hash_table_iter_init(&it, dev->resources);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		struct resource *res = value;
		if (!res->has_backing ||
		    gpu_backing_map_refresh(&res->backing, dev->config.mem) == 0)
			continue;
		dropped++;
		if (res->cmd == VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB) {
			/*
			 * A blob's backing may be held by the backend until the blob goes: keep the
			 * (now empty) map allocated, only stop using it.
			 */
			res->has_backing = false;
			continue;
		}
		if (res->buffer != NULL && be->ops->detach_backing != NULL)
			be->ops->detach_backing(be, res->buffer);
		gpu_backing_map_finish(&res->backing);
		res->has_backing = false;
	}
	return dropped;
}

int
gpu_device_get_resource(const struct gpu_device *dev, uint32_t resource_id,
			struct gpu_resource_info *ret_info)
{
	const struct resource *res = lookup(dev, resource_id);
	struct gpu_resource_info info = {0};

	if (res == NULL)
		return -ENOENT;
	info.resource_id = res->id;
	info.cmd = res->cmd;
	if (res->buffer != NULL)
		info.layout = res->buffer->layout;
	info.protected_ = res->protected_;
	info.has_backing = res->has_backing;
	info.exported = res->exported;
	memcpy(info.uuid, res->uuid, sizeof(info.uuid));
	info.blob_mem = res->blob_mem;
	info.blob_flags = res->blob_flags;
	*ret_info = info;
	return 0;
}

int
gpu_device_dup_resource_fd(const struct gpu_device *dev, uint32_t resource_id, int *ret_fd)
{
	const struct resource *res = lookup(dev, resource_id);
	int fd;

	if (res == NULL)
		return -ENOENT;
	if (res->buffer == NULL || res->buffer->fd < 0)
		return -ENODATA;
	fd = fcntl(res->buffer->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return negative_errno();
	*ret_fd = fd;
	return 0;
}

unsigned
gpu_device_count_resources(const struct gpu_device *dev)
{
	return g_hash_table_size(dev->resources);
}
