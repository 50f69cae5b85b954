/* SPDX-License-Identifier: MIT */
/*
 * A display sink that speaks QEMU's vhost-user-gpu display protocol
 * (docs/interop/vhost-user-gpu.rst) over the socket the frontend hands over with
 * VHOST_USER_GPU_SET_SOCKET: the backend sends requests, the frontend (QEMU) shows them and
 * answers the few that have replies.
 *
 * What is sent:
 *   - GET_PROTOCOL_FEATURES when the socket arrives (the reply is read from the backend's
 *     loop, vgpu_display_dispatch()), then SET_PROTOCOL_FEATURES with DMABUF2 if offered;
 *   - SET_SCANOUT of a resource whose host buffer is a single-plane dma-buf:
 *     DMABUF_SCANOUT (DMABUF_SCANOUT2 with the modifier once DMABUF2 was agreed) with the fd,
 *     and each flush as DMABUF_UPDATE, whose reply is awaited (up to 5 s);
 *   - any other scanout (memfd resources, YUV): SCANOUT with the visible size, and each flush
 *     as UPDATE messages carrying the damaged pixels converted to XRGB8888 (QEMU's
 *     PIXMAN_x8r8g8b8, rows of width x 4 bytes), split into bands of at most 4 MiB. YUV is
 *     converted with BT.601 limited range; protected frames without data become grey;
 *   - a disabled scanout as SCANOUT with a 0x0 size.
 *   - the cursor: a new shape as CURSOR_UPDATE (position, hot spot, the 64x64 ARGB8888
 *     pixels), a move as CURSOR_POS, a hidden cursor (resource 0, a resource that cannot be a
 *     cursor, its resource freed) as CURSOR_POS_HIDE with the last position. None has a
 *     reply. A display socket that arrives while a cursor is shown gets its CURSOR_UPDATE.
 *
 * Every call also goes to an optional inner sink (the PNG writer of a headless run), so the
 * two can be combined. A frontend that sends something malformed, stops reading for 5 s or
 * hangs up loses its display socket only; the device goes on.
 *
 * Single-threaded: runs on the vhost-user backend's dispatch thread.
 */
#pragma once

#include "device.h"
#include "sink.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* vhost-user-gpu protocol features (GET/SET_PROTOCOL_FEATURES) */
#define VGPU_PROTOCOL_F_EDID    0
#define VGPU_PROTOCOL_F_DMABUF2 1

/* Requests (backend -> frontend). */
enum vgpu_request {
	VGPU_REQ_NONE = 0,
	VGPU_REQ_GET_PROTOCOL_FEATURES = 1,
	VGPU_REQ_SET_PROTOCOL_FEATURES = 2,
	VGPU_REQ_GET_DISPLAY_INFO = 3,
	VGPU_REQ_CURSOR_POS = 4,
	VGPU_REQ_CURSOR_POS_HIDE = 5,
	VGPU_REQ_CURSOR_UPDATE = 6,
	VGPU_REQ_SCANOUT = 7,
	VGPU_REQ_UPDATE = 8,
	VGPU_REQ_DMABUF_SCANOUT = 9,
	VGPU_REQ_DMABUF_UPDATE = 10,
	VGPU_REQ_GET_EDID = 11,
	VGPU_REQ_DMABUF_SCANOUT2 = 12,
};

#define VGPU_MSG_FLAG_REPLY (1u << 2)

/* Wire structs, native byte order, packed as QEMU declares them. */
struct vgpu_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes */
};
static_assert(sizeof(struct vgpu_msg_hdr) == 12, "vhost-user-gpu header");

struct vgpu_scanout {
	uint32_t scanout_id, width, height;
};
static_assert(sizeof(struct vgpu_scanout) == 12, "VhostUserGpuScanout");

/* Followed by width x height x 4 bytes of XRGB8888. */
struct vgpu_update {
	uint32_t scanout_id, x, y, width, height;
};
static_assert(sizeof(struct vgpu_update) == 20, "VhostUserGpuUpdate");

