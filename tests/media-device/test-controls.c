/* SPDX-License-Identifier: MIT */
/*
 * The decoder's V4L2 controls through the whole device and the user-space driver library,
 * with the fake codec: enumeration, types and flags, the errors (with error_idx) of the
 * control ioctls, and the counters of crossbuf-media-controls.h after decoding, while
 * decoding and across codecs. test-streams.c checks the counters on real streams.
 */
#include "crossbuf-media-controls.h"
#include "decoder.h"
#include "harness.h"
#include "macro.h"

#include <errno.h>
#include <string.h>

#define W 64
#define H 48

/* Every control of the decoder, in id order: the class control first, as in Linux. */
static const uint32_t all_ids[] = {
	V4L2_CID_USER_CLASS,        V4L2_CID_MIN_BUFFERS_FOR_CAPTURE, CROSSBUF_CID_FRAMES_DECODED,
	CROSSBUF_CID_FRAMES_COPIED, CROSSBUF_CID_BYTES_COPIED,        CROSSBUF_CID_OBJECT_LOOKUPS,
	CROSSBUF_CID_FRAMES_ERROR,
};

enum { N_COUNTERS = 5 };
static const uint32_t counter_ids[N_COUNTERS] = {
	CROSSBUF_CID_FRAMES_DECODED, CROSSBUF_CID_FRAMES_COPIED, CROSSBUF_CID_BYTES_COPIED,
	CROSSBUF_CID_OBJECT_LOOKUPS, CROSSBUF_CID_FRAMES_ERROR,
};
enum { FRAMES_DECODED, FRAMES_COPIED, BYTES_COPIED, OBJECT_LOOKUPS, FRAMES_ERROR };

/* Runs an extended-control ioctl and returns its result; *ret_idx gets error_idx. */
static int
ext_ctrls(struct vmdrv_session *s, unsigned long request, uint32_t which,
	  struct v4l2_ext_control *ctrls, uint32_t count, uint32_t *ret_idx)
{
	struct v4l2_ext_controls c = {
		.which = which, .count = count, .error_idx = 0xdead, .controls = ctrls};
	int r = vmdrv_ioctl(s, request, &c);

	*ret_idx = c.error_idx;
	return r;
}

/* The five counters in one G_EXT_CTRLS (one instant). */
static void
read_counters(struct vmdrv_session *s, uint32_t which, int64_t v[N_COUNTERS])
{
	struct v4l2_ext_control ec[N_COUNTERS];
	uint32_t idx;

	memset(ec, 0, sizeof(ec));
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		ec[i].id = counter_ids[i];
		ec[i].value64 = -1;
	}
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, which, ec, N_COUNTERS, &idx), ==, 0);
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		g_assert_cmpuint(ec[i].id, ==, counter_ids[i]);
		g_assert_cmpuint(ec[i].size, ==, 0);
		g_assert_cmpint(ec[i].value64, >=, 0);
		v[i] = ec[i].value64;
	}
}

/* The counters equal the device's own statistics (decoder_stats). */
static void
check_counters_match_stats(struct harness *h, struct vmdrv_session *s)
{
	struct decoder_stats st;
	int64_t v[N_COUNTERS];

	read_counters(s, V4L2_CTRL_WHICH_CUR_VAL, v);
	g_assert_cmpint(media_device_get_session_stats(h->dev, vmdrv_session_id(s), &st), ==, 0);
	g_assert_cmpint(v[FRAMES_DECODED], ==, (int64_t)st.codec_frames_decoded);
	g_assert_cmpint(v[FRAMES_COPIED], ==, (int64_t)st.codec_frames_copied);
	g_assert_cmpint(v[BYTES_COPIED], ==, (int64_t)(st.codec_bytes_copied + st.bytes_bounced));
	g_assert_cmpint(v[OBJECT_LOOKUPS], ==, (int64_t)st.object_lookups);
	g_assert_cmpint(v[FRAMES_ERROR], ==, (int64_t)st.frames_error);
}

