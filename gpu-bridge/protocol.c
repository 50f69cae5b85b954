/* SPDX-License-Identifier: MIT */
#include "protocol.h"

#include "macro.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static_assert(sizeof(struct virtio_gpu_ctrl_hdr) == 24, "virtio-gpu header");
static_assert(sizeof(struct virtio_gpu_mem_entry) == 16, "virtio-gpu mem entry");
static_assert(sizeof(struct virtio_gpu_resource_create_blob) == 56, "create_blob");
static_assert(sizeof(struct virtio_gpu_set_scanout_blob) == 96, "set_scanout_blob");
static_assert(sizeof(struct virtio_gpu_resource_assign_uuid) == 32, "assign_uuid");
static_assert(sizeof(struct virtio_gpu_resp_resource_uuid) == 40, "resp uuid");
/* The requests that carry only a resource_id all have it here (see decode_body()). */
static_assert(offsetof(struct virtio_gpu_resource_unref, resource_id) == 24, "unref");
static_assert(offsetof(struct virtio_gpu_resource_detach_backing, resource_id) == 24, "detach");
static_assert(offsetof(struct virtio_gpu_resource_assign_uuid, resource_id) == 24, "assign_uuid");
static_assert(offsetof(struct virtio_gpu_resource_unmap_blob, resource_id) == 24, "unmap_blob");
static_assert(offsetof(struct virtio_gpu_ctx_resource, resource_id) == 24, "ctx_resource");

size_t
gpu_request_wire_size(uint32_t type)
{
	switch ((enum virtio_gpu_ctrl_type)type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
		return sizeof(struct virtio_gpu_ctrl_hdr);
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
		return sizeof(struct virtio_gpu_resource_create_2d);
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		return sizeof(struct virtio_gpu_resource_unref);
	case VIRTIO_GPU_CMD_SET_SCANOUT:
		return sizeof(struct virtio_gpu_set_scanout);
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
		return sizeof(struct virtio_gpu_resource_flush);
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
		return sizeof(struct virtio_gpu_transfer_to_host_2d);
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		return sizeof(struct virtio_gpu_resource_attach_backing);
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		return sizeof(struct virtio_gpu_resource_detach_backing);
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
		return sizeof(struct virtio_gpu_get_capset_info);
	case VIRTIO_GPU_CMD_GET_CAPSET:
		return sizeof(struct virtio_gpu_get_capset);
	case VIRTIO_GPU_CMD_GET_EDID:
		return sizeof(struct virtio_gpu_cmd_get_edid);
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID:
		return sizeof(struct virtio_gpu_resource_assign_uuid);
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		return sizeof(struct virtio_gpu_resource_create_blob);
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
		return sizeof(struct virtio_gpu_set_scanout_blob);
	case VIRTIO_GPU_CMD_CTX_CREATE:
		return sizeof(struct virtio_gpu_ctx_create);
	case VIRTIO_GPU_CMD_CTX_DESTROY:
		return sizeof(struct virtio_gpu_ctx_destroy);
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
		return sizeof(struct virtio_gpu_ctx_resource);
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
		return sizeof(struct virtio_gpu_resource_create_3d);
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
		return sizeof(struct virtio_gpu_transfer_host_3d);
	case VIRTIO_GPU_CMD_SUBMIT_3D:
		return sizeof(struct virtio_gpu_cmd_submit);
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
		return sizeof(struct virtio_gpu_resource_map_blob);
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
		return sizeof(struct virtio_gpu_resource_unmap_blob);
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
		return sizeof(struct virtio_gpu_update_cursor);
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
		return 0;
	}
	return 0;
}

