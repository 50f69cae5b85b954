/* SPDX-License-Identifier: MIT */
/*
 * Real streams (tests/data, made by tests/data/make-streams.sh with Debian's ffmpeg) decoded
 * by the whole device with libavcodec, the way a V4L2 client does it: OUTPUT buffers of one
 * access unit (Annex B) or one IVF record each, CAPTURE buffers that are virtio objects
 * exported by a memfd exporter (or MMAP buffers for the three-plane format), the source
 * change and resolution change handled as dev-decoder.rst says, and a drain at the end.
 * Every frame's visible rectangle is hashed and compared with ffmpeg's framemd5.
 */
#include "codec.h"
#include "crossbuf-media-controls.h"
#include "crossbuf/crossbuf.h"
#include "decoder.h"
#include "harness.h"
#include "macro.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define N_OUT      4
#define OUT_SIZE   (256u << 10)
#define MAX_CAP    16
#define IDLE_LIMIT 5000 /* ms without progress before the test gives up */

struct unit {
	size_t off, len;
	uint64_t ts_us;
};

struct stream {
	const char *name;
	uint32_t coded;
	uint8_t *data;
	size_t len;
	struct unit *units;
	unsigned n_units;
	char **md5; /* expected, display order */
	unsigned n_md5;
};

struct capture {
	bool object;     /* else MMAP */
	bool protected_; /* objects flagged protected, in memfd_secret where the kernel has it */
	uint32_t pixfmt;
	bool streaming;
	unsigned count;
	struct v4l2_pix_format_mplane fmt;
	struct v4l2_rect visible;
	/* object: the exporter's memfds; MMAP: mapped through region 0 */
	int fd[MAX_CAP];
	uint8_t *map[MAX_CAP][3];
	size_t map_len[MAX_CAP];
	uint64_t addr[MAX_CAP][3];
	uint8_t uuid[MAX_CAP][16];
	unsigned uuids_queued; /* distinct (index, UUID) pairs queued: registry lookups */
};

/* --- Stream files ---------------------------------------------------------------------- */

static void
load_md5(struct stream *st, const char *fmt)
{
	char *name = g_strdup_printf("%s.%s.framemd5", st->name, fmt);
	char *path = cb_test_data_path(name), *text;
	char **lines;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	st->md5 = g_new0(char *, g_strv_length(lines) + 1);
	for (char **l = lines; *l; l++) {
		char **f;

		if (**l == '#' || **l == '\0')
			continue;
		f = g_strsplit(*l, ",", -1);
		g_assert_cmpuint(g_strv_length(f), ==, 6);
		st->md5[st->n_md5++] = g_strdup(g_strstrip(f[5]));
		g_strfreev(f);
	}
	g_strfreev(lines);
	g_free(text);
	g_free(path);
	g_free(name);
}

static bool
is_aud(const uint8_t *p, uint32_t coded)
{
	return coded == V4L2_PIX_FMT_H264 ? (p[0] & 0x1f) == 9 : ((p[0] >> 1) & 0x3f) == 35;
}

/* Cuts an Annex B stream at its access unit delimiters; timestamps from STREAM.pts. */
static void
split_annexb(struct stream *st)
{
	char *path = g_strdup_printf("%s.pts", st->name), *full = cb_test_data_path(path), *text;
	char **pts;
	size_t start = 0;
	bool have =
		true; /* bytes before the first delimiter (HEVC parameter sets) are a unit too */

	g_assert_true(g_file_get_contents(full, &text, NULL, NULL));
	pts = g_strsplit(text, "\n", -1);
	st->units = g_new0(struct unit, st->len / 4 + 1);
	for (size_t i = 0; i + 4 < st->len; i++) {
		if (st->data[i] != 0 || st->data[i + 1] != 0 || st->data[i + 2] != 1 ||
		    !is_aud(st->data + i + 3, st->coded))
			continue;
		/* A four-byte start code belongs to the unit it starts. */
		size_t at = i > 0 && st->data[i - 1] == 0 ? i - 1 : i;
		if (have && at > start) {
			st->units[st->n_units].off = start;
			st->units[st->n_units].len = at - start;
			st->n_units++;
		}
		start = at;
		have = true;
	}
	st->units[st->n_units].off = start;
	st->units[st->n_units].len = st->len - start;
	st->n_units++;
	g_assert_cmpuint(g_strv_length(pts), >=, st->n_units);
	for (unsigned i = 0; i < st->n_units; i++)
		st->units[i].ts_us = g_ascii_strtoull(pts[i], NULL, 10) * 1000;
	g_strfreev(pts);
	g_free(text);
	g_free(full);
	g_free(path);
}

