/* SPDX-License-Identifier: MIT */
/*
 * A sink that writes what the guest displays to PNG files: dir/scanout-N.png, replaced
 * atomically (write to a temporary file, rename) at every flush, so a person can watch it.
 * Every format a scanout may have is converted to RGB with libswscale, as a compositor
 * would (YUV with BT.601 limited range, swscale's default).
 *
 * Protected frames reach an unauthorized sink without data: it writes a grey, striped
 * placeholder of the scanout's size with a tEXt note "crossbuf: protected content
 * withheld", and counts it.
 */
#include "config.h"
#include "sink.h"

#include <errno.h>
#include <stdlib.h>

#if HAVE_PNG

#include "macro.h"

#include <drm_fourcc.h>
#include <fcntl.h>
#include <libswscale/swscale.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_SCANOUT_PIXELS (16384u * 16384u)

struct png_sink {
	struct gpu_sink base;
	char *dir;
	unsigned written, placeholders;
};

/* The libswscale input format of a DRM fourcc (and whether U and V planes are swapped). */
static int
sws_format(uint32_t fourcc, enum AVPixelFormat *ret, bool *ret_swap_uv)
{
	*ret_swap_uv = false;
	switch (fourcc) {
	case DRM_FORMAT_XRGB8888:
		*ret = AV_PIX_FMT_BGR0; /* bytes B, G, R, X */
		return 0;
	case DRM_FORMAT_ARGB8888:
		*ret = AV_PIX_FMT_BGRA;
		return 0;
	case DRM_FORMAT_BGRX8888:
		*ret = AV_PIX_FMT_0RGB;
		return 0;
	case DRM_FORMAT_BGRA8888:
		*ret = AV_PIX_FMT_ARGB;
		return 0;
	case DRM_FORMAT_XBGR8888:
		*ret = AV_PIX_FMT_RGB0;
		return 0;
	case DRM_FORMAT_ABGR8888:
		*ret = AV_PIX_FMT_RGBA;
		return 0;
	case DRM_FORMAT_RGBX8888:
		*ret = AV_PIX_FMT_0BGR;
		return 0;
	case DRM_FORMAT_RGBA8888:
		*ret = AV_PIX_FMT_ABGR;
		return 0;
	case DRM_FORMAT_NV12:
		*ret = AV_PIX_FMT_NV12;
		return 0;
	case DRM_FORMAT_NV21:
		*ret = AV_PIX_FMT_NV21;
		return 0;
	case DRM_FORMAT_YUV420:
		*ret = AV_PIX_FMT_YUV420P;
		return 0;
	case DRM_FORMAT_YVU420:
		*ret = AV_PIX_FMT_YUV420P;
		*ret_swap_uv = true;
		return 0;
	}
	return -EINVAL;
}

