/* SPDX-License-Identifier: MIT */
/*
 * virtio-media wire format (virtio 1.4, device id 48), written from the specification:
 * no header on Debian 12 defines it.
 *
 * Everything on the wire is little-endian and every reserved field is zero. The V4L2
 * payloads carried by VIRTIO_MEDIA_CMD_IOCTL are the 64-bit layouts of <linux/videodev2.h>;
 * on the 64-bit little-endian hosts crossbuf supports they equal the host structs, which the
 * asserts at the end of this file check, so the payloads are read into the videodev2.h
 * structs directly. Pointer members inside them (v4l2_buffer.m.planes,
 * v4l2_ext_controls.controls, the userptr fields) are meaningless on the host: the pointed
 * data follows the payload in the descriptor chain (see protocol.h).
 */
#pragma once

#include <assert.h>
#include <linux/videodev2.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_MEDIA 48

/* Virtqueues. */
#define VIRTIO_MEDIA_COMMANDQ 0
#define VIRTIO_MEDIA_EVENTQ   1

/* The shared memory region (virtio shm id) that holds the MMAP buffers. */
#define VIRTIO_MEDIA_SHM_MMAP 0

/* --- Configuration space ------------------------------------------------------------------ */

#define VIRTIO_MEDIA_CARD_SIZE 32

struct virtio_media_config {
	uint32_t device_caps; /* V4L2_CAP_* of the device node (v4l2_capability.device_caps) */
	uint32_t device_type; /* enum vfl_devnode_type: 0 for a video node */
	uint8_t card[VIRTIO_MEDIA_CARD_SIZE]; /* UTF-8, NUL-terminated unless all 32 are used */
};

/* --- Commands (commandq) ------------------------------------------------------------------ */

enum virtio_media_cmd {
	VIRTIO_MEDIA_CMD_OPEN = 1,
	VIRTIO_MEDIA_CMD_CLOSE = 2,
	VIRTIO_MEDIA_CMD_IOCTL = 3,
	VIRTIO_MEDIA_CMD_MMAP = 4,
	VIRTIO_MEDIA_CMD_MUNMAP = 5,
};

struct virtio_media_cmd_header {
	uint32_t cmd; /* enum virtio_media_cmd */
	uint32_t reserved;
};

struct virtio_media_resp_header {
	uint32_t status; /* 0 or a positive Linux errno */
	uint32_t reserved;
};

struct virtio_media_cmd_open {
	struct virtio_media_cmd_header hdr;
};

struct virtio_media_resp_open {
	struct virtio_media_resp_header hdr;
	uint32_t session_id;
	uint32_t reserved;
};

/* CLOSE has no response: the device returns the chain with nothing written. */
struct virtio_media_cmd_close {
	struct virtio_media_cmd_header hdr;
	uint32_t session_id;
	uint32_t reserved;
};

/* Followed, in the readable part, by the payload of _IOW and _IOWR ioctls. */
struct virtio_media_cmd_ioctl {
	struct virtio_media_cmd_header hdr;
	uint32_t session_id;
	uint32_t code; /* _IOC_NR() of the VIDIOC_* value */
};

/* Followed, in the writable part, by the payload of _IOR and _IOWR ioctls. */
struct virtio_media_resp_ioctl {
	struct virtio_media_resp_header hdr;
};

#define VIRTIO_MEDIA_MMAP_FLAG_RW (1u << 0)

/*
 * The Linux driver sends a 32-bit offset (20 bytes). Revisions of the specification text
 * show a 64-bit one (24 bytes); being little-endian, both put the low 32 bits at byte 16,
 * so the device accepts either length (and refuses a non-zero upper half).
 */
struct virtio_media_cmd_mmap {
	struct virtio_media_cmd_header hdr;
	uint32_t session_id;
	uint32_t flags;  /* VIRTIO_MEDIA_MMAP_FLAG_* */
	uint32_t offset; /* v4l2_plane.m.mem_offset from QUERYBUF */
};

struct virtio_media_resp_mmap {
	struct virtio_media_resp_header hdr;
	uint64_t driver_addr; /* offset of the mapping in shared memory region 0 */
	uint64_t len;
};

struct virtio_media_cmd_munmap {
	struct virtio_media_cmd_header hdr;
	uint64_t driver_addr;
};

struct virtio_media_resp_munmap {
	struct virtio_media_resp_header hdr;
};

/* --- Memory types ------------------------------------------------------------------------- */