static void
test_error_idx(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_ext_control ec[3] = {{.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE},
					 {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE},
					 {.id = V4L2_CID_MIN_BUFFERS_FOR_OUTPUT}};
	uint32_t idx;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);

	/* An unknown control fails validation: count for G and S, its index for TRY. */
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, 0, ec, 3, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, 3);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, 3, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, 3);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, 0, ec, 3, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, 2);

	/* A read-only control: EACCES, at count for S and at the control for TRY. */
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, 2, &idx), ==, -EACCES);
	g_assert_cmpuint(idx, ==, 2);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, V4L2_CTRL_CLASS_USER, ec, 2, &idx), ==,
			-EACCES);
	g_assert_cmpuint(idx, ==, 0);

	/* Default values can be read, not set; other classes are not the decoder's. */
	ec[0].value = -1;
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, V4L2_CTRL_WHICH_DEF_VAL, ec, 1, &idx), ==,
			0);
	g_assert_cmpint(ec[0].value, >=, 1);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, V4L2_CTRL_WHICH_DEF_VAL, ec, 1, &idx), ==,
			-EINVAL);
	g_assert_cmpuint(idx, ==, 1);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, V4L2_CTRL_CLASS_CODEC, ec, 1, &idx), ==,
			-EINVAL);
	g_assert_cmpuint(idx, ==, 1);

	/* No control at all: nothing to refuse. */
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, 0, ec, 0, &idx), ==, 0);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, 0, ec, 0, &idx), ==, 0);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, 0, &idx), ==, 0);

	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_enumerate(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_queryctrl q = {.id = V4L2_CTRL_FLAG_NEXT_CTRL};
	struct v4l2_query_ext_ctrl qe = {.id = V4L2_CTRL_FLAG_NEXT_CTRL};

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);

	/* QUERYCTRL: every control in id order, then EINVAL. */
	for (size_t i = 0; i < G_N_ELEMENTS(all_ids); i++) {
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, 0);
		g_assert_cmpuint(q.id, ==, all_ids[i]);
		g_assert_cmpuint(strnlen((const char *)q.name, sizeof(q.name)), <, sizeof(q.name));
		g_assert_cmpuint(strlen((const char *)q.name), >, 0);
		if (i == 0) {
			/* The class control: neither readable nor writable, no range. */
			g_assert_cmpuint(q.type, ==, V4L2_CTRL_TYPE_CTRL_CLASS);
			g_assert_cmpuint(q.flags, ==,
					 V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_WRITE_ONLY);
			g_assert_cmpstr((const char *)q.name, ==, "User Controls");
			g_assert_cmpint(q.minimum, ==, 0);
			g_assert_cmpint(q.maximum, ==, 0);
			g_assert_cmpint(q.step, ==, 0);
			q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
			continue;
		}
		g_assert_cmpuint(q.flags, ==, V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_VOLATILE);
		if (i == 1) {
			g_assert_cmpuint(q.type, ==, V4L2_CTRL_TYPE_INTEGER);
			g_assert_cmpint(q.minimum, ==, 1);
			g_assert_cmpint(q.maximum, ==, DECODER_MAX_BUFFERS);
		} else {
			/* A 64-bit control's range does not fit: zero, as Linux answers. */
			g_assert_cmpuint(q.type, ==, V4L2_CTRL_TYPE_INTEGER64);
			g_assert_cmpint(q.minimum, ==, 0);
			g_assert_cmpint(q.maximum, ==, 0);
			g_assert_cmpint(q.step, ==, 0);
			g_assert_cmpint(q.default_value, ==, 0);
		}
		q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, -EINVAL);

	/* QUERY_EXT_CTRL enumerates the same. */
	for (size_t i = 0; i < G_N_ELEMENTS(all_ids); i++) {
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERY_EXT_CTRL, &qe), ==, 0);
		g_assert_cmpuint(qe.id, ==, all_ids[i]);
		qe.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERY_EXT_CTRL, &qe), ==, -EINVAL);

	/* From inside the range, enumeration goes on from there. */
	q = (struct v4l2_queryctrl){.id = CROSSBUF_CID_BYTES_COPIED | V4L2_CTRL_FLAG_NEXT_CTRL};
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, 0);
	g_assert_cmpuint(q.id, ==, CROSSBUF_CID_OBJECT_LOOKUPS);

	/* The rest of crossbuf's range, and the id before it, are no controls. */
	for (uint32_t id = CROSSBUF_CID_FRAMES_ERROR + 1; id < CROSSBUF_CID_BASE + 16; id++) {
		q = (struct v4l2_queryctrl){.id = id};
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, -EINVAL);
	}
	q = (struct v4l2_queryctrl){.id = CROSSBUF_CID_BASE - 1};
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, -EINVAL);

	vmdrv_close(s);
	harness_fini(&h);
}