static void
split_ivf(struct stream *st)
{
	size_t off;
	uint16_t hdr_len;

	g_assert_cmpuint(st->len, >=, 32);
	g_assert_true(memcmp(st->data, "DKIF", 4) == 0);
	memcpy(&hdr_len, st->data + 6, 2);
	st->units = g_new0(struct unit, st->len / 12 + 1);
	for (off = hdr_len; off + 12 <= st->len;) {
		uint32_t size;
		uint64_t pts;

		memcpy(&size, st->data + off, 4);
		memcpy(&pts, st->data + off + 4, 8);
		g_assert_cmpuint(off + 12 + size, <=, st->len);
		st->units[st->n_units++] = (struct unit){off + 12, size, pts * 1000};
		off += 12 + size;
	}
}

static void
stream_load(struct stream *st, const char *name, uint32_t coded, const char *md5_fmt)
{
	char *path = cb_test_data_path(name);
	gsize len;

	memset(st, 0, sizeof(*st));
	st->name = name;
	st->coded = coded;
	g_assert_true(g_file_get_contents(path, (char **)&st->data, &len, NULL));
	st->len = len;
	if (g_str_has_suffix(name, ".ivf"))
		split_ivf(st);
	else
		split_annexb(st);
	load_md5(st, md5_fmt);
	g_free(path);
}

static void
stream_free(struct stream *st)
{
	for (unsigned i = 0; i < st->n_md5; i++)
		g_free(st->md5[i]);
	g_free(st->md5);
	g_free(st->units);
	g_free(st->data);
}

/* --- CAPTURE setup ---------------------------------------------------------------------- */

static void
capture_release(struct harness *h, struct vmdrv_session *s, struct capture *c)
{
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory =
						 c->object ? V4L2_MEMORY_DMABUF : V4L2_MEMORY_MMAP};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	if (c->streaming)
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &type), ==, 0);
	c->streaming = false;
	if (c->count)
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	for (unsigned i = 0; i < c->count; i++) {
		if (c->object) {
			g_assert_cmpint(crossbuf_client_remove(h->exporter, c->uuid[i]), ==, 0);
			munmap(c->map[i][0], c->map_len[i]);
			close(c->fd[i]);
		} else {
			for (unsigned k = 0; k < c->fmt.num_planes; k++)
				g_assert_cmpint(vmdrv_munmap(h->drv, c->addr[i][k]), ==, 0);
		}
	}
	c->count = 0;
}

static void
capture_queue(struct vmdrv_session *s, struct capture *c, unsigned i)
{
	struct v4l2_plane p[3] = {{0}};
	struct v4l2_buffer b = {.index = i,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = c->object ? V4L2_MEMORY_DMABUF : V4L2_MEMORY_MMAP,
				.length = c->fmt.num_planes,
				.m.planes = p};

	if (c->object) {
		struct vmdrv_mem mem = {.uuids = (const uint8_t(*)[16])c->uuid[i]};

		g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &mem), ==, 0);
	} else {
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &b), ==, 0);
	}
}

