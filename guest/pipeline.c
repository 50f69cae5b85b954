/* SPDX-License-Identifier: MIT */
#include "pipeline.h"

#include "crossbuf-media-controls.h"
#include "crossbuf/crossbuf.h"
#include "macro.h"
#include "rowscan.h"
#include "stream.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define N_OUT                    4
#define OUT_SIZE                 (4u << 20) /* one coded frame per OUTPUT buffer */
#define MAX_CAP                  32
#define SCANOUT                  0
#define POLL_MS                  100
#define MAX_ROWS                 (1u << 20) /* fingerprints kept for the guest memory search */
#define VIRGL_NV12               166        /* pipe_format of NV12 */
#define PIPE_TEXTURE_2D          2
#define VIRGL_BIND_SCANOUT       (1u << 18)
#define VIRGL_BIND_RENDER_TARGET (1u << 1)
#define DEFAULT_FPS              25

struct scanout_buf {
	uint32_t resource_id;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	struct crossbuf_buffer_info info; /* the display's view of it */
	int fd;
	const uint8_t *map; /* host mapping for the display's checks, or NULL */
	size_t map_len;
};

#define GPU_HUNG_UP "the virtio-gpu device hung up"

struct pipeline {
	const struct pipeline_options *o;
	struct pipeline_result *res;
	struct guest_vm *vm;
	struct gpu_guest *gpu;
	struct vmdrv *drv;
	struct vmdrv_session *s;
	struct guest_stream *stream;
	struct crossbuf_client *display; /* the host display's registry client, or NULL */
	struct rowscan *rows;
	unsigned timeout_ms;   /* the guest's request timeout */
	char media_error[128]; /* media_strerror()'s text */

	/* OUTPUT */
	void *out_ptr[N_OUT];
	uint64_t out_addr[N_OUT];
	uint32_t out_size;
	bool out_free[N_OUT];
	bool eof, draining, done;
	GArray *queued_ns; /* per packet sequence number: when it was queued */
	GArray *pts_us;    /* per packet sequence number: its presentation time */

	/* CAPTURE */
	struct scanout_buf cap[MAX_CAP];
	unsigned n_cap;
	struct v4l2_pix_format_mplane fmt;
	struct v4l2_rect visible;
	bool cap_streaming;
	bool change_pending;
	int shown;                  /* cap[] index on scanout, -1 for none */
	struct scanout_buf retired; /* the previous resolution's last frame, still shown */
	uint32_t next_resource_id;

	/* display */
	char **md5; /* expected, NULL-terminated */
	unsigned n_md5;
	GArray *latencies;
	double latency_sum;
	uint64_t start_ns, last_ns;
	int64_t first_pts; /* --realtime: the first frame's pts and when it was shown */
	uint64_t pace_start_ns;
	bool have_first_pts;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The first failure is the run's error. When the virtio-gpu device is gone, that is the cause
 * of whatever failed first (its buffers leave crossbufd with it, so the decoder refuses them
 * at once), and it is named first.
 */
static int _printf_(3, 4) fail(struct pipeline *p, int r, const char *fmt, ...)
{
	char what[sizeof(p->res->error)];
	va_list ap;

	if (p->res->error[0] != '\0')
		return r < 0 ? r : -EIO;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->vm && guest_vm_gpu_dead(p->vm) && !strstr(what, GPU_HUNG_UP)) {
		snprintf(p->res->error, sizeof(p->res->error), GPU_HUNG_UP " (%.200s)", what);
		return -ECONNRESET;
	}
	memcpy(p->res->error, what, sizeof(what));
	return r < 0 ? r : -EIO;
}

/* Names what went wrong with a device request. */
static const char *
media_strerror(struct pipeline *p, int r)
{
	if (r == -ECONNRESET)
		return "the virtio-media device hung up";
	if (r == -ETIMEDOUT) {
		snprintf(p->media_error, sizeof(p->media_error),
			 "the virtio-media device did not answer in time (%.1f s; stuck?)",
			 p->timeout_ms / 1000.0);
		return p->media_error;
	}
	return strerror(-r);
}

static int
media_ioctl(struct pipeline *p, unsigned long req, void *arg, const char *what)
{
	int r = vmdrv_ioctl(p->s, req, arg);

	if (r < 0)
		return fail(p, r, "%s: %s", what, media_strerror(p, r));
	return 0;
}

static int
gpu_check(struct pipeline *p, int r, const char *what, uint32_t resource_id)
{
	if (r == VIRTIO_GPU_RESP_OK_NODATA || r == VIRTIO_GPU_RESP_OK_RESOURCE_UUID)
		return 0;
	if (r == -ECONNRESET)
		return fail(p, r, "%s of resource %u: " GPU_HUNG_UP, what, resource_id);
	if (r == -ETIMEDOUT)
		return fail(p, r,
			    "%s of resource %u: the virtio-gpu device did not answer in time "
			    "(%.1f s; stuck?)",
			    what, resource_id, p->timeout_ms / 1000.0);
	if (r < 0)
		return fail(p, r, "%s of resource %u: %s", what, resource_id, strerror(-r));
	return fail(p, -EIO, "%s of resource %u: virtio-gpu answered 0x%x", what, resource_id,
		    (unsigned)r);
}

/* ---- expected md5s ---- */