/*
 * What Linux's control framework does beyond the controls themselves: the class control, the
 * enumeration flags (NEXT_COMPOUND alone finds only compound controls: none here) and the
 * flag bits of the id.
 */
static void
test_class_and_flags(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_query_ext_ctrl qe = {.id = V4L2_CID_USER_CLASS};
	struct v4l2_queryctrl q = {.id = V4L2_CTRL_FLAG_NEXT_COMPOUND};
	struct v4l2_control c = {.id = V4L2_CID_USER_CLASS};
	struct v4l2_ext_control ec[2] = {{.id = CROSSBUF_CID_FRAMES_DECODED, .value64 = -7},
					 {.id = V4L2_CID_USER_CLASS, .value = -7}};
	uint32_t idx;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERY_EXT_CTRL, &qe), ==, 0);
	g_assert_cmpuint(qe.type, ==, V4L2_CTRL_TYPE_CTRL_CLASS);
	g_assert_cmpstr(qe.name, ==, "User Controls");
	g_assert_cmpuint(qe.flags, ==, V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_WRITE_ONLY);
	g_assert_cmpuint(qe.elem_size, ==, sizeof(int32_t));
	g_assert_cmpuint(qe.elems, ==, 1);
	g_assert_cmpuint(qe.step, ==, 0);

	/* NEXT_COMPOUND alone: there is no compound control. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, -EINVAL);
	qe = (struct v4l2_query_ext_ctrl){.id = V4L2_CID_USER_CLASS | V4L2_CTRL_FLAG_NEXT_COMPOUND};
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERY_EXT_CTRL, &qe), ==, -EINVAL);
	/* Both flags: every control, the same walk as NEXT_CTRL. */
	q.id = V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
	for (size_t i = 0; i < G_N_ELEMENTS(all_ids); i++) {
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, 0);
		g_assert_cmpuint(q.id, ==, all_ids[i]);
		q.id |= V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND;
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, -EINVAL);
	/* The id's two other flag bits are not part of it either. */
	q = (struct v4l2_queryctrl){.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE | 0x30000000};
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERYCTRL, &q), ==, 0);
	g_assert_cmpuint(q.id, ==, V4L2_CID_MIN_BUFFERS_FOR_CAPTURE);

	/* The class control can be neither read nor written. */
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_CTRL, &c), ==, -EACCES);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_CTRL, &c), ==, -EACCES);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, 0, ec, 2, &idx), ==, -EACCES);
	g_assert_cmpuint(idx, ==, 2);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, V4L2_CTRL_WHICH_DEF_VAL, ec, 2, &idx), ==,
			-EACCES);
	g_assert_cmpuint(idx, ==, 2);
	g_assert_cmpint(ec[0].value64, ==, -7); /* no control was read */
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, 0, &ec[1], 1, &idx), ==, -EACCES);
	g_assert_cmpuint(idx, ==, 0);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, &ec[1], 1, &idx), ==, -EACCES);
	g_assert_cmpuint(idx, ==, 1);
	g_assert_cmpint(ec[1].value, ==, -7);

	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_query_ext(void)
{
	struct harness h;
	struct vmdrv_session *s;
	static const char *const names[N_COUNTERS] = {"Frames Decoded", "Frames Copied",
						      "Bytes Copied", "Registry Lookups",
						      "Frames with Errors"};

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		struct v4l2_query_ext_ctrl qe;

		memset(&qe, 0xff, sizeof(qe));
		qe.id = counter_ids[i];
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERY_EXT_CTRL, &qe), ==, 0);
		g_assert_cmpuint(qe.id, ==, counter_ids[i]);
		g_assert_cmpuint(qe.type, ==, V4L2_CTRL_TYPE_INTEGER64);
		g_assert_cmpstr(qe.name, ==, names[i]);
		g_assert_cmpint(qe.minimum, ==, 0);
		g_assert_cmpint(qe.maximum, ==, INT64_MAX);
		g_assert_cmpuint(qe.step, ==, 1);
		g_assert_cmpint(qe.default_value, ==, 0);
		g_assert_cmpuint(qe.flags, ==, V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_VOLATILE);
		g_assert_cmpuint(qe.elem_size, ==, sizeof(int64_t));
		g_assert_cmpuint(qe.elems, ==, 1);
		g_assert_cmpuint(qe.nr_of_dims, ==, 0);
		for (unsigned k = 0; k < G_N_ELEMENTS(qe.dims); k++)
			g_assert_cmpuint(qe.dims[k], ==, 0);
		for (unsigned k = 0; k < G_N_ELEMENTS(qe.reserved); k++)
			g_assert_cmpuint(qe.reserved[k], ==, 0);
	}
	{
		struct v4l2_query_ext_ctrl qe = {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_QUERY_EXT_CTRL, &qe), ==, 0);
		g_assert_cmpuint(qe.type, ==, V4L2_CTRL_TYPE_INTEGER);
		g_assert_cmpuint(qe.elem_size, ==, sizeof(int32_t));
	}
	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_g_s_ctrl(void)
{
	struct harness h;
	struct vmdrv_session *s;
	int64_t v[N_COUNTERS];

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	/* 64-bit controls only go through the extended ioctls: G_CTRL and S_CTRL are EINVAL. */
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		struct v4l2_control c = {.id = counter_ids[i], .value = 5};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_CTRL, &c), ==, -EINVAL);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_CTRL, &c), ==, -EINVAL);
	}
	/* A new session counts nothing; the defaults are zero. */
	read_counters(s, V4L2_CTRL_WHICH_CUR_VAL, v);
	for (unsigned i = 0; i < N_COUNTERS; i++)
		g_assert_cmpint(v[i], ==, 0);
	read_counters(s, V4L2_CTRL_WHICH_DEF_VAL, v);
	for (unsigned i = 0; i < N_COUNTERS; i++)
		g_assert_cmpint(v[i], ==, 0);
	read_counters(s, V4L2_CTRL_CLASS_USER, v);
	/* 32- and 64-bit controls in one call. */
	{
		struct v4l2_ext_control ec[2] = {{.id = CROSSBUF_CID_FRAMES_DECODED, .value64 = -1},
						 {.id = V4L2_CID_MIN_BUFFERS_FOR_CAPTURE}};
		uint32_t idx;

		g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, 0, ec, 2, &idx), ==, 0);
		g_assert_cmpint(ec[0].value64, ==, 0);
		g_assert_cmpint(ec[1].value, ==, 1);
	}
	vmdrv_close(s);
	harness_fini(&h);
}

