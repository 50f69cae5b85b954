/* SPDX-License-Identifier: MIT */
/*
 * A clip demuxed with libavformat (stream.h).
 *
 * The file is opened as "file:PATH" with only the file protocol allowed, so a path that looks
 * like a URL ("http:...", "concat:...") is still a file name and no demuxer can reach the
 * network. Only the chosen video stream is read (the others are discarded in the demuxer).
 *
 * H.264 and HEVC go through h264_mp4toannexb / hevc_mp4toannexb always: for length-prefixed
 * input (avcC/hvcC extradata, MP4, MKV) they rewrite the NAL units into Annex B and put the
 * parameter sets before key frames; for input that is Annex B already (raw .h264/.hevc,
 * MPEG-TS) they hand the packets through unchanged.
 */
#include "stream.h"

#include "macro.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <linux/videodev2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest frame side accepted from a container. */
#define MAX_DIM 16384

struct guest_stream {
	AVFormatContext *fmt;
	AVBSFContext *bsf; /* NULL for VP8/VP9 */
	int index;         /* of the video stream */
	AVRational time_base;
	uint32_t pixelformat;
	uint32_t width, height;
	AVPacket *in;  /* from the demuxer */
	AVPacket *out; /* handed out, until the next call */
	bool demux_eof;
	bool bsf_eof;
	int error; /* sticky error of guest_stream_next, 0 if none */
	char reason[160];
};

static void
quiet_libav_once(void)
{
	/* Lowered only from the default, so a program that chose a level keeps it. */
	if (av_log_get_level() == AV_LOG_INFO)
		av_log_set_level(AV_LOG_QUIET);
}

static void
quiet_libav(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, quiet_libav_once);
}

