/* SPDX-License-Identifier: MIT */
/*
 * The libavcodec backend through codec.h alone, on the tests/data streams (made by
 * tests/data/make-streams.sh): pictures are mmap'ed memfds from a pool in the test, every
 * frame's visible rectangle is hashed tightly packed and compared with ffmpeg's framemd5.
 *
 * The pool checks the picture contract: a picture is never handed out while the codec holds
 * it, and is poisoned the moment it is put back, so a codec that still read it as a reference
 * would decode the next frames wrong.
 */
#include "codec.h"
#include "testutil.h"

#include <errno.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef V4L2_PIX_FMT_AV1 /* Linux 6.5 */
#define V4L2_PIX_FMT_AV1 v4l2_fourcc('A', 'V', '0', '1')
#endif

#define MAX_PICS 32
#define POISON   0xa5

struct tpic {
	int fd;
	uint8_t *map;
	size_t len;
	struct codec_picture p;
	bool held;   /* between get_picture and put_picture */
	bool done;   /* frame_done seen since get_picture */
	bool access; /* between begin_access and end_access */
	bool stale;  /* layout of an older stream_info: freed once put back */
	struct run *run;
};

struct run {
	uint32_t coded, capture;
	struct codec *codec;
	struct tpic pics[MAX_PICS];
	struct codec_stream_info info;
	unsigned n_info;
	unsigned done_at_info[4]; /* frames done when each stream_info came */
	/* Options. */
	bool small_stride;     /* pictures tightly packed: too small to decode into */
	uint32_t extra_stride; /* pictures with rows this much wider than reported */
	unsigned eagain_every; /* every Nth get_picture fails with -EAGAIN */
	unsigned cancel_after; /* get_picture fails with -ECANCELED after N calls */
	bool no_md5;           /* corrupt input: only the contract is checked */
	/* Expected frames (framemd5) and what came out. */
	char **md5;
	unsigned n_md5, next;
	unsigned get_calls, n_done, n_lost, n_error, mismatches, held;
	unsigned max_held, accesses;
	GArray *out_ts;
};

static void
begin_access(void *data)
{
	struct tpic *t = data;

	g_assert_false(t->access);
	t->access = true;
	t->run->accesses++;
}

static void
end_access(void *data)
{
	struct tpic *t = data;

	g_assert_true(t->access);
	t->access = false;
}

static void
tpic_free(struct tpic *t)
{
	if (t->map)
		munmap(t->map, t->len);
	if (t->fd >= 0)
		close(t->fd);
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}

/*
 * A picture for the current stream info: its layout, packed rows if small_stride, or rows
 * extra_stride wider.
 */
static void
tpic_alloc(struct run *r, struct tpic *t)
{
	const struct codec_stream_info *in = &r->info;
	uint32_t w = in->visible.left + in->visible.width, h = in->visible.top + in->visible.height;
	size_t off = 0, sizes[CODEC_MAX_PLANES];
	uint32_t strides[CODEC_MAX_PLANES];
	unsigned n = r->capture == V4L2_PIX_FMT_NV12 ? 2 : 3;

	for (unsigned i = 0; i < n; i++) {
		if (r->small_stride) {
			uint32_t cw = (w + 1) / 2, rows = i == 0 ? h : (h + 1) / 2;

			strides[i] = i == 0 ? w : (n == 2 ? 2 * cw : cw);
			sizes[i] = (size_t)strides[i] * rows;
		} else {
			strides[i] = in->strides[i] + r->extra_stride;
			sizes[i] = (size_t)in->plane_sizes[i] / in->strides[i] * strides[i];
		}
	}
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < n; i++)
		off += (sizes[i] + 63) / 64 * 64;
	t->len = off;
	t->fd = cb_test_memfd("picture", NULL, t->len);
	g_assert_cmpint(t->fd, >=, 0);
	t->map = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	g_assert_true(t->map != MAP_FAILED);
	memset(t->map, POISON, t->len);
	t->p.pixelformat = r->capture;
	t->p.num_planes = n;
	off = 0;
	for (unsigned i = 0; i < n; i++) {
		t->p.data[i] = t->map + off;
		t->p.strides[i] = strides[i];
		t->p.sizes[i] = sizes[i];
		off += (sizes[i] + 63) / 64 * 64;
	}
	t->p.begin_access = begin_access;
	t->p.end_access = end_access;
	t->p.access_data = t;
	t->run = r;
}

