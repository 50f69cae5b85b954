/* SPDX-License-Identifier: MIT */
/*
 * The guest side of virtio-gpu's control and cursor queues: builds requests exactly as the
 * Linux driver does (drivers/gpu/drm/virtio/virtgpu_vq.c) and decodes the replies.
 *
 * Descriptor layout, as in virtio_gpu_queue_ctrl_sgs(): one device-readable descriptor with
 * the command struct, a second device-readable one with the trailing data when there is
 * some (the mem entries of ATTACH_BACKING and CREATE_BLOB, the command stream of
 * SUBMIT_3D), then one device-writable descriptor sized for the reply (a bare header for
 * commands without reply data). Fenced requests carry VIRTIO_GPU_FLAG_FENCE and a fence id
 * that grows by one each time, as virtio_gpu_fence_emit() does; with a ring index set,
 * VIRTIO_GPU_FLAG_INFO_RING_IDX too.
 *
 * The transport is a callback: the tests call the device core directly; a guest tool can
 * hand the chain to a real virtqueue. The library keeps no device state of its own.
 *
 * Every request function returns the reply's type (VIRTIO_GPU_RESP_*, > 0) or a negative
 * errno when the transport failed or the reply was malformed. Replies with data are
 * decoded into *ret_reply when it is not NULL.
 */
#pragma once

#include "iov.h"

#include <linux/virtio_gpu.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gpu_guest;

/*
 * Sends req (readable side filled in, writable side to fill) and returns once the device
 * has answered: the number of bytes it wrote, or a negative errno.
 */
typedef int (*gpu_guest_submit_fn)(void *userdata, const struct cb_request *req);

struct gpu_guest_reply {
	struct virtio_gpu_ctrl_hdr hdr; /* as received (little-endian) */
	size_t len;                     /* bytes the device wrote */
	union {
		struct virtio_gpu_resp_display_info display_info;
		struct virtio_gpu_resp_edid edid;
		struct virtio_gpu_resp_resource_uuid uuid;
		struct virtio_gpu_resp_map_info map_info;
		struct virtio_gpu_resp_capset_info capset_info;
	};
};

int gpu_guest_new(gpu_guest_submit_fn submit, void *userdata, struct gpu_guest **ret_guest);
void gpu_guest_free(struct gpu_guest *guest);

/*
 * From now on, fence every request (fenced = true) or none; ctx_id and ring_idx go into
 * fenced requests' headers (ring_idx < 0: no VIRTIO_GPU_FLAG_INFO_RING_IDX).
 */
void gpu_guest_set_fence(struct gpu_guest *guest, bool fenced, uint32_t ctx_id, int ring_idx);
/* The fence id the last fenced request carried (0 if none yet). */
uint64_t gpu_guest_last_fence(const struct gpu_guest *guest);

/* Splits [gpa, gpa + size) into entries of at most page bytes, the way a guest's sg table
 * of pinned pages looks. Returns the number of entries, or -E2BIG if more than max. */
int gpu_guest_backing_pages(uint64_t gpa, uint64_t size, uint32_t page,
			    struct virtio_gpu_mem_entry *ret_entries, unsigned max);

int gpu_guest_get_display_info(struct gpu_guest *g, struct gpu_guest_reply *ret_reply);
int gpu_guest_get_edid(struct gpu_guest *g, uint32_t scanout, struct gpu_guest_reply *ret_reply);
int gpu_guest_resource_create_2d(struct gpu_guest *g, uint32_t resource_id, uint32_t format,
				 uint32_t width, uint32_t height);
/*
 * gpu_guest_resource_create_3d() and gpu_guest_set_scanout_blob() take the wire struct
 * (little-endian fields) as the caller filled it; the header is filled in here (the
 * caller's hdr.ctx_id is kept for CREATE_3D).
 */
int gpu_guest_resource_create_3d(struct gpu_guest *g,
				 const struct virtio_gpu_resource_create_3d *params);
int gpu_guest_resource_unref(struct gpu_guest *g, uint32_t resource_id);
int gpu_guest_attach_backing(struct gpu_guest *g, uint32_t resource_id,
			     const struct virtio_gpu_mem_entry *entries, uint32_t n);
int gpu_guest_detach_backing(struct gpu_guest *g, uint32_t resource_id);
int gpu_guest_transfer_to_host_2d(struct gpu_guest *g, uint32_t resource_id, uint64_t offset,
				  uint32_t x, uint32_t y, uint32_t width, uint32_t height);
int gpu_guest_transfer_3d(struct gpu_guest *g, bool to_host, uint32_t resource_id,
			  const struct virtio_gpu_box *box, uint64_t offset, uint32_t level,
			  uint32_t stride, uint32_t layer_stride);
int gpu_guest_set_scanout(struct gpu_guest *g, uint32_t scanout_id, uint32_t resource_id,
			  uint32_t x, uint32_t y, uint32_t width, uint32_t height);
int gpu_guest_set_scanout_blob(struct gpu_guest *g, const struct virtio_gpu_set_scanout_blob *cmd);
int gpu_guest_resource_flush(struct gpu_guest *g, uint32_t resource_id, uint32_t x, uint32_t y,
			     uint32_t width, uint32_t height);
int gpu_guest_assign_uuid(struct gpu_guest *g, uint32_t resource_id, uint8_t ret_uuid[16]);
int gpu_guest_resource_create_blob(struct gpu_guest *g, uint32_t resource_id, uint32_t blob_mem,
				   uint32_t blob_flags, uint64_t blob_id, uint64_t size,
				   const struct virtio_gpu_mem_entry *entries, uint32_t n);
int gpu_guest_map_blob(struct gpu_guest *g, uint32_t resource_id, uint64_t offset,
		       uint32_t *ret_map_info);
int gpu_guest_unmap_blob(struct gpu_guest *g, uint32_t resource_id);
int gpu_guest_ctx_create(struct gpu_guest *g, uint32_t ctx_id, uint32_t context_init,
			 const char *name);
int gpu_guest_ctx_destroy(struct gpu_guest *g, uint32_t ctx_id);
int gpu_guest_ctx_resource(struct gpu_guest *g, bool attach, uint32_t ctx_id, uint32_t resource_id);
int gpu_guest_submit_3d(struct gpu_guest *g, uint32_t ctx_id, const void *cmds, uint32_t size);
int gpu_guest_get_capset_info(struct gpu_guest *g, uint32_t index,
			      struct gpu_guest_reply *ret_reply);
/* GET_CAPSET: the capset's bytes (up to size) go to buf; returns the reply type. */
int gpu_guest_get_capset(struct gpu_guest *g, uint32_t id, uint32_t version, void *buf,
			 size_t size);
/* Cursor queue: UPDATE_CURSOR (resource_id 0 hides it) and MOVE_CURSOR. */
int gpu_guest_update_cursor(struct gpu_guest *g, uint32_t scanout_id, uint32_t x, uint32_t y,
			    uint32_t resource_id, uint32_t hot_x, uint32_t hot_y);
int gpu_guest_move_cursor(struct gpu_guest *g, uint32_t scanout_id, uint32_t x, uint32_t y);

/*
 * Sends any command bytes as they are (hostile or malformed requests, for tests), with
 * reply room of resp_size bytes (at most sizeof(struct gpu_guest_reply) is kept).
 */
int gpu_guest_send_raw(struct gpu_guest *g, const void *cmd, size_t cmd_size, const void *data,
		       size_t data_size, size_t resp_size, struct gpu_guest_reply *ret_reply);