/* Steps 3 of dev-decoder.rst: G_FMT, G_SELECTION, MIN_BUFFERS, REQBUFS, STREAMON. */
static void
capture_setup(struct harness *h, struct vmdrv_session *s, struct capture *c)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};
	struct v4l2_selection sel = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
				     .target = V4L2_SEL_TGT_COMPOSE};
	struct v4l2_control ctl = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory =
						 c->object ? V4L2_MEMORY_DMABUF : V4L2_MEMORY_MMAP};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, 0);
	f.fmt.pix_mp.pixelformat = c->pixfmt;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, c->pixfmt);
	c->fmt = f.fmt.pix_mp;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_SELECTION, &sel), ==, 0);
	c->visible = sel.r;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_CTRL, &ctl), ==, 0);
	rb.count = MIN((unsigned)ctl.value + 2, (unsigned)MAX_CAP);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpuint(rb.count, >=, (unsigned)ctl.value);
	c->count = MIN(rb.count, (unsigned)MAX_CAP);
	for (unsigned i = 0; i < c->count; i++) {
		if (c->object) {
			struct crossbuf_buffer_info info = {0};

			g_assert_cmpuint(c->fmt.num_planes, ==, 1);
			c->map_len[i] = ALIGN_UP(c->fmt.plane_fmt[0].sizeimage, 4096u);
			c->fd[i] = c->protected_ ? cb_test_memfd_secret(c->map_len[i]) : -1;
			if (c->fd[i] < 0)
				c->fd[i] = cb_test_memfd("capture", NULL, c->map_len[i]);
			c->map[i][0] =
				mmap(NULL, c->map_len[i], PROT_READ, MAP_SHARED, c->fd[i], 0);
			g_assert_true(c->map[i][0] != MAP_FAILED);
			info.device_kind =
				CROSSBUF_DEVICE_TOOL; /* an opaque blob: the format rules */
			info.flags = c->protected_ ? CROSSBUF_BUFFER_PROTECTED : 0;
			g_assert_cmpint(
				crossbuf_client_export(h->exporter, c->fd[i], &info, c->uuid[i]),
				==, 0);
			c->uuids_queued++;
		} else {
			struct v4l2_plane p[3];
			struct v4l2_buffer b = {.index = i,
						.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
						.memory = V4L2_MEMORY_MMAP,
						.length = 3,
						.m.planes = p};

			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &b), ==, 0);
			for (unsigned k = 0; k < c->fmt.num_planes; k++) {
				void *ptr;
				uint64_t len;

				g_assert_cmpint(vmdrv_mmap(s, p[k].m.mem_offset, false, &ptr,
							   &c->addr[i][k], &len),
						==, 0);
				c->map[i][k] = ptr;
			}
		}
		capture_queue(s, c, i);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &type), ==, 0);
	c->streaming = true;
}

/* The md5 of a picture's visible rectangle, tightly packed (as framemd5 computes it). */
static char *
picture_md5(const struct capture *c, unsigned index)
{
	GChecksum *sum = g_checksum_new(G_CHECKSUM_MD5);
	const struct v4l2_rect *v = &c->visible;
	uint32_t s0 = c->fmt.plane_fmt[0].bytesperline;
	const uint8_t *y = c->map[index][0], *chroma[2];
	uint32_t cstride;
	bool planar = c->fmt.pixelformat == V4L2_PIX_FMT_YUV420 ||
		      c->fmt.pixelformat == V4L2_PIX_FMT_YUV420M;
	char *r;

	if (c->fmt.num_planes == 1) {
		/* One buffer: the chroma planes start at bytesperline x height (V4L2's rule). */
		uint32_t rows = c->fmt.height;

		chroma[0] = y + (size_t)s0 * rows;
		cstride = planar ? s0 / 2 : s0;
		chroma[1] = chroma[0] + (size_t)cstride * (rows / 2);
	} else {
		chroma[0] = c->map[index][1];
		chroma[1] = c->fmt.num_planes == 3 ? c->map[index][2] : NULL;
		cstride = c->fmt.plane_fmt[1].bytesperline;
	}
	for (uint32_t r0 = 0; r0 < v->height; r0++)
		g_checksum_update(sum, y + (size_t)(v->top + r0) * s0 + v->left, v->width);
	if (planar) {
		for (unsigned k = 0; k < 2; k++) {
			const uint8_t *p = k == 0 ? chroma[0] : chroma[1];

			for (uint32_t r0 = 0; r0 < (v->height + 1) / 2; r0++)
				g_checksum_update(
					sum, p + (size_t)(v->top / 2 + r0) * cstride + v->left / 2,
					(v->width + 1) / 2);
		}
	} else {
		for (uint32_t r0 = 0; r0 < (v->height + 1) / 2; r0++)
			g_checksum_update(sum,
					  chroma[0] + (size_t)(v->top / 2 + r0) * cstride + v->left,
					  (v->width + 1) / 2 * 2);
	}
	r = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return r;
}