static void
cb_stream_info(void *userdata, const struct codec_stream_info *info)
{
	struct run *r = userdata;

	g_assert_cmpuint(info->width, >, 0);
	g_assert_cmpuint(info->visible.width, <=, info->width);
	g_assert_cmpuint(info->visible.height, <=, info->height);
	g_assert_cmpuint(info->min_buffers, >=, 2);
	g_assert_cmpuint(info->num_planes, ==, r->capture == V4L2_PIX_FMT_NV12 ? 2 : 3);
	for (unsigned i = 0; i < info->num_planes; i++) {
		g_assert_cmpuint(info->strides[i] % 64, ==, 0);
		g_assert_cmpuint(info->plane_sizes[i], >=, info->strides[i] * (info->height / 2));
	}
	if (r->n_info < G_N_ELEMENTS(r->done_at_info))
		r->done_at_info[r->n_info] = r->n_done;
	r->n_info++;
	r->info = *info;
	for (unsigned i = 0; i < MAX_PICS; i++) {
		if (r->pics[i].map && !r->pics[i].held)
			tpic_free(&r->pics[i]);
		else if (r->pics[i].map)
			r->pics[i].stale = true;
	}
}

static int
cb_get_picture(void *userdata, struct codec_picture *ret_picture)
{
	struct run *r = userdata;
	struct tpic *t = NULL;

	g_assert_cmpuint(r->n_info, >, 0);
	r->get_calls++;
	if (r->cancel_after && r->get_calls > r->cancel_after)
		return -ECANCELED;
	if (r->eagain_every && r->get_calls % r->eagain_every == 0)
		return -EAGAIN;
	/* The most recently put back first: reuse shows up at once. */
	for (unsigned i = 0; i < MAX_PICS && !t; i++) {
		if (r->pics[i].map && !r->pics[i].held && !r->pics[i].stale)
			t = &r->pics[i];
	}
	for (unsigned i = 0; i < MAX_PICS && !t; i++) {
		if (!r->pics[i].map) {
			t = &r->pics[i];
			tpic_alloc(r, t);
		}
	}
	if (!t)
		return -EAGAIN;
	t->held = true;
	t->done = false;
	r->held++;
	r->max_held = MAX(r->max_held, r->held);
	*ret_picture = t->p;
	return (int)(t - r->pics);
}

static void
cb_put_picture(void *userdata, int handle)
{
	struct run *r = userdata;
	struct tpic *t;

	g_assert_cmpint(handle, >=, 0);
	g_assert_cmpint(handle, <, MAX_PICS);
	t = &r->pics[handle];
	g_assert_true(t->held);
	g_assert_false(t->access);
	t->held = false;
	r->held--;
	if (t->stale)
		tpic_free(t);
	else
		memset(t->map, POISON, t->len);
}

static char *
visible_md5(const struct run *r, const struct codec_picture *p)
{
	const struct codec_rect *v = &r->info.visible;
	GChecksum *sum = g_checksum_new(G_CHECKSUM_MD5);
	size_t cl = v->left / 2, ct = v->top / 2, cw = (v->width + 1) / 2, ch = (v->height + 1) / 2;
	char *out;

	for (size_t y = 0; y < v->height; y++)
		g_checksum_update(sum, p->data[0] + (v->top + y) * p->strides[0] + v->left,
				  v->width);
	if (p->pixelformat == V4L2_PIX_FMT_NV12) {
		for (size_t y = 0; y < ch; y++)
			g_checksum_update(sum, p->data[1] + (ct + y) * p->strides[1] + 2 * cl,
					  2 * cw);
	} else {
		for (unsigned i = 1; i < 3; i++) {
			for (size_t y = 0; y < ch; y++)
				g_checksum_update(sum, p->data[i] + (ct + y) * p->strides[i] + cl,
						  cw);
		}
	}
	out = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return out;
}

static void
cb_frame_done(void *userdata, int handle, uint64_t timestamp, uint32_t bytesused, bool error)
{
	struct run *r = userdata;
	unsigned idx = r->next++;

	if (error)
		r->n_error++;
	if (handle < 0) {
		g_assert_true(error);
		r->n_lost++;
		return;
	}
	g_assert_cmpint(handle, <, MAX_PICS);
	struct tpic *t = &r->pics[handle];
	g_assert_true(t->held);
	g_assert_false(t->done);
	g_assert_false(t->access);
	g_assert_cmpuint(bytesused, >, 0);
	t->done = true;
	r->n_done++;
	g_array_append_val(r->out_ts, timestamp);
	if (r->no_md5)
		return;
	g_autofree char *md5 = visible_md5(r, &t->p);
	if (idx >= r->n_md5 || strcmp(md5, r->md5[idx]) != 0) {
		g_test_message("frame %u: md5 %s, expected %s", idx, md5,
			       idx < r->n_md5 ? r->md5[idx] : "(none)");
		r->mismatches++;
	}
}

static const struct codec_callbacks callbacks = {
	.stream_info = cb_stream_info,
	.get_picture = cb_get_picture,
	.put_picture = cb_put_picture,
	.frame_done = cb_frame_done,
};

/* --- Streams -------------------------------------------------------------------------------- */

