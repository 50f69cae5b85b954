/* SPDX-License-Identifier: MIT */
/* The virtio-media request parser and response encoder, on hand-built descriptor chains. */
#include "protocol.h"
#include "testutil.h"

#include <errno.h>
#include <string.h>

/* A request under construction: the readable bytes, and a writable buffer. */
struct chain {
	uint8_t in[8192];
	size_t in_len;
	uint8_t out[8192];
	size_t out_len;
	struct iovec iv_in[2], iv_out[1];
	struct cb_request req;
	struct vmd_command cmd;
};

static void
put(struct chain *c, const void *p, size_t len)
{
	g_assert_cmpuint(c->in_len + len, <=, sizeof(c->in));
	memcpy(c->in + c->in_len, p, len);
	c->in_len += len;
}

/* Builds the request, splitting the readable part in two at split (0: one piece). */
static int
parse(struct chain *c, size_t split, size_t out_len)
{
	memset(c->out, 0xee, sizeof(c->out));
	c->out_len = out_len;
	if (split == 0 || split >= c->in_len) {
		c->iv_in[0] = (struct iovec){c->in, c->in_len};
		c->req.n_in = 1;
	} else {
		c->iv_in[0] = (struct iovec){c->in, split};
		c->iv_in[1] = (struct iovec){c->in + split, c->in_len - split};
		c->req.n_in = 2;
	}
	c->iv_out[0] = (struct iovec){c->out, out_len};
	c->req.in = c->iv_in;
	c->req.out = c->iv_out;
	c->req.n_out = 1;
	return vmd_command_parse(&c->req, &c->cmd);
}

static void
put_ioctl(struct chain *c, uint32_t session, unsigned long vidioc)
{
	struct virtio_media_cmd_ioctl h = {
		.hdr.cmd = VIRTIO_MEDIA_CMD_IOCTL, .session_id = session, .code = _IOC_NR(vidioc)};
	put(c, &h, sizeof(h));
}

static void
test_simple_commands(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct virtio_media_cmd_open o = {.hdr.cmd = VIRTIO_MEDIA_CMD_OPEN};
	struct virtio_media_cmd_close cl = {.hdr.cmd = VIRTIO_MEDIA_CMD_CLOSE, .session_id = 7};
	struct virtio_media_cmd_munmap mu = {.hdr.cmd = VIRTIO_MEDIA_CMD_MUNMAP,
					     .driver_addr = 0x123000};
	struct virtio_media_resp_open ro;

	put(c, &o, sizeof(o));
	g_assert_cmpint(parse(c, 0, 16), ==, 0);
	g_assert_cmpint(c->cmd.cmd, ==, VIRTIO_MEDIA_CMD_OPEN);
	g_assert_cmpuint(vmd_encode_open(&c->req, 0, 42), ==, 16);
	memcpy(&ro, c->out, sizeof(ro));
	g_assert_cmpuint(ro.hdr.status, ==, 0);
	g_assert_cmpuint(ro.session_id, ==, 42);
	/* An error answer is the header alone, with a positive errno. */
	g_assert_cmpuint(vmd_encode_open(&c->req, -ENOMEM, 0), ==, 8);
	memcpy(&ro, c->out, 8);
	g_assert_cmpuint(ro.hdr.status, ==, ENOMEM);

	c->in_len = 0;
	put(c, &cl, sizeof(cl));
	g_assert_cmpint(parse(c, 5, 0), ==, 0);
	g_assert_cmpuint(c->cmd.session_id, ==, 7);

	c->in_len = 0;
	put(c, &mu, sizeof(mu));
	g_assert_cmpint(parse(c, 9, 8), ==, 0);
	g_assert_cmpuint(c->cmd.driver_addr, ==, 0x123000);
	vmd_command_finish(&c->cmd);
	g_free(c);
}

