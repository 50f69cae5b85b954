/* SPDX-License-Identifier: MIT */
/*
 * The V4L2 stateful decoder through the whole device, driven by the user-space driver
 * library as the Linux virtio-media driver would, decoding the fake codec's bitstream.
 */
#include "crossbuf-media-controls.h"
#include "decoder.h"
#include "harness.h"
#include "macro.h"

#include <errno.h>
#include <string.h>

#define W 64
#define H 48

static void
test_config_and_querycap(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct virtio_media_config cfg;
	struct v4l2_capability cap;

	harness_init(&h, false, 0);
	media_device_get_config(h.dev, &cfg);
	g_assert_cmpuint(cfg.device_caps, ==, V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING);
	g_assert_cmpuint(cfg.device_type, ==, 0);
	g_assert_cmpstr((const char *)cfg.card, ==, "crossbuf virtio-media decoder");
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	/* Answered by the driver from the config space, never sent. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCAP, &cap), ==, 0);
	g_assert_cmpstr((const char *)cap.bus_info, ==, "platform:virtio-media");
	g_assert_cmpuint(cap.device_caps, ==, cfg.device_caps);
	g_assert_true(cap.capabilities & V4L2_CAP_DEVICE_CAPS);
	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_sessions_many(void)
{
	struct harness h;
	struct vmdrv_session *s[MEDIA_DEVICE_MAX_SESSIONS], *extra;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};

	harness_init(&h, false, 0);
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i++) {
		g_assert_cmpint(vmdrv_open(h.drv, &s[i]), ==, 0);
		for (unsigned j = 0; j < i; j++)
			g_assert_cmpuint(vmdrv_session_id(s[i]), !=, vmdrv_session_id(s[j]));
	}
	g_assert_cmpuint(media_device_session_count(h.dev), ==, MEDIA_DEVICE_MAX_SESSIONS);
	g_assert_cmpint(vmdrv_open(h.drv, &extra), ==, -EMFILE);
	/* Each session keeps its own format. */
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_VP9;
	g_assert_cmpint(vmdrv_ioctl(s[3], VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s[4], VIDIOC_G_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, V4L2_PIX_FMT_H264);
	g_assert_cmpint(vmdrv_ioctl(s[3], VIDIOC_G_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, V4L2_PIX_FMT_VP9);
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i += 2)
		vmdrv_close(s[i]);
	g_assert_cmpuint(media_device_session_count(h.dev), ==, MEDIA_DEVICE_MAX_SESSIONS / 2);
	/* New sessions never reuse the id of an open one. */
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i += 2) {
		g_assert_cmpint(vmdrv_open(h.drv, &s[i]), ==, 0);
		for (unsigned j = 1; j < MEDIA_DEVICE_MAX_SESSIONS; j += 2)
			g_assert_cmpuint(vmdrv_session_id(s[i]), !=, vmdrv_session_id(s[j]));
	}
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i++)
		vmdrv_close(s[i]);
	g_assert_cmpuint(media_device_session_count(h.dev), ==, 0);
	harness_fini(&h);
}