/* --- The decode loop -------------------------------------------------------------------- */

/* Whether any of the rows appears anywhere in [p, p + len). */
static bool
any_row_in(const uint8_t *p, size_t len, GPtrArray *rows, size_t row_len)
{
	for (unsigned i = 0; i < rows->len; i++) {
		if (memmem(p, len, g_ptr_array_index(rows, i), row_len) != NULL)
			return true;
	}
	return false;
}

static void
decode_stream_full(const char *name, uint32_t coded, bool object, uint32_t pixfmt, bool protected_)
{
	GPtrArray *rows = g_ptr_array_new_with_free_func(g_free);
	size_t row_len = 0;
	/*
	 * libavcodec's H.264, HEVC, VP8 and VP9 decoders write planar YUV 4:2:0 straight into
	 * the CAPTURE buffers (AV_CODEC_CAP_DR1); NV12 needs one interleaving copy.
	 */
	bool expect_zero_copy = pixfmt == V4L2_PIX_FMT_YUV420 || pixfmt == V4L2_PIX_FMT_YUV420M;
	struct harness h;
	struct vmdrv_session *s;
	struct stream st;
	struct stream_out o;
	struct capture c = {.object = object, .pixfmt = pixfmt, .protected_ = protected_};
	bool out_free[N_OUT], draining = false, change_pending = false, done = false;
	unsigned next_unit = 0, frames = 0, idle = 0;
	uint64_t last_ts = 0, interleaved = 0;
	int otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;

	if (!codec_supports(coded)) {
		g_test_skip("this libavcodec cannot decode the stream");
		return;
	}
	stream_load(&st, name, coded,
		    pixfmt == V4L2_PIX_FMT_YUV420M || pixfmt == V4L2_PIX_FMT_YUV420 ? "yuv420p"
										    : "nv12");
	harness_init(&h, true, protected_ ? CROSSBUF_RIGHT_PROTECTED : 0);
	/* Guest memory is canary: a decoded row found there would be a leak. */
	memset(h.guest, 0x05, HARNESS_GUEST_SIZE);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	{
		struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
		struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						 .memory = V4L2_MEMORY_MMAP,
						 .count = N_OUT};
		struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};

		memset(&o, 0, sizeof(o));
		f.fmt.pix_mp.pixelformat = coded;
		f.fmt.pix_mp.plane_fmt[0].sizeimage = OUT_SIZE;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
		g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, coded);
		if (pixfmt == V4L2_PIX_FMT_YUV420M || pixfmt == V4L2_PIX_FMT_YUV420) {
			/* The planar picture format is chosen before streaming (after the coded
			 * one). */
			struct v4l2_format cf = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};

			cf.fmt.pix_mp.pixelformat = pixfmt;
			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &cf), ==, 0);
			g_assert_cmpuint(cf.fmt.pix_mp.pixelformat, ==, pixfmt);
		}
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
		o.count = N_OUT;
		for (unsigned i = 0; i < N_OUT; i++) {
			struct v4l2_plane p[1];
			struct v4l2_buffer b = {.index = i,
						.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						.memory = V4L2_MEMORY_MMAP,
						.length = 1,
						.m.planes = p};
			uint64_t len;

			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYBUF, &b), ==, 0);
			g_assert_cmpint(
				vmdrv_mmap(s, p[0].m.mem_offset, true, &o.ptr[i], &o.addr[i], &len),
				==, 0);
			out_free[i] = true;
		}
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &otype), ==, 0);
	}
	vmdrv_set_timeout(s, 0);

	while (!done) {
		bool progress = false;
		struct v4l2_event ev;
		struct v4l2_buffer b;
		struct v4l2_plane p[3];

		/* Feed one access unit per free OUTPUT buffer. */
		for (unsigned i = 0; i < N_OUT && next_unit < st.n_units; i++) {
			struct v4l2_plane op[1] = {{0}};
			struct v4l2_buffer ob = {.index = i,
						 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						 .memory = V4L2_MEMORY_MMAP,
						 .length = 1,
						 .m.planes = op};
			const struct unit *u = &st.units[next_unit];

			if (!out_free[i])
				continue;
			g_assert_cmpuint(u->len, <=, OUT_SIZE);
			memcpy(o.ptr[i], st.data + u->off, u->len);
			op[0].bytesused = (uint32_t)u->len;
			ob.timestamp.tv_sec = (time_t)(u->ts_us / 1000000);
			ob.timestamp.tv_usec = (suseconds_t)(u->ts_us % 1000000);
			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QBUF, &ob), ==, 0);
			out_free[i] = false;
			next_unit++;
			progress = true;
		}
		if (next_unit == st.n_units && !draining) {
			struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};

			g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
			draining = true;
		}
		b = (struct v4l2_buffer){
			.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .length = 1, .m.planes = p};
		while (vmdrv_ioctl(s, VIDIOC_DQBUF, &b) == 0) {
			out_free[b.index] = true;
			progress = true;
		}
		if (vmdrv_ioctl(s, VIDIOC_DQEVENT, &ev) == 0) {
			g_assert_cmpuint(ev.type, ==, V4L2_EVENT_SOURCE_CHANGE);
			progress = true;
			if (c.count == 0)
				capture_setup(&h, s, &c);
			else
				change_pending = true; /* after the LAST buffer */
		}
		while (c.streaming && cap_dequeue(s, &b, p) == 0) {
			progress = true;
			if (p[0].bytesused > 0 && !(b.flags & V4L2_BUF_FLAG_ERROR)) {
				char *md5 = picture_md5(&c, b.index);
				uint64_t ts = (uint64_t)b.timestamp.tv_sec * 1000000 +
					      (uint64_t)b.timestamp.tv_usec;

				g_assert_cmpuint(frames, <, st.n_md5);
				if (strcmp(md5, st.md5[frames]) != 0)
					g_error("%s frame %u: md5 %s, want %s", name, frames, md5,
						st.md5[frames]);
				/* Display order: timestamps grow (a new stream may restart them).
				 */
				if (!change_pending && frames > 0 && ts < last_ts)
					g_test_message("frame %u: timestamp %" G_GUINT64_FORMAT
						       " after %" G_GUINT64_FORMAT,
						       frames, ts, last_ts);
				last_ts = ts;
				g_free(md5);
				frames++;
				/* libavcodec interleaves U and V up to the visible corner. */
				interleaved +=
					2 * (uint64_t)((c.visible.left + c.visible.width + 1) / 2) *
					((c.visible.top + c.visible.height + 1) / 2);
				if (protected_) {
					/* Keep two rows of every frame to look for afterwards. */
					const uint8_t *y = c.map[b.index][0];
					uint32_t s0 = c.fmt.plane_fmt[0].bytesperline;

					row_len = c.visible.width;
					g_ptr_array_add(
						rows,
						g_memdup2(y + (size_t)s0 * (c.visible.top + 7) +
								  c.visible.left,
							  row_len));
					g_ptr_array_add(
						rows,
						g_memdup2(y + (size_t)s0 * (c.visible.top + 41) +
								  c.visible.left,
							  row_len));
				}
			}
			if (b.flags & V4L2_BUF_FLAG_LAST) {
				/*
				 * The device queues a resolution change's event before its LAST
				 * buffer: an event here means a change, none the end of the drain.
				 */
				if (!change_pending && vmdrv_ioctl(s, VIDIOC_DQEVENT, &ev) == 0) {
					g_assert_cmpuint(ev.type, ==, V4L2_EVENT_SOURCE_CHANGE);
					change_pending = true;
				}
				if (change_pending) {
					capture_release(&h, s, &c);
					capture_setup(&h, s, &c);
					change_pending = false;
				} else {
					g_assert_true(draining);
					done = true;
				}
				break;
			}
			capture_queue(s, &c, b.index);
		}
		if (progress) {
			idle = 0;
		} else {
			/* Wait as a V4L2 client polls its video node. */
			vmdrv_poll(s, 1);
			if (++idle > IDLE_LIMIT)
				g_error("%s: stuck after %u frames (%u units queued)", name, frames,
					next_unit);
		}
	}
	g_assert_cmpuint(frames, ==, st.n_md5);
	if (protected_) {
		/* The rows are in the protected buffers: the search would find them ... */
		g_assert_true(any_row_in(c.map[0][0], c.map_len[0], rows, row_len) ||
			      any_row_in(c.map[1][0], c.map_len[1], rows, row_len));
		/* ... and no decoded row reached guest memory or the shared memory region. */
		g_assert_false(any_row_in(h.guest, HARNESS_GUEST_SIZE, rows, row_len));
		for (unsigned i = 0; i < o.count; i++)
			g_assert_false(any_row_in(o.ptr[i], OUT_SIZE, rows, row_len));
	}
	{
		struct decoder_stats stats;

		g_assert_cmpint(media_device_get_session_stats(h.dev, vmdrv_session_id(s), &stats),
				==, 0);
		g_test_message("%s: %" G_GUINT64_FORMAT " frames decoded, %" G_GUINT64_FORMAT
			       " copied (%" G_GUINT64_FORMAT " bytes)",
			       name, stats.codec_frames_decoded, stats.codec_frames_copied,
			       stats.codec_bytes_copied);
		g_assert_cmpuint(stats.codec_frames_decoded, >=, st.n_md5);
		if (expect_zero_copy)
			g_assert_cmpuint(stats.codec_bytes_copied, ==, 0);
	}
	{
		/* The same counters as the guest reads them: 64-bit controls through vmdrv. */
		struct v4l2_ext_control ec[5] = {{.id = CROSSBUF_CID_FRAMES_DECODED},
						 {.id = CROSSBUF_CID_FRAMES_COPIED},
						 {.id = CROSSBUF_CID_BYTES_COPIED},
						 {.id = CROSSBUF_CID_OBJECT_LOOKUPS},
						 {.id = CROSSBUF_CID_FRAMES_ERROR}};
		struct v4l2_ext_controls ecs = {.count = 5, .controls = ec};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_EXT_CTRLS, &ecs), ==, 0);
		g_test_message("%s: controls: %" G_GINT64_FORMAT " decoded, %" G_GINT64_FORMAT
			       " copied, %" G_GINT64_FORMAT " bytes, %" G_GINT64_FORMAT
			       " lookups, %" G_GINT64_FORMAT " errors",
			       name, (gint64)ec[0].value64, (gint64)ec[1].value64,
			       (gint64)ec[2].value64, (gint64)ec[3].value64, (gint64)ec[4].value64);
		g_assert_cmpint(ec[0].value64, ==, frames);
		if (expect_zero_copy) {
			g_assert_cmpint(ec[1].value64, ==, 0);
			g_assert_cmpint(ec[2].value64, ==, 0);
		} else {
			/* NV12: one chroma interleaving copy a frame, nothing else. */
			g_assert_cmpint(ec[1].value64, ==, frames);
			g_assert_cmpint(ec[2].value64, ==, (int64_t)interleaved);
		}
		g_assert_cmpint(ec[3].value64, ==, object ? c.uuids_queued : 0);
		g_assert_cmpint(ec[4].value64, ==, 0);
	}
	capture_release(&h, s, &c);
	vmdrv_close(s);
	out_unmap(&h, &o);
	harness_fini(&h);
	stream_free(&st);
	g_ptr_array_unref(rows);
}

