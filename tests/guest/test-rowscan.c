/* SPDX-License-Identifier: MIT */
/*
 * guest/rowscan.c: rows planted in buffers of random bytes are found at any offset, with the
 * right count and first offset; nothing else is reported. Timing only with -m perf (printed,
 * never asserted).
 */
#include "rowscan.h"
#include "testutil.h"

#include <errno.h>
#include <string.h>

#define W ROWSCAN_WINDOW

/* Rows of random bytes (at least 8 distinct values in the first W, as good as sure). */
static uint8_t *
random_plane(uint32_t seed, uint32_t width, uint32_t rows, size_t stride)
{
	uint8_t *p = g_malloc((size_t)rows * stride);

	cb_test_pattern(p, (size_t)rows * stride, seed);
	return p;
}

static uint8_t *
random_buffer(uint32_t seed, size_t len)
{
	GRand *r = g_rand_new_with_seed(seed);
	uint8_t *p = g_malloc(len);

	for (size_t i = 0; i + 4 <= len; i += 4) {
		uint32_t v = g_rand_int(r);
		memcpy(p + i, &v, 4);
	}
	for (size_t i = len & ~(size_t)3; i < len; i++)
		p[i] = (uint8_t)g_rand_int(r);
	g_rand_free(r);
	return p;
}

static struct rowscan *
scan_of(const uint8_t *plane, size_t stride, uint32_t width, uint32_t rows, size_t max_rows)
{
	struct rowscan *s = NULL;

	g_assert_cmpint(rowscan_new(max_rows, &s), ==, 0);
	g_assert_nonnull(s);
	rowscan_add_plane(s, plane, stride, width, rows);
	return s;
}

static void
test_found_at_offsets(void)
{
	const size_t len = 1 << 20;
	const size_t offsets[] = {0, 1, 4095, len - W};
	/* Rows 0 and 1 overlap by W - 1 bytes, so both can be planted at 0 and 1 at once. */
	g_autofree uint8_t *x = random_plane(1, W + 1, 1, W + 1);
	g_autofree uint8_t *plane = random_plane(1, 64, 4, 80);
	struct rowscan *s;

	memcpy(plane, x, W);
	memcpy(plane + 80, x + 1, W);
	s = scan_of(plane, 80, 64, 4, 100);
	g_assert_cmpuint(rowscan_rows(s), ==, 4);
	g_assert_cmpuint(rowscan_skipped(s), ==, 0);

	/* Each offset alone. */
	for (unsigned i = 0; i < G_N_ELEMENTS(offsets); i++) {
		g_autofree uint8_t *buf = random_buffer(100 + i, len);
		size_t first = 12345;

		g_assert_cmpuint(rowscan_search(s, buf, len, &first), ==, 0);
		g_assert_cmpuint(first, ==, 12345); /* untouched */
		memcpy(buf + offsets[i], plane + i * 80, W);
		g_assert_cmpuint(rowscan_search(s, buf, len, &first), ==, 1);
		g_assert_cmpuint(first, ==, offsets[i]);
		g_assert_cmpuint(rowscan_search(s, buf, len, NULL), ==, 1);
	}

	/* All at once. */
	{
		g_autofree uint8_t *buf = random_buffer(200, len);
		size_t first = 0;

		memcpy(buf, x, W + 1); /* rows 0 and 1 */
		memcpy(buf + 4095, plane + 2 * 80, W);
		memcpy(buf + len - W, plane + 3 * 80, W);
		g_assert_cmpuint(rowscan_search(s, buf, len, &first), ==, 4);
		g_assert_cmpuint(first, ==, 0);
		/* From offset 1 on: three left, the first at 0 of the sub-range. */
		g_assert_cmpuint(rowscan_search(s, buf + 1, len - 1, &first), ==, 3);
		g_assert_cmpuint(first, ==, 0);
		/* From offset 2 on: two left, the first at 4093. */
		g_assert_cmpuint(rowscan_search(s, buf + 2, len - 2, &first), ==, 2);
		g_assert_cmpuint(first, ==, 4093);
		/* Exactly one window long. */
		g_assert_cmpuint(rowscan_search(s, buf + 4095, W, &first), ==, 1);
		g_assert_cmpuint(first, ==, 0);
	}
	rowscan_free(s);
}

