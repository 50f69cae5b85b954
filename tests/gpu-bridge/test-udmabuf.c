/* SPDX-License-Identifier: MIT */
/*
 * udmabuf: the list building (TAP tests, always), and, with /dev/udmabuf, a guest-memory
 * blob exported as a dma-buf of the guest's own pages. The latter part runs as a separate
 * exitcode test that exits 77 without the device (CROSSBUF_TEST_UDMABUF_HW=1 selects it).
 */
#include "harness.h"
#include "testutil.h"
#include "udmabuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#define DMA_BUF_MAGIC 0x444d4142

static void
test_merge(void)
{
	struct gpu_udmabuf_item items[] = {
		{.memfd = 5, .offset = 0, .size = 4096},
		{.memfd = 5, .offset = 4096, .size = 8192},
		{.memfd = 5, .offset = 20480, .size = 4096}, /* a gap */
		{.memfd = 6, .offset = 24576, .size = 4096}, /* another memfd */
		{.memfd = 6, .offset = 28672, .size = 4096},
	};

	g_assert_cmpint(gpu_udmabuf_merge(items, G_N_ELEMENTS(items)), ==, 3);
	g_assert_cmpuint(items[0].size, ==, 12288);
	g_assert_cmpuint(items[1].offset, ==, 20480);
	g_assert_cmpint(items[2].memfd, ==, 6);
	g_assert_cmpuint(items[2].size, ==, 8192);
}

static void
test_refuses(void)
{
	struct gpu_udmabuf_item it = {.memfd = 3, .offset = 100, .size = 4096};
	struct gpu_udmabuf_item *many;
	int fd = -1;

	g_assert_cmpint(gpu_udmabuf_create(NULL, &it, 1, &fd), ==, -EINVAL);
	it = (struct gpu_udmabuf_item){.memfd = 3, .offset = 0, .size = 100};
	g_assert_cmpint(gpu_udmabuf_create(NULL, &it, 1, &fd), ==, -EINVAL);
	it = (struct gpu_udmabuf_item){.memfd = 3, .offset = 0, .size = 0};
	g_assert_cmpint(gpu_udmabuf_create(NULL, &it, 1, &fd), ==, -EINVAL);
	it = (struct gpu_udmabuf_item){.memfd = 3, .offset = UINT64_MAX & ~4095ull, .size = 8192};
	g_assert_cmpint(gpu_udmabuf_create(NULL, &it, 1, &fd), ==, -EINVAL);
	g_assert_cmpint(gpu_udmabuf_create(NULL, &it, 0, &fd), ==, -EINVAL);
	/* more pieces than the kernel takes, even after merging */
	many = g_new0(struct gpu_udmabuf_item, GPU_UDMABUF_MAX_ITEMS + 1);
	for (unsigned i = 0; i <= GPU_UDMABUF_MAX_ITEMS; i++)
		many[i] =
			(struct gpu_udmabuf_item){.memfd = 3, .offset = i * 8192ull, .size = 4096};
	g_assert_cmpint(gpu_udmabuf_create(NULL, many, GPU_UDMABUF_MAX_ITEMS + 1, &fd), ==, -E2BIG);
	g_free(many);
	it = (struct gpu_udmabuf_item){.memfd = 3, .offset = 0, .size = 4096};
	g_assert_cmpint(gpu_udmabuf_create("/nonexistent/udmabuf", &it, 1, &fd), ==, -ENODEV);
	g_assert_cmpint(fd, ==, -1);
}

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

/* With /dev/udmabuf: a cross-device guest blob is the guest's pages, both ways. */
static int
hw_main(void)
{
	struct harness h;
	struct harness_options o = {.guest_memfd = true};
	struct virtio_gpu_mem_entry e[4];
	struct statfs sfs;
	uint8_t *guest, *map;
	uint64_t gpa;

	if (access("/dev/udmabuf", R_OK | W_OK) < 0) {
		fprintf(stderr, "no /dev/udmabuf: skipped\n");
		return CB_TEST_EXIT_SKIP;
	}
	harness_init(&h, &o);
	gpa = harness_alloc(&h, 16384, &guest);
	gpu_guest_backing_pages(gpa, 16384, 4096, e, 4);
	/* not in order: the dma-buf follows the guest's list, not guest-physical order */
	{
		struct virtio_gpu_mem_entry t = e[1];
		e[1] = e[2];
		e[2] = t;
	}
	cb_test_pattern(guest, 16384, 3);
	CHECK(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_GUEST,
					     VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE, 0, 16384, e,
					     4) == VIRTIO_GPU_RESP_OK_NODATA);
	CHECK(harness_live_exports(&h) == 1);
	CHECK(fstatfs(h.exports[0].fd, &sfs) == 0 && sfs.f_type == DMA_BUF_MAGIC);
	map = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, h.exports[0].fd, 0);
	CHECK(map != MAP_FAILED);
	CHECK(memcmp(map, guest, 4096) == 0);
	CHECK(memcmp(map + 4096, guest + 8192, 4096) == 0);
	CHECK(memcmp(map + 8192, guest + 4096, 4096) == 0);
	/* zero copy: a write through the dma-buf is in the guest's page */
	map[0] ^= 0xff;
	CHECK(map[0] == guest[0]);
	munmap(map, 16384);
	CHECK(h.exports[0].info.flags == CROSSBUF_BUFFER_GUEST_MAPPABLE);
	harness_finish(&h);
	return 0;
}

int
main(int argc, char **argv)
{
	if (g_getenv("CROSSBUF_TEST_UDMABUF_HW") != NULL)
		return hw_main();
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/udmabuf/merge", test_merge);
	cb_test_add("/gpu-bridge/udmabuf/refuses", test_refuses);
	return g_test_run();
}
