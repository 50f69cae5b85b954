/* SPDX-License-Identifier: MIT */
/*
 * The decoder backend on libavcodec (codec.h).
 *
 * Direct rendering: for decoders with AV_CODEC_CAP_DR1 a custom get_buffer2 hands libavcodec
 * the planes of a picture from get_picture(). The AVBuffer wrapping the picture is what
 * libavcodec keeps as a reference; its free callback is put_picture(), so a picture goes back
 * exactly when libavcodec stops reading it.
 *
 * Layout: libavcodec's decoders assume every frame of a stream has the same linesizes (motion
 * compensation reads reference frames with the current frame's stride), so each geometry has
 * one layout (struct geometry), reported in stream_info, and a picture is decoded into only if
 * its strides are exactly those. Any other picture, and any frame decoded while no picture
 * could be had, is decoded into codec-owned memory of that same layout and copied once, when
 * the frame is output. libavcodec's software decoders write planar 4:2:0, so with NV12
 * pictures the luma is decoded in place and the chroma is interleaved at output (counted as a
 * copy of the chroma bytes).
 *
 * Framing: H.264 and HEVC go through an AVCodecParser, so an OUTPUT buffer may hold any part
 * of the Annex B stream; VP8 and VP9 buffers are one frame (VP9: one superframe) each.
 *
 * Resolution changes: the geometry is announced (stream_info) from get_buffer2 when no frame
 * of the previous geometry is still waiting for output, which is always the case for decoders
 * without delay (VP8, VP9) and for H.264/HEVC because the parser sees the new size first and
 * the decoder is drained before the first frame of the new size goes in. Otherwise (a change
 * the parser missed), new-size frames go to codec-owned memory and the geometry is announced
 * when the first of them is output, after every older frame.
 *
 * Threading: libavcodec runs single-threaded (thread_count 1), so get_buffer2 and the free
 * callbacks run on the caller's thread, inside codec_decode/drain/flush/free.
 */
#include "codec.h"

#include "macro.h"

#include <assert.h>
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <linux/videodev2.h>
#include <stdlib.h>
#include <string.h>

/* Inputs whose timestamps are remembered while their frames are in the decoder. */
#define TS_RING        256
/* Largest OUTPUT buffer accepted: larger ones are reported as a lost frame. */
#define MAX_INPUT_SIZE (64u << 20)
/* Largest frame side accepted from a bitstream. */
#define MAX_DIM        16384

struct geometry {
	uint32_t width, height; /* size of the frames libavcodec allocates */
	struct codec_rect visible;
	uint32_t num_planes;
	uint32_t strides[CODEC_MAX_PLANES]; /* the pictures' layout, for the capture format */
	uint32_t plane_sizes[CODEC_MAX_PLANES];
	/* Codec-owned planar 4:2:0 with the same strides libavcodec sees in direct pictures. */
	uint32_t mem_strides[CODEC_MAX_PLANES];
	uint32_t mem_offsets[CODEC_MAX_PLANES];
	uint32_t mem_size;
};

/* One buffer handed to libavcodec by get_buffer2; lives until libavcodec releases it. */
struct pic {
	struct codec *codec;
	struct pic *prev, *next;
	struct geometry geom;
	int64_t seq; /* the input being decoded when the frame was started */
	int handle;  /* picture from get_picture, -1 when none is held */
	struct codec_picture picture;
	bool direct;      /* libavcodec writes into picture (luma at least) */
	bool in_access;   /* begin_access called, end_access not yet */
	bool pending;     /* may still be output: counted in codec->undelivered */
	AVBufferRef *mem; /* codec-owned memory when not direct */
};

struct codec {
	const struct codec_callbacks *cb;
	void *userdata;
	uint32_t coded_format, capture_format;
	const AVCodec *dec;
	AVCodecContext *ctx; /* NULL only after a failed reset (broken) */
	AVCodecParserContext *parser;
	AVPacket *pkt;
	AVFrame *frame;
	bool delay; /* the decoder may output a frame after later input (AV_CODEC_CAP_DELAY) */

	bool have_geom;
	struct geometry geom; /* announced in the last stream_info */
	struct pic *pics;     /* live pics, most recent first */
	unsigned undelivered; /* pics that may still be output */

	/* What the parser last saw, to drain before a resolution change. */
	int parsed_width, parsed_height, parsed_format;
	/* Where each input starts in the bytes given to the parser since it was made. */
	int64_t parser_bytes, parser_first_seq;
	int64_t input_start[TS_RING];