static void
test_mmap_both_lengths(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct virtio_media_cmd_mmap m = {.hdr.cmd = VIRTIO_MEDIA_CMD_MMAP,
					  .session_id = 3,
					  .flags = VIRTIO_MEDIA_MMAP_FLAG_RW,
					  .offset = 0x4000};
	uint32_t high = 0;
	struct virtio_media_resp_mmap r;

	put(c, &m, sizeof(m));
	g_assert_cmpint(parse(c, 0, 24), ==, 0);
	g_assert_cmpuint(c->cmd.mmap_offset, ==, 0x4000);
	g_assert_cmpuint(c->cmd.mmap_flags, ==, VIRTIO_MEDIA_MMAP_FLAG_RW);
	g_assert_cmpuint(vmd_encode_mmap(&c->req, 0, 0x10000, 4096), ==, 24);
	memcpy(&r, c->out, sizeof(r));
	g_assert_cmpuint(r.driver_addr, ==, 0x10000);
	g_assert_cmpuint(r.len, ==, 4096);
	/* The 24-byte form with a 64-bit offset. */
	put(c, &high, sizeof(high));
	g_assert_cmpint(parse(c, 0, 24), ==, 0);
	g_assert_cmpuint(c->cmd.mmap_offset, ==, 0x4000);
	high = 1;
	c->in_len -= 4;
	put(c, &high, sizeof(high));
	g_assert_cmpint(parse(c, 0, 24), ==, -EINVAL);
	/* Unknown flags. */
	c->in_len = 0;
	m.flags = 2;
	put(c, &m, sizeof(m));
	g_assert_cmpint(parse(c, 0, 24), ==, -EINVAL);
	g_free(c);
}

static void
test_malformed_headers(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct virtio_media_cmd_close cl = {.hdr.cmd = VIRTIO_MEDIA_CMD_CLOSE};
	uint32_t bogus[4] = {99, 0, 0, 0};

	/* Empty and short chains. */
	g_assert_cmpint(parse(c, 0, 8), ==, -EINVAL);
	put(c, &cl, 4);
	g_assert_cmpint(parse(c, 0, 8), ==, -EINVAL);
	c->in_len = 0;
	put(c, &cl, 12);
	g_assert_cmpint(parse(c, 0, 8), ==, -EINVAL);
	g_assert_cmpint(c->cmd.cmd, ==, VIRTIO_MEDIA_CMD_CLOSE);
	/* Unknown command. */
	c->in_len = 0;
	put(c, bogus, sizeof(bogus));
	g_assert_cmpint(parse(c, 0, 8), ==, -EPROTO);
	/* No room for even the response header: nothing is written. */
	g_assert_cmpuint(vmd_encode_status(&c->req, -EINVAL), ==, 8);
	g_assert_cmpint(parse(c, 0, 7), ==, -EPROTO);
	g_assert_cmpuint(vmd_encode_status(&c->req, -EINVAL), ==, 0);
	g_assert_cmpuint(c->out[0], ==, 0xee);
	g_free(c);
}

static void
test_ioctl_unknown_and_short(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};

	put_ioctl(c, 1, VIDIOC_QUERYCAP);
	g_assert_cmpint(parse(c, 0, 8), ==, -ENOTTY);
	g_assert_null(c->cmd.desc);
	c->in_len = 0;
	put_ioctl(c, 1, VIDIOC_DQBUF);
	g_assert_cmpint(parse(c, 0, 8), ==, -ENOTTY);
	c->in_len = 0;
	put_ioctl(c, 1, VIDIOC_LOG_STATUS);
	g_assert_cmpint(parse(c, 0, 8), ==, -ENOTTY);
	/* A payload one byte short. */
	c->in_len = 0;
	put_ioctl(c, 1, VIDIOC_S_FMT);
	put(c, &f, sizeof(f) - 1);
	g_assert_cmpint(parse(c, 20, 8), ==, -EINVAL);
	g_assert_nonnull(c->cmd.desc);
	put(c, "x", 1);
	g_assert_cmpint(parse(c, 20, 8 + sizeof(f)), ==, 0);
	g_assert_cmpuint(c->cmd.payload.fmt.type, ==, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE);
	/* G_FMT writes the payload back after the header. */
	c->cmd.payload.fmt.fmt.pix_mp.width = 640;
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, 0, &c->cmd, false), ==, 8 + sizeof(f));
	memcpy(&f, c->out + 8, sizeof(f));
	g_assert_cmpuint(f.fmt.pix_mp.width, ==, 640);
	/* On error only the header, unless asked. */
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, -EBUSY, &c->cmd, false), ==, 8);
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, -EBUSY, &c->cmd, true), ==, 8 + sizeof(f));
	/* STREAMON is _IOW: nothing follows the response. */
	c->in_len = 0;
	put_ioctl(c, 1, VIDIOC_STREAMON);
	put(c, &(int32_t){V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE}, 4);
	g_assert_cmpint(parse(c, 0, 64), ==, 0);
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, 0, &c->cmd, false), ==, 8);
	g_free(c);
}

