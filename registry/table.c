/* SPDX-License-Identifier: MIT */
/*
 * Linear probing with backward-shift deletion (Knuth vol. 3, 6.4, algorithm R): no
 * tombstones, so lookups of absent keys stay short however many removals happened.
 *
 * A slot is the 16-byte key and the value pointer, 24 bytes, plus one tag byte in a separate
 * array: 25 bytes per slot, so 33 to 67 bytes per entry while the table grows (between the
 * 3/8 load just after growing and the 3/4 that makes it grow); it halves once under 1/8.
 * The tag array is 1/25 of the table and mostly stays in cache: probes for an absent key
 * rarely leave it, and probes for a present one read one key. No full hash is stored: the
 * table rehashes a key only when it moves it (on growth and on the backward shift that
 * follows a removal).
 *
 * Bucket positions come from SipHash-1-3 of the key under a 128-bit per-table seed from
 * getrandom(), so a peer choosing UUIDs cannot predict which of them collide.
 */
#include "table.h"

#include "macro.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MIN_CAPACITY 16

struct slot {
	uint8_t key[16];
	void *value;
};

struct cb_table {
	struct slot *slots; /* capacity slots, then capacity tags, in one allocation */
	uint8_t *tags;      /* 0: the slot is empty, else tag_of() its key's hash */
	size_t mask;        /* capacity - 1 */
	size_t count;
	uint64_t k0, k1; /* SipHash key */
};

static inline uint64_t
rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t
load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl64(v1, 13);                                                               \
		v1 ^= v0;                                                                          \
		v0 = rotl64(v0, 32);                                                               \
		v2 += v3;                                                                          \
		v3 = rotl64(v3, 16);                                                               \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl64(v3, 21);                                                               \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl64(v1, 17);                                                               \
		v1 ^= v2;                                                                          \
		v2 = rotl64(v2, 32);                                                               \
	} while (0)

/* SipHash-1-3 of exactly 16 bytes: two message blocks, then the length block. */
uint64_t
cb_siphash13_16(uint64_t k0, uint64_t k1, const uint8_t data[16])
{
	uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
	uint64_t m0 = load_le64(data), m1 = load_le64(data + 8);
	const uint64_t b = UINT64_C(16) << 56;

	v3 ^= m0;
	SIPROUND;
	v0 ^= m0;
	v3 ^= m1;
	SIPROUND;
	v0 ^= m1;
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint64_t
hash_key(const struct cb_table *table, const uint8_t key[16])
{
	return cb_siphash13_16(table->k0, table->k1, key);
}

/*
 * The top 7 bits of the hash with the high bit set: probes compare this byte first and read
 * a key only when it matches, and an absent key is usually settled in the tag array alone.
 * Bucket positions use the low bits, so the two are independent.
 */
static inline uint8_t
tag_of(uint64_t hash)
{
	return (uint8_t)((hash >> 57) | 0x80);
}

static inline bool
key_equal(const uint8_t a[16], const uint8_t b[16])
{
	return memcmp(a, b, 16) == 0;
}

static inline size_t
capacity(const struct cb_table *table)
{
	return table->mask + 1;
}

/* Above this many entries the table grows: 3/4 of the capacity. */
static inline size_t
grow_threshold(size_t cap)
{
	return cap / 4 * 3;
}

int
cb_table_new(struct cb_table **ret_table)
{
	struct cb_table *table;
	uint8_t seed[16];
	size_t got = 0;

	assert(ret_table);

	while (got < sizeof(seed)) {
		ssize_t n = getrandom(seed + got, sizeof(seed) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		got += (size_t)n;
	}

	table = calloc(1, sizeof(*table));
	if (!table)
		return -ENOMEM;
	table->slots = calloc(MIN_CAPACITY, sizeof(struct slot) + 1);
	if (!table->slots) {
		free(table);
		return -ENOMEM;
	}
	table->tags = (uint8_t *)(table->slots + MIN_CAPACITY);
	table->mask = MIN_CAPACITY - 1;
	table->k0 = load_le64(seed);
	table->k1 = load_le64(seed + 8);
	*ret_table = table;
	return 0;
}

void
cb_table_free(struct cb_table *table)
{
	if (!table)
		return;
	free(table->slots);
	free(table);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
find_slot(const struct cb_table *table, const uint8_t key[16], uint64_t hash)
{
	const uint8_t tag = tag_of(hash);
	size_t i = (size_t)hash & table->mask;

	for (;;) {
		uint8_t t = table->tags[i];

		if (t == 0 || (t == tag && key_equal(table->slots[i].key, key)))
			return i;
		i = (i + 1) & table->mask;
	}
}

void *
cb_table_get(const struct cb_table *table, const uint8_t uuid[16])
{
	size_t i;

	assert(table && uuid);

	i = find_slot(table, uuid, hash_key(table, uuid));
	return table->tags[i] ? table->slots[i].value : NULL;
}

/* Moves every entry into a table of new_cap slots. The old array stays on failure. */
static int
resize(struct cb_table *table, size_t new_cap)
{
	struct slot *old = table->slots, *slots;
	const uint8_t *old_tags = table->tags;
	size_t old_cap = capacity(table), new_mask = new_cap - 1;
	uint8_t *tags;

	assert(new_cap >= MIN_CAPACITY && (new_cap & new_mask) == 0);
	assert(table->count <= grow_threshold(new_cap));

	slots = calloc(new_cap, sizeof(struct slot) + 1);
	if (!slots)
		return -ENOMEM;
	tags = (uint8_t *)(slots + new_cap);
	for (size_t i = 0; i < old_cap; i++) {
		uint64_t hash;
		size_t j;

		if (!old_tags[i])
			continue;
		hash = hash_key(table, old[i].key);
		j = (size_t)hash & new_mask;
		while (tags[j])
			j = (j + 1) & new_mask;
		slots[j] = old[i];
		tags[j] = old_tags[i];
	}
	free(old);
	table->slots = slots;
	table->tags = tags;
	table->mask = new_mask;
	return 0;
}

int
cb_table_insert(struct cb_table *table, const uint8_t uuid[16], void *value)
{
	uint64_t hash;
	size_t i;

	assert(table && uuid && value);

	hash = hash_key(table, uuid);
	i = find_slot(table, uuid, hash);
	if (table->tags[i])
		return -EEXIST;

	if (table->count + 1 > grow_threshold(capacity(table))) {
		int r;

		if (capacity(table) > SIZE_MAX / 2 / sizeof(struct slot))
			return -ENOMEM;
		r = resize(table, capacity(table) * 2);
		if (r < 0)
			return r;
		i = find_slot(table, uuid, hash);
	}

	memcpy(table->slots[i].key, uuid, 16);
	table->slots[i].value = value;
	table->tags[i] = tag_of(hash);
	table->count++;
	return 0;
}

/*
 * Empties slot i and closes the gap: each later entry of the run moves back into the hole
 * unless its home bucket lies after the hole (cyclically), where it could no longer be found.
 */
static void *
remove_at(struct cb_table *table, size_t i)
{
	struct slot *slots = table->slots;
	uint8_t *tags = table->tags;
	const size_t mask = table->mask;
	void *value = slots[i].value;
	size_t j = i;

	assert(tags[i]);

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!tags[j])
			break;
		home = (size_t)hash_key(table, slots[j].key) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			slots[i] = slots[j];
			tags[i] = tags[j];
			i = j;
		}
	}
	tags[i] = 0;
	table->count--;
	return value;
}