	int64_t seq;     /* id of the last input, its pts inside libavcodec */
	int64_t cur_seq; /* the input libavcodec is decoding */
	uint64_t timestamps[TS_RING];

	uint8_t *inbuf;
	size_t inbuf_size;
	AVBufferPool *mem_pool, *chroma_pool;
	size_t mem_pool_size, chroma_pool_size;

	bool broken;
	struct codec_stats stats;
};

static const char *
decoder_name(uint32_t coded_format)
{
	switch (coded_format) {
	case V4L2_PIX_FMT_H264:
		return "h264";
	case V4L2_PIX_FMT_HEVC:
		return "hevc";
	case V4L2_PIX_FMT_VP8:
		return "vp8";
	case V4L2_PIX_FMT_VP9:
		return "vp9";
	}
	/*
	 * AV1: FFmpeg 5.1's native av1 decoder only drives hardware, and libdav1d decodes into
	 * its own pool, never into get_buffer2's buffers: no direct rendering, so not offered.
	 */
	return NULL;
}

static bool
capture_format_valid(uint32_t fmt)
{
	return fmt == V4L2_PIX_FMT_YUV420 || fmt == V4L2_PIX_FMT_NV12;
}

bool
codec_supports(uint32_t coded_format)
{
	const char *name = decoder_name(coded_format);

	return name && avcodec_find_decoder_by_name(name);
}

unsigned
codec_capture_formats(uint32_t coded_format, uint32_t *ret_formats, unsigned max)
{
	/* YUV420 first: decoded fully in place; NV12 costs a chroma interleave. */
	static const uint32_t formats[] = {V4L2_PIX_FMT_YUV420, V4L2_PIX_FMT_NV12};
	unsigned n = 0;

	if (!codec_supports(coded_format) || !ret_formats)
		return 0;
	for (; n < max && n < ARRAY_SIZE(formats); n++)
		ret_formats[n] = formats[n];
	return n;
}

static void
geometry_compute(const struct codec *codec, AVCodecContext *ctx, int width, int height,
		 struct geometry *g)
{
	int w = width, h = height, align[AV_NUM_DATA_POINTERS] = {0};
	uint32_t salign = 64, ystride, cstride, yrows, crows;

	avcodec_align_dimensions2(ctx, &w, &h, align);
	for (unsigned i = 0; i < 3; i++)
		salign = MAX(salign, (uint32_t)align[i]);
	/* Luma stride a multiple of twice the alignment, so the chroma stride (half) is too. */
	ystride = ALIGN_UP((uint32_t)w, 2 * salign);
	cstride = ystride / 2;
	/* One spare row per plane for the decoders' SIMD overreads past the padded size. */
	yrows = (uint32_t)h + 1;
	crows = ((uint32_t)h + 1) / 2 + 1;

	memset(g, 0, sizeof(*g));
	g->width = width;
	g->height = height;
	g->visible.width = MIN(ctx->width > 0 ? (uint32_t)ctx->width : g->width, g->width);
	g->visible.height = MIN(ctx->height > 0 ? (uint32_t)ctx->height : g->height, g->height);
	if (codec->capture_format == V4L2_PIX_FMT_NV12) {
		g->num_planes = 2;
		g->strides[0] = g->strides[1] = ystride;
		g->plane_sizes[0] = ystride * yrows;
		g->plane_sizes[1] = ystride * crows;
	} else {
		g->num_planes = 3;
		g->strides[0] = ystride;
		g->strides[1] = g->strides[2] = cstride;
		g->plane_sizes[0] = ystride * yrows;
		g->plane_sizes[1] = g->plane_sizes[2] = cstride * crows;
	}
	g->mem_strides[0] = ystride;
	g->mem_strides[1] = g->mem_strides[2] = cstride;
	g->mem_offsets[0] = 0;
	g->mem_offsets[1] = ystride * yrows;
	g->mem_offsets[2] = g->mem_offsets[1] + cstride * crows;
	g->mem_size = g->mem_offsets[2] + cstride * crows;
}

