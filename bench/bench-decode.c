/* SPDX-License-Identifier: MIT */
/*
 * Decoding benchmark: the same H.264 streams (1080p and 720p, testsrc2 encoded with ffmpeg's
 * libx264 into a temporary folder when the benchmark starts) decoded
 *   (a) by bare libavcodec into its own buffers (parser + send/receive, the baseline),
 *   (b) through codec.h into caller-provided memfd pictures, YUV420 (decoded in place),
 *   (c) the same with NV12 pictures (luma in place, chroma interleaved at output),
 * in the same run, repetitions interleaved with the order rotated, median frames per second.
 * Both sides run libavcodec with the same threading (one thread, as codec-avcodec.c does).
 * The machine may be shared: runs are timed by the CPU time of the decoding thread, and the
 * best run and the wall clock are printed beside the median.
 *
 * CROSSBUF_BENCH_REPS (default 9), CROSSBUF_BENCH_FRAMES (default 120) and
 * CROSSBUF_BENCH_HEIGHT (720 or 1080: that size alone) change the run.
 * Exits 77 (skipped) when ffmpeg or its libx264 encoder is missing.
 */
#include "bench-util.h"
#include "codec.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libavcodec/avcodec.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK     (64 * 1024) /* bytes per codec_decode call, as OUTPUT buffers would be */
#define MAX_PICS  32
#define SKIP_EXIT 77

/*
 * The machine is shared: a run is timed by the CPU time of the decoding thread (user and
 * system, page faults included), and by the wall clock for reference.
 */
static double last_wall;

static double
now_s(void)
{
	last_wall = bench_clock_s(CLOCK_MONOTONIC);
	return bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
}

/* CPU seconds since t0 (from now_s); the wall-clock seconds go to last_wall. */
static double
elapsed_s(double t0)
{
	double wall0 = last_wall, t1 = now_s();

	last_wall -= wall0;
	return t1 - t0;
}

/* --- (a) bare libavcodec -------------------------------------------------------------------- */

static int
receive_all(AVCodecContext *ctx, AVFrame *frame, unsigned *frames)
{
	int ret;

	while ((ret = avcodec_receive_frame(ctx, frame)) >= 0) {
		(*frames)++;
		av_frame_unref(frame);
	}
	return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : ret;
}

static AVCodecContext *
bare_open(void)
{
	const AVCodec *dec = avcodec_find_decoder_by_name("h264");
	AVCodecContext *ctx = avcodec_alloc_context3(dec);

	ctx->thread_count = 1;
	ctx->thread_type = FF_THREAD_SLICE;
	if (avcodec_open2(ctx, dec, NULL) < 0) {
		fprintf(stderr, "bench-decode: cannot open the h264 decoder\n");
		exit(1);
	}
	return ctx;
}

/* ctx is kept across runs (drained and flushed after each), so its frame pool is reused. */
static double
run_bare(AVCodecContext *ctx, const uint8_t *data, size_t len, unsigned *ret_frames)
{
	AVCodecParserContext *pc = av_parser_init(AV_CODEC_ID_H264);
	AVPacket *pkt = av_packet_alloc();
	AVFrame *frame = av_frame_alloc();
	unsigned frames = 0;
	double t0, t;

	t0 = now_s();
	for (size_t off = 0; off <= len;) {
		size_t n = MIN((size_t)CHUNK, len - off);
		const uint8_t *in = n ? data + off : NULL;
		int left = (int)n;

		/* n == 0 at the end: flushes the parser's last frame. */
		do {
			uint8_t *out;
			int out_size;
			int used = av_parser_parse2(pc, ctx, &out, &out_size, in, left,
						    AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);

			if (in) {
				in += used;
				left -= used;
			}
			if (out_size > 0) {
				pkt->data = out;
				pkt->size = out_size;
				avcodec_send_packet(ctx, pkt);
				receive_all(ctx, frame, &frames);
			}
		} while (left > 0);
		if (n == 0)
			break;
		off += n;
	}
	avcodec_send_packet(ctx, NULL);
	receive_all(ctx, frame, &frames);
	avcodec_flush_buffers(ctx);
	t = elapsed_s(t0);

	av_frame_free(&frame);
	av_packet_free(&pkt);
	av_parser_close(pc);
	*ret_frames = frames;
	return t;
}

/* --- (b), (c) through codec.h into memfd pictures ------------------------------------------- */

struct bpic {
	int fd;
	uint8_t *map;
	size_t len;
	bool held;
	struct codec_picture p;
};

struct brun {
	uint32_t capture;
	struct codec_stream_info info;
	struct bpic pics[MAX_PICS];
	unsigned npics, frames, errors;
	struct codec *codec; /* kept across runs (drained after each), like bare's context */
};