static int
load_framemd5(struct pipeline *p, const char *path)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) lines = NULL;
	GPtrArray *md5 = g_ptr_array_new();

	if (!g_file_get_contents(path, &text, NULL, &err)) {
		g_ptr_array_free(md5, true);
		return fail(p, -ENOENT, "--framemd5: %s", err->message);
	}
	lines = g_strsplit(text, "\n", -1);
	for (unsigned i = 0; lines[i]; i++) {
		g_auto(GStrv) fields = NULL;
		char *sum;

		if (lines[i][0] == '#' || lines[i][0] == '\0')
			continue;
		fields = g_strsplit(lines[i], ",", -1);
		sum = g_strv_length(fields) == 6 ? g_strstrip(fields[5]) : NULL;
		if (sum == NULL || strlen(sum) != 32 || strspn(sum, "0123456789abcdef") != 32) {
			g_ptr_array_free(md5, true);
			return fail(p, -EINVAL, "--framemd5 %s: line %u is not a framemd5 line",
				    path, i + 1);
		}
		/* Only the first stream's frames: a clip with audio has other lines too. */
		if (atoi(fields[0]) == 0)
			g_ptr_array_add(md5, g_strdup(sum));
	}
	p->n_md5 = md5->len;
	g_ptr_array_add(md5, NULL);
	p->md5 = (char **)g_ptr_array_free(md5, false);
	return 0;
}

/* The visible rectangle as tightly packed NV12, hashed as ffmpeg's framemd5 does. */
static void
frame_md5(const struct pipeline *p, const struct scanout_buf *b, char out[33])
{
	const struct v4l2_rect *v = &p->visible;
	const struct crossbuf_plane *y = &b->info.planes[0], *uv = &b->info.planes[1];
	GChecksum *sum = g_checksum_new(G_CHECKSUM_MD5);

	for (uint32_t row = 0; row < v->height; row++)
		g_checksum_update(sum,
				  b->map + y->offset + (size_t)(v->top + row) * y->stride + v->left,
				  v->width);
	for (uint32_t row = 0; row < (v->height + 1) / 2; row++)
		g_checksum_update(sum,
				  b->map + uv->offset + (size_t)(v->top / 2 + row) * uv->stride +
					  v->left,
				  (v->width + 1) / 2 * 2);
	g_strlcpy(out, g_checksum_get_string(sum), 33);
	g_checksum_free(sum);
}

/* Whether the host mapping holds the whole visible picture where the layout says. */
static bool
layout_fits(const struct pipeline *p, const struct scanout_buf *b)
{
	const struct v4l2_rect *v = &p->visible;
	const struct crossbuf_buffer_info *i = &b->info;

	if (i->num_planes != 2 || i->fourcc != DRM_FORMAT_NV12)
		return false;
	for (unsigned k = 0; k < 2; k++) {
		uint64_t rows = k == 0 ? v->top + v->height : (v->top + v->height + 1) / 2;
		uint64_t end = i->planes[k].offset + rows * i->planes[k].stride;

		if (i->planes[k].stride < (uint64_t)v->left + v->width || end > b->map_len)
			return false;
	}
	return true;
}

/* ---- scanout resources as CAPTURE buffers ---- */

