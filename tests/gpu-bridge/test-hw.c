/* SPDX-License-Identifier: MIT */
/*
 * Backends on a real render node. GBM: XRGB, NV12, I420 and YV12 resources created, filled
 * by a transfer and exported as read-write dma-bufs. virglrenderer (CROSSBUF_TEST_VIRGL
 * set): capsets, a context, and a resource written and read back through the renderer
 * with fenced transfers. Exits 77 (skipped) without /dev/dri/renderD*: it never passes
 * silently.
 */
#include "crossbuf/crossbuf.h"
#include "harness.h"
#include "testutil.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Creates, fills, exports and reads back one resource of a virgl format on the backend. */
static int
check_format(struct gpu_backend *be, uint32_t virgl_format, uint32_t fourcc, bool use_3d)
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
	const struct gpu_format *f = gpu_format_from_virgl(virgl_format);
	uint32_t type;
	uint8_t *map;
	int fd;

	guest_mem_init(&gm);
	CHECK(guest_mem_add_region(&gm, 0x1000, sizeof(guest), guest) == 0);
	config.backend = be;
	config.mem = &gm;
	config.num_scanouts = 1;
	CHECK(gpu_device_new(&config, &dev) == 0);

	if (use_3d) {
		req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_3D;
		req.create_3d.resource_id = 1;
		req.create_3d.target = GPU_PIPE_TEXTURE_2D;
		req.create_3d.format = virgl_format;
		req.create_3d.width = 64;
		req.create_3d.height = 64;
		req.create_3d.depth = 1;
		req.create_3d.array_size = 1;
	} else {
		req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D;
		req.create_2d.resource_id = 1;
		req.create_2d.format = virgl_format;
		req.create_2d.width = 64;
		req.create_2d.height = 64;
	}
	type = gpu_device_execute(dev, &req, 0, &resp);
	fprintf(stderr, "%s %s: %s\n", use_3d ? "CREATE_3D" : "CREATE_2D", f->name,
		gpu_cmd_name(type));
	CHECK(type == VIRTIO_GPU_RESP_OK_NODATA);
	CHECK(gpu_device_get_resource(dev, 1, &info) == 0);
	fprintf(stderr,
		"  fourcc %.4s modifier 0x%llx planes %u:", (const char *)&info.layout.fourcc,
		(unsigned long long)info.layout.modifier, info.layout.num_planes);
	for (unsigned p = 0; p < info.layout.num_planes; p++)
		fprintf(stderr, " [%llu, %u x %u]",
			(unsigned long long)info.layout.planes[p].offset,
			info.layout.planes[p].stride, info.layout.planes[p].rows);
	fprintf(stderr, " size %llu\n", (unsigned long long)info.layout.size);
	CHECK(info.layout.fourcc == fourcc);
	CHECK(info.layout.num_planes == f->num_planes);
	CHECK(gpu_device_dup_resource_fd(dev, 1, &fd) == 0);
	CHECK(fstatfs(fd, &sfs) == 0 && sfs.f_type == DMA_BUF_MAGIC);

	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING;
	req.attach_backing.resource_id = 1;
	req.attach_backing.backing = (struct gpu_backing){.n_entries = 1, .entries = &sg};
	CHECK(gpu_device_execute(dev, &req, 0, &resp) == VIRTIO_GPU_RESP_OK_NODATA);
	cb_test_pattern(guest, sizeof(guest), virgl_format);
	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D;
	req.transfer_2d.resource_id = 1;
	req.transfer_2d.r = (struct gpu_rect){0, 0, 64, 64};
	type = gpu_device_execute(dev, &req, 0, &resp);
	if (type != VIRTIO_GPU_RESP_OK_NODATA) {
		void *m = mmap(NULL, info.layout.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		fprintf(stderr, "  TRANSFER_TO_HOST_2D: %s (mmap of the dma-buf: %s)\n",
			gpu_cmd_name(type), m == MAP_FAILED ? strerror(errno) : "works");
	}
	CHECK(type == VIRTIO_GPU_RESP_OK_NODATA);

	/* registered in a registry, another client resolves it as a dma-buf with our layout */
	{
		struct crossbuf_registry *reg;
		struct crossbuf_client *gpu, *other;
		struct crossbuf_buffer_info bi;
		int other_fd = -1;

		CHECK(crossbuf_registry_new(&reg) == 0);
		CHECK(crossbuf_client_new(&gpu) == 0 && crossbuf_client_new(&other) == 0);
		CHECK(crossbuf_client_connect_embedded(gpu, reg) == 0);
		CHECK(crossbuf_client_connect_embedded(other, reg) == 0);
		CHECK(gpu_device_set_crossbuf_client(dev, gpu) == 0);
		gpu_device_set_features(dev, gpu_device_get_features(dev));
		memset(&req, 0, sizeof(req));
		req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID;
		req.resource.resource_id = 1;
		type = gpu_device_execute(dev, &req, 0, &resp);
		fprintf(stderr, "  ASSIGN_UUID: %s\n", gpu_cmd_name(type));
		CHECK(type == VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
		CHECK(crossbuf_client_lookup(other, resp.uuid.uuid, &bi, &other_fd) == 0);
		CHECK(bi.fd_kind == CROSSBUF_FD_KIND_DMABUF);
		CHECK(bi.fourcc == fourcc && bi.num_planes == f->num_planes);
		CHECK(bi.planes[f->num_planes - 1].offset ==
		      info.layout.planes[f->num_planes - 1].offset);
		close(other_fd);
		crossbuf_client_unref(other);
		crossbuf_client_unref(gpu);
		crossbuf_registry_unref(reg);
	}

	/* another user of the dma-buf sees the guest's first row (linear layout) */
	map = mmap(NULL, info.layout.size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED);
	CHECK(memcmp(map + info.layout.planes[0].offset, guest, 64 * f->cpp[0]) == 0);
	munmap(map, info.layout.size);
	close(fd);
	gpu_device_free(dev);
	return 0;
}

/*
 * The virglrenderer backend: a 2D resource written with TRANSFER_TO_HOST_2D and read back
 * with TRANSFER_FROM_HOST_3D through the renderer, contexts and a capset.
 */
static int
check_virgl(struct gpu_backend *be)
{
	struct guest_mem gm;
	struct gpu_device *dev;
	struct gpu_device_config config = {0};
	struct gpu_request req = {0};
	struct gpu_response resp;
	struct virtio_gpu_config vc;
	static uint8_t guest[64 * 64 * 4], expect[64 * 64 * 4];
	struct guest_sg_entry sg = {.gpa = 0x1000, .len = sizeof(guest)};
	uint32_t type;

	guest_mem_init(&gm);
	CHECK(guest_mem_add_region(&gm, 0x1000, sizeof(guest), guest) == 0);
	config.backend = be;
	config.mem = &gm;
	config.num_scanouts = 1;
	CHECK(gpu_device_new(&config, &dev) == 0);
	CHECK(gpu_device_get_features(dev) & (1ull << VIRTIO_GPU_F_VIRGL));
	gpu_device_get_config(dev, &vc);
	fprintf(stderr, "virgl: %u capsets\n", vc.num_capsets);
	CHECK(vc.num_capsets >= 1);

	req.hdr.type = VIRTIO_GPU_CMD_GET_CAPSET_INFO;
	type = gpu_device_execute(dev, &req, 0, &resp);
	fprintf(stderr, "GET_CAPSET_INFO: %s id %u version %u size %u\n", gpu_cmd_name(type),
		resp.capset_info.capset_id, resp.capset_info.capset_max_version,
		resp.capset_info.capset_max_size);
	CHECK(type == VIRTIO_GPU_RESP_OK_CAPSET_INFO);

	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_CTX_CREATE;
	req.hdr.ctx_id = 1;
	strcpy(req.ctx_create.name, "test");
	CHECK(gpu_device_execute(dev, &req, 0, &resp) == VIRTIO_GPU_RESP_OK_NODATA);

	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D;
	req.create_2d.resource_id = 1;
	req.create_2d.format = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;
	req.create_2d.width = 64;
	req.create_2d.height = 64;
	type = gpu_device_execute(dev, &req, 0, &resp);
	fprintf(stderr, "CREATE_2D: %s\n", gpu_cmd_name(type));
	CHECK(type == VIRTIO_GPU_RESP_OK_NODATA);
	{
		struct gpu_resource_info info;
		CHECK(gpu_device_get_resource(dev, 1, &info) == 0);
		fprintf(stderr, "  exported layout: fourcc %.4s planes %u stride %u size %llu\n",
			(const char *)&info.layout.fourcc, info.layout.num_planes,
			info.layout.planes[0].stride, (unsigned long long)info.layout.size);
	}
	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING;
	req.attach_backing.resource_id = 1;
	req.attach_backing.backing = (struct gpu_backing){.n_entries = 1, .entries = &sg};
	CHECK(gpu_device_execute(dev, &req, 0, &resp) == VIRTIO_GPU_RESP_OK_NODATA);
	cb_test_pattern(guest, sizeof(guest), 99);
	memcpy(expect, guest, sizeof(expect));
	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D;
	req.hdr.flags = VIRTIO_GPU_FLAG_FENCE;
	req.hdr.fence_id = 1;
	req.transfer_2d.resource_id = 1;
	req.transfer_2d.r = (struct gpu_rect){0, 0, 64, 64};
	type = gpu_device_execute(dev, &req, 0, &resp);
	fprintf(stderr, "TRANSFER_TO_HOST_2D (fenced): %s\n", gpu_cmd_name(type));
	CHECK(type == VIRTIO_GPU_RESP_OK_NODATA);
	memset(guest, 0, sizeof(guest));
	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D;
	req.hdr.flags = VIRTIO_GPU_FLAG_FENCE;
	req.hdr.fence_id = 2;
	req.transfer_3d.resource_id = 1;
	req.transfer_3d.box = (struct gpu_box){.w = 64, .h = 64, .d = 1};
	req.transfer_3d.stride = 256;
	type = gpu_device_execute(dev, &req, 0, &resp);
	fprintf(stderr, "TRANSFER_FROM_HOST_3D (fenced): %s\n", gpu_cmd_name(type));
	CHECK(type == VIRTIO_GPU_RESP_OK_NODATA);
	/* X8: compare B, G, R only */
	for (unsigned i = 0; i < sizeof(guest); i += 4)
		CHECK(memcmp(guest + i, expect + i, 3) == 0);
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
	if (getenv("CROSSBUF_TEST_VIRGL") != NULL) {
		r = gpu_backend_select(GPU_BACKEND_VIRGL, node, &be, reason, sizeof(reason));
		fprintf(stderr, "%s\n", reason);
		if (r < 0)
			return r == -EOPNOTSUPP ? CB_TEST_EXIT_SKIP : 1;
		r = check_virgl(be);
		gpu_backend_destroy(be);
		return r;
	}
	r = gpu_backend_select(GPU_BACKEND_GBM, node, &be, reason, sizeof(reason));
	fprintf(stderr, "%s\n", reason);
	if (r < 0)
		return r == -EOPNOTSUPP ? CB_TEST_EXIT_SKIP : 1;
	r = check_format(be, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, DRM_FORMAT_XRGB8888, false);
	if (r == 0)
		r = check_format(be, GPU_VIRGL_FORMAT_NV12, DRM_FORMAT_NV12, true);
	if (r == 0)
		r = check_format(be, GPU_VIRGL_FORMAT_IYUV, DRM_FORMAT_YUV420, true);
	if (r == 0)
		r = check_format(be, GPU_VIRGL_FORMAT_YV12, DRM_FORMAT_YVU420, true);
	gpu_backend_destroy(be);
	return r;
}
