/* SPDX-License-Identifier: MIT */
/*
 * The media device's benchmarks. The device (media-device/device.h) runs in process with an
 * embedded registry and is driven through the user-space driver library (vmdrv), the way
 * tests/media-device does it: commandq requests go straight to media_device_handle_command(),
 * events straight back to vmdrv_push_event(). CAPTURE buffers are OBJECT buffers: memfds a
 * second registry client exports, which the device resolves by UUID.
 *
 * bench-media (linked with codec-avcodec.c): the same H.264 streams as bench-decode.c
 * (testsrc2, 1080p and 720p, made with ffmpeg's libx264 when the benchmark starts) decoded
 *   (a) by bare libavcodec into its own buffers (the baseline),
 *   (b) through the device into YUV420 object buffers (decoded in place),
 *   (c) through the device into NV12 object buffers (chroma interleaved: a counted copy),
 * in the same run, repetitions interleaved with the order rotated, median frames per second
 * by the CPU time of the whole process (the device decodes on its worker thread), with the
 * wall clock beside it, and the bytes the device counted as copied. The device is fed as a
 * V4L2 client with poll() feeds a decoder: 16 OUTPUT buffers of 64 KiB (bare libavcodec gets
 * the same 64 KiB pieces) and MIN_BUFFERS_FOR_CAPTURE + 8 CAPTURE buffers, all queued again
 * as soon as they are dequeued, everything ready dequeued per wake-up. Per frame it prints
 * the CPU time of the calling thread (the client) and of the others (the worker), how often
 * each slept or was preempted and their page faults, so a run says where its time went. With
 * two CPUs, each repetition decodes on one of them for every variant (bare libavcodec's
 * thread, the device's workers; the client on the other one), alternating between
 * repetitions: the vCPUs of a shared VM need not be equally fast. The goal's figure is the
 * median of the back-to-back (b)/(a) pairs.
 *
 * bench-media-request (linked with the tests' fake codec): the cost of one OUTPUT + CAPTURE
 * QBUF -> DQBUF round trip through the device with (almost) no decoding, against baselines
 * measured in the same run: a no-op ioctl through the same driver and device, a condition
 * variable ping-pong between two threads (the hand-off to the worker that every decoded
 * frame needs) and the fake codec called directly.
 *
 * CROSSBUF_BENCH_REPS (default 15 for bench-media, 9 for bench-media-request),
 * CROSSBUF_BENCH_FRAMES (default 120),
 * CROSSBUF_BENCH_HEIGHT (720 or 1080: that size alone), CROSSBUF_BENCH_OUTPUT_BUFFERS
 * (default 16, at most 32), CROSSBUF_BENCH_CAPTURE_EXTRA (CAPTURE buffers beyond the
 * minimum, default 8) and CROSSBUF_BENCH_ITERS (round trips per timed batch, default 2000)
 * change the run. bench-media exits 77 (skipped) when ffmpeg or its libx264 encoder is
 * missing.
 */
#include "bench-util.h"
#include "codec.h"
#include "crossbuf/crossbuf.h"
#include "decoder.h"
#include "device.h"
#include "macro.h"
#include "vmdrv.h"

#ifdef BENCH_MEDIA_REQUEST
#include "fake-codec.h"

#include <pthread.h>
#else
#include <glib.h>
#include <glib/gstdio.h>
#include <libavcodec/avcodec.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE  (64u << 20)
#define MAX_MAPS  64
#define MAX_OUT   32 /* DECODER_MAX_BUFFERS, the most a queue holds */
#define MAX_CAP   32
#define SKIP_EXIT 77

static void _printf_(1, 2) die(const char *fmt, ...);

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench-media: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

#define CHECK(expr)                                                                                \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		if (r_ < 0)                                                                        \
			die("%s:%d: %s: %s", __FILE__, __LINE__, #expr, strerror(-r_));            \
	} while (0)

/*
 * A run's process CPU time, wall time and CPU time of the calling thread, in seconds, and its
 * context switches: how often the calling thread waited (voluntary switches), how often the
 * other threads (the device's workers) did, and how often any was preempted (involuntary).
 */
struct span {
	double cpu, wall, thread;
	long caller_waits, worker_waits, preempted;
	long caller_faults, worker_faults; /* page faults (minor and major) */
};

static struct span
span_start(void)
{
	struct rusage self, thread;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_THREAD, &thread);
	return (struct span){.cpu = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID),
			     .wall = bench_clock_s(CLOCK_MONOTONIC),
			     .thread = bench_clock_s(CLOCK_THREAD_CPUTIME_ID),
			     .caller_waits = thread.ru_nvcsw,
			     .worker_waits = self.ru_nvcsw - thread.ru_nvcsw,
			     .preempted = self.ru_nivcsw,
			     .caller_faults = thread.ru_minflt + thread.ru_majflt,
			     .worker_faults = self.ru_minflt + self.ru_majflt - thread.ru_minflt -
					      thread.ru_majflt};
}

static struct span
span_end(struct span t0)
{
	struct span t1 = span_start();

	return (struct span){.cpu = t1.cpu - t0.cpu,
			     .wall = t1.wall - t0.wall,
			     .thread = t1.thread - t0.thread,
			     .caller_waits = t1.caller_waits - t0.caller_waits,
			     .worker_waits = t1.worker_waits - t0.worker_waits,
			     .preempted = t1.preempted - t0.preempted,
			     .caller_faults = t1.caller_faults - t0.caller_faults,
			     .worker_faults = t1.worker_faults - t0.worker_faults};
}

/* --- The device in process ------------------------------------------------------------- */

struct host {
	struct media_device *dev;
	struct vmdrv *drv;
	struct crossbuf_registry *registry;
	struct crossbuf_client *dev_client, *exporter;
	uint8_t *shm; /* shared memory region 0, reserved PROT_NONE */
	uint64_t shm_next;
	struct {
		uint64_t addr, len;
	} maps[MAX_MAPS];
};

static int
host_submit(void *userdata, const struct cb_request *req, size_t *ret_used)
{
	struct host *h = userdata;

	*ret_used = media_device_handle_command(h->dev, req);
	return 0;
}

