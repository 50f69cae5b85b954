/* SPDX-License-Identifier: MIT */
/*
 * Fingerprints of picture rows, and a search for them in a memory range: crossbuf-guest takes
 * the rows of the frames a reference decoder produces and looks for them in guest RAM, to show
 * that no decoded row ever reached it.
 *
 * A row's fingerprint is its first ROWSCAN_WINDOW bytes. The search looks at every byte
 * offset with a Rabin-Karp rolling hash over the window, a bitmap filter sized to stay in
 * cache, and a hash table; every candidate is confirmed with memcmp, so a reported match is
 * the exact bytes of a held row. Not thread-safe while rows are added; searches of a set that
 * no longer changes may run concurrently.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ROWSCAN_WINDOW 32 /* bytes of a row that make its fingerprint */

struct rowscan;

/*
 * A new, empty set, *ret, or -EINVAL/-ENOMEM. max_rows bounds memory (at most about 150 bytes per
 * row held): distinct rows beyond it are counted as skipped. Values above 2^31 are taken as 2^31.
 */
int rowscan_new(size_t max_rows, struct rowscan **ret);
/* Accepts NULL. */
void rowscan_free(struct rowscan *s);

/*
 * Adds the first ROWSCAN_WINDOW bytes of each of the rows of a plane (width >= ROWSCAN_WINDOW,
 * else none added): row r starts at plane + r * stride. Rows that say nothing (fewer than 8
 * distinct byte values in the window: flat black/grey areas that any memory may hold) are
 * skipped and counted. Duplicates are stored once (and not counted as skipped). Rows beyond
 * max_rows, or that could not be stored for lack of memory, are counted as skipped.
 */
void rowscan_add_plane(struct rowscan *s, const uint8_t *plane, size_t stride, uint32_t width,
		       uint32_t rows);
size_t rowscan_rows(const struct rowscan *s);    /* distinct fingerprints held */
size_t rowscan_skipped(const struct rowscan *s); /* flat, beyond max_rows, or no memory */

/*
 * Searches [p, p + len) at every byte offset for any held window (windows that would cross
 * p + len are not looked at): returns the number of offsets where one starts, and the first
 * such offset in *ret_first (may be NULL; untouched when there is none). O(len).
 */
size_t rowscan_search(const struct rowscan *s, const uint8_t *p, size_t len, size_t *ret_first);