/* The values of enum v4l2_memory whose slots virtio-media reuses. */
enum virtio_media_memory {
	VIRTIO_MEDIA_MMAP = V4L2_MEMORY_MMAP,            /* 1: device-allocated */
	VIRTIO_MEDIA_SHARED_PAGES = V4L2_MEMORY_USERPTR, /* 2: guest scatter-gather lists */
	VIRTIO_MEDIA_OBJECT = V4L2_MEMORY_DMABUF,        /* 4: virtio objects (UUIDs) */
};

/*
 * One guest-physical range of a SHARED_PAGES buffer. A buffer (or each plane of a
 * multi-planar one) is followed in the readable part by as many entries as needed to cover
 * its length; the entries never appear in the writable part.
 */
struct virtio_media_sg_entry {
	uint64_t start;
	uint32_t len;
	uint32_t reserved;
};

#define VIRTIO_MEDIA_UUID_SIZE 16

/* --- Events (eventq) ---------------------------------------------------------------------- */

enum virtio_media_evt {
	VIRTIO_MEDIA_EVT_ERROR = 0,
	VIRTIO_MEDIA_EVT_DQBUF = 1,
	VIRTIO_MEDIA_EVT_EVENT = 2,
};

struct virtio_media_event_header {
	uint32_t event; /* enum virtio_media_evt */
	uint32_t session_id;
};

/* The session is dead: the driver must CLOSE it. */
struct virtio_media_event_error {
	struct virtio_media_event_header hdr;
	uint32_t error; /* positive errno */
	uint32_t reserved;
};

/* One finished buffer (an implicit DQBUF). Pointer fields are zeroed by the device. */
struct virtio_media_event_dqbuf {
	struct virtio_media_event_header hdr;
	struct v4l2_buffer buffer;
	struct v4l2_plane planes[VIDEO_MAX_PLANES];
};

/* A subscribed V4L2 event (an implicit DQEVENT). */
struct virtio_media_event_event {
	struct virtio_media_event_header hdr;
	struct v4l2_event event;
};

/* The largest event: what every eventq buffer must hold (the Linux driver's sizing). */
#define VIRTIO_MEDIA_EVENT_MAX_SIZE sizeof(struct virtio_media_event_dqbuf)

/* --- Layout checks ------------------------------------------------------------------------ */

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	      "virtio-media payloads are read in place: little-endian hosts only");
static_assert(sizeof(void *) == 8, "virtio-media payloads are the 64-bit V4L2 layouts");

static_assert(sizeof(struct virtio_media_config) == 40, "config space");
static_assert(offsetof(struct virtio_media_config, device_type) == 4, "config space");
static_assert(offsetof(struct virtio_media_config, card) == 8, "config space");

static_assert(sizeof(struct virtio_media_cmd_header) == 8, "cmd header");
static_assert(sizeof(struct virtio_media_resp_header) == 8, "resp header");
static_assert(sizeof(struct virtio_media_cmd_open) == 8, "OPEN");
static_assert(sizeof(struct virtio_media_resp_open) == 16, "OPEN response");
static_assert(offsetof(struct virtio_media_resp_open, session_id) == 8, "OPEN response");
static_assert(sizeof(struct virtio_media_cmd_close) == 16, "CLOSE");
static_assert(offsetof(struct virtio_media_cmd_close, session_id) == 8, "CLOSE");
static_assert(sizeof(struct virtio_media_cmd_ioctl) == 16, "IOCTL");
static_assert(offsetof(struct virtio_media_cmd_ioctl, session_id) == 8, "IOCTL");
static_assert(offsetof(struct virtio_media_cmd_ioctl, code) == 12, "IOCTL");
static_assert(sizeof(struct virtio_media_resp_ioctl) == 8, "IOCTL response");
static_assert(sizeof(struct virtio_media_cmd_mmap) == 20, "MMAP");
static_assert(offsetof(struct virtio_media_cmd_mmap, session_id) == 8, "MMAP");
static_assert(offsetof(struct virtio_media_cmd_mmap, flags) == 12, "MMAP");
static_assert(offsetof(struct virtio_media_cmd_mmap, offset) == 16, "MMAP");
static_assert(sizeof(struct virtio_media_resp_mmap) == 24, "MMAP response");
static_assert(offsetof(struct virtio_media_resp_mmap, driver_addr) == 8, "MMAP response");
static_assert(offsetof(struct virtio_media_resp_mmap, len) == 16, "MMAP response");
static_assert(sizeof(struct virtio_media_cmd_munmap) == 16, "MUNMAP");
static_assert(offsetof(struct virtio_media_cmd_munmap, driver_addr) == 8, "MUNMAP");
static_assert(sizeof(struct virtio_media_resp_munmap) == 8, "MUNMAP response");

