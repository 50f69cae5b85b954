/* SPDX-License-Identifier: MIT */
#include "protocol.h"

#include "macro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IOCTL(v, k)                                                                                \
	{                                                                                          \
		.code = _IOC_NR(v), .size = _IOC_SIZE(v),                                          \
		.dev_reads = !!(_IOC_DIR(v) & _IOC_WRITE),                                         \
		.dev_writes = !!(_IOC_DIR(v) & _IOC_READ), .kind = (k), .name = #v,                \
	}

/*
 * Every ioctl a stateful decoder answers. The rest (QUERYCAP, DQBUF and DQEVENT, which
 * virtio-media replaces, JPEGCOMP, LOG_STATUS, tuners, standards, ...) are ENOTTY.
 */
static const struct vmd_ioctl_desc ioctls[] = {
	IOCTL(VIDIOC_ENUM_FMT, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_G_FMT, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_S_FMT, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_REQBUFS, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_QUERYBUF, VMD_PAYLOAD_BUFFER),
	IOCTL(VIDIOC_QBUF, VMD_PAYLOAD_BUFFER),
	IOCTL(VIDIOC_EXPBUF, VMD_PAYLOAD_EXPBUF),
	IOCTL(VIDIOC_STREAMON, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_STREAMOFF, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_G_CTRL, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_S_CTRL, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_QUERYCTRL, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_QUERYMENU, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_TRY_FMT, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_G_EXT_CTRLS, VMD_PAYLOAD_EXT_CTRLS),
	IOCTL(VIDIOC_S_EXT_CTRLS, VMD_PAYLOAD_EXT_CTRLS),
	IOCTL(VIDIOC_TRY_EXT_CTRLS, VMD_PAYLOAD_EXT_CTRLS),
	IOCTL(VIDIOC_ENUM_FRAMESIZES, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_ENUM_FRAMEINTERVALS, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_SUBSCRIBE_EVENT, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_UNSUBSCRIBE_EVENT, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_CREATE_BUFS, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_PREPARE_BUF, VMD_PAYLOAD_BUFFER),
	IOCTL(VIDIOC_G_SELECTION, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_S_SELECTION, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_DECODER_CMD, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_TRY_DECODER_CMD, VMD_PAYLOAD_PLAIN),
	IOCTL(VIDIOC_QUERY_EXT_CTRL, VMD_PAYLOAD_PLAIN),
};

const struct vmd_ioctl_desc *
vmd_ioctl_lookup(uint32_t code)
{
	for (size_t i = 0; i < ARRAY_SIZE(ioctls); i++) {
		if (ioctls[i].code == code)
			return &ioctls[i];
	}
	return NULL;
}

/* Reads exactly len bytes at *off of the readable part, advancing *off. */
static int
take(const struct cb_request *req, size_t *off, void *buf, size_t len)
{
	if (iov_to_buf(req->in, req->n_in, *off, buf, len) != len)
		return -EINVAL;
	*off += len;
	return 0;
}

/* Reads sg entries at *off until they cover length bytes. */
static int
take_sg(const struct cb_request *req, size_t *off, uint64_t length, struct guest_sg_entry **sg,
	unsigned *n_sg, unsigned *cap, unsigned *ret_count)
{
	uint64_t covered = 0;
	unsigned count = 0;

	if (length > VMD_MAX_PLANE_LENGTH)
		return -EINVAL;
	while (covered < length) {
		struct virtio_media_sg_entry e;
		int r;

		if (count >= VMD_MAX_SG_PER_PLANE)
			return -EINVAL;
		r = take(req, off, &e, sizeof(e));
		if (r < 0)
			return r;
		if (e.len == 0 || e.start + e.len < e.start)
			return -EINVAL;
		if (*n_sg == *cap) {
			unsigned ncap = *cap ? *cap * 2 : 16;
			struct guest_sg_entry *n = realloc(*sg, ncap * sizeof(**sg));

			if (n == NULL)
				return -ENOMEM;
			*sg = n;
			*cap = ncap;
		}
		(*sg)[*n_sg].gpa = e.start;
		(*sg)[*n_sg].len = e.len;
		(*n_sg)++;
		count++;
		covered += e.len;
	}
	*ret_count = count;
	return 0;
}

