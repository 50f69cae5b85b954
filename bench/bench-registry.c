/* SPDX-License-Identifier: MIT */
/*
 * The embedded registry (crossbuf_registry_new + crossbuf_client_connect_embedded): lookups
 * per second and bytes of memory per entry, at 1k, 100k and 1M entries.
 *
 * Baseline, measured in the same run: what a VMM would write instead of using the registry,
 * a GHashTable from a 16-byte UUID (an owned copy, as the registry owns its keys) to a
 * struct with the same payload (an fd and a struct crossbuf_buffer_info), whose lookup
 * copies the info out and hands out a duplicate of the fd (F_DUPFD_CLOEXEC), exactly the
 * work crossbuf_client_lookup() promises. The raw cb_table is not the baseline: it is a part
 * of the registry, not an alternative to it; its rate is printed beside, with GHashTable's
 * (no fd), to show how much of a lookup is the table and how much the fd duplicate.
 *
 * Every lookup's fd is closed, as a consumer would. Lookups go to existing entries in a
 * random order; passes of the variants alternate, and each figure is the median of the
 * passes. Rates are per second of this thread's CPU time (user and system), not of the
 * wall clock: on a shared machine, the time other processes hold the CPU is not ours.
 *
 * Each registry entry holds its own duplicate of an fd (the registry dups what it is
 * given), so N entries need N fds: the program raises RLIMIT_NOFILE to its hard limit, and
 * every entry exports the same sealed memfd. A size that needs more fds than the limit
 * allows is reported as skipped for the registry (the baselines, which hold no fd per
 * entry, still run), and the largest size that fits is measured in addition.
 *
 * Memory is the mallinfo2() growth (heap in use plus mmapped chunks) while the entries are
 * added: for the registry its entry structs, its table and the session; for the baseline its
 * keys, structs and hash arrays. The kernel's side of the registry's fds (an 8-byte slot
 * and three bits per fd in the fd table, the struct file being shared) is not included.
 *
 * Usage: bench-registry [repetitions]. Exits non-zero only if an export or lookup fails.
 */
#include "bench-util.h"
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FD_LOOKUPS    200000u    /* per timed pass of a variant that duplicates an fd */
#define TABLE_LOOKUPS (1u << 20) /* per timed pass of a table alone */
#define FD_MARGIN     256        /* fds kept free for everything else */

/* The baseline's value: the same payload as a registry entry. */
struct plain_entry {
	int fd;
	struct crossbuf_buffer_info info;
};

enum variant {
	REGISTRY,   /* crossbuf_client_lookup() on an embedded registry, then close() */
	GLIB_DUP,   /* GHashTable lookup, info copy, F_DUPFD_CLOEXEC, close(): the baseline */
	TABLE_ONLY, /* cb_table_get() alone */
	GLIB_ONLY,  /* g_hash_table_lookup() alone */
	N_VARIANTS,
};

struct size_run {
	unsigned n;
	bool registry_ok;        /* enough fds for the registry at this size */
	double rate[N_VARIANTS]; /* lookups per second, median */
	double bytes_registry, bytes_table, bytes_glib; /* per entry */
};

static volatile uintptr_t sink;

/* The CPU time this thread has used, in nanoseconds. */
static uint64_t
cpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

	/* Cheap and unkeyed: the baseline's best case (the registry pays for a keyed hash). */
	memcpy(&lo, p, 8);
	memcpy(&hi, (const uint8_t *)p + 8, 8);
	lo = (lo ^ (hi * UINT64_C(0x9e3779b97f4a7c15))) * UINT64_C(0xbf58476d1ce4e5b9);
	return (guint)(lo >> 32);
}

