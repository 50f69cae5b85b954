/* SPDX-License-Identifier: MIT */
/*
 * OBJECT buffers (virtio objects resolved through the registry), EXPBUF and protected
 * sessions, with an embedded registry and a memfd exporter standing in for virtio-gpu.
 */
#include "crossbuf/crossbuf.h"
#include "harness.h"
#include "macro.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define W 80 /* a codec stride (128) wider than the width */
#define H 48

/* One exported NV12 picture buffer. */
struct object {
	int fd;
	uint8_t *map;
	size_t size;
	uint8_t uuid[16];
	struct crossbuf_buffer_info info;
};

static void
object_export(struct crossbuf_client *exporter, struct object *o, uint32_t stride, uint32_t rows,
	      uint32_t flags, bool secret)
{
	memset(o, 0, sizeof(*o));
	o->size = ALIGN_UP((size_t)stride * rows * 3 / 2, 4096u);
	o->fd = -1;
	if (secret) {
		o->fd = cb_test_memfd_secret(o->size);
		if (o->fd < 0)
			g_test_message("memfd_secret unavailable (%d): a sealed memfd stands in",
				       o->fd);
	}
	if (o->fd < 0)
		o->fd = cb_test_memfd("object", NULL, o->size);
	g_assert_cmpint(o->fd, >=, 0);
	o->map = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED, o->fd, 0);
	g_assert_true(o->map != MAP_FAILED);
	memset(o->map, 0xcc, o->size);
	o->info.width = W;
	o->info.height = rows;
	o->info.fourcc = V4L2_PIX_FMT_NV12; /* same four characters as DRM_FORMAT_NV12 */
	o->info.num_planes = 2;
	o->info.planes[0].stride = stride;
	o->info.planes[1].offset = stride * rows;
	o->info.planes[1].stride = stride;
	o->info.flags = flags;
	o->info.device_kind = CROSSBUF_DEVICE_TOOL;
	g_assert_cmpint(crossbuf_client_export(exporter, o->fd, &o->info, o->uuid), ==, 0);
}

static void
object_free(struct object *o)
{
	munmap(o->map, o->size);
	close(o->fd);
}

static int
qbuf_object(struct vmdrv_session *s, unsigned index, const uint8_t uuid[16])
{
	struct v4l2_plane p[1] = {{0}};
	struct v4l2_buffer b = {.index = index,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = V4L2_MEMORY_DMABUF,
				.length = 1,
				.m.planes = p};
	uint8_t uuids[1][16];
	struct vmdrv_mem mem = {.uuids = (const uint8_t(*)[16])uuids};

	memcpy(uuids[0], uuid, 16);
	p[0].m.fd = 42; /* a placeholder the device must hand back untouched */
	int r = vmdrv_qbuf_mem(s, &b, &mem);
	if (r == 0)
		g_assert_cmpint(p[0].m.fd, ==, 42);
	return r;
}

/* OUTPUT set up and the first frame queued; the source change seen; CAPTURE on OBJECT. */
static void
start(struct harness *h, struct vmdrv_session *s, struct stream_out *o, unsigned n_cap,
      struct v4l2_format *ret_fmt)
{
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_DMABUF,
					 .count = n_cap};
	uint8_t fill = 0x10;

	out_setup_mmap(s, 4, o);
	out_queue_frames(h, s, o, 0, W, H, &fill, 1, 0, 1);
	wait_source_change(s);
	ret_fmt->type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, ret_fmt), ==, 0);
	g_assert_cmpuint(ret_fmt->fmt.pix_mp.num_planes, ==, 1);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpuint(rb.count, >=, n_cap);
}

static void
check_object(const struct v4l2_format *f, const struct object *o, uint8_t fill)
{
	uint8_t *planes[3] = {o->map, o->map, o->map};
	uint32_t offs[3] = {0, o->info.planes[1].offset, 0};
	struct v4l2_pix_format_mplane pf = f->fmt.pix_mp;

	/* The exporter's own strides: check with them. */
	g_assert_cmpuint(o->info.planes[0].stride, ==, pf.plane_fmt[0].bytesperline);
	check_picture(&pf, W, H, planes, offs, fill);
}

