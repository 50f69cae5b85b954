/* SPDX-License-Identifier: MIT */
/*
 * Row fingerprints and their search (rowscan.h).
 *
 * Hash: h(w) = sum w[i] * B^(31 - i) mod 2^64 over the 32 bytes of a window, rolled one byte
 * at a time (h' = h * B - w[0] * B^32 + w[32]). Membership is tested in two steps: a bitmap
 * of 64 bits or more per held row (at most 1 in 64 windows that are not held go further, and
 * the bitmap of a few thousand rows fits in L1/L2), then an open-addressed table of the full
 * 64-bit hashes, and memcmp against the stored window. Duplicate windows are stored once, so
 * at most one entry matches an offset.
 */
#include "rowscan.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BASE     UINT64_C(0x100000001b3) /* odd: every byte stays in the hash */
#define MIX           UINT64_C(0x9e3779b97f4a7c15)
#define MIN_DISTINCT  8
#define MAX_ROWS      (UINT32_C(1) << 31)
#define MIN_TABLE     1024 /* slots; always a power of two, at most half full */
#define BITMAP_FACTOR 32   /* bitmap bits per table slot: >= 64 per row held */
#define EMPTY         UINT32_MAX

struct entry {
	uint64_t hash;
	uint32_t row; /* index into windows, EMPTY for a free slot */
};

struct rowscan {
	size_t max_rows;
	uint8_t (*windows)[ROWSCAN_WINDOW];
	size_t n_rows, windows_cap;
	size_t skipped;

	struct entry *table; /* NULL until the first row */
	unsigned table_bits; /* log2 of the slots */
	uint64_t *bitmap;
	unsigned bitmap_bits; /* log2 of the bits */

	uint64_t out_mul[256]; /* b * B^32: what the byte leaving the window takes away */
};

static uint64_t
hash_window(const uint8_t *w)
{
	uint64_t h = 0;

	for (unsigned i = 0; i < ROWSCAN_WINDOW; i++)
		h = h * HASH_BASE + w[i];
	return h;
}

static inline size_t
bitmap_index(uint64_t h, unsigned bits)
{
	return (size_t)((h * MIX) >> (64 - bits));
}

static inline size_t
table_index(uint64_t h, unsigned bits)
{
	/* A different mix from the bitmap's, so the table is not clustered by it. */
	return (size_t)(((h ^ (h >> 31)) * UINT64_C(0xbf58476d1ce4e5b9)) >> (64 - bits));
}

static bool
says_nothing(const uint8_t *w)
{
	uint64_t seen[4] = {0};
	unsigned distinct = 0;

	for (unsigned i = 0; i < ROWSCAN_WINDOW; i++) {
		uint64_t bit = UINT64_C(1) << (w[i] & 63);

		if (!(seen[w[i] >> 6] & bit)) {
			seen[w[i] >> 6] |= bit;
			if (++distinct >= MIN_DISTINCT)
				return false;
		}
	}
	return true;
}

int
rowscan_new(size_t max_rows, struct rowscan **ret)
{
	struct rowscan *s;
	uint64_t pow = 1;

	if (!ret)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->max_rows = max_rows < MAX_ROWS ? max_rows : MAX_ROWS;
	for (unsigned i = 0; i < ROWSCAN_WINDOW; i++)
		pow *= HASH_BASE;
	for (unsigned b = 0; b < 256; b++)
		s->out_mul[b] = b * pow;
	*ret = s;
	return 0;
}

void
rowscan_free(struct rowscan *s)
{
	if (!s)
		return;
	free(s->windows);
	free(s->table);
	free(s->bitmap);
	free(s);
}

size_t
rowscan_rows(const struct rowscan *s)
{
	return s ? s->n_rows : 0;
}

size_t
rowscan_skipped(const struct rowscan *s)
{
	return s ? s->skipped : 0;
}

static void
insert(struct entry *table, unsigned table_bits, uint64_t *bitmap, unsigned bitmap_bits, uint64_t h,
       uint32_t row)
{
	size_t mask = ((size_t)1 << table_bits) - 1;
	size_t b = bitmap_index(h, bitmap_bits);

	for (size_t i = table_index(h, table_bits);; i = (i + 1) & mask) {
		if (table[i].row == EMPTY) {
			table[i].hash = h;
			table[i].row = row;
			break;
		}
	}
	bitmap[b >> 6] |= UINT64_C(1) << (b & 63);
}

