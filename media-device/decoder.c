/* SPDX-License-Identifier: MIT */
/*
 * The V4L2 stateful decoder of one session (dev-decoder.rst).
 *
 * State lives in struct decoder under dec->lock. The command thread runs the ioctls; the
 * worker thread feeds OUTPUT buffers to the codec and runs its callbacks (get_picture,
 * frame_done, ...), which take the lock themselves: the codec itself runs unlocked, and only
 * the worker touches dec->codec.
 *
 * Buffer memory is held through refcounted struct mem_map: a buffer slot holds one
 * reference per plane and so does every picture the codec holds, so REQBUFS, STREAMOFF or a
 * new UUID for an index never unmap memory the codec still writes or reads.
 */
#include "decoder.h"

#include "codec.h"
#include "crossbuf-media-controls.h"
#include "crossbuf/crossbuf.h"
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#ifndef MEDIA_HAVE_REGISTRY
#define MEDIA_HAVE_REGISTRY 0
#endif

#define MAX_PICTURES      64
#define DEFAULT_BITSTREAM (1u << 20)
#define MIN_BITSTREAM     4096

enum buf_state {
	BUF_DEQUEUED, /* the guest owns it */
	BUF_QUEUED,   /* queued, waiting for the worker or the codec */
	BUF_ACTIVE,   /* OUTPUT: being decoded; CAPTURE: handed to the codec for a frame */
};

struct mem_map {
	unsigned refs;
	uint8_t *addr;
	size_t len;
	int fd;              /* MMAP memfd or registry fd; -1 for a malloc'd bounce */
	bool mapped;         /* munmap() on release, else free() */
	bool dmabuf;         /* bracket CPU access with DMA_BUF_IOCTL_SYNC */
	bool revoked;        /* its registry entry went away */
	bool has_uuid;       /* resolved from uuid */
	unsigned codec_refs; /* pictures the codec holds in this memory */
	uint64_t released;   /* when the codec last let go of it (decoder.next_release), 0: never */
	uint8_t uuid[16];
	struct crossbuf_buffer_info info;
};

/* Where the codec writes a CAPTURE buffer's planes (base format planes, not V4L2 planes). */
struct pic_layout {
	unsigned n;
	unsigned map[CODEC_MAX_PLANES]; /* index into buf->maps */
	size_t offset[CODEC_MAX_PLANES];
	uint32_t stride[CODEC_MAX_PLANES];
	size_t size[CODEC_MAX_PLANES];
};

struct dec_buffer {
	uint64_t id; /* unique in the decoder's life */
	uint32_t index;
	enum buf_state state;
	uint32_t gen; /* bumped at each QBUF and each forced return */
	uint64_t qseq;
	bool last_only; /* queued during a resolution change: good for the LAST buffer only */
	unsigned n_planes;
	struct v4l2_buffer vb;
	struct v4l2_plane planes[VIDEO_MAX_PLANES];
	struct mem_map *maps[VIDEO_MAX_PLANES];
	uint8_t export_uuid[VIDEO_MAX_PLANES][16];
	bool exported[VIDEO_MAX_PLANES];
	struct pic_layout layout;
	/* SHARED_PAGES CAPTURE: the guest's planes, filled from the bounce map */
	struct iovec *iov[VIDEO_MAX_PLANES];
	unsigned n_iov[VIDEO_MAX_PLANES];
	/* SHARED_PAGES OUTPUT: the bitstream, copied at QBUF */
	uint8_t *bits;
	size_t bits_len;
	uint64_t ts_ns;
};

struct dec_queue {
	uint32_t type;
	uint32_t memory;
	unsigned count;
	bool streaming;
	struct dec_buffer *bufs[DECODER_MAX_BUFFERS];
	struct v4l2_pix_format_mplane fmt;
};

struct picture_slot {
	bool used;
	bool done;
	uint32_t index;
	uint64_t buf_id;
	uint32_t gen;
	struct mem_map *maps[VIDEO_MAX_PLANES];
};

struct decoder {
	struct decoder_env env;
	uint32_t session_id;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t worker;
	bool quit;

	struct dec_queue out, cap;
	struct dec_buffer *fifo[DECODER_MAX_BUFFERS];
	unsigned fifo_head, fifo_len;
	uint64_t next_buf_id, next_qseq, next_release;

	/* codec parameters wanted; the worker (re)creates the codec to match */
	uint32_t coded_format;
	uint32_t cap_base;   /* V4L2_PIX_FMT_NV12 or _YUV420: the codec's picture format */
	bool codec_created;  /* the worker made a codec for coded_format/cap_base */
	struct codec *codec; /* worker only */
	uint32_t codec_coded, codec_base;

	bool have_info;
	struct codec_stream_info info;
	bool src_change_wait; /* pictures wait for the CAPTURE queue to be set up again */
	struct v4l2_pix_format_mplane cap_active; /* the CAPTURE format at STREAMON(CAPTURE) */
	bool draining, stopped, last_pending;
	unsigned flush_req, flush_done;
	bool cancel;
	bool dead;
	bool shut_down; /* worker joined, codec and buffers released */
	bool protected;
	bool sub_src_change, sub_eos;
	uint32_t event_seq, cap_seq;

	struct picture_slot pictures[MAX_PICTURES];
	struct decoder_stats stats;
	struct codec_stats codecs_before; /* the counters of the codecs before dec->codec */
};

/* --- Formats ------------------------------------------------------------------------------ */

static const uint32_t coded_formats[] = {
	V4L2_PIX_FMT_H264, V4L2_PIX_FMT_HEVC, V4L2_PIX_FMT_VP8, V4L2_PIX_FMT_VP9,
#ifdef V4L2_PIX_FMT_AV1
	V4L2_PIX_FMT_AV1,
#else
	v4l2_fourcc('A', 'V', '0', '1'),
#endif
};

static bool
base_of(uint32_t pixfmt, uint32_t *ret_base, unsigned *ret_planes)
{
	switch (pixfmt) {
	case V4L2_PIX_FMT_NV12:
		*ret_base = V4L2_PIX_FMT_NV12;
		*ret_planes = 1;
		return true;
	case V4L2_PIX_FMT_NV12M:
		*ret_base = V4L2_PIX_FMT_NV12;
		*ret_planes = 2;
		return true;
	case V4L2_PIX_FMT_YUV420M:
		*ret_base = V4L2_PIX_FMT_YUV420;
		*ret_planes = 3;
		return true;
	case V4L2_PIX_FMT_YUV420:
		*ret_base = V4L2_PIX_FMT_YUV420;
		*ret_planes = 1;
		return true;
	}
	return false;
}

static unsigned
base_planes(uint32_t base)
{
	return base == V4L2_PIX_FMT_YUV420 ? 3 : 2;
}

/*
 * The CAPTURE formats offered for a base format, preferred first: the planes in separate
 * buffers or back to back in one (one virtio object per picture).
 */
static unsigned
capture_variants(uint32_t base, uint32_t out[2])
{
	if (base == V4L2_PIX_FMT_YUV420) {
		out[0] = V4L2_PIX_FMT_YUV420M;
		out[1] = V4L2_PIX_FMT_YUV420;
		return 2;
	}
	out[0] = V4L2_PIX_FMT_NV12;
	out[1] = V4L2_PIX_FMT_NV12M;
	return 2;
}

/* Base formats the codec can produce for coded, preferred first (NV12, YUV420 only). */
static unsigned
codec_bases(uint32_t coded, uint32_t out[2])
{
	uint32_t f[8];
	unsigned n = codec_capture_formats(coded, f, ARRAY_SIZE(f)), k = 0;

	for (unsigned i = 0; i < n && i < ARRAY_SIZE(f) && k < 2; i++) {
		if (f[i] == V4L2_PIX_FMT_NV12 || f[i] == V4L2_PIX_FMT_YUV420)
			out[k++] = f[i];
	}
	return k;
}

/*
 * The picture format a stream starts with unless the client chose one before streaming:
 * NV12 when the codec can produce it, since that is what GPU and display importers of the
 * CAPTURE buffers take; else the codec's first. (A codec may prefer YUV420, which it can
 * decode in place; clients who want that pick YUV420M with S_FMT(CAPTURE) first.)
 */
static uint32_t
default_base(uint32_t coded)
{
	uint32_t bases[2];
	unsigned n = codec_bases(coded, bases);

	for (unsigned i = 0; i < n; i++) {
		if (bases[i] == V4L2_PIX_FMT_NV12)
			return V4L2_PIX_FMT_NV12;
	}
	return n > 0 ? bases[0] : V4L2_PIX_FMT_NV12;
}

/* The description ENUM_FMT gives (the names the kernel's v4l2-ioctl.c uses). */
static const char *
format_name(uint32_t f)
{
	switch (f) {
	case V4L2_PIX_FMT_H264:
		return "H.264";
	case V4L2_PIX_FMT_HEVC:
		return "HEVC";
	case V4L2_PIX_FMT_VP8:
		return "VP8";
	case V4L2_PIX_FMT_VP9:
		return "VP9";
	case V4L2_PIX_FMT_NV12:
		return "Y/UV 4:2:0";
	case V4L2_PIX_FMT_NV12M:
		return "Y/UV 4:2:0 (N-C)";
	case V4L2_PIX_FMT_YUV420:
		return "Planar YUV 4:2:0";
	case V4L2_PIX_FMT_YUV420M:
		return "Planar YUV 4:2:0 (N-C)";
	}
	return "AV1 Frame";
}

static bool
coded_supported(uint32_t f)
{
	for (size_t i = 0; i < ARRAY_SIZE(coded_formats); i++) {
		if (coded_formats[i] == f)
			return codec_supports(f);
	}
	return false;
}

/* Plane layout of the base format when the codec has not said (before the first header). */
static void
default_info(uint32_t base, uint32_t w, uint32_t h, struct codec_stream_info *info)
{
	uint32_t aw = ALIGN_UP(MAX(w, 16u), 16u), ah = ALIGN_UP(MAX(h, 16u), 16u);
	uint32_t stride = ALIGN_UP(aw, 64u);

	memset(info, 0, sizeof(*info));
	info->width = aw;
	info->height = ah;
	info->visible = (struct codec_rect){0, 0, w, h};
	info->min_buffers = 1;
	info->num_planes = base_planes(base);
	info->strides[0] = stride;
	info->plane_sizes[0] = stride * ah;
	if (base == V4L2_PIX_FMT_YUV420) {
		info->strides[1] = info->strides[2] = stride / 2;
		info->plane_sizes[1] = info->plane_sizes[2] = stride / 2 * (ah / 2);
	} else {
		info->strides[1] = stride;
		info->plane_sizes[1] = stride * (ah / 2);
	}
}

/*
 * Where the codec's planes are in a CAPTURE buffer of a V4L2 format, before any exporter
 * layout: in multi-planar formats (NV12M, YUV420M) each plane is its own V4L2 plane with the
 * codec's stride and size; in single-buffer formats (NV12, YUV420) the planes follow the
 * V4L2 rule, the chroma plane(s) starting at bytesperline x height, which is what a client
 * or an importer computes. So that rule covers the codec's padding, the height reported is
 * the codec's padded rows, made even and large enough for its chroma rows.
 */
struct cap_geometry {
	unsigned v4l2_planes;
	uint32_t height; /* padded rows: the format's height */
	uint32_t bytesperline[VIDEO_MAX_PLANES];
	uint32_t sizeimage[VIDEO_MAX_PLANES];
	struct pic_layout layout; /* map: V4L2 plane of each codec plane */
};