static void
test_decode_into_objects(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct v4l2_format f;
	struct object obj[3];
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	harness_init(&h, true, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start(&h, s, &o, 3, &f);
	for (unsigned i = 0; i < 3; i++) {
		object_export(h.exporter, &obj[i], f.fmt.pix_mp.plane_fmt[0].bytesperline,
			      ALIGN_UP(H, 16u), 0, false);
		g_assert_cmpint(qbuf_object(s, i, obj[i].uuid), ==, 0);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	/* Frame 0 (held since the source change), then 8 more, into the objects. */
	for (unsigned i = 0; i < 9; i++) {
		struct v4l2_buffer b;
		struct v4l2_plane p[3];
		uint8_t fill = (uint8_t)(0x10 + i);

		if (i > 0) {
			unsigned idx = out_dequeue(s);
			out_queue_frames(&h, s, &o, idx, W, H, &fill, 1, 0, 100 + i);
		}
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		g_assert_false(b.flags & V4L2_BUF_FLAG_ERROR);
		g_assert_cmpuint(p[0].bytesused, ==, f.fmt.pix_mp.plane_fmt[0].sizeimage);
		check_object(&f, &obj[b.index], fill);
		g_assert_cmpint(qbuf_object(s, b.index, obj[b.index].uuid), ==, 0);
	}
	vmdrv_close(s);
	out_unmap(&h, &o);
	for (unsigned i = 0; i < 3; i++)
		object_free(&obj[i]);
	harness_fini(&h);
}

static void
test_bad_objects(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct v4l2_format f;
	struct object good, small, narrow, other;
	struct crossbuf_client *foreign;
	uint8_t unknown[16];
	uint32_t stride;

	harness_init(&h, true, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start(&h, s, &o, 2, &f);
	stride = f.fmt.pix_mp.plane_fmt[0].bytesperline;

	/* Unknown: never registered. */
	crossbuf_uuid_generate(unknown);
	g_assert_cmpint(qbuf_object(s, 0, unknown), ==, -EINVAL);
	/* Too small for the CAPTURE format. */
	object_export(h.exporter, &small, stride, 8, 0, false);
	g_assert_cmpint(qbuf_object(s, 0, small.uuid), ==, -EINVAL);
	/* Big enough, but its rows are shorter than the codec's stride. */
	object_export(h.exporter, &narrow, W, ALIGN_UP(H, 16u) * 4, 0, false);
	g_assert_cmpint(qbuf_object(s, 0, narrow.uuid), ==, -EINVAL);
	/* Another VM's (domain's) buffer is invisible. */
	g_assert_cmpint(crossbuf_client_new(&foreign), ==, 0);
	g_assert_cmpint(crossbuf_client_set_domain(foreign, "other-vm"), ==, 0);
	g_assert_cmpint(crossbuf_client_connect_embedded(foreign, h.registry), ==, 0);
	object_export(foreign, &other, stride, ALIGN_UP(H, 16u), 0, false);
	g_assert_cmpint(qbuf_object(s, 0, other.uuid), ==, -EINVAL);
	/* Out-of-range index and the wrong memory type. */
	object_export(h.exporter, &good, stride, ALIGN_UP(H, 16u), 0, false);
	g_assert_cmpint(qbuf_object(s, 7, good.uuid), ==, -EINVAL);
	g_assert_cmpint(qbuf_object(s, 0, good.uuid), ==, 0);
	/* Queued twice. */
	g_assert_cmpint(qbuf_object(s, 0, good.uuid), ==, -EINVAL);

	vmdrv_close(s);
	out_unmap(&h, &o);
	crossbuf_client_unref(foreign);
	object_free(&good);
	object_free(&small);
	object_free(&narrow);
	object_free(&other);
	harness_fini(&h);
}

static void
test_removed_while_queued(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct v4l2_format f;
	struct object a, b;
	struct v4l2_buffer vb;
	struct v4l2_plane p[3];
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	uint32_t stride;

	harness_init(&h, true, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start(&h, s, &o, 2, &f);
	stride = f.fmt.pix_mp.plane_fmt[0].bytesperline;
	object_export(h.exporter, &a, stride, ALIGN_UP(H, 16u), 0, false);
	object_export(h.exporter, &b, stride, ALIGN_UP(H, 16u), 0, false);
	/* Queued, but CAPTURE is not streaming: nothing writes to them yet. */
	g_assert_cmpint(qbuf_object(s, 0, a.uuid), ==, 0);
	g_assert_cmpint(qbuf_object(s, 1, b.uuid), ==, 0);
	/* The exporter removes a: the buffer comes back with ERROR, untouched. */
	g_assert_cmpint(crossbuf_client_remove(h.exporter, a.uuid), ==, 0);
	g_assert_cmpint(media_device_dispatch_registry(h.dev), >=, 1);
	g_assert_cmpint(cap_dequeue(s, &vb, p), ==, 0);
	g_assert_cmpuint(vb.index, ==, 0);
	g_assert_true(vb.flags & V4L2_BUF_FLAG_ERROR);
	g_assert_cmpuint(p[0].bytesused, ==, 0);
	/* Its UUID no longer resolves. */
	g_assert_cmpint(qbuf_object(s, 0, a.uuid), ==, -EINVAL);
	/* Index 0 takes another UUID: resolved afresh, and decoding goes on. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &vb, p), ==, 0);
	g_assert_cmpuint(vb.index, ==, 1);
	g_assert_false(vb.flags & V4L2_BUF_FLAG_ERROR);
	check_object(&f, &b, 0x10);
	for (size_t i = 0; i < a.size; i++) {
		if (a.map[i] != 0xcc)
			g_error("the removed buffer was written at %zu", i);
	}
	vmdrv_close(s);
	out_unmap(&h, &o);
	object_free(&a);
	object_free(&b);
	harness_fini(&h);
}

static void
test_uuid_change_for_index(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct v4l2_format f;
	struct object a, b;
	struct v4l2_buffer vb;
	struct v4l2_plane p[3];
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	uint8_t fill = 0x44;
	uint32_t stride;

	harness_init(&h, true, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start(&h, s, &o, 2, &f);
	stride = f.fmt.pix_mp.plane_fmt[0].bytesperline;
	object_export(h.exporter, &a, stride, ALIGN_UP(H, 16u), 0, false);
	object_export(h.exporter, &b, stride, ALIGN_UP(H, 16u), 0, false);
	g_assert_cmpint(qbuf_object(s, 0, a.uuid), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &vb, p), ==, 0);
	g_assert_cmpuint(vb.index, ==, 0);
	check_object(&f, &a, 0x10);
	memset(a.map, 0xcc, a.size);
	/* Same index, new UUID: the next frame lands in b, a stays as it is. */
	g_assert_cmpint(qbuf_object(s, 0, b.uuid), ==, 0);
	out_dequeue(s);
	out_queue_frames(&h, s, &o, 0, W, H, &fill, 1, 0, 2);
	g_assert_cmpint(cap_dequeue(s, &vb, p), ==, 0);
	g_assert_cmpuint(vb.index, ==, 0);
	check_object(&f, &b, fill);
	g_assert_cmpuint(a.map[0], ==, 0xcc);
	vmdrv_close(s);
	out_unmap(&h, &o);
	object_free(&a);
	object_free(&b);
	harness_fini(&h);
}

static void
test_expbuf(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_exportbuffer e = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, .index = 1};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_MMAP};
	struct crossbuf_buffer_info info;
	uint8_t uuid[16], again[16];
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, fd;
	uint8_t fill = 0x10;
	uint8_t *map;

	harness_init(&h, true, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	out_setup_mmap(s, 2, &o);
	out_queue_frames(&h, s, &o, 0, W, H, &fill, 1, 0, 1);
	wait_source_change(s);
	cap_setup_mmap(s, V4L2_PIX_FMT_NV12, 2, &c);
	g_assert_cmpint(vmdrv_expbuf(s, &e, uuid), ==, 0);
	g_assert_cmpint(vmdrv_expbuf(s, &e, again), ==, 0);
	g_assert_cmpmem(uuid, 16, again, 16);
	g_assert_false(crossbuf_uuid_is_reserved(uuid));

	/* Another device (the exporter client here) imports it and sees the same memory. */
	g_assert_cmpint(crossbuf_client_lookup(h.exporter, uuid, &info, &fd), ==, 0);
	g_assert_cmpuint(info.fourcc, ==, V4L2_PIX_FMT_NV12);
	g_assert_cmpuint(info.width, ==, W);
	g_assert_cmpuint(info.planes[0].stride, ==, c.fmt.plane_fmt[0].bytesperline);
	g_assert_true(info.flags & CROSSBUF_BUFFER_GUEST_MAPPABLE);
	map = mmap(NULL, info.size, PROT_READ, MAP_SHARED, fd, 0);
	g_assert_true(map != MAP_FAILED);
	g_assert_true(memcmp(map, c.ptr[1][0], 4096) == 0);
	munmap(map, info.size);
	close(fd);

	/* Bad requests. */
	e.plane = 1;
	g_assert_cmpint(vmdrv_expbuf(s, &e, again), ==, -EINVAL);
	e.plane = 0;
	e.index = 9;
	g_assert_cmpint(vmdrv_expbuf(s, &e, again), ==, -EINVAL);
	e.index = 0;
	e.flags = 0x80000000u;
	g_assert_cmpint(vmdrv_expbuf(s, &e, again), ==, -EINVAL);

	/* Freeing the buffers withdraws the export. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(h.exporter, uuid, &info, &fd), ==, -ENOENT);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

/* Whether any luma row of a fake frame (w bytes of fill + y) appears in [p, p + len). */
static bool
contains_rows(const uint8_t *p, size_t len, uint8_t fill, uint32_t w, uint32_t h)
{
	for (uint32_t y = 0; y < h; y++) {
		uint8_t row[256];

		memset(row, (uint8_t)(fill + y), w);
		if (memmem(p, len, row, w) != NULL)
			return true;
	}
	return false;
}

static void
protected_session(bool right)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_USERPTR,
					 .count = 1};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	int otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, ctype = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	struct object obj[2];
	struct virtio_media_sg_entry sg;
	struct vmdrv_mem mem = {0};
	struct v4l2_plane p[3];
	struct v4l2_buffer b;
	uint64_t gpa;
	const uint8_t fills[3] = {0x31, 0x57, 0x9d};

	harness_init(&h, true, right ? CROSSBUF_RIGHT_PROTECTED : 0);
	/* Guest memory is canary everywhere (0x05: no luma row of fills[] holds it). */
	memset(h.guest, 0x05, HARNESS_GUEST_SIZE);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &otype), ==, 0);

	/* The bitstream (not secret) comes from guest pages. */
	gpa = harness_guest_alloc(&h, 4096, 0x05);
	for (unsigned i = 0; i < 3; i++) {
		struct fake_frame fr = {.width = W, .height = H, .fill = fills[i]};

		memcpy(fr.magic, FAKE_MAGIC, 4);
		memcpy((uint8_t *)harness_guest_ptr(&h, gpa) + i * FAKE_FRAME_SIZE, &fr,
		       sizeof(fr));
	}
	sg = (struct virtio_media_sg_entry){.start = gpa, .len = 4096};
	mem.sg[0] = &sg;
	mem.n_sg[0] = 1;
	memset(p, 0, sizeof(p));
	p[0].length = 4096;
	p[0].bytesused = 3 * FAKE_FRAME_SIZE;
	b = (struct v4l2_buffer){.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				 .memory = V4L2_MEMORY_USERPTR,
				 .length = 1,
				 .m.planes = p};
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &mem), ==, 0);
	wait_source_change(s);
	/* The bitstream is copied: wipe it from guest memory so only decoded rows could match. */
	memset(harness_guest_ptr(&h, gpa), 0x05, 4096);

	f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, 0);
	rb = (struct v4l2_requestbuffers){.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					  .memory = V4L2_MEMORY_DMABUF,
					  .count = 2};
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	for (unsigned i = 0; i < 2; i++)
		object_export(h.exporter, &obj[i], f.fmt.pix_mp.plane_fmt[0].bytesperline,
			      ALIGN_UP(H, 16u), CROSSBUF_BUFFER_PROTECTED, true);
	if (!right) {
		/* A device without the right to protected buffers cannot resolve them. */
		g_assert_cmpint(qbuf_object(s, 0, obj[0].uuid), ==, -EACCES);
		goto out;
	}
	for (unsigned i = 0; i < 2; i++)
		g_assert_cmpint(qbuf_object(s, i, obj[i].uuid), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &ctype), ==, 0);
	for (unsigned i = 0; i < 3; i++) {
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		g_assert_false(b.flags & V4L2_BUF_FLAG_ERROR);
		/* Sizes only. */
		g_assert_cmpuint(p[0].bytesused, ==, f.fmt.pix_mp.plane_fmt[0].sizeimage);
		g_assert_cmpuint(p[0].m.fd, ==, 0);
		if (i < 2)
			g_assert_cmpint(qbuf_object(s, b.index, obj[b.index].uuid), ==, 0);
	}
	/* The frames are in the protected buffers (the host can check) ... */
	{
		bool seen[3] = {false, false, false};

		for (unsigned k = 0; k < 2; k++) {
			for (unsigned i = 0; i < 3; i++)
				seen[i] |= contains_rows(obj[k].map, obj[k].size, fills[i], W, H);
		}
		g_assert_true(seen[2]);
	}
	/* ... and no decoded row reached guest memory or the shared memory region. */
	for (unsigned i = 0; i < 3; i++) {
		g_assert_false(contains_rows(h.guest, HARNESS_GUEST_SIZE, fills[i], W, H));
	}
	/* No path out: guest-visible CAPTURE memory is refused in this session. */
	rb.count = 0;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &ctype), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	rb.count = 2;
	rb.memory = V4L2_MEMORY_USERPTR;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, -EPERM);
	rb.memory = V4L2_MEMORY_MMAP;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, -EPERM);
	{
		struct v4l2_create_buffers cb = {.count = 1, .memory = V4L2_MEMORY_MMAP};

		cb.format = f;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_CREATE_BUFS, &cb), ==, -EPERM);
	}
