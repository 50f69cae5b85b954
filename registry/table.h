/* SPDX-License-Identifier: MIT */
/*
 * The registry's index: 16-byte UUID -> pointer. Open addressing, O(1) expected for get,
 * insert and remove at any size (benchmarked to a million entries). The table owns a copy
 * of every key; it never owns the values.
 *
 * Keys may be chosen by peers (an exporter may supply its own UUID), so bucket positions
 * come from a keyed hash with a per-table random seed: a peer cannot aim collisions at it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct cb_table;

struct cb_table_iter {
	size_t pos;   /* opaque */
	size_t start; /* opaque */
};

int cb_table_new(struct cb_table **ret_table);
/* Frees the table, not the values. Accepts NULL. */
void cb_table_free(struct cb_table *table);

/* The value stored under uuid, or NULL. */
void *cb_table_get(const struct cb_table *table, const uint8_t uuid[16]);
/* Stores value (not NULL) under uuid. -EEXIST if uuid is present (the old value stays), -ENOMEM. */
int cb_table_insert(struct cb_table *table, const uint8_t uuid[16], void *value);
/* Removes uuid and returns its value, or NULL if absent. */
void *cb_table_remove(struct cb_table *table, const uint8_t uuid[16]);
size_t cb_table_count(const struct cb_table *table);
/* Bytes the table itself has allocated (slots and header), for the memory benchmark. */
size_t cb_table_memory(const struct cb_table *table);

/*
 * Iteration: cb_table_iter_init() then cb_table_iter_next() until it returns 0. The table
 * must not be modified while iterating, except through cb_table_iter_remove().
 */
void cb_table_iter_init(struct cb_table_iter *iter);
/* 1 with the next entry (ret_* may be NULL), 0 when every entry has been seen. */
int cb_table_iter_next(const struct cb_table *table, struct cb_table_iter *iter,
		       const uint8_t **ret_uuid, void **ret_value);
/*
 * Removes the entry cb_table_iter_next() returned last and returns its value; iteration
 * then goes on with every other entry seen exactly once. Never shrinks the table.
 */
void *cb_table_iter_remove(struct cb_table *table, struct cb_table_iter *iter);

/*
 * The longest distance of an entry from its home bucket, for tests and benchmarks that
 * check the hash spreads keys. O(capacity).
 */
size_t cb_table_max_displacement(const struct cb_table *table);

/* SipHash-1-3 of 16 bytes under the key (k0, k1): the table's hash, for tests and benchmarks. */
uint64_t cb_siphash13_16(uint64_t k0, uint64_t k1, const uint8_t data[16]);