static void
capture_geometry(const struct codec_stream_info *info, uint32_t base, unsigned v4l2_planes,
		 struct cap_geometry *g)
{
	bool planar = base == V4L2_PIX_FMT_YUV420;

	memset(g, 0, sizeof(*g));
	g->v4l2_planes = v4l2_planes;
	g->layout.n = info->num_planes;
	if (v4l2_planes > 1) {
		g->height = info->plane_sizes[0] / info->strides[0];
		for (unsigned i = 0; i < info->num_planes; i++) {
			g->bytesperline[i] = info->strides[i];
			g->sizeimage[i] = info->plane_sizes[i];
			g->layout.map[i] = i;
			g->layout.stride[i] = info->strides[i];
			g->layout.size[i] = info->plane_sizes[i];
		}
		return;
	}
	{
		uint32_t rows = info->plane_sizes[0] / info->strides[0];
		uint32_t crows = info->plane_sizes[1] / info->strides[1];
		uint32_t bpl = info->strides[0], h, cstride;
		size_t off;

		if (planar)
			bpl = MAX(bpl, 2 * MAX(info->strides[1], info->strides[2]));
		bpl = ALIGN_UP(bpl, 2u);
		h = ALIGN_UP(MAX(rows, 2 * crows), 2u);
		cstride = planar ? bpl / 2 : bpl;
		g->height = h;
		g->bytesperline[0] = bpl;
		g->layout.stride[0] = bpl;
		g->layout.size[0] = (size_t)bpl * h;
		off = (size_t)bpl * h;
		for (unsigned i = 1; i < info->num_planes; i++) {
			g->layout.offset[i] = off;
			g->layout.stride[i] = cstride;
			g->layout.size[i] = (size_t)cstride * (h / 2);
			off += g->layout.size[i];
		}
		g->sizeimage[0] = (uint32_t)off;
	}
}

static const struct codec_stream_info *
current_info(struct decoder *dec, struct codec_stream_info *def)
{
	if (dec->have_info)
		return &dec->info;
	default_info(dec->cap_base, dec->out.fmt.width, dec->out.fmt.height, def);
	return def;
}

static void
fill_capture_fmt(struct decoder *dec, uint32_t pixfmt, struct v4l2_pix_format_mplane *f)
{
	struct codec_stream_info def;
	const struct codec_stream_info *info;
	struct cap_geometry g;
	uint32_t base;
	unsigned n;

	if (!base_of(pixfmt, &base, &n) || base != dec->cap_base) {
		uint32_t v[2];

		capture_variants(dec->cap_base, v);
		pixfmt = v[0];
		base_of(pixfmt, &base, &n);
	}
	info = current_info(dec, &def);
	capture_geometry(info, base, n, &g);
	memset(f, 0, sizeof(*f));
	f->width = info->width;
	f->height = g.height;
	f->pixelformat = pixfmt;
	f->field = V4L2_FIELD_NONE;
	f->colorspace = V4L2_COLORSPACE_REC709;
	f->num_planes = n;
	for (unsigned i = 0; i < n; i++) {
		f->plane_fmt[i].bytesperline = g.bytesperline[i];
		f->plane_fmt[i].sizeimage = g.sizeimage[i];
	}
}

static void
fill_output_fmt(uint32_t coded, uint32_t w, uint32_t h, uint32_t sizeimage,
		struct v4l2_pix_format_mplane *f)
{
	memset(f, 0, sizeof(*f));
	f->pixelformat = coded;
	f->width = MIN(w, (uint32_t)DECODER_MAX_WIDTH);
	f->height = MIN(h, (uint32_t)DECODER_MAX_HEIGHT);
	f->field = V4L2_FIELD_NONE;
	f->num_planes = 1;
	if (sizeimage == 0)
		sizeimage = MAX(DEFAULT_BITSTREAM, f->width * f->height * 3 / 4);
	f->plane_fmt[0].sizeimage = MIN(MAX(sizeimage, MIN_BITSTREAM), DECODER_MAX_BITSTREAM_SIZE);
}

/* --- Events ------------------------------------------------------------------------------- */

static void
send_v4l2_event(struct decoder *dec, uint32_t type, uint32_t changes)
{
	struct virtio_media_event_event ev;
	struct v4l2_event e = {.type = type};
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	e.timestamp = ts;
	e.sequence = dec->event_seq++;
	if (type == V4L2_EVENT_SOURCE_CHANGE)
		e.u.src_change.changes = changes;
	vmd_event_event(&ev, dec->session_id, &e);
	dec->env.send_event(dec->env.userdata, &ev, sizeof(ev));
}

static void
session_error(struct decoder *dec, int error)
{
	struct virtio_media_event_error ev;

	if (dec->dead)
		return;
	dec->dead = true;
	vmd_event_error(&ev, dec->session_id, error);
	dec->env.send_event(dec->env.userdata, &ev, sizeof(ev));
}

static void
ns_to_timeval(uint64_t ns, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ns / 1000000000u);
	tv->tv_usec = (suseconds_t)(ns % 1000000000u / 1000u);
}

/* Returns buf to the guest with an implicit DQBUF. */
static void
send_dqbuf(struct decoder *dec, struct dec_queue *q, struct dec_buffer *buf, uint32_t flags,
	   bool empty)
{
	struct virtio_media_event_dqbuf ev;
	struct v4l2_buffer vb = buf->vb;
	struct v4l2_plane planes[VIDEO_MAX_PLANES];

	memcpy(planes, buf->planes, sizeof(planes));
	vb.index = buf->index;
	vb.type = q->type;
	vb.memory = q->memory;
	vb.length = buf->n_planes;
	vb.flags = (vb.flags & ~(V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_ERROR |
				 V4L2_BUF_FLAG_LAST | V4L2_BUF_FLAG_PREPARED)) |
		   flags | V4L2_BUF_FLAG_TIMESTAMP_COPY;
	vb.field = V4L2_FIELD_NONE;
	if (q == &dec->cap) {
		vb.sequence = dec->cap_seq++;
		for (unsigned i = 0; i < buf->n_planes; i++) {
			planes[i].bytesused = empty ? 0 : q->fmt.plane_fmt[i].sizeimage;
			if (planes[i].bytesused > planes[i].length)
				planes[i].bytesused = planes[i].length;
			planes[i].data_offset = 0;
		}
	}
	buf->state = BUF_DEQUEUED;
	buf->gen++;
	vmd_event_dqbuf(&ev, dec->session_id, &vb, planes);
	dec->env.send_event(dec->env.userdata, &ev, sizeof(ev));
}

/* --- Memory ------------------------------------------------------------------------------- */

static struct mem_map *
map_ref(struct mem_map *m)
{
	if (m)
		m->refs++;
	return m;
}

/*
 * Whether the codec still holds a picture in the buffer's memory. It is the memory that
 * counts, not the index: an index given a new UUID can be handed out at once.
 */
static bool
buffer_busy(const struct dec_buffer *b)
{
	for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
		if (b->maps[p] && b->maps[p]->codec_refs > 0)
			return true;
	}
	return false;
}

static void
map_unref(struct mem_map *m)
{
	if (m == NULL || --m->refs > 0)
		return;
	if (m->mapped)
		munmap(m->addr, m->len);
	else
		free(m->addr);
	safe_close(m->fd);
	free(m);
}

/* A device-allocated (MMAP) plane: a sealed memfd, so it can be exported to the registry. */
static int
map_new_memfd(size_t len, struct mem_map **ret)
{
	struct mem_map *m;
	int fd;

	len = ALIGN_UP(MAX(len, (size_t)1), (size_t)4096);
	fd = memfd_create("crossbuf-media", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return negative_errno();
	if (ftruncate(fd, (off_t)len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		close(fd);
		return -ENOMEM;
	}
	m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m->addr == MAP_FAILED) {
		int r = negative_errno();
		close(fd);
		free(m);
		return r;
	}
	m->refs = 1;
	m->len = len;
	m->fd = fd;
	m->mapped = true;
	*ret = m;
	return 0;
}

static int
map_new_bounce(size_t len, struct mem_map **ret)
{
	struct mem_map *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return -ENOMEM;
	m->addr = calloc(1, MAX(len, (size_t)1));
	if (m->addr == NULL) {
		free(m);
		return -ENOMEM;
	}
	m->refs = 1;
	m->len = len;
	m->fd = -1;
	*ret = m;
	return 0;
}

/* DMA_BUF_IOCTL_SYNC on a dma-buf mapping; nothing for memfds and bounces. */
static void
dmabuf_sync(struct mem_map *m, uint64_t flags)
{
	struct dma_buf_sync s = {.flags = flags};

	if (m && m->dmabuf)
		(void)ioctl(m->fd, DMA_BUF_IOCTL_SYNC, &s);
}

/*
 * A picture's CPU access brackets: every dma-buf among its planes' mappings (a
 * multi-planar picture may be several objects). access_data is the picture slot, whose
 * maps do not change while the codec holds the picture.
 */
static void
picture_sync(void *data, uint64_t flags)
{
	struct mem_map **maps = data;

	for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
		bool seen = false;

		for (unsigned q = 0; q < p; q++)
			seen |= maps[q] == maps[p];
		if (!seen)
			dmabuf_sync(maps[p], flags | DMA_BUF_SYNC_RW);
	}
}

static void
access_begin(void *data)
{
	picture_sync(data, DMA_BUF_SYNC_START);
}

static void
access_end(void *data)
{
	picture_sync(data, DMA_BUF_SYNC_END);
}

/* --- Buffers ------------------------------------------------------------------------------ */

static struct dec_queue *
queue_of(struct decoder *dec, uint32_t type)
{
	if (type == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE)
		return &dec->out;
	if (type == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE)
		return &dec->cap;
	return NULL;
}

static bool
uuid_in_use(struct decoder *dec, const uint8_t uuid[16], const struct mem_map *except)
{
	struct dec_queue *qs[2] = {&dec->out, &dec->cap};

	for (unsigned k = 0; k < 2; k++) {
		for (unsigned i = 0; i < qs[k]->count; i++) {
			struct dec_buffer *b = qs[k]->bufs[i];

			for (unsigned p = 0; b && p < VIDEO_MAX_PLANES; p++) {
				struct mem_map *m = b->maps[p];
				if (m && m != except && m->has_uuid &&
				    memcmp(m->uuid, uuid, 16) == 0)
					return true;
			}
		}
	}
	return false;
}

/* Drops a buffer's reference on plane p (command thread: may talk to the registry). */
static void
buffer_drop_map(struct decoder *dec, struct dec_buffer *b, unsigned p)
{
	struct mem_map *m = b->maps[p];

	if (m == NULL)
		return;
	b->maps[p] = NULL;
#if MEDIA_HAVE_REGISTRY
	if (m->has_uuid && !m->revoked && dec->env.client && !uuid_in_use(dec, m->uuid, m))
		(void)crossbuf_client_unwatch(dec->env.client, m->uuid);
	if (b->exported[p] && dec->env.client)
		(void)crossbuf_client_remove(dec->env.client, b->export_uuid[p]);
#endif
	b->exported[p] = false;
	map_unref(m);
}

static void
buffer_free(struct decoder *dec, struct dec_buffer *b)
{
	if (b == NULL)
		return;
	for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
		buffer_drop_map(dec, b, p);
		free(b->iov[p]);
	}
	free(b->bits);
	free(b);
}

static void
fifo_clear(struct decoder *dec)
{
	dec->fifo_head = dec->fifo_len = 0;
}

static void
fifo_push(struct decoder *dec, struct dec_buffer *b)
{
	assert(dec->fifo_len < DECODER_MAX_BUFFERS);
	dec->fifo[(dec->fifo_head + dec->fifo_len++) % DECODER_MAX_BUFFERS] = b;
}

