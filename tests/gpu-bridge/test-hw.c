/* SPDX-License-Identifier: MIT */
/*
 * The GBM backend on a real render node: an NV12 video buffer and an XRGB scanout created,
 * filled by a transfer and exported as dma-bufs. Exits 77 (skipped) without
 * /dev/dri/renderD*: it never passes silently.
 */
#include "harness.h"
#include "testutil.h"

#include <drm_fourcc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#define DMA_BUF_MAGIC 0x444d4142

static const char *
find_render_node(void)
{
	static char node[32];

	for (int minor = 128; minor < 192; minor++) {
		snprintf(node, sizeof(node), "/dev/dri/renderD%d", minor);
		if (access(node, R_OK | W_OK) == 0)
			return node;
	}
	return NULL;
}

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

static int
check_device(struct gpu_backend *be)
{
	struct guest_mem gm;
	struct gpu_device *dev;
	struct gpu_device_config config = {0};
	struct gpu_request req = {0};
	struct gpu_response resp;
	struct gpu_resource_info info;
	struct statfs sfs;
	static uint8_t guest[64 * 64 * 4];
	struct guest_sg_entry sg = {.gpa = 0x1000, .len = sizeof(guest)};
	int fd;

	guest_mem_init(&gm);
	CHECK(guest_mem_add_region(&gm, 0x1000, sizeof(guest), guest) == 0);
	config.backend = be;
	config.mem = &gm;
	config.num_scanouts = 1;
	CHECK(gpu_device_new(&config, &dev) == 0);

	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_3D;
	req.create_3d.resource_id = 1;
	req.create_3d.target = GPU_PIPE_TEXTURE_2D;
	req.create_3d.format = GPU_VIRGL_FORMAT_NV12;
	req.create_3d.width = 64;
	req.create_3d.height = 64;
	req.create_3d.depth = 1;
	req.create_3d.array_size = 1;
	CHECK(gpu_device_execute(dev, &req, 0, &resp) == VIRTIO_GPU_RESP_OK_NODATA);
	CHECK(gpu_device_get_resource(dev, 1, &info) == 0);
	CHECK(info.layout.fourcc == DRM_FORMAT_NV12);
	CHECK(info.layout.num_planes == 2);
	CHECK(gpu_device_dup_resource_fd(dev, 1, &fd) == 0);
	CHECK(fstatfs(fd, &sfs) == 0 && sfs.f_type == DMA_BUF_MAGIC);
	close(fd);

	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING;
	req.attach_backing.resource_id = 1;
	req.attach_backing.backing = (struct gpu_backing){.n_entries = 1, .entries = &sg};
	CHECK(gpu_device_execute(dev, &req, 0, &resp) == VIRTIO_GPU_RESP_OK_NODATA);
	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D;
	req.transfer_2d.resource_id = 1;
	req.transfer_2d.r = (struct gpu_rect){0, 0, 64, 64};
	CHECK(gpu_device_execute(dev, &req, 0, &resp) == VIRTIO_GPU_RESP_OK_NODATA);
	gpu_device_free(dev);
	return 0;
}

int
main(void)
{
	const char *node = find_render_node();
	struct gpu_backend *be;
	char reason[256];
	int r;

	if (node == NULL) {
		fprintf(stderr, "no /dev/dri/renderD*: skipped\n");
		return CB_TEST_EXIT_SKIP;
	}
	r = gpu_backend_select(GPU_BACKEND_GBM, node, &be, reason, sizeof(reason));
	fprintf(stderr, "%s\n", reason);
	if (r < 0)
		return r == -EOPNOTSUPP ? CB_TEST_EXIT_SKIP : 1;
	r = check_device(be);
	gpu_backend_destroy(be);
	return r;
}