static bool
geometry_equal(const struct geometry *a, const struct geometry *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static uint32_t
min_buffers(const struct codec *codec)
{
	const AVCodecContext *ctx = codec->ctx;
	uint32_t reorder = ctx->has_b_frames > 0 ? (uint32_t)ctx->has_b_frames : 0;

	switch (codec->coded_format) {
	case V4L2_PIX_FMT_H264:
		/* DPB (refs + reordering), the frame being decoded, the one kept to conceal. */
		return (uint32_t)MAX(ctx->refs, 1) + reorder + 2;
	case V4L2_PIX_FMT_HEVC:
		/* libavcodec does not export the SPS's DPB size: 6 covers the usual levels. */
		return 6 + reorder + 2;
	case V4L2_PIX_FMT_VP8:
		/* last, golden, altref, the frame being decoded, the previous (segment maps). */
		return 5;
	case V4L2_PIX_FMT_VP9:
		/* Eight reference slots, the frame being decoded, the previous one (MV pairs). */
		return 10;
	}
	return 16;
}

static void
announce(struct codec *codec, const struct geometry *g)
{
	struct codec_stream_info info = {0};

	codec->geom = *g;
	codec->have_geom = true;
	info.width = g->width;
	info.height = g->height;
	info.visible = g->visible;
	info.min_buffers = min_buffers(codec);
	info.num_planes = g->num_planes;
	for (unsigned i = 0; i < g->num_planes; i++) {
		info.strides[i] = g->strides[i];
		info.plane_sizes[i] = g->plane_sizes[i];
	}
	codec->cb->stream_info(codec->userdata, &info);
}

static bool
picture_fits(const struct codec *codec, const struct codec_picture *p, const struct geometry *g)
{
	if (p->pixelformat != codec->capture_format || p->num_planes != g->num_planes)
		return false;
	for (unsigned i = 0; i < g->num_planes; i++) {
		/* libavcodec's SIMD stores are aligned: the plane starts must be too. */
		if (!p->data[i] || (uintptr_t)p->data[i] % 64 || p->strides[i] != g->strides[i] ||
		    p->sizes[i] < g->plane_sizes[i])
			return false;
	}
	return true;
}

static void
access_begin(struct codec_picture *p)
{
	if (p->begin_access)
		p->begin_access(p->access_data);
}

static void
access_end(struct codec_picture *p)
{
	if (p->end_access)
		p->end_access(p->access_data);
}

static void
pic_settle(struct codec *codec, struct pic *pic)
{
	if (pic->pending) {
		pic->pending = false;
		assert(codec->undelivered > 0);
		codec->undelivered--;
	}
}

/* Free callback of the AVBuffer that wraps a pic: libavcodec holds no reference any more. */
static void
pic_release(void *opaque, uint8_t *data)
{
	struct pic *pic = opaque;
	struct codec *codec = pic->codec;

	if (pic->prev)
		pic->prev->next = pic->next;
	else if (codec->pics == pic)
		codec->pics = pic->next;
	if (pic->next)
		pic->next->prev = pic->prev;
	pic_settle(codec, pic);
	if (pic->in_access)
		access_end(&pic->picture);
	if (pic->handle >= 0)
		codec->cb->put_picture(codec->userdata, pic->handle);
	av_buffer_unref(&pic->mem);
	free(pic);
}

static AVBufferRef *
pool_get(AVBufferPool **pool, size_t *pool_size, size_t size)
{
	if (!*pool || *pool_size != size) {
		/* Buffers still out keep the old pool alive until they come back. */
		av_buffer_pool_uninit(pool);
		/* Zeroed like libavcodec's own pools: some decoders read padding they never wrote.
		 */
		*pool = av_buffer_pool_init(size, av_buffer_allocz);
		*pool_size = size;
		if (!*pool)
			return NULL;
	}
	return av_buffer_pool_get(*pool);
}

static enum AVPixelFormat
get_format(AVCodecContext *ctx, const enum AVPixelFormat *fmts)
{
	/* Only 8-bit 4:2:0 maps onto NV12/YUV420; anything else fails the frame. */
	for (; *fmts != AV_PIX_FMT_NONE; fmts++) {
		if (*fmts == AV_PIX_FMT_YUV420P || *fmts == AV_PIX_FMT_YUVJ420P)
			return *fmts;
	}
	return AV_PIX_FMT_NONE;
}

static int
get_buffer2(AVCodecContext *ctx, AVFrame *frame, int flags)
{
	struct codec *codec = ctx->opaque;
	struct geometry g;
	struct pic *pic;
	uint8_t *base;
	size_t base_size;

	if (frame->format != AV_PIX_FMT_YUV420P && frame->format != AV_PIX_FMT_YUVJ420P)
		return AVERROR(EINVAL);
	if (frame->width <= 0 || frame->height <= 0 || frame->width > MAX_DIM ||
	    frame->height > MAX_DIM)
		return AVERROR(EINVAL);

	geometry_compute(codec, ctx, frame->width, frame->height, &g);
	if ((!codec->have_geom || !geometry_equal(&g, &codec->geom)) && codec->undelivered == 0)
		announce(codec, &g);

	pic = calloc(1, sizeof(*pic));
	if (!pic)
		return AVERROR(ENOMEM);
	pic->codec = codec;
	pic->geom = g;
	pic->handle = -1;
	pic->seq = codec->cur_seq;

	if (geometry_equal(&g, &codec->geom)) {
		struct codec_picture p = {0};
		int handle = codec->cb->get_picture(codec->userdata, &p);

		/* -EAGAIN, -ECANCELED: decode anyway, into our memory; output asks again. */
		if (handle >= 0) {
			pic->handle = handle;
			pic->picture = p;
			pic->direct = picture_fits(codec, &p, &g);
		}
	}

	memset(frame->data, 0, sizeof(frame->data));
	memset(frame->linesize, 0, sizeof(frame->linesize));
	if (pic->direct) {
		struct codec_picture *p = &pic->picture;

		frame->data[0] = p->data[0];
		frame->linesize[0] = (int)p->strides[0];
		if (codec->capture_format == V4L2_PIX_FMT_NV12) {
			/* Planar chroma in our memory, interleaved into the picture at output. */
			AVBufferRef *chroma =
				pool_get(&codec->chroma_pool, &codec->chroma_pool_size,
					 g.mem_size - g.mem_offsets[1]);

			if (!chroma) {
				pic_release(pic, NULL);
				return AVERROR(ENOMEM);
			}
			frame->buf[1] = chroma;
			frame->data[1] = chroma->data;
			frame->data[2] = chroma->data + g.mem_offsets[2] - g.mem_offsets[1];
			frame->linesize[1] = frame->linesize[2] = (int)g.mem_strides[1];
		} else {
			for (unsigned i = 1; i < 3; i++) {
				frame->data[i] = p->data[i];
				frame->linesize[i] = (int)p->strides[i];
			}
		}
		base = p->data[0];
		base_size = p->sizes[0];
		pic->in_access = true;
		access_begin(p);
	} else {
		pic->mem = pool_get(&codec->mem_pool, &codec->mem_pool_size, g.mem_size);
		if (!pic->mem) {
			pic_release(pic, NULL);
			return AVERROR(ENOMEM);
		}
		for (unsigned i = 0; i < 3; i++) {
			frame->data[i] = pic->mem->data + g.mem_offsets[i];
			frame->linesize[i] = (int)g.mem_strides[i];
		}
		base = pic->mem->data;
		base_size = g.mem_size;
	}
	frame->extended_data = frame->data;

	frame->buf[0] = av_buffer_create(base, base_size, pic_release, pic, 0);
	if (!frame->buf[0]) {
		av_buffer_unref(&frame->buf[1]);
		pic_release(pic, NULL);
		return AVERROR(ENOMEM);
	}
	pic->next = codec->pics;
	if (codec->pics)
		codec->pics->prev = pic;
	codec->pics = pic;
	pic->pending = true;
	codec->undelivered++;
	return 0;
}

/* Frames still inside a decoder without delay will never be output. */
static void
settle_all(struct codec *codec)
{
	for (struct pic *pic = codec->pics; pic; pic = pic->next)
		pic_settle(codec, pic);
}

static uint64_t
lookup_timestamp(const struct codec *codec, int64_t pts)
{
	if (pts == AV_NOPTS_VALUE || pts <= 0 || pts > codec->seq || codec->seq - pts >= TS_RING)
		pts = codec->seq;
	return codec->timestamps[pts % TS_RING];
}

static void
report_lost(struct codec *codec, int64_t seq)
{
	codec->stats.frames_corrupt++;
	codec->cb->frame_done(codec->userdata, -1, lookup_timestamp(codec, seq), 0, true);
}

static void
copy_plane(uint8_t *dst, size_t dst_stride, const uint8_t *src, size_t src_stride, size_t width,
	   size_t rows)
{
	for (size_t y = 0; y < rows; y++)
		memcpy(dst + y * dst_stride, src + y * src_stride, width);
}

typedef uint8_t u8x16 __attribute__((vector_size(16)));

/* The NV12 cost: 16 pairs a step (two byte shuffles), the rest byte by byte. */
static void
interleave_plane(uint8_t *dst, size_t dst_stride, const uint8_t *u, const uint8_t *v,
		 size_t src_stride, size_t width, size_t rows)
{
	for (size_t y = 0; y < rows; y++) {
		uint8_t *d = dst + y * dst_stride;
		const uint8_t *su = u + y * src_stride, *sv = v + y * src_stride;
		size_t x = 0;

		for (; x + 16 <= width; x += 16) {
			u8x16 a, b, lo, hi;

			memcpy(&a, su + x, 16);
			memcpy(&b, sv + x, 16);
#ifdef __clang__
			lo = __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21,
						     6, 22, 7, 23);
			hi = __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13,
						     29, 14, 30, 15, 31);
#else
			lo = __builtin_shuffle(
				a, b,
				(u8x16){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23});
			hi = __builtin_shuffle(a, b,
					       (u8x16){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29,
						       14, 30, 15, 31});
#endif
			memcpy(d + 2 * x, &lo, 16);
			memcpy(d + 2 * x + 16, &hi, 16);
		}
		for (; x < width; x++) {
			d[2 * x] = su[x];
			d[2 * x + 1] = sv[x];
		}
	}
}