static void
scanout_buf_release(struct pipeline *p, struct scanout_buf *b)
{
	if (b->resource_id == 0)
		return;
	if (b->map)
		munmap((void *)b->map, b->map_len);
	safe_close(b->fd);
	/* The device may be gone already: then there is nothing to free on its side. */
	gpu_guest_resource_unref(p->gpu, b->resource_id);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

/* What the display checks on a resource it is about to show, from the registry's record. */
static int
display_resolve(struct pipeline *p, struct scanout_buf *b)
{
	char s[CROSSBUF_UUID_STRING_SIZE];
	void *map;
	int r;

	crossbuf_uuid_to_string(b->uuid, s);
	r = crossbuf_client_lookup(p->display, b->uuid, &b->info, &b->fd);
	if (r < 0)
		return fail(p, r,
			    "the display cannot resolve resource %u (%s) through crossbufd: %s",
			    b->resource_id, s, strerror(-r));
	if (p->o->protected_ && !(b->info.flags & CROSSBUF_BUFFER_PROTECTED))
		return fail(p, -EPERM,
			    "--protected, but resource %u is not protected: start crossbuf-gpu "
			    "with --protect NV12",
			    b->resource_id);
	if ((b->info.flags & CROSSBUF_BUFFER_PROTECTED) &&
	    (b->info.flags & CROSSBUF_BUFFER_GUEST_MAPPABLE))
		return fail(p, -EPERM, "protected resource %u is marked guest-mappable",
			    b->resource_id);
	map = mmap(NULL, (size_t)b->info.size, PROT_READ, MAP_SHARED, b->fd, 0);
	if (map == MAP_FAILED)
		return fail(p, -errno, "the display cannot map resource %u: %s", b->resource_id,
			    strerror(errno));
	b->map = map;
	b->map_len = (size_t)b->info.size;
	return 0;
}

static int
queue_capture(struct pipeline *p, unsigned i)
{
	struct v4l2_plane planes[1] = {{0}};
	struct v4l2_buffer b = {.index = i,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = V4L2_MEMORY_DMABUF,
				.length = 1,
				.m.planes = planes};
	struct vmdrv_mem mem = {.uuids = (const uint8_t(*)[16])p->cap[i].uuid};
	int r = vmdrv_qbuf_mem(p->s, &b, &mem);

	if (r < 0)
		return fail(p, r, "QBUF of scanout resource %u as an object buffer: %s",
			    p->cap[i].resource_id, media_strerror(p, r));
	return 0;
}

static int
capture_setup(struct pipeline *p)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};
	struct v4l2_selection sel = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
				     .target = V4L2_SEL_TGT_COMPOSE};
	struct v4l2_control ctl = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_DMABUF};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	int r;

	if ((r = media_ioctl(p, VIDIOC_G_FMT, &f, "G_FMT(CAPTURE)")) < 0)
		return r;
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_NV12;
	if ((r = media_ioctl(p, VIDIOC_S_FMT, &f, "S_FMT(CAPTURE, NV12)")) < 0)
		return r;
	if (f.fmt.pix_mp.pixelformat != V4L2_PIX_FMT_NV12 || f.fmt.pix_mp.num_planes != 1)
		return fail(p, -EPROTO, "the decoder offers no single-buffer NV12 CAPTURE format");
	p->fmt = f.fmt.pix_mp;
	if ((r = media_ioctl(p, VIDIOC_G_SELECTION, &sel, "G_SELECTION(COMPOSE)")) < 0)
		return r;
	p->visible = sel.r;
	if (sel.r.width == 0 || sel.r.height == 0 || sel.r.left + sel.r.width > p->fmt.width ||
	    sel.r.top + sel.r.height > p->fmt.height)
		return fail(p, -EPROTO,
			    "the decoder's visible rectangle %ux%u@%d,%d is outside %ux%u",
			    sel.r.width, sel.r.height, sel.r.left, sel.r.top, p->fmt.width,
			    p->fmt.height);
	if ((r = media_ioctl(p, VIDIOC_G_CTRL, &ctl, "G_CTRL(MIN_BUFFERS_FOR_CAPTURE)")) < 0)
		return r;
	rb.count = MIN((unsigned)MAX(ctl.value, 1) + p->o->extra_buffers, (unsigned)MAX_CAP);
	if ((r = media_ioctl(p, VIDIOC_REQBUFS, &rb, "REQBUFS(CAPTURE, object buffers)")) < 0)
		return r;
	p->n_cap = MIN(rb.count, (unsigned)MAX_CAP);
	for (unsigned i = 0; i < p->n_cap; i++) {
		struct scanout_buf *b = &p->cap[i];
		struct virtio_gpu_resource_create_3d c = {
			.target = htole32(PIPE_TEXTURE_2D),
			.format = htole32(VIRGL_NV12),
			.bind = htole32(VIRGL_BIND_SCANOUT | VIRGL_BIND_RENDER_TARGET),
			.width = htole32(p->fmt.width),
			.height = htole32(p->fmt.height),
			.depth = htole32(1),
			.array_size = htole32(1),
		};

		memset(b, 0, sizeof(*b));
		b->fd = -1;
		b->resource_id = p->next_resource_id++;
		c.resource_id = htole32(b->resource_id);
		r = gpu_guest_resource_create_3d(p->gpu, &c);
		if (r != VIRTIO_GPU_RESP_OK_NODATA) {
			b->resource_id = 0;
			return gpu_check(p, r, "RESOURCE_CREATE_3D (NV12)", le32toh(c.resource_id));
		}
		p->res->resources++;
		r = gpu_guest_assign_uuid(p->gpu, b->resource_id, b->uuid);
		if ((r = gpu_check(p, r, "RESOURCE_ASSIGN_UUID", b->resource_id)) < 0)
			return r;
		if (p->display && (r = display_resolve(p, b)) < 0)
			return r;
		if (b->map && !layout_fits(p, b))
			return fail(p, -EPROTO,
				    "resource %u's layout cannot hold a %ux%u NV12 picture",
				    b->resource_id, p->fmt.width, p->fmt.height);
		if ((r = queue_capture(p, i)) < 0)
			return r;
	}
	if ((r = media_ioctl(p, VIDIOC_STREAMON, &type, "STREAMON(CAPTURE)")) < 0)
		return r;
	p->cap_streaming = true;
	p->res->width = p->visible.width;
	p->res->height = p->visible.height;
	p->res->resolutions++;
	return 0;
}

/*
 * Gives the buffers back and frees the resources, except the one on scanout: it stays until
 * the next frame replaces it, as a display keeps its front buffer.
 */
static void
capture_teardown(struct pipeline *p)
{
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_DMABUF};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	if (p->cap_streaming)
		vmdrv_ioctl(p->s, VIDIOC_STREAMOFF, &type);
	p->cap_streaming = false;
	vmdrv_ioctl(p->s, VIDIOC_REQBUFS, &rb);
	for (unsigned i = 0; i < p->n_cap; i++) {
		if ((int)i == p->shown) {
			scanout_buf_release(p, &p->retired);
			p->retired = p->cap[i];
			memset(&p->cap[i], 0, sizeof(p->cap[i]));
			p->cap[i].fd = -1;
		} else {
			scanout_buf_release(p, &p->cap[i]);
		}
	}
	p->shown = -1;
	p->n_cap = 0;
}

/* ---- OUTPUT: the clip ---- */