const char *
gpu_cmd_name(uint32_t type)
{
	switch ((enum virtio_gpu_ctrl_type)type) {
	case VIRTIO_GPU_UNDEFINED:
		return "UNDEFINED";
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
		return "GET_DISPLAY_INFO";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
		return "RESOURCE_CREATE_2D";
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		return "RESOURCE_UNREF";
	case VIRTIO_GPU_CMD_SET_SCANOUT:
		return "SET_SCANOUT";
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
		return "RESOURCE_FLUSH";
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
		return "TRANSFER_TO_HOST_2D";
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		return "RESOURCE_ATTACH_BACKING";
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		return "RESOURCE_DETACH_BACKING";
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
		return "GET_CAPSET_INFO";
	case VIRTIO_GPU_CMD_GET_CAPSET:
		return "GET_CAPSET";
	case VIRTIO_GPU_CMD_GET_EDID:
		return "GET_EDID";
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID:
		return "RESOURCE_ASSIGN_UUID";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		return "RESOURCE_CREATE_BLOB";
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
		return "SET_SCANOUT_BLOB";
	case VIRTIO_GPU_CMD_CTX_CREATE:
		return "CTX_CREATE";
	case VIRTIO_GPU_CMD_CTX_DESTROY:
		return "CTX_DESTROY";
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
		return "CTX_ATTACH_RESOURCE";
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
		return "CTX_DETACH_RESOURCE";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
		return "RESOURCE_CREATE_3D";
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
		return "TRANSFER_TO_HOST_3D";
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
		return "TRANSFER_FROM_HOST_3D";
	case VIRTIO_GPU_CMD_SUBMIT_3D:
		return "SUBMIT_3D";
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
		return "RESOURCE_MAP_BLOB";
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
		return "RESOURCE_UNMAP_BLOB";
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
		return "UPDATE_CURSOR";
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
		return "MOVE_CURSOR";
	case VIRTIO_GPU_RESP_OK_NODATA:
		return "OK_NODATA";
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO:
		return "OK_DISPLAY_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO:
		return "OK_CAPSET_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET:
		return "OK_CAPSET";
	case VIRTIO_GPU_RESP_OK_EDID:
		return "OK_EDID";
	case VIRTIO_GPU_RESP_OK_RESOURCE_UUID:
		return "OK_RESOURCE_UUID";
	case VIRTIO_GPU_RESP_OK_MAP_INFO:
		return "OK_MAP_INFO";
	case VIRTIO_GPU_RESP_ERR_UNSPEC:
		return "ERR_UNSPEC";
	case VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY:
		return "ERR_OUT_OF_MEMORY";
	case VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID:
		return "ERR_INVALID_SCANOUT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID:
		return "ERR_INVALID_RESOURCE_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID:
		return "ERR_INVALID_CONTEXT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER:
		return "ERR_INVALID_PARAMETER";
	}
	return "unknown";
}

bool
gpu_cmd_is_cursor(uint32_t type)
{
	return type == VIRTIO_GPU_CMD_UPDATE_CURSOR || type == VIRTIO_GPU_CMD_MOVE_CURSOR;
}