static void
put_mplane_buffer(struct chain *c, unsigned long vidioc, uint32_t memory, unsigned n_planes,
		  uint32_t plane_len)
{
	struct v4l2_buffer b = {.index = 1,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = memory,
				.length = n_planes};
	struct v4l2_plane p[VIDEO_MAX_PLANES] = {0};

	b.m.planes = (void *)(uintptr_t)0xdeadbeef000;
	for (unsigned i = 0; i < n_planes && i < VIDEO_MAX_PLANES; i++) {
		p[i].length = plane_len;
		p[i].m.fd = 100 + i;
	}
	put_ioctl(c, 2, vidioc);
	put(c, &b, sizeof(b));
	put(c, p, MIN(n_planes, VIDEO_MAX_PLANES) * sizeof(p[0]));
}

static void
test_buffer_object_uuids(void)
{
	struct chain *c = g_new0(struct chain, 1);
	uint8_t uuids[2][16];
	struct v4l2_buffer b;
	struct v4l2_plane p[2];
	size_t expect = 8 + 88 + 2 * 64 + 2 * 16;

	memset(uuids[0], 0x11, 16);
	memset(uuids[1], 0x22, 16);
	put_mplane_buffer(c, VIDIOC_QBUF, VIRTIO_MEDIA_OBJECT, 2, 4096);
	put(c, uuids, sizeof(uuids));
	g_assert_cmpint(parse(c, 33, 1024), ==, 0);
	g_assert_true(c->cmd.multiplanar);
	g_assert_cmpuint(c->cmd.n_planes, ==, 2);
	g_assert_cmpuint(c->cmd.n_uuids, ==, 2);
	g_assert_cmpmem(c->cmd.uuids, 32, uuids, 32);

	/* The device scribbles on the pointers; the guest gets its own values back. */
	c->cmd.payload.buf.m.planes = NULL;
	c->cmd.planes[0].m.fd = -1;
	c->cmd.payload.buf.flags = V4L2_BUF_FLAG_QUEUED;
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, 0, &c->cmd, false), ==, expect);
	memcpy(&b, c->out + 8, sizeof(b));
	memcpy(p, c->out + 8 + 88, sizeof(p));
	g_assert_cmpuint((uintptr_t)b.m.planes, ==, 0xdeadbeef000);
	g_assert_cmpint(p[0].m.fd, ==, 100);
	g_assert_cmpint(p[1].m.fd, ==, 101);
	g_assert_cmpuint(b.flags, ==, V4L2_BUF_FLAG_QUEUED);
	g_assert_cmpmem(c->out + 8 + 88 + 128, 32, uuids, 32);

	/* A UUID missing. */
	c->in_len -= 1;
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	g_free(c);
}