static int
output_setup(struct pipeline *p)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .count = N_OUT};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	int type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	uint32_t w, h;
	int r;

	guest_stream_size(p->stream, &w, &h);
	f.fmt.pix_mp.pixelformat = guest_stream_pixelformat(p->stream);
	f.fmt.pix_mp.width = w;
	f.fmt.pix_mp.height = h;
	f.fmt.pix_mp.num_planes = 1;
	f.fmt.pix_mp.plane_fmt[0].sizeimage = OUT_SIZE;
	if ((r = media_ioctl(p, VIDIOC_S_FMT, &f, "S_FMT(OUTPUT)")) < 0)
		return r;
	if (f.fmt.pix_mp.pixelformat != guest_stream_pixelformat(p->stream))
		return fail(p, -EPROTONOSUPPORT, "the decoder does not take %s",
			    guest_stream_codec_name(p->stream));
	p->out_size = f.fmt.pix_mp.plane_fmt[0].sizeimage;
	if ((r = media_ioctl(p, VIDIOC_SUBSCRIBE_EVENT, &sub, "SUBSCRIBE_EVENT(SOURCE_CHANGE)")) <
	    0)
		return r;
	sub.type = V4L2_EVENT_EOS;
	if ((r = media_ioctl(p, VIDIOC_SUBSCRIBE_EVENT, &sub, "SUBSCRIBE_EVENT(EOS)")) < 0)
		return r;
	if ((r = media_ioctl(p, VIDIOC_REQBUFS, &rb, "REQBUFS(OUTPUT)")) < 0)
		return r;
	if (rb.count < 1)
		return fail(p, -ENOBUFS, "the decoder gave no OUTPUT buffer");
	for (unsigned i = 0; i < MIN(rb.count, (unsigned)N_OUT); i++) {
		struct v4l2_plane planes[1];
		struct v4l2_buffer b = {.index = i,
					.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					.memory = V4L2_MEMORY_MMAP,
					.length = 1,
					.m.planes = planes};
		uint64_t len;

		if ((r = media_ioctl(p, VIDIOC_QUERYBUF, &b, "QUERYBUF(OUTPUT)")) < 0)
			return r;
		/* The bitstream buffers are mapped through shared memory region 0. */
		r = vmdrv_mmap(p->s, planes[0].m.mem_offset, true, &p->out_ptr[i], &p->out_addr[i],
			       &len);
		if (r < 0)
			return fail(p, r, "MMAP of OUTPUT buffer %u: %s", i, media_strerror(p, r));
		p->out_size = (uint32_t)MIN((uint64_t)p->out_size, len);
		p->out_free[i] = true;
	}
	return media_ioctl(p, VIDIOC_STREAMON, &type, "STREAMON(OUTPUT)");
}

static int
feed(struct pipeline *p, bool *progress)
{
	for (unsigned i = 0; i < N_OUT && !p->eof; i++) {
		struct v4l2_plane planes[1] = {{0}};
		struct v4l2_buffer b = {.index = i,
					.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					.memory = V4L2_MEMORY_MMAP,
					.length = 1,
					.m.planes = planes};
		struct guest_packet pkt;
		uint64_t seq = p->res->packets, t;
		int r;

		if (!p->out_free[i] || p->out_ptr[i] == NULL)
			continue;
		if (p->o->max_packets && p->res->packets >= p->o->max_packets) {
			p->eof = true;
			break;
		}
		r = guest_stream_next(p->stream, &pkt);
		if (r < 0)
			return fail(p, r, "%s: cannot read frame %" PRIu64 ": %s", p->o->input, seq,
				    guest_stream_error(p->stream));
		if (r == 0) {
			p->eof = true;
			break;
		}
		if (pkt.size > p->out_size)
			return fail(p, -EFBIG,
				    "%s: frame %" PRIu64 " has %zu bytes, more than an OUTPUT "
				    "buffer's %u",
				    p->o->input, seq, pkt.size, p->out_size);
		memcpy(p->out_ptr[i], pkt.data, pkt.size);
		planes[0].bytesused = (uint32_t)pkt.size;
		/* The sequence number is the timestamp: the decoder copies it to the frame. */
		b.timestamp.tv_sec = (time_t)(seq / 1000000);
		b.timestamp.tv_usec = (suseconds_t)(seq % 1000000);
		t = now_ns();
		if (seq == 0)
			p->start_ns = t;
		g_array_append_val(p->queued_ns, t);
		g_array_append_val(p->pts_us, pkt.pts_us);
		if ((r = media_ioctl(p, VIDIOC_QBUF, &b, "QBUF(OUTPUT)")) < 0)
			return r;
		p->out_free[i] = false;
		p->res->packets++;
		*progress = true;
	}
	if (p->eof && !p->draining && p->res->packets > 0) {
		struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};
		int r = media_ioctl(p, VIDIOC_DECODER_CMD, &dc, "DECODER_CMD(STOP)");

		if (r < 0)
			return r;
		p->draining = true;
		*progress = true;
	}
	if (p->eof && p->res->packets == 0)
		return fail(p, -ENODATA, "%s holds no video frame", p->o->input);
	return 0;
}

/* ---- display ---- */