/* Overlapping and back-to-back occurrences are each counted. */
static void
test_adjacent(void)
{
	g_autofree uint8_t *plane = random_plane(2, W, 3, W);
	g_autofree uint8_t *buf = random_buffer(3, 4096);
	struct rowscan *s = scan_of(plane, W, W, 3, 10);
	size_t first = 0;

	/* Rows 0,1,2 back to back at 100, and row 0 again at 100 + 3W + 1. */
	memcpy(buf + 100, plane, 3 * W);
	memcpy(buf + 100 + 3 * W + 1, plane, W);
	g_assert_cmpuint(rowscan_search(s, buf, 4096, &first), ==, 4);
	g_assert_cmpuint(first, ==, 100);
	rowscan_free(s);
}

static void
test_split_across_end(void)
{
	const size_t len = 8192;
	g_autofree uint8_t *plane = random_plane(4, 48, 1, 48);
	g_autofree uint8_t *buf = random_buffer(5, len);
	struct rowscan *s = scan_of(plane, 48, 48, 1, 10);

	for (size_t cut = 1; cut < W; cut++) {
		/* The first W - cut bytes of the row end the range. */
		memcpy(buf + len - (W - cut), plane, W - cut);
		g_assert_cmpuint(rowscan_search(s, buf, len, NULL), ==, 0);
	}
	/* The whole row, but the range stops one byte short of its end. */
	memcpy(buf + 1000, plane, W);
	g_assert_cmpuint(rowscan_search(s, buf, 1000 + W - 1, NULL), ==, 0);
	g_assert_cmpuint(rowscan_search(s, buf, 1000 + W, NULL), ==, 1);
	/* Or starts one byte into it. */
	g_assert_cmpuint(rowscan_search(s, buf + 1001, len - 1001, NULL), ==, 0);
	/* Ranges shorter than a window. */
	g_assert_cmpuint(rowscan_search(s, buf + 1000, W - 1, NULL), ==, 0);
	g_assert_cmpuint(rowscan_search(s, buf, 0, NULL), ==, 0);
	rowscan_free(s);
}

static void
test_flat_skipped(void)
{
	enum { STRIDE = 40, ROWS = 6 };
	uint8_t plane[ROWS * STRIDE];
	uint8_t buf[ROWS * STRIDE];
	struct rowscan *s;

	memset(plane, 0xee, sizeof(plane));  /* padding after the window: never looked at */
	memset(plane + 0 * STRIDE, 0x00, W); /* black */
	memset(plane + 1 * STRIDE, 0x80, W); /* grey */
	for (unsigned i = 0; i < W; i++) {
		plane[2 * STRIDE + i] = (uint8_t)(16 + i % 7);     /* 7 values: says nothing */
		plane[3 * STRIDE + i] = (uint8_t)(16 + i % 8);     /* 8 values: kept */
		plane[4 * STRIDE + i] = (uint8_t)(i < 31 ? 1 : 2); /* 2 values */
		plane[5 * STRIDE + i] = (uint8_t)(i * 7);          /* 32 values */
	}
	s = scan_of(plane, STRIDE, STRIDE, ROWS, 100);
	g_assert_cmpuint(rowscan_rows(s), ==, 2);
	g_assert_cmpuint(rowscan_skipped(s), ==, 4);
	/* Searching the plane itself finds only the two kept rows. */
	memcpy(buf, plane, sizeof(buf));
	{
		size_t first = 0;
		g_assert_cmpuint(rowscan_search(s, buf, sizeof(buf), &first), ==, 2);
		g_assert_cmpuint(first, ==, 3 * STRIDE);
	}
	rowscan_free(s);

	/* Flat memory with nothing held finds nothing either. */
	s = scan_of(plane, STRIDE, STRIDE, 2, 100);
	g_assert_cmpuint(rowscan_rows(s), ==, 0);
	g_assert_cmpuint(rowscan_skipped(s), ==, 2);
	memset(buf, 0, sizeof(buf));
	g_assert_cmpuint(rowscan_search(s, buf, sizeof(buf), NULL), ==, 0);
	rowscan_free(s);
}