static void
decode_stream(const char *name, uint32_t coded, bool object, uint32_t pixfmt)
{
	decode_stream_full(name, coded, object, pixfmt, false);
}

static void
test_h264(void)
{
	decode_stream("h264-176x100.h264", V4L2_PIX_FMT_H264, true, V4L2_PIX_FMT_NV12);
}

static void
test_h264_change(void)
{
	decode_stream("h264-change.h264", V4L2_PIX_FMT_H264, true, V4L2_PIX_FMT_NV12);
}

static void
test_h264_yuv420m(void)
{
	decode_stream("h264-176x100.h264", V4L2_PIX_FMT_H264, false, V4L2_PIX_FMT_YUV420M);
}

static void
test_h264_yuv420_object(void)
{
	/* One object per picture, in the codec's own planar format: no copy of a frame. */
	decode_stream("h264-176x100.h264", V4L2_PIX_FMT_H264, true, V4L2_PIX_FMT_YUV420);
}

static void
test_vp9_change_yuv420_object(void)
{
	decode_stream("vp9-change.ivf", V4L2_PIX_FMT_VP9, true, V4L2_PIX_FMT_YUV420);
}

static void
test_h264_protected(void)
{
	/* A real stream into protected objects, guest memory searched for its rows. */
	decode_stream_full("h264-176x100.h264", V4L2_PIX_FMT_H264, true, V4L2_PIX_FMT_YUV420, true);
}