static void
test_formats(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_fmtdesc d = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_frmsizeenum fs = {.pixel_format = V4L2_PIX_FMT_H264};
	struct v4l2_requestbuffers rb = {
		.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .memory = V4L2_MEMORY_MMAP, .count = 2};
	uint32_t want_cap[] = {V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_NV12M, V4L2_PIX_FMT_YUV420M,
			       V4L2_PIX_FMT_YUV420};

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	/* The fake codec decodes H.264 and VP9 only. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FMT, &d), ==, 0);
	g_assert_cmpuint(d.pixelformat, ==, V4L2_PIX_FMT_H264);
	g_assert_true(d.flags & V4L2_FMT_FLAG_COMPRESSED);
	d.index = 1;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FMT, &d), ==, 0);
	g_assert_cmpuint(d.pixelformat, ==, V4L2_PIX_FMT_VP9);
	d.index = 2;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FMT, &d), ==, -EINVAL);
	d.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	for (unsigned i = 0; i < 4; i++) {
		d.index = i;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FMT, &d), ==, 0);
		g_assert_cmpuint(d.pixelformat, ==, want_cap[i]);
	}
	d.index = 4;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FMT, &d), ==, -EINVAL);
	d.type = V4L2_BUF_TYPE_VIDEO_CAPTURE; /* single-planar: not this device */
	d.index = 0;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FMT, &d), ==, -EINVAL);

	/* An unsupported coded format is adjusted, not refused. */
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_MPEG2;
	f.fmt.pix_mp.plane_fmt[0].sizeimage = 1u << 30;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_TRY_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, V4L2_PIX_FMT_H264);
	g_assert_cmpuint(f.fmt.pix_mp.plane_fmt[0].sizeimage, ==, DECODER_MAX_BITSTREAM_SIZE);
	g_assert_cmpuint(f.fmt.pix_mp.num_planes, ==, 1);
	f.type = 99;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, -EINVAL);

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FRAMESIZES, &fs), ==, 0);
	g_assert_cmpuint(fs.type, ==, V4L2_FRMSIZE_TYPE_STEPWISE);
	g_assert_cmpuint(fs.stepwise.max_width, ==, DECODER_MAX_WIDTH);
	fs.index = 1;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FRAMESIZES, &fs), ==, -EINVAL);

	/* S_FMT(OUTPUT) while OUTPUT buffers are allocated: EBUSY. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	f.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_VP9;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, -EBUSY);
	rb.count = 0;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_controls_and_commands(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_control c = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};
	struct v4l2_queryctrl q = {.id = V4L2_CTRL_FLAG_NEXT_CTRL};
	struct v4l2_query_ext_ctrl qe = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};
	struct v4l2_ext_control ec[2] = {{.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE},
					 {.id = V4L2_CID_MIN_BUFFERS_FOR_OUTPUT}};
	struct v4l2_ext_controls ecs = {
		.which = V4L2_CTRL_WHICH_CUR_VAL, .count = 1, .controls = ec};
	struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP, .flags = 3};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_CTRL};
	struct v4l2_selection sel = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
				     .target = V4L2_SEL_TGT_COMPOSE};
	struct v4l2_frmivalenum fi = {.pixel_format = V4L2_PIX_FMT_H264};

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_CTRL, &c), ==, 0);
	g_assert_cmpint(c.value, >=, 1);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_CTRL, &c), ==, -EACCES);
	c.id = V4L2_CID_MIN_BUFFERS_FOR_OUTPUT; /* v4l2-compliance: a decoder has none */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_CTRL, &c), ==, -EINVAL);
	/* The class control first, as Linux enumerates, then the decoder's. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, 0);
	g_assert_cmpuint(q.id, ==, V4L2_CID_USER_CLASS);
	q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, 0);
	g_assert_cmpuint(q.id, ==, V4L2_CID_MIN_BUFFERS_FOR_CAPTURE);
	g_assert_true(q.flags & V4L2_CTRL_FLAG_READ_ONLY);
	/* The device's own counters follow (test-controls.c checks them). */
	q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, 0);
	g_assert_cmpuint(q.id, ==, CROSSBUF_CID_FRAMES_DECODED);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERY_EXT_CTRL, &qe), ==, 0);
	g_assert_cmpuint(qe.elems, ==, 1);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_EXT_CTRLS, &ecs), ==, 0);
	g_assert_cmpint(ec[0].value, >=, 1);
	ecs.count = 2;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_EXT_CTRLS, &ecs), ==, -EINVAL);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_EXT_CTRLS, &ecs), ==, -EINVAL);

	/* TRY_DECODER_CMD clears the flags; PAUSE, RESUME and garbage are EINVAL. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_TRY_DECODER_CMD, &dc), ==, 0);
	g_assert_cmpuint(dc.flags, ==, 0);
	dc.cmd = V4L2_DEC_CMD_PAUSE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_TRY_DECODER_CMD, &dc), ==, -EINVAL);
	dc.cmd = V4L2_DEC_CMD_RESUME;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, -EINVAL);
	dc.cmd = 0x1234;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, -EINVAL);

	/* Only EOS and SOURCE_CHANGE can be subscribed. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, -EINVAL);
	sub.type = V4L2_EVENT_EOS;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	sub.type = V4L2_EVENT_ALL;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_UNSUBSCRIBE_EVENT, &sub), ==, 0);

	/* No stream yet: no visible rectangle. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_SELECTION, &sel), ==, -EINVAL);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_ENUM_FRAMEINTERVALS, &fi), ==, -ENOTTY);
	vmdrv_close(s);
	harness_fini(&h);
}

/* Decodes n frames through a session set up with MMAP on both queues. */
static void
decode_frames(struct harness *h, struct vmdrv_session *s, struct stream_out *o,
	      struct stream_cap *c, uint16_t w, uint16_t hh, uint8_t first_fill, unsigned n,
	      uint64_t ts_base)
{
	for (unsigned i = 0; i < n; i++) {
		struct v4l2_buffer b;
		struct v4l2_plane p[3];
		uint8_t fill = (uint8_t)(first_fill + i);
		uint8_t *planes[3];
		uint32_t offs[3] = {0};
		unsigned idx = i % o->count;

		if (i >= o->count)
			g_assert_cmpuint(out_dequeue(s), ==, idx);
		out_queue_frames(h, s, o, idx, w, hh, &fill, 1, 0, ts_base + i);
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		g_assert_false(b.flags & V4L2_BUF_FLAG_ERROR);
		g_assert_cmpuint(b.timestamp.tv_usec, ==, (ts_base + i) % 1000000);
		for (unsigned k = 0; k < c->num_planes; k++) {
			g_assert_cmpuint(p[k].bytesused, ==, c->fmt.plane_fmt[k].sizeimage);
			planes[k] = c->ptr[b.index][k];
		}
		if (c->num_planes == 1) {
			uint32_t stride = c->fmt.plane_fmt[0].bytesperline,
				 rows = ALIGN_UP(hh, 16u);

			planes[1] = planes[2] = planes[0];
			offs[1] = stride * rows;
			/* YUV420 in one buffer: V follows U, both half as wide and high */
			offs[2] = offs[1] + stride / 2 * (rows / 2);
		}
		check_picture(&c->fmt, w, hh, planes, offs, fill);
		cap_queue(s, c, b.index);
	}
	/* Take back the OUTPUT buffers still queued. */
	for (unsigned i = 0; i < MIN(n, o->count); i++)
		out_dequeue(s);
}