out:
	vmdrv_close(s);
	for (unsigned i = 0; i < 2; i++)
		object_free(&obj[i]);
	harness_fini(&h);
}

static void
test_protected_canary(void)
{
	protected_session(true);
}

static void
test_protected_without_right(void)
{
	protected_session(false);
}

static void
test_session_error_releases(void)
{
	struct harness h;
	struct vmdrv_session *s, *other;
	struct stream_out o;
	struct stream_cap c;
	struct v4l2_exportbuffer e = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct crossbuf_buffer_info info;
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	uint8_t uuid[16], fill = 0x10;
	int fd;

	harness_init(&h, true, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	out_setup_mmap(s, 2, &o);
	out_queue_frames(&h, s, &o, 0, W, H, &fill, 1, 0, 1);
	wait_source_change(s);
	cap_setup_mmap(s, V4L2_PIX_FMT_NV12, 2, &c);
	g_assert_cmpint(vmdrv_expbuf(s, &e, uuid), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	/* The codec breaks: ERROR event, and the session lets go of everything at once. */
	out_queue_frames(&h, s, &o, 1, W, H, &fill, 1, FAKE_FLAG_BREAK, 2);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, -EIO);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, -EIO);
	/* (released at the next command the device runs, whichever session it is for) */
	g_assert_cmpint(vmdrv_open(h.drv, &other), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(h.exporter, uuid, &info, &fd), ==, -ENOENT);
	/* Its mappings stay until MUNMAP; the session id until CLOSE. */
	g_assert_cmpuint(media_device_session_count(h.dev), ==, 2);
	vmdrv_close(other);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	vmdrv_close(s);
	g_assert_cmpuint(media_device_session_count(h.dev), ==, 0);
	harness_fini(&h);
}

