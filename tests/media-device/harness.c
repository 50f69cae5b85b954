/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include "crossbuf/crossbuf.h"
#include "macro.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_SHM_MAPS 256

static struct {
	uint64_t addr, len;
} shm_table[MAX_SHM_MAPS];

/*
 * With CROSSBUF_MEDIA_RECORD=DIR, every request of a test is appended to DIR/<test path> in
 * the format of tests/media-device/fuzz-device.c, to seed its corpus.
 */
static FILE *
record_open(void)
{
	const char *dir = g_getenv("CROSSBUF_MEDIA_RECORD");
	char *name, *full;
	FILE *f;

	if (dir == NULL)
		return NULL;
	name = g_strdelimit(g_strdup(g_test_get_path()), "/", '_');
	full = g_build_filename(dir, name, NULL);
	f = fopen(full, "abe");
	g_free(full);
	g_free(name);
	return f;
}

static void
record(FILE *f, const struct cb_request *req)
{
	uint8_t buf[65535];
	uint16_t in_len, out_len;

	if (f == NULL)
		return;
	in_len = (uint16_t)iov_to_buf(req->in, req->n_in, 0, buf, sizeof(buf));
	out_len = (uint16_t)MIN(iov_size(req->out, req->n_out), (size_t)UINT16_MAX);
	fwrite(&in_len, 2, 1, f);
	fwrite(&out_len, 2, 1, f);
	fwrite(buf, 1, in_len, f);
}

static int
submit(void *userdata, const struct cb_request *req, size_t *ret_used)
{
	struct harness *h = userdata;

	record(h->record, req);
	*ret_used = media_device_handle_command(h->dev, req);
	return 0;
}

static void
send_event(void *userdata, const void *event, size_t len)
{
	struct harness *h = userdata;

	/* The eventq buffer the driver posted holds VIRTIO_MEDIA_EVENT_MAX_SIZE bytes. */
	g_assert_cmpuint(len, <=, VIRTIO_MEDIA_EVENT_MAX_SIZE);
	vmdrv_push_event(h->drv, event, len);
}