static void
test_read_only(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_ext_control ec[N_COUNTERS + 1];
	uint32_t idx;

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	memset(ec, 0, sizeof(ec));
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		ec[i].id = counter_ids[i];
		ec[i].value64 = 1;
	}
	/* Each alone, and all together: EACCES, at count for S and at 0 for TRY. */
	for (unsigned i = 0; i < N_COUNTERS; i++) {
		g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, &ec[i], 1, &idx), ==, -EACCES);
		g_assert_cmpuint(idx, ==, 1);
		g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, 0, &ec[i], 1, &idx), ==,
				-EACCES);
		g_assert_cmpuint(idx, ==, 0);
	}
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, N_COUNTERS, &idx), ==, -EACCES);
	g_assert_cmpuint(idx, ==, N_COUNTERS);
	g_assert_cmpint(
		ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, V4L2_CTRL_CLASS_USER, ec, N_COUNTERS, &idx), ==,
		-EACCES);
	g_assert_cmpuint(idx, ==, 0);
	/* An unknown id among them is found first (EINVAL). */
	ec[N_COUNTERS].id = CROSSBUF_CID_BASE + 15;
	g_assert_cmpint(ext_ctrls(s, VIDIOC_S_EXT_CTRLS, 0, ec, N_COUNTERS + 1, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, N_COUNTERS + 1);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_TRY_EXT_CTRLS, 0, ec, N_COUNTERS + 1, &idx), ==,
			-EINVAL);
	g_assert_cmpuint(idx, ==, N_COUNTERS);
	g_assert_cmpint(ext_ctrls(s, VIDIOC_G_EXT_CTRLS, 0, ec, N_COUNTERS + 1, &idx), ==, -EINVAL);
	g_assert_cmpuint(idx, ==, N_COUNTERS + 1);
	/* Nothing was written. */
	for (unsigned i = 0; i < N_COUNTERS; i++)
		g_assert_cmpint(ec[i].value64, ==, 1);
	vmdrv_close(s);
	harness_fini(&h);
}