static bool
plane_holds(const struct codec_picture *p, unsigned i, size_t width, size_t rows)
{
	return p->data[i] && p->strides[i] >= width &&
	       (rows == 0 || p->sizes[i] >= (rows - 1) * (size_t)p->strides[i] + width);
}

/*
 * Copies the frame up to the bottom-right corner of its visible rectangle into p, in p's
 * format and layout. Returns the bytes copied, or -EINVAL if p cannot hold it.
 */
static int64_t
copy_frame(const struct codec *codec, const AVFrame *f, const struct codec_rect *vis,
	   const struct codec_picture *p)
{
	size_t w = (size_t)vis->left + vis->width, h = (size_t)vis->top + vis->height;
	size_t cw = (w + 1) / 2, ch = (h + 1) / 2;

	if (p->pixelformat != codec->capture_format || !plane_holds(p, 0, w, h))
		return -EINVAL;
	if (p->pixelformat == V4L2_PIX_FMT_NV12) {
		if (p->num_planes != 2 || !plane_holds(p, 1, 2 * cw, ch))
			return -EINVAL;
		copy_plane(p->data[0], p->strides[0], f->data[0], f->linesize[0], w, h);
		interleave_plane(p->data[1], p->strides[1], f->data[1], f->data[2], f->linesize[1],
				 cw, ch);
	} else {
		if (p->num_planes != 3 || !plane_holds(p, 1, cw, ch) || !plane_holds(p, 2, cw, ch))
			return -EINVAL;
		copy_plane(p->data[0], p->strides[0], f->data[0], f->linesize[0], w, h);
		copy_plane(p->data[1], p->strides[1], f->data[1], f->linesize[1], cw, ch);
		copy_plane(p->data[2], p->strides[2], f->data[2], f->linesize[2], cw, ch);
	}
	return (int64_t)(w * h + 2 * cw * ch);
}