static GBytes *
read_data(const char *name)
{
	g_autofree char *path = cb_test_data_path(name);
	char *text;
	gsize len;

	g_assert_true(g_file_get_contents(path, &text, &len, NULL));
	return g_bytes_new_take(text, len);
}

/* The md5 column of a framemd5 file. */
static char **
read_md5s(const char *stream, const char *fmt, unsigned *ret_n)
{
	g_autofree char *name = g_strdup_printf("%s.%s.framemd5", stream, fmt);
	g_autoptr(GBytes) data = read_data(name);
	g_autofree char *text = g_strndup(g_bytes_get_data(data, NULL), g_bytes_get_size(data));
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	GPtrArray *out = g_ptr_array_new();

	for (unsigned i = 0; lines[i]; i++) {
		const char *comma = strrchr(lines[i], ',');

		if (lines[i][0] == '#' || !comma)
			continue;
		g_ptr_array_add(out, g_strstrip(g_strdup(comma + 1)));
	}
	*ret_n = out->len;
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

struct unit {
	size_t off, len;
	uint64_t ts;
};

/*
 * Cuts an Annex B stream into access units (the streams have one slice per picture, so an AU
 * ends where parameter sets, SEI or a delimiter follow a slice); timestamps from STREAM.pts.
 */
static GArray *
split_annexb(const char *name, GBytes *data, bool hevc)
{
	const uint8_t *b = g_bytes_get_data(data, NULL);
	size_t len = g_bytes_get_size(data);
	GArray *units = g_array_new(FALSE, TRUE, sizeof(struct unit));
	g_autofree char *pts_name = g_strdup_printf("%s.pts", name);
	g_autoptr(GBytes) pts = read_data(pts_name);
	g_autofree char *pts_text = g_strndup(g_bytes_get_data(pts, NULL), g_bytes_get_size(pts));
	g_auto(GStrv) lines = g_strsplit(pts_text, "\n", -1);
	struct unit first = {0};
	bool have_slice = false;

	/* Whatever precedes the first delimiter (parameter sets) belongs to unit 0. */
	g_array_append_val(units, first);

	for (size_t i = 0; i + 3 < len; i++) {
		if (b[i] || b[i + 1] || b[i + 2] != 1)
			continue;
		uint8_t type = hevc ? (b[i + 3] >> 1) & 0x3f : b[i + 3] & 0x1f;
		/* Parameter sets, SEI and delimiters open an access unit once a slice was seen. */
		bool opens =
			hevc ? (type >= 32 && type <= 35) || type == 39 : type >= 6 && type <= 9;
		if (hevc ? type < 32 : type >= 1 && type <= 5)
			have_slice = true;
		if (!opens || !have_slice)
			continue;
		struct unit u = {.off = i > 0 && b[i - 1] == 0 ? i - 1 : i};
		struct unit *prev = &g_array_index(units, struct unit, units->len - 1);
		prev->len = u.off - prev->off;
		g_array_append_val(units, u);
		have_slice = false;
	}
	g_array_index(units, struct unit, units->len - 1).len =
		len - g_array_index(units, struct unit, units->len - 1).off;
	g_assert_cmpuint(g_strv_length(lines) - 1, ==, units->len);
	for (unsigned i = 0; i < units->len; i++) {
		g_array_index(units, struct unit, i).ts = g_ascii_strtoull(lines[i], NULL, 10);
	}
	return units;
}

/* IVF records: 32-byte file header, then le32 size, le64 pts, data. */
static GArray *
split_ivf(GBytes *data)
{
	const uint8_t *b = g_bytes_get_data(data, NULL);
	size_t len = g_bytes_get_size(data), off = 32;
	GArray *units = g_array_new(FALSE, TRUE, sizeof(struct unit));

	g_assert_cmpmem(b, 4, "DKIF", 4);
	while (off + 12 <= len) {
		struct unit u;
		uint32_t size;
		uint64_t pts;

		memcpy(&size, b + off, 4);
		memcpy(&pts, b + off + 4, 8);
		g_assert_cmpuint(off + 12 + size, <=, len);
		u = (struct unit){.off = off + 12, .len = size, .ts = pts};
		g_array_append_val(units, u);
		off += 12 + size;
	}
	return units;
}

static uint32_t
coded_format_of(const char *name)
{
	if (g_str_has_prefix(name, "h264"))
		return V4L2_PIX_FMT_H264;
	if (g_str_has_prefix(name, "hevc"))
		return V4L2_PIX_FMT_HEVC;
	if (g_str_has_prefix(name, "vp8"))
		return V4L2_PIX_FMT_VP8;
	return V4L2_PIX_FMT_VP9;
}

static GArray *
split_stream(const char *name, GBytes *data)
{
	if (g_str_has_suffix(name, ".ivf"))
		return split_ivf(data);
	return split_annexb(name, data, g_str_has_suffix(name, ".hevc"));
}

static void
run_init(struct run *r, const char *name, uint32_t capture)
{
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < MAX_PICS; i++)
		r->pics[i].fd = -1;
	r->coded = coded_format_of(name);
	r->capture = capture;
	r->md5 = read_md5s(name, capture == V4L2_PIX_FMT_NV12 ? "nv12" : "yuv420p", &r->n_md5);
	r->out_ts = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	g_assert_cmpint(codec_new(r->coded, capture, &callbacks, r, &r->codec), ==, 0);
}