static_assert(sizeof(struct virtio_media_sg_entry) == 16, "sg entry");
static_assert(offsetof(struct virtio_media_sg_entry, len) == 8, "sg entry");

static_assert(sizeof(struct virtio_media_event_header) == 8, "event header");
static_assert(sizeof(struct virtio_media_event_error) == 16, "ERROR event");
static_assert(offsetof(struct virtio_media_event_error, error) == 8, "ERROR event");
static_assert(sizeof(struct virtio_media_event_dqbuf) == 608, "DQBUF event");
static_assert(offsetof(struct virtio_media_event_dqbuf, buffer) == 8, "DQBUF event");
static_assert(offsetof(struct virtio_media_event_dqbuf, planes) == 96, "DQBUF event");
static_assert(sizeof(struct virtio_media_event_event) == 144, "EVENT event");
static_assert(offsetof(struct virtio_media_event_event, event) == 8, "EVENT event");

/* The 64-bit V4L2 layouts (protocol-facts §2) equal the host's. */
static_assert(sizeof(struct v4l2_buffer) == 88, "v4l2_buffer");
static_assert(offsetof(struct v4l2_buffer, timestamp) == 24, "v4l2_buffer");
static_assert(offsetof(struct v4l2_buffer, m) == 64, "v4l2_buffer");
static_assert(offsetof(struct v4l2_buffer, length) == 72, "v4l2_buffer");
static_assert(sizeof(struct v4l2_plane) == 64, "v4l2_plane");
static_assert(offsetof(struct v4l2_plane, m) == 8, "v4l2_plane");
static_assert(offsetof(struct v4l2_plane, data_offset) == 16, "v4l2_plane");
static_assert(sizeof(struct v4l2_format) == 208, "v4l2_format");
static_assert(offsetof(struct v4l2_format, fmt) == 8, "v4l2_format");
static_assert(sizeof(struct v4l2_pix_format_mplane) == 192, "v4l2_pix_format_mplane");
static_assert(sizeof(struct v4l2_event) == 136, "v4l2_event");
static_assert(offsetof(struct v4l2_event, u) == 8, "v4l2_event");
static_assert(offsetof(struct v4l2_event, timestamp) == 80, "v4l2_event");
static_assert(sizeof(struct v4l2_exportbuffer) == 64, "v4l2_exportbuffer");
static_assert(sizeof(struct v4l2_decoder_cmd) == 72, "v4l2_decoder_cmd");
static_assert(sizeof(struct v4l2_requestbuffers) == 20, "v4l2_requestbuffers");
static_assert(sizeof(struct v4l2_create_buffers) == 256, "v4l2_create_buffers");
static_assert(offsetof(struct v4l2_create_buffers, format) == 16, "v4l2_create_buffers");
static_assert(sizeof(struct v4l2_selection) == 64, "v4l2_selection");
static_assert(sizeof(struct v4l2_event_subscription) == 32, "v4l2_event_subscription");
static_assert(sizeof(struct v4l2_ext_controls) == 32, "v4l2_ext_controls");
static_assert(offsetof(struct v4l2_ext_controls, count) == 4, "v4l2_ext_controls");
static_assert(offsetof(struct v4l2_ext_controls, controls) == 24, "v4l2_ext_controls");
static_assert(sizeof(struct v4l2_ext_control) == 20, "v4l2_ext_control");
static_assert(offsetof(struct v4l2_ext_control, value) == 12, "v4l2_ext_control");
static_assert(sizeof(struct v4l2_fmtdesc) == 64, "v4l2_fmtdesc");
static_assert(sizeof(struct v4l2_frmsizeenum) == 44, "v4l2_frmsizeenum");
static_assert(sizeof(struct v4l2_frmivalenum) == 52, "v4l2_frmivalenum");
static_assert(sizeof(struct v4l2_control) == 8, "v4l2_control");
static_assert(sizeof(struct v4l2_queryctrl) == 68, "v4l2_queryctrl");
static_assert(sizeof(struct v4l2_query_ext_ctrl) == 232, "v4l2_query_ext_ctrl");
static_assert(sizeof(struct v4l2_querymenu) == 44, "v4l2_querymenu");