static int
write_png(const char *path, uint32_t w, uint32_t h, uint8_t *rgb, const char *note)
{
	_cleanup_free_ char *tmp = NULL;
	png_structp png = NULL;
	png_infop info = NULL;
	FILE *f;
	int fd;
	/* Set after setjmp() and read after a longjmp(): must live in memory. */
	volatile int r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return negative_errno();
	f = fdopen(fd, "wb");
	if (f == NULL) {
		r = negative_errno();
		close(fd);
		unlink(tmp);
		return r;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png != NULL ? png_create_info_struct(png) : NULL;
	if (png == NULL || info == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (setjmp(png_jmpbuf(png))) {
		r = -EIO;
		goto out;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_set_compression_level(png, 1);
	if (note != NULL) {
		png_text text = {
			.compression = PNG_TEXT_COMPRESSION_NONE,
			.key = (char *)"Comment",
			.text = (char *)note,
		};
		png_set_text(png, info, &text, 1);
	}
	png_write_info(png, info);
	for (uint32_t y = 0; y < h; y++)
		png_write_row(png, rgb + (size_t)y * w * 3);
	png_write_end(png, info);
out:
	png_destroy_write_struct(png != NULL ? &png : NULL, info != NULL ? &info : NULL);
	if (fclose(f) != 0 && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Converts the frame's src rectangle to packed RGB24. */
static int
convert(const struct gpu_sink_frame *frame, uint8_t *rgb)
{
	const struct gpu_layout *l = frame->layout;
	const struct gpu_format *f = gpu_format_from_fourcc(l->fourcc);
	uint32_t x = frame->src.x, y = frame->src.y, w = frame->src.width, h = frame->src.height;
	const uint8_t *planes[4] = {NULL};
	int strides[4] = {0};
	uint8_t *dst[4] = {rgb};
	int dst_strides[4] = {(int)(w * 3)};
	enum AVPixelFormat fmt;
	struct SwsContext *sws;
	bool swap;

	if (f == NULL || sws_format(l->fourcc, &fmt, &swap) < 0)
		return -EINVAL;
	if (f->yuv) {
		/* chroma sites: start on even coordinates */
		x &= ~1u;
		y &= ~1u;
	}
	for (unsigned p = 0; p < f->num_planes; p++) {
		uint32_t px = p == 0 ? x : x / f->hsub, py = p == 0 ? y : y / f->vsub;
		uint64_t off = l->planes[p].offset + (uint64_t)py * l->planes[p].stride +
			       (uint64_t)px * f->cpp[p];
		uint64_t rows = gpu_format_plane_height(f, p, h);
		if (rows == 0 || off + (rows - 1) * l->planes[p].stride +
						 gpu_format_plane_width(f, p, w) * f->cpp[p] >
					 l->size)
			return -EINVAL;
		planes[p] = frame->data + off;
		strides[p] = (int)l->planes[p].stride;
	}
	if (swap) {
		const uint8_t *t = planes[1];
		planes[1] = planes[2];
		planes[2] = t;
	}
	sws = sws_getContext((int)w, (int)h, fmt, (int)w, (int)h, AV_PIX_FMT_RGB24, SWS_POINT, NULL,
			     NULL, NULL);
	if (sws == NULL)
		return -ENOMEM;
	sws_scale(sws, planes, strides, 0, (int)h, dst, dst_strides);
	sws_freeContext(sws);
	return 0;
}

static void
placeholder(uint8_t *rgb, uint32_t w, uint32_t h)
{
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			uint8_t v = ((x + y) / 16) % 2 ? 0x60 : 0x80;
			uint8_t *px = rgb + ((size_t)y * w + x) * 3;
			px[0] = px[1] = px[2] = v;
		}
	}
}

static void
png_set_scanout(struct gpu_sink *sink, uint32_t scanout_id, bool enabled, uint32_t resource_id,
		const struct gpu_rect *src)
{
}

static int
png_flush(struct gpu_sink *sink, const struct gpu_sink_frame *frame)
{
	struct png_sink *s = (struct png_sink *)sink;
	uint32_t w = frame->src.width, h = frame->src.height;
	_cleanup_free_ uint8_t *rgb = NULL;
	_cleanup_free_ char *path = NULL;
	const char *note = NULL;
	int r;

	if (w == 0 || h == 0 || (uint64_t)w * h > MAX_SCANOUT_PIXELS)
		return -EINVAL;
	rgb = malloc((size_t)w * h * 3);
	if (rgb == NULL)
		return -ENOMEM;
	if (frame->data == NULL) {
		placeholder(rgb, w, h);
		note = frame->protected_ ? "crossbuf: protected content withheld"
					 : "crossbuf: content not readable by the host";
	} else {
		r = convert(frame, rgb);
		if (r < 0)
			return r;
	}
	if (asprintf(&path, "%s/scanout-%u.png", s->dir, frame->scanout_id) < 0)
		return -ENOMEM;
	r = write_png(path, w, h, rgb, note);
	if (r < 0)
		return r;
	s->written++;
	if (note != NULL)
		s->placeholders++;
	return 0;
}

static void
png_destroy(struct gpu_sink *sink)
{
	struct png_sink *s = (struct png_sink *)sink;

	free(s->dir);
	free(s);
}

static const struct gpu_sink_ops png_ops = {
	.set_scanout = png_set_scanout,
	.flush = png_flush,
	.destroy = png_destroy,
};

int
gpu_sink_png_new(const char *dir, bool authorized, struct gpu_sink **ret_sink)
{
	struct png_sink *s;

	if (dir == NULL || ret_sink == NULL)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->dir = strdup(dir);
	if (s->dir == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->base.ops = &png_ops;
	s->base.authorized = authorized;
	*ret_sink = &s->base;
	return 0;
}

void
gpu_sink_png_stats(struct gpu_sink *sink, unsigned *ret_written, unsigned *ret_placeholders)
{
	struct png_sink *s = (struct png_sink *)sink;

	*ret_written = s->written;
	*ret_placeholders = s->placeholders;
}

#else /* !HAVE_PNG */

int
gpu_sink_png_new(const char *dir, bool authorized, struct gpu_sink **ret_sink)
{
	return -EOPNOTSUPP;
}

void
gpu_sink_png_stats(struct gpu_sink *sink, unsigned *ret_written, unsigned *ret_placeholders)
{
	*ret_written = 0;
	*ret_placeholders = 0;
}

#endif
