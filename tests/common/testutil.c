/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int
int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

GArray *
cb_test_fd_snapshot(void)
{
	GArray *fds = g_array_new(FALSE, FALSE, sizeof(int));
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;

	g_assert_nonnull(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		int fd = atoi(de->d_name);
		if (fd == dirfd(dir))
			continue;
		g_array_append_val(fds, fd);
	}
	closedir(dir);
	g_array_sort(fds, int_cmp);
	return fds;
}

static char *
fd_target(int fd)
{
	char path[64], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return g_strdup("?");
	target[n] = '\0';
	return g_strdup(target);
}

static bool
array_has(GArray *a, int fd)
{
	return bsearch(&fd, a->data, a->len, sizeof(int), int_cmp) != NULL;
}

void
cb_test_fd_assert_same(GArray *before)
{
	GArray *after = cb_test_fd_snapshot();
	GString *diff = g_string_new(NULL);

	for (guint i = 0; i < after->len; i++) {
		int fd = g_array_index(after, int, i);
		if (!array_has(before, fd)) {
			g_autofree char *t = fd_target(fd);
			g_string_append_printf(diff, " leaked fd %d (%s);", fd, t);
		}
	}
	for (guint i = 0; i < before->len; i++) {
		int fd = g_array_index(before, int, i);
		if (!array_has(after, fd))
			g_string_append_printf(diff, " closed fd %d it did not open;", fd);
	}
	if (diff->len > 0)
		g_error("fd table changed:%s", diff->str);
	g_string_free(diff, TRUE);
	g_array_unref(after);
}

int
cb_test_count_fds(int pid)
{
	char path[64];
	DIR *dir;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (dir == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(dir);
	return n - (pid == getpid() ? 1 : 0);
}

struct checked_test {
	void (*fn)(void);
	void (*fn_data)(const void *data);
	const void *data;
};

static void
run_checked(gconstpointer p)
{
	const struct checked_test *t = p;
	GArray *before = cb_test_fd_snapshot();

	if (t->fn != NULL)
		t->fn();
	else
		t->fn_data(t->data);
	cb_test_fd_assert_same(before);
	g_array_unref(before);
}

void
cb_test_add(const char *path, void (*fn)(void))
{
	struct checked_test *t = g_new0(struct checked_test, 1);
	t->fn = fn;
	g_test_add_data_func_full(path, t, run_checked, g_free);
}

void
cb_test_add_data(const char *path, const void *data, void (*fn)(const void *data))
{
	struct checked_test *t = g_new0(struct checked_test, 1);
	t->fn_data = fn;
	t->data = data;
	g_test_add_data_func_full(path, t, run_checked, g_free);
}

static int
memfd_with(const char *name, const void *data, size_t len, bool seal)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(ftruncate(fd, (off_t)len), ==, 0);
	if (data != NULL)
		g_assert_cmpint(pwrite(fd, data, len, 0), ==, (ssize_t)len);
	if (seal)
		g_assert_cmpint(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL), ==, 0);
	return fd;
}

int
cb_test_memfd(const char *name, const void *data, size_t len)
{
	return memfd_with(name, data, len, true);
}

int
cb_test_memfd_unsealed(const char *name, const void *data, size_t len)
{
	return memfd_with(name, data, len, false);
}

int
cb_test_memfd_secret(size_t len)
{
#ifdef SYS_memfd_secret
	int fd = (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
#else
	(void)len;
	return -ENOSYS;
#endif
}

void
cb_test_pattern(void *buf, size_t len, uint32_t seed)
{
	uint8_t *p = buf;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

char *
cb_test_data_path(const char *name)
{
	return g_test_build_filename(G_TEST_DIST, "data", name, NULL);
}