static struct dec_buffer *
fifo_pop(struct decoder *dec)
{
	struct dec_buffer *b;

	if (dec->fifo_len == 0)
		return NULL;
	b = dec->fifo[dec->fifo_head];
	dec->fifo_head = (dec->fifo_head + 1) % DECODER_MAX_BUFFERS;
	dec->fifo_len--;
	return b;
}

static void
fifo_remove(struct decoder *dec, struct dec_buffer *b)
{
	struct dec_buffer *keep[DECODER_MAX_BUFFERS];
	unsigned n = 0;
	struct dec_buffer *x;

	while ((x = fifo_pop(dec)) != NULL) {
		if (x != b)
			keep[n++] = x;
	}
	for (unsigned i = 0; i < n; i++)
		fifo_push(dec, keep[i]);
}

/* Every buffer of q goes back to the guest without an event (STREAMOFF semantics). */
static void
queue_return_all(struct decoder *dec, struct dec_queue *q)
{
	for (unsigned i = 0; i < q->count; i++) {
		struct dec_buffer *b = q->bufs[i];

		if (b->state != BUF_DEQUEUED) {
			b->state = BUF_DEQUEUED;
			b->gen++;
		}
	}
	if (q == &dec->out)
		fifo_clear(dec);
}

static void
queue_free_all(struct decoder *dec, struct dec_queue *q)
{
	if (q == &dec->out)
		fifo_clear(dec);
	for (unsigned i = 0; i < q->count; i++) {
		buffer_free(dec, q->bufs[i]);
		q->bufs[i] = NULL;
	}
	q->count = 0;
}

/* The V4L2 plane lengths a new buffer of q gets. */
static void
queue_plane_sizes(struct dec_queue *q, const struct v4l2_pix_format_mplane *f, unsigned *ret_n,
		  uint32_t sizes[VIDEO_MAX_PLANES])
{
	*ret_n = f->num_planes;
	for (unsigned i = 0; i < f->num_planes; i++)
		sizes[i] = f->plane_fmt[i].sizeimage;
	(void)q;
}

/* Bytes of host memory the session's buffers had the device allocate (not objects). */
static uint64_t
session_memory(struct decoder *dec)
{
	struct dec_queue *qs[2] = {&dec->out, &dec->cap};
	uint64_t total = 0;

	for (unsigned k = 0; k < 2; k++) {
		for (unsigned i = 0; i < qs[k]->count; i++) {
			struct dec_buffer *b = qs[k]->bufs[i];

			for (unsigned p = 0; b && p < VIDEO_MAX_PLANES; p++) {
				if (b->maps[p] && !b->maps[p]->has_uuid)
					total += b->maps[p]->len;
			}
		}
	}
	return total;
}

static int
queue_add_buffers(struct decoder *dec, struct dec_queue *q, unsigned count,
		  const struct v4l2_pix_format_mplane *f, unsigned *ret_added)
{
	uint32_t sizes[VIDEO_MAX_PLANES];
	unsigned n, added = 0;
	int r = 0;

	queue_plane_sizes(q, f, &n, sizes);
	while (added < count && q->count < DECODER_MAX_BUFFERS) {
		struct dec_buffer *b;

		if (q->memory == VIRTIO_MEDIA_MMAP) {
			uint64_t need = 0;

			for (unsigned p = 0; p < n; p++)
				need += ALIGN_UP((uint64_t)sizes[p], 4096u);
			if (session_memory(dec) + need > DECODER_MAX_SESSION_MEMORY) {
				r = -ENOMEM;
				break;
			}
		}
		b = calloc(1, sizeof(*b));

		if (b == NULL) {
			r = -ENOMEM;
			break;
		}
		b->id = ++dec->next_buf_id;
		b->index = q->count;
		b->n_planes = n;
		for (unsigned p = 0; p < n; p++) {
			b->planes[p].length = sizes[p];
			if (q->memory == VIRTIO_MEDIA_MMAP) {
				r = map_new_memfd(sizes[p], &b->maps[p]);
				if (r < 0)
					break;
				b->planes[p].m.mem_offset =
					(uint32_t)((((q == &dec->cap) * DECODER_MAX_BUFFERS +
						     b->index) *
							    VIDEO_MAX_PLANES +
						    p)
						   << 12);
			}
		}
		if (r < 0) {
			buffer_free(dec, b);
			break;
		}
		q->bufs[q->count++] = b;
		added++;
	}
	*ret_added = added;
	return added > 0 ? 0 : r;
}

/* --- The codec's callbacks (worker thread) -------------------------------------------------- */

static bool
stream_info_valid(const struct codec_stream_info *i, uint32_t base)
{
	if (i->width == 0 || i->height == 0 || i->width > DECODER_MAX_WIDTH ||
	    i->height > DECODER_MAX_HEIGHT || i->num_planes != base_planes(base))
		return false;
	for (unsigned p = 0; p < i->num_planes; p++) {
		if (i->strides[p] == 0 || i->plane_sizes[p] < i->strides[p])
			return false;
	}
	return true;
}

static void
try_emit_last(struct decoder *dec)
{
	struct dec_buffer *best = NULL;

	if (!dec->last_pending || !dec->cap.streaming)
		return;
	for (unsigned i = 0; i < dec->cap.count; i++) {
		struct dec_buffer *b = dec->cap.bufs[i];

		if (b->state != BUF_QUEUED)
			continue;
		if (best == NULL || (!buffer_busy(b) && buffer_busy(best)) ||
		    (buffer_busy(b) == buffer_busy(best) && b->qseq < best->qseq))
			best = b;
	}
	if (best == NULL)
		return;
	dec->last_pending = false;
	best->vb.timestamp = (struct timeval){0};
	send_dqbuf(dec, &dec->cap, best, V4L2_BUF_FLAG_LAST, true);
}

static void
cb_stream_info(void *userdata, const struct codec_stream_info *info)
{
	struct decoder *dec = userdata;

	pthread_mutex_lock(&dec->lock);
	if (!stream_info_valid(info, dec->codec_base)) {
		session_error(dec, -EIO);
		pthread_mutex_unlock(&dec->lock);
		return;
	}
	if (dec->have_info && memcmp(&dec->info, info, sizeof(*info)) == 0) {
		pthread_mutex_unlock(&dec->lock);
		return;
	}
	bool change = dec->have_info && dec->cap.streaming;

	dec->have_info = true;
	dec->info = *info;
	fill_capture_fmt(dec, dec->cap.fmt.pixelformat, &dec->cap.fmt);
	dec->src_change_wait = true;
	/* The event first, so a client seeing the LAST buffer already has it queued. */
	if (dec->sub_src_change)
		send_v4l2_event(dec, V4L2_EVENT_SOURCE_CHANGE, V4L2_EVENT_SRC_CH_RESOLUTION);
	if (change) {
		/* Resolution change: the frames before it are done; mark the end with LAST. */
		dec->last_pending = true;
		try_emit_last(dec);
	}
	pthread_cond_broadcast(&dec->cond);
	pthread_mutex_unlock(&dec->lock);
}

/* When the codec last let go of the buffer's memory; 0 if it never wrote there. */
static uint64_t
buffer_released(const struct dec_buffer *b)
{
	uint64_t r = 0;

	for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
		if (b->maps[p])
			r = MAX(r, b->maps[p]->released);
	}
	return r;
}

/*
 * The CAPTURE buffer for the next picture: of the free queued ones, the one whose memory the
 * codec let go of last, as libavcodec's own frame pool does; it is the likeliest to be still
 * in the CPU's caches. Taking them in queue order instead rotates through every buffer the
 * guest queued (MIN_BUFFERS + spares): with 16 of them, decoding through the device measured
 * 3-4% slower (bench-media, docs/performance.md). Memory the codec never wrote goes in queue
 * order, after. V4L2 lets a decoder fill its queued CAPTURE buffers in any order.
 */
static struct dec_buffer *
pick_capture(struct decoder *dec)
{
	struct dec_buffer *best = NULL;
	uint64_t best_released = 0;

	if (dec->src_change_wait || !dec->cap.streaming || dec->last_pending)
		return NULL;
	for (unsigned i = 0; i < dec->cap.count; i++) {
		struct dec_buffer *b = dec->cap.bufs[i];
		uint64_t released;

		if (b->state != BUF_QUEUED || b->last_only || buffer_busy(b))
			continue;
		released = buffer_released(b);
		if (!best || released > best_released ||
		    (released == best_released && b->qseq < best->qseq)) {
			best = b;
			best_released = released;
		}
	}
	return best;
}

static int
cb_get_picture(void *userdata, struct codec_picture *pic)
{
	struct decoder *dec = userdata;
	struct dec_buffer *b;
	struct picture_slot *slot = NULL;
	int handle = -1;

	pthread_mutex_lock(&dec->lock);
	for (;;) {
		if (dec->quit || dec->cancel || dec->dead) {
			pthread_mutex_unlock(&dec->lock);
			return -ECANCELED;
		}
		b = pick_capture(dec);
		if (b)
			break;
		pthread_cond_wait(&dec->cond, &dec->lock);
	}
	for (int i = 0; i < MAX_PICTURES; i++) {
		if (!dec->pictures[i].used) {
			slot = &dec->pictures[i];
			handle = i;
			break;
		}
	}
	if (slot == NULL) {
		pthread_mutex_unlock(&dec->lock);
		return -EAGAIN;
	}
	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	slot->index = b->index;
	slot->buf_id = b->id;
	slot->gen = b->gen;
	for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
		slot->maps[p] = map_ref(b->maps[p]);
		if (slot->maps[p])
			slot->maps[p]->codec_refs++;
	}
	b->state = BUF_ACTIVE;

	memset(pic, 0, sizeof(*pic));
	pic->pixelformat = dec->codec_base;
	pic->num_planes = b->layout.n;
	for (unsigned i = 0; i < b->layout.n; i++) {
		struct mem_map *m = slot->maps[b->layout.map[i]];

		pic->data[i] = m->addr + b->layout.offset[i];
		pic->strides[i] = b->layout.stride[i];
		pic->sizes[i] = b->layout.size[i];
	}
	for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
		if (slot->maps[p] && slot->maps[p]->dmabuf) {
			pic->begin_access = access_begin;
			pic->end_access = access_end;
			pic->access_data = slot->maps;
		}
	}
	pthread_mutex_unlock(&dec->lock);
	return handle;
}

static struct dec_buffer *
slot_buffer(struct decoder *dec, struct picture_slot *s)
{
	struct dec_buffer *b;

	if (s->index >= dec->cap.count)
		return NULL;
	b = dec->cap.bufs[s->index];
	return b && b->id == s->buf_id ? b : NULL;
}

static void
cb_put_picture(void *userdata, int handle)
{
	struct decoder *dec = userdata;
	struct picture_slot *s;
	struct dec_buffer *b;

	if (handle < 0 || handle >= MAX_PICTURES)
		return;
	pthread_mutex_lock(&dec->lock);
	s = &dec->pictures[handle];
	if (!s->used) {
		pthread_mutex_unlock(&dec->lock);
		return;
	}
	b = slot_buffer(dec, s);
	/* Handed out but never finished (flush): the guest still has it queued. */
	if (b && !s->done && b->state == BUF_ACTIVE && b->gen == s->gen)
		b->state = BUF_QUEUED;
	dec->next_release++;
	for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
		if (s->maps[p]) {
			s->maps[p]->codec_refs--;
			s->maps[p]->released = dec->next_release;
		}
		map_unref(s->maps[p]);
	}
	memset(s, 0, sizeof(*s));
	pthread_cond_broadcast(&dec->cond);
	pthread_mutex_unlock(&dec->lock);
}