/* OUTPUT set up, first frame queued, SOURCE_CHANGE seen, CAPTURE set up. */
static void
start_stream(struct harness *h, struct vmdrv_session *s, struct stream_out *o, struct stream_cap *c,
	     uint32_t pixfmt, uint16_t w, uint16_t hh)
{
	struct v4l2_control ctl = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};
	struct v4l2_selection sel = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
				     .target = V4L2_SEL_TGT_COMPOSE};
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};
	uint8_t fill = 0x10;

	if (pixfmt == V4L2_PIX_FMT_YUV420M || pixfmt == V4L2_PIX_FMT_YUV420) {
		/* The codec's picture format is chosen before the stream starts. */
		f.fmt.pix_mp.pixelformat = pixfmt;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
		g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, pixfmt);
	}
	out_setup_mmap(s, 4, o);
	out_queue_frames(h, s, o, 0, w, hh, &fill, 1, 0, 1000);
	wait_source_change(s);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_CTRL, &ctl), ==, 0);
	g_assert_cmpint(ctl.value, ==, 2);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_SELECTION, &sel), ==, 0);
	g_assert_cmpuint(sel.r.width, ==, w);
	g_assert_cmpuint(sel.r.height, ==, hh);
	cap_setup_mmap(s, pixfmt, 3, c);
	g_assert_cmpuint(c->fmt.width, ==, w);
	/* The first frame, held since the source change, comes out. */
	{
		struct v4l2_buffer b;
		struct v4l2_plane p[3];

		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		g_assert_cmpuint(b.timestamp.tv_usec, ==, 1000);
		g_assert_cmpuint(b.sequence, ==, 0);
		cap_queue(s, c, b.index);
		g_assert_cmpuint(out_dequeue(s), ==, 0);
	}
}