static void
run_finish(struct run *r)
{
	codec_free(r->codec);
	g_assert_cmpuint(r->held, ==, 0);
	for (unsigned i = 0; i < MAX_PICS; i++)
		tpic_free(&r->pics[i]);
	g_strfreev(r->md5);
	g_array_unref(r->out_ts);
}

static void
feed_units(struct run *r, GBytes *data, GArray *units, unsigned from, unsigned to)
{
	const uint8_t *b = g_bytes_get_data(data, NULL);

	for (unsigned i = from; i < to && i < units->len; i++) {
		const struct unit *u = &g_array_index(units, struct unit, i);

		g_assert_cmpint(codec_decode(r->codec, b + u->off, u->len, u->ts), ==, 0);
	}
}

static int
u64_cmp(gconstpointer a, gconstpointer b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Every frame out, in display order, with the timestamp of the input that made it. */
static void
assert_all_frames(struct run *r, GArray *units)
{
	g_autoptr(GArray) sorted = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), units->len);

	g_assert_cmpuint(r->mismatches, ==, 0);
	g_assert_cmpuint(r->n_done, ==, r->n_md5);
	g_assert_cmpuint(r->n_lost, ==, 0);
	g_assert_cmpuint(r->n_error, ==, 0);
	/* VP8/VP9 hidden frames (alt-ref) produce no picture: compare shown frames only. */
	for (unsigned i = 0; i < units->len; i++)
		g_array_append_val(sorted, g_array_index(units, struct unit, i).ts);
	g_array_sort(sorted, u64_cmp);
	g_assert_cmpuint(r->out_ts->len, <=, sorted->len);
	for (unsigned i = 0; i < r->out_ts->len; i++) {
		if (r->coded == V4L2_PIX_FMT_H264 || r->coded == V4L2_PIX_FMT_HEVC)
			g_assert_cmpuint(g_array_index(r->out_ts, uint64_t, i), ==,
					 g_array_index(sorted, uint64_t, i));
		if (i > 0)
			g_assert_cmpuint(g_array_index(r->out_ts, uint64_t, i), >,
					 g_array_index(r->out_ts, uint64_t, i - 1));
	}
}

struct case_ {
	const char *stream;
	uint32_t capture;
};

/* The whole stream, one frame per buffer, then drain: md5s, timestamps, copies. */
static void
test_decode(const void *data)
{
	const struct case_ *c = data;
	g_autoptr(GBytes) bytes = read_data(c->stream);
	g_autoptr(GArray) units = split_stream(c->stream, bytes);
	struct codec_stats st;
	struct run r;

	run_init(&r, c->stream, c->capture);
	feed_units(&r, bytes, units, 0, units->len);
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.held, ==, 0);
	assert_all_frames(&r, units);
	codec_get_stats(r.codec, &st);
	g_assert_cmpuint(st.frames_decoded, ==, r.n_md5);
	g_assert_cmpuint(st.frames_corrupt, ==, 0);
	/* min_buffers pictures are enough: the codec never held more at once. */
	g_test_message("pictures held at most %u, min_buffers %u", r.max_held, r.info.min_buffers);
	g_assert_cmpuint(r.max_held, <=, r.info.min_buffers);
	/* Direct pictures are bracketed with begin_access/end_access (balance checked). */
	g_assert_cmpuint(r.accesses, >=, r.n_md5);
	if (c->capture == V4L2_PIX_FMT_YUV420) {
		/* Every codec here has direct rendering: nothing copied. */
		g_assert_cmpuint(st.frames_copied, ==, 0);
		g_assert_cmpuint(st.bytes_copied, ==, 0);
	} else {
		/* NV12: the luma in place, only the chroma interleaved. */
		/* No stream here is larger than 176x100. */
		uint64_t w = 176, h = 100;
		g_assert_cmpuint(st.frames_copied, ==, r.n_md5);
		g_assert_cmpuint(st.bytes_copied, <=, r.n_md5 * (w + 1) / 2 * 2 * ((h + 1) / 2));
	}
	if (strstr(c->stream, "-change.")) {
		/* The 8 frames of the first size were all done before the second stream_info. */
		g_assert_cmpuint(r.n_info, ==, 2);
		g_assert_cmpuint(r.done_at_info[1], ==, 8);
		g_assert_cmpuint(r.info.visible.width, ==, 96);
		g_assert_cmpuint(r.info.visible.height, ==, 64);
	} else {
		g_assert_cmpuint(r.n_info, ==, 1);
		g_assert_cmpuint(r.info.visible.width, ==, 176);
		g_assert_cmpuint(r.info.visible.height, ==, 100);
	}
	run_finish(&r);
}