static uint32_t
bytes_used(const struct codec_picture *p, const struct geometry *g)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < p->num_planes && i < CODEC_MAX_PLANES; i++) {
		uint64_t rows = i == 0 ? g->height : (g->height + 1) / 2;

		total += MIN((uint64_t)p->strides[i] * rows, (uint64_t)p->sizes[i]);
	}
	return (uint32_t)MIN(total, (uint64_t)UINT32_MAX);
}

static void
output_frame(struct codec *codec, AVFrame *f)
{
	struct pic *pic = NULL;
	struct geometry g;
	struct codec_picture p;
	int64_t pts = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
	uint64_t ts = lookup_timestamp(codec, pts);
	bool error = f->decode_error_flags || (f->flags & AV_FRAME_FLAG_CORRUPT);
	int handle;
	int64_t copied;

	if (codec->ctx->get_buffer2 == get_buffer2 && f->buf[0])
		pic = av_buffer_get_opaque(f->buf[0]);
	if (pic) {
		/*
		 * Single-threaded, a frame starts while its input is decoded: more reliable than
		 * the pts libavcodec carries (lost on the first frame after a drain).
		 */
		ts = lookup_timestamp(codec, pic->seq);
		g = pic->geom;
		pic_settle(codec, pic);
	} else {
		/* A decoder without direct rendering: its own buffer, cropping in the frame. */
		if (f->format != AV_PIX_FMT_YUV420P && f->format != AV_PIX_FMT_YUVJ420P) {
			report_lost(codec, pts);
			return;
		}
		geometry_compute(codec, codec->ctx, f->width, f->height, &g);
		g.visible.left = (uint32_t)MIN(f->crop_left, (size_t)g.width);
		g.visible.top = (uint32_t)MIN(f->crop_top, (size_t)g.height);
		g.visible.width = g.width - g.visible.left -
				  (uint32_t)MIN(f->crop_right, (size_t)(g.width - g.visible.left));
		g.visible.height =
			g.height - g.visible.top -
			(uint32_t)MIN(f->crop_bottom, (size_t)(g.height - g.visible.top));
	}

	codec->stats.frames_decoded++;
	if (error)
		codec->stats.frames_corrupt++;

	if (pic && pic->direct) {
		if (codec->capture_format == V4L2_PIX_FMT_NV12) {
			size_t cw = ((size_t)g.visible.left + g.visible.width + 1) / 2;
			size_t ch = ((size_t)g.visible.top + g.visible.height + 1) / 2;

			interleave_plane(pic->picture.data[1], pic->picture.strides[1], f->data[1],
					 f->data[2], f->linesize[1], cw, ch);
			codec->stats.frames_copied++;
			codec->stats.bytes_copied += 2 * cw * ch;
		}
		if (pic->in_access) {
			pic->in_access = false;
			access_end(&pic->picture);
		}
		codec->cb->frame_done(codec->userdata, pic->handle, ts,
				      bytes_used(&pic->picture, &g), error);
		return;
	}

	/* Decoded into our memory: one copy into a picture of the announced geometry. */
	if (!codec->have_geom || !geometry_equal(&g, &codec->geom))
		announce(codec, &g);
	if (pic && pic->handle >= 0) {
		handle = pic->handle;
		p = pic->picture;
		pic->handle = -1;
	} else {
		memset(&p, 0, sizeof(p));
		handle = codec->cb->get_picture(codec->userdata, &p);
		if (handle < 0) {
			/* -ECANCELED: the stream is stopping, nobody wants the frame. */
			if (handle != -ECANCELED) {
				if (!error)
					codec->stats.frames_corrupt++;
				codec->cb->frame_done(codec->userdata, -1, ts, 0, true);
			}
			return;
		}
	}
	access_begin(&p);
	copied = copy_frame(codec, f, &g.visible, &p);
	access_end(&p);
	if (copied >= 0) {
		codec->stats.frames_copied++;
		codec->stats.bytes_copied += (uint64_t)copied;
	} else if (!error) {
		codec->stats.frames_corrupt++;
	}
	codec->cb->frame_done(codec->userdata, handle, ts, copied >= 0 ? bytes_used(&p, &g) : 0,
			      error || copied < 0);
	codec->cb->put_picture(codec->userdata, handle);
}

