/* SPDX-License-Identifier: MIT */
/* The test codec's bitstream (see fake-codec.c). */
#pragma once

#include <stdint.h>
#include <linux/videodev2.h>

#include "codec.h"

#define FAKE_MAGIC	  "FAKE"
#define FAKE_FRAME_SIZE	  12
#define FAKE_FLAG_CORRUPT 1
#define FAKE_FLAG_BREAK	  2

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
void fake_codec_layout(uint32_t capture_format, uint32_t w, uint32_t h,
		       struct codec_stream_info *info);
