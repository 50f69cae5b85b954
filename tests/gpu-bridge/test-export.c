/* SPDX-License-Identifier: MIT */
/*
 * The export path through libcrossbuf with an embedded registry: what another device
 * resolving the UUID gets, and that UNREF tells the watchers.
 */
#include "crossbuf/crossbuf.h"
#include "harness.h"
#include "testutil.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define XRGB VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM

struct registry_fixture {
	struct crossbuf_registry *reg;
	struct crossbuf_client *gpu;      /* the device's client */
	struct crossbuf_client *consumer; /* another device */
};

static struct crossbuf_client *
client(struct crossbuf_registry *reg, enum crossbuf_device_kind kind, uint32_t rights)
{
	struct crossbuf_client *c;

	g_assert_cmpint(crossbuf_client_new(&c), ==, 0);
	g_assert_cmpint(crossbuf_client_set_device_kind(c, kind), ==, 0);
	g_assert_cmpint(crossbuf_client_set_rights(c, rights), ==, 0);
	g_assert_cmpint(crossbuf_client_connect_embedded(c, reg), ==, 0);
	return c;
}

static void
fixture_init(struct registry_fixture *f, struct harness *h, const struct harness_options *o,
	     uint32_t consumer_rights)
{
	struct harness_options opts = o != NULL ? *o : (struct harness_options){0};

	opts.no_exporter = true;
	harness_init(h, &opts);
	g_assert_cmpint(crossbuf_registry_new(&f->reg), ==, 0);
	f->gpu = client(f->reg, CROSSBUF_DEVICE_GPU, 0);
	f->consumer = client(f->reg, CROSSBUF_DEVICE_MEDIA, consumer_rights);
	g_assert_cmpint(gpu_device_set_crossbuf_client(h->dev, f->gpu), ==, 0);
}

static void
fixture_finish(struct registry_fixture *f, struct harness *h)
{
	harness_finish(h);
	crossbuf_client_unref(f->consumer);
	crossbuf_client_unref(f->gpu);
	crossbuf_registry_unref(f->reg);
}

struct removal {
	unsigned calls;
	uint8_t uuid[16];
	enum crossbuf_removal_reason reason;
};

static void
on_removed(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	   enum crossbuf_removal_reason reason)
{
	struct removal *r = userdata;
	r->calls++;
	memcpy(r->uuid, uuid, 16);
	r->reason = reason;
}

static void
dispatch_until(struct crossbuf_client *c, struct removal *r)
{
	for (int i = 0; i < 100 && r->calls == 0; i++) {
		struct pollfd pfd = {.fd = crossbuf_client_get_fd(c), .events = POLLIN};
		poll(&pfd, 1, 50);
		crossbuf_client_dispatch(c);
	}
}

static void
test_assign_uuid_resolves(void)
{
	struct harness h;
	struct registry_fixture f;
	struct crossbuf_buffer_info info;
	struct removal removal = {0};
	uint8_t uuid[16], again[16], *guest, *map;
	const uint32_t w = 128, hgt = 64, pitch = w * 4;
	int fd = -1;

	fixture_init(&f, &h, NULL, 0);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, w, hgt), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(harness_attach(&h, 1, pitch * hgt, &guest), ==, VIRTIO_GPU_RESP_OK_NODATA);
	cb_test_pattern(guest, pitch * hgt, 42);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, w, hgt), ==,
			VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, again), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpmem(uuid, 16, again, 16);

	/* another device resolves it and sees the guest's pixels */
	g_assert_cmpint(crossbuf_client_lookup(f.consumer, uuid, &info, &fd), ==, 0);
	g_assert_cmpuint(info.width, ==, w);
	g_assert_cmpuint(info.height, ==, hgt);
	g_assert_cmpuint(info.fourcc, ==, DRM_FORMAT_XRGB8888);
	g_assert_cmpuint(info.num_planes, ==, 1);
	g_assert_cmpuint(info.device_kind, ==, CROSSBUF_DEVICE_GPU);
	g_assert_cmpuint(info.resource_id, ==, 1);
	g_assert_cmpuint(info.fd_kind, ==, CROSSBUF_FD_KIND_MEMFD);
	g_assert_cmpuint(info.flags, ==, 0);
	map = mmap(NULL, info.size, PROT_READ, MAP_SHARED, fd, 0);
	g_assert_true(map != MAP_FAILED);
	for (uint32_t y = 0; y < hgt; y++)
		g_assert_cmpmem(map + info.planes[0].offset + y * info.planes[0].stride, pitch,
				guest + y * pitch, pitch);
	munmap(map, info.size);
	close(fd);

	/* UNREF removes the entry and tells the watchers */
	crossbuf_client_set_removed_callback(f.consumer, on_removed, &removal);
	g_assert_cmpint(crossbuf_client_watch(f.consumer, uuid), ==, 0);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==, VIRTIO_GPU_RESP_OK_NODATA);
	dispatch_until(f.consumer, &removal);
	g_assert_cmpuint(removal.calls, ==, 1);
	g_assert_cmpmem(removal.uuid, 16, uuid, 16);
	g_assert_cmpint(removal.reason, ==, CROSSBUF_REMOVED_BY_OWNER);
	g_assert_cmpint(crossbuf_client_lookup(f.consumer, uuid, &info, &fd), ==, -ENOENT);
	fixture_finish(&f, &h);
}