/* Waits until the frame's presentation time, counted from the first frame shown. */
static void
pace(struct pipeline *p, uint64_t seq)
{
	int64_t pts = ((int64_t *)p->pts_us->data)[seq], due_us;
	uint64_t now = now_ns(), due;

	if (pts == INT64_MIN)
		pts = (int64_t)p->res->frames * 1000000 / DEFAULT_FPS;
	if (!p->have_first_pts) {
		p->first_pts = pts;
		p->have_first_pts = true;
		p->pace_start_ns = now;
	}
	due_us = pts - p->first_pts;
	if (due_us <= 0)
		return;
	due = p->pace_start_ns + (uint64_t)due_us * 1000;
	if (due > now) {
		uint64_t wait =
			MIN(due - now, (uint64_t)1000000000); /* a broken pts: at most 1 s */
		struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000),
				      .tv_nsec = (long)(wait % 1000000000)};
		nanosleep(&ts, NULL);
	}
}

static void
snapshot(struct pipeline *p)
{
	g_autofree char *src = NULL, *dst = NULL, *data = NULL;
	gsize len;

	if (!p->o->out_dir || !p->o->png_dir)
		return;
	if (p->o->snapshot_every == 0 || (p->res->frames - 1) % p->o->snapshot_every != 0)
		return;
	src = g_build_filename(p->o->png_dir, "scanout-0.png", NULL);
	dst = g_strdup_printf("%s/frame-%06u.png", p->o->out_dir, p->res->frames);
	if (g_file_get_contents(src, &data, &len, NULL) &&
	    g_file_set_contents(dst, data, (gssize)len, NULL))
		p->res->snapshots++;
}

static int
show(struct pipeline *p, unsigned i, uint64_t seq)
{
	struct scanout_buf *b = &p->cap[i];
	const struct v4l2_rect *v = &p->visible;
	uint64_t t;
	double ms;
	int r;

	if (p->o->realtime)
		pace(p, seq);
	r = gpu_guest_set_scanout(p->gpu, SCANOUT, b->resource_id, (uint32_t)v->left,
				  (uint32_t)v->top, v->width, v->height);
	if ((r = gpu_check(p, r, "SET_SCANOUT", b->resource_id)) < 0)
		return r;
	r = gpu_guest_resource_flush(p->gpu, b->resource_id, (uint32_t)v->left, (uint32_t)v->top,
				     v->width, v->height);
	if ((r = gpu_check(p, r, "RESOURCE_FLUSH", b->resource_id)) < 0)
		return r;
	t = now_ns();
	p->last_ns = t;
	ms = (double)(t - ((uint64_t *)p->queued_ns->data)[seq]) / 1e6;
	p->latency_sum += ms;
	p->res->latency_max = MAX(p->res->latency_max, ms);
	if (p->latencies->len < PIPELINE_MAX_LATENCIES)
		g_array_append_val(p->latencies, ms);
	p->res->frames++;

	/* What the display shows, checked from the host side. */
	if (b->map) {
		if (p->md5) {
			char md5[33];
			unsigned n = p->res->frames - 1;

			frame_md5(p, b, md5);
			if (n < p->n_md5 && strcmp(md5, p->md5[n]) == 0) {
				p->res->md5_matched++;
			} else {
				if (p->res->md5_mismatched++ < 5)
					fprintf(stderr,
						"crossbuf-guest: frame %u: md5 %s, expected %s\n",
						n, md5,
						n < p->n_md5 ? p->md5[n] : "(no more frames)");
			}
		}
		/* The rows a protected run must never leave in guest-visible memory. */
		if (p->o->protected_)
			rowscan_add_plane(p->rows,
					  b->map + b->info.planes[0].offset +
						  (size_t)v->top * b->info.planes[0].stride +
						  v->left,
					  b->info.planes[0].stride, v->width, v->height);
	}
	snapshot(p);
	if (p->o->progress)
		printf("frame %u displayed: resource %u, %.2f ms after its packet was queued\n",
		       p->res->frames, b->resource_id, ms);

	/* The page flip is done: the previous front buffer goes back to the decoder. */
	scanout_buf_release(p, &p->retired);
	if (p->shown >= 0 && (unsigned)p->shown != i &&
	    (r = queue_capture(p, (unsigned)p->shown)) < 0)
		return r;
	p->shown = (int)i;
	return 0;
}

/* ---- the loop ---- */

static int
handle_events(struct pipeline *p, bool *progress)
{
	struct v4l2_event ev;

	while (vmdrv_ioctl(p->s, VIDIOC_DQEVENT, &ev) == 0) {
		*progress = true;
		if (ev.type != V4L2_EVENT_SOURCE_CHANGE)
			continue;
		if (!p->cap_streaming) {
			int r = capture_setup(p);
			if (r < 0)
				return r;
		} else {
			/* Reallocated once the old resolution's LAST buffer is back. */
			p->change_pending = true;
		}
	}
	return 0;
}

