/* SPDX-License-Identifier: MIT */
/*
 * How fast a guest's frame reaches the host buffer: TRANSFER_TO_HOST_2D of a whole 1080p
 * XRGB frame and TRANSFER_TO_HOST_3D of a 1080p NV12 frame, backed by 4 KiB guest pages
 * (the scatter-gather list of a Linux guest's shmem buffer), through the whole device
 * (decode, checks, copy). The baseline, measured in the same run, is one memcpy of the
 * same bytes between two plain buffers: the ratio is the device's cost over the copy
 * itself.
 */
#include "device.h"
#include "guest-driver.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define W      1920
#define H      1080
#define GPA    0x100000ull
#define RAM    (64u << 20)
#define ROUNDS 60

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
submit(void *userdata, const struct cb_request *req)
{
	return (int)gpu_device_process(userdata, req);
}

static struct virtio_gpu_mem_entry *
pages(uint64_t size, uint32_t *ret_n)
{
	unsigned max = (unsigned)(size / 4096 + 1);
	struct virtio_gpu_mem_entry *e = calloc(max, sizeof(*e));
	int n = gpu_guest_backing_pages(GPA, size, 4096, e, max);

	if (n < 0)
		abort();
	*ret_n = (uint32_t)n;
	return e;
}

int
main(void)
{
	uint8_t *ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *dst = malloc((size_t)W * H * 4);
	struct guest_mem gm;
	struct gpu_backend *be;
	struct gpu_device *dev;
	struct gpu_guest *g;
	struct gpu_device_config config = {0};
	struct virtio_gpu_resource_create_3d c = {0};
	struct virtio_gpu_box box = {.w = W, .h = H, .d = 1};
	struct virtio_gpu_mem_entry *e;
	uint32_t n;
	double t, base_rgb, base_nv12, dev_rgb, dev_nv12;

	if (ram == MAP_FAILED || dst == NULL)
		return 1;
	memset(ram, 0x5a, RAM);
	guest_mem_init(&gm);
	guest_mem_add_region(&gm, GPA, RAM, ram);
	if (gpu_backend_memfd_new(&be) < 0)
		return 1;
	config.backend = be;
	config.mem = &gm;
	config.num_scanouts = 1;
	if (gpu_device_new(&config, &dev) < 0 || gpu_guest_new(submit, dev, &g) < 0)
		return 1;

	/* baselines: the bytes alone, into a destination already faulted in (as the host
	 * buffer is after the warm-up transfer below) */
	memcpy(dst, ram, (size_t)W * H * 4);
	t = now();
	for (int i = 0; i < ROUNDS; i++)
		memcpy(dst, ram + (i & 1), (size_t)W * H * 4);
	base_rgb = (now() - t) / ROUNDS;
	t = now();
	for (int i = 0; i < ROUNDS; i++)
		memcpy(dst, ram + (i & 1), (size_t)W * H * 3 / 2);
	base_nv12 = (now() - t) / ROUNDS;

	gpu_guest_resource_create_2d(g, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, W, H);
	e = pages((uint64_t)W * H * 4, &n);
	gpu_guest_attach_backing(g, 1, e, n);
	free(e);
	gpu_guest_transfer_to_host_2d(g, 1, 0, 0, 0, W, H); /* warm-up: faults the buffer in */
	t = now();
	for (int i = 0; i < ROUNDS; i++)
		if (gpu_guest_transfer_to_host_2d(g, 1, 0, 0, 0, W, H) != VIRTIO_GPU_RESP_OK_NODATA)
			return 1;
	dev_rgb = (now() - t) / ROUNDS;

	c.resource_id = htole32(2);
	c.target = htole32(2);
	c.format = htole32(166);
	c.width = htole32(W);
	c.height = htole32(H);
	c.depth = htole32(1);
	c.array_size = htole32(1);
	gpu_guest_resource_create_3d(g, &c);
	e = pages((uint64_t)W * H * 3 / 2, &n);
	gpu_guest_attach_backing(g, 2, e, n);
	free(e);
	gpu_guest_transfer_3d(g, true, 2, &box, 0, 0, W, 0);
	t = now();
	for (int i = 0; i < ROUNDS; i++)
		if (gpu_guest_transfer_3d(g, true, 2, &box, 0, 0, W, 0) !=
		    VIRTIO_GPU_RESP_OK_NODATA)
			return 1;
	dev_nv12 = (now() - t) / ROUNDS;

	printf("1080p XRGB TRANSFER_TO_HOST_2D, 4 KiB pages: %.2f ms (memcpy %.2f ms), ratio %.2f\n",
	       dev_rgb * 1e3, base_rgb * 1e3, dev_rgb / base_rgb);
	printf("1080p NV12 TRANSFER_TO_HOST_3D, 4 KiB pages: %.2f ms (memcpy %.2f ms), ratio %.2f\n",
	       dev_nv12 * 1e3, base_nv12 * 1e3, dev_nv12 / base_nv12);

	gpu_guest_free(g);
	gpu_device_free(dev);
	gpu_backend_destroy(be);
	munmap(ram, RAM);
	free(dst);
	return 0;
}
