/* SPDX-License-Identifier: MIT */
/*
 * Malformed and hostile requests sent to the whole device as raw descriptor chains: every
 * one gets an error status (or, when even the status does not fit, nothing), the session
 * survives where it should, and nothing crashes, leaks or hangs.
 */
#include "harness.h"
#include "macro.h"

#include <errno.h>
#include <string.h>

struct raw {
	uint8_t in[4096];
	size_t in_len;
	uint8_t out[4096];
};

static void
put(struct raw *r, const void *p, size_t len)
{
	g_assert_cmpuint(r->in_len + len, <=, sizeof(r->in));
	memcpy(r->in + r->in_len, p, len);
	r->in_len += len;
}

static void
put_ioctl(struct raw *r, uint32_t session, unsigned long vidioc)
{
	struct virtio_media_cmd_ioctl h = {
		.hdr.cmd = VIRTIO_MEDIA_CMD_IOCTL, .session_id = session, .code = _IOC_NR(vidioc)};

	r->in_len = 0;
	put(r, &h, sizeof(h));
}

/* Sends r; returns the status (positive errno) and checks the used length. */
static uint32_t
send_raw(struct harness *h, struct raw *r, size_t out_len, int *ret_used)
{
	struct virtio_media_resp_header resp;
	int used;

	memset(r->out, 0xee, sizeof(r->out));
	used = vmdrv_raw(h->drv, r->in, r->in_len, r->out, out_len);
	g_assert_cmpint(used, >=, 0);
	if (ret_used)
		*ret_used = used;
	if (used < (int)sizeof(resp))
		return UINT32_MAX;
	memcpy(&resp, r->out, sizeof(resp));
	return resp.status;
}

static void
test_commands(void)
{
	struct harness h;
	struct raw *r = g_new0(struct raw, 1);
	struct vmdrv_session *s;
	uint32_t bogus[2] = {0, 0};
	struct virtio_media_cmd_close cl = {.hdr.cmd = VIRTIO_MEDIA_CMD_CLOSE, .session_id = 999};
	struct virtio_media_cmd_mmap mm = {.hdr.cmd = VIRTIO_MEDIA_CMD_MMAP};
	struct virtio_media_cmd_munmap mu = {.hdr.cmd = VIRTIO_MEDIA_CMD_MUNMAP, .driver_addr = 64};
	int used;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	/* Empty, short and unknown commands. */
	g_assert_cmpuint(send_raw(&h, r, 64, &used), ==, EINVAL);
	put(r, bogus, 3);
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, EINVAL);
	r->in_len = 0;
	bogus[0] = 77;
	put(r, bogus, sizeof(bogus));
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, ENOTTY);
	bogus[0] = 0;
	r->in_len = 0;
	put(r, bogus, sizeof(bogus));
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, ENOTTY);
	/* No writable room at all: nothing is written, nothing breaks. */
	g_assert_cmpuint(send_raw(&h, r, 0, &used), ==, UINT32_MAX);
	g_assert_cmpint(used, ==, 0);
	g_assert_cmpuint(send_raw(&h, r, 7, &used), ==, UINT32_MAX);
	g_assert_cmpuint(r->out[0], ==, 0xee);
	/* OPEN with no room for the session id: refused, and no session is leaked. */
	r->in_len = 0;
	bogus[0] = VIRTIO_MEDIA_CMD_OPEN;
	put(r, bogus, sizeof(bogus));
	g_assert_cmpuint(send_raw(&h, r, 8, NULL), ==, EINVAL);
	/* CLOSE of an unknown session, and a truncated CLOSE: no answer, no effect. */
	r->in_len = 0;
	put(r, &cl, sizeof(cl));
	g_assert_cmpuint(send_raw(&h, r, 64, &used), ==, UINT32_MAX);
	g_assert_cmpint(used, ==, 0);
	r->in_len = 0;
	put(r, &cl, 10);
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, UINT32_MAX);
	g_assert_cmpuint(media_device_session_count(h.dev), ==, 1);
	/* MMAP: unknown session, bad offsets, unknown flags; MUNMAP of nothing. */
	r->in_len = 0;
	mm.session_id = 999;
	put(r, &mm, sizeof(mm));
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, EINVAL);
	r->in_len = 0;
	mm.session_id = vmdrv_session_id(s);
	mm.offset = 0x123;
	put(r, &mm, sizeof(mm));
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, EINVAL);
	r->in_len = 0;
	mm.offset = 0xfffff000;
	put(r, &mm, sizeof(mm));
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, EINVAL);
	r->in_len = 0;
	mm.offset = 0;
	mm.flags = 0xff;
	put(r, &mm, sizeof(mm));
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, EINVAL);
	r->in_len = 0;
	put(r, &mu, sizeof(mu));
	g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, EINVAL);
	vmdrv_close(s);
	harness_fini(&h);
	g_free(r);
}

