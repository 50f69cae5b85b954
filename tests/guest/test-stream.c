/* SPDX-License-Identifier: MIT */
/*
 * guest/stream.c on the tests/data streams (tests/data/make-streams.sh): codec, size, one
 * packet per frame of the reference framemd5, Annex B for H.264/HEVC also out of an MP4 or
 * MKV made here with the ffmpeg CLI (skipped without it); and bad input, which must give a
 * negative errno and a reason, never a crash.
 */
#include "stream.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct clip {
	const char *name;
	uint32_t pixelformat;
	const char *codec;
	bool annexb;
};

static const struct clip clips[] = {
	{"vp8-176x100.ivf", V4L2_PIX_FMT_VP8, "vp8", false},
	{"vp9-176x100.ivf", V4L2_PIX_FMT_VP9, "vp9", false},
	{"h264-176x100.h264", V4L2_PIX_FMT_H264, "h264", true},
	{"hevc-176x100.hevc", V4L2_PIX_FMT_HEVC, "hevc", true},
	{"vp8-change.ivf", V4L2_PIX_FMT_VP8, "vp8", false},
	{"vp9-change.ivf", V4L2_PIX_FMT_VP9, "vp9", false},
	{"h264-change.h264", V4L2_PIX_FMT_H264, "h264", true},
	{"hevc-change.hevc", V4L2_PIX_FMT_HEVC, "hevc", true},
};

/* Frames in tests/data/NAME.nv12.framemd5. */
static unsigned
framemd5_frames(const char *name)
{
	g_autofree char *file = g_strdup_printf("%s.nv12.framemd5", name);
	g_autofree char *path = cb_test_data_path(file);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	unsigned n = 0;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++)
		if (**l && **l != '#')
			n++;
	g_assert_cmpuint(n, >, 0);
	return n;
}

static bool
starts_annexb(const struct guest_packet *p)
{
	return (p->size >= 4 && memcmp(p->data, "\0\0\0\1", 4) == 0) ||
	       (p->size >= 3 && memcmp(p->data, "\0\0\1", 3) == 0);
}

/* NAL unit types of an Annex B packet, as a bit set (H.264: 5 bits, HEVC: 6 bits). */
static uint64_t
nal_types(const struct guest_packet *p, bool hevc)
{
	uint64_t set = 0;

	for (size_t i = 0; i + 3 < p->size; i++) {
		if (p->data[i] == 0 && p->data[i + 1] == 0 && p->data[i + 2] == 1) {
			uint8_t b = p->data[i + 3];
			set |= UINT64_C(1) << (hevc ? (b >> 1) & 0x3f : b & 0x1f);
			i += 2;
		}
	}
	return set;
}

struct summary {
	unsigned packets, keys;
	unsigned with_pts;
	bool all_annexb;
	bool first_key;
	uint64_t first_nals;
};

/* Reads the whole stream, checking what every packet must satisfy. */
static void
read_all(struct guest_stream *s, bool annexb, struct summary *sum)
{
	struct guest_packet p;
	int r;

	memset(sum, 0, sizeof(*sum));
	sum->all_annexb = true;
	while ((r = guest_stream_next(s, &p)) == 1) {
		g_assert_nonnull(p.data);
		g_assert_cmpuint(p.size, >, 0);
		g_assert_cmpuint(p.size, <=, GUEST_STREAM_MAX_PACKET);
		if (sum->packets == 0) {
			sum->first_key = p.key;
			if (annexb)
				sum->first_nals = nal_types(&p, guest_stream_pixelformat(s) ==
									V4L2_PIX_FMT_HEVC);
		}
		if (annexb && !starts_annexb(&p))
			sum->all_annexb = false;
		sum->packets++;
		sum->keys += p.key;
		sum->with_pts += p.pts_us != INT64_MIN;
	}
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpstr(guest_stream_error(s), ==, "");
	/* The end stays the end. */
	g_assert_cmpint(guest_stream_next(s, &p), ==, 0);
}