static void
test_hevc(void)
{
	decode_stream("hevc-176x100.hevc", V4L2_PIX_FMT_HEVC, true, V4L2_PIX_FMT_NV12);
}

static void
test_vp8(void)
{
	decode_stream("vp8-176x100.ivf", V4L2_PIX_FMT_VP8, true, V4L2_PIX_FMT_NV12);
}

static void
test_vp9(void)
{
	decode_stream("vp9-176x100.ivf", V4L2_PIX_FMT_VP9, true, V4L2_PIX_FMT_NV12);
}

static void
test_vp9_change(void)
{
	decode_stream("vp9-change.ivf", V4L2_PIX_FMT_VP9, true, V4L2_PIX_FMT_NV12);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/streams/h264-object-nv12", test_h264);
	cb_test_add("/media-device/streams/h264-change-object-nv12", test_h264_change);
	cb_test_add("/media-device/streams/h264-mmap-yuv420m", test_h264_yuv420m);
	cb_test_add("/media-device/streams/h264-object-yuv420", test_h264_yuv420_object);
	cb_test_add("/media-device/streams/vp9-change-object-yuv420",
		    test_vp9_change_yuv420_object);
	cb_test_add("/media-device/streams/h264-protected-yuv420", test_h264_protected);
	cb_test_add("/media-device/streams/hevc-object-nv12", test_hevc);
	cb_test_add("/media-device/streams/vp8-object-nv12", test_vp8);
	cb_test_add("/media-device/streams/vp9-object-nv12", test_vp9);
	cb_test_add("/media-device/streams/vp9-change-object-nv12", test_vp9_change);
	return g_test_run();
}