static void
test_narrow_plane(void)
{
	g_autofree uint8_t *plane = random_plane(6, 64, 4, 64);
	struct rowscan *s = scan_of(plane, 64, W - 1, 4, 100);

	g_assert_cmpuint(rowscan_rows(s), ==, 0);
	g_assert_cmpuint(rowscan_skipped(s), ==, 0);
	g_assert_cmpuint(rowscan_search(s, plane, 4 * 64, NULL), ==, 0);
	rowscan_add_plane(s, plane, 64, W, 0); /* no rows */
	rowscan_add_plane(s, NULL, 64, W, 4);
	rowscan_add_plane(NULL, plane, 64, W, 4);
	g_assert_cmpuint(rowscan_rows(s), ==, 0);
	rowscan_add_plane(s, plane, 64, W, 4);
	g_assert_cmpuint(rowscan_rows(s), ==, 4);
	rowscan_free(s);
	rowscan_free(NULL);
	g_assert_cmpint(rowscan_new(10, NULL), ==, -EINVAL);
	g_assert_cmpuint(rowscan_search(NULL, plane, 64, NULL), ==, 0);
}

static void
test_duplicates(void)
{
	enum { ROWS = 50 };
	g_autofree uint8_t *row = random_plane(7, W, 1, W);
	g_autofree uint8_t *plane = g_malloc(ROWS * W);
	struct rowscan *s;

	for (unsigned r = 0; r < ROWS; r++)
		memcpy(plane + r * W, row, W);
	s = scan_of(plane, W, W, ROWS, 1); /* max 1: duplicates do not count against it */
	g_assert_cmpuint(rowscan_rows(s), ==, 1);
	g_assert_cmpuint(rowscan_skipped(s), ==, 0);
	/* The plane holds the row at every multiple of W. */
	g_assert_cmpuint(rowscan_search(s, plane, ROWS * W, NULL), ==, ROWS);
	rowscan_free(s);
}

static void
test_max_rows(void)
{
	enum { ROWS = 10, MAX = 3, STRIDE = 64 };
	g_autofree uint8_t *plane = random_plane(8, STRIDE, ROWS, STRIDE);
	struct rowscan *s = scan_of(plane, STRIDE, STRIDE, ROWS, MAX);
	size_t first = 0;

	g_assert_cmpuint(rowscan_rows(s), ==, MAX);
	g_assert_cmpuint(rowscan_skipped(s), ==, ROWS - MAX);
	/* The plane searched: the first MAX rows only. */
	g_assert_cmpuint(rowscan_search(s, plane, ROWS * STRIDE, &first), ==, MAX);
	g_assert_cmpuint(first, ==, 0);
	g_assert_cmpuint(rowscan_search(s, plane + MAX * STRIDE, (ROWS - MAX) * STRIDE, NULL), ==,
			 0);
	/* Adding again: the held ones are duplicates, the rest skipped again. */
	rowscan_add_plane(s, plane, STRIDE, STRIDE, ROWS);
	g_assert_cmpuint(rowscan_rows(s), ==, MAX);
	g_assert_cmpuint(rowscan_skipped(s), ==, 2 * (ROWS - MAX));
	rowscan_free(s);

	s = scan_of(plane, STRIDE, STRIDE, ROWS, 0);
	g_assert_cmpuint(rowscan_rows(s), ==, 0);
	g_assert_cmpuint(rowscan_skipped(s), ==, ROWS);
	rowscan_free(s);
}

/* Many rows (the table grows several times), all found where they were planted. */
static void
test_many_rows(void)
{
	enum { ROWS = 20000 };
	const size_t len = 64u << 20;
	g_autofree uint8_t *plane = random_plane(9, W, ROWS, W);
	g_autofree uint8_t *buf = random_buffer(10, len);
	struct rowscan *s = scan_of(plane, W, W, ROWS, ROWS);
	size_t first = 0;

	g_assert_cmpuint(rowscan_rows(s), ==, ROWS);
	g_assert_cmpuint(rowscan_skipped(s), ==, 0);
	/* No false positive over 64 MiB of other random bytes. */
	g_assert_cmpuint(rowscan_search(s, buf, len, &first), ==, 0);
	/* Every row once, at offsets spread over the buffer (odd strides, never overlapping). */
	for (unsigned r = 0; r < ROWS; r++)
		memcpy(buf + 777 + (size_t)r * 3331, plane + (size_t)r * W, W);
	g_assert_cmpuint(rowscan_search(s, buf, len, &first), ==, ROWS);
	g_assert_cmpuint(first, ==, 777);
	rowscan_free(s);
}