/* Annex B in buffers that cut access units anywhere (the parser reassembles them). */
static void
test_chunked(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	const uint8_t *b = g_bytes_get_data(bytes, NULL);
	size_t len = g_bytes_get_size(bytes), sizes[] = {1, 7, 500, 3000, 64, 1200};
	struct run r;

	run_init(&r, name, V4L2_PIX_FMT_NV12);
	for (size_t off = 0, i = 0; off < len; i++) {
		size_t n = MIN(sizes[i % G_N_ELEMENTS(sizes)], len - off);

		g_assert_cmpint(codec_decode(r.codec, b + off, n, i), ==, 0);
		off += n;
	}
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.mismatches, ==, 0);
	g_assert_cmpuint(r.n_done, ==, r.n_md5);
	run_finish(&r);
}

/*
 * Several access units per buffer (V4L2 allows one or more for H.264/HEVC): every frame
 * carries the timestamp of the buffer its access unit came in.
 */
static void
test_multi_frame(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	g_autoptr(GArray) units = split_stream(name, bytes);
	const uint8_t *b = g_bytes_get_data(bytes, NULL);
	g_autoptr(GArray) sorted = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	const unsigned per = 3;
	struct run r;

	run_init(&r, name, V4L2_PIX_FMT_NV12);
	for (unsigned i = 0; i < units->len; i += per) {
		const struct unit *first = &g_array_index(units, struct unit, i);
		const struct unit *last =
			&g_array_index(units, struct unit, MIN(i + per, units->len) - 1);

		g_assert_cmpint(codec_decode(r.codec, b + first->off,
					     last->off + last->len - first->off, 1000 + i / per),
				==, 0);
	}
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.mismatches, ==, 0);
	g_assert_cmpuint(r.n_done, ==, r.n_md5);
	/* Display order is pts order; the unit with the i-th pts came in buffer unit / per. */
	for (unsigned i = 0; i < units->len; i++)
		g_array_append_val(sorted, g_array_index(units, struct unit, i).ts);
	g_array_sort(sorted, u64_cmp);
	for (unsigned i = 0; i < r.out_ts->len; i++) {
		unsigned d = 0;

		while (g_array_index(units, struct unit, d).ts !=
		       g_array_index(sorted, uint64_t, i))
			d++;
		g_assert_cmpuint(g_array_index(r.out_ts, uint64_t, i), ==, 1000 + d / per);
	}
	run_finish(&r);
}

/*
 * Pictures too small to decode into, or with other strides than reported (a decoder needs one
 * stride for all its frames): decoded in codec memory and copied, counted.
 */
static void
run_copy(const struct case_ *c, bool small, uint32_t extra)
{
	g_autoptr(GBytes) bytes = read_data(c->stream);
	g_autoptr(GArray) units = split_stream(c->stream, bytes);
	struct codec_stats st;
	struct run r;

	run_init(&r, c->stream, c->capture);
	r.small_stride = small;
	r.extra_stride = extra;
	feed_units(&r, bytes, units, 0, units->len);
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	assert_all_frames(&r, units);
	codec_get_stats(r.codec, &st);
	g_assert_cmpuint(st.frames_copied, ==, r.n_md5);
	g_assert_cmpuint(st.bytes_copied, ==, r.n_md5 * 176 * 100 * 3 / 2);
	run_finish(&r);
}

static void
test_copy(const void *data)
{
	run_copy(data, true, 0);
}

static void
test_copy_wide(const void *data)
{
	run_copy(data, false, 64);
}

/* Drain, then the same stream again: the codec accepts a new stream after a drain. */
static void
test_drain_restart(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	g_autoptr(GArray) units = split_stream(name, bytes);
	struct run r;

	run_init(&r, name, V4L2_PIX_FMT_YUV420);
	for (unsigned round = 0; round < 2; round++) {
		r.next = 0;
		feed_units(&r, bytes, units, 0, units->len);
		g_assert_cmpint(codec_drain(r.codec), ==, 0);
		g_assert_cmpuint(r.held, ==, 0);
		g_assert_cmpuint(r.mismatches, ==, 0);
		g_assert_cmpuint(r.n_done, ==, (round + 1) * r.n_md5);
	}
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.n_done, ==, 2 * r.n_md5);
	run_finish(&r);
}

