/* SPDX-License-Identifier: MIT */
#include "guest-driver.h"

#include "macro.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* send() copies replies into the union through its largest member */
_Static_assert(sizeof(((struct gpu_guest_reply *)0)->edid) >=
		       sizeof(((struct gpu_guest_reply *)0)->display_info),
	       "edid is the largest reply");

struct gpu_guest {
	gpu_guest_submit_fn submit;
	void *userdata;
	bool fenced;
	uint32_t ctx_id;
	int ring_idx;
	uint64_t next_fence;
	uint64_t last_fence;
};

int
gpu_guest_new(gpu_guest_submit_fn submit, void *userdata, struct gpu_guest **ret_guest)
{
	struct gpu_guest *g;

	if (submit == NULL || ret_guest == NULL)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->submit = submit;
	g->userdata = userdata;
	g->ring_idx = -1;
	g->next_fence = 1;
	*ret_guest = g;
	return 0;
}

void
gpu_guest_free(struct gpu_guest *guest)
{
	free(guest);
}

void
gpu_guest_set_fence(struct gpu_guest *guest, bool fenced, uint32_t ctx_id, int ring_idx)
{
	guest->fenced = fenced;
	guest->ctx_id = ctx_id;
	guest->ring_idx = ring_idx;
}

uint64_t
gpu_guest_last_fence(const struct gpu_guest *guest)
{
	return guest->last_fence;
}

int
gpu_guest_backing_pages(uint64_t gpa, uint64_t size, uint32_t page,
			struct virtio_gpu_mem_entry *ret_entries, unsigned max)
{
	unsigned n = 0;

	if (page == 0)
		return -EINVAL;
	while (size > 0) {
		uint32_t len = size < page ? (uint32_t)size : page;
		if (n == max)
			return -E2BIG;
		ret_entries[n++] = (struct virtio_gpu_mem_entry){
			.addr = htole64(gpa),
			.length = htole32(len),
		};
		gpa += len;
		size -= len;
	}
	return (int)n;
}

/* virtio_gpu_cmd_*(): the header as the driver fills it, fence included when asked. */
static void
fill_hdr(struct gpu_guest *g, struct virtio_gpu_ctrl_hdr *hdr, uint32_t type, uint32_t ctx_id)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->type = htole32(type);
	hdr->ctx_id = htole32(ctx_id);
	if (g->fenced) {
		uint32_t flags = VIRTIO_GPU_FLAG_FENCE;
		g->last_fence = g->next_fence++;
		hdr->fence_id = htole64(g->last_fence);
		if (ctx_id == 0)
			hdr->ctx_id = htole32(g->ctx_id);
		if (g->ring_idx >= 0) {
			flags |= VIRTIO_GPU_FLAG_INFO_RING_IDX;
			hdr->ring_idx = (uint8_t)g->ring_idx;
		}
		hdr->flags = htole32(flags);
	}
}

static int
send(struct gpu_guest *g, const void *cmd, size_t cmd_size, const void *data, size_t data_size,
     size_t resp_size, struct gpu_guest_reply *ret_reply)
{
	struct gpu_guest_reply reply;
	struct iovec in[2], out[1];
	struct cb_request req = {.in = in, .out = out};
	_cleanup_free_ uint8_t *resp = NULL;
	int r;

	in[req.n_in++] = (struct iovec){.iov_base = (void *)cmd, .iov_len = cmd_size};
	if (data_size > 0)
		in[req.n_in++] = (struct iovec){.iov_base = (void *)data, .iov_len = data_size};
	if (resp_size > 0) {
		resp = calloc(1, resp_size);
		if (resp == NULL)
			return -ENOMEM;
		out[req.n_out++] = (struct iovec){.iov_base = resp, .iov_len = resp_size};
	}
	r = g->submit(g->userdata, &req);
	if (r < 0)
		return r;
	if (resp_size == 0)
		return 0; /* the cursor queue has no replies */
	if ((size_t)r < sizeof(struct virtio_gpu_ctrl_hdr))
		return -EBADMSG;
	memset(&reply, 0, sizeof(reply));
	reply.len = (size_t)r;
	memcpy(&reply.hdr, resp, sizeof(reply.hdr));
	/* the union's members all start with the header too */
	memcpy(&reply.display_info, resp, MIN(MIN(resp_size, (size_t)r), sizeof(reply.edid)));
	if (ret_reply != NULL)
		*ret_reply = reply;
	return (int)le32toh(reply.hdr.type);
}