static int
parse_buffer(const struct cb_request *req, size_t *off, struct vmd_command *cmd)
{
	struct v4l2_buffer *b = &cmd->payload.buf;
	unsigned n_mem, n_sg = 0, cap = 0;
	int r;

	cmd->multiplanar = V4L2_TYPE_IS_MULTIPLANAR(b->type);
	cmd->saved_ptr = b->m.userptr;
	cmd->saved_memory = b->memory;
	if (cmd->multiplanar) {
		if (b->length == 0 || b->length > VIDEO_MAX_PLANES)
			return -EINVAL;
		cmd->n_planes = b->length;
		r = take(req, off, cmd->planes, cmd->n_planes * sizeof(struct v4l2_plane));
		if (r < 0)
			return r;
		for (unsigned i = 0; i < cmd->n_planes; i++)
			cmd->saved_plane_m[i] = cmd->planes[i].m.userptr;
	}
	n_mem = cmd->multiplanar ? cmd->n_planes : 1;

	switch (b->memory) {
	case VIRTIO_MEDIA_OBJECT:
		/* QUERYBUF carries no UUIDs in: the device reports them out. */
		if (cmd->code == _IOC_NR(VIDIOC_QUERYBUF))
			break;
		cmd->n_uuids = n_mem;
		return take(req, off, cmd->uuids, n_mem * VIRTIO_MEDIA_UUID_SIZE);
	case VIRTIO_MEDIA_SHARED_PAGES:
		if (cmd->code != _IOC_NR(VIDIOC_QBUF) && cmd->code != _IOC_NR(VIDIOC_PREPARE_BUF))
			break;
		for (unsigned i = 0; i < n_mem; i++) {
			uint64_t len = cmd->multiplanar ? cmd->planes[i].length : b->length;

			cmd->sg_first[i] = n_sg;
			r = take_sg(req, off, len, &cmd->sg, &n_sg, &cap, &cmd->sg_count[i]);
			if (r < 0)
				return r;
		}
		break;
	default:
		/* MMAP, or a memory type the decoder refuses with EINVAL itself. */
		break;
	}
	return 0;
}

static int
parse_ioctl(const struct cb_request *req, size_t off, struct vmd_command *cmd)
{
	struct virtio_media_cmd_ioctl hdr;
	int r;

	r = take(req, &off, &hdr, sizeof(hdr));
	if (r < 0)
		return r;
	cmd->session_id = hdr.session_id;
	cmd->code = hdr.code;
	cmd->desc = vmd_ioctl_lookup(hdr.code);
	if (cmd->desc == NULL)
		return -ENOTTY;
	assert(cmd->desc->size <= sizeof(cmd->payload));
	if (!cmd->desc->dev_reads)
		return 0;
	r = take(req, &off, cmd->payload.raw, cmd->desc->size);
	if (r < 0)
		return r;

	switch (cmd->desc->kind) {
	case VMD_PAYLOAD_PLAIN:
	case VMD_PAYLOAD_EXPBUF:
		return 0;
	case VMD_PAYLOAD_BUFFER:
		return parse_buffer(req, &off, cmd);
	case VMD_PAYLOAD_EXT_CTRLS:
		cmd->saved_ptr = (uint64_t)(uintptr_t)cmd->payload.ext_ctrls.controls;
		if (cmd->payload.ext_ctrls.count > VMD_MAX_CTRLS)
			return -EINVAL;
		/*
		 * Controls with a pointer payload (size != 0) are followed by sg entries: no
		 * control of the decoder has one, so those bytes are left unread.
		 */
		return take(req, &off, cmd->ctrls,
			    cmd->payload.ext_ctrls.count * sizeof(struct v4l2_ext_control));
	}
	return 0;
}