uint32_t
gpu_decode_error_response(int error)
{
	switch (error) {
	case -E2BIG:
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	case -ENOMEM:
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	default:
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
}

static void
rect_from_wire(struct gpu_rect *r, const struct virtio_gpu_rect *w)
{
	r->x = le32toh(w->x);
	r->y = le32toh(w->y);
	r->width = le32toh(w->width);
	r->height = le32toh(w->height);
}

/*
 * Checks a trailing array of n items of item_size bytes at byte offset off: -E2BIG above
 * max (whether or not the items are there), -EBADMSG if the request ends before the last.
 */
static int
check_trailing(const struct cb_request *req, size_t off, uint32_t n, size_t item_size, uint32_t max)
{
	size_t avail = iov_size(req->in, req->n_in);

	if (n > max)
		return -E2BIG;
	if (off > avail || (avail - off) / item_size < n)
		return -EBADMSG;
	return 0;
}

/* Reads n mem entries that follow the request struct at byte offset off. */
static int
decode_backing(const struct cb_request *req, size_t off, uint32_t n, struct gpu_backing *ret)
{
	int r = check_trailing(req, off, n, sizeof(struct virtio_gpu_mem_entry),
			       GPU_MAX_BACKING_ENTRIES);

	if (r < 0 || n == 0)
		return r;
	ret->entries = calloc(n, sizeof(*ret->entries));
	if (ret->entries == NULL)
		return -ENOMEM;
	ret->n_entries = n;
	for (uint32_t i = 0; i < n; i++) {
		struct virtio_gpu_mem_entry e;
		size_t got = iov_to_buf(req->in, req->n_in, off + i * sizeof(e), &e, sizeof(e));
		assert(got == sizeof(e));
		(void)got;
		ret->entries[i] = (struct guest_sg_entry){
			.gpa = le64toh(e.addr),
			.len = le32toh(e.length),
		};
	}
	return 0;
}

/* Big enough for every request struct (the largest is set_scanout_blob, 96 bytes). */
union wire {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_resource_create_2d create_2d;
	struct virtio_gpu_resource_unref unref;
	struct virtio_gpu_set_scanout set_scanout;
	struct virtio_gpu_resource_flush flush;
	struct virtio_gpu_transfer_to_host_2d transfer_2d;
	struct virtio_gpu_resource_attach_backing attach;
	struct virtio_gpu_resource_detach_backing detach;
	struct virtio_gpu_get_capset_info capset_info;
	struct virtio_gpu_get_capset capset;
	struct virtio_gpu_cmd_get_edid edid;
	struct virtio_gpu_resource_assign_uuid assign_uuid;
	struct virtio_gpu_resource_create_blob create_blob;
	struct virtio_gpu_set_scanout_blob scanout_blob;
	struct virtio_gpu_ctx_create ctx_create;
	struct virtio_gpu_ctx_resource ctx_resource;
	struct virtio_gpu_resource_create_3d create_3d;
	struct virtio_gpu_transfer_host_3d transfer_3d;
	struct virtio_gpu_cmd_submit submit;
	struct virtio_gpu_resource_map_blob map_blob;
	struct virtio_gpu_resource_unmap_blob unmap_blob;
	struct virtio_gpu_update_cursor cursor;
};

static int
decode_body(const struct cb_request *req, const union wire *w, struct gpu_request *r)
{
	switch ((enum virtio_gpu_ctrl_type)r->hdr.type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
	case VIRTIO_GPU_CMD_CTX_DESTROY:
		return 0;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
		r->create_2d.resource_id = le32toh(w->create_2d.resource_id);
		r->create_2d.format = le32toh(w->create_2d.format);
		r->create_2d.width = le32toh(w->create_2d.width);
		r->create_2d.height = le32toh(w->create_2d.height);
		return 0;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID:
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
		/* each is a header, then resource_id at offset 24 (asserted above) */
		r->resource.resource_id = le32toh(w->unref.resource_id);
		return 0;
	case VIRTIO_GPU_CMD_SET_SCANOUT:
		rect_from_wire(&r->set_scanout.r, &w->set_scanout.r);
		r->set_scanout.scanout_id = le32toh(w->set_scanout.scanout_id);
		r->set_scanout.resource_id = le32toh(w->set_scanout.resource_id);
		return 0;
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
		rect_from_wire(&r->flush.r, &w->flush.r);
		r->flush.resource_id = le32toh(w->flush.resource_id);
		return 0;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
		rect_from_wire(&r->transfer_2d.r, &w->transfer_2d.r);
		r->transfer_2d.offset = le64toh(w->transfer_2d.offset);
		r->transfer_2d.resource_id = le32toh(w->transfer_2d.resource_id);
		return 0;
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		r->attach_backing.resource_id = le32toh(w->attach.resource_id);
		return decode_backing(req, sizeof(w->attach), le32toh(w->attach.nr_entries),
				      &r->attach_backing.backing);
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
		r->get_capset_info.capset_index = le32toh(w->capset_info.capset_index);
		return 0;
	case VIRTIO_GPU_CMD_GET_CAPSET:
		r->get_capset.capset_id = le32toh(w->capset.capset_id);
		r->get_capset.capset_version = le32toh(w->capset.capset_version);
		return 0;
	case VIRTIO_GPU_CMD_GET_EDID:
		r->get_edid.scanout_id = le32toh(w->edid.scanout);
		return 0;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		r->create_blob.resource_id = le32toh(w->create_blob.resource_id);
		r->create_blob.blob_mem = le32toh(w->create_blob.blob_mem);
		r->create_blob.blob_flags = le32toh(w->create_blob.blob_flags);
		r->create_blob.blob_id = le64toh(w->create_blob.blob_id);
		r->create_blob.size = le64toh(w->create_blob.size);
		return decode_backing(req, sizeof(w->create_blob),
				      le32toh(w->create_blob.nr_entries), &r->create_blob.backing);
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
		rect_from_wire(&r->set_scanout_blob.r, &w->scanout_blob.r);
		r->set_scanout_blob.scanout_id = le32toh(w->scanout_blob.scanout_id);
		r->set_scanout_blob.resource_id = le32toh(w->scanout_blob.resource_id);
		r->set_scanout_blob.width = le32toh(w->scanout_blob.width);
		r->set_scanout_blob.height = le32toh(w->scanout_blob.height);
		r->set_scanout_blob.format = le32toh(w->scanout_blob.format);
		for (unsigned i = 0; i < 4; i++) {
			r->set_scanout_blob.strides[i] = le32toh(w->scanout_blob.strides[i]);
			r->set_scanout_blob.offsets[i] = le32toh(w->scanout_blob.offsets[i]);
		}
		return 0;
	case VIRTIO_GPU_CMD_CTX_CREATE: {
		uint32_t nlen = le32toh(w->ctx_create.nlen);
		if (nlen > GPU_CTX_NAME_SIZE)
			return -E2BIG;
		r->ctx_create.context_init = le32toh(w->ctx_create.context_init);
		memcpy(r->ctx_create.name, w->ctx_create.debug_name, nlen);
		r->ctx_create.name[nlen] = '\0';
		return 0;
	}
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
		r->create_3d.resource_id = le32toh(w->create_3d.resource_id);
		r->create_3d.target = le32toh(w->create_3d.target);
		r->create_3d.format = le32toh(w->create_3d.format);
		r->create_3d.bind = le32toh(w->create_3d.bind);
		r->create_3d.width = le32toh(w->create_3d.width);
		r->create_3d.height = le32toh(w->create_3d.height);
		r->create_3d.depth = le32toh(w->create_3d.depth);
		r->create_3d.array_size = le32toh(w->create_3d.array_size);
		r->create_3d.last_level = le32toh(w->create_3d.last_level);
		r->create_3d.nr_samples = le32toh(w->create_3d.nr_samples);
		r->create_3d.flags = le32toh(w->create_3d.flags);
		return 0;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
		r->transfer_3d.box = (struct gpu_box){
			.x = le32toh(w->transfer_3d.box.x),
			.y = le32toh(w->transfer_3d.box.y),
			.z = le32toh(w->transfer_3d.box.z),
			.w = le32toh(w->transfer_3d.box.w),
			.h = le32toh(w->transfer_3d.box.h),
			.d = le32toh(w->transfer_3d.box.d),
		};
		r->transfer_3d.offset = le64toh(w->transfer_3d.offset);
		r->transfer_3d.resource_id = le32toh(w->transfer_3d.resource_id);
		r->transfer_3d.level = le32toh(w->transfer_3d.level);
		r->transfer_3d.stride = le32toh(w->transfer_3d.stride);
		r->transfer_3d.layer_stride = le32toh(w->transfer_3d.layer_stride);
		return 0;
	case VIRTIO_GPU_CMD_SUBMIT_3D: {
		uint32_t size = le32toh(w->submit.size);
		int ret = check_trailing(req, sizeof(w->submit), size, 1, GPU_MAX_SUBMIT_3D_SIZE);
		if (ret < 0 || size == 0)
			return ret;
		r->submit_3d.data = malloc(size);
		if (r->submit_3d.data == NULL)
			return -ENOMEM;
		r->submit_3d.size = size;
		iov_to_buf(req->in, req->n_in, sizeof(w->submit), r->submit_3d.data, size);
		return 0;
	}
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
		r->map_blob.resource_id = le32toh(w->map_blob.resource_id);
		r->map_blob.offset = le64toh(w->map_blob.offset);
		return 0;
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
		r->cursor.scanout_id = le32toh(w->cursor.pos.scanout_id);
		r->cursor.x = le32toh(w->cursor.pos.x);
		r->cursor.y = le32toh(w->cursor.pos.y);
		r->cursor.resource_id = le32toh(w->cursor.resource_id);
		r->cursor.hot_x = le32toh(w->cursor.hot_x);
		r->cursor.hot_y = le32toh(w->cursor.hot_y);
		return 0;
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
		break;
	}
	return -EOPNOTSUPP;
}

int
gpu_request_decode(const struct cb_request *req, struct gpu_request *ret)
{
	union wire w;
	size_t need, avail;
	int r;

	memset(ret, 0, sizeof(*ret));
	avail = iov_size(req->in, req->n_in);
	if (avail < sizeof(struct virtio_gpu_ctrl_hdr))
		return -EBADMSG;
	iov_to_buf(req->in, req->n_in, 0, &w.hdr, sizeof(w.hdr));
	ret->hdr = (struct gpu_hdr){
		.type = le32toh(w.hdr.type),
		.flags = le32toh(w.hdr.flags),
		.fence_id = le64toh(w.hdr.fence_id),
		.ctx_id = le32toh(w.hdr.ctx_id),
		.ring_idx = w.hdr.ring_idx,
	};
	need = gpu_request_wire_size(ret->hdr.type);
	if (need == 0)
		return -EOPNOTSUPP;
	assert(need <= sizeof(w));
	if (avail < need)
		return -EBADMSG;
	iov_to_buf(req->in, req->n_in, 0, &w, need);
	r = decode_body(req, &w, ret);
	if (r < 0) {
		struct gpu_hdr hdr = ret->hdr;
		gpu_request_finish(ret);
		ret->hdr = hdr;
	}
	return r;
}

void
gpu_request_finish(struct gpu_request *request)
{
	switch ((enum virtio_gpu_ctrl_type)request->hdr.type) {
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		free(request->attach_backing.backing.entries);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		free(request->create_blob.backing.entries);
		break;
	case VIRTIO_GPU_CMD_SUBMIT_3D:
		free(request->submit_3d.data);
		break;
	case VIRTIO_GPU_UNDEFINED:
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
	case VIRTIO_GPU_CMD_SET_SCANOUT:
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
	case VIRTIO_GPU_CMD_GET_CAPSET:
	case VIRTIO_GPU_CMD_GET_EDID:
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID:
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
	case VIRTIO_GPU_CMD_CTX_CREATE:
	case VIRTIO_GPU_CMD_CTX_DESTROY:
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
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
		break;
	}
	memset(request, 0, sizeof(*request));
}

size_t
gpu_response_wire_size(const struct gpu_response *resp)
{
	switch ((enum virtio_gpu_ctrl_type)resp->type) {
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO:
		return sizeof(struct virtio_gpu_resp_display_info);
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO:
		return sizeof(struct virtio_gpu_resp_capset_info);
	case VIRTIO_GPU_RESP_OK_CAPSET:
		return sizeof(struct virtio_gpu_ctrl_hdr) + resp->capset.size;
	case VIRTIO_GPU_RESP_OK_EDID:
		return sizeof(struct virtio_gpu_resp_edid);
	case VIRTIO_GPU_RESP_OK_RESOURCE_UUID:
		return sizeof(struct virtio_gpu_resp_resource_uuid);
	case VIRTIO_GPU_RESP_OK_MAP_INFO:
		return sizeof(struct virtio_gpu_resp_map_info);
	case VIRTIO_GPU_UNDEFINED:
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
	case VIRTIO_GPU_CMD_SET_SCANOUT:
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
	case VIRTIO_GPU_CMD_GET_CAPSET:
	case VIRTIO_GPU_CMD_GET_EDID:
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
	case VIRTIO_GPU_CMD_CTX_CREATE:
	case VIRTIO_GPU_CMD_CTX_DESTROY:
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
	case VIRTIO_GPU_CMD_SUBMIT_3D:
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
	case VIRTIO_GPU_RESP_OK_NODATA:
	case VIRTIO_GPU_RESP_ERR_UNSPEC:
	case VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY:
	case VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER:
		break;
	}
	return sizeof(struct virtio_gpu_ctrl_hdr);
}

static void
hdr_to_wire(const struct gpu_hdr *req_hdr, uint32_t type, struct virtio_gpu_ctrl_hdr *w)
{
	memset(w, 0, sizeof(*w));
	w->type = htole32(type);
	if (req_hdr != NULL && (req_hdr->flags & VIRTIO_GPU_FLAG_FENCE)) {
		uint32_t flags = VIRTIO_GPU_FLAG_FENCE;
		w->fence_id = htole64(req_hdr->fence_id);
		w->ctx_id = htole32(req_hdr->ctx_id);
		if (req_hdr->flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) {
			flags |= VIRTIO_GPU_FLAG_INFO_RING_IDX;
			w->ring_idx = req_hdr->ring_idx;
		}
		w->flags = htole32(flags);
	}
}

static void
rect_to_wire(struct virtio_gpu_rect *w, const struct gpu_rect *r)
{
	w->x = htole32(r->x);
	w->y = htole32(r->y);
	w->width = htole32(r->width);
	w->height = htole32(r->height);
}

int
gpu_response_encode(const struct gpu_hdr *req_hdr, const struct gpu_response *resp,
		    const struct cb_request *req)
{
	size_t need = gpu_response_wire_size(resp), room = iov_size(req->out, req->n_out);
	union {
		struct virtio_gpu_ctrl_hdr hdr;
		struct virtio_gpu_resp_display_info display_info;
		struct virtio_gpu_resp_capset_info capset_info;
		struct virtio_gpu_resp_edid edid;
		struct virtio_gpu_resp_resource_uuid uuid;
		struct virtio_gpu_resp_map_info map_info;
	} w;

	if (room < need) {
		/* Say what we can: the driver sees an error rather than stale bytes. */
		if (room >= sizeof(w.hdr)) {
			hdr_to_wire(req_hdr, VIRTIO_GPU_RESP_ERR_UNSPEC, &w.hdr);
			iov_from_buf(req->out, req->n_out, 0, &w.hdr, sizeof(w.hdr));
		}
		return -EMSGSIZE;
	}
	memset(&w, 0, sizeof(w));
	hdr_to_wire(req_hdr, resp->type, &w.hdr);
	switch ((enum virtio_gpu_ctrl_type)resp->type) {
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO:
		for (unsigned i = 0; i < VIRTIO_GPU_MAX_SCANOUTS; i++) {
			rect_to_wire(&w.display_info.pmodes[i].r, &resp->display_info.pmodes[i].r);
			w.display_info.pmodes[i].enabled =
				htole32(resp->display_info.pmodes[i].enabled);
			w.display_info.pmodes[i].flags =
				htole32(resp->display_info.pmodes[i].flags);
		}
		break;
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO:
		w.capset_info.capset_id = htole32(resp->capset_info.capset_id);
		w.capset_info.capset_max_version = htole32(resp->capset_info.capset_max_version);
		w.capset_info.capset_max_size = htole32(resp->capset_info.capset_max_size);
		break;
	case VIRTIO_GPU_RESP_OK_CAPSET:
		iov_from_buf(req->out, req->n_out, sizeof(w.hdr), resp->capset.data,
			     resp->capset.size);
		need = sizeof(w.hdr); /* the header is written below, the data is already */
		break;
	case VIRTIO_GPU_RESP_OK_EDID:
		w.edid.size = htole32(MIN(resp->edid.size, (uint32_t)GPU_EDID_MAX));
		memcpy(w.edid.edid, resp->edid.edid, sizeof(w.edid.edid));
		break;
	case VIRTIO_GPU_RESP_OK_RESOURCE_UUID:
		memcpy(w.uuid.uuid, resp->uuid.uuid, sizeof(w.uuid.uuid));
		break;
	case VIRTIO_GPU_RESP_OK_MAP_INFO:
		w.map_info.map_info = htole32(resp->map_info.map_info);
		break;
	case VIRTIO_GPU_UNDEFINED:
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
	case VIRTIO_GPU_CMD_SET_SCANOUT:
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH:
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
	case VIRTIO_GPU_CMD_GET_CAPSET:
	case VIRTIO_GPU_CMD_GET_EDID:
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB:
	case VIRTIO_GPU_CMD_CTX_CREATE:
	case VIRTIO_GPU_CMD_CTX_DESTROY:
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D:
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D:
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D:
	case VIRTIO_GPU_CMD_SUBMIT_3D:
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB:
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB:
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
	case VIRTIO_GPU_RESP_OK_NODATA:
	case VIRTIO_GPU_RESP_ERR_UNSPEC:
	case VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY:
	case VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID:
	case VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER:
		break;
	}
	iov_from_buf(req->out, req->n_out, 0, &w, need);
	return (int)gpu_response_wire_size(resp);
}