static int
dequeue(struct pipeline *p, bool *progress)
{
	struct v4l2_plane planes[1];
	struct v4l2_buffer b;
	int r;

	for (;;) {
		b = (struct v4l2_buffer){
			.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .length = 1, .m.planes = planes};
		if (vmdrv_ioctl(p->s, VIDIOC_DQBUF, &b) < 0)
			break;
		if (b.index < N_OUT)
			p->out_free[b.index] = true;
		*progress = true;
	}
	if ((r = handle_events(p, progress)) < 0)
		return r;
	while (p->cap_streaming) {
		uint64_t seq;

		b = (struct v4l2_buffer){.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .length = 1,
					 .m.planes = planes};
		r = vmdrv_ioctl(p->s, VIDIOC_DQBUF, &b);
		if (r == -EAGAIN)
			break;
		if (r < 0 && r != -EPIPE)
			return fail(p, r, "DQBUF(CAPTURE): %s", media_strerror(p, r));
		*progress = true;
		if (r == 0 && b.index >= p->n_cap)
			return fail(p, -EPROTO, "the decoder returned CAPTURE buffer %u of %u",
				    b.index, p->n_cap);
		seq = (uint64_t)b.timestamp.tv_sec * 1000000 + (uint64_t)b.timestamp.tv_usec;
		if (r == 0 && (b.flags & V4L2_BUF_FLAG_ERROR)) {
			p->res->error_frames++;
		} else if (r == 0 && planes[0].bytesused > 0) {
			if (seq >= p->queued_ns->len)
				return fail(p, -EPROTO,
					    "frame with timestamp %" PRIu64 " that no packet had",
					    seq);
			if ((r = show(p, b.index, seq)) < 0)
				return r;
			if (!(b.flags & V4L2_BUF_FLAG_LAST))
				continue;
		}
		if (r == -EPIPE || (b.flags & V4L2_BUF_FLAG_LAST)) {
			/* The event of a resolution change may come after its LAST buffer. */
			if ((r = handle_events(p, progress)) < 0)
				return r;
			if (p->change_pending) {
				p->change_pending = false;
				capture_teardown(p);
				if ((r = capture_setup(p)) < 0)
					return r;
				continue;
			}
			if (p->draining) {
				p->done = true;
				return 0;
			}
			return fail(p, -EPROTO, "the decoder ended CAPTURE (LAST) unasked");
		}
		if (p->shown != (int)b.index && (r = queue_capture(p, b.index)) < 0)
			return r;
	}
	return 0;
}

static int
run(struct pipeline *p, struct guest_vm *vm)
{
	uint64_t idle_since = 0;
	int r;

	if ((r = output_setup(p)) < 0)
		return r;
	while (!p->done) {
		bool progress = false;

		if ((r = feed(p, &progress)) < 0 || (r = dequeue(p, &progress)) < 0)
			return r;
		if (progress) {
			idle_since = 0;
			continue;
		}
		if (guest_vm_media_dead(vm))
			return fail(p, -ECONNRESET, "the virtio-media device hung up");
		if (idle_since == 0)
			idle_since = now_ns();
		else if (now_ns() - idle_since > (uint64_t)guest_vm_timeout_ms(vm) * 1000000)
			return fail(p, -ETIMEDOUT,
				    "the decoder made no progress for %.1f s (%u frames displayed, "
				    "%u packets queued)",
				    guest_vm_timeout_ms(vm) / 1000.0, p->res->frames,
				    p->res->packets);
		vmdrv_poll(p->s, POLL_MS);
	}
	return 0;
}

/* ---- counters and checks after the run ---- */

static void
read_decoder_stats(struct pipeline *p)
{
	struct v4l2_ext_control c[5] = {
		{.id = CROSSBUF_CID_FRAMES_DECODED}, {.id = CROSSBUF_CID_FRAMES_COPIED},
		{.id = CROSSBUF_CID_BYTES_COPIED},   {.id = CROSSBUF_CID_OBJECT_LOOKUPS},
		{.id = CROSSBUF_CID_FRAMES_ERROR},
	};
	struct v4l2_ext_controls cs = {
		.which = V4L2_CTRL_WHICH_CUR_VAL, .count = ARRAY_SIZE(c), .controls = c};

	if (vmdrv_ioctl(p->s, VIDIOC_G_EXT_CTRLS, &cs) < 0)
		return; /* another virtio-media device: no counters */
	p->res->have_decoder_stats = true;
	p->res->decoded = (uint64_t)c[0].value64;
	p->res->frames_copied = (uint64_t)c[1].value64;
	p->res->bytes_copied = (uint64_t)c[2].value64;
	p->res->decoder_lookups = (uint64_t)c[3].value64;
	p->res->decoder_errors = (uint64_t)c[4].value64;
}

/*
 * Searches the resident pages of [p, p + len) for frame rows. Pages never touched are not
 * resident and read as zeros, which no fingerprint (never a flat row) can match: skipping
 * them keeps a 1 GiB region that holds a few MiB of buffers cheap. Returns the matches and
 * the offset of the first in *first.
 */
static size_t
search_resident(const struct rowscan *rows, const uint8_t *p, size_t len, size_t *first)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t n_pages = len / (size_t)page, found = 0;
	unsigned char *vec = malloc(n_pages ? n_pages : 1);

	if (vec == NULL || mincore((void *)p, n_pages * (size_t)page, vec) < 0) {
		free(vec);
		return rowscan_search(rows, p, len, first); /* all of it, then */
	}
	for (size_t i = 0; i < n_pages;) {
		size_t start = i, f = 0, m;

		if (!(vec[i] & 1)) {
			i++;
			continue;
		}
		while (i < n_pages && (vec[i] & 1))
			i++;
		m = rowscan_search(rows, p + start * (size_t)page, (i - start) * (size_t)page, &f);
		if (m > 0 && found == 0)
			*first = start * (size_t)page + f;
		found += m;
	}
	free(vec);
	return found;
}