static void
pool_free(struct brun *r)
{
	for (unsigned i = 0; i < r->npics; i++) {
		munmap(r->pics[i].map, r->pics[i].len);
		close(r->pics[i].fd);
	}
	r->npics = 0;
}

static void
cb_stream_info(void *userdata, const struct codec_stream_info *info)
{
	struct brun *r = userdata;

	/*
	 * The pictures are the guest's CAPTURE buffers: made (and their pages touched, as an
	 * exporter's are) once, at the first stream_info, and kept across the repetitions.
	 */
	if (r->npics > 0 && memcmp(&r->info, info, sizeof(*info)) == 0)
		return;
	r->info = *info;
	pool_free(r);
	r->npics = MIN(info->min_buffers + 2, (uint32_t)MAX_PICS);
	for (unsigned i = 0; i < r->npics; i++) {
		struct bpic *b = &r->pics[i];
		size_t off = 0;

		b->len = 0;
		for (unsigned p = 0; p < info->num_planes; p++)
			b->len += info->plane_sizes[p];
		b->fd = memfd_create("bench-picture", MFD_CLOEXEC);
		if (b->fd < 0 || ftruncate(b->fd, (off_t)b->len) < 0) {
			perror("bench-decode: memfd");
			exit(1);
		}
		b->map = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
		if (b->map == MAP_FAILED) {
			perror("bench-decode: mmap");
			exit(1);
		}
		memset(b->map, 0, b->len);
		b->held = false;
		memset(&b->p, 0, sizeof(b->p));
		b->p.pixelformat = r->capture;
		b->p.num_planes = info->num_planes;
		for (unsigned p = 0; p < info->num_planes; p++) {
			b->p.data[p] = b->map + off;
			b->p.strides[p] = info->strides[p];
			b->p.sizes[p] = info->plane_sizes[p];
			off += info->plane_sizes[p];
		}
	}
}

static int
cb_get_picture(void *userdata, struct codec_picture *ret_picture)
{
	struct brun *r = userdata;

	for (unsigned i = 0; i < r->npics; i++) {
		if (!r->pics[i].held) {
			r->pics[i].held = true;
			*ret_picture = r->pics[i].p;
			return (int)i;
		}
	}
	return -EAGAIN;
}

static void
cb_put_picture(void *userdata, int handle)
{
	struct brun *r = userdata;

	r->pics[handle].held = false;
}

static void
cb_frame_done(void *userdata, int handle, uint64_t timestamp, uint32_t bytesused, bool error)
{
	struct brun *r = userdata;

	r->frames++;
	r->errors += error;
}

static const struct codec_callbacks callbacks = {
	.stream_info = cb_stream_info,
	.get_picture = cb_get_picture,
	.put_picture = cb_put_picture,
	.frame_done = cb_frame_done,
};

static double
run_codec(const uint8_t *data, size_t len, struct brun *r, unsigned *ret_frames,
	  struct codec_stats *ret_stats)
{
	struct codec *codec;
	double t0, t;

	r->frames = r->errors = 0;
	if (!r->codec && codec_new(V4L2_PIX_FMT_H264, r->capture, &callbacks, r, &r->codec) < 0) {
		fprintf(stderr, "bench-decode: codec_new failed\n");
		exit(1);
	}
	codec = r->codec;
	t0 = now_s();
	for (size_t off = 0; off < len; off += CHUNK) {
		if (codec_decode(codec, data + off, MIN((size_t)CHUNK, len - off), off) < 0) {
			fprintf(stderr, "bench-decode: codec_decode failed\n");
			exit(1);
		}
	}
	codec_drain(codec);
	t = elapsed_s(t0);
	codec_get_stats(codec, ret_stats);
	if (r->errors)
		fprintf(stderr, "bench-decode: %u frames with errors\n", r->errors);
	*ret_frames = r->frames;
	return t;
}

/* --- Streams and the run -------------------------------------------------------------------- */