/*
 * Copies the codec's counters, added to those of the session's earlier codecs, into the
 * decoder's. Worker thread (the codec's callbacks run on it), lock held.
 */
static void
take_codec_stats(struct decoder *dec)
{
	const struct codec_stats *b = &dec->codecs_before;
	struct codec_stats cs;

	if (dec->codec == NULL)
		return;
	codec_get_stats(dec->codec, &cs);
	dec->stats.codec_frames_decoded = b->frames_decoded + cs.frames_decoded;
	dec->stats.codec_frames_copied = b->frames_copied + cs.frames_copied;
	dec->stats.codec_bytes_copied = b->bytes_copied + cs.bytes_copied;
	dec->stats.codec_frames_corrupt = b->frames_corrupt + cs.frames_corrupt;
}

static void
copy_out_shared_pages(struct decoder *dec, struct dec_buffer *b, struct picture_slot *s)
{
	struct mem_map *bounce = s->maps[0];
	size_t off = 0;

	for (unsigned p = 0; p < b->n_planes && bounce; p++) {
		size_t len = MIN(dec->cap.fmt.plane_fmt[p].sizeimage, b->planes[p].length);
		size_t done = 0;

		for (unsigned i = 0; i < b->n_iov[p] && done < len; i++) {
			size_t n = MIN(b->iov[p][i].iov_len, len - done);

			if (off + done + n > bounce->len)
				return;
			memcpy(b->iov[p][i].iov_base, bounce->addr + off + done, n);
			done += n;
		}
		off += dec->cap.fmt.plane_fmt[p].sizeimage;
		dec->stats.bytes_bounced += done;
	}
}

static void
cb_frame_done(void *userdata, int handle, uint64_t timestamp, uint32_t bytesused, bool error)
{
	struct decoder *dec = userdata;
	struct picture_slot *s;
	struct dec_buffer *b;
	bool revoked = false;

	(void)bytesused;
	if (handle < 0) {
		/*
		 * A frame that got no picture (undecodable input): a free CAPTURE buffer, if
		 * there is one, returns empty with ERROR and the frame's timestamp, so the
		 * client sees the loss. Not while the stream is being stopped.
		 */
		pthread_mutex_lock(&dec->lock);
		take_codec_stats(dec); /* the codec counted the frame before reporting it */
		b = dec->cancel || dec->quit ? NULL : pick_capture(dec);
		if (b) {
			ns_to_timeval(timestamp, &b->vb.timestamp);
			dec->stats.frames_error++;
			send_dqbuf(dec, &dec->cap, b, V4L2_BUF_FLAG_ERROR, true);
		}
		pthread_mutex_unlock(&dec->lock);
		return;
	}
	if (handle >= MAX_PICTURES)
		return;
	pthread_mutex_lock(&dec->lock);
	/* The codec counted the frame before reporting it: its buffer's client sees it counted. */
	take_codec_stats(dec);
	s = &dec->pictures[handle];
	b = s->used ? slot_buffer(dec, s) : NULL;
	if (s->used)
		s->done = true;
	if (b && b->state == BUF_ACTIVE && b->gen == s->gen) {
		for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++)
			revoked |= s->maps[p] && s->maps[p]->revoked;
		if (dec->cap.memory == VIRTIO_MEDIA_SHARED_PAGES && !error)
			copy_out_shared_pages(dec, b, s);
		ns_to_timeval(timestamp, &b->vb.timestamp);
		dec->stats.frames_done++;
		if (error || revoked)
			dec->stats.frames_error++;
		send_dqbuf(dec, &dec->cap, b, error || revoked ? V4L2_BUF_FLAG_ERROR : 0, false);
	}
	pthread_mutex_unlock(&dec->lock);
}

static const struct codec_callbacks callbacks = {
	.stream_info = cb_stream_info,
	.get_picture = cb_get_picture,
	.put_picture = cb_put_picture,
	.frame_done = cb_frame_done,
};

/* --- The worker ----------------------------------------------------------------------------- */

/* Called with the lock held; may drop it. Makes dec->codec match the wanted format. */
static int
worker_ensure_codec(struct decoder *dec)
{
	struct codec *old = NULL, *c = NULL;
	uint32_t coded = dec->coded_format, base = dec->cap_base;
	int r;

	if (dec->codec && dec->codec_coded == coded && dec->codec_base == base)
		return 0;
	if (dec->codec) {
		/* The session's counters go on from the old codec's. */
		take_codec_stats(dec);
		dec->codecs_before = (struct codec_stats){
			.frames_decoded = dec->stats.codec_frames_decoded,
			.frames_copied = dec->stats.codec_frames_copied,
			.bytes_copied = dec->stats.codec_bytes_copied,
			.frames_corrupt = dec->stats.codec_frames_corrupt,
		};
	}
	old = dec->codec;
	dec->codec = NULL;
	dec->codec_coded = coded;
	dec->codec_base = base;
	pthread_mutex_unlock(&dec->lock);
	if (old)
		codec_free(old);
	r = codec_new(coded, base, &callbacks, dec, &c);
	pthread_mutex_lock(&dec->lock);
	if (r < 0)
		return r;
	dec->codec = c;
	dec->codec_created = true;
	return 0;
}