static void
search_guest_memory(struct pipeline *p, struct guest_vm *vm)
{
	uint64_t ram_size, shm_size;
	const uint8_t *ram = guest_vm_ram(vm, &ram_size), *shm = guest_vm_media_shm(vm, &shm_size);
	size_t first = 0, n;

	if (rowscan_rows(p->rows) == 0)
		return;
	p->res->leak_checked = true;
	p->res->rows_fingerprinted = rowscan_rows(p->rows);
	n = search_resident(p->rows, ram, ram_size, &first);
	p->res->scanned_bytes = ram_size;
	if (n > 0)
		p->res->first_leak_offset = first;
	p->res->leaked_rows += n;
	if (shm) {
		/* Region 0 is host memory the guest can map: a leak there counts the same. */
		size_t m = search_resident(p->rows, shm, shm_size, &first);

		if (m > 0 && n == 0)
			p->res->first_leak_offset = ram_size + first;
		p->res->leaked_rows += m;
		p->res->scanned_bytes += shm_size;
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void
latency_summary(struct pipeline *p)
{
	double *v = (double *)p->latencies->data;
	unsigned n = p->latencies->len;

	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_double);
	p->res->latency_p50 = v[n / 2];
	p->res->latency_p95 = v[MIN(n - 1, (unsigned)((uint64_t)n * 95 / 100))];
	p->res->latency_mean = p->latency_sum / p->res->frames;
}

static void
close_all(struct pipeline *p)
{
	int type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP};

	if (p->s) {
		capture_teardown(p);
		vmdrv_ioctl(p->s, VIDIOC_STREAMOFF, &type);
		for (unsigned i = 0; i < N_OUT; i++) {
			if (p->out_ptr[i])
				vmdrv_munmap(p->drv, p->out_addr[i]);
		}
		vmdrv_ioctl(p->s, VIDIOC_REQBUFS, &rb);
		vmdrv_close(p->s);
		p->s = NULL;
	}
	/* Off the display, then the last front buffer goes too. */
	if (p->retired.resource_id)
		gpu_guest_set_scanout(p->gpu, SCANOUT, 0, 0, 0, 0, 0);
	scanout_buf_release(p, &p->retired);
}

static int
display_connect(struct pipeline *p)
{
	int r = crossbuf_client_new(&p->display);

	if (r >= 0)
		r = crossbuf_client_set_device_kind(p->display, CROSSBUF_DEVICE_TOOL);
	if (r >= 0 && p->o->domain)
		r = crossbuf_client_set_domain(p->display, p->o->domain);
	/*
	 * A secure display may read protected buffers; the guest never does. The admin right
	 * is for crossbufd's counters only: a broker that refuses it is used without.
	 */
	if (r >= 0)
		r = crossbuf_client_set_rights(
			p->display,
			CROSSBUF_RIGHT_ADMIN | (p->o->protected_ ? CROSSBUF_RIGHT_PROTECTED : 0));
	if (r >= 0) {
		r = crossbuf_client_connect(p->display, p->o->broker);
		if (r == -EPERM || r == -EACCES)
			r = crossbuf_client_set_rights(
				    p->display, p->o->protected_ ? CROSSBUF_RIGHT_PROTECTED : 0)
				    ?: crossbuf_client_connect(p->display, p->o->broker);
	}
	if (r < 0)
		return fail(p, r, "the display cannot reach crossbufd at %s: %s", p->o->broker,
			    strerror(-r));
	return 0;
}