/* A row that differs from a held one in a single byte is not reported. */
static void
test_one_byte_off(void)
{
	g_autofree uint8_t *plane = random_plane(11, 64, 1, 64);
	g_autofree uint8_t *buf = random_buffer(12, 1 << 16);
	struct rowscan *s = scan_of(plane, 64, 64, 1, 10);
	const unsigned where[] = {0, W / 2, W - 1};

	for (unsigned i = 0; i < G_N_ELEMENTS(where); i++) {
		for (unsigned delta = 1; delta < 256; delta += 127) {
			memcpy(buf + 5000, plane, W);
			buf[5000 + where[i]] ^= (uint8_t)delta;
			g_assert_cmpuint(rowscan_search(s, buf, 1 << 16, NULL), ==, 0);
		}
	}
	memcpy(buf + 5000, plane, W);
	g_assert_cmpuint(rowscan_search(s, buf, 1 << 16, NULL), ==, 1);
	rowscan_free(s);
}

/* Every range length from one window up, rows planted at random offsets (overlapping at
 * times), against a plain memcmp at every offset. */
static void
test_against_naive(void)
{
	enum { ROWS = 4, MAXLEN = 300 };
	g_autofree uint8_t *plane = random_plane(15, W, ROWS, W);
	struct rowscan *s = scan_of(plane, W, W, ROWS, ROWS);
	GRand *rand = g_rand_new_with_seed(16);
	uint8_t buf[MAXLEN];

	for (size_t len = W; len <= MAXLEN; len++) {
		for (unsigned round = 0; round < 8; round++) {
			size_t want = 0, want_first = SIZE_MAX, first = SIZE_MAX;
			unsigned plants = g_rand_int_range(rand, 0, 4);

			cb_test_pattern(buf, len, g_rand_int(rand));
			for (unsigned k = 0; k < plants; k++)
				memcpy(buf + g_rand_int_range(rand, 0, (gint32)(len - W + 1)),
				       plane + g_rand_int_range(rand, 0, ROWS) * W, W);
			for (size_t o = 0; o + W <= len; o++) {
				for (unsigned r = 0; r < ROWS; r++) {
					if (memcmp(buf + o, plane + r * W, W) == 0) {
						want++;
						if (want_first == SIZE_MAX)
							want_first = o;
						break;
					}
				}
			}
			g_assert_cmpuint(rowscan_search(s, buf, len, &first), ==, want);
			g_assert_cmpuint(first, ==, want_first);
		}
	}
	g_rand_free(rand);
	rowscan_free(s);
}

/* Only with -m perf: the search speed over 256 MiB, printed. */
static void
test_speed(void)
{
	const size_t len = 256u << 20;
	const uint32_t counts[] = {3000, 200000};

	if (!g_test_perf()) {
		g_test_skip("timing only with -m perf");
		return;
	}
	for (unsigned c = 0; c < G_N_ELEMENTS(counts); c++) {
		g_autofree uint8_t *plane = random_plane(13, W, counts[c], W);
		g_autofree uint8_t *buf = random_buffer(14, len);
		struct rowscan *s = scan_of(plane, W, W, counts[c], counts[c]);
		gint64 t0;
		double secs;
		size_t n;

		memset(buf + len / 2, 0, len / 4); /* a quarter of zeroes, as fresh RAM */
		t0 = g_get_monotonic_time();
		n = rowscan_search(s, buf, len, NULL);
		secs = (double)(g_get_monotonic_time() - t0) / 1e6;
		g_test_minimized_result(secs, "%u rows: 256 MiB in %.3f s (%.0f MiB/s), %zu found",
					counts[c], secs, 256 / secs, n);
		g_test_message("%u rows: 256 MiB in %.3f s (%.0f MiB/s)", counts[c], secs,
			       256 / secs);
		rowscan_free(s);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/guest/rowscan/found-at-offsets", test_found_at_offsets);
	cb_test_add("/guest/rowscan/adjacent", test_adjacent);
	cb_test_add("/guest/rowscan/split-across-end", test_split_across_end);
	cb_test_add("/guest/rowscan/flat-skipped", test_flat_skipped);
	cb_test_add("/guest/rowscan/narrow-plane", test_narrow_plane);
	cb_test_add("/guest/rowscan/duplicates", test_duplicates);
	cb_test_add("/guest/rowscan/max-rows", test_max_rows);
	cb_test_add("/guest/rowscan/many-rows", test_many_rows);
	cb_test_add("/guest/rowscan/one-byte-off", test_one_byte_off);
	cb_test_add("/guest/rowscan/against-naive", test_against_naive);
	cb_test_add("/guest/rowscan/speed", test_speed);
	return g_test_run();
}