static void
host_send_event(void *userdata, const void *event, size_t len)
{
	struct host *h = userdata;

	vmdrv_push_event(h->drv, event, len);
}

static int
host_shm_map(void *userdata, int fd, uint64_t len, bool writable, uint64_t *ret_addr)
{
	struct host *h = userdata;
	uint64_t mlen = ALIGN_UP(len, 4096u);

	if (h->shm_next + mlen > SHM_SIZE)
		return -ENOSPC;
	for (unsigned i = 0; i < MAX_MAPS; i++) {
		if (h->maps[i].len)
			continue;
		if (mmap(h->shm + h->shm_next, mlen, PROT_READ | (writable ? PROT_WRITE : 0),
			 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
			return -errno;
		h->maps[i].addr = h->shm_next;
		h->maps[i].len = mlen;
		*ret_addr = h->shm_next;
		h->shm_next += mlen;
		return 0;
	}
	return -ENOSPC;
}

static int
host_shm_unmap(void *userdata, uint64_t addr)
{
	struct host *h = userdata;

	for (unsigned i = 0; i < MAX_MAPS; i++) {
		if (h->maps[i].len == 0 || h->maps[i].addr != addr)
			continue;
		if (mmap(h->shm + addr, h->maps[i].len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
			return -errno;
		h->maps[i].len = 0;
		return 0;
	}
	return -EINVAL;
}

static const struct media_device_ops host_ops = {
	.send_event = host_send_event,
	.shm_map = host_shm_map,
	.shm_unmap = host_shm_unmap,
};

static void
host_init(struct host *h)
{
	struct media_device_params p = {.ops = &host_ops, .userdata = h};
	struct virtio_media_config cfg;
	struct vmdrv_transport t;

	memset(h, 0, sizeof(*h));
	h->shm = mmap(NULL, SHM_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->shm == MAP_FAILED)
		die("cannot reserve the shared memory region");
	CHECK(crossbuf_registry_new(&h->registry));
	CHECK(crossbuf_client_new(&h->dev_client));
	CHECK(crossbuf_client_set_device_kind(h->dev_client, CROSSBUF_DEVICE_MEDIA));
	CHECK(crossbuf_client_connect_embedded(h->dev_client, h->registry));
	CHECK(crossbuf_client_new(&h->exporter));
	CHECK(crossbuf_client_set_device_kind(h->exporter, CROSSBUF_DEVICE_TOOL));
	CHECK(crossbuf_client_connect_embedded(h->exporter, h->registry));
	p.client = h->dev_client;
	CHECK(media_device_new(&p, &h->dev));
	media_device_get_config(h->dev, &cfg);
	t = (struct vmdrv_transport){
		.submit = host_submit, .userdata = h, .shm_base = h->shm, .shm_size = SHM_SIZE};
	CHECK(vmdrv_new(&t, &cfg, &h->drv));
}

static void
host_fini(struct host *h)
{
	vmdrv_free(h->drv);
	media_device_free(h->dev);
	crossbuf_client_unref(h->dev_client);
	crossbuf_client_unref(h->exporter);
	crossbuf_registry_unref(h->registry);
	munmap(h->shm, SHM_SIZE);
}

/* A sealed memfd of len bytes, its pages touched (as an exporter's would be), mapped. */
static int
picture_memfd(size_t len, uint8_t **ret_map)
{
	int fd = memfd_create("bench-capture", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t *map;

	if (fd < 0 || ftruncate(fd, (off_t)len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		die("memfd: %s", strerror(errno));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(map, 0, len);
	*ret_map = map;
	return fd;
}

/* One decoding session: OUTPUT MMAP buffers, CAPTURE object buffers. */
struct dsess {
	uint32_t coded, pixfmt;
	struct vmdrv_session *s;
	unsigned n_out;
	uint32_t out_size;
	uint8_t *out_ptr[MAX_OUT];
	uint64_t out_addr[MAX_OUT];
	bool out_free[MAX_OUT];
	unsigned n_cap, cap_extra;
	struct v4l2_pix_format_mplane fmt;
	int cap_fd[MAX_CAP];
	uint8_t *cap_map[MAX_CAP];
	size_t cap_len;
	uint8_t uuid[MAX_CAP][16];
	bool streaming;
};

/* Steps 1-2 of dev-decoder.rst: the coded format, the picture format, OUTPUT streaming. */
static void
dsess_open(struct host *h, struct dsess *d, uint32_t coded, uint32_t pixfmt, unsigned n_out,
	   uint32_t out_size)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .count = n_out};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	int type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;

	memset(d, 0, sizeof(*d));
	d->coded = coded;
	d->pixfmt = pixfmt;
	CHECK(vmdrv_open(h->drv, &d->s));
	f.fmt.pix_mp.pixelformat = coded;
	f.fmt.pix_mp.plane_fmt[0].sizeimage = out_size;
	CHECK(vmdrv_ioctl(d->s, VIDIOC_S_FMT, &f));
	d->out_size = MIN(out_size, f.fmt.pix_mp.plane_fmt[0].sizeimage);
	if (pixfmt != V4L2_PIX_FMT_NV12) {
		/* The planar picture format is chosen after the coded one, before streaming. */
		struct v4l2_format cf = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};

		cf.fmt.pix_mp.pixelformat = pixfmt;
		CHECK(vmdrv_ioctl(d->s, VIDIOC_S_FMT, &cf));
		if (cf.fmt.pix_mp.pixelformat != pixfmt)
			die("the device did not take CAPTURE format %.4s", (const char *)&pixfmt);
	}
	CHECK(vmdrv_ioctl(d->s, VIDIOC_SUBSCRIBE_EVENT, &sub));
	sub.type = V4L2_EVENT_EOS;
	CHECK(vmdrv_ioctl(d->s, VIDIOC_SUBSCRIBE_EVENT, &sub));
	CHECK(vmdrv_ioctl(d->s, VIDIOC_REQBUFS, &rb));
	d->n_out = MIN(rb.count, (unsigned)ARRAY_SIZE(d->out_ptr));
	for (unsigned i = 0; i < d->n_out; i++) {
		struct v4l2_plane p[1];
		struct v4l2_buffer b = {.index = i,
					.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					.memory = V4L2_MEMORY_MMAP,
					.length = 1,
					.m.planes = p};
		void *ptr;
		uint64_t len;

		CHECK(vmdrv_ioctl(d->s, VIDIOC_QUERYBUF, &b));
		CHECK(vmdrv_mmap(d->s, p[0].m.mem_offset, true, &ptr, &d->out_addr[i], &len));
		d->out_ptr[i] = ptr;
		d->out_free[i] = true;
	}
	CHECK(vmdrv_ioctl(d->s, VIDIOC_STREAMON, &type));
}

static void
dsess_cap_queue(struct dsess *d, unsigned index)
{
	struct v4l2_plane p[1] = {{0}};
	struct v4l2_buffer b = {.index = index,
				.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
				.memory = V4L2_MEMORY_DMABUF,
				.length = 1,
				.m.planes = p};
	struct vmdrv_mem mem = {.uuids = (const uint8_t(*)[16])d->uuid[index]};

	CHECK(vmdrv_qbuf_mem(d->s, &b, &mem));
}

/*
 * Step 3 of dev-decoder.rst after the source change: the CAPTURE format, MIN_BUFFERS, and
 * extra + MIN_BUFFERS single-buffer object buffers, exported, queued, streaming.
 */
static void
dsess_capture_setup(struct host *h, struct dsess *d, unsigned extra)
{
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE};
	struct v4l2_control ctl = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_DMABUF};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;

	CHECK(vmdrv_ioctl(d->s, VIDIOC_G_FMT, &f));
	f.fmt.pix_mp.pixelformat = d->pixfmt;
	CHECK(vmdrv_ioctl(d->s, VIDIOC_S_FMT, &f));
	if (f.fmt.pix_mp.pixelformat != d->pixfmt || f.fmt.pix_mp.num_planes != 1)
		die("unexpected CAPTURE format");
	d->fmt = f.fmt.pix_mp;
	CHECK(vmdrv_ioctl(d->s, VIDIOC_G_CTRL, &ctl));
	rb.count = MIN((unsigned)ctl.value + extra, (unsigned)MAX_CAP);
	CHECK(vmdrv_ioctl(d->s, VIDIOC_REQBUFS, &rb));
	d->n_cap = MIN(rb.count, (unsigned)MAX_CAP);
	d->cap_len = ALIGN_UP(d->fmt.plane_fmt[0].sizeimage, 4096u);
	for (unsigned i = 0; i < d->n_cap; i++) {
		/* An opaque blob: the CAPTURE format gives the layout. */
		struct crossbuf_buffer_info info = {.device_kind = CROSSBUF_DEVICE_TOOL};

		d->cap_fd[i] = picture_memfd(d->cap_len, &d->cap_map[i]);
		CHECK(crossbuf_client_export(h->exporter, d->cap_fd[i], &info, d->uuid[i]));
		dsess_cap_queue(d, i);
	}
	CHECK(vmdrv_ioctl(d->s, VIDIOC_STREAMON, &type));
	d->streaming = true;
}

static void
dsess_close(struct host *h, struct dsess *d)
{
	for (unsigned i = 0; i < d->n_out; i++)
		CHECK(vmdrv_munmap(h->drv, d->out_addr[i]));
	vmdrv_close(d->s);
	for (unsigned i = 0; i < d->n_cap; i++) {
		CHECK(crossbuf_client_remove(h->exporter, d->uuid[i]));
		munmap(d->cap_map[i], d->cap_len);
		close(d->cap_fd[i]);
	}
	d->n_cap = 0;
}

static void
dsess_stats(struct host *h, struct dsess *d, struct decoder_stats *ret)
{
	CHECK(media_device_get_session_stats(h->dev, vmdrv_session_id(d->s), ret));
}

#ifndef BENCH_MEDIA_REQUEST

/* --- (a) bare libavcodec ------------------------------------------------------------------ */

static void
receive_all(AVCodecContext *ctx, AVFrame *frame, unsigned *frames)
{
	while (avcodec_receive_frame(ctx, frame) >= 0) {
		(*frames)++;
		av_frame_unref(frame);
	}
}

static AVCodecContext *
bare_open(void)
{
	const AVCodec *dec = avcodec_find_decoder_by_name("h264");
	AVCodecContext *ctx = dec ? avcodec_alloc_context3(dec) : NULL;

	if (ctx == NULL)
		die("no h264 decoder");
	/* One thread, as codec-avcodec.c runs it. */
	ctx->thread_count = 1;
	ctx->thread_type = FF_THREAD_SLICE;
	if (avcodec_open2(ctx, dec, NULL) < 0)
		die("cannot open the h264 decoder");
	return ctx;
}

/*
 * Parser + send/receive over chunk-byte pieces (the OUTPUT buffers' size). ctx is kept across
 * runs, drained and flushed after each, so its frame pool is reused.
 */
static struct span
run_bare(AVCodecContext *ctx, const uint8_t *data, size_t len, size_t chunk, unsigned *ret_frames)
{
	AVCodecParserContext *pc = av_parser_init(AV_CODEC_ID_H264);
	AVPacket *pkt = av_packet_alloc();
	AVFrame *frame = av_frame_alloc();
	unsigned frames = 0;
	struct span t0 = span_start(), t;

	for (size_t off = 0; off <= len;) {
		size_t n = MIN(chunk, len - off);
		const uint8_t *in = n ? data + off : NULL;
		int left = (int)n;

		/* n == 0 at the end flushes the parser's last frame. */
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
	t = span_end(t0);

	av_frame_free(&frame);
	av_packet_free(&pkt);
	av_parser_close(pc);
	*ret_frames = frames;
	return t;
}

/* --- (b), (c) through the device into object buffers ------------------------------------- */

/* Fills every free OUTPUT buffer with the next out_size bytes of the stream and queues it. */
static void
feed_output(struct dsess *d, const uint8_t *data, size_t len, size_t *off, unsigned *seq)
{
	for (unsigned i = 0; i < d->n_out && *off < len; i++) {
		struct v4l2_plane op[1] = {{0}};
		struct v4l2_buffer ob = {.index = i,
					 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .length = 1,
					 .m.planes = op};
		size_t n = MIN((size_t)d->out_size, len - *off);

		if (!d->out_free[i])
			continue;
		memcpy(d->out_ptr[i], data + *off, n);
		op[0].bytesused = (uint32_t)n;
		ob.timestamp.tv_usec = (suseconds_t)(*seq)++;
		CHECK(vmdrv_ioctl(d->s, VIDIOC_QBUF, &ob));
		d->out_free[i] = false;
		*off += n;
	}
}

/*
 * The stream, in OUTPUT buffers of out_size bytes, then DECODER_CMD(STOP) and every frame
 * until the LAST buffer. The client keeps the device fed the way a V4L2 client with poll()
 * does: all its OUTPUT buffers (n_out of them, well ahead of the decoder) and all its CAPTURE
 * buffers are queued; each wake-up from vmdrv_poll() dequeues everything that is ready and
 * queues it again at once (a client that displays the pictures would hold some). The first
 * run handles the source change; later runs restart the drained decoder with
 * DECODER_CMD(START), as a client looping over a file does, and the CAPTURE buffers stay set
 * up. *ret_starved counts the wake-ups that found no OUTPUT buffer queued while the stream
 * had bytes left: the times the worker could have waited for input.
 */
static struct span
run_device(struct host *h, struct dsess *d, const uint8_t *data, size_t len, unsigned *ret_frames,
	   unsigned *ret_starved)
{
	struct v4l2_decoder_cmd start = {.cmd = V4L2_DEC_CMD_START},
				stop = {.cmd = V4L2_DEC_CMD_STOP};
	size_t off = 0;
	unsigned frames = 0, seq = 0, starved = 0;
	bool draining = false, last = false;
	struct span t0;
	int r;

	if (d->streaming) {
		while ((r = vmdrv_ioctl(d->s, VIDIOC_DECODER_CMD, &start)) == -EBUSY)
			usleep(100);
		CHECK(r);
	}
	vmdrv_set_timeout(d->s, 0); /* DQBUF and DQEVENT never wait: vmdrv_poll() does */
	t0 = span_start();
	feed_output(d, data, len, &off, &seq);
	while (!last) {
		struct v4l2_plane p[1];
		struct v4l2_buffer b;
		struct v4l2_event ev;
		unsigned queued = 0;
		int ready;

		if (off == len && !draining) {
			CHECK(vmdrv_ioctl(d->s, VIDIOC_DECODER_CMD, &stop));
			draining = true;
		}
		ready = vmdrv_poll(d->s, 10000);
		if (ready == 0 || (ready & VMDRV_POLL_ERROR))
			die("the device stalled or failed (poll %d)", ready);
		if (ready & VMDRV_POLL_OUTPUT) {
			for (;;) {
				b = (struct v4l2_buffer){.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
							 .length = 1,
							 .m.planes = p};
				if (vmdrv_ioctl(d->s, VIDIOC_DQBUF, &b) < 0)
					break;
				d->out_free[b.index] = true;
			}
			for (unsigned i = 0; i < d->n_out; i++)
				queued += !d->out_free[i];
			starved += queued == 0 && off < len;
			feed_output(d, data, len, &off, &seq);
		}
		if (ready & VMDRV_POLL_EVENT) {
			while (vmdrv_ioctl(d->s, VIDIOC_DQEVENT, &ev) == 0) {
				if (ev.type != V4L2_EVENT_SOURCE_CHANGE)
					continue;
				if (d->streaming)
					die("unexpected source change");
				dsess_capture_setup(h, d, d->cap_extra);
			}
		}
		while ((ready & VMDRV_POLL_CAPTURE) && d->streaming && !last) {
			b = (struct v4l2_buffer){.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
						 .length = 1,
						 .m.planes = p};
			if (vmdrv_ioctl(d->s, VIDIOC_DQBUF, &b) < 0)
				break;
			if (p[0].bytesused > 0 && !(b.flags & V4L2_BUF_FLAG_ERROR))
				frames++;
			last = b.flags & V4L2_BUF_FLAG_LAST;
			dsess_cap_queue(d, b.index);
		}
	}
	/* Every OUTPUT buffer came back before the LAST CAPTURE buffer: take the stragglers. */
	for (;;) {
		struct v4l2_plane p[1];
		struct v4l2_buffer b = {
			.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, .length = 1, .m.planes = p};

		if (vmdrv_ioctl(d->s, VIDIOC_DQBUF, &b) < 0)
			break;
		d->out_free[b.index] = true;
	}
	t0 = span_end(t0);
	for (unsigned i = 0; i < d->n_out; i++) {
		if (!d->out_free[i])
			die("OUTPUT buffer %u still queued after the LAST buffer", i);
	}
	*ret_frames = frames;
	*ret_starved = starved;
	return t0;
}

/* --- Streams and the run ------------------------------------------------------------------ */

#define CHUNK (64 * 1024) /* bytes per OUTPUT buffer, as bench-decode.c feeds codec.h */

struct variant {
	const char *name;
	double *cpu, *wall;                              /* fps per repetition */
	double *caller_waits, *worker_waits, *preempted; /* per frame, per repetition */
	double *caller_faults, *worker_faults;           /* per frame, per repetition */
	double *caller_us, *worker_us; /* CPU microseconds per frame, per repetition */
	unsigned frames, starved;
	struct dsess d; /* (b), (c) */
};

/*
 * Where the next variant runs. With two CPUs (cpus[0], cpus[1]) the thread that decodes (the
 * calling thread for (a), the device's workers for (b) and (c)) goes on decode_cpu and the
 * client on the other one, so that each repetition's variants decode on the same CPU; the
 * repetitions alternate the two. With one CPU nothing is pinned.
 */
static void
place_variant(unsigned k, const int *cpus, unsigned ncpus, int decode_cpu)
{
	int client_cpu = decode_cpu == cpus[0] ? cpus[1] : cpus[0];

	if (ncpus < 2)
		return;
	if (k == 0) {
		CHECK(bench_pin_self(decode_cpu));
		return;
	}
	CHECK(bench_pin_self(client_cpu));
	if (bench_pin_others(decode_cpu) <= 0)
		die("no worker thread to pin");
}

static void
bench_size(const char *dir, unsigned width, unsigned height, unsigned nframes, unsigned reps,
	   unsigned n_out, unsigned cap_extra, const int *cpus, unsigned ncpus)
{
	g_autofree char *path = bench_make_stream(dir, width, height, nframes);
	g_autofree char *data = NULL;
	gsize len;
	struct variant v[3] = {{.name = "(a) bare libavcodec"},
			       {.name = "(b) device, YUV420 objects"},
			       {.name = "(c) device, NV12 objects"}};
	struct decoder_stats st[3] = {{0}};
	AVCodecContext *bare = bare_open();
	struct host h;
	const uint8_t *bytes;
	double med[3], best[3], wmed[3], waits[3][5], us[3][2];
	g_autofree double *pair = g_new(double, reps);
	double pair_med;
	/* (a) and the pairs by the CPU that decoded: index 0 for cpus[0], 1 for cpus[1]. */
	g_autofree double *by_cpu_mem = g_new(double, 4 * reps);
	double *by_cpu[2][2] = {{by_cpu_mem, by_cpu_mem + reps},
				{by_cpu_mem + 2 * reps, by_cpu_mem + 3 * reps}};
	unsigned n_by_cpu[2] = {0, 0};
	unsigned n_cap;

	if (!path) {
		fprintf(stderr, "bench-media: ffmpeg with libx264 is needed, skipping\n");
		exit(SKIP_EXIT);
	}
	if (!g_file_get_contents(path, &data, &len, NULL))
		die("cannot read %s", path);
	g_unlink(path);
	bytes = (const uint8_t *)data;

	host_init(&h);
	for (unsigned k = 1; k < 3; k++) {
		dsess_open(&h, &v[k].d, V4L2_PIX_FMT_H264,
			   k == 1 ? V4L2_PIX_FMT_YUV420 : V4L2_PIX_FMT_NV12, n_out, CHUNK);
		if (v[k].d.out_size != CHUNK)
			die("OUTPUT buffers of %u bytes, wanted %u", v[k].d.out_size, CHUNK);
		if (v[k].d.n_out != n_out)
			die("%u OUTPUT buffers, wanted %u", v[k].d.n_out, n_out);
		v[k].d.cap_extra = cap_extra;
	}
	for (unsigned k = 0; k < 3; k++) {
		v[k].cpu = g_new(double, reps);
		v[k].wall = g_new(double, reps);
		v[k].caller_waits = g_new(double, reps);
		v[k].worker_waits = g_new(double, reps);
		v[k].preempted = g_new(double, reps);
		v[k].caller_faults = g_new(double, reps);
		v[k].worker_faults = g_new(double, reps);
		v[k].caller_us = g_new(double, reps);
		v[k].worker_us = g_new(double, reps);
	}

	/*
	 * One warm-up of each (it also sets the CAPTURE object buffers up, once: they exist
	 * before decoding, as a guest's do), then repetitions, each starting with another
	 * variant so that no order favours one.
	 */
	for (int i = -1; i < (int)reps; i++) {
		unsigned c = (unsigned)(i + 2) % 2; /* the warm-up and odd repetitions on cpus[1] */

		for (unsigned k0 = 0; k0 < 3; k0++) {
			unsigned k = (unsigned)(i + 3 + (int)k0) % 3;
			unsigned starved = 0;
			struct span t;

			place_variant(k, cpus, ncpus, cpus[ncpus > 1 ? c : 0]);
			if (k == 0)
				t = run_bare(bare, bytes, len, CHUNK, &v[k].frames);
			else
				t = run_device(&h, &v[k].d, bytes, len, &v[k].frames, &starved);
			if (v[k].frames != nframes)
				die("%s: %u frames decoded, expected %u", v[k].name, v[k].frames,
				    nframes);
			if (i >= 0) {
				v[k].cpu[i] = v[k].frames / t.cpu;
				v[k].wall[i] = v[k].frames / t.wall;
				v[k].caller_waits[i] = (double)t.caller_waits / v[k].frames;
				v[k].worker_waits[i] = (double)t.worker_waits / v[k].frames;
				v[k].preempted[i] = (double)t.preempted / v[k].frames;
				v[k].caller_faults[i] = (double)t.caller_faults / v[k].frames;
				v[k].worker_faults[i] = (double)t.worker_faults / v[k].frames;
				v[k].caller_us[i] = t.thread * 1e6 / v[k].frames;
				v[k].worker_us[i] = (t.cpu - t.thread) * 1e6 / v[k].frames;
				v[k].starved += starved;
			}
		}
		if (i >= 0 && ncpus > 1) {
			by_cpu[c][0][n_by_cpu[c]] = v[0].cpu[i];
			by_cpu[c][1][n_by_cpu[c]++] = v[1].cpu[i] / v[0].cpu[i];
		}
	}
	if (ncpus > 1)
		CHECK(bench_unpin_all(cpus, ncpus));
	n_cap = v[1].d.n_cap;
	for (unsigned k = 1; k < 3; k++) {
		dsess_stats(&h, &v[k].d, &st[k]);
		dsess_close(&h, &v[k].d);
	}
	host_fini(&h);
	avcodec_free_context(&bare);

	printf("h264 %ux%u, %u frames (%zu bytes), %u repetitions interleaved (order rotated),\n"
	       "%u OUTPUT buffers of %u bytes, CAPTURE: %u object buffers (memfds in an embedded\n"
	       "registry), all kept queued\n",
	       width, height, nframes, (size_t)len, reps, n_out, CHUNK, n_cap);
	/*
	 * Each repetition's pair, in run order, before the medians sort the columns: (a) and (b)
	 * ran back to back, so a pair shares the load of its moment, and their median is less
	 * swayed by other jobs than the ratio of the medians.
	 */
	printf("  (b)/(a) by CPU, each repetition:");
	for (unsigned i = 0; i < reps; i++) {
		pair[i] = v[1].cpu[i] / v[0].cpu[i];
		printf(" %.3f", pair[i]);
	}
	pair_med = bench_median(pair, reps);
	printf("  (median %.3f)\n", pair_med);
	/*
	 * The two CPUs apart: a gap between them in (a) is the machine (the same code on another
	 * CPU), which pinning keeps out of the ratios.
	 */
	if (ncpus > 1)
		printf("  decoding pinned, CPUs alternating: (a) on CPU %d %.1f fps, on CPU %d %.1f fps;"
		       " (b)/(a) pairs %.3f and %.3f\n",
		       cpus[0], bench_median(by_cpu[0][0], n_by_cpu[0]), cpus[1],
		       bench_median(by_cpu[1][0], n_by_cpu[1]),
		       bench_median(by_cpu[0][1], n_by_cpu[0]),
		       bench_median(by_cpu[1][1], n_by_cpu[1]));
	else
		printf("  one CPU: client and worker share it, nothing pinned\n");
	for (unsigned k = 0; k < 3; k++) {
		med[k] = bench_median(v[k].cpu, reps);
		best[k] = v[k].cpu[reps - 1]; /* sorted by bench_median() */
		wmed[k] = bench_median(v[k].wall, reps);
		waits[k][0] = bench_median(v[k].caller_waits, reps);
		waits[k][1] = bench_median(v[k].worker_waits, reps);
		waits[k][2] = bench_median(v[k].preempted, reps);
		waits[k][3] = bench_median(v[k].caller_faults, reps);
		waits[k][4] = bench_median(v[k].worker_faults, reps);
		us[k][0] = bench_median(v[k].caller_us, reps);
		us[k][1] = bench_median(v[k].worker_us, reps);
	}
	printf("  frames per second              CPU median   CPU best  wall median  copied/frame\n");
	for (unsigned k = 0; k < 3; k++) {
		printf("  %-28s  %9.1f  %9.1f    %9.1f", v[k].name, med[k], best[k], wmed[k]);
		if (k == 0)
			printf("  (own buffers)\n");
		else
			printf("  %9llu\n",
			       (unsigned long long)(st[k].codec_bytes_copied /
						    MAX(st[k].codec_frames_decoded, 1)));
	}
	printf("  ratio (b)/(a)                  %9.3f  %9.3f    %9.3f\n", med[1] / med[0],
	       best[1] / best[0], wmed[1] / wmed[0]);
	printf("  ratio (c)/(a)                  %9.3f  %9.3f    %9.3f  (chroma interleave)\n",
	       med[2] / med[0], best[2] / best[0], wmed[2] / wmed[0]);
	/*
	 * The figure the goal is about: the median of the pairs, each of which decoded on one
	 * CPU at one moment. The ratio of the medians above mixes the CPUs when they differ.
	 */
	printf("  (b)/(a), median of the back-to-back pairs: %.3f  (goal >= 0.97, copied %llu)\n",
	       pair_med,
	       (unsigned long long)(st[1].codec_bytes_copied / MAX(st[1].codec_frames_decoded, 1)));
	for (unsigned k = 1; k < 3; k++)
		printf("  %s, all runs: %llu frames decoded, %llu copied, %llu bytes copied, "
		       "%llu registry lookups, %llu errors\n",
		       v[k].name, (unsigned long long)st[k].codec_frames_decoded,
		       (unsigned long long)st[k].codec_frames_copied,
		       (unsigned long long)st[k].codec_bytes_copied,
		       (unsigned long long)st[k].object_lookups,
		       (unsigned long long)st[k].frames_error);
	/*
	 * Where the time goes: the calling thread (bare libavcodec decodes there; for the device
	 * it is the client) and the other threads (the device's worker), and how often each
	 * slept: a worker that waits for input or for a CAPTURE buffer shows here. Page faults
	 * are expensive in a VM: memory a thread's allocator gives back and takes again shows.
	 */
	printf("  per frame (medians)            caller CPU us  worker CPU us  caller waits"
	       "  worker waits  preempted  caller faults  worker faults\n");
	for (unsigned k = 0; k < 3; k++)
		printf("  %-28s  %13.1f  %13.1f  %12.2f  %12.2f  %9.2f  %13.2f  %13.2f\n",
		       v[k].name, us[k][0], us[k][1], waits[k][0], waits[k][1], waits[k][2],
		       waits[k][3], waits[k][4]);
	printf("  wake-ups that found no OUTPUT buffer queued with input left: (b) %u, (c) %u\n",
	       v[1].starved, v[2].starved);
	for (unsigned k = 0; k < 3; k++) {
		g_free(v[k].cpu);
		g_free(v[k].wall);
		g_free(v[k].caller_waits);
		g_free(v[k].worker_waits);
		g_free(v[k].preempted);
		g_free(v[k].caller_faults);
		g_free(v[k].worker_faults);
		g_free(v[k].caller_us);
		g_free(v[k].worker_us);
	}
}

int
main(void)
{
	unsigned reps = bench_env_uint("CROSSBUF_BENCH_REPS", 15, 1000000);
	unsigned frames = bench_env_uint("CROSSBUF_BENCH_FRAMES", 120, 1000000);
	/* 720 or 1080: that size alone. */
	unsigned only = bench_env_uint("CROSSBUF_BENCH_HEIGHT", 0, 1000000);
	g_autofree char *dir = g_dir_make_tmp("crossbuf-bench-media-XXXXXX", NULL);
	/*
	 * The client's buffers: OUTPUT buffers ahead of the decoder (16 x 64 KiB: 1 MiB, 40
	 * frames of the 1080p stream, 80 of the 720p one), and CAPTURE buffers beyond the
	 * decoder's MIN_BUFFERS_FOR_CAPTURE (the frames it holds as references), so that it
	 * always finds a free one while the client is still being woken.
	 */
	unsigned n_out = bench_env_uint("CROSSBUF_BENCH_OUTPUT_BUFFERS", 16, MAX_OUT + 1);
	unsigned cap_extra = bench_env_uint("CROSSBUF_BENCH_CAPTURE_EXTRA", 8, MAX_CAP);
	/* The first two CPUs the process may use (taskset chooses them), or one. */
	int cpus[2];
	unsigned ncpus = bench_cpus(cpus, 2);

	if (!dir)
		die("no temporary folder");
	if (ncpus == 0)
		die("sched_getaffinity: %s", strerror(errno));
	if (only != 720)
		bench_size(dir, 1920, 1080, frames, reps, n_out, cap_extra, cpus, ncpus);
	if (only != 1080)
		bench_size(dir, 1280, 720, frames, reps, n_out, cap_extra, cpus, ncpus);
	g_rmdir(dir);
	return 0;
}

#else /* BENCH_MEDIA_REQUEST */

/* --- Per-request overhead, with the fake codec ------------------------------------------- */

#define REQ_W 16 /* the fake frame: 16x16, so that painting it costs next to nothing */
#define REQ_H 16

static void
write_record(uint8_t *dst, uint8_t fill)
{
	struct fake_frame f = {.width = REQ_W, .height = REQ_H, .fill = fill};

	memcpy(f.magic, FAKE_MAGIC, 4);
	memcpy(dst, &f, sizeof(f));
}

static void
dq_or_die(struct vmdrv_session *s, uint32_t type, struct v4l2_buffer *b, struct v4l2_plane *p)
{
	*b = (struct v4l2_buffer){.type = type, .length = 1, .m.planes = p};
	CHECK(vmdrv_ioctl(s, VIDIOC_DQBUF, b));
}

/*
 * iters round trips: QBUF(CAPTURE) of the buffer last dequeued, QBUF(OUTPUT) of one frame
 * record, DQBUF(CAPTURE) and DQBUF(OUTPUT), each DQBUF waiting for its event.
 */
static struct span
run_roundtrips(struct dsess *d, unsigned iters, unsigned *cap_index)
{
	struct v4l2_plane p[1];
	struct v4l2_buffer b;
	struct span t0 = span_start();

	for (unsigned i = 0; i < iters; i++) {
		struct v4l2_plane op[1] = {{.bytesused = FAKE_FRAME_SIZE}};
		struct v4l2_buffer ob = {.index = 0,
					 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .length = 1,
					 .m.planes = op};

		dsess_cap_queue(d, *cap_index);
		CHECK(vmdrv_ioctl(d->s, VIDIOC_QBUF, &ob));
		dq_or_die(d->s, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, &b, p);
		if (p[0].bytesused == 0 || (b.flags & V4L2_BUF_FLAG_ERROR))
			die("round trip %u: no picture", i);
		*cap_index = b.index;
		dq_or_die(d->s, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, &b, p);
	}
	return span_end(t0);
}

/* iters no-op ioctls through the same driver and device: G_CTRL(MIN_BUFFERS_FOR_CAPTURE). */
static struct span
run_noop(struct dsess *d, unsigned iters)
{
	struct span t0 = span_start();

	for (unsigned i = 0; i < iters; i++) {
		struct v4l2_control ctl = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};

		CHECK(vmdrv_ioctl(d->s, VIDIOC_G_CTRL, &ctl));
	}
	return span_end(t0);
}

/* A condition variable ping-pong: the main thread wakes a worker and waits to be woken. */
struct pingpong {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long ping, pong;
	bool quit;
	pthread_t thread;
};

static void *
pingpong_thread(void *userdata)
{
	struct pingpong *pp = userdata;

	pthread_mutex_lock(&pp->lock);
	for (;;) {
		while (pp->ping == pp->pong && !pp->quit)
			pthread_cond_wait(&pp->cond, &pp->lock);
		if (pp->quit)
			break;
		pp->pong = pp->ping;
		pthread_cond_broadcast(&pp->cond);
	}
	pthread_mutex_unlock(&pp->lock);
	return NULL;
}

static struct span
run_pingpong(struct pingpong *pp, unsigned iters)
{
	struct span t0 = span_start();

	for (unsigned i = 0; i < iters; i++) {
		pthread_mutex_lock(&pp->lock);
		pp->ping++;
		pthread_cond_broadcast(&pp->cond);
		while (pp->pong != pp->ping)
			pthread_cond_wait(&pp->cond, &pp->lock);
		pthread_mutex_unlock(&pp->lock);
	}
	return span_end(t0);
}

/* The fake codec called directly: what the device's worker does per frame, alone. */
static uint8_t direct_pic[2][64 * 16 * 3 / 2];
static unsigned direct_frames;

static void
direct_stream_info(void *userdata, const struct codec_stream_info *info)
{
	(void)userdata;
	(void)info;
}

static int
direct_get_picture(void *userdata, struct codec_picture *ret)
{
	static unsigned next;
	unsigned i = next++ % 2;
	struct codec_stream_info info;

	(void)userdata;
	fake_codec_layout(V4L2_PIX_FMT_NV12, REQ_W, REQ_H, &info);
	*ret = (struct codec_picture){.pixelformat = V4L2_PIX_FMT_NV12, .num_planes = 2};
	ret->data[0] = direct_pic[i];
	ret->data[1] = direct_pic[i] + info.plane_sizes[0];
	for (unsigned k = 0; k < 2; k++) {
		ret->strides[k] = info.strides[k];
		ret->sizes[k] = info.plane_sizes[k];
	}
	return (int)i;
}

static void
direct_put_picture(void *userdata, int handle)
{
	(void)userdata;
	(void)handle;
}

static void
direct_frame_done(void *userdata, int handle, uint64_t ts, uint32_t bytesused, bool error)
{
	(void)userdata;
	(void)handle;
	(void)ts;
	(void)bytesused;
	direct_frames += !error;
}

static const struct codec_callbacks direct_cb = {
	.stream_info = direct_stream_info,
	.get_picture = direct_get_picture,
	.put_picture = direct_put_picture,
	.frame_done = direct_frame_done,
};

static struct span
run_direct(struct codec *codec, const uint8_t *record, unsigned iters)
{
	struct span t0 = span_start();

	for (unsigned i = 0; i < iters; i++)
		CHECK(codec_decode(codec, record, FAKE_FRAME_SIZE, i));
	return span_end(t0);
}

int
main(void)
{
	unsigned reps = bench_env_uint("CROSSBUF_BENCH_REPS", 9, 1000000);
	unsigned iters = bench_env_uint("CROSSBUF_BENCH_ITERS", 2000, 1000000);
	const char *names[4] = {"OUTPUT+CAPTURE QBUF->DQBUF round trip", "no-op ioctl (G_CTRL)",
				"thread hand-off (condvar ping-pong)",
				"fake codec called directly"};
	double *wall[4], *cpu[4], *own[4], wmed[4], cmed[4], omed[4];
	struct decoder_stats st;
	struct pingpong pp = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	uint8_t record[FAKE_FRAME_SIZE];
	struct codec *direct;
	struct v4l2_plane p[1];
	struct v4l2_buffer b;
	struct host h;
	struct dsess d;
	unsigned cap_index;

	for (unsigned k = 0; k < 4; k++) {
		wall[k] = calloc(reps, sizeof(double));
		cpu[k] = calloc(reps, sizeof(double));
		own[k] = calloc(reps, sizeof(double));
		if (!wall[k] || !cpu[k] || !own[k])
			die("out of memory");
	}
	if (pthread_create(&pp.thread, NULL, pingpong_thread, &pp) != 0)
		die("pthread_create failed");
	write_record(record, 0x40);
	CHECK(codec_new(V4L2_PIX_FMT_H264, V4L2_PIX_FMT_NV12, &direct_cb, NULL, &direct));

	/*
	 * One OUTPUT buffer holding one 16x16 frame record (written once: QBUF never changes
	 * it), CAPTURE object buffers set up after the first frame's source change.
	 */
	host_init(&h);
	dsess_open(&h, &d, V4L2_PIX_FMT_H264, V4L2_PIX_FMT_NV12, 1, 4096);
	write_record(d.out_ptr[0], 0x40);
	{
		struct v4l2_plane op[1] = {{.bytesused = FAKE_FRAME_SIZE}};
		struct v4l2_buffer ob = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_MMAP,
					 .length = 1,
					 .m.planes = op};
		struct v4l2_event ev;

		CHECK(vmdrv_ioctl(d.s, VIDIOC_QBUF, &ob));
		CHECK(vmdrv_ioctl(d.s, VIDIOC_DQEVENT, &ev));
		if (ev.type != V4L2_EVENT_SOURCE_CHANGE)
			die("no source change");
		dsess_capture_setup(&h, &d, 1);
		dq_or_die(d.s, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, &b, p);
		cap_index = b.index;
		dq_or_die(d.s, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, &b, p);
	}

	for (int i = -1; i < (int)reps; i++) {
		for (unsigned k0 = 0; k0 < 4; k0++) {
			unsigned k = (unsigned)(i + 4 + (int)k0) % 4;
			struct span t = {0};

			switch (k) {
			case 0:
				t = run_roundtrips(&d, iters, &cap_index);
				break;
			case 1:
				t = run_noop(&d, iters);
				break;
			case 2:
				t = run_pingpong(&pp, iters);
				break;
			case 3:
				t = run_direct(direct, record, iters);
				break;
			}
			if (i >= 0) {
				wall[k][i] = t.wall * 1e9 / iters;
				cpu[k][i] = t.cpu * 1e9 / iters;
				own[k][i] = t.thread * 1e9 / iters;
			}
		}
	}
	dsess_stats(&h, &d, &st);
	dsess_close(&h, &d);
	host_fini(&h);
	codec_free(direct);
	pthread_mutex_lock(&pp.lock);
	pp.quit = true;
	pthread_cond_broadcast(&pp.cond);
	pthread_mutex_unlock(&pp.lock);
	pthread_join(pp.thread, NULL);

	for (unsigned k = 0; k < 4; k++) {
		wmed[k] = bench_median(wall[k], reps);
		cmed[k] = bench_median(cpu[k], reps);
		omed[k] = bench_median(own[k], reps);
	}
	printf("per request, fake codec (%ux%u NV12 frames, CAPTURE object buffers), %u x %u\n"
	       "operations, repetitions interleaved (order rotated)\n",
	       REQ_W, REQ_H, reps, iters);
	printf("  ns per operation                          wall median  wall best  CPU median"
	       "  caller CPU\n");
	for (unsigned k = 0; k < 4; k++)
		printf("  %-40s  %9.0f  %9.0f  %9.0f  %9.0f\n", names[k], wmed[k], wall[k][0],
		       cmed[k], omed[k]);
	printf("  round trip / no-op ioctl                  %9.2f  %9.2f  %9.2f\n",
	       wmed[0] / wmed[1], wall[0][0] / wall[1][0], cmed[0] / cmed[1]);
	printf("  round trip - (2 ioctls + hand-off + codec)%9.0f  %9.0f  %9.0f  ns (the rest)\n",
	       wmed[0] - 2 * wmed[1] - wmed[2] - wmed[3],
	       wall[0][0] - 2 * wall[1][0] - wall[2][0] - wall[3][0],
	       cmed[0] - 2 * cmed[1] - cmed[2] - cmed[3]);
	printf("  device counters: %llu frames done, %llu errors, %llu registry lookups\n",
	       (unsigned long long)st.frames_done, (unsigned long long)st.frames_error,
	       (unsigned long long)st.object_lookups);
	if (direct_frames != (reps + 1) * iters)
		die("the fake codec finished %u frames, expected %u", direct_frames,
		    (reps + 1) * iters);
	for (unsigned k = 0; k < 4; k++) {
		free(wall[k]);
		free(cpu[k]);
		free(own[k]);
	}
	return 0;
}

#endif /* BENCH_MEDIA_REQUEST */