static void
worker_decode_one(struct decoder *dec, struct dec_buffer *b)
{
	struct mem_map *m = NULL;
	const uint8_t *data = NULL;
	size_t len = b->planes[0].bytesused;
	uint64_t id = b->id, ts = b->ts_ns;
	uint32_t gen = b->gen, index = b->index;
	uint8_t *copy = NULL;
	int r;

	b->state = BUF_ACTIVE;
	r = worker_ensure_codec(dec);
	if (r < 0) {
		session_error(dec, r);
		return;
	}
	if (b->bits) {
		/* SHARED_PAGES: the bytes were copied at QBUF; take them over. */
		copy = b->bits;
		len = b->bits_len;
		b->bits = NULL;
		data = copy;
	} else if (b->maps[0]) {
		size_t off = b->planes[0].data_offset;

		m = map_ref(b->maps[0]);
		if (off > len || len > m->len)
			len = off = 0;
		data = m->addr + off;
		len -= off;
	}

	pthread_mutex_unlock(&dec->lock);
	if (len > 0 && dec->codec) {
		dmabuf_sync(m, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
		r = codec_decode(dec->codec, data, len, ts);
		dmabuf_sync(m, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	}
	free(copy);
	pthread_mutex_lock(&dec->lock);
	map_unref(m);
	take_codec_stats(dec);

	b = index < dec->out.count ? dec->out.bufs[index] : NULL;
	if (b && b->id == id && b->gen == gen && b->state == BUF_ACTIVE)
		send_dqbuf(dec, &dec->out, b, 0, false);
	if (r < 0)
		session_error(dec, r);
}

static void *
worker_main(void *data)
{
	struct decoder *dec = data;

	pthread_mutex_lock(&dec->lock);
	while (!dec->quit) {
		if (dec->flush_req != dec->flush_done) {
			unsigned req = dec->flush_req;
			struct codec *c = dec->codec;

			pthread_mutex_unlock(&dec->lock);
			if (c)
				codec_flush(c);
			pthread_mutex_lock(&dec->lock);
			take_codec_stats(dec);
			dec->flush_done = req;
			dec->cancel = false;
			pthread_cond_broadcast(&dec->cond);
			continue;
		}
		if (dec->dead) {
			pthread_cond_wait(&dec->cond, &dec->lock);
			continue;
		}
		if (dec->out.streaming && !dec->stopped && dec->fifo_len > 0) {
			worker_decode_one(dec, fifo_pop(dec));
			pthread_cond_broadcast(&dec->cond);
			continue;
		}
		if (dec->draining && dec->fifo_len == 0) {
			struct codec *c = dec->codec;
			int r = 0;

			pthread_mutex_unlock(&dec->lock);
			if (c)
				r = codec_drain(c);
			pthread_mutex_lock(&dec->lock);
			take_codec_stats(dec);
			if (r < 0) {
				session_error(dec, r);
				continue;
			}
			if (!dec->draining)
				continue; /* aborted by STREAMOFF meanwhile */
			dec->draining = false;
			dec->stopped = true;
			dec->last_pending = true;
			try_emit_last(dec);
			if (dec->sub_eos)
				send_v4l2_event(dec, V4L2_EVENT_EOS, 0);
			pthread_cond_broadcast(&dec->cond);
			continue;
		}
		pthread_cond_wait(&dec->cond, &dec->lock);
	}
	pthread_mutex_unlock(&dec->lock);
	return NULL;
}

/* Asks the worker to flush the codec and waits until it has (command thread, lock held). */
static void
flush_and_wait(struct decoder *dec)
{
	unsigned req = ++dec->flush_req;

	dec->cancel = true;
	pthread_cond_broadcast(&dec->cond);
	while ((int)(dec->flush_done - req) < 0 && !dec->quit)
		pthread_cond_wait(&dec->cond, &dec->lock);
}

/* --- Lifetime ------------------------------------------------------------------------------- */

int
decoder_new(const struct decoder_env *env, uint32_t session_id, struct decoder **ret)
{
	struct decoder *dec;
	int r;

	if (env == NULL || env->send_event == NULL || ret == NULL)
		return -EINVAL;
	dec = calloc(1, sizeof(*dec));
	if (dec == NULL)
		return -ENOMEM;
	dec->env = *env;
	dec->session_id = session_id;
	pthread_mutex_init(&dec->lock, NULL);
	pthread_cond_init(&dec->cond, NULL);
	dec->out.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
	dec->cap.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	dec->out.memory = dec->cap.memory = VIRTIO_MEDIA_MMAP;
	dec->coded_format = V4L2_PIX_FMT_H264;
	for (size_t i = 0; i < ARRAY_SIZE(coded_formats); i++) {
		if (codec_supports(coded_formats[i])) {
			dec->coded_format = coded_formats[i];
			break;
		}
	}
	dec->cap_base = default_base(dec->coded_format);
	fill_output_fmt(dec->coded_format, 0, 0, 0, &dec->out.fmt);
	fill_capture_fmt(dec, 0, &dec->cap.fmt);
	r = pthread_create(&dec->worker, NULL, worker_main, dec);
	if (r != 0) {
		pthread_cond_destroy(&dec->cond);
		pthread_mutex_destroy(&dec->lock);
		free(dec);
		return -r;
	}
	*ret = dec;
	return 0;
}

void
decoder_shutdown(struct decoder *dec)
{
	struct codec *codec;

	pthread_mutex_lock(&dec->lock);
	if (dec->shut_down) {
		pthread_mutex_unlock(&dec->lock);
		return;
	}
	dec->quit = true;
	dec->cancel = true;
	dec->dead = true; /* from now on every ioctl is EIO */
	pthread_cond_broadcast(&dec->cond);
	pthread_mutex_unlock(&dec->lock);
	pthread_join(dec->worker, NULL);
	/* The worker is gone: the codec puts its pictures back from this thread. */
	pthread_mutex_lock(&dec->lock);
	take_codec_stats(dec);
	codec = dec->codec;
	dec->codec = NULL;
	pthread_mutex_unlock(&dec->lock);
	codec_free(codec);
	pthread_mutex_lock(&dec->lock);
	for (int i = 0; i < MAX_PICTURES; i++) {
		for (unsigned p = 0; dec->pictures[i].used && p < VIDEO_MAX_PLANES; p++)
			map_unref(dec->pictures[i].maps[p]);
		dec->pictures[i].used = false;
	}
	queue_free_all(dec, &dec->out);
	queue_free_all(dec, &dec->cap);
	dec->shut_down = true;
	pthread_mutex_unlock(&dec->lock);
}

bool
decoder_needs_shutdown(struct decoder *dec)
{
	bool r;

	pthread_mutex_lock(&dec->lock);
	r = dec->dead && !dec->shut_down;
	pthread_mutex_unlock(&dec->lock);
	return r;
}

void
decoder_free(struct decoder *dec)
{
	if (dec == NULL)
		return;
	decoder_shutdown(dec);
	pthread_cond_destroy(&dec->cond);
	pthread_mutex_destroy(&dec->lock);
	free(dec);
}

bool
decoder_is_dead(struct decoder *dec)
{
	bool dead;

	pthread_mutex_lock(&dec->lock);
	dead = dec->dead;
	pthread_mutex_unlock(&dec->lock);
	return dead;
}

void
decoder_get_stats(struct decoder *dec, struct decoder_stats *ret)
{
	pthread_mutex_lock(&dec->lock);
	*ret = dec->stats;
	pthread_mutex_unlock(&dec->lock);
}

/* --- ioctls: formats ------------------------------------------------------------------------ */

static int
ioc_enum_fmt(struct decoder *dec, struct v4l2_fmtdesc *f)
{
	uint32_t idx = f->index, type = f->type, variants[2];
	unsigned n = 0;

	memset(f, 0, sizeof(*f));
	f->index = idx;
	f->type = type;
	if (type == V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE) {
		for (size_t i = 0; i < ARRAY_SIZE(coded_formats); i++) {
			if (!codec_supports(coded_formats[i]))
				continue;
			if (n++ == idx) {
				f->pixelformat = coded_formats[i];
				f->flags = V4L2_FMT_FLAG_COMPRESSED | V4L2_FMT_FLAG_DYN_RESOLUTION;
				snprintf((char *)f->description, sizeof(f->description), "%s",
					 format_name(f->pixelformat));
				return 0;
			}
		}
		return -EINVAL;
	}
	if (type != V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE)
		return -EINVAL;
	/* Only the formats valid for the current OUTPUT format and the codec in use. */
	n = capture_variants(dec->cap_base, variants);
	if (!dec->codec_created && !dec->have_info) {
		uint32_t bases[2], v[2];
		unsigned nb = codec_bases(dec->coded_format, bases), k = 0;

		for (unsigned i = 0; i < nb; i++) {
			unsigned nv = capture_variants(bases[i], v);
			for (unsigned j = 0; j < nv; j++) {
				if (k++ == idx) {
					f->pixelformat = v[j];
					goto found;
				}
			}
		}
		return -EINVAL;
	}
	if (idx >= n)
		return -EINVAL;
	f->pixelformat = variants[idx];
found:
	snprintf((char *)f->description, sizeof(f->description), "%s", format_name(f->pixelformat));
	return 0;
}

static int
ioc_g_fmt(struct decoder *dec, struct v4l2_format *f)
{
	struct dec_queue *q = queue_of(dec, f->type);

	if (q == NULL)
		return -EINVAL;
	if (q == &dec->cap)
		fill_capture_fmt(dec, dec->cap.fmt.pixelformat, &dec->cap.fmt);
	f->fmt.pix_mp = q->fmt;
	memset(f->fmt.raw_data + sizeof(f->fmt.pix_mp), 0,
	       sizeof(f->fmt.raw_data) - sizeof(f->fmt.pix_mp));
	return 0;
}

static int
ioc_try_s_fmt(struct decoder *dec, struct v4l2_format *f, bool set)
{
	struct dec_queue *q = queue_of(dec, f->type);
	struct v4l2_pix_format_mplane *p = &f->fmt.pix_mp;

	if (q == NULL)
		return -EINVAL;
	if (q == &dec->out) {
		uint32_t coded =
			coded_supported(p->pixelformat) ? p->pixelformat : dec->coded_format;
		struct v4l2_pix_format_mplane nf;

		fill_output_fmt(coded, p->width, p->height, p->plane_fmt[0].sizeimage, &nf);
		*p = nf;
		if (!set)
			return 0;
		if (dec->out.count > 0)
			return -EBUSY;
		if (coded != dec->coded_format) {
			dec->coded_format = coded;
			dec->cap_base = default_base(coded);
			dec->have_info = false;
			dec->codec_created = false;
		}
		dec->out.fmt = nf;
		fill_capture_fmt(dec, dec->cap.fmt.pixelformat, &dec->cap.fmt);
		return 0;
	}

	/* CAPTURE: the layout follows the stream; only the pixel format is a choice. */
	{
		uint32_t base, bases[2];
		unsigned n, nb;

		if (base_of(p->pixelformat, &base, &n) && base != dec->cap_base &&
		    !dec->codec_created && !dec->have_info) {
			nb = codec_bases(dec->coded_format, bases);
			for (unsigned i = 0; i < nb; i++) {
				if (bases[i] == base && set && dec->cap.count == 0)
					dec->cap_base = base;
			}
		}
		if (set && dec->cap.count > 0 && p->pixelformat != dec->cap.fmt.pixelformat)
			return -EBUSY;
		fill_capture_fmt(dec, p->pixelformat, p);
		if (set)
			dec->cap.fmt = *p;
	}
	return 0;
}

static int
ioc_enum_framesizes(struct decoder *dec, struct v4l2_frmsizeenum *f)
{
	uint32_t base;
	unsigned n;

	if (f->index != 0)
		return -EINVAL;
	if (!coded_supported(f->pixel_format) && !base_of(f->pixel_format, &base, &n))
		return -EINVAL;
	f->type = V4L2_FRMSIZE_TYPE_STEPWISE;
	f->stepwise.min_width = 16;
	f->stepwise.max_width = DECODER_MAX_WIDTH;
	f->stepwise.step_width = 1;
	f->stepwise.min_height = 16;
	f->stepwise.max_height = DECODER_MAX_HEIGHT;
	f->stepwise.step_height = 1;
	memset(f->reserved, 0, sizeof(f->reserved));
	return 0;
}

static int
ioc_g_selection(struct decoder *dec, struct v4l2_selection *s)
{
	struct codec_rect v;

	if (s->type != V4L2_BUF_TYPE_VIDEO_CAPTURE && s->type != V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE)
		return -EINVAL;
	if (!dec->have_info)
		return -EINVAL;
	v = dec->info.visible;
	switch (s->target) {
	case V4L2_SEL_TGT_COMPOSE:
	case V4L2_SEL_TGT_COMPOSE_DEFAULT:
	case V4L2_SEL_TGT_COMPOSE_BOUNDS:
	case V4L2_SEL_TGT_CROP:
	case V4L2_SEL_TGT_CROP_DEFAULT:
	case V4L2_SEL_TGT_CROP_BOUNDS:
		s->r = (struct v4l2_rect){(int32_t)v.left, (int32_t)v.top, v.width, v.height};
		return 0;
	case V4L2_SEL_TGT_COMPOSE_PADDED:
		s->r = (struct v4l2_rect){0, 0, dec->info.width, dec->info.height};
		return 0;
	}
	return -EINVAL;
}

/* --- ioctls: controls and events ------------------------------------------------------------ */

static int32_t
min_buffers(struct decoder *dec)
{
	uint32_t m = dec->have_info ? dec->info.min_buffers : 1;

	return (int32_t)MIN(MAX(m, 1u), (uint32_t)DECODER_MAX_BUFFERS);
}

static int64_t
ctrl_min_buffers(struct decoder *dec)
{
	return min_buffers(dec);
}

/* A counter as a control's value (INTEGER64 is signed). */
static int64_t
counter_value(uint64_t a, uint64_t b)
{
	uint64_t sum = a + b < a ? UINT64_MAX : a + b;

	return (int64_t)MIN(sum, (uint64_t)INT64_MAX);
}

static int64_t
ctrl_frames_decoded(struct decoder *dec)
{
	return counter_value(dec->stats.codec_frames_decoded, 0);
}

static int64_t
ctrl_frames_copied(struct decoder *dec)
{
	return counter_value(dec->stats.codec_frames_copied, 0);
}

/* The codec's copies and the SHARED_PAGES bounce copies (crossbuf-media-controls.h). */
static int64_t
ctrl_bytes_copied(struct decoder *dec)
{
	return counter_value(dec->stats.codec_bytes_copied, dec->stats.bytes_bounced);
}

static int64_t
ctrl_object_lookups(struct decoder *dec)
{
	return counter_value(dec->stats.object_lookups, 0);
}

static int64_t
ctrl_frames_error(struct decoder *dec)
{
	return counter_value(dec->stats.frames_error, 0);
}

/*
 * The decoder's controls, in id order: QUERYCTRL's V4L2_CTRL_FLAG_NEXT_CTRL walks the
 * table. As in Linux's control framework, the class's own control (V4L2_CID_USER_CLASS,
 * neither readable nor writable) comes first. Every other control is read-only and
 * volatile; get() runs with dec->lock held, so the controls of one G_EXT_CTRLS are read at
 * one instant while the worker decodes. None is a compound control.
 */
struct ctrl_desc {
	uint32_t id;
	uint32_t type; /* V4L2_CTRL_TYPE_CTRL_CLASS, V4L2_CTRL_TYPE_INTEGER or ..._INTEGER64 */
	const char *name;
	int64_t minimum, maximum;
	uint32_t flags;
	bool default_is_current; /* the default value is the current one, else minimum */
	int64_t (*get)(struct decoder *dec); /* NULL for the class control */
};

static const struct ctrl_desc ctrls[] = {
	{
		.id = V4L2_CID_USER_CLASS,
		.type = V4L2_CTRL_TYPE_CTRL_CLASS,
		.name = "User Controls",
		.flags = V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_WRITE_ONLY,
	},
	{
		.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE,
		.type = V4L2_CTRL_TYPE_INTEGER,
		.name = "Min Number of Capture Buffers",
		.minimum = 1,
		.maximum = DECODER_MAX_BUFFERS,
		.flags = V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_VOLATILE,
		.default_is_current = true,
		.get = ctrl_min_buffers,
	},
#define COUNTER(cid, label, getter)                                                                \
	{                                                                                          \
		.id = cid, .type = V4L2_CTRL_TYPE_INTEGER64, .name = label, .minimum = 0,          \
		.maximum = INT64_MAX, .flags = V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_VOLATILE, \
		.get = getter,                                                                     \
	}
	COUNTER(CROSSBUF_CID_FRAMES_DECODED, "Frames Decoded", ctrl_frames_decoded),
	COUNTER(CROSSBUF_CID_FRAMES_COPIED, "Frames Copied", ctrl_frames_copied),
	COUNTER(CROSSBUF_CID_BYTES_COPIED, "Bytes Copied", ctrl_bytes_copied),
	COUNTER(CROSSBUF_CID_OBJECT_LOOKUPS, "Registry Lookups", ctrl_object_lookups),
	COUNTER(CROSSBUF_CID_FRAMES_ERROR, "Frames with Errors", ctrl_frames_error),
#undef COUNTER
};

static const struct ctrl_desc *
ctrl_find(uint32_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctrls); i++) {
		if (ctrls[i].id == id)
			return &ctrls[i];
	}
	return NULL;
}

/* The first control whose id is greater than id (V4L2_CTRL_FLAG_NEXT_CTRL). */
static const struct ctrl_desc *
ctrl_next(uint32_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctrls); i++) {
		assert(i == 0 || ctrls[i - 1].id < ctrls[i].id);
		if (ctrls[i].id > id)
			return &ctrls[i];
	}
	return NULL;
}