static void
decode_format(uint32_t pixfmt)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, pixfmt, W, H);
	g_assert_cmpuint(c.num_planes, ==,
			 pixfmt == V4L2_PIX_FMT_NV12M     ? 2
			 : pixfmt == V4L2_PIX_FMT_YUV420M ? 3
							  : 1);
	decode_frames(&h, s, &o, &c, W, H, 0x20, 10, 5000);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	g_assert_cmpuint(vmdrv_dropped_events(h.drv), ==, 0);
	harness_fini(&h);
}

static void
test_decode_nv12(void)
{
	decode_format(V4L2_PIX_FMT_NV12);
}

static void
test_decode_nv12m(void)
{
	decode_format(V4L2_PIX_FMT_NV12M);
}

static void
test_decode_yuv420m(void)
{
	decode_format(V4L2_PIX_FMT_YUV420M);
}

static void
test_decode_yuv420(void)
{
	decode_format(V4L2_PIX_FMT_YUV420);
}

static void
test_drain(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	struct v4l2_event e;
	uint8_t fills[2] = {0x40, 0x41};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	out_queue_frames(&h, s, &o, 1, W, H, fills, 2, 0, 77);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	/* Both frames, then an empty LAST buffer, then EPIPE. */
	for (unsigned i = 0; i < 2; i++) {
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		g_assert_false(b.flags & V4L2_BUF_FLAG_LAST);
		g_assert_cmpuint(p[0].bytesused, >, 0);
	}
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpuint(p[0].bytesused, ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, -EPIPE);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQEVENT, &e), ==, 0);
	g_assert_cmpuint(e.type, ==, V4L2_EVENT_EOS);
	g_assert_cmpuint(out_dequeue(s), ==, 1);

	/* STOP again once stopped is accepted; START resumes decoding. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	dc.cmd = V4L2_DEC_CMD_START;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	/* Requeue every CAPTURE buffer the guest holds. */
	for (unsigned i = 0; i < c.count; i++) {
		struct v4l2_plane qp[3];
		struct v4l2_buffer qb = {.index = i,
					 .type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .length = 3,
					 .m.planes = qp};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &qb), ==, 0);
		if (!(qb.flags & V4L2_BUF_FLAG_QUEUED))
			cap_queue(s, &c, i);
	}
	decode_frames(&h, s, &o, &c, W, H, 0x50, 3, 9000);

	/* Drain again, resumed by STREAMOFF/STREAMON(CAPTURE) this time. */
	dc.cmd = V4L2_DEC_CMD_STOP;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, -EPIPE);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	for (unsigned i = 0; i < c.count; i++)
		cap_queue(s, &c, i);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	decode_frames(&h, s, &o, &c, W, H, 0x60, 2, 12000);

	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_stop_without_output(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};
	struct v4l2_requestbuffers rb = {
		.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, .memory = V4L2_MEMORY_MMAP, .count = 1};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	struct v4l2_plane p[3] = {{0}};
	struct v4l2_buffer b = {.index = 0,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = V4L2_MEMORY_MMAP,
				.length = 1,
				.m.planes = p};

	/* v4l2-compliance: STOP with no OUTPUT buffers, then one CAPTURE QBUF: LAST, empty. */
	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &b), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpuint(p[0].bytesused, ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, -EPIPE);
	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_seek(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	int type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	uint8_t fills[3] = {1, 2, 3};
	struct v4l2_buffer b;
	struct v4l2_plane p[3];

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	/* Queue bitstream, then seek away before it is all consumed. */
	out_queue_frames(&h, s, &o, 1, W, H, fills, 3, 0, 100);
	out_queue_frames(&h, s, &o, 2, W, H, fills, 3, 0, 200);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	/* Every OUTPUT buffer is back with the guest: QBUF works again. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	/* Drop whatever frames were done before the seek. */
	vmdrv_set_timeout(s, 0);
	while (cap_dequeue(s, &b, p) == 0)
		cap_queue(s, &c, b.index);
	vmdrv_set_timeout(s, 5000);
	decode_frames(&h, s, &o, &c, W, H, 0x70, 6, 30000);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_resolution_change(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_MMAP};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	uint8_t fills[2] = {0x30, 0x31};

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	/* One frame at the old size, then one at a bigger size, in one buffer. */
	out_queue_frames(&h, s, &o, 1, W, H, &fills[0], 1, 0, 10);
	{
		uint8_t *dst = (uint8_t *)o.ptr[2];
		struct fake_frame f1 = {.width = W, .height = H, .fill = fills[0]};
		struct fake_frame f2 = {.width = 2 * W, .height = 2 * H, .fill = fills[1]};
		struct v4l2_plane op[1] = {{.bytesused = 2 * FAKE_FRAME_SIZE}};
		struct v4l2_buffer ob = {.index = 2,
					 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .length = 1,
					 .m.planes = op};

		memcpy(f1.magic, FAKE_MAGIC, 4);
		memcpy(f2.magic, FAKE_MAGIC, 4);
		memcpy(dst, &f1, sizeof(f1));
		memcpy(dst + FAKE_FRAME_SIZE, &f2, sizeof(f2));
		ob.timestamp.tv_usec = 20;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &ob), ==, 0);
	}
	/* The old-size frames, then LAST, then EPIPE; and the SOURCE_CHANGE event. */
	for (unsigned i = 0; i < 2; i++) {
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		g_assert_false(b.flags & V4L2_BUF_FLAG_LAST);
		g_assert_cmpuint(p[0].bytesused, >, 0);
	}
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, -EPIPE);
	wait_source_change(s);

	/* The client redoes the CAPTURE setup at the new size. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	cap_unmap(&h, &c);
	rb.count = 0;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	cap_setup_mmap(s, V4L2_PIX_FMT_NV12, 3, &c);
	g_assert_cmpuint(c.fmt.width, ==, 2 * W);
	g_assert_cmpuint(c.fmt.height, ==, 2 * H);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_cmpuint(b.timestamp.tv_usec, ==, 20);
	{
		uint8_t *planes[3] = {c.ptr[b.index][0], c.ptr[b.index][0], c.ptr[b.index][0]};
		uint32_t offs[3] = {0, c.fmt.plane_fmt[0].bytesperline * 2 * H, 0};

		check_picture(&c.fmt, 2 * W, 2 * H, planes, offs, fills[1]);
	}
	cap_queue(s, &c, b.index);
	out_dequeue(s);
	out_dequeue(s);
	decode_frames(&h, s, &o, &c, 2 * W, 2 * H, 0x90, 3, 40000);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_corrupt_frame(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	uint8_t fill = 0x11;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	out_queue_frames(&h, s, &o, 1, W, H, &fill, 1, FAKE_FLAG_CORRUPT, 55);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_ERROR);
	g_assert_cmpuint(b.timestamp.tv_usec, ==, 55);
	cap_queue(s, &c, b.index);
	out_dequeue(s);
	/* The stream goes on. */
	decode_frames(&h, s, &o, &c, W, H, 0x12, 2, 60);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_codec_failure_kills_session(void)
{
	struct harness h;
	struct vmdrv_session *s, *other;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	uint8_t fill = 0;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &other), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	out_queue_frames(&h, s, &o, 1, W, H, &fill, 1, FAKE_FLAG_BREAK, 0);
	/* The ERROR event: every ioctl of the session now fails; the others go on. */
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, -EIO);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, -EIO);
	g_assert_cmpint(vmdrv_ioctl(other, VIDIOC_G_FMT, &f), ==, 0);
	vmdrv_close(s);
	vmdrv_close(other);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_close_while_decoding(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	uint8_t fills[4] = {1, 2, 3, 4};

	/* The worker blocks waiting for CAPTURE buffers that never come: CLOSE must not hang. */
	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	out_setup_mmap(s, 4, &o);
	for (unsigned i = 0; i < 4; i++)
		out_queue_frames(&h, s, &o, i, W, H, fills, 4, 0, i);
	wait_source_change(s);
	vmdrv_close(s);
	g_assert_cmpuint(media_device_session_count(h.dev), ==, 0);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_mmap_outlives_session(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	uint8_t *p;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	out_setup_mmap(s, 2, &o);
	p = o.ptr[1];
	memset(p, 0x5a, 4096);
	vmdrv_close(s);
	/* Mappings stay valid until MUNMAP, after the session is gone. */
	g_assert_cmpuint(p[4095], ==, 0x5a);
	p[0] = 1;
	out_unmap(&h, &o);
	/* A second MUNMAP of the same address is refused. */
	g_assert_cmpint(vmdrv_munmap(h.drv, o.addr[0]), ==, -EINVAL);
	harness_fini(&h);
}

static void
test_shared_pages(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_USERPTR,
					 .count = 2};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	int otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, ctype = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	struct fake_frame fr = {.width = W, .height = H, .fill = 0x21};
	uint64_t bits_gpa, cap_gpa[2];
	struct virtio_media_sg_entry osg[2], csg[2][8];
	struct vmdrv_mem omem = {0}, cmem[2];
	struct v4l2_plane p[3];
	struct v4l2_buffer b;
	uint32_t size;
	unsigned n_pages;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &otype), ==, 0);

	/* The bitstream split over two guest pages that are not adjacent. */
	bits_gpa = harness_guest_alloc(&h, 3 * 4096, 0);
	memcpy(fr.magic, FAKE_MAGIC, 4);
	memcpy((uint8_t *)harness_guest_ptr(&h, bits_gpa) + 4096 - 5, &fr, 5);
	memcpy(harness_guest_ptr(&h, bits_gpa + 2 * 4096), (uint8_t *)&fr + 5, 7);
	osg[0] = (struct virtio_media_sg_entry){.start = bits_gpa + 4096 - 5, .len = 5};
	osg[1] = (struct virtio_media_sg_entry){.start = bits_gpa + 2 * 4096, .len = 4096};
	omem.sg[0] = osg;
	omem.n_sg[0] = 2;
	memset(p, 0, sizeof(p));
	p[0].length = 4096 + 5;
	p[0].bytesused = FAKE_FRAME_SIZE;
	b = (struct v4l2_buffer){.index = 0,
				 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				 .memory = V4L2_MEMORY_USERPTR,
				 .length = 1,
				 .m.planes = p};
	b.timestamp.tv_usec = 31;
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &omem), ==, 0);
	wait_source_change(s);

	/* CAPTURE NV12 in guest pages, every other page of a range: not contiguous. */
	f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, 0);
	size = f.fmt.pix_mp.plane_fmt[0].sizeimage;
	n_pages = (size + 4095) / 4096;
	g_assert_cmpuint(n_pages, <=, 8);
	rb = (struct v4l2_requestbuffers){.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					  .memory = V4L2_MEMORY_USERPTR,
					  .count = 2};
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	for (unsigned i = 0; i < 2; i++) {
		cap_gpa[i] = harness_guest_alloc(&h, 2 * n_pages * 4096, 0xee);
		memset(&cmem[i], 0, sizeof(cmem[i]));
		for (unsigned k = 0; k < n_pages; k++)
			csg[i][k] = (struct virtio_media_sg_entry){
				.start = cap_gpa[i] + 2 * k * 4096, .len = 4096};
		cmem[i].sg[0] = csg[i];
		cmem[i].n_sg[0] = n_pages;
		memset(p, 0, sizeof(p));
		p[0].length = size;
		b = (struct v4l2_buffer){.index = i,
					 .type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_USERPTR,
					 .length = 1,
					 .m.planes = p};
		g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &cmem[i]), ==, 0);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &ctype), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_cmpuint(b.timestamp.tv_usec, ==, 31);
	/* Reassemble the guest pages and check the picture. */
	{
		uint8_t *pic = g_malloc(n_pages * 4096);
		uint8_t *planes[3];
		uint32_t offs[3] = {0, f.fmt.pix_mp.plane_fmt[0].bytesperline * ALIGN_UP(H, 16), 0};

		for (unsigned k = 0; k < n_pages; k++)
			memcpy(pic + k * 4096, harness_guest_ptr(&h, csg[b.index][k].start), 4096);
		planes[0] = planes[1] = planes[2] = pic;
		check_picture(&f.fmt.pix_mp, W, H, planes, offs, 0x21);
		/* The pages between were not touched. */
		g_assert_cmpuint(*(uint8_t *)harness_guest_ptr(&h, cap_gpa[b.index] + 4096), ==,
				 0xee);
		g_free(pic);
	}
	/* An sg entry outside guest memory: EFAULT. */
	osg[1].start = 0x10;
	b = (struct v4l2_buffer){.index = 0,
				 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				 .memory = V4L2_MEMORY_USERPTR,
				 .length = 1,
				 .m.planes = p};
	g_assert_cmpuint(out_dequeue(s), ==, 0);
	memset(p, 0, sizeof(p));
	p[0].length = 4096 + 5;
	p[0].bytesused = FAKE_FRAME_SIZE;
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &omem), ==, -EFAULT);
	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_sessions_decode_concurrently(void)
{
	enum { N = 8 };
	struct harness h;
	struct vmdrv_session *s[N];
	struct stream_out *o = g_new0(struct stream_out, N);
	struct stream_cap *c = g_new0(struct stream_cap, N);

	/* Eight streams of different sizes at once, frames interleaved: each stays its own. */
	harness_init(&h, false, 0);
	for (unsigned i = 0; i < N; i++) {
		g_assert_cmpint(vmdrv_open(h.drv, &s[i]), ==, 0);
		start_stream(&h, s[i], &o[i], &c[i], i % 2 ? V4L2_PIX_FMT_NV12M : V4L2_PIX_FMT_NV12,
			     (uint16_t)(W + 16 * i), (uint16_t)(H + 16 * i));
	}
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < N; i++)
			decode_frames(&h, s[i], &o[i], &c[i], (uint16_t)(W + 16 * i),
				      (uint16_t)(H + 16 * i), (uint8_t)(0x20 * round + i), 2,
				      1000 * round);
	}
	for (unsigned i = 0; i < N; i++) {
		vmdrv_close(s[i]);
		cap_unmap(&h, &c[i]);
		out_unmap(&h, &o[i]);
	}
	g_assert_cmpuint(vmdrv_dropped_events(h.drv), ==, 0);
	harness_fini(&h);
	g_free(o);
	g_free(c);
}