static void
test_ioctls(void)
{
	struct harness h;
	struct raw *r = g_new0(struct raw, 1);
	struct vmdrv_session *s;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {
		.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .memory = V4L2_MEMORY_MMAP, .count = 2};
	struct v4l2_buffer b = {
		.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .memory = V4L2_MEMORY_MMAP, .length = 1};
	struct v4l2_plane p = {.bytesused = 12};
	uint32_t id;
	int32_t type;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	id = vmdrv_session_id(s);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);

	/* An unknown session: EINVAL whatever the ioctl. */
	put_ioctl(r, 12345, VIDIOC_G_FMT);
	put(r, &f, sizeof(f));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	/* ioctls the device does not implement, and those virtio-media replaces. */
	put_ioctl(r, id, VIDIOC_QUERYCAP);
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, ENOTTY);
	put_ioctl(r, id, VIDIOC_DQBUF);
	put(r, &b, sizeof(b));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, ENOTTY);
	put_ioctl(r, id, VIDIOC_G_STD);
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, ENOTTY);
	put_ioctl(r, id, VIDIOC_S_JPEGCOMP);
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, ENOTTY);
	put_ioctl(r, id, VIDIOC_PREPARE_BUF);
	put(r, &b, sizeof(b));
	put(r, &p, sizeof(p));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, ENOTTY);
	/* A payload cut short. */
	put_ioctl(r, id, VIDIOC_S_FMT);
	put(r, &f, 100);
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	/* STREAMON of nonsense types. */
	for (int32_t t = -1; t < 16; t++) {
		if (t == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE)
			continue;
		put_ioctl(r, id, VIDIOC_STREAMON);
		put(r, &t, sizeof(t));
		g_assert_cmpuint(send_raw(&h, r, 64, NULL), ==, EINVAL);
	}
	/* QBUF: plane count 0 and 9, index out of range, wrong memory, bytesused > length. */
	b.length = 0;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	b.length = 9;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	for (unsigned i = 0; i < 9; i++)
		put(r, &p, sizeof(p));
	g_assert_cmpuint(send_raw(&h, r, 1024, NULL), ==, EINVAL);
	b.length = 1;
	b.index = 2;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	put(r, &p, sizeof(p));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	b.index = 0;
	b.memory = V4L2_MEMORY_OVERLAY;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	put(r, &p, sizeof(p));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	b.memory = V4L2_MEMORY_MMAP;
	p.bytesused = 1u << 30;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	put(r, &p, sizeof(p));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	p.bytesused = 12;
	p.data_offset = 13;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	put(r, &p, sizeof(p));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	/* A single-planar type on this multi-planar device. */
	b.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
	b.length = 4096;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	/* REQBUFS of an unknown memory type; a huge count is capped. */
	rb.memory = 77;
	put_ioctl(r, id, VIDIOC_REQBUFS);
	put(r, &rb, sizeof(rb));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	rb.memory = V4L2_MEMORY_DMABUF;
	rb.count = UINT32_MAX;
	put_ioctl(r, id, VIDIOC_REQBUFS);
	put(r, &rb, sizeof(rb));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, 0);
	memcpy(&rb, r->out + 8, sizeof(rb));
	g_assert_cmpuint(rb.count, ==, 32);
	/* OBJECT QBUF whose UUIDs are missing; EXPBUF of a non-MMAP buffer. */
	b = (struct v4l2_buffer){.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				 .memory = V4L2_MEMORY_DMABUF,
				 .length = 1};
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	put(r, &p, sizeof(p));
	put(r, "short", 5);
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	{
		struct v4l2_exportbuffer e = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};

		put_ioctl(r, id, VIDIOC_EXPBUF);
		put(r, &e, sizeof(e));
		g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	}
	/* Extended controls with a huge count. */
	{
		struct v4l2_ext_controls ec = {.which = V4L2_CTRL_WHICH_CUR_VAL, .count = 1u << 31};

		put_ioctl(r, id, VIDIOC_G_EXT_CTRLS);
		put(r, &ec, sizeof(ec));
		g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	}
	/* The session is still fine. */
	type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	vmdrv_close(s);
	harness_fini(&h);
	g_free(r);
}

static void
test_shared_pages_hostile(void)
{
	struct harness h;
	struct raw *r = g_new0(struct raw, 1);
	struct vmdrv_session *s;
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_USERPTR,
					 .count = 1};
	struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				.memory = V4L2_MEMORY_USERPTR,
				.length = 1};
	struct v4l2_plane p = {.bytesused = 12, .length = 8192};
	struct virtio_media_sg_entry sg[3];
	uint32_t id;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	id = vmdrv_session_id(s);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	/* Outside guest memory, wrapping around, straddling the end of guest memory. */
	sg[0] = (struct virtio_media_sg_entry){.start = 0, .len = 8192};
	sg[1] = (struct virtio_media_sg_entry){.start = UINT64_MAX - 100, .len = 8192};
	sg[2] = (struct virtio_media_sg_entry){
		.start = HARNESS_GUEST_GPA + HARNESS_GUEST_SIZE - 4096, .len = 8192};
	for (unsigned i = 0; i < 3; i++) {
		put_ioctl(r, id, VIDIOC_QBUF);
		put(r, &b, sizeof(b));
		put(r, &p, sizeof(p));
		put(r, &sg[i], sizeof(sg[i]));
		g_assert_cmpuint(send_raw(&h, r, 512, NULL), !=, 0);
	}
	/* A plane length over the cap. */
	p.length = 1u << 30;
	put_ioctl(r, id, VIDIOC_QBUF);
	put(r, &b, sizeof(b));
	put(r, &p, sizeof(p));
	g_assert_cmpuint(send_raw(&h, r, 512, NULL), ==, EINVAL);
	vmdrv_close(s);
	harness_fini(&h);
	g_free(r);
}

static void
test_memory_budget(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .count = 32};

	/* 8192x8192 CAPTURE buffers (96 MiB each): the session's budget stops the allocation. */
	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
	f.fmt.pix_mp.width = 100000;
	f.fmt.pix_mp.height = 100000;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.width, ==, 8192);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpuint(rb.count, <, 32);
	g_assert_cmpuint(rb.count, >, 0);
	rb.count = 0;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	vmdrv_close(s);
	harness_fini(&h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/malformed/commands", test_commands);
	cb_test_add("/media-device/malformed/ioctls", test_ioctls);
	cb_test_add("/media-device/malformed/shared-pages", test_shared_pages_hostile);
	cb_test_add("/media-device/malformed/memory-budget", test_memory_budget);
	return g_test_run();
}