int
pipeline_run(struct guest_vm *vm, const struct pipeline_options *o, struct pipeline_result *res)
{
	struct pipeline p = {.o = o, .res = res, .shown = -1, .next_resource_id = 1};
	struct crossbuf_stats before = {0}, after = {0};
	bool broker_stats = false;
	char err[200];
	int r;

	memset(res, 0, sizeof(*res));
	p.retired.fd = -1;
	p.vm = vm;
	p.timeout_ms = guest_vm_timeout_ms(vm);
	p.gpu = guest_vm_gpu(vm);
	p.drv = guest_vm_media(vm);
	p.queued_ns = g_array_new(false, false, sizeof(uint64_t));
	p.pts_us = g_array_new(false, false, sizeof(int64_t));
	p.latencies = g_array_new(false, false, sizeof(double));
	if (p.gpu == NULL || p.drv == NULL) {
		r = fail(&p, -EINVAL, "the pipeline needs both devices");
		goto out;
	}
	r = guest_stream_open(o->input, &p.stream, err, sizeof(err));
	if (r < 0) {
		r = fail(&p, r, "%s: %s", o->input, err);
		goto out;
	}
	g_strlcpy(res->codec, guest_stream_codec_name(p.stream), sizeof(res->codec));
	if (o->framemd5 && (r = load_framemd5(&p, o->framemd5)) < 0)
		goto out;
	if (o->broker && (r = display_connect(&p)) < 0)
		goto out;
	if (o->framemd5 && !p.display) {
		r = fail(&p, -EINVAL, "--framemd5 needs the broker, to see what is displayed");
		goto out;
	}
	if ((r = rowscan_new(MAX_ROWS, &p.rows)) < 0) {
		r = fail(&p, r, "row fingerprints: %s", strerror(-r));
		goto out;
	}
	if (p.display)
		broker_stats = crossbuf_client_get_stats(p.display, &before) == 0;
	r = vmdrv_open(p.drv, &p.s);
	if (r < 0) {
		p.s = NULL;
		r = fail(&p, r, "OPEN of a decoder session: %s", media_strerror(&p, r));
		goto out;
	}
	vmdrv_set_timeout(p.s, 0);
	r = run(&p, vm);
	if (r == 0)
		read_decoder_stats(&p);
	if (res->frames > 0)
		res->seconds = (double)(p.last_ns - p.start_ns) / 1e9;
	latency_summary(&p);
out:
	close_all(&p);
	if (broker_stats && crossbuf_client_get_stats(p.display, &after) == 0) {
		res->have_broker_stats = true;
		res->broker_lookups = after.lookups - before.lookups;
		res->broker_exports = after.exports - before.exports;
		res->broker_removes = after.removes - before.removes;
	}
	search_guest_memory(&p, vm);
	if (p.md5) {
		res->md5_checked = true;
		res->md5_expected = p.n_md5;
	}
	if (r == 0 && res->md5_checked &&
	    (res->md5_mismatched > 0 || (o->max_packets == 0 && res->frames != p.n_md5)))
		r = fail(&p, -EIO, "%u of %u frames differ from %s (%u displayed)",
			 res->md5_mismatched + (p.n_md5 > res->frames ? p.n_md5 - res->frames : 0),
			 p.n_md5, o->framemd5, res->frames);
	if (r == 0 && res->leaked_rows > 0)
		r = fail(&p, -EIO, "%zu frame rows found in guest-visible memory",
			 res->leaked_rows);
	if (r == 0 && res->error_frames > 0)
		r = fail(&p, -EIO, "%u frames came back with the ERROR flag", res->error_frames);
	for (unsigned i = 0; i < MAX_CAP; i++)
		scanout_buf_release(&p, &p.cap[i]);
	g_strfreev(p.md5);
	rowscan_free(p.rows);
	crossbuf_client_unref(p.display);
	guest_stream_free(p.stream);
	g_array_free(p.queued_ns, true);
	g_array_free(p.pts_us, true);
	g_array_free(p.latencies, true);
	return r;
}

/* ---- the summary ---- */

void
pipeline_print_summary(FILE *f, const struct pipeline_options *o, const struct pipeline_result *r)
{
	fprintf(f, "\n%-22s %s\n", "clip", o->input);
	fprintf(f, "%-22s %s, %ux%u%s\n", "stream", r->codec[0] ? r->codec : "?", r->width,
		r->height, r->resolutions > 1 ? " (last of several resolutions)" : "");
	fprintf(f, "%-22s %u coded frames queued, %u frames displayed, %u with ERROR\n", "frames",
		r->packets, r->frames, r->error_frames);
	if (r->seconds > 0)
		fprintf(f, "%-22s %.1f (%u frames in %.3f s%s)\n", "fps",
			(r->frames > 1 ? r->frames - 1 : 1) / r->seconds, r->frames, r->seconds,
			o->realtime ? ", paced at the clip's rate" : "");
	fprintf(f, "%-22s %u NV12 scanout resources (RESOURCE_CREATE_3D + ASSIGN_UUID)%s\n",
		"buffers", r->resources, o->protected_ ? ", protected" : "");
	fprintf(f, "%-22s guest: 0 (it never maps a frame); ", "frames copied");
	if (r->have_decoder_stats)
		fprintf(f, "host decoder: %" PRIu64 " of %" PRIu64 "\n", r->frames_copied,
			r->decoded);
	else
		fprintf(f, "host decoder: not reported\n");
	if (r->have_decoder_stats)
		fprintf(f, "%-22s %" PRIu64 " (%.1f per frame)%s\n", "bytes copied",
			r->bytes_copied,
			r->decoded ? (double)r->bytes_copied / (double)r->decoded : 0.0,
			r->bytes_copied ? ": NV12 chroma interleaved from the codec's planar output"
					: "");
	fprintf(f, "%-22s ", "registry lookups");
	if (r->have_decoder_stats)
		fprintf(f, "decoder %" PRIu64 " ", r->decoder_lookups);
	if (r->have_broker_stats)
		fprintf(f,
			"crossbufd %" PRIu64 " (the decoder's and the display's; exports %" PRIu64
			", removes %" PRIu64 ")",
			r->broker_lookups, r->broker_exports, r->broker_removes);
	fputc('\n', f);
	if (r->frames > 0)
		fprintf(f, "%-22s p50 %.2f ms, p95 %.2f ms, max %.2f ms, mean %.2f ms\n",
			"latency (queue->flip)", r->latency_p50, r->latency_p95, r->latency_max,
			r->latency_mean);
	if (r->md5_checked)
		fprintf(f, "%-22s %u of %u frames match %s\n", "framemd5", r->md5_matched,
			r->md5_expected, o->framemd5);
	if (r->leak_checked)
		fprintf(f,
			"%-22s %zu frame rows searched in %.1f MiB of guest RAM and region 0: %zu found\n",
			"guest memory", r->rows_fingerprinted, (double)r->scanned_bytes / 1048576.0,
			r->leaked_rows);
	if (o->out_dir)
		fprintf(f, "%-22s %u in %s\n", "snapshots", r->snapshots, o->out_dir);
	if (r->error[0])
		fprintf(f, "%-22s %s\n", "FAILED", r->error);
}