/* Seek: part of the stream, flush (every picture back), then from the start again. */
static void
test_flush(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	g_autoptr(GArray) units = split_stream(name, bytes);
	unsigned before;
	struct run r;

	run_init(&r, name, V4L2_PIX_FMT_YUV420);
	feed_units(&r, bytes, units, 0, 7);
	codec_flush(r.codec);
	g_assert_cmpuint(r.held, ==, 0);
	g_assert_cmpuint(r.mismatches, ==, 0);
	before = r.n_done;
	g_assert_cmpuint(before, <=, 7);
	codec_flush(r.codec);
	r.next = 0;
	feed_units(&r, bytes, units, 0, units->len);
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.mismatches, ==, 0);
	g_assert_cmpuint(r.n_done - before, ==, r.n_md5);
	g_assert_cmpuint(r.held, ==, 0);
	run_finish(&r);
}

/* Garbled and truncated frames: flagged or dropped, never a crash, pictures all back. */
static void
test_corrupt(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	g_autoptr(GArray) units = split_stream(name, bytes);
	g_autofree uint8_t *b = g_memdup2(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
	GRand *rand = g_rand_new_with_seed(7);
	struct codec_stats st;
	struct run r;

	run_init(&r, name, V4L2_PIX_FMT_NV12);
	for (unsigned i = 0; i < units->len; i++) {
		struct unit *u = &g_array_index(units, struct unit, i);

		if (i >= 4 && i <= 6) {
			/* Keep the first bytes (headers), garble the rest. */
			for (size_t k = MIN(u->len, 24); k < u->len; k++)
				b[u->off + k] ^= (uint8_t)g_rand_int(rand);
		}
		if (i == 9)
			u->len /= 2;
		g_assert_cmpint(codec_decode(r.codec, b + u->off, u->len, u->ts), ==, 0);
	}
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.held, ==, 0);
	codec_get_stats(r.codec, &st);
	/*
	 * Flagged or dropped. Only libavcodec's H.264 decoder notices garbled entropy-coded
	 * data (error concealment, decode_error_flags); HEVC, VP8 and VP9 decode it into wrong
	 * pictures without an error, and VP8/VP9 read a truncated last partition as zeroes:
	 * there the damage only shows in the pictures.
	 */
	g_test_message("units %u done %u lost %u error %u mismatches %u of %u", units->len,
		       r.n_done, r.n_lost, r.n_error, r.mismatches, r.n_md5);
	if (r.coded == V4L2_PIX_FMT_H264)
		g_assert_true(r.n_error > 0 || r.n_done < r.n_md5);
	else
		g_assert_cmpuint(r.mismatches, >, 0);
	g_assert_cmpuint(st.frames_corrupt, ==, r.n_error);
	g_rand_free(rand);
	run_finish(&r);
}

/* Random bytes as every coded format: nothing to show, nothing crashes. */
static void
test_garbage(void)
{
	static const uint32_t formats[] = {V4L2_PIX_FMT_H264, V4L2_PIX_FMT_HEVC, V4L2_PIX_FMT_VP8,
					   V4L2_PIX_FMT_VP9};
	GRand *rand = g_rand_new_with_seed(42);
	uint8_t buf[4096];

	for (unsigned f = 0; f < G_N_ELEMENTS(formats); f++) {
		struct run r = {0};
		for (unsigned i = 0; i < MAX_PICS; i++)
			r.pics[i].fd = -1;
		r.capture = V4L2_PIX_FMT_NV12;
		r.no_md5 = true;
		r.out_ts = g_array_new(FALSE, FALSE, sizeof(uint64_t));
		g_assert_cmpint(codec_new(formats[f], r.capture, &callbacks, &r, &r.codec), ==, 0);
		for (unsigned i = 0; i < 50; i++) {
			size_t n = g_rand_int_range(rand, 1, sizeof(buf));
			for (size_t k = 0; k < n; k++)
				buf[k] = (uint8_t)g_rand_int(rand);
			if (i % 5 == 0) /* an Annex B start code now and then */
				memcpy(buf, "\0\0\0\1", 4);
			g_assert_cmpint(codec_decode(r.codec, buf, n, i), ==, 0);
		}
		g_assert_cmpint(codec_drain(r.codec), ==, 0);
		codec_flush(r.codec);
		g_assert_cmpuint(r.held, ==, 0);
		run_finish(&r);
	}
	g_rand_free(rand);
}

