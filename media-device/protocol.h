/* SPDX-License-Identifier: MIT */
/*
 * The virtio-media request parser and response encoder. Parsing turns one commandq request
 * (struct cb_request: the readable and writable byte ranges of a descriptor chain) into a
 * validated struct vmd_command; nothing in this file acts on a command, so it can be fuzzed
 * on its own (media-device/fuzz-request.c).
 *
 * What the parser guarantees for a successful IOCTL parse:
 *   - the code is one the device knows (desc != NULL), else -ENOTTY;
 *   - the readable part holds the whole payload for _IOW/_IOWR ioctls (else -EINVAL);
 *   - for v4l2_buffer payloads of a multi-planar type, 1 <= length <= VIDEO_MAX_PLANES and
 *     the planes follow; OBJECT buffers are followed by one UUID per plane; SHARED_PAGES
 *     buffers of QBUF/PREPARE_BUF by sg lists covering each plane's length, with at most
 *     VMD_MAX_SG_PER_PLANE entries per plane and VMD_MAX_PLANE_LENGTH bytes per plane;
 *   - for v4l2_ext_controls payloads, count <= VMD_MAX_CTRLS and the controls follow.
 * Pointer fields the guest sent are saved, and the encoder writes them back unchanged.
 */
#pragma once

#include "guest-mem.h"
#include "iov.h"
#include "virtio-media.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caps on what a guest may describe in one request. */
#define VMD_MAX_CTRLS        64           /* v4l2_ext_controls.count */
#define VMD_MAX_SG_PER_PLANE 16384        /* 64 MiB in 4 KiB pages */
#define VMD_MAX_PLANE_LENGTH (256u << 20) /* bytes of one SHARED_PAGES plane */
#define VMD_MAX_PAYLOAD      256          /* the largest V4L2 payload a decoder uses */

enum vmd_payload_kind {
	VMD_PAYLOAD_PLAIN,     /* a fixed-size struct */
	VMD_PAYLOAD_BUFFER,    /* v4l2_buffer, planes and memory trailer follow */
	VMD_PAYLOAD_EXT_CTRLS, /* v4l2_ext_controls, controls follow */
	VMD_PAYLOAD_EXPBUF,    /* v4l2_exportbuffer, a UUID follows in the response */
};

struct vmd_ioctl_desc {
	uint32_t code;   /* _IOC_NR */
	uint32_t size;   /* payload bytes (_IOC_SIZE) */
	bool dev_reads;  /* _IOC_WRITE: the payload follows the command */
	bool dev_writes; /* _IOC_READ: the payload follows the response */
	enum vmd_payload_kind kind;
	const char *name;
};

/* The description of ioctl code, or NULL for one the device does not implement (ENOTTY). */
const struct vmd_ioctl_desc *vmd_ioctl_lookup(uint32_t code);

union vmd_payload {
	uint8_t raw[VMD_MAX_PAYLOAD];
	int32_t i32;
	struct v4l2_fmtdesc fmtdesc;
	struct v4l2_format fmt;
	struct v4l2_requestbuffers reqbufs;
	struct v4l2_buffer buf;
	struct v4l2_exportbuffer expbuf;
	struct v4l2_control ctrl;
	struct v4l2_queryctrl queryctrl;
	struct v4l2_query_ext_ctrl query_ext_ctrl;
	struct v4l2_querymenu querymenu;
	struct v4l2_ext_controls ext_ctrls;
	struct v4l2_frmsizeenum frmsize;
	struct v4l2_frmivalenum frmival;
	struct v4l2_event_subscription evsub;
	struct v4l2_create_buffers create;
	struct v4l2_selection sel;
	struct v4l2_decoder_cmd deccmd;
};

struct vmd_command {
	enum virtio_media_cmd cmd;
	uint32_t session_id; /* CLOSE, IOCTL, MMAP */

	/* MMAP */
	uint32_t mmap_flags;
	uint32_t mmap_offset;
	/* MUNMAP */
	uint64_t driver_addr;

	/* IOCTL */
	uint32_t code;
	const struct vmd_ioctl_desc *desc;
	union vmd_payload payload;
	/* VMD_PAYLOAD_BUFFER */
	bool multiplanar;
	unsigned n_planes; /* planes on the wire (multi-planar types only) */
	struct v4l2_plane planes[VIDEO_MAX_PLANES];
	unsigned n_uuids; /* OBJECT: one per plane (one for single-planar types) */
	uint8_t uuids[VIDEO_MAX_PLANES][VIRTIO_MEDIA_UUID_SIZE];
	struct guest_sg_entry *sg; /* SHARED_PAGES of QBUF/PREPARE_BUF, owned */
	unsigned sg_first[VIDEO_MAX_PLANES];
	unsigned sg_count[VIDEO_MAX_PLANES];
	/* VMD_PAYLOAD_EXT_CTRLS */
	struct v4l2_ext_control ctrls[VMD_MAX_CTRLS];
	/* VMD_PAYLOAD_EXPBUF: written by the device */
	uint8_t expbuf_uuid[VIRTIO_MEDIA_UUID_SIZE];

	/* The guest's values of pointer fields, written back unchanged. */
	uint64_t saved_ptr;
	uint64_t saved_plane_m[VIDEO_MAX_PLANES];
	uint32_t saved_memory;
};

/*
 * Parses one commandq request into cmd (zeroed first; release with vmd_command_finish()
 * whatever the result). On failure cmd->cmd and cmd->desc say how far parsing went, so the
 * caller can still answer: -EINVAL for a request too short or malformed, -ENOTTY for an
 * ioctl code the device does not implement, -EPROTO for an unknown command.
 */
int vmd_command_parse(const struct cb_request *req, struct vmd_command *cmd);
void vmd_command_finish(struct vmd_command *cmd);

/*
 * Response encoders. Each writes into the writable part of req and returns the number of
 * bytes written (the used length); status is 0 or a negative errno, put on the wire as a
 * positive one. A writable part too small for the header gets nothing (0).
 */
size_t vmd_encode_status(const struct cb_request *req, int status);
size_t vmd_encode_open(const struct cb_request *req, int status, uint32_t session_id);
size_t vmd_encode_mmap(const struct cb_request *req, int status, uint64_t driver_addr,
		       uint64_t len);
/* Header, then (on success, or always for writes_on_error) the payload and its trailers. */
size_t vmd_encode_ioctl(const struct cb_request *req, int status, struct vmd_command *cmd,
			bool write_on_error);

/* Event encoders: fill the caller's struct (zeroing it first). */
void vmd_event_error(struct virtio_media_event_error *ev, uint32_t session_id, int error);
/* buf's and planes' pointer fields are cleared; planes used for multi-planar types. */
void vmd_event_dqbuf(struct virtio_media_event_dqbuf *ev, uint32_t session_id,
		     const struct v4l2_buffer *buf, const struct v4l2_plane *planes);
void vmd_event_event(struct virtio_media_event_event *ev, uint32_t session_id,
		     const struct v4l2_event *event);
