/* SPDX-License-Identifier: MIT */
/*
 * The decoder backend interface: what the V4L2 stateful decoder (decoder.c) asks of a
 * video codec library. libavcodec implements it (codec-avcodec.c); the rest of the media
 * device never includes a libavcodec header.
 *
 * Threading: a codec is driven from one thread at a time (the decoder's worker). The
 * callbacks run on that thread, from inside codec_decode() and codec_drain().
 *
 * Pictures: the codec decodes straight into buffers the decoder hands it (the guest's
 * CAPTURE buffers, resolved to host memory). It asks for one with get_picture() when it
 * starts a frame and gives it back with put_picture() when it no longer reads it as a
 * reference. A picture is "done" (frame_done) when its frame is complete in display
 * order; it may still be referenced afterwards, so the decoder must not hand the same
 * buffer out again before put_picture(), even if the guest has queued it again.
 *
 * When the codec cannot decode into a picture (the codec lacks direct rendering, or the
 * picture's layout is not enough for it), it decodes into its own memory and copies the
 * finished frame into a picture, once; that copy is counted in codec_stats.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct codec;

#define CODEC_MAX_PLANES 3

struct codec_rect {
	uint32_t left, top, width, height;
};

/* What the bitstream says about the frames, known after the first header. */
struct codec_stream_info {
	uint32_t width, height; /* frame size in pixels (the coded size of one picture) */
	struct codec_rect visible;
	uint32_t min_buffers; /* pictures the stream needs in flight (references + 1) */
	/*
	 * The smallest picture layout the codec can decode into directly, for the CAPTURE
	 * pixel format in use (avcodec_align_dimensions2's padding, 64-byte stride
	 * alignment). The decoder reports these to the guest in the CAPTURE format.
	 */
	uint32_t num_planes;
	uint32_t strides[CODEC_MAX_PLANES];
	uint32_t plane_sizes[CODEC_MAX_PLANES]; /* bytes, stride x padded rows */
};

/* Where one frame goes: host addresses of a CAPTURE buffer's planes. */
struct codec_picture {
	uint32_t pixelformat; /* V4L2_PIX_FMT_NV12 or V4L2_PIX_FMT_YUV420 */
	uint32_t num_planes;  /* 2 for NV12, 3 for YUV420 (NV12M/YUV420M planes alike) */
	uint8_t *data[CODEC_MAX_PLANES];
	uint32_t strides[CODEC_MAX_PLANES];
	size_t sizes[CODEC_MAX_PLANES]; /* bytes available from data[i] */
	/*
	 * Called before the codec writes to the picture and after it stops (dma-buf CPU
	 * access, DMA_BUF_IOCTL_SYNC); NULL when not needed.
	 */
	void (*begin_access)(void *access_data);
	void (*end_access)(void *access_data);
	void *access_data;
};

struct codec_callbacks {
	/*
	 * The stream's geometry is known (first header) or changed (resolution change).
	 * Pictures asked for after this call must fit the new info. Frames decoded before
	 * the change have all been passed to frame_done() already.
	 */
	void (*stream_info)(void *userdata, const struct codec_stream_info *info);
	/*
	 * A picture to decode the next frame into. Returns a handle >= 0 (the decoder's own
	 * buffer index) and fills *ret_picture, or a negative errno: -EAGAIN when no buffer
	 * is free (the codec gives up on this frame and reports it with frame_done(error)),
	 * -ECANCELED when the stream is being stopped.
	 */
	int (*get_picture)(void *userdata, struct codec_picture *ret_picture);
	/* The codec no longer reads picture handle. */
	void (*put_picture)(void *userdata, int handle);
	/*
	 * A frame is complete in picture handle, in display order. timestamp is the one given
	 * to codec_decode() with the data that produced it. error: the frame is corrupt or
	 * could not be decoded (the picture holds what could be decoded, or nothing).
	 * handle is -1 when the frame got no picture at all (get_picture failed with -EAGAIN,
	 * or the input could not be decoded): error is then set and bytesused is 0.
	 */
	void (*frame_done)(void *userdata, int handle, uint64_t timestamp, uint32_t bytesused,
			   bool error);
};

struct codec_stats {
	uint64_t frames_decoded;
	uint64_t frames_copied; /* frames that could not be decoded in place */
	uint64_t bytes_copied;
	uint64_t frames_corrupt;
};

/*
 * Whether this build can decode coded_format (V4L2_PIX_FMT_H264, _HEVC, _VP8, _VP9,
 * _AV1) into CAPTURE pictures of pixelformat.
 */
bool codec_supports(uint32_t coded_format);
/* The CAPTURE pixel formats (V4L2 fourccs) for coded_format, in order of preference. */
unsigned codec_capture_formats(uint32_t coded_format, uint32_t *ret_formats, unsigned max);

/*
 * A decoder for coded_format producing capture_format pictures. cb and userdata are kept
 * for the codec's life. -EINVAL for an unsupported format, -ENOMEM.
 */
int codec_new(uint32_t coded_format, uint32_t capture_format, const struct codec_callbacks *cb,
	      void *userdata, struct codec **ret_codec);
void codec_free(struct codec *codec);

/*
 * Feeds one OUTPUT buffer's worth of bitstream (any split: the codec parses it into
 * frames). Frames finish through the callbacks, possibly later. Corrupt data is not an
 * error here: the affected frames are reported with frame_done(error). Returns -ENOMEM or
 * -EIO only when the codec itself broke and must be freed.
 */
int codec_decode(struct codec *codec, const void *data, size_t len, uint64_t timestamp);
/* Finishes every pending frame (end of stream); the codec then accepts a new stream. */
int codec_drain(struct codec *codec);
/* Drops every pending frame and forgets references (seek); every picture is put back. */
void codec_flush(struct codec *codec);

void codec_get_stats(const struct codec *codec, struct codec_stats *ret_stats);