/* 10-bit streams cannot go into 8-bit pictures: no picture asked for, frames reported lost. */
static void
test_unsupported(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	const uint8_t *b = g_bytes_get_data(bytes, NULL);
	struct run r = {0};

	for (unsigned i = 0; i < MAX_PICS; i++)
		r.pics[i].fd = -1;
	r.coded = coded_format_of(name);
	r.capture = V4L2_PIX_FMT_NV12;
	r.out_ts = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	g_assert_cmpint(codec_new(r.coded, r.capture, &callbacks, &r, &r.codec), ==, 0);
	if (g_str_has_suffix(name, ".ivf")) {
		g_autoptr(GArray) units = split_ivf(bytes);
		feed_units(&r, bytes, units, 0, units->len);
	} else {
		g_assert_cmpint(codec_decode(r.codec, b, g_bytes_get_size(bytes), 1), ==, 0);
	}
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.n_info, ==, 0);
	g_assert_cmpuint(r.get_calls, ==, 0);
	g_assert_cmpuint(r.n_done, ==, 0);
	g_assert_cmpuint(r.n_lost, >, 0);
	run_finish(&r);
}

/* get_picture -EAGAIN now and then: those frames are reported lost, the others are right. */
static void
test_eagain(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	g_autoptr(GArray) units = split_stream(name, bytes);
	struct codec_stats st;
	struct run r;

	run_init(&r, name, V4L2_PIX_FMT_YUV420);
	r.eagain_every = 3;
	feed_units(&r, bytes, units, 0, units->len);
	g_assert_cmpint(codec_drain(r.codec), ==, 0);
	g_assert_cmpuint(r.held, ==, 0);
	/* References stay intact: every frame that got a picture is right. */
	g_assert_cmpuint(r.mismatches, ==, 0);
	g_assert_cmpuint(r.n_done + r.n_lost, ==, r.n_md5);
	g_assert_cmpuint(r.n_done, >, 0);
	codec_get_stats(r.codec, &st);
	/* Frames decoded without a picture were copied into one found at output. */
	g_assert_cmpuint(st.frames_copied, >, 0);
	run_finish(&r);
}

/* get_picture -ECANCELED (stream stopping): frames dropped, flush puts everything back. */
static void
test_canceled(const void *data)
{
	const char *name = data;
	g_autoptr(GBytes) bytes = read_data(name);
	g_autoptr(GArray) units = split_stream(name, bytes);
	struct run r;

	run_init(&r, name, V4L2_PIX_FMT_NV12);
	r.cancel_after = 4;
	feed_units(&r, bytes, units, 0, units->len);
	codec_flush(r.codec);
	g_assert_cmpuint(r.held, ==, 0);
	g_assert_cmpuint(r.mismatches, ==, 0);
	g_assert_cmpuint(r.n_done, <=, 4);
	g_assert_cmpuint(r.n_lost, ==, 0);
	run_finish(&r);
}

static void
test_supports(void)
{
	uint32_t fmts[4];

	g_assert_true(codec_supports(V4L2_PIX_FMT_H264));
	g_assert_true(codec_supports(V4L2_PIX_FMT_HEVC));
	g_assert_true(codec_supports(V4L2_PIX_FMT_VP8));
	g_assert_true(codec_supports(V4L2_PIX_FMT_VP9));
	/* No libavcodec AV1 decoder in Debian 12 renders into caller memory. */
	g_assert_false(codec_supports(V4L2_PIX_FMT_AV1));
	g_assert_false(codec_supports(V4L2_PIX_FMT_MJPEG));
	g_assert_cmpuint(codec_capture_formats(V4L2_PIX_FMT_H264, fmts, 4), ==, 2);
	g_assert_cmpuint(fmts[0], ==, V4L2_PIX_FMT_YUV420);
	g_assert_cmpuint(fmts[1], ==, V4L2_PIX_FMT_NV12);
	g_assert_cmpuint(codec_capture_formats(V4L2_PIX_FMT_AV1, fmts, 4), ==, 0);

	struct codec *c = NULL;
	g_assert_cmpint(codec_new(V4L2_PIX_FMT_AV1, V4L2_PIX_FMT_NV12, &callbacks, NULL, &c), ==,
			-EINVAL);
	g_assert_cmpint(codec_new(V4L2_PIX_FMT_H264, V4L2_PIX_FMT_RGB24, &callbacks, NULL, &c), ==,
			-EINVAL);
	g_assert_cmpint(codec_new(V4L2_PIX_FMT_H264, V4L2_PIX_FMT_NV12, NULL, NULL, &c), ==,
			-EINVAL);
	g_assert_null(c);
	codec_free(NULL);
}

