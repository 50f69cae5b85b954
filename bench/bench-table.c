/* SPDX-License-Identifier: MIT */
/*
 * The registry's UUID table against GLib's GHashTable, measured in the same run.
 *
 * For 1k, 100k and 1M entries of random 16-byte keys: lookups per second (hits, in a random
 * order, and misses), as the median of several repetitions that alternate between the
 * tables, and bytes per entry. GHashTable gets 16-byte keys it owns (one g_malloc each, as
 * cb_table owns copies) and custom hash/equal functions, twice: with a cheap unkeyed hash,
 * its best case and the baseline of the ratio, and with the same keyed SipHash-1-3 that
 * cb_table pays for, which compares the two structures alone. Memory is the mallinfo2()
 * growth while a table is filled (heap plus mmapped chunks), and for cb_table also what
 * cb_table_memory() reports.
 *
 * Usage: bench-table [repetitions]. Prints numbers only; never fails on them.
 */
#include "table.h"

#include <errno.h>
#include <glib.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOOKUPS (1u << 22) /* per timed pass, whatever the table size */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static guint
key_hash(gconstpointer p)
{
	uint64_t lo, hi;

	memcpy(&lo, p, 8);
	memcpy(&hi, (const uint8_t *)p + 8, 8);
	lo = (lo ^ (hi * UINT64_C(0x9e3779b97f4a7c15))) * UINT64_C(0xbf58476d1ce4e5b9);
	return (guint)(lo >> 32);
}

static uint64_t sip_k0, sip_k1;

static guint
key_hash_sip(gconstpointer p)
{
	return (guint)cb_siphash13_16(sip_k0, sip_k1, p);
}

static gboolean
key_equal(gconstpointer a, gconstpointer b)
{
	return memcmp(a, b, 16) == 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Keeps the compiler from dropping lookups whose results are unused. */
static volatile uintptr_t sink;

static double
time_ours(const struct cb_table *t, const uint8_t (*keys)[16], const uint32_t *order)
{
	uintptr_t acc = 0;
	double start = now();

	for (unsigned i = 0; i < LOOKUPS; i++)
		acc += (uintptr_t)cb_table_get(t, keys[order[i]]);
	double elapsed = now() - start;
	sink += acc;
	return LOOKUPS / elapsed;
}

static double
time_glib(GHashTable *h, const uint8_t (*keys)[16], const uint32_t *order)
{
	uintptr_t acc = 0;
	double start = now();

	for (unsigned i = 0; i < LOOKUPS; i++)
		acc += (uintptr_t)g_hash_table_lookup(h, keys[order[i]]);
	double elapsed = now() - start;
	sink += acc;
	return LOOKUPS / elapsed;
}

static void
fill_random(GRand *rand, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 4) {
		guint32 r = g_rand_int(rand);
		memcpy(p + i, &r, MIN(4, len - i));
	}
}

static void
measure(double (*fn)(const void *, const uint8_t (*)[16], const uint32_t *), const void *table,
	const uint8_t (*keys)[16], const uint8_t (*misses)[16], const uint32_t *order, double *hit,
	double *miss)
{
	*hit = fn(table, keys, order);
	*miss = fn(table, misses, order);
}

static double
time_ours_p(const void *t, const uint8_t (*keys)[16], const uint32_t *order)
{
	return time_ours(t, keys, order);
}

static double
time_glib_p(const void *h, const uint8_t (*keys)[16], const uint32_t *order)
{
	return time_glib((GHashTable *)h, keys, order);
}

static GHashTable *
glib_fill(GHashFunc hash, const uint8_t (*keys)[16], unsigned n, size_t *ret_heap)
{
	size_t base = heap_in_use();
	GHashTable *h = g_hash_table_new_full(hash, key_equal, g_free, NULL);

	for (unsigned i = 0; i < n; i++)
		g_hash_table_insert(h, g_memdup2(keys[i], 16), (gpointer)keys[i]);
	*ret_heap = heap_in_use() - base;
	return h;
}

static void
print_row(unsigned n, const char *kind, double *ours, double *glib, double *glib_sip, unsigned reps)
{
	double o = median(ours, reps), g = median(glib, reps), gs = median(glib_sip, reps);

	printf("%8u  %-4s  %8.1f  %8.1f  %6.2f    %8.1f  %6.2f\n", n, kind, o / 1e6, g / 1e6, o / g,
	       gs / 1e6, o / gs);
}