/* Outputs every frame the decoder has ready. 1 at end of stream (draining), 0, -errno. */
static int
receive_frames(struct codec *codec)
{
	for (;;) {
		int ret = avcodec_receive_frame(codec->ctx, codec->frame);

		if (ret == AVERROR(EAGAIN))
			return 0;
		if (ret == AVERROR_EOF)
			return 1;
		if (ret == AVERROR(ENOMEM))
			return -ENOMEM;
		if (ret < 0) {
			/* A frame failed: its packet is gone, later frames may still come. */
			report_lost(codec, codec->seq);
			return 0;
		}
		output_frame(codec, codec->frame);
		av_frame_unref(codec->frame);
	}
}

static int
send_packet(struct codec *codec, uint8_t *data, int size, int64_t pts)
{
	int ret;

	codec->cur_seq = pts;
	codec->pkt->data = data;
	codec->pkt->size = size;
	codec->pkt->pts = pts;
	codec->pkt->dts = AV_NOPTS_VALUE;
	/* Not reference-counted: libavcodec copies it (with padding). */
	ret = avcodec_send_packet(codec->ctx, codec->pkt);
	if (ret == AVERROR(EAGAIN)) {
		ret = receive_frames(codec);
		if (ret >= 0)
			ret = avcodec_send_packet(codec->ctx, codec->pkt);
	}
	codec->pkt->data = NULL;
	codec->pkt->size = 0;
	if (ret == AVERROR(ENOMEM) || ret == -ENOMEM)
		return -ENOMEM;
	if (ret < 0 && ret != AVERROR_EOF)
		report_lost(codec, pts);
	ret = receive_frames(codec);
	if (ret < 0)
		return ret;
	if (!codec->delay)
		settle_all(codec);
	return 0;
}