static void
test_clip(const void *data)
{
	const struct clip *c = data;
	g_autofree char *path = cb_test_data_path(c->name);
	struct guest_stream *s = NULL;
	struct summary sum;
	char err[256];
	uint32_t w = 0, h = 0;
	int r;

	r = guest_stream_open(path, &s, err, sizeof(err));
	g_assert_cmpstr(err, ==, "");
	g_assert_cmpint(r, ==, 0);
	g_assert_cmphex(guest_stream_pixelformat(s), ==, c->pixelformat);
	g_assert_cmpstr(guest_stream_codec_name(s), ==, c->codec);
	guest_stream_size(s, &w, &h);
	g_assert_cmpuint(w, ==, 176);
	g_assert_cmpuint(h, ==, 100);

	read_all(s, c->annexb, &sum);
	/* One coded frame per packet (VP9: one superframe), so as many as frames decoded. */
	g_assert_cmpuint(sum.packets, ==, framemd5_frames(c->name));
	g_assert_true(sum.first_key);
	g_assert_true(sum.all_annexb);
	if (strstr(c->name, "-change."))
		g_assert_cmpuint(sum.keys, >=, 2); /* each size starts with a key frame */
	if (!c->annexb)                            /* IVF records carry timestamps */
		g_assert_cmpuint(sum.with_pts, ==, sum.packets);
	guest_stream_free(s);
}