int
gpu_guest_send_raw(struct gpu_guest *g, const void *cmd, size_t cmd_size, const void *data,
		   size_t data_size, size_t resp_size, struct gpu_guest_reply *ret_reply)
{
	return send(g, cmd, cmd_size, data, data_size, resp_size, ret_reply);
}

static int
simple(struct gpu_guest *g, void *cmd, size_t size, struct gpu_guest_reply *ret_reply)
{
	return send(g, cmd, size, NULL, 0, sizeof(struct virtio_gpu_ctrl_hdr), ret_reply);
}

int
gpu_guest_get_display_info(struct gpu_guest *g, struct gpu_guest_reply *ret_reply)
{
	struct virtio_gpu_ctrl_hdr cmd;

	fill_hdr(g, &cmd, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	return send(g, &cmd, sizeof(cmd), NULL, 0, sizeof(struct virtio_gpu_resp_display_info),
		    ret_reply);
}

int
gpu_guest_get_edid(struct gpu_guest *g, uint32_t scanout, struct gpu_guest_reply *ret_reply)
{
	struct virtio_gpu_cmd_get_edid cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_GET_EDID, 0);
	cmd.scanout = htole32(scanout);
	return send(g, &cmd, sizeof(cmd), NULL, 0, sizeof(struct virtio_gpu_resp_edid), ret_reply);
}