void *
cb_table_remove(struct cb_table *table, const uint8_t uuid[16])
{
	size_t i;
	void *value;

	assert(table && uuid);

	i = find_slot(table, uuid, hash_key(table, uuid));
	if (!table->tags[i])
		return NULL;
	value = remove_at(table, i);

	/* Shrinking is best effort: on -ENOMEM the table just stays larger. */
	if (capacity(table) > MIN_CAPACITY && table->count < capacity(table) / 8)
		(void)resize(table, capacity(table) / 2);
	return value;
}

size_t
cb_table_count(const struct cb_table *table)
{
	assert(table);
	return table->count;
}

size_t
cb_table_memory(const struct cb_table *table)
{
	assert(table);
	return sizeof(*table) + capacity(table) * (sizeof(struct slot) + 1);
}

size_t
cb_table_max_displacement(const struct cb_table *table)
{
	size_t max = 0;

	assert(table);
	for (size_t i = 0; i <= table->mask; i++) {
		size_t home;

		if (!table->tags[i])
			continue;
		home = (size_t)hash_key(table, table->slots[i].key) & table->mask;
		max = MAX(max, (i - home) & table->mask);
	}
	return max;
}

/*
 * Iteration starts just after an empty slot and walks the array once around. A backward
 * shift never crosses an empty slot, so the one removal allowed during iteration
 * (cb_table_iter_remove) only moves entries not yet visited into the removed slot or
 * between it and the next empty one: revisiting that slot sees each entry exactly once.
 *
 * iter->pos is 0 before the first step, then the number of slots stepped over plus one.
 */
void
cb_table_iter_init(struct cb_table_iter *iter)
{
	assert(iter);
	*iter = (struct cb_table_iter){0};
}

int
cb_table_iter_next(const struct cb_table *table, struct cb_table_iter *iter,
		   const uint8_t **ret_uuid, void **ret_value)
{
	assert(table && iter);

	if (iter->pos == 0) {
		size_t e = 0;

		/* Load stays at or under 3/4: there is always an empty slot. */
		while (table->tags[e])
			e++;
		iter->start = e;
		iter->pos = 1;
	}

	while (iter->pos <= table->mask) {
		size_t i = (iter->start + iter->pos) & table->mask;
		const struct slot *s = &table->slots[i];

		iter->pos++;
		if (table->tags[i]) {
			if (ret_uuid)
				*ret_uuid = s->key;
			if (ret_value)
				*ret_value = s->value;
			return 1;
		}
	}
	return 0;
}

void *
cb_table_iter_remove(struct cb_table *table, struct cb_table_iter *iter)
{
	size_t i;

	assert(table && iter && iter->pos > 1);

	/* The slot cb_table_iter_next() returned last; step back so it is looked at again. */
	iter->pos--;
	i = (iter->start + iter->pos) & table->mask;
	return remove_at(table, i);
}