static int
shm_map(void *userdata, int fd, uint64_t len, bool writable, uint64_t *ret_addr)
{
	struct harness *h = userdata;
	uint64_t addr = h->shm_next, mlen = ALIGN_UP(len, 4096u);
	void *p;

	if (addr + mlen > HARNESS_SHM_SIZE || h->shm_maps >= MAX_SHM_MAPS)
		return -ENOSPC;
	p = mmap(h->shm + addr, mlen, PROT_READ | (writable ? PROT_WRITE : 0),
		 MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (unsigned i = 0; i < MAX_SHM_MAPS; i++) {
		if (shm_table[i].len == 0) {
			shm_table[i].addr = addr;
			shm_table[i].len = mlen;
			break;
		}
	}
	h->shm_next += mlen;
	h->shm_maps++;
	*ret_addr = addr;
	return 0;
}

static int
shm_unmap(void *userdata, uint64_t addr)
{
	struct harness *h = userdata;

	for (unsigned i = 0; i < MAX_SHM_MAPS; i++) {
		if (shm_table[i].len && shm_table[i].addr == addr) {
			void *p = mmap(h->shm + addr, shm_table[i].len, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			g_assert_true(p != MAP_FAILED);
			shm_table[i].len = 0;
			h->shm_maps--;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct media_device_ops ops = {
	.send_event = send_event,
	.shm_map = shm_map,
	.shm_unmap = shm_unmap,
};

void
harness_init(struct harness *h, bool registry, uint32_t device_rights)
{
	struct media_device_params p = {.ops = &ops, .userdata = h};
	struct virtio_media_config cfg;
	struct vmdrv_transport t;

	memset(h, 0, sizeof(*h));
	memset(shm_table, 0, sizeof(shm_table));
	h->record = record_open();
	h->guest_fd = cb_test_memfd("guest-ram", NULL, HARNESS_GUEST_SIZE);
	g_assert_cmpint(h->guest_fd, >=, 0);
	h->guest =
		mmap(NULL, HARNESS_GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, h->guest_fd, 0);
	g_assert_true(h->guest != MAP_FAILED);
	guest_mem_init(&h->gm);
	g_assert_cmpint(
		guest_mem_add_region(&h->gm, HARNESS_GUEST_GPA, HARNESS_GUEST_SIZE, h->guest), ==,
		0);
	h->guest_next = HARNESS_GUEST_GPA;
	h->shm = mmap(NULL, HARNESS_SHM_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g_assert_true(h->shm != MAP_FAILED);
	h->shm_next = 0;

	if (registry) {
		g_assert_cmpint(crossbuf_registry_new(&h->registry), ==, 0);
		g_assert_cmpint(crossbuf_client_new(&h->dev_client), ==, 0);
		g_assert_cmpint(
			crossbuf_client_set_device_kind(h->dev_client, CROSSBUF_DEVICE_MEDIA), ==,
			0);
		g_assert_cmpint(crossbuf_client_set_rights(h->dev_client, device_rights), ==, 0);
		g_assert_cmpint(crossbuf_client_connect_embedded(h->dev_client, h->registry), ==,
				0);
		g_assert_cmpint(crossbuf_client_new(&h->exporter), ==, 0);
		g_assert_cmpint(crossbuf_client_set_device_kind(h->exporter, CROSSBUF_DEVICE_TOOL),
				==, 0);
		g_assert_cmpint(crossbuf_client_connect_embedded(h->exporter, h->registry), ==, 0);
		p.client = h->dev_client;
	}
	p.guest_mem = &h->gm;
	g_assert_cmpint(media_device_new(&p, &h->dev), ==, 0);
	media_device_get_config(h->dev, &cfg);
	t = (struct vmdrv_transport){
		.submit = submit, .userdata = h, .shm_base = h->shm, .shm_size = HARNESS_SHM_SIZE};
	g_assert_cmpint(vmdrv_new(&t, &cfg, &h->drv), ==, 0);
}

void
harness_fini(struct harness *h)
{
	vmdrv_free(h->drv);
	media_device_free(h->dev);
	crossbuf_client_unref(h->dev_client);
	crossbuf_client_unref(h->exporter);
	crossbuf_registry_unref(h->registry);
	munmap(h->shm, HARNESS_SHM_SIZE);
	munmap(h->guest, HARNESS_GUEST_SIZE);
	close(h->guest_fd);
	if (h->record)
		fclose(h->record);
}

uint64_t
harness_guest_alloc(struct harness *h, size_t len, uint8_t fill)
{
	uint64_t gpa = h->guest_next;

	len = ALIGN_UP(len, 4096u);
	g_assert_cmpuint(gpa + len, <=, HARNESS_GUEST_GPA + HARNESS_GUEST_SIZE);
	memset(h->guest + (gpa - HARNESS_GUEST_GPA), fill, len);
	h->guest_next += len;
	return gpa;
}

void *
harness_guest_ptr(struct harness *h, uint64_t gpa)
{
	return h->guest + (gpa - HARNESS_GUEST_GPA);
}

/* --- Decoding helpers ------------------------------------------------------------------- */

void
out_setup_coded(struct vmdrv_session *s, uint32_t coded, unsigned count, struct stream_out *o)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .count = count};
	int type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;

	memset(o, 0, sizeof(*o));
	f.fmt.pix_mp.pixelformat = coded;
	f.fmt.pix_mp.plane_fmt[0].sizeimage = 64 * 1024;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, coded);
	o->size = f.fmt.pix_mp.plane_fmt[0].sizeimage;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpuint(rb.count, ==, count);
	o->count = count;
	for (unsigned i = 0; i < count; i++) {
		struct v4l2_plane p[1];
		struct v4l2_buffer b = {.index = i,
					.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					.memory = V4L2_MEMORY_MMAP,
					.length = 1,
					.m.planes = p};
		uint64_t len;

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &b), ==, 0);
		g_assert_cmpuint(p[0].length, >=, o->size);
		g_assert_cmpint(
			vmdrv_mmap(s, p[0].m.mem_offset, true, &o->ptr[i], &o->addr[i], &len), ==,
			0);
		g_assert_cmpuint(len, ==, p[0].length);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
}

void
out_setup_mmap(struct vmdrv_session *s, unsigned count, struct stream_out *o)
{
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	sub.type = V4L2_EVENT_EOS;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	out_setup_coded(s, V4L2_PIX_FMT_H264, count, o);
}

void
out_queue_frames(struct harness *h, struct vmdrv_session *s, struct stream_out *o, unsigned index,
		 uint16_t w, uint16_t hh, const uint8_t *fills, unsigned n, uint8_t flags,
		 uint64_t ts_us)
{
	struct v4l2_plane p[1] = {{0}};
	struct v4l2_buffer b = {.index = index,
				.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				.memory = V4L2_MEMORY_MMAP,
				.length = 1,
				.m.planes = p};
	uint8_t *dst = o->ptr[index];

	(void)h;
	for (unsigned i = 0; i < n; i++) {
		struct fake_frame f = {.width = w, .height = hh, .fill = fills[i], .flags = flags};

		memcpy(f.magic, FAKE_MAGIC, 4);
		memcpy(dst + i * FAKE_FRAME_SIZE, &f, sizeof(f));
	}
	p[0].bytesused = n * FAKE_FRAME_SIZE;
	b.timestamp.tv_sec = (time_t)(ts_us / 1000000);
	b.timestamp.tv_usec = (suseconds_t)(ts_us % 1000000);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &b), ==, 0);
	g_assert_true(b.flags & V4L2_BUF_FLAG_QUEUED);
}