static gboolean
key_equal(gconstpointer a, gconstpointer b)
{
	return memcmp(a, b, CROSSBUF_UUID_SIZE) == 0;
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

struct fixture {
	unsigned n;
	const uint8_t (*keys)[CROSSBUF_UUID_SIZE];
	const uint32_t *order; /* FD_LOOKUPS or TABLE_LOOKUPS indexes, whichever is larger */
	struct crossbuf_client *importer; /* NULL when the registry is skipped */
	GHashTable *glib;
	struct cb_table *table;
};

/* One timed pass of a variant: lookups per second, or a negative errno. */
static double
pass(const struct fixture *f, enum variant v, int *ret_error)
{
	unsigned n = v == REGISTRY || v == GLIB_DUP ? FD_LOOKUPS : TABLE_LOOKUPS;
	uintptr_t acc = 0;
	uint64_t start = cpu_now_ns(), elapsed;

	*ret_error = 0;
	switch (v) {
	case REGISTRY:
		for (unsigned i = 0; i < n; i++) {
			struct crossbuf_buffer_info info;
			int fd, r;

			r = crossbuf_client_lookup(f->importer, f->keys[f->order[i]], &info, &fd);
			if (r < 0) {
				*ret_error = r;
				return 0;
			}
			acc += info.size;
			close(fd);
		}
		break;
	case GLIB_DUP:
		for (unsigned i = 0; i < n; i++) {
			const struct plain_entry *e =
				g_hash_table_lookup(f->glib, f->keys[f->order[i]]);
			struct crossbuf_buffer_info info;
			int fd;

			if (e == NULL) {
				*ret_error = -ENOENT;
				return 0;
			}
			info = e->info;
			fd = fcntl(e->fd, F_DUPFD_CLOEXEC, 3);
			if (fd < 0) {
				*ret_error = -errno;
				return 0;
			}
			acc += info.size;
			close(fd);
		}
		break;
	case TABLE_ONLY:
		for (unsigned i = 0; i < n; i++)
			acc += (uintptr_t)cb_table_get(f->table, f->keys[f->order[i]]);
		break;
	case GLIB_ONLY:
		for (unsigned i = 0; i < n; i++)
			acc += (uintptr_t)g_hash_table_lookup(f->glib, f->keys[f->order[i]]);
		break;
	case N_VARIANTS:
		break;
	}
	elapsed = cpu_now_ns() - start;
	sink += acc;
	return (double)n * 1e9 / (double)elapsed;
}

static int
registry_fill(struct fixture *f, int memfd, struct crossbuf_registry **ret_reg,
	      struct crossbuf_client **ret_exporter, size_t *ret_heap)
{
	struct crossbuf_registry *reg = NULL;
	struct crossbuf_client *exporter = NULL, *importer = NULL;
	struct crossbuf_buffer_info info;
	size_t base = heap_in_use();
	int r;

	bench_info(&info);
	r = crossbuf_registry_new(&reg);
	if (r == 0)
		r = crossbuf_client_new(&exporter);
	if (r == 0)
		r = crossbuf_client_set_device_kind(exporter, CROSSBUF_DEVICE_GPU);
	if (r == 0)
		r = crossbuf_client_connect_embedded(exporter, reg);
	for (unsigned i = 0; r == 0 && i < f->n; i++) {
		/* The registry keeps its own duplicate of memfd: one fd per entry. */
		r = crossbuf_client_export_uuid(exporter, f->keys[i], memfd, &info);
	}
	*ret_heap = heap_in_use() - base;
	if (r == 0)
		r = crossbuf_client_new(&importer);
	if (r == 0)
		r = crossbuf_client_set_device_kind(importer, CROSSBUF_DEVICE_MEDIA);
	if (r == 0)
		r = crossbuf_client_connect_embedded(importer, reg);
	if (r < 0) {
		fprintf(stderr, "embedded registry of %u entries: %s\n", f->n, strerror(-r));
		crossbuf_client_unref(importer);
		crossbuf_client_unref(exporter);
		crossbuf_registry_unref(reg);
		return r;
	}
	f->importer = importer;
	*ret_exporter = exporter;
	*ret_reg = reg;
	return 0;
}

static int
run_size(GRand *rand, struct size_run *s, unsigned reps, int memfd)
{
	unsigned n = s->n, n_order = MAX(FD_LOOKUPS, TABLE_LOOKUPS);
	uint8_t(*keys)[CROSSBUF_UUID_SIZE] = g_malloc_n(n, CROSSBUF_UUID_SIZE);
	uint32_t *order = g_new(uint32_t, n_order);
	double *samples = g_new(double, (size_t)N_VARIANTS *reps);
	struct fixture f = {.n = n, .keys = (const uint8_t(*)[CROSSBUF_UUID_SIZE])keys};
	struct crossbuf_registry *reg = NULL;
	struct crossbuf_client *exporter = NULL;
	struct crossbuf_buffer_info info;
	size_t base, heap;
	int r = 0;

	fill_random(rand, keys, (size_t)n * CROSSBUF_UUID_SIZE);
	for (unsigned i = 0; i < n; i++) {
		/* Never the nil or all-ones UUID (the registry refuses them). */
		keys[i][0] |= 1;
		keys[i][1] &= 0xfe;
	}
	for (unsigned i = 0; i < n_order; i++)
		order[i] = (uint32_t)g_rand_int_range(rand, 0, (gint32)n);
	f.order = order;
	bench_info(&info);
	info.size = BENCH_SIZE;
	info.fd_kind = CROSSBUF_FD_KIND_MEMFD;

	/* The baseline: owned key copies and one payload struct per entry. */
	base = heap_in_use();
	f.glib = g_hash_table_new_full(key_hash, key_equal, g_free, g_free);
	for (unsigned i = 0; i < n; i++) {
		struct plain_entry *e = g_new(struct plain_entry, 1);
		e->fd = memfd;
		e->info = info;
		g_hash_table_insert(f.glib, g_memdup2(keys[i], CROSSBUF_UUID_SIZE), e);
	}
	s->bytes_glib = (double)(heap_in_use() - base) / n;

	r = cb_table_new(&f.table);
	for (unsigned i = 0; r == 0 && i < n; i++)
		r = cb_table_insert(f.table, keys[i], keys[i]);
	if (r < 0) {
		fprintf(stderr, "cb_table of %u entries: %s\n", n, strerror(-r));
		goto out;
	}
	s->bytes_table = (double)cb_table_memory(f.table) / n;

	if (s->registry_ok) {
		r = registry_fill(&f, memfd, &reg, &exporter, &heap);
		if (r < 0)
			goto out;
		s->bytes_registry = (double)heap / n;
	}

	for (unsigned rep = 0; rep < reps; rep++) {
		for (int k = 0; k < N_VARIANTS; k++) {
			/* Rotate the order of the variants from one repetition to the next. */
			enum variant v = (enum variant)((rep + (unsigned)k) % N_VARIANTS);

			if (v == REGISTRY && !s->registry_ok)
				continue;
			samples[(size_t)v * reps + rep] = pass(&f, v, &r);
			if (r < 0) {
				fprintf(stderr, "%u entries: lookup failed: %s\n", n, strerror(-r));
				goto out;
			}
		}
	}
	for (int v = 0; v < N_VARIANTS; v++)
		s->rate[v] = bench_median(samples + (size_t)v * reps, reps);

out:
	/* The exporter goes last: its entries go with it. */
	crossbuf_client_unref(f.importer);
	crossbuf_client_unref(exporter);
	crossbuf_registry_unref(reg);
	cb_table_free(f.table);
	g_hash_table_destroy(f.glib);
	g_free(samples);
	g_free(order);
	g_free(keys);
	return r;
}

int
main(int argc, char **argv)
{
	static const unsigned sizes[] = {1000, 100000, 1000000};
	struct size_run runs[G_N_ELEMENTS(sizes) + 1];
	unsigned n_runs = 0, reps = 5, fit = 0;
	uint64_t hard, soft;
	GRand *rand;
	int memfd, ret = EXIT_SUCCESS;

	if (argc > 1)
		reps = (unsigned)CLAMP(atoi(argv[1]), 1, 1000);
	soft = bench_raise_nofile(&hard);
	memfd = bench_memfd();
	if (memfd < 0) {
		fprintf(stderr, "memfd: %s\n", strerror(-memfd));
		return EXIT_FAILURE;
	}

	/* The largest round size the fd limit allows, measured too if a size does not fit. */
	if (soft > FD_MARGIN + 1000)
		fit = (unsigned)MIN((soft - FD_MARGIN) / 1000 * 1000, UINT32_MAX);
	for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
		if (sizes[i] + FD_MARGIN > soft && fit > sizes[0] &&
		    (i == 0 || fit > sizes[i - 1]) && fit < sizes[i]) {
			runs[n_runs++] = (struct size_run){.n = fit, .registry_ok = true};
		}
		runs[n_runs++] = (struct size_run){.n = sizes[i],
						   .registry_ok = sizes[i] + FD_MARGIN <= soft};
	}

#ifndef __OPTIMIZE__
	printf("# note: built without optimisation; use a release build for real numbers\n");
#endif
	printf("# embedded registry lookups (crossbuf_client_lookup + close), %u per pass; the\n"
	       "# baseline GLib+dup is a GHashTable uuid -> {fd, info} whose lookup copies the\n"
	       "# info and duplicates the fd; tables alone (no fd) %u per pass. Random existing\n"
	       "# keys, median of %u interleaved passes, millions of lookups per second of this\n"
	       "# thread's CPU time (user + system: the fd duplicate is a system call).\n"
	       "# RLIMIT_NOFILE %llu (hard %llu): the registry needs one fd per entry.\n",
	       FD_LOOKUPS, TABLE_LOOKUPS, reps, (unsigned long long)soft, (unsigned long long)hard);
	printf("# entries  registry  GLib+dup  reg/GLib+dup    cb_table  GHashTable\n");
	rand = g_rand_new();
	for (unsigned i = 0; i < n_runs; i++) {
		struct size_run *s = &runs[i];

		if (run_size(rand, s, reps, memfd) < 0) {
			ret = EXIT_FAILURE;
			break;
		}
		if (s->registry_ok)
			printf("%9u  %8.3f  %8.3f  %12.2f    %8.2f  %10.2f\n", s->n,
			       s->rate[REGISTRY] / 1e6, s->rate[GLIB_DUP] / 1e6,
			       s->rate[REGISTRY] / s->rate[GLIB_DUP], s->rate[TABLE_ONLY] / 1e6,
			       s->rate[GLIB_ONLY] / 1e6);
		else
			printf("%9u  %8s  %8.3f  %12s    %8.2f  %10.2f   (needs %u fds)\n", s->n,
			       "-", s->rate[GLIB_DUP] / 1e6, "-", s->rate[TABLE_ONLY] / 1e6,
			       s->rate[GLIB_ONLY] / 1e6, s->n + FD_MARGIN);
		fflush(stdout);
	}
	printf("#\n# bytes per entry, mallinfo2() growth while filling; 'table' is\n"
	       "# cb_table_memory() alone (part of the registry's figure); GLib is keys,\n"
	       "# payload structs and its arrays\n");
	printf("# entries  registry     table      GLib  reg/GLib\n");
	for (unsigned i = 0; ret == EXIT_SUCCESS && i < n_runs; i++) {
		const struct size_run *s = &runs[i];

		if (s->bytes_glib <= 0) /* mallinfo2() says nothing under a sanitizer */
			printf("%9u  %8s  %8.1f  %8s  %8s\n", s->n, "-", s->bytes_table, "-", "-");
		else if (s->registry_ok)
			printf("%9u  %8.1f  %8.1f  %8.1f  %8.2f\n", s->n, s->bytes_registry,
			       s->bytes_table, s->bytes_glib, s->bytes_registry / s->bytes_glib);
		else
			printf("%9u  %8s  %8.1f  %8.1f  %8s\n", s->n, "-", s->bytes_table,
			       s->bytes_glib, "-");
	}
	g_rand_free(rand);
	close(memfd);
	return ret;
}
