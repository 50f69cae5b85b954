/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user-gpu display protocol as a gpu_sink (see vhost-gpu-display.h). Messages are
 * written whole with a bounded wait; the frontend's replies are read header first, checked
 * (reply flag, expected request, exact size) and anything else drops the display socket.
 */
#include "vhost-gpu-display.h"

#include "macro.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 5000
#ifndef DMA_BUF_MAGIC
#define DMA_BUF_MAGIC 0x444d4142
#endif

struct scanout_state {
	bool enabled;
	bool dmabuf;
	uint32_t resource_id;
	struct gpu_rect src;
};

/* The cursor of a scanout as last told, to be sent again to a later display socket. */
struct cursor_state {
	bool visible;
	bool has_image;
	struct vgpu_cursor_update msg; /* position, hot spot and shape */
};

struct vgpu_display {
	struct gpu_sink base;
	struct gpu_sink *inner;
	struct gpu_device *device;
	int fd;
	bool features_asked; /* GET_PROTOCOL_FEATURES sent, reply pending */
	bool features_known; /* its reply came */
	uint64_t protocol_features;
	void (*closing)(void *userdata, int fd);
	void *closing_userdata;
	struct scanout_state scanouts[VIRTIO_GPU_MAX_SCANOUTS];
	uint8_t *pixels; /* UPDATE buffer, VGPU_MAX_UPDATE_BYTES */
	struct cursor_state cursors[VIRTIO_GPU_MAX_SCANOUTS];
};

static struct vgpu_display *
to_display(struct gpu_sink *sink)
{
	return (struct vgpu_display *)sink;
}

static void
drop_socket(struct vgpu_display *d)
{
	if (d->fd < 0)
		return;
	if (d->closing)
		d->closing(d->closing_userdata, d->fd);
	d->fd = safe_close(d->fd);
	d->features_asked = false;
	d->features_known = false;
	d->protocol_features = 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left = deadline - now_ms();
	int r;

	if (left < 0)
		return -ETIMEDOUT;
	r = poll(&p, 1, (int)left);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return 0;
}