static void
rm_rf(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	if (!d)
		return;
	while ((name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

/* Runs the ffmpeg CLI quietly with these arguments; false when it fails. */
static bool
run_ffmpeg(const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	int status = -1;

	g_ptr_array_add(argv, (char *)"ffmpeg");
	g_ptr_array_add(argv, (char *)"-nostdin");
	g_ptr_array_add(argv, (char *)"-hide_banner");
	g_ptr_array_add(argv, (char *)"-loglevel");
	g_ptr_array_add(argv, (char *)"error");
	g_ptr_array_add(argv, (char *)"-y");
	for (const char *const *a = args; *a; a++)
		g_ptr_array_add(argv, (char *)*a);
	g_ptr_array_add(argv, NULL);
	if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL,
			  G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
				  G_SPAWN_STDERR_TO_DEV_NULL,
			  NULL, NULL, NULL, NULL, &status, &error))
		return false;
	return g_spawn_check_wait_status(status, NULL);
}

static bool
have_ffmpeg(void)
{
	g_autofree char *p = g_find_program_in_path("ffmpeg");

	if (!p)
		g_test_skip("no ffmpeg CLI");
	return p != NULL;
}

struct remux {
	const char *name; /* in tests/data */
	const char *ext;  /* container of the copy */
	uint32_t pixelformat;
};

static const struct remux remuxes[] = {
	{"h264-176x100.h264", "mp4", V4L2_PIX_FMT_H264},
	{"hevc-176x100.hevc", "mp4", V4L2_PIX_FMT_HEVC},
	{"h264-176x100.h264", "mkv", V4L2_PIX_FMT_H264},
	{"vp9-176x100.ivf", "webm", V4L2_PIX_FMT_VP9},
};

/* The stream copied into another container: length-prefixed NAL units for H.264/HEVC in
 * MP4/MKV, which must come out as Annex B again, parameter sets before the key frame. */
static void
test_remux(const void *data)
{
	const struct remux *m = data;
	g_autofree char *src = cb_test_data_path(m->name);
	g_autofree char *dir = NULL;
	g_autofree char *out = NULL;
	g_autofree char *name = NULL;
	bool annexb = m->pixelformat == V4L2_PIX_FMT_H264 || m->pixelformat == V4L2_PIX_FMT_HEVC;
	bool hevc = m->pixelformat == V4L2_PIX_FMT_HEVC;
	struct guest_stream *s = NULL;
	struct summary sum;
	uint32_t w, h;
	char err[256];

	if (!have_ffmpeg())
		return;
	dir = g_dir_make_tmp("cb-guest-stream-XXXXXX", NULL);
	g_assert_nonnull(dir);
	name = g_strdup_printf("out.%s", m->ext);
	out = g_build_filename(dir, name, NULL);
	if (strcmp(m->ext, "mkv") == 0) {
		/* Raw H.264 has no timestamps, which Matroska needs: through MP4 first. */
		g_autofree char *mp4 = g_build_filename(dir, "via.mp4", NULL);
		const char *args1[] = {"-i", src, "-c", "copy", mp4, NULL};
		const char *args2[] = {"-i", mp4, "-c", "copy", out, NULL};

		g_assert_true(run_ffmpeg(args1));
		g_assert_true(run_ffmpeg(args2));
	} else {
		const char *args[] = {"-i", src, "-c", "copy", out, NULL};

		g_assert_true(run_ffmpeg(args));
	}

	g_assert_cmpint(guest_stream_open(out, &s, err, sizeof(err)), ==, 0);
	g_assert_cmphex(guest_stream_pixelformat(s), ==, m->pixelformat);
	guest_stream_size(s, &w, &h);
	g_assert_cmpuint(w, ==, 176);
	g_assert_cmpuint(h, ==, 100);
	read_all(s, annexb, &sum);
	g_assert_cmpuint(sum.packets, ==, framemd5_frames(m->name));
	g_assert_true(sum.first_key);
	g_assert_true(sum.all_annexb);
	g_assert_cmpuint(sum.with_pts, ==, sum.packets);
	if (annexb && !hevc) /* SPS, PPS, IDR slice */
		g_assert_cmphex(sum.first_nals & 0x1a0, ==, 0x1a0);
	if (hevc) /* VPS, SPS, PPS, an IRAP slice (16..21) */
		g_assert_true((sum.first_nals >> 32 & 7) == 7 && (sum.first_nals & 0x3f0000));
	guest_stream_free(s);
	rm_rf(dir);
}

/* Opening must fail with a negative errno (want, or any if 0) and a reason. */
static void
assert_open_fails(const char *path, int want, const char *reason_part)
{
	struct guest_stream *s = (struct guest_stream *)(uintptr_t)0x1;
	char err[256];
	int r;

	memset(err, 'x', sizeof(err));
	r = guest_stream_open(path, &s, err, sizeof(err));
	g_test_message("%s: %d, %s", path, r, err);
	g_assert_cmpint(r, <, 0);
	if (want)
		g_assert_cmpint(r, ==, want);
	g_assert_true(memchr(err, '\0', sizeof(err)) != NULL);
	g_assert_cmpuint(strlen(err), >, 0);
	g_assert_null(strchr(err, '\n'));
	if (reason_part)
		g_assert_nonnull(strstr(err, reason_part));
	g_assert_true(s == (struct guest_stream *)(uintptr_t)0x1); /* untouched */
}

static char *
write_tmp(const char *dir, const char *name, const void *data, size_t len)
{
	char *p = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
	return p;
}

static void
test_bad_missing(void)
{
	assert_open_fails("/nonexistent/clip.ivf", -ENOENT, "No such file");
}

static void
test_bad_args(void)
{
	struct guest_stream *s = NULL;
	struct guest_packet p;
	char err[64];

	g_assert_cmpint(guest_stream_open(NULL, &s, err, sizeof(err)), ==, -EINVAL);
	g_assert_cmpuint(strlen(err), >, 0);
	g_assert_cmpint(guest_stream_open("x", NULL, NULL, 0), ==, -EINVAL);
	g_assert_cmpint(guest_stream_next(NULL, &p), ==, -EINVAL);
	guest_stream_free(NULL);
	/* A too small err buffer is cut, not overrun; a NULL one is fine. */
	g_assert_cmpint(guest_stream_open("/nonexistent", &s, err, 4), ==, -ENOENT);
	g_assert_cmpuint(strlen(err), ==, 3);
	g_assert_cmpint(guest_stream_open("/nonexistent", &s, NULL, 0), ==, -ENOENT);
}

static void
test_bad_files(void)
{
	g_autofree char *dir = g_dir_make_tmp("cb-guest-stream-XXXXXX", NULL);
	g_autofree char *ivf = cb_test_data_path("vp8-176x100.ivf");
	g_autofree char *ivf_data = NULL;
	g_autofree char *empty = NULL, *text = NULL, *hdr = NULL, *garbage = NULL;
	g_autofree char *url = NULL;
	static const char words[] = "This is not a video.\nJust some words in a text file.\n";
	uint8_t junk[4096];
	gsize ivf_len;

	g_assert_nonnull(dir);
	empty = write_tmp(dir, "empty.mp4", "", 0);
	assert_open_fails(empty, -EINVAL, "empty");
	text = write_tmp(dir, "notes.txt", words, sizeof(words) - 1);
	assert_open_fails(text, 0, NULL);
	assert_open_fails(dir, -EISDIR, "directory");
	cb_test_pattern(junk, sizeof(junk), 7);
	garbage = write_tmp(dir, "junk.h264", junk, sizeof(junk));
	assert_open_fails(garbage, 0, NULL);

	/* An IVF cut inside its 32-byte file header. */
	g_assert_true(g_file_get_contents(ivf, &ivf_data, &ivf_len, NULL));
	hdr = write_tmp(dir, "header.ivf", ivf_data, 20);
	assert_open_fails(hdr, 0, NULL);

	/* Not a URL: "concat:" and friends stay file names. */
	url = g_strdup_printf("concat:%s|%s", ivf, ivf);
	assert_open_fails(url, -ENOENT, NULL);
	rm_rf(dir);
}

/* An IVF cut inside a frame record: the frames before it come out, then an error. */
static void
test_bad_truncated(void)
{
	g_autofree char *dir = g_dir_make_tmp("cb-guest-stream-XXXXXX", NULL);
	g_autofree char *ivf = cb_test_data_path("vp8-176x100.ivf");
	g_autofree char *ivf_data = NULL;
	gsize ivf_len;
	/* Cut points: inside the first record, inside a record header, inside the last one. */
	size_t cuts[] = {32 + 12 + 100, 0, 0};
	unsigned total = framemd5_frames("vp8-176x100.ivf");

	g_assert_nonnull(dir);
	g_assert_true(g_file_get_contents(ivf, &ivf_data, &ivf_len, NULL));
	/* Record 2 starts after record 1 (le32 size at offset 32). */
	{
		uint32_t size1 = (uint8_t)ivf_data[32] | (uint8_t)ivf_data[33] << 8 |
				 (uint8_t)ivf_data[34] << 16 |
				 (uint32_t)(uint8_t)ivf_data[35] << 24;
		cuts[1] = 32 + 12 + size1 + 5;
	}
	cuts[2] = ivf_len - 50;

	for (unsigned c = 0; c < G_N_ELEMENTS(cuts); c++) {
		g_autofree char *name = g_strdup_printf("cut%u.ivf", c);
		g_autofree char *path = write_tmp(dir, name, ivf_data, cuts[c]);
		struct guest_stream *s = NULL;
		struct guest_packet p;
		unsigned packets = 0;
		char err[256];
		int r;

		r = guest_stream_open(path, &s, err, sizeof(err));
		g_test_message("cut at %zu: open %d %s", cuts[c], r, err);
		if (r < 0) {
			g_assert_cmpuint(strlen(err), >, 0);
			continue;
		}
		while ((r = guest_stream_next(s, &p)) == 1)
			packets++;
		g_test_message("cut at %zu: %u packets, then %d %s", cuts[c], packets, r,
			       guest_stream_error(s));
		g_assert_cmpuint(packets, <, total);
		if (c == 1) {
			/* Only a record header is cut: libavformat sees a clean end. */
			g_assert_cmpint(r, <=, 0);
		} else {
			g_assert_cmpint(r, ==, -EBADMSG);
			g_assert_cmpuint(strlen(guest_stream_error(s)), >, 0);
			g_assert_cmpint(guest_stream_next(s, &p), ==, -EBADMSG); /* sticky */
		}
		guest_stream_free(s);
	}
	rm_rf(dir);
}

/* An IVF whose second record claims (and holds) more than GUEST_STREAM_MAX_PACKET bytes. */
static void
test_bad_huge_packet(void)
{
	g_autofree char *dir = g_dir_make_tmp("cb-guest-stream-XXXXXX", NULL);
	g_autofree char *ivf = cb_test_data_path("vp8-176x100.ivf");
	g_autofree char *ivf_data = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GByteArray) b = g_byte_array_new();
	struct guest_stream *s = NULL;
	struct guest_packet p;
	uint32_t size1, big = GUEST_STREAM_MAX_PACKET + 1;
	uint8_t rec[12] = {0};
	char err[256];
	gsize ivf_len;
	int r;

	g_assert_nonnull(dir);
	g_assert_true(g_file_get_contents(ivf, &ivf_data, &ivf_len, NULL));
	size1 = (uint8_t)ivf_data[32] | (uint8_t)ivf_data[33] << 8 | (uint8_t)ivf_data[34] << 16 |
		(uint32_t)(uint8_t)ivf_data[35] << 24;
	g_byte_array_append(b, (const uint8_t *)ivf_data, 32 + 12 + size1);
	for (int i = 0; i < 4; i++)
		rec[i] = big >> (8 * i);
	rec[4] = 1;
	g_byte_array_append(b, rec, sizeof(rec));
	g_byte_array_set_size(b, b->len + big);
	memset(b->data + b->len - big, 0x5a, big);
	path = write_tmp(dir, "huge.ivf", b->data, b->len);

	g_assert_cmpint(guest_stream_open(path, &s, err, sizeof(err)), ==, 0);
	g_assert_cmpint(guest_stream_next(s, &p), ==, 1);
	g_assert_cmpuint(p.size, ==, size1);
	r = guest_stream_next(s, &p);
	g_test_message("%d %s", r, guest_stream_error(s));
	g_assert_cmpint(r, ==, -EFBIG);
	g_assert_cmpuint(strlen(guest_stream_error(s)), >, 0);
	guest_stream_free(s);
	rm_rf(dir);
}