static void
test_nv12_layout_published(void)
{
	struct harness h;
	struct registry_fixture f;
	struct virtio_gpu_resource_create_3d c = {0};
	struct crossbuf_buffer_info info;
	struct gpu_resource_info res;
	uint8_t uuid[16];
	int fd = -1;

	fixture_init(&f, &h, NULL, 0);
	c.resource_id = htole32(2);
	c.target = htole32(2);
	c.format = htole32(166);
	c.width = htole32(1280);
	c.height = htole32(720);
	c.depth = htole32(1);
	c.array_size = htole32(1);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 2, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpint(crossbuf_client_lookup(f.consumer, uuid, &info, &fd), ==, 0);
	g_assert_cmpint(gpu_device_get_resource(h.dev, 2, &res), ==, 0);
	g_assert_cmpuint(info.fourcc, ==, DRM_FORMAT_NV12);
	g_assert_cmpuint(info.num_planes, ==, 2);
	g_assert_cmpuint(info.modifier, ==, DRM_FORMAT_MOD_LINEAR);
	g_assert_cmpuint(info.planes[0].stride, ==, res.layout.planes[0].stride);
	g_assert_cmpuint(info.planes[1].offset, ==, res.layout.planes[1].offset);
	/* room for a decoder's padded rows: 738 for 720p */
	g_assert_cmpuint(info.planes[1].offset, >=, 738u * info.planes[0].stride);
	g_assert_cmpuint(info.size, >=, res.layout.size);
	close(fd);
	fixture_finish(&f, &h);
}

static void
test_protected_needs_right(void)
{
	struct harness h;
	struct registry_fixture f;
	struct harness_options o = {.protect_nv12 = true};
	struct virtio_gpu_resource_create_3d c = {0};
	struct crossbuf_buffer_info info;
	struct crossbuf_client *trusted;
	uint8_t uuid[16];
	int fd = -1;

	int probe = cb_test_memfd_secret(4096);
	if (probe < 0) {
		g_test_skip("no memfd_secret");
		return;
	}
	close(probe);
	fixture_init(&f, &h, &o, 0);
	c.resource_id = htole32(3);
	c.target = htole32(2);
	c.format = htole32(166);
	c.width = htole32(64);
	c.height = htole32(64);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 3, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpint(crossbuf_client_lookup(f.consumer, uuid, &info, &fd), ==, -EACCES);
	trusted = client(f.reg, CROSSBUF_DEVICE_MEDIA, CROSSBUF_RIGHT_PROTECTED);
	g_assert_cmpint(crossbuf_client_lookup(trusted, uuid, &info, &fd), ==, 0);
	g_assert_cmpuint(info.flags & CROSSBUF_BUFFER_PROTECTED, ==, CROSSBUF_BUFFER_PROTECTED);
	g_assert_cmpuint(info.fd_kind, ==, CROSSBUF_FD_KIND_MEMFD_SECRET);
	close(fd);
	crossbuf_client_unref(trusted);
	fixture_finish(&f, &h);
}

static void
test_cross_device_blob(void)
{
	struct harness h;
	struct registry_fixture f;
	struct crossbuf_buffer_info info;
	uint8_t uuid[16];
	int fd = -1;

	fixture_init(&f, &h, NULL, 0);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 4, VIRTIO_GPU_BLOB_MEM_HOST3D,
						       VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE |
							       VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE,
						       0, 1 << 20, NULL, 0),
			==, VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 4, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpint(crossbuf_client_lookup(f.consumer, uuid, &info, &fd), ==, 0);
	g_assert_cmpuint(info.size, ==, 1 << 20);
	g_assert_cmpuint(info.fourcc, ==, 0);
	g_assert_cmpuint(info.flags, ==, CROSSBUF_BUFFER_GUEST_MAPPABLE);
	close(fd);
	/* the device going away removes its entries */
	gpu_device_free(h.dev);
	h.dev = NULL;
	g_assert_cmpint(crossbuf_client_lookup(f.consumer, uuid, &info, &fd), ==, -ENOENT);
	fixture_finish(&f, &h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/export/assign-uuid-resolves", test_assign_uuid_resolves);
	cb_test_add("/gpu-bridge/export/nv12-layout-published", test_nv12_layout_published);
	cb_test_add("/gpu-bridge/export/protected-needs-right", test_protected_needs_right);
	cb_test_add("/gpu-bridge/export/cross-device-blob", test_cross_device_blob);
	return g_test_run();
}