int
gpu_guest_resource_create_2d(struct gpu_guest *g, uint32_t resource_id, uint32_t format,
			     uint32_t width, uint32_t height)
{
	struct virtio_gpu_resource_create_2d cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, 0);
	cmd.resource_id = htole32(resource_id);
	cmd.format = htole32(format);
	cmd.width = htole32(width);
	cmd.height = htole32(height);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_resource_create_3d(struct gpu_guest *g,
			     const struct virtio_gpu_resource_create_3d *params)
{
	struct virtio_gpu_resource_create_3d cmd = *params;

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_3D, le32toh(params->hdr.ctx_id));
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_resource_unref(struct gpu_guest *g, uint32_t resource_id)
{
	struct virtio_gpu_resource_unref cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_UNREF, 0);
	cmd.resource_id = htole32(resource_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_attach_backing(struct gpu_guest *g, uint32_t resource_id,
			 const struct virtio_gpu_mem_entry *entries, uint32_t n)
{
	struct virtio_gpu_resource_attach_backing cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
	cmd.resource_id = htole32(resource_id);
	cmd.nr_entries = htole32(n);
	return send(g, &cmd, sizeof(cmd), entries, (size_t)n * sizeof(*entries),
		    sizeof(struct virtio_gpu_ctrl_hdr), NULL);
}

int
gpu_guest_detach_backing(struct gpu_guest *g, uint32_t resource_id)
{
	struct virtio_gpu_resource_detach_backing cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 0);
	cmd.resource_id = htole32(resource_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

static void
fill_rect(struct virtio_gpu_rect *r, uint32_t x, uint32_t y, uint32_t width, uint32_t height)
{
	r->x = htole32(x);
	r->y = htole32(y);
	r->width = htole32(width);
	r->height = htole32(height);
}

int
gpu_guest_transfer_to_host_2d(struct gpu_guest *g, uint32_t resource_id, uint64_t offset,
			      uint32_t x, uint32_t y, uint32_t width, uint32_t height)
{
	struct virtio_gpu_transfer_to_host_2d cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, 0);
	fill_rect(&cmd.r, x, y, width, height);
	cmd.offset = htole64(offset);
	cmd.resource_id = htole32(resource_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_transfer_3d(struct gpu_guest *g, bool to_host, uint32_t resource_id,
		      const struct virtio_gpu_box *box, uint64_t offset, uint32_t level,
		      uint32_t stride, uint32_t layer_stride)
{
	struct virtio_gpu_transfer_host_3d cmd = {0};

	fill_hdr(g, &cmd.hdr,
		 to_host ? VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D
			 : VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D,
		 0);
	cmd.box = *box;
	cmd.offset = htole64(offset);
	cmd.resource_id = htole32(resource_id);
	cmd.level = htole32(level);
	cmd.stride = htole32(stride);
	cmd.layer_stride = htole32(layer_stride);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_set_scanout(struct gpu_guest *g, uint32_t scanout_id, uint32_t resource_id, uint32_t x,
		      uint32_t y, uint32_t width, uint32_t height)
{
	struct virtio_gpu_set_scanout cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_SET_SCANOUT, 0);
	fill_rect(&cmd.r, x, y, width, height);
	cmd.scanout_id = htole32(scanout_id);
	cmd.resource_id = htole32(resource_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_set_scanout_blob(struct gpu_guest *g, const struct virtio_gpu_set_scanout_blob *params)
{
	struct virtio_gpu_set_scanout_blob cmd = *params;

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_SET_SCANOUT_BLOB, 0);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_resource_flush(struct gpu_guest *g, uint32_t resource_id, uint32_t x, uint32_t y,
			 uint32_t width, uint32_t height)
{
	struct virtio_gpu_resource_flush cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_FLUSH, 0);
	fill_rect(&cmd.r, x, y, width, height);
	cmd.resource_id = htole32(resource_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_assign_uuid(struct gpu_guest *g, uint32_t resource_id, uint8_t ret_uuid[16])
{
	struct virtio_gpu_resource_assign_uuid cmd = {0};
	struct gpu_guest_reply reply;
	int r;

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID, 0);
	cmd.resource_id = htole32(resource_id);
	r = send(g, &cmd, sizeof(cmd), NULL, 0, sizeof(struct virtio_gpu_resp_resource_uuid),
		 &reply);
	if (r == VIRTIO_GPU_RESP_OK_RESOURCE_UUID && ret_uuid != NULL) {
		if (reply.len < sizeof(reply.uuid))
			return -EBADMSG;
		memcpy(ret_uuid, reply.uuid.uuid, 16);
	}
	return r;
}

int
gpu_guest_resource_create_blob(struct gpu_guest *g, uint32_t resource_id, uint32_t blob_mem,
			       uint32_t blob_flags, uint64_t blob_id, uint64_t size,
			       const struct virtio_gpu_mem_entry *entries, uint32_t n)
{
	struct virtio_gpu_resource_create_blob cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0);
	cmd.resource_id = htole32(resource_id);
	cmd.blob_mem = htole32(blob_mem);
	cmd.blob_flags = htole32(blob_flags);
	cmd.nr_entries = htole32(n);
	cmd.blob_id = htole64(blob_id);
	cmd.size = htole64(size);
	return send(g, &cmd, sizeof(cmd), entries, (size_t)n * sizeof(*entries),
		    sizeof(struct virtio_gpu_ctrl_hdr), NULL);
}

int
gpu_guest_map_blob(struct gpu_guest *g, uint32_t resource_id, uint64_t offset,
		   uint32_t *ret_map_info)
{
	struct virtio_gpu_resource_map_blob cmd = {0};
	struct gpu_guest_reply reply;
	int r;

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB, 0);
	cmd.resource_id = htole32(resource_id);
	cmd.offset = htole64(offset);
	r = send(g, &cmd, sizeof(cmd), NULL, 0, sizeof(struct virtio_gpu_resp_map_info), &reply);
	if (r == VIRTIO_GPU_RESP_OK_MAP_INFO && ret_map_info != NULL)
		*ret_map_info = le32toh(reply.map_info.map_info);
	return r;
}

int
gpu_guest_unmap_blob(struct gpu_guest *g, uint32_t resource_id)
{
	struct virtio_gpu_resource_unmap_blob cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB, 0);
	cmd.resource_id = htole32(resource_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_ctx_create(struct gpu_guest *g, uint32_t ctx_id, uint32_t context_init, const char *name)
{
	struct virtio_gpu_ctx_create cmd = {0};
	size_t nlen = name != NULL ? strnlen(name, sizeof(cmd.debug_name)) : 0;

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_CTX_CREATE, ctx_id);
	cmd.nlen = htole32((uint32_t)nlen);
	cmd.context_init = htole32(context_init);
	if (nlen > 0)
		memcpy(cmd.debug_name, name, nlen);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_ctx_destroy(struct gpu_guest *g, uint32_t ctx_id)
{
	struct virtio_gpu_ctx_destroy cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_CTX_DESTROY, ctx_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_ctx_resource(struct gpu_guest *g, bool attach, uint32_t ctx_id, uint32_t resource_id)
{
	struct virtio_gpu_ctx_resource cmd = {0};

	fill_hdr(g, &cmd.hdr,
		 attach ? VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE : VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE,
		 ctx_id);
	cmd.resource_id = htole32(resource_id);
	return simple(g, &cmd, sizeof(cmd), NULL);
}

int
gpu_guest_submit_3d(struct gpu_guest *g, uint32_t ctx_id, const void *cmds, uint32_t size)
{
	struct virtio_gpu_cmd_submit cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_SUBMIT_3D, ctx_id);
	cmd.size = htole32(size);
	return send(g, &cmd, sizeof(cmd), cmds, size, sizeof(struct virtio_gpu_ctrl_hdr), NULL);
}

int
gpu_guest_get_capset_info(struct gpu_guest *g, uint32_t index, struct gpu_guest_reply *ret_reply)
{
	struct virtio_gpu_get_capset_info cmd = {0};

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_GET_CAPSET_INFO, 0);
	cmd.capset_index = htole32(index);
	return send(g, &cmd, sizeof(cmd), NULL, 0, sizeof(struct virtio_gpu_resp_capset_info),
		    ret_reply);
}

int
gpu_guest_get_capset(struct gpu_guest *g, uint32_t id, uint32_t version, void *buf, size_t size)
{
	struct virtio_gpu_get_capset cmd = {0};
	struct virtio_gpu_ctrl_hdr hdr;
	_cleanup_free_ uint8_t *resp = NULL;
	struct iovec in = {.iov_base = &cmd, .iov_len = sizeof(cmd)};
	struct iovec out;
	struct cb_request req = {.in = &in, .n_in = 1, .out = &out, .n_out = 1};
	int r;

	fill_hdr(g, &cmd.hdr, VIRTIO_GPU_CMD_GET_CAPSET, 0);
	cmd.capset_id = htole32(id);
	cmd.capset_version = htole32(version);
	/* virtio_gpu_cmd_get_capset(): one reply buffer, header then the capset */
	if (size > SIZE_MAX - sizeof(hdr))
		return -EINVAL;
	resp = calloc(1, sizeof(hdr) + size);
	if (resp == NULL)
		return -ENOMEM;
	out = (struct iovec){.iov_base = resp, .iov_len = sizeof(hdr) + size};
	r = g->submit(g->userdata, &req);
	if (r < 0)
		return r;
	if ((size_t)r < sizeof(hdr))
		return -EBADMSG;
	memcpy(&hdr, resp, sizeof(hdr));
	if (size > 0)
		memcpy(buf, resp + sizeof(hdr), size);
	return (int)le32toh(hdr.type);
}

static int
cursor(struct gpu_guest *g, uint32_t type, uint32_t scanout_id, uint32_t x, uint32_t y,
       uint32_t resource_id, uint32_t hot_x, uint32_t hot_y)
{
	struct virtio_gpu_update_cursor cmd = {0};

	/* virtio_gpu_cursor_ping(): the cursor queue is never fenced */
	cmd.hdr.type = htole32(type);
	cmd.pos.scanout_id = htole32(scanout_id);
	cmd.pos.x = htole32(x);
	cmd.pos.y = htole32(y);
	cmd.resource_id = htole32(resource_id);
	cmd.hot_x = htole32(hot_x);
	cmd.hot_y = htole32(hot_y);
	return send(g, &cmd, sizeof(cmd), NULL, 0, 0, NULL);
}

int
gpu_guest_update_cursor(struct gpu_guest *g, uint32_t scanout_id, uint32_t x, uint32_t y,
			uint32_t resource_id, uint32_t hot_x, uint32_t hot_y)
{
	return cursor(g, VIRTIO_GPU_CMD_UPDATE_CURSOR, scanout_id, x, y, resource_id, hot_x, hot_y);
}

int
gpu_guest_move_cursor(struct gpu_guest *g, uint32_t scanout_id, uint32_t x, uint32_t y)
{
	return cursor(g, VIRTIO_GPU_CMD_MOVE_CURSOR, scanout_id, x, y, 0, 0, 0);
}