/* Drains the stream: every CAPTURE buffer up to the LAST one, requeued. */
static void
drain(struct vmdrv_session *s, struct stream_cap *c, unsigned *frames)
{
	struct v4l2_decoder_cmd dc = {.cmd = V4L2_DEC_CMD_STOP};
	struct v4l2_buffer b;
	struct v4l2_plane p[3];

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_DECODER_CMD, &dc), ==, 0);
	for (;;) {
		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		if (b.flags & V4L2_BUF_FLAG_LAST)
			break;
		(*frames)++;
		cap_queue(s, c, b.index);
	}
}

/*
 * Decodes the frames of OUTPUT buffers 1.. (frames[i] frames in buffer i + 1, flags[i]) on a
 * started stream, reading the counters after every CAPTURE buffer: they never decrease and
 * already count every frame returned.
 */
static void
decode_checking(struct harness *h, struct vmdrv_session *s, struct stream_out *o,
		struct stream_cap *c, const unsigned *frames, const uint8_t *flags, unsigned n,
		unsigned *ret_frames, unsigned *ret_errors)
{
	int64_t prev[N_COUNTERS] = {0}, v[N_COUNTERS];
	unsigned total = 0, done = 0, errors = 0;

	for (unsigned i = 0; i < n; i++) {
		uint8_t fills[8];

		g_assert_cmpuint(frames[i], <=, G_N_ELEMENTS(fills));
		for (unsigned k = 0; k < frames[i]; k++)
			fills[k] = (uint8_t)(0x30 + 8 * i + k);
		out_queue_frames(h, s, o, 1 + i, W, H, fills, frames[i], flags[i], 100 * i);
		total += frames[i];
	}
	while (done < total) {
		struct v4l2_buffer b;
		struct v4l2_plane p[3];

		g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
		done++;
		if (b.flags & V4L2_BUF_FLAG_ERROR)
			errors++;
		read_counters(s, V4L2_CTRL_WHICH_CUR_VAL, v);
		for (unsigned k = 0; k < N_COUNTERS; k++)
			g_assert_cmpint(v[k], >=, prev[k]);
		/* Every frame returned so far is counted (the fake codec loses none). */
		g_assert_cmpint(v[FRAMES_DECODED], >=, (int64_t)(*ret_frames + done));
		g_assert_cmpint(v[FRAMES_ERROR], >=, (int64_t)(*ret_errors + errors));
		memcpy(prev, v, sizeof(prev));
		cap_queue(s, c, b.index);
	}
	for (unsigned i = 0; i < n; i++)
		out_dequeue(s);
	*ret_frames += done;
	*ret_errors += errors;
}

/* OUTPUT buffer 0 holds the first frame; SOURCE_CHANGE; CAPTURE MMAP set up; frame out. */
static void
start(struct harness *h, struct vmdrv_session *s, struct stream_out *o, struct stream_cap *c,
      uint32_t coded, uint32_t pixfmt, unsigned *frames)
{
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	struct v4l2_buffer b;
	struct v4l2_plane p[3];
	uint8_t fill = 0x10;

	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	out_setup_coded(s, coded, 4, o);
	out_queue_frames(h, s, o, 0, W, H, &fill, 1, 0, 1000);
	wait_source_change(s);
	cap_setup_mmap(s, pixfmt, 3, c);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	(*frames)++;
	cap_queue(s, c, b.index);
	g_assert_cmpuint(out_dequeue(s), ==, 0);
}

