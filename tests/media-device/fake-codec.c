/* SPDX-License-Identifier: MIT */
/*
 * A deterministic codec implementing codec.h over a made-up bitstream, linked into the
 * decoder's tests instead of libavcodec so the V4L2 state machine is tested on its own.
 *
 * Bitstream: a sequence of 12-byte frame records, any number per OUTPUT buffer:
 *   "FAKE", le16 width, le16 height, u8 fill, u8 flags, le16 reserved
 * flags: FAKE_FLAG_CORRUPT (the frame is reported with error), FAKE_FLAG_BREAK (the codec
 * fails: codec_decode returns -EIO). Bytes that are not a record are skipped.
 *
 * Picture content (NV12 or YUV420): luma row y of a frame with fill f holds (f + y) & 0xff
 * in every visible byte, chroma holds f ^ 0x80, so tests can check frames byte by byte.
 * The codec keeps the previous picture as a "reference" until the next frame is done (or a
 * drain or flush), to exercise the decoder's put_picture bookkeeping. The stream needs
 * min_buffers = 2 pictures.
 */
#include "fake-codec.h"

#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct codec {
	uint32_t coded, capture;
	const struct codec_callbacks *cb;
	void *userdata;
	bool have_info;
	struct codec_stream_info info;
	int ref; /* handle held as reference, or -1 */
	struct codec_stats stats;
};

bool
codec_supports(uint32_t coded_format)
{
	return coded_format == V4L2_PIX_FMT_H264 || coded_format == V4L2_PIX_FMT_VP9;
}

unsigned
codec_capture_formats(uint32_t coded_format, uint32_t *ret_formats, unsigned max)
{
	static const uint32_t f[] = {V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_YUV420};
	unsigned n = 0;

	if (!codec_supports(coded_format))
		return 0;
	for (; n < max && n < 2; n++)
		ret_formats[n] = f[n];
	return n;
}

int
codec_new(uint32_t coded_format, uint32_t capture_format, const struct codec_callbacks *cb,
	  void *userdata, struct codec **ret_codec)
{
	struct codec *c;

	if (!codec_supports(coded_format) ||
	    (capture_format != V4L2_PIX_FMT_NV12 && capture_format != V4L2_PIX_FMT_YUV420))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->coded = coded_format;
	c->capture = capture_format;
	c->cb = cb;
	c->userdata = userdata;
	c->ref = -1;
	*ret_codec = c;
	return 0;
}

static void
drop_ref(struct codec *c)
{
	if (c->ref >= 0) {
		c->cb->put_picture(c->userdata, c->ref);
		c->ref = -1;
	}
}

void
codec_free(struct codec *c)
{
	if (c == NULL)
		return;
	drop_ref(c);
	free(c);
}

static void
paint(struct codec *c, const struct codec_picture *p, uint8_t fill)
{
	uint32_t w = c->info.width, h = c->info.height;

	if (p->begin_access)
		p->begin_access(p->access_data);
	for (uint32_t y = 0; y < h; y++) {
		if ((size_t)y * p->strides[0] + w <= p->sizes[0])
			memset(p->data[0] + (size_t)y * p->strides[0], (fill + y) & 0xff, w);
	}
	for (uint32_t i = 1; i < p->num_planes; i++) {
		uint32_t cw = p->num_planes == 3 ? w / 2 : w;

		for (uint32_t y = 0; y < h / 2; y++) {
			if ((size_t)y * p->strides[i] + cw <= p->sizes[i])
				memset(p->data[i] + (size_t)y * p->strides[i], fill ^ 0x80, cw);
		}
	}
	if (p->end_access)
		p->end_access(p->access_data);
}

static int
decode_frame(struct codec *c, const struct fake_frame *f, uint64_t timestamp)
{
	struct codec_picture pic;
	int h;

	if (f->flags & FAKE_FLAG_BREAK)
		return -EIO;
	if (f->width < 16 || f->height < 16 || f->width > 4096 || f->height > 4096) {
		c->stats.frames_corrupt++;
		return 0;
	}
	if (!c->have_info || c->info.width != f->width || c->info.height != f->height) {
		/* A new geometry: every earlier frame is done already; forget references. */
		drop_ref(c);
		fake_codec_layout(c->capture, f->width, f->height, &c->info);
		c->have_info = true;
		c->cb->stream_info(c->userdata, &c->info);
	}
	h = c->cb->get_picture(c->userdata, &pic);
	if (h < 0)
		return 0; /* no picture (stopping): the frame is dropped */
	if (pic.num_planes != c->info.num_planes || pic.strides[0] < c->info.strides[0]) {
		c->stats.frames_corrupt++;
		c->cb->frame_done(c->userdata, h, timestamp, 0, true);
		c->cb->put_picture(c->userdata, h);
		return 0;
	}
	paint(c, &pic, f->fill);
	c->stats.frames_decoded++;
	if (f->flags & FAKE_FLAG_CORRUPT)
		c->stats.frames_corrupt++;
	c->cb->frame_done(c->userdata, h, timestamp, 0, f->flags & FAKE_FLAG_CORRUPT);
	drop_ref(c);
	c->ref = h;
	return 0;
}

int
codec_decode(struct codec *c, const void *data, size_t len, uint64_t timestamp)
{
	const uint8_t *p = data;
	size_t off = 0;

	while (off + FAKE_FRAME_SIZE <= len) {
		struct fake_frame f;
		int r;

		if (memcmp(p + off, FAKE_MAGIC, 4) != 0) {
			off++;
			continue;
		}
		memcpy(&f, p + off, sizeof(f));
		off += FAKE_FRAME_SIZE;
		r = decode_frame(c, &f, timestamp);
		if (r < 0)
			return r;
	}
	return 0;
}

int
codec_drain(struct codec *c)
{
	drop_ref(c);
	return 0;
}

void
codec_flush(struct codec *c)
{
	drop_ref(c);
}

void
codec_get_stats(const struct codec *c, struct codec_stats *ret)
{
	*ret = c->stats;
}