/* Writes header, payload (and fd, borrowed, with the first byte) within IO_TIMEOUT_MS. */
static int
send_msg(struct vgpu_display *d, uint32_t request, const void *p1, size_t n1, const void *p2,
	 size_t n2, int fd)
{
	struct vgpu_msg_hdr hdr = {.request = request, .size = (uint32_t)(n1 + n2)};
	struct iovec iov[3] = {
		{&hdr, sizeof(hdr)},
		{(void *)p1, n1},
		{(void *)p2, n2},
	};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	int64_t deadline = now_ms() + IO_TIMEOUT_MS;
	unsigned first = 0;
	bool fd_sent = fd < 0;

	if (d->fd < 0)
		return -ENOTCONN;
	while (first < 3) {
		struct msghdr mh = {.msg_iov = iov + first, .msg_iovlen = 3 - first};
		ssize_t n;

		if (!fd_sent) {
			struct cmsghdr *c;

			memset(&control, 0, sizeof(control));
			mh.msg_control = control.buf;
			mh.msg_controllen = sizeof(control.buf);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		n = sendmsg(d->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			r = wait_fd(d->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		fd_sent = true;
		while (first < 3 && (size_t)n >= iov[first].iov_len) {
			n -= (ssize_t)iov[first].iov_len;
			first++;
		}
		if (first < 3) {
			iov[first].iov_base = (uint8_t *)iov[first].iov_base + n;
			iov[first].iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Reads exactly len bytes within the deadline. -ECONNRESET at end of file. */
static int
read_full(int fd, void *buf, size_t len, int64_t deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + done, len - done, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			r = wait_fd(fd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Reads and handles one message from the frontend. Only replies to what was asked are
 * valid. *ret_request says which reply it was.
 */
static int
read_reply(struct vgpu_display *d, bool wait_first_byte, uint32_t *ret_request)
{
	struct vgpu_msg_hdr hdr;
	int64_t deadline = now_ms() + IO_TIMEOUT_MS;
	uint64_t features;
	int r;

	if (!wait_first_byte) {
		uint8_t b;
		ssize_t n = recv(d->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	r = read_full(d->fd, &hdr, sizeof(hdr), deadline);
	if (r < 0)
		return r;
	if (!(hdr.flags & VGPU_MSG_FLAG_REPLY) || (hdr.flags & ~VGPU_MSG_FLAG_REPLY) != 0)
		return -EBADMSG;
	switch (hdr.request) {
	case VGPU_REQ_GET_PROTOCOL_FEATURES:
		if (!d->features_asked || hdr.size != sizeof(features))
			return -EBADMSG;
		r = read_full(d->fd, &features, sizeof(features), deadline);
		if (r < 0)
			return r;
		d->features_asked = false;
		d->features_known = true;
		d->protocol_features = features & (1ull << VGPU_PROTOCOL_F_DMABUF2);
		r = send_msg(d, VGPU_REQ_SET_PROTOCOL_FEATURES, &d->protocol_features,
			     sizeof(d->protocol_features), NULL, 0, -1);
		if (r < 0)
			return r;
		break;
	case VGPU_REQ_DMABUF_UPDATE:
		/* QEMU answers with a bare header once it has shown the frame. */
		if (hdr.size != 0 || ret_request == NULL)
			return -EBADMSG;
		break;
	default:
		/* GET_DISPLAY_INFO and GET_EDID are never asked: the device has its own. */
		return -EBADMSG;
	}
	if (ret_request)
		*ret_request = hdr.request;
	return 0;
}

int
vgpu_display_dispatch(struct gpu_sink *sink)
{
	struct vgpu_display *d = to_display(sink);
	int r = 0;

	while (d->fd >= 0) {
		r = read_reply(d, false, NULL);
		if (r == -EAGAIN)
			return 0;
		if (r < 0) {
			drop_socket(d);
			return r;
		}
	}
	return r;
}

/* ---- pixels ---- */

static inline uint8_t
clamp8(int v)
{
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static inline uint32_t
yuv_to_xrgb(int y, int u, int v)
{
	/* BT.601 limited range, 16.16 fixed point */
	int c = (y - 16) * 76309, d = u - 128, e = v - 128;
	uint8_t r = clamp8((c + 104597 * e + 32768) >> 16);
	uint8_t g = clamp8((c - 25675 * d - 53279 * e + 32768) >> 16);
	uint8_t b = clamp8((c + 132201 * d + 32768) >> 16);

	return 0xff000000u | (uint32_t)r << 16 | (uint32_t)g << 8 | b;
}

/* Little-endian XRGB8888 of pixel (x, y) of the frame's image; 0 for unknown formats. */
static uint32_t
pixel_xrgb(const struct gpu_sink_frame *f, uint32_t x, uint32_t y)
{
	const struct gpu_layout *l = f->layout;
	const uint8_t *p0 = f->data + l->planes[0].offset + (uint64_t)y * l->planes[0].stride;
	const uint8_t *q;

	switch (l->fourcc) {
	case DRM_FORMAT_XRGB8888:
	case DRM_FORMAT_ARGB8888:
		q = p0 + x * 4u;
		return 0xff000000u | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0];
	case DRM_FORMAT_XBGR8888:
	case DRM_FORMAT_ABGR8888:
		q = p0 + x * 4u;
		return 0xff000000u | (uint32_t)q[0] << 16 | (uint32_t)q[1] << 8 | q[2];
	case DRM_FORMAT_BGRX8888:
	case DRM_FORMAT_BGRA8888:
		q = p0 + x * 4u;
		return 0xff000000u | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
	case DRM_FORMAT_RGBX8888:
	case DRM_FORMAT_RGBA8888:
		q = p0 + x * 4u;
		return 0xff000000u | (uint32_t)q[3] << 16 | (uint32_t)q[2] << 8 | q[1];
	case DRM_FORMAT_NV12:
	case DRM_FORMAT_NV21: {
		const uint8_t *c = f->data + l->planes[1].offset +
				   (uint64_t)(y / 2) * l->planes[1].stride + (x / 2) * 2u;
		bool nv21 = l->fourcc == DRM_FORMAT_NV21;
		return yuv_to_xrgb(p0[x], c[nv21 ? 1 : 0], c[nv21 ? 0 : 1]);
	}
	case DRM_FORMAT_YUV420:
	case DRM_FORMAT_YVU420: {
		unsigned pu = l->fourcc == DRM_FORMAT_YUV420 ? 1 : 2, pv = 3 - pu;
		const uint8_t *u = f->data + l->planes[pu].offset +
				   (uint64_t)(y / 2) * l->planes[pu].stride + x / 2;
		const uint8_t *v = f->data + l->planes[pv].offset +
				   (uint64_t)(y / 2) * l->planes[pv].stride + x / 2;
		return yuv_to_xrgb(p0[x], *u, *v);
	}
	default:
		return 0;
	}
}

/* True if every pixel pixel_xrgb() may read lies inside the buffer. */
static bool
frame_readable(const struct gpu_sink_frame *f)
{
	const struct gpu_layout *l = f->layout;
	const struct gpu_format *fmt = gpu_format_from_fourcc(l->fourcc);

	if (f->data == NULL || fmt == NULL || l->num_planes != fmt->num_planes)
		return false;
	for (unsigned p = 0; p < l->num_planes; p++) {
		uint64_t rows = gpu_format_plane_height(fmt, p, l->height);
		uint64_t row = (uint64_t)gpu_format_plane_width(fmt, p, l->width) * fmt->cpp[p];
		if (rows == 0 || l->planes[p].stride < row ||
		    l->planes[p].offset + (rows - 1) * l->planes[p].stride + row > l->size)
			return false;
	}
	return true;
}

/* The part of r inside the scanout's source rectangle, in scanout coordinates. */
static bool
clip_to_src(const struct gpu_rect *src, const struct gpu_rect *r, struct gpu_rect *ret)
{
	uint64_t x0 = MAX(r->x, src->x), y0 = MAX(r->y, src->y);
	uint64_t x1 = MIN((uint64_t)r->x + r->width, (uint64_t)src->x + src->width);
	uint64_t y1 = MIN((uint64_t)r->y + r->height, (uint64_t)src->y + src->height);

	if (x1 <= x0 || y1 <= y0)
		return false;
	*ret = (struct gpu_rect){(uint32_t)(x0 - src->x), (uint32_t)(y0 - src->y),
				 (uint32_t)(x1 - x0), (uint32_t)(y1 - y0)};
	return true;
}

static int
send_update(struct vgpu_display *d, const struct gpu_sink_frame *f, const struct scanout_state *s)
{
	struct gpu_rect r;
	bool readable = frame_readable(f);
	uint32_t band;

	if (!clip_to_src(&s->src, &f->damage, &r))
		return 0;
	band = MAX(1u, VGPU_MAX_UPDATE_BYTES / (r.width * 4u));
	for (uint32_t y = 0; y < r.height; y += band) {
		uint32_t h = MIN(band, r.height - y);
		struct vgpu_update u = {f->scanout_id, r.x, r.y + y, r.width, h};
		uint32_t *out = (uint32_t *)d->pixels;
		int ret;

		for (uint32_t row = 0; row < h; row++) {
			for (uint32_t x = 0; x < r.width; x++) {
				uint32_t ix = s->src.x + r.x + x, iy = s->src.y + r.y + y + row;
				/* withheld (protected) or unreadable: grey */
				*out++ = readable ? pixel_xrgb(f, ix, iy) : 0xff808080u;
			}
		}
		ret = send_msg(d, VGPU_REQ_UPDATE, &u, sizeof(u), d->pixels,
			       (size_t)h * r.width * 4u, -1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- sink ops ---- */

static bool
is_dmabuf(int fd)
{
	struct statfs st;

	return fstatfs(fd, &st) == 0 && (uint64_t)st.f_type == DMA_BUF_MAGIC;
}

/* Tries DMABUF_SCANOUT(2): 1 if sent, 0 if the resource has no single-plane dma-buf. */
static int
send_dmabuf_scanout(struct vgpu_display *d, uint32_t scanout_id, struct scanout_state *s)
{
	struct gpu_resource_info info;
	_cleanup_close_ int fd = -1;
	struct vgpu_dmabuf_scanout2 m;
	const struct gpu_layout *l = &info.layout;

	if (d->device == NULL || gpu_device_get_resource(d->device, s->resource_id, &info) < 0 ||
	    info.protected_ || l->num_planes != 1 || l->fourcc == 0 ||
	    gpu_device_dup_resource_fd(d->device, s->resource_id, &fd) < 0 || !is_dmabuf(fd))
		return 0;
	{
		const struct gpu_format *fmt = gpu_format_from_fourcc(l->fourcc);
		if (fmt == NULL || fmt->yuv || l->planes[0].offset != 0)
			return 0;
	}
	m = (struct vgpu_dmabuf_scanout2){
		.dmabuf_scanout =
			{
				.scanout_id = scanout_id,
				.x = s->src.x,
				.y = s->src.y,
				.width = s->src.width,
				.height = s->src.height,
				.fd_width = l->width,
				.fd_height = l->height,
				.fd_stride = l->planes[0].stride,
				.fd_drm_fourcc = (int32_t)l->fourcc,
			},
		.modifier = l->modifier,
	};
	if (d->protocol_features & (1ull << VGPU_PROTOCOL_F_DMABUF2)) {
		if (send_msg(d, VGPU_REQ_DMABUF_SCANOUT2, &m, sizeof(m), NULL, 0, fd) < 0)
			return -EIO;
	} else {
		if (send_msg(d, VGPU_REQ_DMABUF_SCANOUT, &m.dmabuf_scanout,
			     sizeof(m.dmabuf_scanout), NULL, 0, fd) < 0)
			return -EIO;
	}
	return 1;
}

static int
send_scanout(struct vgpu_display *d, uint32_t scanout_id)
{
	struct scanout_state *s = &d->scanouts[scanout_id];
	struct vgpu_scanout m = {scanout_id, 0, 0};
	int r;

	s->dmabuf = false;
	if (s->enabled) {
		r = send_dmabuf_scanout(d, scanout_id, s);
		if (r != 0) {
			s->dmabuf = r > 0;
			return r < 0 ? r : 0;
		}
		m.width = s->src.width;
		m.height = s->src.height;
	}
	return send_msg(d, VGPU_REQ_SCANOUT, &m, sizeof(m), NULL, 0, -1);
}

static void
display_set_scanout(struct gpu_sink *sink, uint32_t scanout_id, bool enabled, uint32_t resource_id,
		    const struct gpu_rect *src)
{
	struct vgpu_display *d = to_display(sink);

	if (d->inner)
		d->inner->ops->set_scanout(d->inner, scanout_id, enabled, resource_id, src);
	if (scanout_id >= VIRTIO_GPU_MAX_SCANOUTS)
		return;
	d->scanouts[scanout_id] = (struct scanout_state){
		.enabled = enabled,
		.resource_id = enabled ? resource_id : 0,
		.src = enabled && src ? *src : (struct gpu_rect){0},
	};
	if (d->fd >= 0 && send_scanout(d, scanout_id) < 0)
		drop_socket(d);
}

static int
wait_dmabuf_update(struct vgpu_display *d)
{
	for (;;) {
		uint32_t req = 0;
		int r = read_reply(d, true, &req);
		if (r < 0)
			return r;
		if (req == VGPU_REQ_DMABUF_UPDATE)
			return 0;
	}
}

static int
display_flush(struct gpu_sink *sink, const struct gpu_sink_frame *frame)
{
	struct vgpu_display *d = to_display(sink);
	struct scanout_state *s;
	int r = 0, inner = 0;

	if (d->inner)
		inner = d->inner->ops->flush(d->inner, frame);
	if (frame->scanout_id >= VIRTIO_GPU_MAX_SCANOUTS || d->fd < 0)
		return inner;
	s = &d->scanouts[frame->scanout_id];
	if (!s->enabled)
		return inner;
	if (s->dmabuf) {
		struct gpu_rect c;
		if (clip_to_src(&s->src, &frame->damage, &c)) {
			struct vgpu_update u = {frame->scanout_id, c.x, c.y, c.width, c.height};
			r = send_msg(d, VGPU_REQ_DMABUF_UPDATE, &u, sizeof(u), NULL, 0, -1);
			if (r >= 0)
				r = wait_dmabuf_update(d);
		}
	} else {
		r = send_update(d, frame, s);
	}
	if (r < 0) {
		drop_socket(d);
		return r;
	}
	return inner;
}

/*
 * Sends scanout i's cursor: its shape (CURSOR_UPDATE) when shape is set and there is one to
 * show, else its position (CURSOR_POS, or CURSOR_POS_HIDE when hidden). No replies come.
 */
static int
send_cursor(struct vgpu_display *d, uint32_t i, bool shape)
{
	const struct cursor_state *c = &d->cursors[i];

	if (shape && c->visible && c->has_image)
		return send_msg(d, VGPU_REQ_CURSOR_UPDATE, &c->msg, sizeof(c->msg), NULL, 0, -1);
	return send_msg(d, c->visible ? VGPU_REQ_CURSOR_POS : VGPU_REQ_CURSOR_POS_HIDE, &c->msg.pos,
			sizeof(c->msg.pos), NULL, 0, -1);
}

static void
display_cursor(struct gpu_sink *sink, const struct gpu_sink_cursor *cursor)
{
	struct vgpu_display *d = to_display(sink);
	struct cursor_state *c;

	if (d->inner && d->inner->ops->cursor)
		d->inner->ops->cursor(d->inner, cursor);
	if (cursor->scanout_id >= VIRTIO_GPU_MAX_SCANOUTS)
		return;
	c = &d->cursors[cursor->scanout_id];
	c->visible = cursor->visible;
	c->msg.pos = (struct vgpu_cursor_pos){cursor->scanout_id, cursor->x, cursor->y};
	if (cursor->image != NULL) {
		c->has_image = true;
		c->msg.hot_x = cursor->hot_x;
		c->msg.hot_y = cursor->hot_y;
		memcpy(c->msg.data, cursor->image, sizeof(c->msg.data));
	}
	/* as for the other messages: a display end that stops reading loses its socket */
	if (d->fd >= 0 && send_cursor(d, cursor->scanout_id, cursor->image != NULL) < 0)
		drop_socket(d);
}

static void
display_destroy(struct gpu_sink *sink)
{
	struct vgpu_display *d = to_display(sink);

	drop_socket(d);
	free(d->pixels);
	free(d);
}

static const struct gpu_sink_ops display_ops = {
	.set_scanout = display_set_scanout,
	.flush = display_flush,
	.cursor = display_cursor,
	.destroy = display_destroy,
};

int
vgpu_display_new(struct gpu_sink *inner, struct gpu_sink **ret_sink)
{
	struct vgpu_display *d;

	if (ret_sink == NULL)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->pixels = malloc(VGPU_MAX_UPDATE_BYTES + 16384 * 4);
	if (d->pixels == NULL) {
		free(d);
		return -ENOMEM;
	}
	d->base.ops = &display_ops;
	/* A QEMU window is not a protected path. */
	d->base.authorized = false;
	d->inner = inner;
	d->fd = -1;
	*ret_sink = &d->base;
	return 0;
}

void
vgpu_display_set_device(struct gpu_sink *sink, struct gpu_device *device)
{
	to_display(sink)->device = device;
}

void
vgpu_display_set_closing_callback(struct gpu_sink *sink, void (*fn)(void *userdata, int fd),
				  void *userdata)
{
	struct vgpu_display *d = to_display(sink);

	d->closing = fn;
	d->closing_userdata = userdata;
}

int
vgpu_display_set_socket(struct gpu_sink *sink, int fd)
{
	struct vgpu_display *d = to_display(sink);
	int r;

	drop_socket(d);
	if (fd < 0)
		return -EBADF;
	d->fd = fd;
	r = send_msg(d, VGPU_REQ_GET_PROTOCOL_FEATURES, NULL, 0, NULL, 0, -1);
	if (r >= 0)
		d->features_asked = true;
	for (unsigned i = 0; r >= 0 && i < VIRTIO_GPU_MAX_SCANOUTS; i++) {
		if (d->scanouts[i].enabled)
			r = send_scanout(d, i);
	}
	for (unsigned i = 0; r >= 0 && i < VIRTIO_GPU_MAX_SCANOUTS; i++) {
		if (d->cursors[i].visible && d->cursors[i].has_image)
			r = send_cursor(d, i, true);
	}
	if (r < 0)
		drop_socket(d);
	return r;
}

int
vgpu_display_get_fd(struct gpu_sink *sink)
{
	return to_display(sink)->fd;
}

void
vgpu_display_close(struct gpu_sink *sink)
{
	drop_socket(to_display(sink));
}

uint64_t
vgpu_display_protocol_features(struct gpu_sink *sink)
{
	return to_display(sink)->protocol_features;
}

bool
vgpu_display_features_known(struct gpu_sink *sink)
{
	return to_display(sink)->features_known;
}