static void _printf_(3, 4) set_err(char *err, size_t err_size, const char *fmt, ...)
{
	va_list ap;

	if (!err || err_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
}

/* A libav error as a negative errno: errno-based ones as they are, the rest mapped. */
static int
av_to_errno(int averr)
{
	if (averr >= -4095 && averr < 0)
		return averr;
	switch (averr) {
	case AVERROR_INVALIDDATA:
	case AVERROR_DEMUXER_NOT_FOUND:
	case AVERROR_STREAM_NOT_FOUND:
		return -EINVAL;
	case AVERROR_PATCHWELCOME:
	case AVERROR_DECODER_NOT_FOUND:
	case AVERROR_BSF_NOT_FOUND:
	case AVERROR_PROTOCOL_NOT_FOUND:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static const char *
av_reason(int averr, char *buf, size_t size)
{
	if (av_strerror(averr, buf, size) < 0)
		snprintf(buf, size, "libav error %d", averr);
	return buf;
}

static uint32_t
pixelformat_of(enum AVCodecID id)
{
	switch ((int)id) {
	case AV_CODEC_ID_H264:
		return V4L2_PIX_FMT_H264;
	case AV_CODEC_ID_HEVC:
		return V4L2_PIX_FMT_HEVC;
	case AV_CODEC_ID_VP8:
		return V4L2_PIX_FMT_VP8;
	case AV_CODEC_ID_VP9:
		return V4L2_PIX_FMT_VP9;
	}
	return 0;
}

static bool
is_video(const AVStream *st)
{
	return st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
	       !(st->disposition & AV_DISPOSITION_ATTACHED_PIC);
}

/* The stream to play: libavformat's best video stream if its codec is one of ours, else the
 * first video stream that is. -1 and the codec of the best one in *ret_other when none is. */
static int
pick_stream(AVFormatContext *fmt, enum AVCodecID *ret_other)
{
	int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);

	if (best >= 0 && is_video(fmt->streams[best]) &&
	    pixelformat_of(fmt->streams[best]->codecpar->codec_id))
		return best;
	*ret_other = AV_CODEC_ID_NONE;
	for (unsigned i = 0; i < fmt->nb_streams; i++) {
		const AVStream *st = fmt->streams[i];

		if (!is_video(st))
			continue;
		if (pixelformat_of(st->codecpar->codec_id))
			return (int)i;
		if (*ret_other == AV_CODEC_ID_NONE)
			*ret_other = st->codecpar->codec_id;
	}
	if (best >= 0 && is_video(fmt->streams[best]))
		*ret_other = fmt->streams[best]->codecpar->codec_id;
	return -1;
}

static int
setup_bsf(struct guest_stream *s, const AVStream *st, char *err, size_t err_size)
{
	const char *name = st->codecpar->codec_id == AV_CODEC_ID_H264 ? "h264_mp4toannexb"
								      : "hevc_mp4toannexb";
	const AVBitStreamFilter *f = av_bsf_get_by_name(name);
	char buf[AV_ERROR_MAX_STRING_SIZE];
	int r;

	if (!f) {
		set_err(err, err_size, "libavcodec lacks the %s bitstream filter", name);
		return -EOPNOTSUPP;
	}
	r = av_bsf_alloc(f, &s->bsf);
	if (r < 0)
		return -ENOMEM;
	r = avcodec_parameters_copy(s->bsf->par_in, st->codecpar);
	if (r < 0)
		return -ENOMEM;
	s->bsf->time_base_in = st->time_base;
	r = av_bsf_init(s->bsf);
	if (r < 0) {
		set_err(err, err_size, "%s: %s", name, av_reason(r, buf, sizeof(buf)));
		return av_to_errno(r);
	}
	return 0;
}

void
guest_stream_free(struct guest_stream *s)
{
	if (!s)
		return;
	av_bsf_free(&s->bsf);
	av_packet_free(&s->in);
	av_packet_free(&s->out);
	avformat_close_input(&s->fmt);
	free(s);
}

int
guest_stream_open(const char *path, struct guest_stream **ret, char *err, size_t err_size)
{
	char buf[AV_ERROR_MAX_STRING_SIZE];
	AVDictionary *opts = NULL;
	struct guest_stream *s;
	enum AVCodecID other = AV_CODEC_ID_NONE;
	const AVStream *st;
	struct stat sb;
	char *url;
	int r;

	set_err(err, err_size, "%s", "");
	if (!path || !ret) {
		set_err(err, err_size, "invalid arguments");
		return -EINVAL;
	}
	quiet_libav();

	/* libavformat's messages for these are vague ("Invalid data found"): say it first. */
	if (stat(path, &sb) < 0) {
		r = errno > 0 ? -errno : -EIO;
		set_err(err, err_size, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	if (S_ISDIR(sb.st_mode)) {
		set_err(err, err_size, "%s is a directory", path);
		return -EISDIR;
	}
	if (S_ISREG(sb.st_mode) && sb.st_size == 0) {
		set_err(err, err_size, "%s is empty", path);
		return -EINVAL;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->index = -1;
	s->in = av_packet_alloc();
	s->out = av_packet_alloc();
	url = av_asprintf("file:%s", path);
	if (!s->in || !s->out || !url) {
		av_free(url);
		goto nomem;
	}
	av_dict_set(&opts, "protocol_whitelist", "file", 0);
	r = avformat_open_input(&s->fmt, url, NULL, &opts);
	av_dict_free(&opts);
	av_free(url);
	if (r < 0) {
		if (r == AVERROR_INVALIDDATA)
			set_err(err, err_size, "%s: not a container libavformat recognises", path);
		else
			set_err(err, err_size, "cannot open %s: %s", path,
				av_reason(r, buf, sizeof(buf)));
		r = av_to_errno(r);
		goto fail;
	}
	r = avformat_find_stream_info(s->fmt, NULL);
	if (r < 0) {
		set_err(err, err_size, "%s: cannot read the streams: %s", path,
			av_reason(r, buf, sizeof(buf)));
		r = av_to_errno(r);
		goto fail;
	}

	s->index = pick_stream(s->fmt, &other);
	if (s->index < 0) {
		if (other == AV_CODEC_ID_NONE) {
			set_err(err, err_size, "%s: no video stream", path);
			r = -EINVAL;
		} else {
			set_err(err, err_size,
				"%s: codec %s is not supported (H.264, HEVC, VP8, VP9)", path,
				avcodec_get_name(other));
			r = -EOPNOTSUPP;
		}
		goto fail;
	}
	for (unsigned i = 0; i < s->fmt->nb_streams; i++)
		if ((int)i != s->index)
			s->fmt->streams[i]->discard = AVDISCARD_ALL;

	st = s->fmt->streams[s->index];
	s->time_base = st->time_base;
	s->pixelformat = pixelformat_of(st->codecpar->codec_id);
	if (st->codecpar->width <= 0 || st->codecpar->height <= 0 ||
	    st->codecpar->width > MAX_DIM || st->codecpar->height > MAX_DIM) {
		set_err(err, err_size, "%s: %s video stream of unusable size %dx%d", path,
			avcodec_get_name(st->codecpar->codec_id), st->codecpar->width,
			st->codecpar->height);
		r = -EINVAL;
		goto fail;
	}
	s->width = (uint32_t)st->codecpar->width;
	s->height = (uint32_t)st->codecpar->height;

	if (s->pixelformat == V4L2_PIX_FMT_H264 || s->pixelformat == V4L2_PIX_FMT_HEVC) {
		r = setup_bsf(s, st, err, err_size);
		if (r < 0) {
			if (r == -ENOMEM)
				goto nomem;
			goto fail;
		}
	}
	*ret = s;
	return 0;

nomem:
	set_err(err, err_size, "out of memory opening %s", path);
	r = -ENOMEM;
fail:
	guest_stream_free(s);
	return r;
}

uint32_t
guest_stream_pixelformat(const struct guest_stream *s)
{
	assert(s);
	return s->pixelformat;
}

const char *
guest_stream_codec_name(const struct guest_stream *s)
{
	assert(s);
	return avcodec_get_name(s->fmt->streams[s->index]->codecpar->codec_id);
}

void
guest_stream_size(const struct guest_stream *s, uint32_t *ret_width, uint32_t *ret_height)
{
	assert(s);
	if (ret_width)
		*ret_width = s->width;
	if (ret_height)
		*ret_height = s->height;
}

const char *
guest_stream_error(const struct guest_stream *s)
{
	assert(s);
	return s->reason;
}

static int _printf_(3, 4) fail_next(struct guest_stream *s, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
	s->error = r;
	return r;
}

/* Next packet of the video stream from the demuxer into s->in: 1, 0 at the end, -errno. */
static int
demux(struct guest_stream *s)
{
	char buf[AV_ERROR_MAX_STRING_SIZE];
	int r;

	for (;;) {
		av_packet_unref(s->in);
		r = av_read_frame(s->fmt, s->in);
		if (r == AVERROR_EOF)
			return 0;
		if (r < 0)
			return fail_next(s, av_to_errno(r), "reading the file: %s",
					 av_reason(r, buf, sizeof(buf)));
		if (s->in->stream_index != s->index || s->in->size <= 0)
			continue;
		if (s->in->flags & AV_PKT_FLAG_CORRUPT)
			return fail_next(s, -EBADMSG,
					 "the frame at byte %" PRId64
					 " is truncated or corrupt (%d bytes read)",
					 s->in->pos, s->in->size);
		if ((size_t)s->in->size > GUEST_STREAM_MAX_PACKET)
			return fail_next(s, -EFBIG, "a frame of %d bytes (more than %u)",
					 s->in->size, GUEST_STREAM_MAX_PACKET);
		return 1;
	}
}

/* Next packet into s->out: through the bitstream filter for H.264/HEVC. */
static int
next_packet(struct guest_stream *s)
{
	char buf[AV_ERROR_MAX_STRING_SIZE];
	int r;

	if (!s->bsf) {
		r = demux(s);
		if (r > 0)
			av_packet_move_ref(s->out, s->in);
		return r;
	}
	for (;;) {
		r = av_bsf_receive_packet(s->bsf, s->out);
		if (r == 0)
			return 1;
		if (r == AVERROR_EOF)
			return 0;
		if (r != AVERROR(EAGAIN))
			return fail_next(s, av_to_errno(r), "rewriting the frame to Annex B: %s",
					 av_reason(r, buf, sizeof(buf)));
		if (s->demux_eof)
			return 0; /* not reached: a flushed filter says AVERROR_EOF */
		r = demux(s);
		if (r < 0)
			return r;
		if (r == 0) {
			s->demux_eof = true;
			r = av_bsf_send_packet(s->bsf, NULL);
		} else {
			r = av_bsf_send_packet(s->bsf, s->in);
		}
		if (r < 0)
			return fail_next(s, av_to_errno(r), "rewriting the frame to Annex B: %s",
					 av_reason(r, buf, sizeof(buf)));
	}
}

int
guest_stream_next(struct guest_stream *s, struct guest_packet *ret)
{
	int r;

	if (!s || !ret)
		return -EINVAL;
	av_packet_unref(s->out);
	if (s->error)
		return s->error;
	if (s->bsf_eof)
		return 0;
	for (;;) {
		r = next_packet(s);
		if (r <= 0) {
			if (r == 0)
				s->bsf_eof = true;
			return r;
		}
		if (s->out->size > 0)
			break;
		av_packet_unref(s->out);
	}
	if ((size_t)s->out->size > GUEST_STREAM_MAX_PACKET)
		return fail_next(s, -EFBIG, "a frame of %d bytes (more than %u)", s->out->size,
				 GUEST_STREAM_MAX_PACKET);

	ret->data = s->out->data;
	ret->size = (size_t)s->out->size;
	ret->pts_us = s->out->pts == AV_NOPTS_VALUE
			      ? INT64_MIN
			      : av_rescale_q(s->out->pts, s->time_base, (AVRational){1, 1000000});
	ret->key = s->out->flags & AV_PKT_FLAG_KEY;
	return 1;
}