static int
open_decoder(struct codec *codec)
{
	const AVCodec *dec = codec->dec;
	AVCodecContext *ctx = avcodec_alloc_context3(dec);

	if (!ctx)
		return -ENOMEM;
	ctx->opaque = codec;
	ctx->get_format = get_format;
	if (dec->capabilities & AV_CODEC_CAP_DR1)
		ctx->get_buffer2 = get_buffer2;
	/* Callbacks on the caller's thread only (see codec.h): no frame threads. */
	ctx->thread_count = 1;
	ctx->thread_type = FF_THREAD_SLICE;
	/* Libraries do not print: libavcodec's messages for this stream only at debug level. */
	ctx->log_level_offset = AV_LOG_DEBUG;
	/* Cropping is reported as the visible rectangle, the planes stay where they are. */
	ctx->apply_cropping = 0;
	/* Corrupt frames are output and flagged, not hidden. */
	ctx->flags |= AV_CODEC_FLAG_OUTPUT_CORRUPT;
	if (avcodec_open2(ctx, dec, NULL) < 0) {
		avcodec_free_context(&ctx);
		return -ENOMEM;
	}
	codec->ctx = ctx;
	return 0;
}

/*
 * Forgets every frame and reference. Some decoders keep references across
 * avcodec_flush_buffers (vp9's next_refs): then the context is made anew, which for VP8/VP9
 * loses nothing (key frames carry everything; H.264/HEVC release all on flush and keep their
 * parameter sets).
 */
static int
reset_decoder(struct codec *codec)
{
	avcodec_flush_buffers(codec->ctx);
	settle_all(codec);
	if (!codec->pics)
		return 0;
	avcodec_free_context(&codec->ctx);
	assert(!codec->pics);
	return open_decoder(codec);
}

/* Outputs every frame still in the decoder and resets it for a new stream. */
static int
drain_decoder(struct codec *codec)
{
	int ret = avcodec_send_packet(codec->ctx, NULL);

	if (ret == AVERROR(ENOMEM))
		return -ENOMEM;
	/* Bounded: a decoder that never reaches EOF is broken, not looping forever. */
	for (unsigned i = 0; ret >= 0 && i < 1024; i++) {
		ret = receive_frames(codec);
		if (ret != 0)
			break;
	}
	if (ret == -ENOMEM)
		return ret;
	return reset_decoder(codec);
}

static void
parser_reset(struct codec *codec)
{
	av_parser_close(codec->parser);
	codec->parser = av_parser_init(codec->dec->id);
	codec->parser_bytes = 0;
	codec->parser_first_seq = codec->seq + 1;
}

/* The newest input (since the parser was made) starting at or before byte offset off. */
static int64_t
input_at(const struct codec *codec, int64_t off)
{
	int64_t s = codec->seq;

	for (; s > codec->parser_first_seq && codec->seq - s < TS_RING - 1; s--) {
		if (codec->input_start[s % TS_RING] <= off)
			break;
	}
	return s;
}

static int
submit_parsed(struct codec *codec, uint8_t *data, int size)
{
	AVCodecParserContext *pc = codec->parser;
	int64_t pts;

	if (pc->width > 0 && pc->height > 0) {
		bool changed = codec->parsed_width > 0 && (pc->width != codec->parsed_width ||
							   pc->height != codec->parsed_height ||
							   pc->format != codec->parsed_format);

		codec->parsed_width = pc->width;
		codec->parsed_height = pc->height;
		codec->parsed_format = pc->format;
		if (changed) {
			/* Every frame of the old size goes out before the new size is announced. */
			int ret = drain_decoder(codec);

			if (ret < 0)
				return ret;
		}
	}
	/*
	 * A frame belongs to the input holding its start. The parser's own pts only goes to
	 * the first frame starting in an input and is lost when a start code straddles two
	 * inputs, so the input is found from the frame's byte offset instead (past its start
	 * code, which may begin in the previous input).
	 */
	pts = input_at(codec, pc->frame_offset + 4);
	return send_packet(codec, data, size, pts);
}

static int
fail(struct codec *codec, int ret)
{
	if (ret == -ENOMEM)
		return ret;
	codec->broken = true;
	return -EIO;
}