static void
test_output_object(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_DMABUF,
					 .count = 1};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	int type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	struct crossbuf_buffer_info info = {.device_kind = CROSSBUF_DEVICE_TOOL};
	struct fake_frame fr = {.width = W, .height = H, .fill = 0x42};
	uint8_t uuid[1][16];
	struct vmdrv_mem mem = {.uuids = (const uint8_t(*)[16])uuid};
	struct v4l2_plane p[1] = {{.bytesused = FAKE_FRAME_SIZE}};
	struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				.memory = V4L2_MEMORY_DMABUF,
				.length = 1,
				.m.planes = p};
	int fd;

	/* Bitstream in a virtio object (another device's buffer) rather than guest memory. */
	harness_init(&h, true, 0);
	memcpy(fr.magic, FAKE_MAGIC, 4);
	fd = cb_test_memfd("bitstream", NULL, 4096);
	g_assert_cmpint(pwrite(fd, &fr, sizeof(fr), 0), ==, (ssize_t)sizeof(fr));
	g_assert_cmpint(crossbuf_client_export(h.exporter, fd, &info, uuid[0]), ==, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	/* bytesused beyond the object: refused. */
	p[0].bytesused = 8192;
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &mem), ==, -EINVAL);
	p[0].bytesused = FAKE_FRAME_SIZE;
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &mem), ==, 0);
	/* The codec read the frame header from the object. */
	wait_source_change(s);
	vmdrv_close(s);
	close(fd);
	harness_fini(&h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/object/decode-into-objects", test_decode_into_objects);
	cb_test_add("/media-device/object/bad-objects", test_bad_objects);
	cb_test_add("/media-device/object/removed-while-queued", test_removed_while_queued);
	cb_test_add("/media-device/object/uuid-change-for-index", test_uuid_change_for_index);
	cb_test_add("/media-device/object/expbuf", test_expbuf);
	cb_test_add("/media-device/object/protected-canary", test_protected_canary);
	cb_test_add("/media-device/object/protected-without-right", test_protected_without_right);
	cb_test_add("/media-device/object/session-error-releases", test_session_error_releases);
	cb_test_add("/media-device/object/output-object", test_output_object);
	return g_test_run();
}