static int64_t
ctrl_default(struct decoder *dec, const struct ctrl_desc *d)
{
	return d->default_is_current ? d->get(dec) : d->minimum;
}

/*
 * The flags in the id choose what enumeration returns, as in Linux: NEXT_CTRL the next
 * ordinary control, NEXT_COMPOUND the next compound one (the decoder has none), both any.
 */
static int
ioc_query_ext_ctrl(struct decoder *dec, struct v4l2_query_ext_ctrl *q)
{
	uint32_t next = q->id & (V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND);
	uint32_t id = q->id & V4L2_CTRL_ID_MASK;
	const struct ctrl_desc *d;

	if (next == V4L2_CTRL_FLAG_NEXT_COMPOUND)
		return -EINVAL;
	d = next ? ctrl_next(id) : ctrl_find(id);
	if (d == NULL)
		return -EINVAL;
	memset(q, 0, sizeof(*q));
	q->id = d->id;
	q->type = d->type;
	snprintf(q->name, sizeof(q->name), "%s", d->name);
	q->minimum = d->minimum;
	q->maximum = d->maximum;
	q->step = d->type == V4L2_CTRL_TYPE_CTRL_CLASS ? 0 : 1;
	q->default_value = ctrl_default(dec, d);
	q->flags = d->flags;
	q->elem_size = d->type == V4L2_CTRL_TYPE_INTEGER64 ? sizeof(int64_t) : sizeof(int32_t);
	q->elems = 1;
	q->nr_of_dims = 0;
	return 0;
}

/* As Linux's v4l2_queryctrl(): the range of a 64-bit control does not fit, so it is zero. */
static int
ioc_queryctrl(struct decoder *dec, struct v4l2_queryctrl *q)
{
	struct v4l2_query_ext_ctrl qe = {.id = q->id};
	int r = ioc_query_ext_ctrl(dec, &qe);

	if (r < 0)
		return r;
	memset(q, 0, sizeof(*q));
	q->id = qe.id;
	q->type = qe.type;
	memcpy(q->name, qe.name, sizeof(q->name));
	q->name[sizeof(q->name) - 1] = '\0';
	q->flags = qe.flags;
	if (qe.type == V4L2_CTRL_TYPE_INTEGER) {
		q->minimum = (int32_t)qe.minimum;
		q->maximum = (int32_t)qe.maximum;
		q->step = (int32_t)qe.step;
		q->default_value = (int32_t)qe.default_value;
	}
	return 0;
}

/*
 * G_CTRL and S_CTRL take 32-bit controls only (64-bit ones are EINVAL, as in V4L2); the class
 * control can be neither read nor written (EACCES).
 */
static int
ioc_g_s_ctrl(struct decoder *dec, struct v4l2_control *c, bool get)
{
	const struct ctrl_desc *d = ctrl_find(c->id);

	if (d == NULL || d->type == V4L2_CTRL_TYPE_INTEGER64)
		return -EINVAL;
	if (!get) {
		assert(d->flags & V4L2_CTRL_FLAG_READ_ONLY); /* there is no writable control */
		return -EACCES;
	}
	if (d->flags & V4L2_CTRL_FLAG_WRITE_ONLY)
		return -EACCES;
	c->value = (int32_t)d->get(dec);
	return 0;
}

enum ext_ctrls_op {
	EXT_CTRLS_GET,
	EXT_CTRLS_TRY,
	EXT_CTRLS_SET,
};

/*
 * Unknown controls first (EINVAL), then read-only ones for TRY and S, write-only ones (the
 * class control) for G (EACCES), with error_idx as Linux sets it (v4l2-ctrls-api.c, checked
 * by v4l2-compliance): a failure of this validation step is reported at count for
 * G_EXT_CTRLS and S_EXT_CTRLS ("no control was touched"), and at the failing control for
 * TRY_EXT_CTRLS.
 */
static int
ioc_ext_ctrls(struct decoder *dec, struct vmd_command *cmd, enum ext_ctrls_op op)
{
	struct v4l2_ext_controls *c = &cmd->payload.ext_ctrls;
	const struct ctrl_desc *d[VMD_MAX_CTRLS];
	bool get = false;

	switch (op) {
	case EXT_CTRLS_GET:
		get = true;
		break;
	case EXT_CTRLS_TRY:
	case EXT_CTRLS_SET:
		break;
	}
	c->error_idx = c->count;
	if (c->which != V4L2_CTRL_WHICH_CUR_VAL && c->which != V4L2_CTRL_WHICH_DEF_VAL &&
	    c->which != V4L2_CTRL_CLASS_USER)
		return -EINVAL;
	if (!get && c->which == V4L2_CTRL_WHICH_DEF_VAL)
		return -EINVAL;       /* default values cannot be changed */
	if (c->count > VMD_MAX_CTRLS) /* protocol.c refuses them already */
		return -EINVAL;
	for (uint32_t i = 0; i < c->count; i++) {
		d[i] = ctrl_find(cmd->ctrls[i].id);
		if (d[i] == NULL) {
			c->error_idx = op == EXT_CTRLS_TRY ? i : c->count;
			return -EINVAL;
		}
	}
	for (uint32_t i = 0; get && i < c->count; i++) {
		if (d[i]->flags & V4L2_CTRL_FLAG_WRITE_ONLY)
			return -EACCES;
	}
	for (uint32_t i = 0; i < c->count; i++) {
		int64_t v;

		if (!get) {
			assert(d[i]->flags & V4L2_CTRL_FLAG_READ_ONLY); /* none is writable */
			c->error_idx = op == EXT_CTRLS_TRY ? i : c->count;
			return -EACCES;
		}
		v = c->which == V4L2_CTRL_WHICH_DEF_VAL ? ctrl_default(dec, d[i]) : d[i]->get(dec);
		cmd->ctrls[i].size = 0;
		if (d[i]->type == V4L2_CTRL_TYPE_INTEGER64)
			cmd->ctrls[i].value64 = v;
		else
			cmd->ctrls[i].value = (int32_t)v;
	}
	return 0;
}

static int
ioc_subscribe(struct decoder *dec, struct v4l2_event_subscription *s, bool subscribe)
{
	bool on = subscribe;

	switch (s->type) {
	case V4L2_EVENT_EOS:
		dec->sub_eos = on;
		return 0;
	case V4L2_EVENT_SOURCE_CHANGE:
		if (s->id != 0)
			return -EINVAL;
		dec->sub_src_change = on;
		return 0;
	case V4L2_EVENT_ALL:
		if (subscribe)
			return -EINVAL;
		dec->sub_eos = dec->sub_src_change = false;
		return 0;
	}
	return -EINVAL;
}

/* --- ioctls: buffers ------------------------------------------------------------------------ */

static bool
memory_valid(uint32_t m)
{
	return m == VIRTIO_MEDIA_MMAP || m == VIRTIO_MEDIA_SHARED_PAGES || m == VIRTIO_MEDIA_OBJECT;
}

static void
streamoff_locked(struct decoder *dec, struct dec_queue *q)
{
	q->streaming = false;
	queue_return_all(dec, q);
	if (q == &dec->out) {
		/* A drain in progress is abandoned, not completed with a LAST buffer. */
		dec->draining = false;
		flush_and_wait(dec);
		dec->stopped = false;
		dec->last_pending = false;
	} else {
		dec->stopped = false;
		dec->last_pending = false;
	}
	pthread_cond_broadcast(&dec->cond);
}

static int
ioc_reqbufs(struct decoder *dec, struct v4l2_requestbuffers *rb)
{
	struct dec_queue *q = queue_of(dec, rb->type);
	unsigned added = 0, count;
	int r;

	if (q == NULL || !memory_valid(rb->memory))
		return -EINVAL;
	if (q == &dec->cap && dec->protected && rb->memory != VIRTIO_MEDIA_OBJECT && rb->count > 0)
		return -EPERM;
	if (q->streaming) {
		if (rb->count > 0)
			return -EBUSY;
		/* count 0 while streaming: an implicit STREAMOFF (the Linux driver's behaviour). */
		streamoff_locked(dec, q);
	}
	queue_free_all(dec, q);
	q->memory = rb->memory;
	count = MIN(rb->count, (uint32_t)DECODER_MAX_BUFFERS);
	if (q == &dec->cap && count > 0) {
		fill_capture_fmt(dec, dec->cap.fmt.pixelformat, &dec->cap.fmt);
		count = MAX(count, (unsigned)min_buffers(dec));
	}
	if (count > 0) {
		r = queue_add_buffers(dec, q, count, &q->fmt, &added);
		if (r < 0)
			return r;
	}
	rb->count = added;
	rb->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP | V4L2_BUF_CAP_SUPPORTS_USERPTR |
			   V4L2_BUF_CAP_SUPPORTS_DMABUF | V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS;
	rb->flags = 0;
	memset(rb->reserved, 0, sizeof(rb->reserved));
	return 0;
}

static int
ioc_create_bufs(struct decoder *dec, struct v4l2_create_buffers *cb)
{
	struct dec_queue *q = queue_of(dec, cb->format.type);
	struct v4l2_pix_format_mplane f;
	unsigned added = 0;
	int r;

	if (q == NULL || !memory_valid(cb->memory))
		return -EINVAL;
	if (q->count > 0 && cb->memory != q->memory)
		return -EINVAL;
	if (q == &dec->cap && dec->protected && cb->memory != VIRTIO_MEDIA_OBJECT)
		return -EPERM;
	if (q == &dec->cap)
		fill_capture_fmt(dec, dec->cap.fmt.pixelformat, &dec->cap.fmt);
	f = q->fmt;
	/* Larger planes may be asked for; never smaller than the format needs. */
	if (cb->format.fmt.pix_mp.num_planes == f.num_planes) {
		for (unsigned i = 0; i < f.num_planes; i++) {
			uint32_t want = cb->format.fmt.pix_mp.plane_fmt[i].sizeimage;
			if (want > f.plane_fmt[i].sizeimage && want <= (256u << 20))
				f.plane_fmt[i].sizeimage = want;
		}
	}
	cb->index = q->count;
	cb->capabilities = V4L2_BUF_CAP_SUPPORTS_MMAP | V4L2_BUF_CAP_SUPPORTS_USERPTR |
			   V4L2_BUF_CAP_SUPPORTS_DMABUF | V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS;
	if (cb->count == 0) {
		cb->format.fmt.pix_mp = f;
		return 0;
	}
	if (q->count == 0)
		q->memory = cb->memory;
	r = queue_add_buffers(dec, q, MIN(cb->count, (uint32_t)DECODER_MAX_BUFFERS), &f, &added);
	if (r < 0)
		return r;
	if (added == 0)
		return -ENOBUFS;
	cb->count = added;
	cb->format.fmt.pix_mp = f;
	return 0;
}

static void
fill_buffer_reply(struct dec_queue *q, struct dec_buffer *b, struct vmd_command *cmd)
{
	struct v4l2_buffer *vb = &cmd->payload.buf;

	vb->flags &= ~(V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_DONE);
	if (b->state != BUF_DEQUEUED)
		vb->flags |= V4L2_BUF_FLAG_QUEUED;
	vb->memory = q->memory;
	vb->length = b->n_planes;
	for (unsigned i = 0; i < b->n_planes && i < cmd->n_planes; i++) {
		cmd->planes[i].length = b->planes[i].length;
		if (q->memory == VIRTIO_MEDIA_MMAP)
			cmd->planes[i].m.mem_offset = b->planes[i].m.mem_offset;
	}
}