int
codec_decode(struct codec *codec, const void *data, size_t len, uint64_t timestamp)
{
	int ret = 0;

	if (!codec || (!data && len))
		return -EINVAL;
	if (codec->broken)
		return -EIO;

	codec->seq++;
	codec->timestamps[codec->seq % TS_RING] = timestamp;
	codec->input_start[codec->seq % TS_RING] = codec->parser_bytes;
	if (len > MAX_INPUT_SIZE) {
		report_lost(codec, codec->seq);
		return 0;
	}
	if (len == 0)
		return 0;

	/* Our own padded copy: the guest may change its buffer while we parse. */
	if (codec->inbuf_size < len + AV_INPUT_BUFFER_PADDING_SIZE) {
		size_t size = len + AV_INPUT_BUFFER_PADDING_SIZE;
		uint8_t *buf = realloc(codec->inbuf, size);

		if (!buf)
			return -ENOMEM;
		codec->inbuf = buf;
		codec->inbuf_size = size;
	}
	memcpy(codec->inbuf, data, len);
	memset(codec->inbuf + len, 0, AV_INPUT_BUFFER_PADDING_SIZE);

	if (codec->parser) {
		uint8_t *in = codec->inbuf;
		int left = (int)len;

		codec->parser_bytes += (int64_t)len;

		while (left > 0) {
			uint8_t *out = NULL;
			int out_size = 0;
			int used = av_parser_parse2(codec->parser, codec->ctx, &out, &out_size, in,
						    left, codec->seq, AV_NOPTS_VALUE, 0);

			if (used < 0 || (used == 0 && out_size == 0))
				break;
			in += used;
			left -= used;
			if (out_size > 0) {
				ret = submit_parsed(codec, out, out_size);
				if (ret < 0)
					return fail(codec, ret);
			}
		}
	} else {
		ret = send_packet(codec, codec->inbuf, (int)len, codec->seq);
		if (ret < 0)
			return fail(codec, ret);
	}
	return 0;
}

int
codec_drain(struct codec *codec)
{
	int ret;

	if (!codec)
		return -EINVAL;
	if (codec->broken)
		return -EIO;
	if (codec->parser) {
		uint8_t *out = NULL;
		int out_size = 0;

		av_parser_parse2(codec->parser, codec->ctx, &out, &out_size, NULL, 0,
				 AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
		if (out_size > 0) {
			ret = submit_parsed(codec, out, out_size);
			if (ret < 0)
				return fail(codec, ret);
		}
		parser_reset(codec);
		if (!codec->parser) {
			codec->broken = true;
			return -ENOMEM;
		}
	}
	ret = drain_decoder(codec);
	if (ret < 0)
		return fail(codec, ret);
	return 0;
}

void
codec_flush(struct codec *codec)
{
	if (!codec || !codec->ctx)
		return;
	if (codec->parser) {
		parser_reset(codec);
		/* Out of memory for a new parser: codec_decode reports -EIO from now on. */
		if (!codec->parser)
			codec->broken = true;
	}
	/* Drops every frame and reference: each picture's free callback puts it back. */
	if (reset_decoder(codec) < 0)
		codec->broken = true;
}

void
codec_get_stats(const struct codec *codec, struct codec_stats *ret_stats)
{
	if (!codec || !ret_stats)
		return;
	*ret_stats = codec->stats;
}

void
codec_free(struct codec *codec)
{
	if (!codec)
		return;
	/* Releases every frame: pictures still held are put back from here. */
	avcodec_free_context(&codec->ctx);
	if (codec->parser)
		av_parser_close(codec->parser);
	av_packet_free(&codec->pkt);
	av_frame_free(&codec->frame);
	av_buffer_pool_uninit(&codec->mem_pool);
	av_buffer_pool_uninit(&codec->chroma_pool);
	free(codec->inbuf);
	free(codec);
}

int
codec_new(uint32_t coded_format, uint32_t capture_format, const struct codec_callbacks *cb,
	  void *userdata, struct codec **ret_codec)
{
	const char *name = decoder_name(coded_format);
	const AVCodec *dec;
	struct codec *codec;

	if (!name || !capture_format_valid(capture_format) || !cb || !cb->stream_info ||
	    !cb->get_picture || !cb->put_picture || !cb->frame_done || !ret_codec)
		return -EINVAL;
	dec = avcodec_find_decoder_by_name(name);
	if (!dec)
		return -EINVAL;

	codec = calloc(1, sizeof(*codec));
	if (!codec)
		return -ENOMEM;
	codec->cb = cb;
	codec->userdata = userdata;
	codec->coded_format = coded_format;
	codec->capture_format = capture_format;
	codec->delay = dec->capabilities & AV_CODEC_CAP_DELAY;

	codec->dec = dec;
	codec->pkt = av_packet_alloc();
	codec->frame = av_frame_alloc();
	if (!codec->pkt || !codec->frame || open_decoder(codec) < 0)
		goto nomem;
	if (coded_format == V4L2_PIX_FMT_H264 || coded_format == V4L2_PIX_FMT_HEVC) {
		codec->parser = av_parser_init(dec->id);
		if (!codec->parser)
			goto nomem;
		codec->parser_first_seq = 1;
	}
	*ret_codec = codec;
	return 0;

nomem:
	codec_free(codec);
	return -ENOMEM;
}