static void
test_buffer_plane_counts(void)
{
	struct chain *c = g_new0(struct chain, 1);

	put_mplane_buffer(c, VIDIOC_QBUF, VIRTIO_MEDIA_MMAP, 0, 0);
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	c->in_len = 0;
	put_mplane_buffer(c, VIDIOC_QBUF, VIRTIO_MEDIA_MMAP, VIDEO_MAX_PLANES + 1, 0);
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	c->in_len = 0;
	put_mplane_buffer(c, VIDIOC_QBUF, VIRTIO_MEDIA_MMAP, 1000000, 0);
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	c->in_len = 0;
	put_mplane_buffer(c, VIDIOC_QUERYBUF, VIRTIO_MEDIA_MMAP, VIDEO_MAX_PLANES, 0);
	g_assert_cmpint(parse(c, 0, 1024), ==, 0);
	g_assert_cmpuint(c->cmd.n_planes, ==, VIDEO_MAX_PLANES);
	/* A plane array cut short. */
	c->in_len -= 64;
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	g_free(c);
}

static void
test_buffer_shared_pages(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct virtio_media_sg_entry sg[3] = {
		{.start = 0x10000, .len = 4096},
		{.start = 0x30000, .len = 4096},
		{.start = 0x50000, .len = 100},
	};

	/* Two planes of 8192 and 100 bytes: entries are consumed until each is covered. */
	put_mplane_buffer(c, VIDIOC_QBUF, VIRTIO_MEDIA_SHARED_PAGES, 2, 0);
	((struct v4l2_plane *)(c->in + 16 + 88))[0].length = 8192;
	((struct v4l2_plane *)(c->in + 16 + 88))[1].length = 100;
	put(c, sg, sizeof(sg));
	g_assert_cmpint(parse(c, 0, 1024), ==, 0);
	g_assert_cmpuint(c->cmd.sg_count[0], ==, 2);
	g_assert_cmpuint(c->cmd.sg_count[1], ==, 1);
	g_assert_cmpuint(c->cmd.sg[c->cmd.sg_first[1]].gpa, ==, 0x50000);
	/* The response carries no sg entries. */
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, 0, &c->cmd, false), ==, 8 + 88 + 128);
	vmd_command_finish(&c->cmd);

	/* Not enough entries to cover the planes. */
	c->in_len -= sizeof(sg[0]);
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	vmd_command_finish(&c->cmd);
	/* An empty entry. */
	sg[2].len = 0;
	put(c, &sg[2], sizeof(sg[2]));
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	vmd_command_finish(&c->cmd);
	g_free(c);
}

static void
test_buffer_shared_pages_caps(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct virtio_media_sg_entry e = {.start = 0, .len = 1};

	/* A plane longer than the cap is refused before any entry is read. */
	put_mplane_buffer(c, VIDIOC_QBUF, VIRTIO_MEDIA_SHARED_PAGES, 1, VMD_MAX_PLANE_LENGTH + 1);
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	vmd_command_finish(&c->cmd);
	/* More entries than the cap: the chain runs out (8 KiB), and the cap stops the rest. */
	c->in_len = 0;
	put_mplane_buffer(c, VIDIOC_QBUF, VIRTIO_MEDIA_SHARED_PAGES, 1, 1u << 20);
	while (c->in_len + sizeof(e) <= sizeof(c->in))
		put(c, &e, sizeof(e));
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	vmd_command_finish(&c->cmd);
	g_free(c);
}

static void
test_ext_ctrls(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct v4l2_ext_controls ec = {.which = V4L2_CTRL_WHICH_CUR_VAL, .count = 2};
	struct v4l2_ext_control ctl[2] = {{.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE},
					  {.id = V4L2_CID_MIN_BUFFERS_FOR_OUTPUT}};
	struct v4l2_ext_controls back;

	ec.controls = (void *)(uintptr_t)0x7000;
	put_ioctl(c, 1, VIDIOC_G_EXT_CTRLS);
	put(c, &ec, sizeof(ec));
	put(c, ctl, sizeof(ctl));
	g_assert_cmpint(parse(c, 17, 1024), ==, 0);
	g_assert_cmpuint(c->cmd.ctrls[1].id, ==, V4L2_CID_MIN_BUFFERS_FOR_OUTPUT);
	c->cmd.ctrls[0].value = 5;
	c->cmd.payload.ext_ctrls.controls = NULL;
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, 0, &c->cmd, false), ==, 8 + 32 + 40);
	memcpy(&back, c->out + 8, sizeof(back));
	g_assert_cmpuint((uintptr_t)back.controls, ==, 0x7000);
	g_assert_cmpint(((struct v4l2_ext_control *)(c->out + 40))->value, ==, 5);

	/* A count over the cap. */
	c->in_len = 0;
	ec.count = VMD_MAX_CTRLS + 1;
	put_ioctl(c, 1, VIDIOC_G_EXT_CTRLS);
	put(c, &ec, sizeof(ec));
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	ec.count = UINT32_MAX;
	memcpy(c->in + 16, &ec, sizeof(ec));
	g_assert_cmpint(parse(c, 0, 1024), ==, -EINVAL);
	g_free(c);
}