static const struct case_ decode_cases[] = {
	{"h264-176x100.h264", V4L2_PIX_FMT_YUV420}, {"h264-176x100.h264", V4L2_PIX_FMT_NV12},
	{"hevc-176x100.hevc", V4L2_PIX_FMT_YUV420}, {"hevc-176x100.hevc", V4L2_PIX_FMT_NV12},
	{"vp8-176x100.ivf", V4L2_PIX_FMT_YUV420},   {"vp8-176x100.ivf", V4L2_PIX_FMT_NV12},
	{"vp9-176x100.ivf", V4L2_PIX_FMT_YUV420},   {"vp9-176x100.ivf", V4L2_PIX_FMT_NV12},
	{"h264-change.h264", V4L2_PIX_FMT_YUV420},  {"h264-change.h264", V4L2_PIX_FMT_NV12},
	{"vp9-change.ivf", V4L2_PIX_FMT_YUV420},    {"vp9-change.ivf", V4L2_PIX_FMT_NV12},
	{"hevc-change.hevc", V4L2_PIX_FMT_YUV420},  {"hevc-change.hevc", V4L2_PIX_FMT_NV12},
	{"vp8-change.ivf", V4L2_PIX_FMT_YUV420},    {"vp8-change.ivf", V4L2_PIX_FMT_NV12},
};

static const struct case_ copy_cases[] = {
	{"h264-176x100.h264", V4L2_PIX_FMT_YUV420},
	{"hevc-176x100.hevc", V4L2_PIX_FMT_NV12},
	{"vp8-176x100.ivf", V4L2_PIX_FMT_NV12},
	{"vp9-176x100.ivf", V4L2_PIX_FMT_YUV420},
};

static char *
case_path(const char *what, const struct case_ *c)
{
	g_autofree char *base = g_strndup(c->stream, strcspn(c->stream, "."));

	return g_strdup_printf("/codec/avcodec/%s/%s/%s", what, base,
			       c->capture == V4L2_PIX_FMT_NV12 ? "nv12" : "yuv420");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	cb_test_add("/codec/avcodec/supports", test_supports);
	for (unsigned i = 0; i < G_N_ELEMENTS(decode_cases); i++) {
		g_autofree char *path = case_path("decode", &decode_cases[i]);
		cb_test_add_data(path, &decode_cases[i], test_decode);
	}
	for (unsigned i = 0; i < G_N_ELEMENTS(copy_cases); i++) {
		g_autofree char *path = case_path("copy-small-stride", &copy_cases[i]);
		cb_test_add_data(path, &copy_cases[i], test_copy);
		g_autofree char *wide = case_path("copy-wide-stride", &copy_cases[i]);
		cb_test_add_data(wide, &copy_cases[i], test_copy_wide);
	}
	cb_test_add_data("/codec/avcodec/chunked/h264", "h264-176x100.h264", test_chunked);
	cb_test_add_data("/codec/avcodec/chunked/hevc", "hevc-176x100.hevc", test_chunked);
	cb_test_add_data("/codec/avcodec/chunked/h264-change", "h264-change.h264", test_chunked);
	cb_test_add_data("/codec/avcodec/chunked/hevc-change", "hevc-change.hevc", test_chunked);
	cb_test_add_data("/codec/avcodec/multi-frame/h264", "h264-176x100.h264", test_multi_frame);
	cb_test_add_data("/codec/avcodec/multi-frame/hevc", "hevc-176x100.hevc", test_multi_frame);
	cb_test_add_data("/codec/avcodec/drain-restart/h264", "h264-176x100.h264",
			 test_drain_restart);
	cb_test_add_data("/codec/avcodec/drain-restart/vp9", "vp9-176x100.ivf", test_drain_restart);
	cb_test_add_data("/codec/avcodec/flush/h264", "h264-176x100.h264", test_flush);
	cb_test_add_data("/codec/avcodec/flush/hevc", "hevc-176x100.hevc", test_flush);
	cb_test_add_data("/codec/avcodec/flush/vp8", "vp8-176x100.ivf", test_flush);
	cb_test_add_data("/codec/avcodec/corrupt/h264", "h264-176x100.h264", test_corrupt);
	cb_test_add_data("/codec/avcodec/corrupt/hevc", "hevc-176x100.hevc", test_corrupt);
	cb_test_add_data("/codec/avcodec/corrupt/vp8", "vp8-176x100.ivf", test_corrupt);
	cb_test_add_data("/codec/avcodec/corrupt/vp9", "vp9-176x100.ivf", test_corrupt);
	cb_test_add("/codec/avcodec/garbage", test_garbage);
	cb_test_add_data("/codec/avcodec/unsupported/h264-10bit", "h264-10bit-64x64.h264",
			 test_unsupported);
	cb_test_add_data("/codec/avcodec/unsupported/vp9-10bit", "vp9-10bit-64x64.ivf",
			 test_unsupported);
	cb_test_add_data("/codec/avcodec/eagain/h264", "h264-176x100.h264", test_eagain);
	cb_test_add_data("/codec/avcodec/eagain/vp9", "vp9-176x100.ivf", test_eagain);
	cb_test_add_data("/codec/avcodec/canceled/h264", "h264-176x100.h264", test_canceled);
	cb_test_add_data("/codec/avcodec/canceled/vp9", "vp9-176x100.ivf", test_canceled);
	return g_test_run();
}