static int
ioc_querybuf(struct decoder *dec, struct vmd_command *cmd)
{
	struct v4l2_buffer *vb = &cmd->payload.buf;
	struct dec_queue *q = queue_of(dec, vb->type);
	struct dec_buffer *b;

	if (q == NULL || vb->index >= q->count)
		return -EINVAL;
	b = q->bufs[vb->index];
	if (cmd->n_planes < b->n_planes)
		return -EINVAL;
	fill_buffer_reply(q, b, cmd);
	vb->bytesused = 0;
	for (unsigned i = 0; i < b->n_planes; i++)
		cmd->planes[i].bytesused = b->planes[i].bytesused;
	return 0;
}

/* The layout of the codec's planes in a CAPTURE buffer whose maps are set. */
static int
capture_layout(struct decoder *dec, struct dec_buffer *b)
{
	const struct v4l2_pix_format_mplane *f = &dec->cap.fmt;
	struct codec_stream_info def;
	const struct codec_stream_info *info = current_info(dec, &def);
	struct cap_geometry g;
	struct pic_layout *l = &b->layout;

	capture_geometry(info, dec->cap_base, f->num_planes, &g);
	*l = g.layout;
	for (unsigned i = 0; i < l->n; i++) {
		struct mem_map *m = b->maps[l->map[i]];
		const struct crossbuf_buffer_info *bi;

		if (m == NULL)
			return -EINVAL;
		bi = m->has_uuid ? &m->info : NULL;
		/* An object with its own layout (an exporter's strides and offsets). */
		if (bi && bi->num_planes > 0) {
			unsigned k = f->num_planes == 1 ? i : 0;

			if (k < bi->num_planes && k < CROSSBUF_MAX_PLANES &&
			    (f->num_planes > 1 || bi->num_planes == l->n)) {
				uint32_t rows = info->plane_sizes[i] / info->strides[i];

				if (bi->planes[k].stride < info->strides[i])
					return -EINVAL;
				l->stride[i] = bi->planes[k].stride;
				l->offset[i] = bi->planes[k].offset;
				l->size[i] = (size_t)l->stride[i] * rows;
			}
		}
		if (l->offset[i] > m->len || l->size[i] > m->len - l->offset[i])
			return -EINVAL;
	}
	return 0;
}

#if MEDIA_HAVE_REGISTRY
static int
resolve_object(struct decoder *dec, struct dec_queue *q, struct dec_buffer *b, unsigned p,
	       const uint8_t uuid[16], size_t need)
{
	struct crossbuf_buffer_info info;
	struct mem_map *m;
	int fd = -1, r, prot;

	if (b->maps[p] && b->maps[p]->has_uuid && !b->maps[p]->revoked &&
	    memcmp(b->maps[p]->uuid, uuid, 16) == 0) {
		if (b->maps[p]->len < need)
			return -EINVAL;
		return 0; /* cached */
	}
	if (dec->env.client == NULL)
		return -EOPNOTSUPP;
	r = crossbuf_client_lookup(dec->env.client, uuid, &info, &fd);
	dec->stats.object_lookups++;
	if (r < 0)
		return r == -ENOENT ? -EINVAL : r;
	if (info.size < need || info.size > SIZE_MAX) {
		close(fd);
		return -EINVAL;
	}
	if ((info.flags & CROSSBUF_BUFFER_PROTECTED) && q == &dec->out) {
		/* Protected bitstream cannot be parsed by a software codec. */
		close(fd);
		return -EPERM;
	}
	if ((info.flags & CROSSBUF_BUFFER_PROTECTED) && dec->cap.memory != VIRTIO_MEDIA_OBJECT) {
		close(fd);
		return -EPERM;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		close(fd);
		return -ENOMEM;
	}
	prot = q == &dec->cap ? PROT_READ | PROT_WRITE : PROT_READ;
	m->addr = mmap(NULL, (size_t)info.size, prot, MAP_SHARED, fd, 0);
	if (m->addr == MAP_FAILED) {
		/* An exporter without CPU mappings: a software codec cannot use it. */
		close(fd);
		free(m);
		return -EOPNOTSUPP;
	}
	m->refs = 1;
	m->len = (size_t)info.size;
	m->fd = fd;
	m->mapped = true;
	m->dmabuf = info.fd_kind == CROSSBUF_FD_KIND_DMABUF;
	m->has_uuid = true;
	memcpy(m->uuid, uuid, 16);
	m->info = info;
	buffer_drop_map(dec, b, p);
	b->maps[p] = m;
	r = crossbuf_client_watch(dec->env.client, uuid);
	if (r < 0 && r != -EEXIST && r != -EALREADY) {
		buffer_drop_map(dec, b, p);
		return r == -ENOENT ? -EINVAL : r;
	}
	if ((info.flags & CROSSBUF_BUFFER_PROTECTED) && q == &dec->cap)
		dec->protected = true;
	return 0;
}
#else
static int
resolve_object(struct decoder *dec, struct dec_queue *q, struct dec_buffer *b, unsigned p,
	       const uint8_t uuid[16], size_t need)
{
	(void)dec, (void)q, (void)b, (void)p, (void)uuid, (void)need;
	return -EOPNOTSUPP;
}
#endif

static int
resolve_shared_pages(struct decoder *dec, struct dec_queue *q, struct dec_buffer *b,
		     struct vmd_command *cmd)
{
	const struct guest_mem *gm = dec->env.guest_mem;
	int r;

	if (gm == NULL)
		return -EOPNOTSUPP;
	if (q == &dec->cap && dec->protected)
		return -EPERM;
	for (unsigned p = 0; p < b->n_planes; p++) {
		unsigned n = cmd->sg_count[p];
		struct iovec *iov = calloc(MAX(n, 1u), sizeof(*iov));

		if (iov == NULL)
			return -ENOMEM;
		r = n == 0 ? 0 : guest_mem_sg_to_iov(gm, cmd->sg + cmd->sg_first[p], n, iov);
		if (r < 0) {
			free(iov);
			return r;
		}
		free(b->iov[p]);
		b->iov[p] = iov;
		b->n_iov[p] = n;
		b->planes[p].length = cmd->planes[p].length;
	}
	if (q == &dec->out) {
		size_t len = MIN((size_t)cmd->planes[0].bytesused, (size_t)cmd->planes[0].length);
		size_t done = 0;
		uint8_t *bits = malloc(MAX(len, (size_t)1));

		if (bits == NULL)
			return -ENOMEM;
		for (unsigned i = 0; i < b->n_iov[0] && done < len; i++) {
			size_t n = MIN(b->iov[0][i].iov_len, len - done);
			memcpy(bits + done, b->iov[0][i].iov_base, n);
			done += n;
		}
		free(b->bits);
		b->bits = bits;
		b->bits_len = done;
		return 0;
	}
	/* CAPTURE: decode into a bounce buffer, copied out at frame_done. */
	{
		size_t total = 0;

		for (unsigned p = 0; p < dec->cap.fmt.num_planes; p++)
			total += dec->cap.fmt.plane_fmt[p].sizeimage;
		if (b->maps[0] == NULL || b->maps[0]->len < total || b->maps[0]->refs > 1) {
			struct mem_map *m;

			if (session_memory(dec) + total > DECODER_MAX_SESSION_MEMORY)
				return -ENOMEM;
			r = map_new_bounce(total, &m);
			if (r < 0)
				return r;
			buffer_drop_map(dec, b, 0);
			b->maps[0] = m;
		}
		/*
		 * The bounce holds the V4L2 planes back to back, each laid out as the format
		 * says; copy_out_shared_pages() walks it the same way.
		 */
		{
			struct codec_stream_info def;
			const struct codec_stream_info *info = current_info(dec, &def);
			struct cap_geometry g;
			size_t plane_off[VIDEO_MAX_PLANES], off = 0;

			capture_geometry(info, dec->cap_base, dec->cap.fmt.num_planes, &g);
			for (unsigned p = 0; p < g.v4l2_planes; p++) {
				plane_off[p] = off;
				off += g.sizeimage[p];
			}
			b->layout = g.layout;
			for (unsigned i = 0; i < b->layout.n; i++) {
				b->layout.offset[i] += plane_off[b->layout.map[i]];
				b->layout.map[i] = 0;
			}
			if (off > b->maps[0]->len)
				return -EINVAL;
		}
	}
	return 0;
}

static int
ioc_qbuf(struct decoder *dec, struct vmd_command *cmd)
{
	struct v4l2_buffer *vb = &cmd->payload.buf;
	struct dec_queue *q = queue_of(dec, vb->type);
	struct dec_buffer *b;
	int r;

	if (q == NULL || vb->index >= q->count || vb->memory != q->memory)
		return -EINVAL;
	b = q->bufs[vb->index];
	if (b->state != BUF_DEQUEUED || cmd->n_planes < b->n_planes)
		return -EINVAL;
	if (q == &dec->cap)
		fill_capture_fmt(dec, dec->cap.fmt.pixelformat, &dec->cap.fmt);
	if (q == &dec->cap && dec->cap.streaming && dec->src_change_wait) {
		/*
		 * A resolution change is under way and CAPTURE still streams the old
		 * buffers: one queued now can only carry the LAST buffer the client waits
		 * for before it reallocates, so it is checked against the format it was
		 * allocated for and its memory is not resolved.
		 */
		if (b->n_planes != dec->cap_active.num_planes)
			return -EINVAL;
		b->last_only = true;
		goto queue;
	}
	if (q == &dec->cap && b->n_planes != dec->cap.fmt.num_planes)
		return -EINVAL;
	b->last_only = false;

	switch ((enum virtio_media_memory)q->memory) {
	case VIRTIO_MEDIA_MMAP:
		break;
	case VIRTIO_MEDIA_SHARED_PAGES:
		for (unsigned p = 0; p < b->n_planes; p++) {
			if (q == &dec->cap && cmd->planes[p].length < q->fmt.plane_fmt[p].sizeimage)
				return -EINVAL;
		}
		r = resolve_shared_pages(dec, q, b, cmd);
		if (r < 0)
			return r;
		break;
	case VIRTIO_MEDIA_OBJECT:
		if (cmd->n_uuids < b->n_planes)
			return -EINVAL;
		for (unsigned p = 0; p < b->n_planes; p++) {
			size_t need = q == &dec->cap ? q->fmt.plane_fmt[p].sizeimage
						     : cmd->planes[p].bytesused;

			r = resolve_object(dec, q, b, p, cmd->uuids[p], need);
			if (r < 0)
				return r;
			b->planes[p].length = (uint32_t)MIN(b->maps[p]->len, (size_t)UINT32_MAX);
		}
		break;
	}

	if (q == &dec->out) {
		uint32_t used = cmd->planes[0].bytesused;

		if (used > b->planes[0].length || cmd->planes[0].data_offset > used)
			return -EINVAL;
		b->planes[0].bytesused = used;
		b->planes[0].data_offset = cmd->planes[0].data_offset;
		b->ts_ns = (uint64_t)vb->timestamp.tv_sec * 1000000000u +
			   (uint64_t)vb->timestamp.tv_usec * 1000u;
		b->vb.timestamp = vb->timestamp;
		b->vb.bytesused = 0;
	} else {
		for (unsigned p = 0; p < b->n_planes; p++) {
			if (b->planes[p].length < q->fmt.plane_fmt[p].sizeimage)
				return -EINVAL;
		}
		if (q->memory != VIRTIO_MEDIA_SHARED_PAGES) {
			r = capture_layout(dec, b);
			if (r < 0)
				return r;
		}
	}
queue:
	b->vb.flags = vb->flags & (V4L2_BUF_FLAG_TIMECODE | V4L2_BUF_FLAG_KEYFRAME);
	b->state = BUF_QUEUED;
	b->gen++;
	b->qseq = ++dec->next_qseq;
	if (q == &dec->out)
		fifo_push(dec, b);
	else
		try_emit_last(dec);
	pthread_cond_broadcast(&dec->cond);
	fill_buffer_reply(q, b, cmd);
	return 0;
}