static void
test_counters_fake_codec(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	/* Three good frames, a corrupt one, two good ones. */
	const unsigned frames[3] = {3, 1, 2};
	const uint8_t flags[3] = {0, FAKE_FLAG_CORRUPT, 0};
	unsigned done = 0, errors = 0;
	int64_t v[N_COUNTERS];

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start(&h, s, &o, &c, V4L2_PIX_FMT_H264, V4L2_PIX_FMT_NV12, &done);
	decode_checking(&h, s, &o, &c, frames, flags, 3, &done, &errors);
	drain(s, &c, &done);
	g_assert_cmpuint(done, ==, 7);
	g_assert_cmpuint(errors, ==, 1);
	read_counters(s, V4L2_CTRL_WHICH_CUR_VAL, v);
	g_assert_cmpint(v[FRAMES_DECODED], ==, 7);
	g_assert_cmpint(v[FRAMES_ERROR], ==, 1);
	/* The fake codec decodes in place; MMAP buffers need no bounce; no registry. */
	g_assert_cmpint(v[FRAMES_COPIED], ==, 0);
	g_assert_cmpint(v[BYTES_COPIED], ==, 0);
	g_assert_cmpint(v[OBJECT_LOOKUPS], ==, 0);
	check_counters_match_stats(&h, s);
	/* Another session counts its own. */
	{
		struct vmdrv_session *other;

		g_assert_cmpint(vmdrv_open(h.drv, &other), ==, 0);
		read_counters(other, V4L2_CTRL_WHICH_CUR_VAL, v);
		for (unsigned i = 0; i < N_COUNTERS; i++)
			g_assert_cmpint(v[i], ==, 0);
		vmdrv_close(other);
	}
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

static void
test_counters_new_codec(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct stream_out o;
	struct stream_cap c;
	const unsigned frames[1] = {2};
	const uint8_t flags[1] = {0};
	unsigned done = 0, errors = 0;
	int otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, ctype = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	int64_t v[N_COUNTERS];

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	start(&h, s, &o, &c, V4L2_PIX_FMT_H264, V4L2_PIX_FMT_NV12, &done);
	decode_checking(&h, s, &o, &c, frames, flags, 1, &done, &errors);
	drain(s, &c, &done);
	g_assert_cmpuint(done, ==, 3);

	/* A new stream in another coded format: the session gets a new codec. */
	{
		struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
						 .memory = V4L2_MEMORY_MMAP};

		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &otype), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMOFF, &ctype), ==, 0);
		rb.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
		g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
		cap_unmap(&h, &c);
		out_unmap(&h, &o);
	}
	start(&h, s, &o, &c, V4L2_PIX_FMT_VP9, V4L2_PIX_FMT_NV12, &done);
	decode_checking(&h, s, &o, &c, frames, flags, 1, &done, &errors);
	drain(s, &c, &done);
	g_assert_cmpuint(done, ==, 6);
	/* The counters go on from the first codec's. */
	read_counters(s, V4L2_CTRL_WHICH_CUR_VAL, v);
	g_assert_cmpint(v[FRAMES_DECODED], ==, 6);
	g_assert_cmpint(v[FRAMES_ERROR], ==, 0);
	check_counters_match_stats(&h, s);
	vmdrv_close(s);
	cap_unmap(&h, &c);
	out_unmap(&h, &o);
	harness_fini(&h);
}