static void
run(GRand *rand, unsigned n, unsigned reps, GString *memory)
{
	uint8_t(*keys)[16] = g_malloc_n(n, 16);
	uint8_t(*misses)[16] = g_malloc_n(n, 16);
	uint32_t *order = g_new(uint32_t, LOOKUPS);
	double *v = g_new(double, 6 * reps);
	double *ours_hit = v, *ours_miss = v + reps, *glib_hit = v + 2 * reps,
	       *glib_miss = v + 3 * reps, *sip_hit = v + 4 * reps, *sip_miss = v + 5 * reps;
	struct cb_table *t = NULL;
	GHashTable *h, *hs;
	size_t base, ours_heap, glib_heap, sip_heap;
	int r;

	fill_random(rand, keys, (size_t)n * 16);
	fill_random(rand, misses, (size_t)n * 16);
	for (unsigned i = 0; i < LOOKUPS; i++)
		order[i] = (uint32_t)g_rand_int_range(rand, 0, (gint32)n);

	base = heap_in_use();
	r = cb_table_new(&t);
	if (r < 0) {
		fprintf(stderr, "cb_table_new: %s\n", strerror(-r));
		exit(EXIT_FAILURE);
	}
	for (unsigned i = 0; i < n; i++) {
		/* A collision among n random 128-bit keys is not going to happen. */
		r = cb_table_insert(t, keys[i], keys[i]);
		if (r < 0) {
			fprintf(stderr, "cb_table_insert: %s\n", strerror(-r));
			exit(EXIT_FAILURE);
		}
	}
	ours_heap = heap_in_use() - base;
	h = glib_fill(key_hash, (const uint8_t(*)[16])keys, n, &glib_heap);
	hs = glib_fill(key_hash_sip, (const uint8_t(*)[16])keys, n, &sip_heap);

	for (unsigned rep = 0; rep < reps; rep++) {
		measure(time_ours_p, t, (const uint8_t(*)[16])keys, (const uint8_t(*)[16])misses,
			order, &ours_hit[rep], &ours_miss[rep]);
		measure(time_glib_p, h, (const uint8_t(*)[16])keys, (const uint8_t(*)[16])misses,
			order, &glib_hit[rep], &glib_miss[rep]);
		measure(time_glib_p, hs, (const uint8_t(*)[16])keys, (const uint8_t(*)[16])misses,
			order, &sip_hit[rep], &sip_miss[rep]);
	}
	print_row(n, "hit", ours_hit, glib_hit, sip_hit, reps);
	print_row(n, "miss", ours_miss, glib_miss, sip_miss, reps);
	g_string_append_printf(memory, "%8u  %10.1f  %9.1f  %9.1f  %6.2f\n", n,
			       (double)cb_table_memory(t) / n, (double)ours_heap / n,
			       (double)glib_heap / n, (double)ours_heap / (double)glib_heap);

	g_hash_table_destroy(hs);
	g_hash_table_destroy(h);
	cb_table_free(t);
	g_free(v);
	g_free(order);
	g_free(misses);
	g_free(keys);
}

int
main(int argc, char **argv)
{
	static const unsigned sizes[] = {1000, 100000, 1000000};
	unsigned reps = 5;
	GRand *rand = g_rand_new();
	GString *memory = g_string_new(NULL);

	if (argc > 1)
		reps = (unsigned)CLAMP(atoi(argv[1]), 1, 1000);
	sip_k0 = ((uint64_t)g_rand_int(rand) << 32) | g_rand_int(rand);
	sip_k1 = ((uint64_t)g_rand_int(rand) << 32) | g_rand_int(rand);

#ifndef __OPTIMIZE__
	printf("# note: built without optimisation; use a release build for real numbers\n");
#endif
	printf("# cb_table vs GHashTable, random 16-byte keys, %u lookups per pass in random\n"
	       "# order, median of %u passes, in millions of lookups per second.\n"
	       "# GLib: unkeyed multiply hash (the baseline); GLib-sip: keyed SipHash-1-3 as ours.\n",
	       LOOKUPS, reps);
	printf("# entries  kind      ours      GLib  ours/GLib  GLib-sip  ours/GLib-sip\n");
	for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
		run(rand, sizes[i], reps, memory);
		fflush(stdout);
	}
	printf("#\n# bytes per entry: ours by cb_table_memory() and by mallinfo2() growth,\n"
	       "# GLib by mallinfo2() growth (its table arrays plus one 16-byte key allocation)\n");
	printf("# entries  ours-table  ours-heap  GLib-heap  ours/GLib\n%s", memory->str);

	g_string_free(memory, TRUE);
	g_rand_free(rand);
	return 0;
}