static int
ioc_streamon(struct decoder *dec, uint32_t type)
{
	struct dec_queue *q = queue_of(dec, type);

	if (q == NULL)
		return -EINVAL;
	if (q->count == 0)
		return -EINVAL;
	if (q->streaming)
		return 0;
	q->streaming = true;
	if (q == &dec->cap) {
		/* The client has set CAPTURE up (again): decoding resumes. */
		fill_capture_fmt(dec, dec->cap.fmt.pixelformat, &dec->cap.fmt);
		dec->cap_active = dec->cap.fmt;
		dec->src_change_wait = false;
		dec->stopped = false;
		try_emit_last(dec);
	}
	pthread_cond_broadcast(&dec->cond);
	return 0;
}

static int
ioc_streamoff(struct decoder *dec, uint32_t type)
{
	struct dec_queue *q = queue_of(dec, type);

	if (q == NULL)
		return -EINVAL;
	streamoff_locked(dec, q);
	return 0;
}

static int
ioc_decoder_cmd(struct decoder *dec, struct v4l2_decoder_cmd *c, bool try)
{
	switch (c->cmd) {
	case V4L2_DEC_CMD_STOP:
		c->flags = 0;
		c->stop.pts = 0;
		if (try)
			return 0;
		if (dec->draining)
			return -EBUSY;
		if (dec->stopped)
			return 0;
		dec->draining = true;
		pthread_cond_broadcast(&dec->cond);
		return 0;
	case V4L2_DEC_CMD_START:
		c->flags = 0;
		c->start.speed = 0;
		c->start.format = 0;
		if (try)
			return 0;
		if (dec->draining)
			return -EBUSY;
		dec->stopped = false;
		dec->last_pending = false;
		pthread_cond_broadcast(&dec->cond);
		return 0;
	}
	return -EINVAL;
}

static int
ioc_expbuf(struct decoder *dec, struct vmd_command *cmd)
{
	struct v4l2_exportbuffer *e = &cmd->payload.expbuf;
	struct dec_queue *q = queue_of(dec, e->type);
	struct dec_buffer *b;

	if (q == NULL || e->index >= q->count || q->memory != VIRTIO_MEDIA_MMAP)
		return -EINVAL;
	if (e->flags & ~(uint32_t)(O_CLOEXEC | O_ACCMODE))
		return -EINVAL;
	b = q->bufs[e->index];
	if (e->plane >= b->n_planes || b->maps[e->plane] == NULL)
		return -EINVAL;
	if (q == &dec->cap && dec->protected)
		return -EACCES;
#if MEDIA_HAVE_REGISTRY
	if (dec->env.client == NULL)
		return -EOPNOTSUPP;
	if (!b->exported[e->plane]) {
		struct crossbuf_buffer_info info;
		const struct v4l2_pix_format_mplane *f = &q->fmt;
		int r;

		memset(&info, 0, sizeof(info));
		info.device_kind = CROSSBUF_DEVICE_MEDIA;
		info.resource_id = (uint32_t)b->id;
		info.flags = CROSSBUF_BUFFER_GUEST_MAPPABLE;
		if (q == &dec->cap && f->num_planes == 1 && dec->have_info) {
			/*
			 * NV12 or YUV420 in one buffer: the V4L2 and DRM fourccs of both are the
			 * same four characters, and the layout is the format's.
			 */
			struct cap_geometry g;

			capture_geometry(&dec->info, dec->cap_base, 1, &g);
			info.width = dec->info.width;
			info.height = g.height;
			info.fourcc = dec->cap_base;
			info.num_planes = g.layout.n;
			for (unsigned i = 0; i < g.layout.n; i++) {
				info.planes[i].offset = (uint32_t)g.layout.offset[i];
				info.planes[i].stride = g.layout.stride[i];
			}
		}
		r = crossbuf_client_export(dec->env.client, b->maps[e->plane]->fd, &info,
					   b->export_uuid[e->plane]);
		if (r < 0)
			return r;
		b->exported[e->plane] = true;
	}
	memcpy(cmd->expbuf_uuid, b->export_uuid[e->plane], 16);
	e->fd = 0;
	memset(e->reserved, 0, sizeof(e->reserved));
	return 0;
#else
	return -EOPNOTSUPP;
#endif
}

int
decoder_ioctl(struct decoder *dec, struct vmd_command *cmd, bool *ret_write_on_error)
{
	union vmd_payload *p = &cmd->payload;
	int r = -ENOTTY;

	*ret_write_on_error = false;
	pthread_mutex_lock(&dec->lock);
	if (dec->dead) {
		pthread_mutex_unlock(&dec->lock);
		return -EIO;
	}
	switch (cmd->code) {
	case _IOC_NR(VIDIOC_ENUM_FMT):
		r = ioc_enum_fmt(dec, &p->fmtdesc);
		break;
	case _IOC_NR(VIDIOC_G_FMT):
		r = ioc_g_fmt(dec, &p->fmt);
		break;
	case _IOC_NR(VIDIOC_S_FMT):
		r = ioc_try_s_fmt(dec, &p->fmt, true);
		break;
	case _IOC_NR(VIDIOC_TRY_FMT):
		r = ioc_try_s_fmt(dec, &p->fmt, false);
		break;
	case _IOC_NR(VIDIOC_ENUM_FRAMESIZES):
		r = ioc_enum_framesizes(dec, &p->frmsize);
		break;
	case _IOC_NR(VIDIOC_REQBUFS):
		r = ioc_reqbufs(dec, &p->reqbufs);
		break;
	case _IOC_NR(VIDIOC_CREATE_BUFS):
		r = ioc_create_bufs(dec, &p->create);
		break;
	case _IOC_NR(VIDIOC_QUERYBUF):
		r = ioc_querybuf(dec, cmd);
		break;
	case _IOC_NR(VIDIOC_QBUF):
		r = ioc_qbuf(dec, cmd);
		break;
	case _IOC_NR(VIDIOC_EXPBUF):
		r = ioc_expbuf(dec, cmd);
		break;
	case _IOC_NR(VIDIOC_STREAMON):
		r = ioc_streamon(dec, (uint32_t)p->i32);
		break;
	case _IOC_NR(VIDIOC_STREAMOFF):
		r = ioc_streamoff(dec, (uint32_t)p->i32);
		break;
	case _IOC_NR(VIDIOC_G_SELECTION):
		r = ioc_g_selection(dec, &p->sel);
		break;
	case _IOC_NR(VIDIOC_G_CTRL):
		r = ioc_g_s_ctrl(dec, &p->ctrl, true);
		break;
	case _IOC_NR(VIDIOC_S_CTRL):
		r = ioc_g_s_ctrl(dec, &p->ctrl, false);
		break;
	case _IOC_NR(VIDIOC_QUERYCTRL):
		r = ioc_queryctrl(dec, &p->queryctrl);
		break;
	case _IOC_NR(VIDIOC_QUERY_EXT_CTRL):
		r = ioc_query_ext_ctrl(dec, &p->query_ext_ctrl);
		break;
	case _IOC_NR(VIDIOC_QUERYMENU):
		r = -EINVAL;
		break;
	case _IOC_NR(VIDIOC_G_EXT_CTRLS):
		r = ioc_ext_ctrls(dec, cmd, EXT_CTRLS_GET);
		*ret_write_on_error = true;
		break;
	case _IOC_NR(VIDIOC_S_EXT_CTRLS):
		r = ioc_ext_ctrls(dec, cmd, EXT_CTRLS_SET);
		*ret_write_on_error = true;
		break;
	case _IOC_NR(VIDIOC_TRY_EXT_CTRLS):
		r = ioc_ext_ctrls(dec, cmd, EXT_CTRLS_TRY);
		*ret_write_on_error = true;
		break;
	case _IOC_NR(VIDIOC_SUBSCRIBE_EVENT):
		r = ioc_subscribe(dec, &p->evsub, true);
		break;
	case _IOC_NR(VIDIOC_UNSUBSCRIBE_EVENT):
		r = ioc_subscribe(dec, &p->evsub, false);
		break;
	case _IOC_NR(VIDIOC_DECODER_CMD):
		r = ioc_decoder_cmd(dec, &p->deccmd, false);
		break;
	case _IOC_NR(VIDIOC_TRY_DECODER_CMD):
		r = ioc_decoder_cmd(dec, &p->deccmd, true);
		break;
	default:
		/* PREPARE_BUF, S_SELECTION, ENUM_FRAMEINTERVALS: not a decoder's. */
		r = -ENOTTY;
		break;
	}
	pthread_mutex_unlock(&dec->lock);
	return r;
}

int
decoder_mmap_lookup(struct decoder *dec, uint32_t mem_offset, int *ret_fd, uint64_t *ret_len)
{
	uint32_t page = mem_offset >> 12, plane, index, qi;
	struct dec_queue *q;
	struct dec_buffer *b;
	int fd, r = 0;

	if (mem_offset & 0xfff)
		return -EINVAL;
	plane = page % VIDEO_MAX_PLANES;
	index = page / VIDEO_MAX_PLANES % DECODER_MAX_BUFFERS;
	qi = page / VIDEO_MAX_PLANES / DECODER_MAX_BUFFERS;
	if (qi > 1)
		return -EINVAL;
	pthread_mutex_lock(&dec->lock);
	q = qi ? &dec->cap : &dec->out;
	if (q->memory != VIRTIO_MEDIA_MMAP || index >= q->count) {
		r = -EINVAL;
		goto out;
	}
	if (q == &dec->cap && dec->protected) {
		r = -EACCES;
		goto out;
	}
	b = q->bufs[index];
	if (plane >= b->n_planes || b->maps[plane] == NULL) {
		r = -EINVAL;
		goto out;
	}
	fd = fcntl(b->maps[plane]->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		r = negative_errno();
		goto out;
	}
	*ret_fd = fd;
	*ret_len = b->planes[plane].length;
out:
	pthread_mutex_unlock(&dec->lock);
	return r;
}

void
decoder_object_removed(struct decoder *dec, const uint8_t uuid[16])
{
	struct dec_queue *qs[2] = {&dec->out, &dec->cap};

	pthread_mutex_lock(&dec->lock);
	for (unsigned k = 0; k < 2; k++) {
		struct dec_queue *q = qs[k];

		for (unsigned i = 0; i < q->count; i++) {
			struct dec_buffer *b = q->bufs[i];
			bool hit = false;

			for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
				struct mem_map *m = b->maps[p];

				if (m && m->has_uuid && memcmp(m->uuid, uuid, 16) == 0) {
					m->revoked = true;
					hit = true;
				}
			}
			if (!hit)
				continue;
			/* Not yet handed to the codec: fail it now. */
			if (b->state == BUF_QUEUED) {
				if (q == &dec->out)
					fifo_remove(dec, b);
				send_dqbuf(dec, q, b, V4L2_BUF_FLAG_ERROR, true);
			}
			/* The cache is dropped: the next QBUF resolves the UUID again. */
			for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
				struct mem_map *m = b->maps[p];

				if (m && m->revoked) {
					b->maps[p] = NULL;
					map_unref(m);
				}
			}
		}
	}
	pthread_mutex_unlock(&dec->lock);
}