unsigned
out_dequeue(struct vmdrv_session *s)
{
	struct v4l2_plane p[1];
	struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				.memory = V4L2_MEMORY_MMAP,
				.length = 1,
				.m.planes = p};

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQBUF, &b), ==, 0);
	return b.index;
}

void
wait_source_change(struct vmdrv_session *s)
{
	struct v4l2_event e;

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DQEVENT, &e), ==, 0);
	g_assert_cmpuint(e.type, ==, V4L2_EVENT_SOURCE_CHANGE);
	g_assert_cmpuint(e.u.src_change.changes, ==, V4L2_EVENT_SRC_CH_RESOLUTION);
}

void
cap_queue(struct vmdrv_session *s, struct stream_cap *c, unsigned index)
{
	struct v4l2_plane p[3] = {{0}};
	struct v4l2_buffer b = {.index = index,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = V4L2_MEMORY_MMAP,
				.length = c->num_planes,
				.m.planes = p};

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &b), ==, 0);
}

void
cap_setup_mmap(struct vmdrv_session *s, uint32_t pixfmt, unsigned count, struct stream_cap *c)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .count = count};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	memset(c, 0, sizeof(*c));
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, 0);
	f.fmt.pix_mp.pixelformat = pixfmt;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, pixfmt);
	c->pixfmt = pixfmt;
	c->fmt = f.fmt.pix_mp;
	c->num_planes = f.fmt.pix_mp.num_planes;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpuint(rb.count, >=, count);
	c->count = rb.count;
	for (unsigned i = 0; i < c->count; i++) {
		struct v4l2_plane p[3];
		struct v4l2_buffer b = {.index = i,
					.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					.memory = V4L2_MEMORY_MMAP,
					.length = 3,
					.m.planes = p};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &b), ==, 0);
		g_assert_cmpuint(b.length, ==, c->num_planes);
		for (unsigned k = 0; k < c->num_planes; k++) {
			uint64_t len;

			g_assert_cmpint(vmdrv_mmap(s, p[k].m.mem_offset, false, &c->ptr[i][k],
						   &c->addr[i][k], &len),
					==, 0);
			g_assert_cmpuint(len, >=, c->fmt.plane_fmt[k].sizeimage);
		}
		cap_queue(s, c, i);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
}

int
cap_dequeue(struct vmdrv_session *s, struct v4l2_buffer *b, struct v4l2_plane *planes)
{
	memset(b, 0, sizeof(*b));
	b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	b->length = 3;
	b->m.planes = planes;
	return vmdrv_ioctl(s, VIDIOC_DQBUF, b);
}

void
check_picture(const struct v4l2_pix_format_mplane *f, uint32_t w, uint32_t h,
	      uint8_t *const planes[3], const uint32_t offsets[3], uint8_t fill)
{
	bool yuv420 =
		f->pixelformat == V4L2_PIX_FMT_YUV420M || f->pixelformat == V4L2_PIX_FMT_YUV420;
	struct codec_stream_info info;

	fake_codec_layout(yuv420 ? V4L2_PIX_FMT_YUV420 : V4L2_PIX_FMT_NV12, w, h, &info);
	for (uint32_t y = 0; y < h; y++) {
		const uint8_t *row = planes[0] + offsets[0] + (size_t)y * info.strides[0];

		for (uint32_t x = 0; x < w; x++) {
			if (row[x] != (uint8_t)(fill + y))
				g_error("luma (%u,%u) is %u, want %u", x, y, row[x],
					(uint8_t)(fill + y));
		}
	}
	for (uint32_t i = 1; i < info.num_planes; i++) {
		uint32_t cw = yuv420 ? w / 2 : w;

		for (uint32_t y = 0; y < h / 2; y++) {
			const uint8_t *row = planes[i] + offsets[i] + (size_t)y * info.strides[i];

			for (uint32_t x = 0; x < cw; x++) {
				if (row[x] != (uint8_t)(fill ^ 0x80))
					g_error("chroma %u (%u,%u) is %u", i, x, y, row[x]);
			}
		}
	}
}

void
cap_unmap(struct harness *h, struct stream_cap *c)
{
	for (unsigned i = 0; i < c->count; i++) {
		for (unsigned k = 0; k < c->num_planes; k++) {
			if (c->ptr[i][k])
				g_assert_cmpint(vmdrv_munmap(h->drv, c->addr[i][k]), ==, 0);
			c->ptr[i][k] = NULL;
		}
	}
}

void
out_unmap(struct harness *h, struct stream_out *o)
{
	for (unsigned i = 0; i < o->count; i++) {
		if (o->ptr[i])
			g_assert_cmpint(vmdrv_munmap(h->drv, o->addr[i]), ==, 0);
		o->ptr[i] = NULL;
	}
}
