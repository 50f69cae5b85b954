/* SPDX-License-Identifier: MIT */
/*
 * The user-space driver library alone, against a scripted device: what it sends, how it
 * reads answers (errors, short answers) and events (LAST and EPIPE, ERROR, garbage).
 */
#include "macro.h"
#include "testutil.h"
#include "vmdrv.h"

#include <errno.h>
#include <string.h>

/* The scripted device: answers OPEN with session 7, everything else with status/used. */
struct script {
	uint32_t status;
	size_t used; /* bytes "written" for non-OPEN commands; SIZE_MAX: all offered */
	uint8_t last_in[1024];
	size_t last_in_len;
	unsigned requests;
};

static int
submit(void *userdata, const struct cb_request *req, size_t *ret_used)
{
	struct script *sc = userdata;
	struct virtio_media_cmd_header h;
	size_t room = iov_size(req->out, req->n_out);

	sc->requests++;
	sc->last_in_len = iov_to_buf(req->in, req->n_in, 0, sc->last_in, sizeof(sc->last_in));
	memcpy(&h, sc->last_in, sizeof(h));
	if (h.cmd == VIRTIO_MEDIA_CMD_OPEN) {
		struct virtio_media_resp_open r = {.session_id = 7};

		*ret_used = iov_from_buf(req->out, req->n_out, 0, &r, sizeof(r));
		return 0;
	}
	if (h.cmd == VIRTIO_MEDIA_CMD_CLOSE) {
		*ret_used = 0;
		return 0;
	}
	{
		struct virtio_media_resp_header r = {.status = sc->status};
		size_t used = sc->used == SIZE_MAX ? room : MIN(sc->used, room);

		iov_from_buf(req->out, req->n_out, 0, &r, MIN(sizeof(r), used));
		*ret_used = used;
	}
	return 0;
}

static void
setup(struct script *sc, struct vmdrv **drv, struct vmdrv_session **s)
{
	struct virtio_media_config cfg = {.device_caps =
						  V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING};
	struct vmdrv_transport t = {.submit = submit, .userdata = sc};

	memset(sc, 0, sizeof(*sc));
	sc->used = SIZE_MAX;
	memcpy(cfg.card, "0123456789abcdef0123456789abcdef", 32); /* no NUL: all 32 used */
	g_assert_cmpint(vmdrv_new(&t, &cfg, drv), ==, 0);
	g_assert_cmpint(vmdrv_open(*drv, s), ==, 0);
	g_assert_cmpuint(vmdrv_session_id(*s), ==, 7);
	vmdrv_set_timeout(*s, 0);
}

static void
push_dqbuf(struct vmdrv *drv, uint32_t session, uint32_t type, uint32_t index, uint32_t flags)
{
	struct virtio_media_event_dqbuf ev = {.hdr = {VIRTIO_MEDIA_EVT_DQBUF, session}};

	ev.buffer.type = type;
	ev.buffer.index = index;
	ev.buffer.flags = flags;
	ev.buffer.length = 1;
	ev.planes[0].bytesused = 100 + index;
	vmdrv_push_event(drv, &ev, sizeof(ev));
}

static void
test_querycap_local(void)
{
	struct script sc;
	struct vmdrv *drv;
	struct vmdrv_session *s;
	struct v4l2_capability cap;
	unsigned before;

	setup(&sc, &drv, &s);
	before = sc.requests;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCAP, &cap), ==, 0);
	g_assert_cmpuint(sc.requests, ==, before);
	g_assert_cmpstr((const char *)cap.driver, ==, "virtio-media");
	g_assert_cmpstr((const char *)cap.bus_info, ==, "platform:virtio-media");
	/* A card name using all 32 bytes is still terminated in v4l2_capability. */
	g_assert_cmpuint(strlen((const char *)cap.card), ==, 31);
	vmdrv_close(s);
	vmdrv_free(drv);
}

static void
test_ioctl_wire(void)
{
	struct script sc;
	struct vmdrv *drv;
	struct vmdrv_session *s;
	struct v4l2_plane p[2] = {{.bytesused = 5}, {.bytesused = 6}};
	struct v4l2_buffer b = {.index = 3,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = V4L2_MEMORY_MMAP,
				.length = 2,
				.m.planes = p};
	struct virtio_media_cmd_ioctl h;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};

	setup(&sc, &drv, &s);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &b), ==, 0);
	/* header, v4l2_buffer, then the planes the pointer pointed to */
	g_assert_cmpuint(sc.last_in_len, ==, 16 + 88 + 2 * 64);
	memcpy(&h, sc.last_in, sizeof(h));
	g_assert_cmpuint(h.session_id, ==, 7);
	g_assert_cmpuint(h.code, ==, _IOC_NR(VIDIOC_QBUF));
	g_assert_cmpuint(((struct v4l2_plane *)(sc.last_in + 16 + 88))[1].bytesused, ==, 6);
	/* DMABUF and USERPTR buffers need their UUIDs or sg lists. */
	b.memory = V4L2_MEMORY_DMABUF;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &b), ==, -EINVAL);
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, NULL), ==, -EINVAL);
	/* Device errors come back as negative errnos; a short answer is EIO. */
	sc.status = EBUSY;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, -EBUSY);
	sc.status = 0;
	sc.used = 8 + 100;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, -EIO);
	sc.used = 4;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, -EIO);
	vmdrv_close(s);
	vmdrv_free(drv);
}