static void
bench_size(const char *dir, unsigned width, unsigned height, unsigned nframes, unsigned reps)
{
	g_autofree char *path = bench_make_stream(dir, width, height, nframes);
	g_autofree char *data = NULL;
	gsize len;
	g_autofree double *fa = g_new(double, reps), *fb = g_new(double, reps),
			  *fc = g_new(double, reps);
	g_autofree double *wa = g_new(double, reps), *wb = g_new(double, reps),
			  *wc = g_new(double, reps);
	struct codec_stats sb = {0}, sc = {0};
	AVCodecContext *bare = bare_open();
	struct brun rb = {.capture = V4L2_PIX_FMT_YUV420}, rc = {.capture = V4L2_PIX_FMT_NV12};
	unsigned frames_a = 0, frames_b = 0, frames_c = 0;
	const uint8_t *bytes;

	if (!path) {
		fprintf(stderr, "bench-decode: ffmpeg with libx264 is needed, skipping\n");
		exit(SKIP_EXIT);
	}
	if (!g_file_get_contents(path, &data, &len, NULL)) {
		fprintf(stderr, "bench-decode: cannot read %s\n", path);
		exit(1);
	}
	g_unlink(path);
	bytes = (const uint8_t *)data;

	/* One warm-up of each, then interleaved repetitions. */
	run_bare(bare, bytes, len, &frames_a);
	run_codec(bytes, len, &rb, &frames_b, &sb);
	run_codec(bytes, len, &rc, &frames_c, &sc);
	/* Each repetition starts with another variant, so that no order favours one. */
	for (unsigned i = 0; i < reps; i++) {
		for (unsigned k = 0; k < 3; k++) {
			switch ((i + k) % 3) {
			case 0:
				fa[i] = frames_a / run_bare(bare, bytes, len, &frames_a);
				wa[i] = frames_a / last_wall;
				break;
			case 1:
				fb[i] = frames_b / run_codec(bytes, len, &rb, &frames_b, &sb);
				wb[i] = frames_b / last_wall;
				break;
			case 2:
				fc[i] = frames_c / run_codec(bytes, len, &rc, &frames_c, &sc);
				wc[i] = frames_c / last_wall;
				break;
			}
		}
	}
	for (struct brun *r = &rb; r; r = r == &rb ? &rc : NULL) {
		codec_free(r->codec);
		pool_free(r);
	}
	avcodec_free_context(&bare);
	if (frames_a != nframes || frames_b != nframes || frames_c != nframes) {
		fprintf(stderr, "bench-decode: frames decoded %u/%u/%u, expected %u\n", frames_a,
			frames_b, frames_c, nframes);
		exit(1);
	}
	double ma = bench_median(fa, reps), mb = bench_median(fb, reps),
	       mc = bench_median(fc, reps);
	/* The best runs: bench_median() sorted the columns. */
	double ba = fa[reps - 1], bb = fb[reps - 1], bc = fc[reps - 1];
	double wma = bench_median(wa, reps), wmb = bench_median(wb, reps),
	       wmc = bench_median(wc, reps);

	printf("h264 %ux%u, %u frames (%zu bytes), %u repetitions interleaved (order rotated)\n",
	       width, height, nframes, (size_t)len, reps);
	printf("  frames per second          CPU median   CPU best  wall median  copied/frame\n");
	printf("  (a) bare libavcodec         %9.1f  %9.1f    %9.1f\n", ma, ba, wma);
	printf("  (b) codec.h YUV420 memfd    %9.1f  %9.1f    %9.1f  %9llu\n", mb, bb, wmb,
	       (unsigned long long)(sb.bytes_copied / MAX(sb.frames_decoded, 1)));
	printf("  (c) codec.h NV12 memfd      %9.1f  %9.1f    %9.1f  %9llu\n", mc, bc, wmc,
	       (unsigned long long)(sc.bytes_copied / MAX(sc.frames_decoded, 1)));
	printf("  ratio (b)/(a)               %9.3f  %9.3f    %9.3f   (goal >= 0.97, copied 0)\n",
	       mb / ma, bb / ba, wmb / wma);
	printf("  ratio (c)/(a)               %9.3f  %9.3f    %9.3f   (chroma interleave)\n",
	       mc / ma, bc / ba, wmc / wma);
	printf("  frames copied / decoded, all runs: (b) %llu/%llu, (c) %llu/%llu\n",
	       (unsigned long long)sb.frames_copied, (unsigned long long)sb.frames_decoded,
	       (unsigned long long)sc.frames_copied, (unsigned long long)sc.frames_decoded);
}

int
main(void)
{
	unsigned reps = bench_env_uint("CROSSBUF_BENCH_REPS", 9, 100000);
	unsigned frames = bench_env_uint("CROSSBUF_BENCH_FRAMES", 120, 100000);
	/* 720 or 1080: that size alone. */
	unsigned only = bench_env_uint("CROSSBUF_BENCH_HEIGHT", 0, 100000);
	g_autofree char *dir = g_dir_make_tmp("crossbuf-bench-decode-XXXXXX", NULL);

	if (!dir) {
		fprintf(stderr, "bench-decode: no temporary folder\n");
		return 1;
	}
	if (only != 720)
		bench_size(dir, 1920, 1080, frames, reps);
	if (only != 1080)
		bench_size(dir, 1280, 720, frames, reps);
	g_rmdir(dir);
	return 0;
}