/* Media files made with ffmpeg that hold no usable video. */
static void
test_bad_media(void)
{
	g_autofree char *dir = NULL;
	g_autofree char *wav = NULL, *avi = NULL;

	if (!have_ffmpeg())
		return;
	dir = g_dir_make_tmp("cb-guest-stream-XXXXXX", NULL);
	g_assert_nonnull(dir);
	wav = g_build_filename(dir, "x.wav", NULL);
	{
		const char *args[] = {"-f", "lavfi", "-i", "sine", "-t", "0.2", wav, NULL};
		g_assert_true(run_ffmpeg(args));
	}
	assert_open_fails(wav, -EINVAL, "no video stream");

	avi = g_build_filename(dir, "x.avi", NULL);
	{
		const char *args[] = {"-f", "lavfi", "-i",   "testsrc=size=64x64:rate=5",
				      "-t", "0.4",   "-c:v", "mpeg4",
				      avi,  NULL};
		g_assert_true(run_ffmpeg(args));
	}
	assert_open_fails(avi, -EOPNOTSUPP, "codec mpeg4 is not supported (H.264, HEVC, VP8, VP9)");
	rm_rf(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	for (unsigned i = 0; i < G_N_ELEMENTS(clips); i++) {
		g_autofree char *path = g_strdup_printf("/guest/stream/clip/%s", clips[i].name);
		cb_test_add_data(path, &clips[i], test_clip);
	}
	for (unsigned i = 0; i < G_N_ELEMENTS(remuxes); i++) {
		g_autofree char *path = g_strdup_printf("/guest/stream/remux/%s.%s",
							remuxes[i].name, remuxes[i].ext);
		cb_test_add_data(path, &remuxes[i], test_remux);
	}
	cb_test_add("/guest/stream/bad/args", test_bad_args);
	cb_test_add("/guest/stream/bad/missing", test_bad_missing);
	cb_test_add("/guest/stream/bad/files", test_bad_files);
	cb_test_add("/guest/stream/bad/truncated-ivf", test_bad_truncated);
	cb_test_add("/guest/stream/bad/huge-packet", test_bad_huge_packet);
	cb_test_add("/guest/stream/bad/no-usable-video", test_bad_media);
	return g_test_run();
}