static void
test_last_and_epipe(void)
{
	struct script sc;
	struct vmdrv *drv;
	struct vmdrv_session *s;
	struct v4l2_plane p[1];
	struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, .length = 1};
	struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_START};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	setup(&sc, &drv, &s);
	b.m.planes = p;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EAGAIN);
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, 0, 0);
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, 1, V4L2_BUF_FLAG_LAST);
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, 2, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, 0);
	g_assert_cmpuint(b.index, ==, 0);
	g_assert_cmpuint(p[0].bytesused, ==, 100);
	g_assert_true(b.m.planes == p);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_LAST);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EPIPE);
	/* OUTPUT is not affected. */
	b.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, 0);
	g_assert_cmpuint(b.index, ==, 2);
	/* START resumes; so does STREAMOFF/STREAMON. */
	b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EAGAIN);
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, 0, V4L2_BUF_FLAG_LAST);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EPIPE);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EAGAIN);
	/* STREAMOFF drops finished buffers not yet dequeued; so does REQBUFS(0). */
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, 1, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EAGAIN);
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, 1, 0);
	{
		struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EAGAIN);
	/* A planes array too small for the event's buffer. */
	{
		struct virtio_media_event_dqbuf ev = {.hdr = {VIRTIO_MEDIA_EVT_DQBUF, 7}};

		ev.buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
		ev.buffer.length = 3;
		vmdrv_push_event(drv, &ev, sizeof(ev));
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, -EINVAL);
	}
	vmdrv_close(s);
	vmdrv_free(drv);
}

static void
test_events_hostile(void)
{
	struct script sc;
	struct vmdrv *drv;
	struct vmdrv_session *s;
	struct v4l2_event e;
	struct virtio_media_event_event ev = {.hdr = {VIRTIO_MEDIA_EVT_EVENT, 7}};
	struct virtio_media_event_error err = {.hdr = {VIRTIO_MEDIA_EVT_ERROR, 7}, .error = ENOMEM};
	uint8_t big[VIRTIO_MEDIA_EVENT_MAX_SIZE + 1] = {0};
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};

	setup(&sc, &drv, &s);
	/* Too short, too long, unknown type, unknown session, truncated DQBUF: dropped. */
	vmdrv_push_event(drv, &ev, 4);
	vmdrv_push_event(drv, big, sizeof(big));
	ev.hdr.event = 99;
	vmdrv_push_event(drv, &ev, sizeof(ev));
	ev.hdr.event = VIRTIO_MEDIA_EVT_EVENT;
	ev.hdr.session_id = 8;
	vmdrv_push_event(drv, &ev, sizeof(ev));
	ev.hdr.session_id = 7;
	vmdrv_push_event(drv, &ev, sizeof(ev) - 1);
	g_assert_cmpuint(vmdrv_dropped_events(drv), ==, 5);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQEVENT, &e), ==, -EAGAIN);
	/* A flood beyond the per-session queue is dropped, not grown without bound. */
	ev.event.type = V4L2_EVENT_EOS;
	for (unsigned i = 0; i < 1000; i++)
		vmdrv_push_event(drv, &ev, sizeof(ev));
	g_assert_cmpuint(vmdrv_dropped_events(drv), >, 5);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQEVENT, &e), ==, 0);
	g_assert_cmpuint(e.type, ==, V4L2_EVENT_EOS);
	/* ERROR: the session is dead. */
	vmdrv_push_event(drv, &err, sizeof(err));
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, -EIO);
	vmdrv_close(s);
	vmdrv_free(drv);
}

static void
test_poll(void)
{
	struct script sc;
	struct vmdrv *drv;
	struct vmdrv_session *s;
	struct virtio_media_event_event ev = {.hdr = {VIRTIO_MEDIA_EVT_EVENT, 7}};
	struct virtio_media_event_error err = {.hdr = {VIRTIO_MEDIA_EVT_ERROR, 7}, .error = EIO};
	struct v4l2_plane p[1];
	struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, .length = 1};

	setup(&sc, &drv, &s);
	b.m.planes = p;
	g_assert_cmpint(vmdrv_poll(s, 0), ==, 0);
	g_assert_cmpint(vmdrv_poll(s, 20), ==, 0);
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, 0, 0);
	g_assert_cmpint(vmdrv_poll(s, -1), ==, VMDRV_POLL_OUTPUT);
	vmdrv_push_event(drv, &ev, sizeof(ev));
	push_dqbuf(drv, 7, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, 0, V4L2_BUF_FLAG_LAST);
	g_assert_cmpint(vmdrv_poll(s, 0), ==,
			VMDRV_POLL_OUTPUT | VMDRV_POLL_EVENT | VMDRV_POLL_CAPTURE);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, 0);
	/* After LAST, CAPTURE stays readable: DQBUF answers EPIPE at once. */
	g_assert_true(vmdrv_poll(s, 0) & VMDRV_POLL_CAPTURE);
	vmdrv_push_event(drv, &err, sizeof(err));
	g_assert_true(vmdrv_poll(s, 0) & VMDRV_POLL_ERROR);
	vmdrv_close(s);
	vmdrv_free(drv);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/vmdrv/querycap-local", test_querycap_local);
	cb_test_add("/media-device/vmdrv/ioctl-wire", test_ioctl_wire);
	cb_test_add("/media-device/vmdrv/last-and-epipe", test_last_and_epipe);
	cb_test_add("/media-device/vmdrv/events-hostile", test_events_hostile);
	cb_test_add("/media-device/vmdrv/poll", test_poll);
	return g_test_run();
}