/*
 * With more CAPTURE buffers queued than the stream needs, the decoder reuses the memory the
 * codec let go of last (cache-warm) rather than rotating through every queued buffer. The
 * fake codec holds one reference, so decoding one frame at a time and queueing each buffer
 * back at once needs 2 buffers in turn; in queue order it would have gone through all 8.
 */
static void
test_capture_reuse_warm(void)
{
	enum { CAP = 8, FRAMES = 16 };
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	bool used[CAP] = {false};
	unsigned distinct = 0;
	uint8_t fill = 0x10;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	out_setup_mmap(s, 4, &o);
	out_queue_frames(&h, s, &o, 0, W, H, &fill, 1, 0, 0);
	wait_source_change(s);
	cap_setup_mmap(s, V4L2_PIX_FMT_NV12, CAP, &c);
	g_assert_cmpuint(c.count, ==, CAP);
	for (unsigned i = 0; i < FRAMES; i++) {
		struct v4l2_buffer b;
		struct v4l2_plane p[3];

		if (i > 0) {
			fill = (uint8_t)(0x10 + i);
			out_queue_frames(&h, s, &o, i % o.count, W, H, &fill, 1, 0, i);
		}
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		g_assert_cmpuint(b.timestamp.tv_usec, ==, i);
		g_assert_cmpuint(b.index, <, CAP);
		distinct += !used[b.index];
		used[b.index] = true;
		cap_queue(s, &c, b.index);
		g_assert_cmpuint(out_dequeue(s), ==, i % o.count);
	}
	g_assert_cmpuint(distinct, ==, 2);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_drain_busy(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	uint8_t fill = 0x66;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	/* No CAPTURE buffer for the next frame: the drain cannot finish. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	out_queue_frames(&h, s, &o, 1, W, H, &fill, 1, 0, 500);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	/* STOP and START during a drain: EBUSY. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, -EBUSY);
	dc.cmd = V4L2_DEC_CMD_START;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, -EBUSY);
	/* CAPTURE comes back: the frame, then LAST. */
	for (unsigned i = 0; i < c.count; i++)
		cap_queue(s, &c, i);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_cmpuint(b.timestamp.tv_usec, ==, 500);
	g_assert_false(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_seek_during_drain(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	int ctype = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	uint8_t fill = 0x77;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	/* A drain held up by a stopped CAPTURE queue, then a seek: the drain is abandoned. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &ctype), ==, 0);
	out_queue_frames(&h, s, &o, 1, W, H, &fill, 1, 0, 700);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &otype), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &otype), ==, 0);
	for (unsigned i = 0; i < c.count; i++)
		cap_queue(s, &c, i);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &ctype), ==, 0);
	/* No LAST buffer: decoding simply goes on, and a new STOP is accepted. */
	vmdrv_set_timeout(s, 50);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, -EAGAIN);
	vmdrv_set_timeout(s, 5000);
	decode_frames(&h, s, &o, &c, W, H, 0x78, 2, 800);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_resolution_change_requeue_old(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_MMAP};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	uint8_t fills[3] = {1, 2, 3}, big = 9;
	unsigned held[3];

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start_stream(&h, s, &o, &c, V4L2_PIX_FMT_NV12, W, H);
	/* The client holds every CAPTURE buffer when the resolution changes. */
	out_queue_frames(&h, s, &o, 1, W, H, fills, 3, 0, 10);
	for (unsigned i = 0; i < 3; i++) {
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		held[i] = b.index;
	}
	out_queue_frames(&h, s, &o, 2, 4 * W, 4 * H, &big, 1, 0, 20);
	wait_source_change(s);
	/* It queues an old, now too small buffer back to get the LAST one: accepted. */
	cap_queue(s, &c, held[0]);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpuint(b.index, ==, held[0]);
	g_assert_cmpuint(p[0].bytesused, ==, 0);
	/* Then reallocates, and the new frame comes out at the new size. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	cap_unmap(&h, &c);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	cap_setup_mmap(s, V4L2_PIX_FMT_NV12, 2, &c);
	g_assert_cmpuint(c.fmt.width, ==, 4 * W);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	g_assert_cmpuint(b.timestamp.tv_usec, ==, 20);
	g_assert_cmpuint(p[0].bytesused, ==, c.fmt.plane_fmt[0].sizeimage);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/decoder/config-and-querycap", test_config_and_querycap);
	cb_test_add("/media-device/decoder/sessions-many", test_sessions_many);
	cb_test_add("/media-device/decoder/formats", test_formats);
	cb_test_add("/media-device/decoder/controls-and-commands", test_controls_and_commands);
	cb_test_add("/media-device/decoder/decode-nv12", test_decode_nv12);
	cb_test_add("/media-device/decoder/decode-nv12m", test_decode_nv12m);
	cb_test_add("/media-device/decoder/decode-yuv420m", test_decode_yuv420m);
	cb_test_add("/media-device/decoder/decode-yuv420", test_decode_yuv420);
	cb_test_add("/media-device/decoder/drain", test_drain);
	cb_test_add("/media-device/decoder/stop-without-output", test_stop_without_output);
	cb_test_add("/media-device/decoder/seek", test_seek);
	cb_test_add("/media-device/decoder/resolution-change", test_resolution_change);
	cb_test_add("/media-device/decoder/resolution-change-requeue-old",
		    test_resolution_change_requeue_old);
	cb_test_add("/media-device/decoder/corrupt-frame", test_corrupt_frame);
	cb_test_add("/media-device/decoder/codec-failure-kills-session",
		    test_codec_failure_kills_session);
	cb_test_add("/media-device/decoder/close-while-decoding", test_close_while_decoding);
	cb_test_add("/media-device/decoder/mmap-outlives-session", test_mmap_outlives_session);
	cb_test_add("/media-device/decoder/shared-pages", test_shared_pages);
	cb_test_add("/media-device/decoder/sessions-decode-concurrently",
		    test_sessions_decode_concurrently);
	cb_test_add("/media-device/decoder/capture-reuse-warm", test_capture_reuse_warm);
	cb_test_add("/media-device/decoder/drain-busy", test_drain_busy);
	cb_test_add("/media-device/decoder/seek-during-drain", test_seek_during_drain);
	return g_test_run();
}