static void
test_expbuf_uuid(void)
{
	struct chain *c = g_new0(struct chain, 1);
	struct v4l2_exportbuffer e = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, .index = 0};

	put_ioctl(c, 1, VIDIOC_EXPBUF);
	put(c, &e, sizeof(e));
	g_assert_cmpint(parse(c, 0, 1024), ==, 0);
	memset(c->cmd.expbuf_uuid, 0xab, 16);
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, 0, &c->cmd, false), ==, 8 + 64 + 16);
	g_assert_cmpuint(c->out[8 + 64], ==, 0xab);
	g_assert_cmpuint(c->out[8 + 64 + 15], ==, 0xab);
	/* A writable part too short for the UUID gets what fits. */
	g_assert_cmpint(parse(c, 0, 8 + 64 + 4), ==, 0);
	g_assert_cmpuint(vmd_encode_ioctl(&c->req, 0, &c->cmd, false), ==, 8 + 64 + 4);
	g_free(c);
}

static void
test_events(void)
{
	struct virtio_media_event_error err;
	struct virtio_media_event_dqbuf dq;
	struct v4l2_buffer b = {.index = 3,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = VIRTIO_MEDIA_OBJECT,
				.length = 2,
				.flags = V4L2_BUF_FLAG_LAST};
	struct v4l2_plane p[2] = {{.bytesused = 10, .m.fd = 5}, {.bytesused = 20}};

	vmd_event_error(&err, 9, -EIO);
	g_assert_cmpuint(err.hdr.event, ==, VIRTIO_MEDIA_EVT_ERROR);
	g_assert_cmpuint(err.error, ==, EIO);
	b.m.planes = p;
	vmd_event_dqbuf(&dq, 9, &b, p);
	g_assert_null(dq.buffer.m.planes);
	g_assert_cmpint(dq.planes[0].m.fd, ==, 0);
	g_assert_cmpuint(dq.planes[1].bytesused, ==, 20);
	g_assert_cmpuint(dq.buffer.flags, ==, V4L2_BUF_FLAG_LAST);
	g_assert_cmpuint(dq.hdr.session_id, ==, 9);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/protocol/simple-commands", test_simple_commands);
	cb_test_add("/media-device/protocol/mmap-both-lengths", test_mmap_both_lengths);
	cb_test_add("/media-device/protocol/malformed-headers", test_malformed_headers);
	cb_test_add("/media-device/protocol/ioctl-unknown-and-short", test_ioctl_unknown_and_short);
	cb_test_add("/media-device/protocol/buffer-object-uuids", test_buffer_object_uuids);
	cb_test_add("/media-device/protocol/buffer-plane-counts", test_buffer_plane_counts);
	cb_test_add("/media-device/protocol/buffer-shared-pages", test_buffer_shared_pages);
	cb_test_add("/media-device/protocol/buffer-shared-pages-caps",
		    test_buffer_shared_pages_caps);
	cb_test_add("/media-device/protocol/ext-ctrls", test_ext_ctrls);
	cb_test_add("/media-device/protocol/expbuf-uuid", test_expbuf_uuid);
	cb_test_add("/media-device/protocol/events", test_events);
	return g_test_run();
}
