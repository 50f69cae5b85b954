/* SPDX-License-Identifier: MIT */
/* The test codec's bitstream (see fake-codec.c). */
#pragma once

#include "codec.h"

#include <linux/videodev2.h>
#include <stdint.h>
#include <string.h>

#define FAKE_MAGIC        "FAKE"
#define FAKE_FRAME_SIZE   12
#define FAKE_FLAG_CORRUPT 1
#define FAKE_FLAG_BREAK   2

struct fake_frame {
	char magic[4];
	uint16_t width;
	uint16_t height;
	uint8_t fill;
	uint8_t flags;
	uint16_t reserved;
};
_Static_assert(sizeof(struct fake_frame) == FAKE_FRAME_SIZE, "fake frame record");

/* The layout the fake codec reports for a w x h stream. */
static inline void
fake_codec_layout(uint32_t capture_format, uint32_t w, uint32_t h, struct codec_stream_info *info)
{
	uint32_t stride = (w + 63) & ~63u, rows = (h + 15) & ~15u;

	memset(info, 0, sizeof(*info));
	info->width = w;
	info->height = h;
	info->visible = (struct codec_rect){0, 0, w, h};
	info->min_buffers = 2;
	if (capture_format == V4L2_PIX_FMT_YUV420) {
		info->num_planes = 3;
		info->strides[0] = stride;
		info->strides[1] = info->strides[2] = stride / 2;
		info->plane_sizes[0] = stride * rows;
		info->plane_sizes[1] = info->plane_sizes[2] = stride / 2 * (rows / 2);
	} else {
		info->num_planes = 2;
		info->strides[0] = info->strides[1] = stride;
		info->plane_sizes[0] = stride * rows;
		info->plane_sizes[1] = stride * (rows / 2);
	}
}