struct vgpu_dmabuf_scanout {
	uint32_t scanout_id, x, y, width, height;
	uint32_t fd_width, fd_height, fd_stride, fd_flags;
	int32_t fd_drm_fourcc;
};
static_assert(sizeof(struct vgpu_dmabuf_scanout) == 40, "VhostUserGpuDMABUFScanout");

struct vgpu_dmabuf_scanout2 {
	struct vgpu_dmabuf_scanout dmabuf_scanout;
	uint64_t modifier;
} __attribute__((packed));
static_assert(sizeof(struct vgpu_dmabuf_scanout2) == 48, "VhostUserGpuDMABUFScanout2");
static_assert(offsetof(struct vgpu_dmabuf_scanout2, modifier) == 40, "modifier after the fields");
static_assert(offsetof(struct vgpu_dmabuf_scanout, fd_drm_fourcc) == 36, "fourcc last");

struct vgpu_cursor_pos {
	uint32_t scanout_id, x, y;
};
static_assert(sizeof(struct vgpu_cursor_pos) == 12, "VhostUserGpuCursorPos");

/* data: GPU_CURSOR_SIZE x GPU_CURSOR_SIZE pixels, ARGB8888 (QEMU's QEMUCursor data). */
struct vgpu_cursor_update {
	struct vgpu_cursor_pos pos;
	uint32_t hot_x, hot_y;
	uint32_t data[GPU_CURSOR_SIZE * GPU_CURSOR_SIZE];
};
static_assert(sizeof(struct vgpu_cursor_update) == 12 + 8 + 64 * 64 * 4,
	      "VhostUserGpuCursorUpdate");
static_assert(offsetof(struct vgpu_cursor_update, hot_x) == 12, "hot spot after the position");
static_assert(offsetof(struct vgpu_cursor_update, hot_y) == 16, "hot_y after hot_x");
static_assert(offsetof(struct vgpu_cursor_update, data) == 20, "pixels after the hot spot");

/* Largest UPDATE payload sent at once; bigger damage is split into bands of rows. */
#define VGPU_MAX_UPDATE_BYTES (4u << 20)

/*
 * A new display sink. inner (borrowed, may be NULL) also gets every call. The sink is
 * destroyed with gpu_sink_destroy(), which closes the display socket and leaves inner alone.
 */
int vgpu_display_new(struct gpu_sink *inner, struct gpu_sink **ret_sink);
/* The device whose resources the sink shows (borrowed; needed for dma-buf scanouts). */
void vgpu_display_set_device(struct gpu_sink *sink, struct gpu_device *device);
/*
 * Takes the display socket fd (taken, even on failure; any previous one is closed) and
 * sends GET_PROTOCOL_FEATURES and the scanouts currently enabled. -errno if that failed (the
 * socket is then closed).
 */
int vgpu_display_set_socket(struct gpu_sink *sink, int fd);
/*
 * Called just before the display socket is closed, whatever the reason (a newer socket, an
 * error, vgpu_display_close()), so that the embedder can stop watching fd first.
 */
void vgpu_display_set_closing_callback(struct gpu_sink *sink, void (*fn)(void *userdata, int fd),
				       void *userdata);
/* The display socket to watch for replies (borrowed), or -1. */
int vgpu_display_get_fd(struct gpu_sink *sink);
/*
 * Reads what the frontend sent (when the fd is readable). 0, or a negative errno after
 * which the socket was closed (-ECONNRESET: hang-up; -EBADMSG: malformed).
 */
int vgpu_display_dispatch(struct gpu_sink *sink);
/* Closes the display socket (the vhost-user connection ended). */
void vgpu_display_close(struct gpu_sink *sink);
/* Protocol features agreed with the frontend (0 before its reply). */
uint64_t vgpu_display_protocol_features(struct gpu_sink *sink);
/* True once the frontend answered GET_PROTOCOL_FEATURES on the current socket. */
bool vgpu_display_features_known(struct gpu_sink *sink);