int
vmd_command_parse(const struct cb_request *req, struct vmd_command *cmd)
{
	struct virtio_media_cmd_header hdr;
	size_t off = 0;
	int r;

	memset(cmd, 0, sizeof(*cmd));
	if (iov_to_buf(req->in, req->n_in, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
		return -EINVAL;
	cmd->cmd = hdr.cmd;

	switch (hdr.cmd) {
	case VIRTIO_MEDIA_CMD_OPEN:
		return 0;
	case VIRTIO_MEDIA_CMD_CLOSE: {
		struct virtio_media_cmd_close c;

		r = take(req, &off, &c, sizeof(c));
		if (r < 0)
			return r;
		cmd->session_id = c.session_id;
		return 0;
	}
	case VIRTIO_MEDIA_CMD_IOCTL:
		return parse_ioctl(req, 0, cmd);
	case VIRTIO_MEDIA_CMD_MMAP: {
		struct virtio_media_cmd_mmap m;
		uint32_t high = 0;

		r = take(req, &off, &m, sizeof(m));
		if (r < 0)
			return r;
		/* A 64-bit offset: its upper half follows. */
		if (iov_to_buf(req->in, req->n_in, off, &high, sizeof(high)) == sizeof(high) &&
		    high != 0)
			return -EINVAL;
		cmd->session_id = m.session_id;
		cmd->mmap_flags = m.flags;
		cmd->mmap_offset = m.offset;
		if (m.flags & ~VIRTIO_MEDIA_MMAP_FLAG_RW)
			return -EINVAL;
		return 0;
	}
	case VIRTIO_MEDIA_CMD_MUNMAP: {
		struct virtio_media_cmd_munmap m;

		r = take(req, &off, &m, sizeof(m));
		if (r < 0)
			return r;
		cmd->driver_addr = m.driver_addr;
		return 0;
	}
	}
	return -EPROTO;
}

void
vmd_command_finish(struct vmd_command *cmd)
{
	free(cmd->sg);
	cmd->sg = NULL;
}

/* --- Encoding ------------------------------------------------------------------------------ */

static uint32_t
wire_status(int status)
{
	assert(status <= 0);
	return (uint32_t)-status;
}

size_t
vmd_encode_status(const struct cb_request *req, int status)
{
	struct virtio_media_resp_header h = {.status = wire_status(status)};

	if (iov_size(req->out, req->n_out) < sizeof(h))
		return 0;
	return iov_from_buf(req->out, req->n_out, 0, &h, sizeof(h));
}

size_t
vmd_encode_open(const struct cb_request *req, int status, uint32_t session_id)
{
	struct virtio_media_resp_open r = {.hdr.status = wire_status(status)};

	if (status < 0)
		return vmd_encode_status(req, status);
	r.session_id = session_id;
	if (iov_size(req->out, req->n_out) < sizeof(r))
		return vmd_encode_status(req, -EINVAL);
	return iov_from_buf(req->out, req->n_out, 0, &r, sizeof(r));
}

size_t
vmd_encode_mmap(const struct cb_request *req, int status, uint64_t driver_addr, uint64_t len)
{
	struct virtio_media_resp_mmap r = {.hdr.status = wire_status(status)};

	if (status < 0)
		return vmd_encode_status(req, status);
	r.driver_addr = driver_addr;
	r.len = len;
	if (iov_size(req->out, req->n_out) < sizeof(r))
		return vmd_encode_status(req, -EINVAL);
	return iov_from_buf(req->out, req->n_out, 0, &r, sizeof(r));
}

size_t
vmd_encode_ioctl(const struct cb_request *req, int status, struct vmd_command *cmd,
		 bool write_on_error)
{
	size_t off = sizeof(struct virtio_media_resp_header);
	const struct vmd_ioctl_desc *d = cmd->desc;

	if (vmd_encode_status(req, status) == 0)
		return 0;
	if (d == NULL || !d->dev_writes || (status < 0 && !write_on_error))
		return off;

	switch (d->kind) {
	case VMD_PAYLOAD_PLAIN:
		off += iov_from_buf(req->out, req->n_out, off, cmd->payload.raw, d->size);
		break;
	case VMD_PAYLOAD_EXPBUF:
		off += iov_from_buf(req->out, req->n_out, off, cmd->payload.raw, d->size);
		off += iov_from_buf(req->out, req->n_out, off, cmd->expbuf_uuid,
				    sizeof(cmd->expbuf_uuid));
		break;
	case VMD_PAYLOAD_BUFFER: {
		struct v4l2_buffer b = cmd->payload.buf;
		unsigned n_mem = cmd->multiplanar ? cmd->n_planes : 1;

		/* Pointers and the guest's placeholders go back as they came. */
		if (cmd->multiplanar || b.memory != VIRTIO_MEDIA_MMAP)
			b.m.userptr = cmd->saved_ptr;
		off += iov_from_buf(req->out, req->n_out, off, &b, sizeof(b));
		if (cmd->multiplanar) {
			struct v4l2_plane p[VIDEO_MAX_PLANES];

			memcpy(p, cmd->planes, cmd->n_planes * sizeof(p[0]));
			for (unsigned i = 0; i < cmd->n_planes; i++) {
				if (b.memory != VIRTIO_MEDIA_MMAP)
					p[i].m.userptr = cmd->saved_plane_m[i];
			}
			off += iov_from_buf(req->out, req->n_out, off, p,
					    cmd->n_planes * sizeof(p[0]));
		}
		if (b.memory == VIRTIO_MEDIA_OBJECT && cmd->saved_memory == VIRTIO_MEDIA_OBJECT)
			off += iov_from_buf(req->out, req->n_out, off, cmd->uuids,
					    n_mem * VIRTIO_MEDIA_UUID_SIZE);
		break;
	}
	case VMD_PAYLOAD_EXT_CTRLS: {
		struct v4l2_ext_controls c = cmd->payload.ext_ctrls;
		unsigned n = MIN(c.count, VMD_MAX_CTRLS);

		c.controls = (void *)(uintptr_t)cmd->saved_ptr;
		off += iov_from_buf(req->out, req->n_out, off, &c, sizeof(c));
		off += iov_from_buf(req->out, req->n_out, off, cmd->ctrls,
				    n * sizeof(struct v4l2_ext_control));
		break;
	}
	}
	return off;
}

void
vmd_event_error(struct virtio_media_event_error *ev, uint32_t session_id, int error)
{
	memset(ev, 0, sizeof(*ev));
	ev->hdr.event = VIRTIO_MEDIA_EVT_ERROR;
	ev->hdr.session_id = session_id;
	ev->error = (uint32_t)(error < 0 ? -error : error);
}

void
vmd_event_dqbuf(struct virtio_media_event_dqbuf *ev, uint32_t session_id,
		const struct v4l2_buffer *buf, const struct v4l2_plane *planes)
{
	memset(ev, 0, sizeof(*ev));
	ev->hdr.event = VIRTIO_MEDIA_EVT_DQBUF;
	ev->hdr.session_id = session_id;
	ev->buffer = *buf;
	if (V4L2_TYPE_IS_MULTIPLANAR(buf->type)) {
		unsigned n = MIN(buf->length, VIDEO_MAX_PLANES);

		ev->buffer.m.planes = NULL;
		memcpy(ev->planes, planes, n * sizeof(planes[0]));
		for (unsigned i = 0; i < n; i++) {
			if (buf->memory != VIRTIO_MEDIA_MMAP)
				ev->planes[i].m.userptr = 0;
		}
	} else if (buf->memory != VIRTIO_MEDIA_MMAP) {
		ev->buffer.m.userptr = 0;
	}
}

void
vmd_event_event(struct virtio_media_event_event *ev, uint32_t session_id,
		const struct v4l2_event *event)
{
	memset(ev, 0, sizeof(*ev));
	ev->hdr.event = VIRTIO_MEDIA_EVT_EVENT;
	ev->hdr.session_id = session_id;
	ev->event = *event;
}
