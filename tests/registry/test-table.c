/* SPDX-License-Identifier: MIT */
#include "table.h"
#include "testutil.h"

#include <errno.h>
#include <string.h>

#define VAL(i) GSIZE_TO_POINTER((gsize)(i) + 1)

static struct cb_table *
table_new(void)
{
	struct cb_table *t = NULL;

	g_assert_cmpint(cb_table_new(&t), ==, 0);
	g_assert_nonnull(t);
	return t;
}

static void
random_key(GRand *rand, uint8_t key[16])
{
	for (int i = 0; i < 16; i += 4) {
		guint32 r = g_rand_int(rand);
		memcpy(key + i, &r, 4);
	}
}

/* A GHashTable of 16-byte keys is the reference model. */
static guint
key_hash(gconstpointer p)
{
	guint h = 2166136261u;
	const uint8_t *k = p;

	for (int i = 0; i < 16; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

static gboolean
key_equal(gconstpointer a, gconstpointer b)
{
	return memcmp(a, b, 16) == 0;
}

static GHashTable *
model_new(void)
{
	return g_hash_table_new_full(key_hash, key_equal, g_free, NULL);
}

/* The table holds exactly the model's entries, each reachable and each iterated once. */
static void
assert_same(struct cb_table *t, GHashTable *model)
{
	GHashTableIter mi;
	gpointer k, v;
	struct cb_table_iter it;
	const uint8_t *key;
	void *value;
	guint seen = 0;
	g_autoptr(GHashTable) visited = g_hash_table_new(key_hash, key_equal);

	g_assert_cmpuint(cb_table_count(t), ==, g_hash_table_size(model));
	g_hash_table_iter_init(&mi, model);
	while (g_hash_table_iter_next(&mi, &k, &v))
		g_assert_true(cb_table_get(t, k) == v);

	cb_table_iter_init(&it);
	while (cb_table_iter_next(t, &it, &key, &value)) {
		g_assert_true(g_hash_table_lookup(model, key) == value);
		g_assert_true(g_hash_table_add(visited, (gpointer)key));
		seen++;
	}
	g_assert_cmpuint(seen, ==, g_hash_table_size(model));
}

static void
test_basic(void)
{
	struct cb_table *t = table_new();
	uint8_t a[16] = {1}, b[16] = {2}, c[16] = {1};

	c[15] = 1;
	g_assert_cmpuint(cb_table_count(t), ==, 0);
	g_assert_null(cb_table_get(t, a));
	g_assert_null(cb_table_remove(t, a));

	g_assert_cmpint(cb_table_insert(t, a, VAL(1)), ==, 0);
	g_assert_cmpint(cb_table_insert(t, b, VAL(2)), ==, 0);
	g_assert_cmpuint(cb_table_count(t), ==, 2);
	g_assert_true(cb_table_get(t, a) == VAL(1));
	g_assert_true(cb_table_get(t, b) == VAL(2));
	g_assert_null(cb_table_get(t, c));

	g_assert_true(cb_table_remove(t, a) == VAL(1));
	g_assert_null(cb_table_get(t, a));
	g_assert_null(cb_table_remove(t, a));
	g_assert_true(cb_table_get(t, b) == VAL(2));
	g_assert_cmpuint(cb_table_count(t), ==, 1);
	g_assert_cmpuint(cb_table_memory(t), >, 0);

	cb_table_free(t);
	cb_table_free(NULL);
}

static void
test_insert_duplicate(void)
{
	struct cb_table *t = table_new();
	uint8_t k[16];
	GRand *rand = g_rand_new_with_seed(g_test_rand_int());

	random_key(rand, k);
	g_assert_cmpint(cb_table_insert(t, k, VAL(1)), ==, 0);
	g_assert_cmpint(cb_table_insert(t, k, VAL(2)), ==, -EEXIST);
	g_assert_true(cb_table_get(t, k) == VAL(1));
	g_assert_cmpuint(cb_table_count(t), ==, 1);

	/* Still refused when the duplicate would be the insert that grows the table. */
	for (int i = 0; i < 11; i++) {
		uint8_t o[16];

		random_key(rand, o);
		g_assert_cmpint(cb_table_insert(t, o, VAL(100 + i)), ==, 0);
	}
	g_assert_cmpuint(cb_table_count(t), ==, 12);
	size_t mem = cb_table_memory(t);
	g_assert_cmpint(cb_table_insert(t, k, VAL(3)), ==, -EEXIST);
	g_assert_cmpuint(cb_table_memory(t), ==, mem);
	g_assert_true(cb_table_get(t, k) == VAL(1));

	g_assert_true(cb_table_remove(t, k) == VAL(1));
	g_assert_cmpint(cb_table_insert(t, k, VAL(4)), ==, 0);
	g_assert_true(cb_table_get(t, k) == VAL(4));

	cb_table_free(t);
	g_rand_free(rand);
}

static void
test_key_copied(void)
{
	struct cb_table *t = table_new();
	uint8_t k[16], orig[16];
	const uint8_t *ik;
	struct cb_table_iter it;

	memset(k, 0x5a, sizeof(k));
	memcpy(orig, k, sizeof(k));
	g_assert_cmpint(cb_table_insert(t, k, VAL(1)), ==, 0);
	memset(k, 0xa5, sizeof(k));
	g_assert_null(cb_table_get(t, k));
	g_assert_true(cb_table_get(t, orig) == VAL(1));

	cb_table_iter_init(&it);
	g_assert_cmpint(cb_table_iter_next(t, &it, &ik, NULL), ==, 1);
	g_assert_true(ik != orig && ik != k);
	g_assert_cmpmem(ik, 16, orig, 16);
	cb_table_free(t);
}

/*
 * Random inserts, removes and lookups drawn from a universe of universe keys, checked op by
 * op against the model, and in full every so often. Small universes keep the table small
 * so backward shifts wrap around the end of the array.
 */
/*
 * Under valgrind (the meson valgrind setup sets CROSSBUF_UNDER_VALGRIND) the sizes shrink
 * twentyfold: the same paths run, in minutes less. ASan builds run them in full.
 */
static guint
scaled(guint n)
{
	return g_getenv("CROSSBUF_UNDER_VALGRIND") != NULL ? n / 20 : n;
}

static void
test_random_model(const void *data)
{
	const guint universe = GPOINTER_TO_UINT(data);
	const guint ops = scaled(200000);
	GRand *rand = g_rand_new_with_seed(g_test_rand_int());
	uint8_t(*keys)[16] = g_malloc_n(universe, 16);
	g_autoptr(GHashTable) model = model_new();
	struct cb_table *t = table_new();

	for (guint i = 0; i < universe; i++) {
		random_key(rand, keys[i]);
		/* Half the keys are near-duplicates of another: one byte differs. */
		if (i > 0 && g_rand_boolean(rand)) {
			memcpy(keys[i], keys[g_rand_int_range(rand, 0, (gint32)i)], 16);
			keys[i][g_rand_int_range(rand, 0, 16)] ^=
				(uint8_t)g_rand_int_range(rand, 1, 256);
		}
	}

	for (guint op = 0; op < ops; op++) {
		const uint8_t *k = keys[g_rand_int_range(rand, 0, (gint32)universe)];
		void *expect = g_hash_table_lookup(model, k);
		/* Phases bias towards inserting or removing, so the table grows and shrinks. */
		gboolean filling = (op / (ops / 8)) % 2 == 0;
		guint dice = g_rand_int_range(rand, 0, 100);

		if (dice < (filling ? 60u : 25u)) {
			void *v = VAL(op);
			int r = cb_table_insert(t, k, v);

			if (expect) {
				g_assert_cmpint(r, ==, -EEXIST);
			} else {
				g_assert_cmpint(r, ==, 0);
				g_hash_table_insert(model, g_memdup2(k, 16), v);
			}
			g_assert_true(cb_table_get(t, k) == (expect ? expect : v));
		} else if (dice < 85) {
			g_assert_true(cb_table_remove(t, k) == expect);
			g_hash_table_remove(model, k);
			g_assert_null(cb_table_get(t, k));
		} else {
			g_assert_true(cb_table_get(t, k) == expect);
		}
		g_assert_cmpuint(cb_table_count(t), ==, g_hash_table_size(model));
		if (op % 4096 == 0 || universe <= 64)
			assert_same(t, model);
	}
	assert_same(t, model);

	cb_table_free(t);
	g_free(keys);
	g_rand_free(rand);
}

static void
test_growth(void)
{
	const guint n = 300000;
	struct cb_table *t = table_new();
	size_t min_mem = cb_table_memory(t), last_mem = min_mem;
	guint resizes = 0;
	uint8_t k[16] = {0};

	for (guint i = 0; i < n; i++) {
		memcpy(k, &i, sizeof(i));
		g_assert_cmpint(cb_table_insert(t, k, VAL(i)), ==, 0);
		if (cb_table_memory(t) != last_mem) {
			g_assert_cmpuint(cb_table_memory(t), >, last_mem);
			last_mem = cb_table_memory(t);
			resizes++;
			/* After each resize every key so far is still reachable. */
			for (guint j = 0; j <= i; j++) {
				memcpy(k, &j, sizeof(j));
				g_assert_true(cb_table_get(t, k) == VAL(j));
			}
		}
	}
	g_assert_cmpuint(resizes, >=, 14);
	g_assert_cmpuint(cb_table_count(t), ==, n);
	/* 24-byte slots at a load between 3/8 and 3/4. */
	g_assert_cmpuint(cb_table_memory(t) / n, <=, 64);

	for (guint i = 0; i < n; i++) {
		memcpy(k, &i, sizeof(i));
		g_assert_true(cb_table_remove(t, k) == VAL(i));
		if (i % 50000 == 0) {
			for (guint j = i + 1; j < n; j++) {
				memcpy(k, &j, sizeof(j));
				g_assert_true(cb_table_get(t, k) == VAL(j));
			}
		}
	}
	g_assert_cmpuint(cb_table_count(t), ==, 0);
	/* It shrinks back once empty. */
	g_assert_cmpuint(cb_table_memory(t), ==, min_mem);
	cb_table_free(t);
}

static void
test_iterate(void)
{
	GRand *rand = g_rand_new_with_seed(g_test_rand_int());

	for (guint n = 0; n < 2000; n = n < 40 ? n + 1 : n * 3 / 2) {
		struct cb_table *t = table_new();
		g_autoptr(GHashTable) model = model_new();
		struct cb_table_iter it;
		const uint8_t *key;
		void *value;

		for (guint i = 0; i < n; i++) {
			uint8_t k[16];

			random_key(rand, k);
			g_assert_cmpint(cb_table_insert(t, k, VAL(i)), ==, 0);
			g_hash_table_insert(model, g_memdup2(k, 16), VAL(i));
		}
		assert_same(t, model);

		/* Remove about a third while iterating: each entry is still seen once. */
		g_autoptr(GHashTable) visited =
			g_hash_table_new_full(key_hash, key_equal, g_free, NULL);
		cb_table_iter_init(&it);
		while (cb_table_iter_next(t, &it, &key, &value)) {
			g_assert_true(g_hash_table_lookup(model, key) == value);
			g_assert_true(g_hash_table_add(visited, g_memdup2(key, 16)));
			if (g_rand_int_range(rand, 0, 3) == 0) {
				g_autofree uint8_t *copy = g_memdup2(key, 16);

				g_assert_true(cb_table_iter_remove(t, &it) == value);
				g_assert_true(g_hash_table_remove(model, copy));
				g_assert_null(cb_table_get(t, copy));
			}
		}
		g_assert_cmpuint(g_hash_table_size(visited), ==, n);
		assert_same(t, model);

		/* Then remove everything that way. */
		cb_table_iter_init(&it);
		while (cb_table_iter_next(t, &it, &key, &value)) {
			g_assert_true(cb_table_iter_remove(t, &it) == value);
		}
		g_assert_cmpuint(cb_table_count(t), ==, 0);
		cb_table_free(t);
	}
	g_rand_free(rand);
}

/*
 * Keys that differ only in a few bytes (a counter in the last two, or in the first two, or
 * one varying byte at each position) must still spread: a hash that ignored some bytes would
 * pile them into one run thousands of slots long.
 */
static void
check_spread(struct cb_table *t, guint n)
{
	g_assert_cmpuint(cb_table_count(t), ==, n);
	g_assert_cmpuint(cb_table_max_displacement(t), <, 256);
}

static void
test_adversarial(void)
{
	uint8_t k[16];

	for (int where = 0; where < 2; where++) {
		struct cb_table *t = table_new();
		int off = where == 0 ? 14 : 0;

		for (guint i = 0; i < 65536; i++) {
			memset(k, 0, sizeof(k));
			k[off] = (uint8_t)(i >> 8);
			k[off + 1] = (uint8_t)i;
			g_assert_cmpint(cb_table_insert(t, k, VAL(i)), ==, 0);
		}
		check_spread(t, 65536);
		for (guint i = 0; i < 65536; i += 2) {
			memset(k, 0, sizeof(k));
			k[off] = (uint8_t)(i >> 8);
			k[off + 1] = (uint8_t)i;
			g_assert_true(cb_table_remove(t, k) == VAL(i));
		}
		for (guint i = 0; i < 65536; i++) {
			memset(k, 0, sizeof(k));
			k[off] = (uint8_t)(i >> 8);
			k[off + 1] = (uint8_t)i;
			g_assert_true(cb_table_get(t, k) == (i % 2 ? VAL(i) : NULL));
		}
		cb_table_free(t);
	}

	/* 256 values of one byte at each of the 16 positions, all in one table. */
	struct cb_table *t = table_new();
	guint n = 0;
	for (guint pos = 0; pos < 16; pos++) {
		for (guint b = 1; b < 256; b++) {
			memset(k, 0xff, sizeof(k));
			k[pos] = (uint8_t)(0xff ^ b);
			g_assert_cmpint(cb_table_insert(t, k, VAL(n)), ==, 0);
			n++;
		}
	}
	check_spread(t, n);
	cb_table_free(t);

	/* Single-bit differences from one random key. */
	GRand *rand = g_rand_new_with_seed(g_test_rand_int());
	uint8_t base[16];
	t = table_new();
	random_key(rand, base);
	for (guint bit = 0; bit < 128; bit++) {
		memcpy(k, base, 16);
		k[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		g_assert_cmpint(cb_table_insert(t, k, VAL(bit)), ==, 0);
	}
	g_assert_cmpint(cb_table_insert(t, base, VAL(999)), ==, 0);
	check_spread(t, 129);
	for (guint bit = 0; bit < 128; bit++) {
		memcpy(k, base, 16);
		k[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		g_assert_true(cb_table_get(t, k) == VAL(bit));
	}
	cb_table_free(t);
	g_rand_free(rand);
}

/* Two tables order the same keys differently: each has its own hash seed. */
static void
test_seeded(void)
{
	struct cb_table *a = table_new(), *b = table_new();
	struct cb_table_iter ia, ib;
	void *va, *vb;
	gboolean differ = FALSE;
	uint8_t k[16] = {0};

	for (guint i = 0; i < 64; i++) {
		k[0] = (uint8_t)i;
		g_assert_cmpint(cb_table_insert(a, k, VAL(i)), ==, 0);
		g_assert_cmpint(cb_table_insert(b, k, VAL(i)), ==, 0);
	}
	cb_table_iter_init(&ia);
	cb_table_iter_init(&ib);
	while (cb_table_iter_next(a, &ia, NULL, &va)) {
		g_assert_cmpint(cb_table_iter_next(b, &ib, NULL, &vb), ==, 1);
		if (va != vb)
			differ = TRUE;
	}
	g_assert_true(differ);
	cb_table_free(a);
	cb_table_free(b);
}

static void
test_million(void)
{
	const guint n = scaled(1000000);
	GRand *rand = g_rand_new_with_seed(g_test_rand_int());
	uint8_t(*keys)[16] = g_malloc_n(n, 16);
	struct cb_table *t = table_new();
	uint8_t absent[16];

	for (guint i = 0; i < n; i++) {
		random_key(rand, keys[i]);
		/* Make them distinct whatever the generator does. */
		memcpy(keys[i], &i, sizeof(i));
		g_assert_cmpint(cb_table_insert(t, keys[i], VAL(i)), ==, 0);
	}
	g_assert_cmpuint(cb_table_count(t), ==, n);
	check_spread(t, n);
	g_test_message("1M entries: %zu bytes, %.1f bytes/entry", cb_table_memory(t),
		       (double)cb_table_memory(t) / n);

	for (guint i = 0; i < n; i++)
		g_assert_true(cb_table_get(t, keys[i]) == VAL(i));
	for (guint i = 0; i < 1000; i++) {
		random_key(rand, absent);
		memset(absent, 0xee, 4); /* never one of ours: those start with i < 1M */
		g_assert_null(cb_table_get(t, absent));
	}
	for (guint i = 0; i < n; i += 2)
		g_assert_true(cb_table_remove(t, keys[i]) == VAL(i));
	for (guint i = 0; i < n; i++)
		g_assert_true(cb_table_get(t, keys[i]) == (i % 2 ? VAL(i) : NULL));
	for (guint i = 1; i < n; i += 2)
		g_assert_true(cb_table_remove(t, keys[i]) == VAL(i));
	g_assert_cmpuint(cb_table_count(t), ==, 0);

	cb_table_free(t);
	g_free(keys);
	g_rand_free(rand);
}

static void
test_siphash(void)
{
	uint8_t data[16], other[16];
	uint64_t h;

	/* CPython 3.11 hashes bytes with SipHash-1-3; PYTHONHASHSEED=0 makes its key zero. */
	for (int i = 0; i < 16; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	g_assert_cmpint((int64_t)cb_siphash13_16(0, 0, data), ==, INT64_C(-3330045364196770949));

	/* Every key word and every data byte matters. */
	h = cb_siphash13_16(1, 2, data);
	g_assert_cmpuint(h, !=, cb_siphash13_16(1, 3, data));
	g_assert_cmpuint(h, !=, cb_siphash13_16(0, 2, data));
	g_assert_cmpuint(h, ==, cb_siphash13_16(1, 2, data));
	for (int i = 0; i < 16; i++) {
		memcpy(other, data, 16);
		other[i] ^= 0x80;
		g_assert_cmpuint(h, !=, cb_siphash13_16(1, 2, other));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	cb_test_add("/registry/table/siphash", test_siphash);
	cb_test_add("/registry/table/basic", test_basic);
	cb_test_add("/registry/table/insert-duplicate", test_insert_duplicate);
	cb_test_add("/registry/table/key-copied", test_key_copied);
	cb_test_add_data("/registry/table/random-model/universe-12", GUINT_TO_POINTER(12),
			 test_random_model);
	cb_test_add_data("/registry/table/random-model/universe-60", GUINT_TO_POINTER(60),
			 test_random_model);
	cb_test_add_data("/registry/table/random-model/universe-5000", GUINT_TO_POINTER(5000),
			 test_random_model);
	cb_test_add("/registry/table/growth", test_growth);
	cb_test_add("/registry/table/iterate", test_iterate);
	cb_test_add("/registry/table/adversarial-keys", test_adversarial);
	cb_test_add("/registry/table/per-table-seed", test_seeded);
	cb_test_add("/registry/table/million", test_million);

	return g_test_run();
}
