/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu control and cursor queue requests: decoding from a descriptor chain
 * (struct cb_request) into validated host structs, and encoding responses.
 *
 * The wire layouts are those of linux/virtio_gpu.h; this file only converts them. The
 * decoder checks everything that can be checked without device state: the request is long
 * enough for its type, the type is known, counts are capped, and the trailing arrays
 * (backing entries, 3D command streams) are present in full. Checks that need the device's
 * state (does the resource exist, is the rectangle inside it) belong to device.c.
 *
 * Like QEMU and the Linux driver, the decoder accepts requests longer than their struct
 * and ignores the excess bytes; the header may be spread over several descriptors.
 */
#pragma once

#include "guest-mem.h"
#include "iov.h"

#include <linux/virtio_gpu.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most backing entries one ATTACH_BACKING or CREATE_BLOB may carry (QEMU uses 16384 too). */
#define GPU_MAX_BACKING_ENTRIES 16384
/* Largest SUBMIT_3D command stream the decoder copies (bytes). */
#define GPU_MAX_SUBMIT_3D_SIZE  (1u << 20)
/* Longest context debug name (the wire field is 64 bytes). */
#define GPU_CTX_NAME_SIZE       64

struct gpu_hdr {
	uint32_t type; /* enum virtio_gpu_ctrl_type */
	uint32_t flags;
	uint64_t fence_id;
	uint32_t ctx_id;
	uint8_t ring_idx;
};

struct gpu_rect {
	uint32_t x, y, width, height;
};

struct gpu_box {
	uint32_t x, y, z, w, h, d;
};

struct gpu_backing {
	uint32_t n_entries;
	struct guest_sg_entry *entries; /* owned by the request; NULL when n_entries is 0 */
};

struct gpu_request {
	struct gpu_hdr hdr;
	union {
		struct {
			uint32_t scanout_id;
		} get_edid;
		struct {
			uint32_t resource_id, format, width, height;
		} create_2d;
		struct {
			uint32_t resource_id; /* UNREF, DETACH_BACKING, ASSIGN_UUID, UNMAP_BLOB,
						 CTX_ATTACH/DETACH_RESOURCE */
		} resource;
		struct {
			struct gpu_rect r;
			uint32_t scanout_id, resource_id;
		} set_scanout;
		struct {
			struct gpu_rect r;
			uint32_t resource_id;
		} flush;
		struct {
			struct gpu_rect r;
			uint64_t offset;
			uint32_t resource_id;
		} transfer_2d;
		struct {
			uint32_t resource_id;
			struct gpu_backing backing;
		} attach_backing;
		struct {
			uint32_t capset_index;
		} get_capset_info;
		struct {
			uint32_t capset_id, capset_version;
		} get_capset;
		struct {
			uint32_t resource_id, blob_mem, blob_flags;
			uint64_t blob_id, size;
			struct gpu_backing backing;
		} create_blob;
		struct {
			struct gpu_rect r;
			uint32_t scanout_id, resource_id, width, height, format;
			uint32_t strides[4], offsets[4];
		} set_scanout_blob;
		struct {
			uint32_t context_init;
			char name[GPU_CTX_NAME_SIZE + 1]; /* NUL-terminated */
		} ctx_create;
		struct {
			uint32_t resource_id, target, format, bind, width, height, depth;
			uint32_t array_size, last_level, nr_samples, flags;
		} create_3d;
		struct {
			struct gpu_box box;
			uint64_t offset;
			uint32_t resource_id, level, stride, layer_stride;
		} transfer_3d;
		struct {
			uint32_t size;
			void *data; /* owned by the request */
		} submit_3d;
		struct {
			uint32_t resource_id;
			uint64_t offset;
		} map_blob;
		struct {
			uint32_t scanout_id, x, y;
			uint32_t resource_id, hot_x, hot_y; /* UPDATE_CURSOR only */
		} cursor;
	};
};

/*
 * Decodes the readable side of req into *ret (zeroed first). Returns 0, or:
 *   -EBADMSG   the request is shorter than its header or its type's struct, or a trailing
 *              array is cut short;
 *   -EOPNOTSUPP the type is not a request virtio-gpu defines;
 *   -E2BIG     a count is above its cap (GPU_MAX_BACKING_ENTRIES, GPU_MAX_SUBMIT_3D_SIZE);
 *   -ENOMEM.
 * On error, ret->hdr holds the header if at least the header could be read (so the reply
 * can still echo the fence), else zeroes. Call gpu_request_finish() in every case.
 */
int gpu_request_decode(const struct cb_request *req, struct gpu_request *ret);
/* Frees what the decoder allocated; the request may be decoded into again. */
void gpu_request_finish(struct gpu_request *request);

/* The size of the request struct of a type (header included), 0 for an unknown type. */
size_t gpu_request_wire_size(uint32_t type);
const char *gpu_cmd_name(uint32_t type);
/* Whether type travels on the cursor queue. */
bool gpu_cmd_is_cursor(uint32_t type);

/* VIRTIO_GPU_RESP_ERR_* for a decoder error (see gpu_request_decode()). */
uint32_t gpu_decode_error_response(int error);

#define GPU_EDID_MAX 1024

struct gpu_response {
	uint32_t type; /* VIRTIO_GPU_RESP_* */
	union {
		struct {
			struct {
				struct gpu_rect r;
				uint32_t enabled, flags;
			} pmodes[VIRTIO_GPU_MAX_SCANOUTS];
		} display_info;
		struct {
			uint32_t size;
			uint8_t edid[GPU_EDID_MAX];
		} edid;
		struct {
			uint8_t uuid[16];
		} uuid;
		struct {
			uint32_t map_info;
		} map_info;
		struct {
			uint32_t capset_id, capset_max_version, capset_max_size;
		} capset_info;
		struct {
			uint32_t size;
			void *data; /* borrowed from whoever filled it */
		} capset;
	};
};

/* Bytes the response of this type takes on the wire, header included. */
size_t gpu_response_wire_size(const struct gpu_response *resp);

/*
 * Writes resp into the writable side of req, with the header derived from the request's
 * header req_hdr as the spec says: with VIRTIO_GPU_FLAG_FENCE, the flag, fence_id and ctx_id
 * are echoed; with VIRTIO_GPU_FLAG_INFO_RING_IDX also ring_idx. req_hdr may be NULL when the
 * request had no readable header. Returns the bytes written, or -EMSGSIZE if the writable side
 * cannot hold the response (nothing useful can then be said to the driver; the caller still
 * completes the descriptor with what was written).
 */
int gpu_response_encode(const struct gpu_hdr *req_hdr, const struct gpu_response *resp,
			const struct cb_request *req);