/* Makes room for one more row: table and bitmap twice the size when half full. */
static int
grow(struct rowscan *s)
{
	unsigned table_bits, bitmap_bits;
	struct entry *table;
	uint64_t *bitmap;

	if (s->n_rows == s->windows_cap) {
		size_t cap = s->windows_cap ? s->windows_cap * 2 : 256;
		void *w;

		if (cap > s->max_rows)
			cap = s->max_rows;
		w = realloc(s->windows, cap * sizeof(*s->windows));
		if (!w)
			return -ENOMEM;
		s->windows = w;
		s->windows_cap = cap;
	}
	if (s->table && (s->n_rows + 1) * 2 <= ((size_t)1 << s->table_bits))
		return 0;

	table_bits = s->table ? s->table_bits + 1 : 0;
	while (((size_t)1 << table_bits) < MIN_TABLE)
		table_bits++;
	bitmap_bits = table_bits + 5; /* BITMAP_FACTOR */
	static_assert(BITMAP_FACTOR == 32, "bitmap_bits follows BITMAP_FACTOR");
	table = malloc(((size_t)1 << table_bits) * sizeof(*table));
	bitmap = calloc(((size_t)1 << bitmap_bits) / 64, sizeof(*bitmap));
	if (!table || !bitmap) {
		free(table);
		free(bitmap);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ((size_t)1 << table_bits); i++)
		table[i].row = EMPTY;
	for (size_t i = 0; s->table && i < ((size_t)1 << s->table_bits); i++)
		if (s->table[i].row != EMPTY)
			insert(table, table_bits, bitmap, bitmap_bits, s->table[i].hash,
			       s->table[i].row);
	free(s->table);
	free(s->bitmap);
	s->table = table;
	s->table_bits = table_bits;
	s->bitmap = bitmap;
	s->bitmap_bits = bitmap_bits;
	return 0;
}

/* The row held with these bytes (and hash h), or EMPTY. */
static inline uint32_t
lookup(const struct rowscan *s, uint64_t h, const uint8_t *w)
{
	size_t mask = ((size_t)1 << s->table_bits) - 1;

	for (size_t i = table_index(h, s->table_bits);; i = (i + 1) & mask) {
		const struct entry *e = &s->table[i];

		if (e->row == EMPTY)
			return EMPTY;
		if (e->hash == h && memcmp(s->windows[e->row], w, ROWSCAN_WINDOW) == 0)
			return e->row;
	}
}

static void
add_row(struct rowscan *s, const uint8_t *w)
{
	uint64_t h;

	if (says_nothing(w)) {
		s->skipped++;
		return;
	}
	h = hash_window(w);
	if (s->table && lookup(s, h, w) != EMPTY)
		return;
	if (s->n_rows >= s->max_rows || grow(s) < 0) {
		s->skipped++;
		return;
	}
	memcpy(s->windows[s->n_rows], w, ROWSCAN_WINDOW);
	insert(s->table, s->table_bits, s->bitmap, s->bitmap_bits, h, (uint32_t)s->n_rows);
	s->n_rows++;
}

void
rowscan_add_plane(struct rowscan *s, const uint8_t *plane, size_t stride, uint32_t width,
		  uint32_t rows)
{
	if (!s || !plane || width < ROWSCAN_WINDOW)
		return;
	for (uint32_t r = 0; r < rows; r++)
		add_row(s, plane + (size_t)r * stride);
}

/* Whether the window w, of hash h, is held. */
static inline bool
held(const struct rowscan *s, unsigned shift, uint64_t h, const uint8_t *w)
{
	size_t b = (size_t)((h * MIX) >> shift);

	return __builtin_expect((s->bitmap[b >> 6] >> (b & 63)) & 1, 0) && lookup(s, h, w) != EMPTY;
}

size_t
rowscan_search(const struct rowscan *s, const uint8_t *p, size_t len, size_t *ret_first)
{
	size_t last, half, found_a = 0, found_b = 0, first_a = 0, first_b = 0;
	unsigned shift;
	uint64_t a, b;

	if (!s || !p || s->n_rows == 0 || len < ROWSCAN_WINDOW)
		return 0;
	shift = 64 - s->bitmap_bits;
	last = len - ROWSCAN_WINDOW; /* last offset a window can start at */

	/*
	 * Two independent hashes rolled side by side, over offsets [0, half) and [half, last]:
	 * the multiply of one runs while the other's waits, about twice as fast as one chain.
	 */
	half = (last + 1) / 2;
	a = hash_window(p);
	b = hash_window(p + half);
	for (size_t i = 0; i < half; i++) {
		size_t j = half + i;

		if (held(s, shift, a, p + i) && found_a++ == 0)
			first_a = i;
		if (held(s, shift, b, p + j) && found_b++ == 0)
			first_b = j;
		a = a * HASH_BASE - s->out_mul[p[i]] + p[i + ROWSCAN_WINDOW];
		if (j < last)
			b = b * HASH_BASE - s->out_mul[p[j]] + p[j + ROWSCAN_WINDOW];
	}
	/* [half, last] has one offset more than [0, half) when their total is odd. */
	if (2 * half < last + 1 && held(s, shift, b, p + last) && found_b++ == 0)
		first_b = last;

	if (ret_first && (found_a || found_b))
		*ret_first = found_a ? first_a : first_b;
	return found_a + found_b;
}
