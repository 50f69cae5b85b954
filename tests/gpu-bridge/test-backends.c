/* SPDX-License-Identifier: MIT */
/* Backend choice and the memfd backend's buffers. */
#include "backend.h"
#include "testutil.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static bool
have_render_node(void)
{
	for (int minor = 128; minor < 192; minor++) {
		char node[32];
		snprintf(node, sizeof(node), "/dev/dri/renderD%d", minor);
		if (access(node, R_OK | W_OK) == 0)
			return true;
	}
	return false;
}

static void
test_choice_names(void)
{
	enum gpu_backend_choice c;

	g_assert_cmpint(gpu_backend_choice_from_string("auto", &c), ==, 0);
	g_assert_cmpint(c, ==, GPU_BACKEND_AUTO);
	g_assert_cmpint(gpu_backend_choice_from_string("memfd", &c), ==, 0);
	g_assert_cmpint(c, ==, GPU_BACKEND_MEMFD);
	g_assert_cmpint(gpu_backend_choice_from_string("gbm", &c), ==, 0);
	g_assert_cmpint(c, ==, GPU_BACKEND_GBM);
	g_assert_cmpint(gpu_backend_choice_from_string("virgl", &c), ==, 0);
	g_assert_cmpint(c, ==, GPU_BACKEND_VIRGL);
	g_assert_cmpint(gpu_backend_choice_from_string("GBM", &c), ==, -EINVAL);
	g_assert_cmpint(gpu_backend_choice_from_string("", &c), ==, -EINVAL);
	g_assert_cmpint(gpu_backend_choice_from_string(NULL, &c), ==, -EINVAL);
}

static void
test_select_auto(void)
{
	struct gpu_backend *b = NULL;
	char reason[256];

	g_assert_cmpint(gpu_backend_select(GPU_BACKEND_AUTO, NULL, &b, reason, sizeof(reason)), ==,
			0);
	g_test_message("%s", reason);
	if (have_render_node()) {
		g_assert_nonnull(strstr(reason, "gbm"));
	} else {
		/* says which backend runs and why */
		g_assert_cmpstr(b->ops->name, ==, "memfd");
		g_assert_nonnull(strstr(reason, "backend memfd"));
		g_assert_nonnull(strstr(reason, "auto"));
		g_assert_nonnull(strstr(reason, "gbm unavailable"));
	}
	gpu_backend_destroy(b);

	g_assert_cmpint(gpu_backend_select(GPU_BACKEND_MEMFD, NULL, &b, reason, sizeof(reason)), ==,
			0);
	g_assert_cmpstr(b->ops->name, ==, "memfd");
	g_assert_nonnull(strstr(reason, "asked for"));
	gpu_backend_destroy(b);

	/* a render node that does not exist: the asked-for backend fails, and says why */
	b = NULL;
	g_assert_cmpint(gpu_backend_select(GPU_BACKEND_GBM, "/nonexistent/renderD1", &b, reason,
					   sizeof(reason)),
			<, 0);
	g_assert_null(b);
	g_assert_nonnull(strstr(reason, "failed"));
	g_assert_cmpint(gpu_backend_select(GPU_BACKEND_VIRGL, "/nonexistent/renderD1", &b, reason,
					   sizeof(reason)),
			<, 0);
	g_assert_nonnull(strstr(reason, "virgl"));
}

static void
test_memfd_image(void)
{
	struct gpu_backend *be;
	struct gpu_buffer *buf;
	uint8_t *base;
	struct gpu_buffer_desc d = {
		.kind = GPU_BUFFER_IMAGE,
		.resource_id = 1,
		.format = gpu_format_from_fourcc(DRM_FORMAT_NV12),
		.width = 1920,
		.height = 1080,
	};

	g_assert_cmpint(gpu_backend_memfd_new(&be), ==, 0);
	g_assert_cmpint(be->ops->buffer_create(be, &d, &buf), ==, 0);
	g_assert_cmpuint(buf->layout.fourcc, ==, DRM_FORMAT_NV12);
	g_assert_cmpuint(buf->layout.planes[0].stride, ==, 1920);
	g_assert_cmpuint(buf->layout.planes[0].rows, ==, 1090);
	g_assert_cmpuint(lseek(buf->fd, 0, SEEK_END), ==, buf->layout.size);
	g_assert_cmpint(fcntl(buf->fd, F_GET_SEALS) & F_SEAL_SHRINK, ==, F_SEAL_SHRINK);
	g_assert_cmpint(fcntl(buf->fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
	g_assert_cmpint(be->ops->begin_cpu(be, buf, GPU_CPU_WRITE, false, &base), ==, 0);
	base[buf->layout.size - 1] = 0x77;
	be->ops->end_cpu(be, buf, GPU_CPU_WRITE);
	be->ops->buffer_destroy(be, buf);

	/* sizes the layout refuses */
	d.width = 0;
	g_assert_cmpint(be->ops->buffer_create(be, &d, &buf), ==, -EINVAL);
	d.width = 1920;
	d.format = NULL;
	g_assert_cmpint(be->ops->buffer_create(be, &d, &buf), ==, -EINVAL);
	d = (struct gpu_buffer_desc){.kind = GPU_BUFFER_BLOB, .size = 0};
	g_assert_cmpint(be->ops->buffer_create(be, &d, &buf), ==, -EINVAL);
	d.size = UINT64_MAX;
	g_assert_cmpint(be->ops->buffer_create(be, &d, &buf), ==, -EINVAL);
	d.size = 5000;
	g_assert_cmpint(be->ops->buffer_create(be, &d, &buf), ==, 0);
	g_assert_cmpuint(buf->layout.size, ==, 8192);
	be->ops->buffer_destroy(be, buf);
	gpu_backend_destroy(be);
}

static void
test_memfd_protected(void)
{
	struct gpu_backend *be;
	struct gpu_buffer *buf;
	uint8_t *base;
	char path[64], target[64] = {0};
	struct gpu_buffer_desc d = {
		.kind = GPU_BUFFER_BLOB,
		.size = 4096,
		.protected_ = true,
	};
	int probe = cb_test_memfd_secret(4096);

	if (probe < 0) {
		g_test_skip("no memfd_secret");
		return;
	}
	close(probe);
	g_assert_cmpint(gpu_backend_memfd_new(&be), ==, 0);
	g_assert_cmpint(be->ops->buffer_create(be, &d, &buf), ==, 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", buf->fd);
	g_assert_cmpint(readlink(path, target, sizeof(target) - 1), >, 0);
	g_assert_nonnull(strstr(target, "secretmem"));
	/* read() on memfd_secret fails: the kernel does not reach it for anyone */
	{
		char c;
		g_assert_cmpint(pread(buf->fd, &c, 1, 0), <, 0);
	}
	/* the device never maps it unless a trusted path asks */
	g_assert_cmpint(be->ops->begin_cpu(be, buf, GPU_CPU_READ, false, &base), ==, -EPERM);
	g_assert_cmpint(be->ops->begin_cpu(be, buf, GPU_CPU_READ, true, &base), ==, 0);
	be->ops->end_cpu(be, buf, GPU_CPU_READ);
	be->ops->buffer_destroy(be, buf);
	gpu_backend_destroy(be);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/backend/choice-names", test_choice_names);
	cb_test_add("/gpu-bridge/backend/select", test_select_auto);
	cb_test_add("/gpu-bridge/backend/memfd-image", test_memfd_image);
	cb_test_add("/gpu-bridge/backend/memfd-protected", test_memfd_protected);
	return g_test_run();
}
