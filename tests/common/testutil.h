/* SPDX-License-Identifier: MIT */
/* Helpers shared by crossbuf's GTest programs. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Registers a test that must leave the fd table as it found it: the set of open fds is
 * taken before fn runs and compared after, and any difference fails the test with the
 * fds' targets.
 */
void cb_test_add(const char *path, void (*fn)(void));
void cb_test_add_data(const char *path, const void *data, void (*fn)(const void *data));

/* The open fds of this process, as a sorted array (free with g_array_unref). */
GArray *cb_test_fd_snapshot(void);
/* Fails the test if the open fds differ from before; names the ones that differ. */
void cb_test_fd_assert_same(GArray *before);
/* Number of open fds in process pid (reads /proc/PID/fd). -1 if it cannot be read. */
int cb_test_count_fds(int pid);

/* A memfd of len bytes holding data (or zeroes if data is NULL), sealed against shrinking. */
int cb_test_memfd(const char *name, const void *data, size_t len);
/* Same, not sealed. */
int cb_test_memfd_unsealed(const char *name, const void *data, size_t len);
/* A memfd_secret of len bytes, or -errno (callers skip when the kernel lacks it). */
int cb_test_memfd_secret(size_t len);

/* Fills buf with a pattern derived from seed, for checking that bytes crossed intact. */
void cb_test_pattern(void *buf, size_t len, uint32_t seed);

/* Path of a file under tests/data (G_TEST_SRCDIR aware). Free with g_free. */
char *cb_test_data_path(const char *name);

/* Exit code meson reads as "skipped" for exitcode-protocol tests. */
#define CB_TEST_EXIT_SKIP 77