/* SHARED_PAGES CAPTURE: the bounce copies into guest pages are bytes copied. */
static void
test_counters_shared_pages(void)
{
	struct harness h;
	struct vmdrv_session *s;
	struct v4l2_format f = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE};
	struct v4l2_requestbuffers rb = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
					 .memory = V4L2_MEMORY_USERPTR,
					 .count = 2};
	struct v4l2_event_subscription sub = {.type = V4L2_EVENT_SOURCE_CHANGE};
	int otype = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, ctype = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	struct virtio_media_sg_entry osg[2], csg[2];
	struct vmdrv_mem omem[2], cmem[2];
	struct v4l2_plane p[3];
	struct v4l2_buffer b;
	uint32_t size;
	int64_t v[N_COUNTERS];

	harness_init(&h, false, 0);
	g_assert_cmpint(vmdrv_open(h.drv, &s), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_SUBSCRIBE_EVENT, &sub), ==, 0);
	f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_H264;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_S_FMT, &f), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &otype), ==, 0);
	/* One frame in each OUTPUT buffer, in guest pages. */
	for (unsigned i = 0; i < 2; i++) {
		struct fake_frame fr = {.width = W, .height = H, .fill = (uint8_t)(0x50 + i)};
		uint64_t gpa = harness_guest_alloc(&h, 4096, 0);

		memcpy(fr.magic, FAKE_MAGIC, 4);
		memcpy(harness_guest_ptr(&h, gpa), &fr, sizeof(fr));
		osg[i] = (struct virtio_media_sg_entry){.start = gpa, .len = 4096};
		memset(&omem[i], 0, sizeof(omem[i]));
		omem[i].sg[0] = &osg[i];
		omem[i].n_sg[0] = 1;
	}
	memset(p, 0, sizeof(p));
	p[0].length = 4096;
	p[0].bytesused = FAKE_FRAME_SIZE;
	b = (struct v4l2_buffer){.index = 0,
				 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				 .memory = V4L2_MEMORY_USERPTR,
				 .length = 1,
				 .m.planes = p};
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &omem[0]), ==, 0);
	wait_source_change(s);

	/* CAPTURE NV12 (one plane) in guest pages. */
	f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_G_FMT, &f), ==, 0);
	g_assert_cmpuint(f.fmt.pix_mp.pixelformat, ==, V4L2_PIX_FMT_NV12);
	size = f.fmt.pix_mp.plane_fmt[0].sizeimage;
	rb = (struct v4l2_requestbuffers){.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					  .memory = V4L2_MEMORY_USERPTR,
					  .count = 2};
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_REQBUFS, &rb), ==, 0);
	for (unsigned i = 0; i < 2; i++) {
		uint32_t len = ALIGN_UP(size, 4096u);

		csg[i] = (struct virtio_media_sg_entry){.start = harness_guest_alloc(&h, len, 0xee),
							.len = len};
		memset(&cmem[i], 0, sizeof(cmem[i]));
		cmem[i].sg[0] = &csg[i];
		cmem[i].n_sg[0] = 1;
		memset(p, 0, sizeof(p));
		p[0].length = size;
		b = (struct v4l2_buffer){.index = i,
					 .type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
					 .memory = V4L2_MEMORY_USERPTR,
					 .length = 1,
					 .m.planes = p};
		g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &cmem[i]), ==, 0);
	}
	g_assert_cmpint(vmdrv_ioctl(s, VIDIOC_STREAMON, &ctype), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	read_counters(s, V4L2_CTRL_WHICH_CUR_VAL, v);
	g_assert_cmpint(v[FRAMES_DECODED], ==, 1);
	g_assert_cmpint(v[BYTES_COPIED], ==, size);

	/* The second frame. */
	memset(p, 0, sizeof(p));
	p[0].length = 4096;
	p[0].bytesused = FAKE_FRAME_SIZE;
	b = (struct v4l2_buffer){.index = 1,
				 .type = V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
				 .memory = V4L2_MEMORY_USERPTR,
				 .length = 1,
				 .m.planes = p};
	g_assert_cmpint(vmdrv_qbuf_mem(s, &b, &omem[1]), ==, 0);
	g_assert_cmpint(cap_dequeue(s, &b, p), ==, 0);
	read_counters(s, V4L2_CTRL_WHICH_CUR_VAL, v);
	g_assert_cmpint(v[FRAMES_DECODED], ==, 2);
	g_assert_cmpint(v[FRAMES_COPIED], ==, 0);
	g_assert_cmpint(v[BYTES_COPIED], ==, 2 * (int64_t)size);
	g_assert_cmpint(v[OBJECT_LOOKUPS], ==, 0);
	g_assert_cmpint(v[FRAMES_ERROR], ==, 0);
	check_counters_match_stats(&h, s);
	vmdrv_close(s);
	harness_fini(&h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/media-device/controls/error-idx", test_error_idx);
	cb_test_add("/media-device/controls/enumerate", test_enumerate);
	cb_test_add("/media-device/controls/class-and-flags", test_class_and_flags);
	cb_test_add("/media-device/controls/query-ext", test_query_ext);
	cb_test_add("/media-device/controls/g-s-ctrl-64bit", test_g_s_ctrl);
	cb_test_add("/media-device/controls/read-only", test_read_only);
	cb_test_add("/media-device/controls/counters-fake-codec", test_counters_fake_codec);
	cb_test_add("/media-device/controls/counters-new-codec", test_counters_new_codec);
	cb_test_add("/media-device/controls/counters-shared-pages", test_counters_shared_pages);
	return g_test_run();
}
