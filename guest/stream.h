/* SPDX-License-Identifier: MIT */
/*
 * A video clip demuxed into coded frames with libavformat, for crossbuf-guest to feed a
 * virtio-media stateful decoder one coded frame per OUTPUT buffer.
 *
 * Any container libavformat reads (IVF, Annex B .h264/.hevc, MP4, MKV, WebM) holding H.264,
 * HEVC, VP8 or VP9. H.264 and HEVC always come out as Annex B byte streams (the container's
 * length-prefixed NAL units are rewritten, parameter sets put before key frames).
 *
 * The module never prints: every failure is a negative errno with a one-line reason, and it
 * lowers libavformat's log level (once, and only if nobody changed it from the default).
 * Not thread-safe: one stream is used by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest coded frame guest_stream_next() hands out; larger ones are -EFBIG. */
#define GUEST_STREAM_MAX_PACKET (16u << 20)

struct guest_stream;

struct guest_packet {
	const uint8_t *data; /* valid until the next guest_stream_next() or free */
	size_t size;
	int64_t pts_us; /* presentation time in µs, or INT64_MIN when the container has none */
	bool key;
};

/*
 * Opens path (a file name, never a URL: libavformat protocols are not interpreted) and picks
 * its video stream. On failure returns a negative errno and writes a one-line reason into err
 * (may be NULL): -ENOENT/-EACCES/... the file cannot be opened, -EISDIR a directory, -EINVAL
 * empty, unreadable or no video stream, -EOPNOTSUPP a codec other than H.264, HEVC, VP8, VP9.
 * *ret is untouched on failure.
 */
int guest_stream_open(const char *path, struct guest_stream **ret, char *err, size_t err_size);
/* Accepts NULL. */
void guest_stream_free(struct guest_stream *s);

/* V4L2_PIX_FMT_H264, V4L2_PIX_FMT_HEVC, V4L2_PIX_FMT_VP8 or V4L2_PIX_FMT_VP9. */
uint32_t guest_stream_pixelformat(const struct guest_stream *s);
/* libavcodec's short name: "h264", "hevc", "vp8", "vp9". */
const char *guest_stream_codec_name(const struct guest_stream *s);
/* The coded size the container declares for the start of the stream (it may change later). */
void guest_stream_size(const struct guest_stream *s, uint32_t *ret_width, uint32_t *ret_height);

/*
 * Next coded frame of the video stream: 1 and *ret, 0 at the end, or a negative errno: -EFBIG
 * a frame larger than GUEST_STREAM_MAX_PACKET, -EBADMSG a truncated or corrupt frame (e.g. a
 * file cut inside an IVF record), -EIO or another errno a read error. After an error the
 * stream stays at the end (further calls return the same error); guest_stream_error() says
 * what happened.
 */
int guest_stream_next(struct guest_stream *s, struct guest_packet *ret);
/* The reason of the last error of guest_stream_next(), "" when there was none. */
const char *guest_stream_error(const struct guest_stream *s);
