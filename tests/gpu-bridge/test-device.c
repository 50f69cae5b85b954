/* SPDX-License-Identifier: MIT */
/*
 * The device core driven through the guest driver library, as a Linux guest would drive
 * it: every command, its error replies, protection, and the export of resources.
 */
#include "formats.h"
#include "harness.h"
#include "testutil.h"

#include <drm_fourcc.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define OK       VIRTIO_GPU_RESP_OK_NODATA
#define E_UNSPEC VIRTIO_GPU_RESP_ERR_UNSPEC
#define E_RES    VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID
#define E_SCAN   VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID
#define E_CTX    VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID
#define E_PARAM  VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER
#define E_OOM    VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY

#define XRGB VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM

static struct gpu_sink_counts
counts(struct harness *h)
{
	struct gpu_sink_counts c;
	gpu_sink_count_get(h->sink, &c);
	return c;
}

static void
test_display_info(void)
{
	struct harness h;
	struct gpu_guest_reply reply;
	struct virtio_gpu_config config;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_get_display_info(h.guest, &reply), ==,
			VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	g_assert_cmpuint(reply.len, ==, sizeof(struct virtio_gpu_resp_display_info));
	g_assert_cmpuint(le32toh(reply.display_info.pmodes[0].r.width), ==, 640);
	g_assert_cmpuint(le32toh(reply.display_info.pmodes[0].r.height), ==, 480);
	g_assert_cmpuint(le32toh(reply.display_info.pmodes[0].enabled), ==, 1);
	g_assert_cmpuint(le32toh(reply.display_info.pmodes[1].r.width), ==, 1024);
	g_assert_cmpuint(le32toh(reply.display_info.pmodes[2].enabled), ==, 0);
	gpu_device_get_config(h.dev, &config);
	g_assert_cmpuint(le32toh(config.num_scanouts), ==, 2);
	g_assert_cmpuint(le32toh(config.num_capsets), ==, 0);
	harness_finish(&h);
}

static void
test_features(void)
{
	struct harness h;
	struct harness_options o = {.no_features = true};
	uint64_t f;

	harness_init(&h, &o);
	f = gpu_device_get_features(h.dev);
	g_assert_true(f & (1ull << VIRTIO_GPU_F_RESOURCE_UUID));
	g_assert_true(f & (1ull << VIRTIO_GPU_F_RESOURCE_BLOB));
	g_assert_true(f & (1ull << VIRTIO_GPU_F_EDID));
	/* the memfd backend does not render */
	g_assert_false(f & (1ull << VIRTIO_GPU_F_VIRGL));
	g_assert_false(f & (1ull << VIRTIO_GPU_F_CONTEXT_INIT));
	g_assert_cmpint(gpu_device_set_features(h.dev, 1ull << VIRTIO_GPU_F_VIRGL), ==, -EINVAL);
	g_assert_cmpint(gpu_device_set_features(h.dev, 1ull << 40), ==, -EINVAL);

	/* nothing negotiated: UUID, blob and EDID commands are refused */
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 16, 16), ==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, NULL), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 2, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 0,
						       4096, NULL, 0),
			==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_get_edid(h.guest, 0, NULL), ==, E_UNSPEC);
	g_assert_cmpuint(harness_live_exports(&h), ==, 0);
	harness_finish(&h);
}

static void
test_edid(void)
{
	struct harness h;
	struct gpu_guest_reply reply;
	uint8_t sum = 0;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_get_edid(h.guest, 0, &reply), ==, VIRTIO_GPU_RESP_OK_EDID);
	g_assert_cmpuint(le32toh(reply.edid.size), ==, 128);
	g_assert_cmpuint(reply.edid.edid[0], ==, 0x00);
	g_assert_cmpuint(reply.edid.edid[1], ==, 0xff);
	for (int i = 0; i < 128; i++)
		sum += reply.edid.edid[i];
	g_assert_cmpuint(sum, ==, 0);
	/* preferred mode = the scanout's: 640 x 480 */
	g_assert_cmpuint(reply.edid.edid[56] | ((reply.edid.edid[58] >> 4) << 8), ==, 640);
	g_assert_cmpuint(reply.edid.edid[59] | ((reply.edid.edid[61] >> 4) << 8), ==, 480);
	g_assert_cmpint(gpu_guest_get_edid(h.guest, 2, NULL), ==, E_SCAN);
	g_assert_cmpint(gpu_guest_get_edid(h.guest, 0xffffffff, NULL), ==, E_SCAN);
	harness_finish(&h);
}

static void
test_create_2d_errors(void)
{
	struct harness h;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 64, 64), ==, OK);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 64, 64), ==, E_RES);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 0, XRGB, 64, 64), ==, E_RES);
	/* YUV formats are not 2D formats */
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 2, 166, 64, 64), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 2, 0, 64, 64), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 2, XRGB, 0, 64), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 2, XRGB, 64, 0), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 2, XRGB, 0xffffffff, 0xffffffff), ==,
			E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 2, XRGB, 16385, 16), ==, E_PARAM);
	/* 16384 x 16384 x 4 = 1 GiB of host memory: allowed by the default cap */
	g_assert_cmpuint(gpu_device_count_resources(h.dev), ==, 1);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==, OK);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==, E_RES);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 0), ==, E_RES);
	g_assert_cmpuint(gpu_device_count_resources(h.dev), ==, 0);
	harness_finish(&h);
}

static void
test_resource_limit(void)
{
	struct harness h;
	struct harness_options o = {.max_resources = 4};

	harness_init(&h, &o);
	for (uint32_t i = 1; i <= 4; i++)
		g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, i, XRGB, 8, 8), ==, OK);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 5, XRGB, 8, 8), ==, E_OOM);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 4), ==, OK);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 5, XRGB, 8, 8), ==, OK);
	harness_finish(&h);
}

/* Maps a resource's host buffer (through a duplicate of its fd) to check its bytes. */
static uint8_t *
map_host(struct harness *h, uint32_t id, struct gpu_resource_info *info)
{
	int fd;
	uint8_t *p;

	g_assert_cmpint(gpu_device_get_resource(h->dev, id, info), ==, 0);
	g_assert_cmpint(gpu_device_dup_resource_fd(h->dev, id, &fd), ==, 0);
	p = mmap(NULL, info->layout.size, PROT_READ, MAP_SHARED, fd, 0);
	g_assert_true(p != MAP_FAILED);
	close(fd);
	return p;
}

static void
test_transfer_and_flush(void)
{
	struct harness h;
	struct gpu_resource_info info;
	struct gpu_sink_counts c;
	uint8_t *guest, *host;
	const uint32_t w = 100, hgt = 30, pitch = w * 4;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 7, XRGB, w, hgt), ==, OK);
	g_assert_cmpint(harness_attach(&h, 7, pitch * hgt, &guest), ==, OK);
	cb_test_pattern(guest, pitch * hgt, 7);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 7, 0, 0, 0, w, hgt), ==, OK);

	host = map_host(&h, 7, &info);
	g_assert_cmpuint(info.layout.fourcc, ==, DRM_FORMAT_XRGB8888);
	g_assert_cmpuint(info.layout.planes[0].stride % 64, ==, 0);
	g_assert_cmpuint(info.layout.planes[0].stride, >=, pitch);
	for (uint32_t y = 0; y < hgt; y++)
		g_assert_cmpmem(host + y * info.layout.planes[0].stride, pitch, guest + y * pitch,
				pitch);

	/* a partial update: offset = y * pitch + x * 4, as the Linux driver computes it */
	uint8_t *before = g_memdup2(guest, pitch * hgt);
	memset(guest, 0xab, pitch * hgt);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 7, 5 * pitch + 10 * 4, 10, 5, 20, 3),
			==, OK);
	g_assert_cmpuint(host[5 * info.layout.planes[0].stride + 40], ==, 0xab);
	g_assert_cmpuint(host[7 * info.layout.planes[0].stride + 29 * 4 + 3], ==, 0xab);
	/* outside the box: still the first transfer's bytes */
	g_assert_cmpmem(host + 4 * info.layout.planes[0].stride + 40, 4, before + 4 * pitch + 40,
			4);
	g_assert_cmpmem(host + 8 * info.layout.planes[0].stride + 40, 4, before + 8 * pitch + 40,
			4);
	g_assert_cmpmem(host + 5 * info.layout.planes[0].stride + 36, 4, before + 5 * pitch + 36,
			4);
	g_free(before);

	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 7, 0, 0, w, hgt), ==, OK);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 7, 10, 5, 20, 3), ==, OK);
	c = counts(&h);
	g_assert_cmpuint(c.set_scanouts, ==, 1);
	g_assert_cmpuint(c.flushes, ==, 1);
	g_assert_cmpuint(c.last_resource_id, ==, 7);
	g_assert_cmpuint(c.last_fourcc, ==, DRM_FORMAT_XRGB8888);
	g_assert_cmpuint(c.last_pixel, ==, 0xabababab);
	g_assert_cmpuint(c.last_damage.width, ==, 20);
	/* a flush of a resource no scanout shows reaches no sink */
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 8, XRGB, 8, 8), ==, OK);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 8, 0, 0, 8, 8), ==, OK);
	g_assert_cmpuint(counts(&h).flushes, ==, 1);
	/* unref of the displayed resource disables the scanout */
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 7), ==, OK);
	g_assert_cmpuint(counts(&h).disables, ==, 1);
	munmap(host, info.layout.size);
	harness_finish(&h);
}

static void
test_transfer_errors(void)
{
	struct harness h;
	uint8_t *guest;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 64, 64), ==, OK);
	/* no backing yet */
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 64, 64), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 9, 0, 0, 0, 64, 64), ==, E_RES);
	/* backing of half the image */
	g_assert_cmpint(harness_attach(&h, 1, 64 * 4 * 32, &guest), ==, OK);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 64, 32), ==, OK);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 64, 33), ==, E_PARAM);
	/* rectangles outside the resource, wrapping ones included */
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 65, 1), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 60, 0, 5, 1), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0xfffffff0, 0, 0x20, 1), ==,
			E_PARAM);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0xffffffff, 1, 2), ==,
			E_PARAM);
	/* offsets that do not fit the box or run off the backing */
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 4, 0, 1, 1, 1), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, UINT64_MAX, 0, 0, 1, 1), ==,
			E_PARAM);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, UINT64_MAX - 3, 0, 0, 64, 1), ==,
			E_PARAM);
	/* an empty transfer is fine */
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 0, 0), ==, OK);
	harness_finish(&h);
}

static void
test_backing_errors(void)
{
	struct harness h;
	struct virtio_gpu_mem_entry e[2] = {0};
	uint8_t *guest;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 16, 16), ==, OK);
	/* unmapped guest memory, an empty entry, an entry crossing the end of RAM */
	e[0].addr = htole64(0x10);
	e[0].length = htole32(4096);
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, e, 1), ==, E_UNSPEC);
	e[0].addr = htole64(HARNESS_GPA);
	e[0].length = 0;
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, e, 1), ==, E_UNSPEC);
	e[0].addr = htole64(HARNESS_GPA + HARNESS_MEM_SIZE - 16);
	e[0].length = htole32(32);
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, e, 1), ==, E_UNSPEC);
	e[0].addr = htole64(UINT64_MAX - 8);
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, e, 1), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, e, 0), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 2, e, 1), ==, E_RES);
	/* more entries than the cap: refused by the decoder */
	{
		uint32_t n = GPU_MAX_BACKING_ENTRIES + 1;
		struct virtio_gpu_mem_entry *many = g_new0(struct virtio_gpu_mem_entry, n);
		for (uint32_t i = 0; i < n; i++) {
			many[i].addr = htole64(HARNESS_GPA);
			many[i].length = htole32(1);
		}
		g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, many, n), ==, E_PARAM);
		/* at the cap it works */
		g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, many, n - 1), ==, OK);
		g_free(many);
	}
	/* twice */
	g_assert_cmpint(harness_attach(&h, 1, 4096, &guest), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_detach_backing(h.guest, 1), ==, OK);
	g_assert_cmpint(gpu_guest_detach_backing(h.guest, 1), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_detach_backing(h.guest, 3), ==, E_RES);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 1, 1), ==, E_UNSPEC);
	g_assert_cmpint(harness_attach(&h, 1, 16 * 16 * 4, &guest), ==, OK);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 16, 16), ==, OK);
	harness_finish(&h);
}

static void
test_scanout_errors(void)
{
	struct harness h;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 64, 64), ==, OK);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 2, 1, 0, 0, 64, 64), ==, E_SCAN);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 16, 1, 0, 0, 64, 64), ==, E_SCAN);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 2, 0, 0, 64, 64), ==, E_RES);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 1, 0, 0, 65, 64), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 1, 32, 32, 33, 1), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 1, 0, 0, 0, 0), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 1, 1, 16, 16, 32, 32), ==, OK);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 1, 0, 0, 65, 1), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 2, 0, 0, 1, 1), ==, E_RES);
	/* disabling: resource 0 */
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 1, 0, 0, 0, 0, 0), ==, OK);
	g_assert_cmpuint(counts(&h).disables, ==, 1);
	harness_finish(&h);
}

static void
check_v4(const uint8_t uuid[16])
{
	g_assert_cmpuint(uuid[6] >> 4, ==, 4);
	g_assert_cmpuint(uuid[8] & 0xc0, ==, 0x80);
}

static void
test_assign_uuid(void)
{
	struct harness h;
	uint8_t uuid[16], again[16];
	struct fake_export *e;
	struct gpu_resource_info info;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 3, XRGB, 320, 200), ==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 3, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	check_v4(uuid);
	e = harness_find_export(&h, uuid);
	g_assert_nonnull(e);
	g_assert_cmpuint(e->info.width, ==, 320);
	g_assert_cmpuint(e->info.height, ==, 200);
	g_assert_cmpuint(e->info.fourcc, ==, DRM_FORMAT_XRGB8888);
	g_assert_cmpuint(e->info.modifier, ==, DRM_FORMAT_MOD_LINEAR);
	g_assert_cmpuint(e->info.num_planes, ==, 1);
	g_assert_cmpuint(e->info.planes[0].offset, ==, 0);
	g_assert_cmpuint(e->info.planes[0].stride, ==, 1280);
	g_assert_cmpuint(e->info.flags, ==, 0);
	g_assert_cmpuint(e->info.device_kind, ==, CROSSBUF_DEVICE_GPU);
	g_assert_cmpuint(e->info.resource_id, ==, 3);
	/* the fd registered is a sealed memfd */
	g_assert_cmpint(fcntl(e->fd, F_GET_SEALS) & F_SEAL_SHRINK, ==, F_SEAL_SHRINK);

	/* repeating gives the same UUID and no second entry */
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 3, again), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpmem(uuid, 16, again, 16);
	g_assert_cmpuint(h.n_exports, ==, 1);
	g_assert_cmpint(gpu_device_get_resource(h.dev, 3, &info), ==, 0);
	g_assert_true(info.exported);
	g_assert_cmpmem(info.uuid, 16, uuid, 16);

	/* another resource gets another UUID */
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 4, XRGB, 8, 8), ==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 4, again), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpint(memcmp(uuid, again, 16), !=, 0);

	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 99, NULL), ==, E_RES);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 0, NULL), ==, E_RES);

	/* UNREF removes the entry */
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 3), ==, OK);
	g_assert_null(harness_find_export(&h, uuid));
	g_assert_cmpuint(h.removes, ==, 1);
	harness_finish(&h);
}

static void
test_assign_uuid_failures(void)
{
	struct harness h;
	struct harness_options o = {.no_exporter = true};
	uint8_t uuid[16];

	/* no registry: the guest still gets an answer at once */
	harness_init(&h, &o);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 8, 8), ==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==, E_UNSPEC);
	harness_finish(&h);

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 8, 8), ==, OK);
	h.export_error = -ECONNRESET;
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==, E_UNSPEC);
	h.export_error = -EDQUOT;
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==, E_OOM);
	/* a collision is retried under a fresh UUID */
	h.export_error = -EEXIST;
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpuint(harness_live_exports(&h), ==, 1);
	harness_finish(&h);
}

static void
fill_create_3d(struct virtio_gpu_resource_create_3d *c, uint32_t id, uint32_t format, uint32_t w,
	       uint32_t hgt)
{
	memset(c, 0, sizeof(*c));
	c->resource_id = htole32(id);
	c->target = htole32(GPU_PIPE_TEXTURE_2D);
	c->format = htole32(format);
	c->bind = htole32(1u << 1); /* as minigbm: a sampler view / render target */
	c->width = htole32(w);
	c->height = htole32(hgt);
	c->depth = htole32(1);
	c->array_size = htole32(1);
}

static void
test_create_3d_nv12(void)
{
	struct harness h;
	struct virtio_gpu_resource_create_3d c;
	struct virtio_gpu_box box = {0};
	struct gpu_resource_info info;
	struct fake_export *e;
	uint8_t uuid[16], *guest, *host;
	const uint32_t w = 64, hgt = 48, size = w * hgt * 3 / 2;

	harness_init(&h, NULL);
	fill_create_3d(&c, 5, GPU_VIRGL_FORMAT_NV12, w, hgt);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, OK);
	g_assert_cmpint(harness_attach(&h, 5, size, &guest), ==, OK);
	cb_test_pattern(guest, size, 5);
	box.w = htole32(w);
	box.h = htole32(hgt);
	box.d = htole32(1);
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 5, &box, 0, 0, w, 0), ==, OK);

	host = map_host(&h, 5, &info);
	g_assert_cmpuint(info.layout.fourcc, ==, DRM_FORMAT_NV12);
	g_assert_cmpuint(info.layout.num_planes, ==, 2);
	for (uint32_t y = 0; y < hgt; y++)
		g_assert_cmpmem(host + y * info.layout.planes[0].stride, w, guest + y * w, w);
	for (uint32_t y = 0; y < hgt / 2; y++)
		g_assert_cmpmem(host + info.layout.planes[1].offset +
					y * info.layout.planes[1].stride,
				w, guest + w * hgt + y * w, w);

	/* and back: FROM_HOST into a cleared backing */
	memset(guest, 0, size);
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, false, 5, &box, 0, 0, w, 0), ==, OK);
	g_assert_cmpmem(guest, w, host, w);
	g_assert_cmpmem(guest + w * hgt, w, host + info.layout.planes[1].offset, w);

	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 5, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	e = harness_find_export(&h, uuid);
	g_assert_nonnull(e);
	g_assert_cmpuint(e->info.fourcc, ==, DRM_FORMAT_NV12);
	g_assert_cmpuint(e->info.num_planes, ==, 2);
	g_assert_cmpuint(e->info.planes[0].stride % 64, ==, 0);
	g_assert_cmpuint(e->info.planes[1].offset, ==, info.layout.planes[1].offset);
	g_assert_cmpuint(e->info.planes[1].stride, ==, info.layout.planes[1].stride);
	munmap(host, info.layout.size);
	harness_finish(&h);
}

static void
test_create_3d_planar(void)
{
	static const struct {
		uint32_t virgl, fourcc;
	} fmts[] = {{GPU_VIRGL_FORMAT_YV12, DRM_FORMAT_YVU420},
		    {GPU_VIRGL_FORMAT_IYUV, DRM_FORMAT_YUV420},
		    {GPU_VIRGL_FORMAT_NV21, DRM_FORMAT_NV21},
		    {VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, DRM_FORMAT_ABGR8888}};

	for (size_t i = 0; i < G_N_ELEMENTS(fmts); i++) {
		struct harness h;
		struct virtio_gpu_resource_create_3d c;
		struct gpu_resource_info info;
		const struct gpu_format *f = gpu_format_from_virgl(fmts[i].virgl);
		struct gpu_layout gl;
		uint8_t *guest, *host;
		const uint32_t w = 32, hgt = 16;

		harness_init(&h, NULL);
		g_assert_cmpint(gpu_layout_guest(f, w, hgt, 0, &gl), ==, 0);
		fill_create_3d(&c, 1, fmts[i].virgl, w, hgt);
		g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, OK);
		g_assert_cmpint(harness_attach(&h, 1, gl.size, &guest), ==, OK);
		cb_test_pattern(guest, gl.size, (uint32_t)i);
		/* TRANSFER_TO_HOST_2D works on 3D resources too */
		g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, w, hgt), ==, OK);
		host = map_host(&h, 1, &info);
		g_assert_cmpuint(info.layout.fourcc, ==, fmts[i].fourcc);
		for (unsigned p = 0; p < f->num_planes; p++) {
			uint32_t rows = gpu_format_plane_height(f, p, hgt);
			uint32_t row = gpu_format_plane_width(f, p, w) * f->cpp[p];
			for (uint32_t y = 0; y < rows; y++)
				g_assert_cmpmem(
					host + info.layout.planes[p].offset +
						y * info.layout.planes[p].stride,
					row, guest + gl.planes[p].offset + y * gl.planes[p].stride,
					row);
		}
		munmap(host, info.layout.size);
		harness_finish(&h);
	}
}

static void
test_create_3d_errors(void)
{
	struct harness h;
	struct virtio_gpu_resource_create_3d c;
	struct virtio_gpu_box box = {.w = 8, .h = 8, .d = 1};

	harness_init(&h, NULL);
	fill_create_3d(&c, 1, GPU_VIRGL_FORMAT_NV12, 64, 64);
	c.target = htole32(GPU_PIPE_BUFFER);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, E_PARAM);
	fill_create_3d(&c, 1, GPU_VIRGL_FORMAT_NV12, 64, 64);
	c.depth = htole32(2);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, E_PARAM);
	fill_create_3d(&c, 1, GPU_VIRGL_FORMAT_NV12, 64, 64);
	c.last_level = htole32(3);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, E_PARAM);
	fill_create_3d(&c, 1, 9999, 64, 64);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, E_PARAM);
	fill_create_3d(&c, 1, GPU_VIRGL_FORMAT_NV12, 0, 64);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, E_PARAM);
	fill_create_3d(&c, 0, GPU_VIRGL_FORMAT_NV12, 64, 64);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, E_RES);
	fill_create_3d(&c, 1, GPU_VIRGL_FORMAT_NV12, 64, 64);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, OK);
	/* 3D transfers beyond one 2D level need a renderer */
	g_assert_cmpint(harness_attach(&h, 1, 64 * 64 * 2, NULL), ==, OK);
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 1, &box, 0, 1, 0, 0), ==, E_PARAM);
	box.z = 1;
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 1, &box, 0, 0, 0, 0), ==, E_PARAM);
	box.z = 0;
	box.w = 65;
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 1, &box, 0, 0, 0, 0), ==, E_PARAM);
	box.w = 8;
	/* a guest stride smaller than a row */
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 1, &box, 0, 0, 8, 0), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 1, &box, 0, 0, 64, 0), ==, OK);
	harness_finish(&h);
}

static void
test_blob_host3d_cross_device(void)
{
	struct harness h;
	uint8_t uuid[16];
	struct fake_export *e;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 4, VIRTIO_GPU_BLOB_MEM_HOST3D,
						       VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE |
							       VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE,
						       0, 65536, NULL, 0),
			==, OK);
	/* exported at creation, before the guest asks */
	g_assert_cmpuint(harness_live_exports(&h), ==, 1);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 4, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	check_v4(uuid);
	e = harness_find_export(&h, uuid);
	g_assert_nonnull(e);
	g_assert_cmpuint(e->info.fourcc, ==, 0);
	g_assert_cmpuint(e->info.num_planes, ==, 0);
	g_assert_cmpuint(e->info.flags, ==, CROSSBUF_BUFFER_GUEST_MAPPABLE);
	g_assert_cmpuint(e->info.resource_id, ==, 4);
	g_assert_cmpuint(h.n_exports, ==, 1);

	/* a blob without SHAREABLE or CROSS_DEVICE is not for sharing */
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 5, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 0,
						       4096, NULL, 0),
			==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 5, NULL), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 6, VIRTIO_GPU_BLOB_MEM_HOST3D,
						       VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0, 4096,
						       NULL, 0),
			==, OK);
	g_assert_cmpuint(harness_live_exports(&h), ==, 1);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 6, NULL), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);

	/* export failing at creation: no resource */
	h.export_error = -ECONNRESET;
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 7, VIRTIO_GPU_BLOB_MEM_HOST3D,
						       VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE, 0,
						       4096, NULL, 0),
			==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 7), ==, E_RES);
	harness_finish(&h);
}

static void
test_blob_errors(void)
{
	struct harness h;
	struct virtio_gpu_mem_entry e[1];
	uint64_t gpa = 0;

	harness_init(&h, NULL);
	gpa = harness_alloc(&h, 8192, NULL);
	gpu_guest_backing_pages(gpa, 8192, 8192, e, 1);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, 0, 0, 0, 4096, NULL, 0), ==,
			E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, 4, 0, 0, 4096, NULL, 0), ==,
			E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_HOST3D, 8, 0,
						       4096, NULL, 0),
			==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 0,
						       0, NULL, 0),
			==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 0,
						       UINT64_MAX, NULL, 0),
			==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 0,
						       4096, e, 1),
			==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0,
						       4096, NULL, 0),
			==, E_PARAM);
	/* backing smaller than the blob */
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0,
						       8193, e, 1),
			==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 0, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0,
						       8192, e, 1),
			==, E_RES);
	g_assert_cmpuint(gpu_device_count_resources(h.dev), ==, 0);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0,
						       8192, e, 1),
			==, OK);
	/* a blob takes no ATTACH_BACKING / DETACH_BACKING */
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, e, 1), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_detach_backing(h.guest, 1), ==, E_UNSPEC);
	/* guest-memory blobs have no host fd to export (yet: needs guest memory fds) */
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, NULL), ==, E_PARAM);
	harness_finish(&h);
}

static void
test_blob_scanout(void)
{
	struct harness h;
	struct virtio_gpu_mem_entry e[8];
	struct virtio_gpu_set_scanout_blob sb = {0};
	uint8_t *guest;
	uint64_t gpa;
	int n;
	const uint32_t w = 64, hgt = 32, stride = 256, size = 4096 + stride * hgt;

	harness_init(&h, NULL);
	gpa = harness_alloc(&h, size, &guest);
	n = gpu_guest_backing_pages(gpa, size, 4096, e, 8);
	g_assert_cmpint(n, ==, 3);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 2, VIRTIO_GPU_BLOB_MEM_GUEST,
						       VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 0, size,
						       e, (uint32_t)n),
			==, OK);
	memset(guest + 4096, 0x5a, stride * hgt);
	sb.scanout_id = htole32(0);
	sb.resource_id = htole32(2);
	sb.width = htole32(w);
	sb.height = htole32(hgt);
	sb.format = htole32(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM);
	sb.strides[0] = htole32(stride);
	sb.offsets[0] = htole32(4096);
	sb.r.width = htole32(w);
	sb.r.height = htole32(hgt);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, OK);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 2, 0, 0, w, hgt), ==, OK);
	g_assert_cmpuint(counts(&h).flushes, ==, 1);
	g_assert_cmpuint(counts(&h).last_pixel, ==, 0x5a5a5a5a);
	g_assert_cmpuint(counts(&h).last_fourcc, ==, DRM_FORMAT_ARGB8888);
	/* transfers on a guest blob have nothing to do */
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 2, 0, 0, 0, 1, 1), ==, OK);

	/* layouts that do not fit the blob */
	sb.strides[0] = htole32(w * 4 - 1);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_PARAM);
	sb.strides[0] = htole32(stride);
	sb.offsets[0] = htole32(4097);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_PARAM);
	sb.offsets[0] = htole32(0xffffffff);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_PARAM);
	sb.offsets[0] = htole32(4096);
	sb.strides[0] = htole32(0xffffffff);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_PARAM);
	sb.strides[0] = htole32(stride);
	sb.format = htole32(12345);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_PARAM);
	sb.format = htole32(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM);
	sb.r.x = htole32(1);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_PARAM);
	sb.r.x = 0;
	sb.scanout_id = htole32(5);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_SCAN);
	sb.scanout_id = 0;
	/* a non-blob resource */
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 3, XRGB, 64, 32), ==, OK);
	sb.resource_id = htole32(3);
	g_assert_cmpint(gpu_guest_set_scanout_blob(h.guest, &sb), ==, E_PARAM);
	/* and the other way round: SET_SCANOUT of a blob */
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 2, 0, 0, 8, 8), ==, E_PARAM);
	harness_finish(&h);
}

static void
test_map_blob(void)
{
	struct harness h;
	uint32_t info = 0;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_HOST3D,
						       VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 0, 8192,
						       NULL, 0),
			==, OK);
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 1, 0x10000, &info), ==,
			VIRTIO_GPU_RESP_OK_MAP_INFO);
	g_assert_cmpuint(info, ==, VIRTIO_GPU_MAP_CACHE_CACHED);
	g_assert_cmpuint(h.maps, ==, 1);
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 1, 0x10000, &info), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_unmap_blob(h.guest, 1), ==, OK);
	g_assert_cmpint(gpu_guest_unmap_blob(h.guest, 1), ==, E_PARAM);
	g_assert_cmpuint(h.unmaps, ==, 1);
	/* not mappable, not a blob, unknown */
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 2, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 0,
						       8192, NULL, 0),
			==, OK);
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 2, 0, NULL), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 3, XRGB, 8, 8), ==, OK);
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 3, 0, NULL), ==, E_PARAM);
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 4, 0, NULL), ==, E_RES);
	g_assert_cmpint(gpu_guest_unmap_blob(h.guest, 4), ==, E_RES);
	/* unref of a mapped blob unmaps it */
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 1, 0, NULL), ==, VIRTIO_GPU_RESP_OK_MAP_INFO);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==, OK);
	g_assert_cmpuint(h.unmaps, ==, 2);
	/* a blob transfer of bytes, HOST3D_GUEST */
	{
		struct virtio_gpu_mem_entry e[1];
		struct virtio_gpu_box box = {.x = 0, .w = 4096, .h = 1, .d = 1};
		uint8_t *guest;
		uint64_t gpa = harness_alloc(&h, 4096, &guest);
		gpu_guest_backing_pages(gpa, 4096, 4096, e, 1);
		g_assert_cmpint(gpu_guest_resource_create_blob(
					h.guest, 5, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
					VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0, 4096, e, 1),
				==, OK);
		cb_test_pattern(guest, 4096, 9);
		g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 5, &box, 0, 0, 0, 0), ==, OK);
		uint8_t expect[4096];
		memcpy(expect, guest, sizeof(expect));
		memset(guest, 0, 4096);
		g_assert_cmpint(gpu_guest_transfer_3d(h.guest, false, 5, &box, 0, 0, 0, 0), ==, OK);
		g_assert_cmpmem(guest, 4096, expect, 4096);
		box.w = 4097;
		g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 5, &box, 0, 0, 0, 0), ==,
				E_PARAM);
	}
	harness_finish(&h);
}

/* memfd_secret may be missing or limited by RLIMIT_MEMLOCK: then there is nothing to test. */
static bool
have_memfd_secret(void)
{
	int fd = cb_test_memfd_secret(4096);
	void *p;

	if (fd < 0)
		return false;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return false;
	munmap(p, 4096);
	return true;
}

static void
test_protected_policy(void)
{
	struct harness h;
	struct harness_options o = {.protect_nv12 = true};
	struct virtio_gpu_resource_create_3d c;
	struct virtio_gpu_box box = {.w = 64, .h = 64, .d = 1};
	struct gpu_resource_info info;
	struct virtio_gpu_mem_entry e[1];
	struct fake_export *ex;
	uint8_t uuid[16];
	char path[64], target[64] = {0};

	if (!have_memfd_secret()) {
		g_test_skip("memfd_secret is not usable here");
		return;
	}
	harness_init(&h, &o);
	fill_create_3d(&c, 1, GPU_VIRGL_FORMAT_NV12, 64, 64);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, OK);
	g_assert_cmpint(gpu_device_get_resource(h.dev, 1, &info), ==, 0);
	g_assert_true(info.protected_);
	/* every path to guest memory is refused */
	gpu_guest_backing_pages(harness_alloc(&h, 8192, NULL), 8192, 8192, e, 1);
	g_assert_cmpint(gpu_guest_attach_backing(h.guest, 1, e, 1), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 64, 64), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, false, 1, &box, 0, 0, 0, 0), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 1, &box, 0, 0, 0, 0), ==, E_UNSPEC);
	/* exported as protected, backed by memfd_secret */
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	ex = harness_find_export(&h, uuid);
	g_assert_nonnull(ex);
	g_assert_cmpuint(ex->info.flags & CROSSBUF_BUFFER_PROTECTED, ==, CROSSBUF_BUFFER_PROTECTED);
	g_assert_cmpuint(ex->info.fourcc, ==, DRM_FORMAT_NV12);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ex->fd);
	g_assert_cmpint(readlink(path, target, sizeof(target) - 1), >, 0);
	g_assert_nonnull(strstr(target, "secretmem"));
	/* an RGB resource is not protected by this policy */
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 2, XRGB, 8, 8), ==, OK);
	g_assert_cmpint(gpu_device_get_resource(h.dev, 2, &info), ==, 0);
	g_assert_false(info.protected_);
	harness_finish(&h);
}

static void
run_protected_scanout(bool authorized)
{
	struct harness h;
	struct harness_options o = {.authorized_sink = authorized};
	struct gpu_request req = {0};
	struct gpu_response resp;
	struct gpu_sink_counts c;

	harness_init(&h, &o);
	/* the library API: a VMM creates a protected scanout buffer for the guest */
	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_2D;
	req.create_2d.resource_id = 10;
	req.create_2d.format = XRGB;
	req.create_2d.width = 64;
	req.create_2d.height = 64;
	g_assert_cmpuint(gpu_device_execute(h.dev, &req, GPU_CREATE_PROTECTED, &resp), ==, OK);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 10, 0, 0, 64, 64), ==, OK);
	g_assert_cmpint(gpu_guest_resource_flush(h.guest, 10, 0, 0, 64, 64), ==, OK);
	c = counts(&h);
	g_assert_cmpuint(c.flushes, ==, 1);
	g_assert_cmpuint(c.withheld, ==, authorized ? 0 : 1);
	g_assert_cmpuint(c.protected_shown, ==, authorized ? 1 : 0);
	/* a protected cursor is never shown, to any sink: the cursor is hidden */
	g_assert_cmpint(gpu_guest_update_cursor(h.guest, 0, 1, 1, 10, 0, 0), ==, 0);
	c = counts(&h);
	g_assert_cmpuint(c.cursor_updates, ==, 0);
	g_assert_cmpuint(c.cursor_hides, ==, 1);
	memset(&req, 0, sizeof(req));
	req.hdr.type = VIRTIO_GPU_CMD_UPDATE_CURSOR;
	req.cursor.resource_id = 10;
	g_assert_cmpuint(gpu_device_execute(h.dev, &req, 0, &resp), ==, E_UNSPEC);
	harness_finish(&h);
}

static void
test_protected_scanout(void)
{
	if (!have_memfd_secret()) {
		g_test_skip("memfd_secret is not usable here");
		return;
	}
	run_protected_scanout(false);
	run_protected_scanout(true);
}

static void
test_protected_blob(void)
{
	struct harness h;
	struct gpu_request req = {0};
	struct gpu_response resp;
	struct guest_sg_entry sg = {.gpa = HARNESS_GPA, .len = 4096};

	if (!have_memfd_secret()) {
		g_test_skip("memfd_secret is not usable here");
		return;
	}
	harness_init(&h, NULL);
	req.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB;
	req.create_blob.resource_id = 1;
	req.create_blob.blob_mem = VIRTIO_GPU_BLOB_MEM_HOST3D;
	req.create_blob.blob_flags = VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE;
	req.create_blob.size = 4096;
	g_assert_cmpuint(gpu_device_execute(h.dev, &req, GPU_CREATE_PROTECTED, &resp), ==, OK);
	g_assert_cmpuint(harness_live_exports(&h), ==, 1);
	g_assert_cmpuint(h.exports[0].info.flags, ==, CROSSBUF_BUFFER_PROTECTED);
	/* guest-visible memory cannot be protected */
	req.create_blob.resource_id = 2;
	req.create_blob.blob_flags = VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE;
	g_assert_cmpuint(gpu_device_execute(h.dev, &req, GPU_CREATE_PROTECTED, &resp), ==,
			 E_UNSPEC);
	req.create_blob.blob_mem = VIRTIO_GPU_BLOB_MEM_GUEST;
	req.create_blob.blob_flags = 0;
	req.create_blob.backing = (struct gpu_backing){.n_entries = 1, .entries = &sg};
	g_assert_cmpuint(gpu_device_execute(h.dev, &req, GPU_CREATE_PROTECTED, &resp), ==,
			 E_UNSPEC);
	g_assert_cmpuint(gpu_device_count_resources(h.dev), ==, 1);
	/* MAP_BLOB of a protected blob */
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 1, 0, NULL), ==, E_UNSPEC);
	g_assert_cmpuint(h.maps, ==, 0);
	harness_finish(&h);
}

static void
test_fences(void)
{
	struct harness h;
	struct virtio_gpu_resource_create_2d cmd = {0};
	struct gpu_guest_reply reply;

	harness_init(&h, NULL);
	gpu_guest_set_fence(h.guest, true, 0, -1);
	g_assert_cmpint(gpu_guest_get_display_info(h.guest, &reply), ==,
			VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	g_assert_cmpuint(le32toh(reply.hdr.flags), ==, VIRTIO_GPU_FLAG_FENCE);
	g_assert_cmpuint(le64toh(reply.hdr.fence_id), ==, gpu_guest_last_fence(h.guest));

	/* error replies carry the fence too */
	cmd.hdr.type = htole32(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
	cmd.hdr.flags = htole32(VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX);
	cmd.hdr.fence_id = htole64(0xfeedull << 32);
	cmd.hdr.ctx_id = htole32(3);
	cmd.hdr.ring_idx = 2;
	g_assert_cmpint(gpu_guest_send_raw(h.guest, &cmd, sizeof(cmd), NULL, 0, 24, &reply), ==,
			E_RES);
	g_assert_cmpuint(le64toh(reply.hdr.fence_id), ==, 0xfeedull << 32);
	g_assert_cmpuint(le32toh(reply.hdr.ctx_id), ==, 3);
	g_assert_cmpuint(reply.hdr.ring_idx, ==, 2);
	g_assert_cmpuint(le32toh(reply.hdr.flags), ==,
			 VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX);
	/* a short request: the fence is still echoed */
	g_assert_cmpint(gpu_guest_send_raw(h.guest, &cmd, 30, NULL, 0, 24, &reply), ==, E_UNSPEC);
	g_assert_cmpuint(le64toh(reply.hdr.fence_id), ==, 0xfeedull << 32);
	harness_finish(&h);
}

static void
test_malformed(void)
{
	struct harness h;
	struct gpu_guest_reply reply;
	uint8_t junk[64];
	struct virtio_gpu_ctrl_hdr hdr = {.type = htole32(VIRTIO_GPU_CMD_GET_DISPLAY_INFO)};

	harness_init(&h, NULL);
	memset(junk, 0xff, sizeof(junk));
	g_assert_cmpint(gpu_guest_send_raw(h.guest, junk, sizeof(junk), NULL, 0, 24, &reply), ==,
			E_UNSPEC);
	g_assert_cmpint(gpu_guest_send_raw(h.guest, junk, 3, NULL, 0, 24, &reply), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_send_raw(h.guest, junk, 0, NULL, 0, 24, &reply), ==, E_UNSPEC);
	/* a response type sent as a request */
	hdr.type = htole32(VIRTIO_GPU_RESP_OK_NODATA);
	g_assert_cmpint(gpu_guest_send_raw(h.guest, &hdr, sizeof(hdr), NULL, 0, 24, &reply), ==,
			E_UNSPEC);
	/* display info into a reply buffer too small for it: an error header */
	hdr.type = htole32(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	g_assert_cmpint(gpu_guest_send_raw(h.guest, &hdr, sizeof(hdr), NULL, 0, 100, &reply), ==,
			E_UNSPEC);
	g_assert_cmpuint(reply.len, ==, 24);
	/* no room at all: nothing written, nothing breaks */
	g_assert_cmpint(gpu_guest_send_raw(h.guest, &hdr, sizeof(hdr), NULL, 0, 0, &reply), ==, 0);
	harness_finish(&h);
}

static void
test_contexts(void)
{
	struct harness h;
	struct gpu_guest_reply reply;
	uint32_t cmds[4] = {0};

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 1, 0, "test"), ==, OK);
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 1, 0, "again"), ==, E_CTX);
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 0, 0, NULL), ==, E_CTX);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 8, 8), ==, OK);
	g_assert_cmpint(gpu_guest_ctx_resource(h.guest, true, 1, 1), ==, OK);
	g_assert_cmpint(gpu_guest_ctx_resource(h.guest, true, 2, 1), ==, E_CTX);
	g_assert_cmpint(gpu_guest_ctx_resource(h.guest, true, 1, 2), ==, E_RES);
	g_assert_cmpint(gpu_guest_ctx_resource(h.guest, false, 1, 1), ==, OK);
	/* rendering needs the virglrenderer backend */
	g_assert_cmpint(gpu_guest_submit_3d(h.guest, 1, cmds, sizeof(cmds)), ==, E_UNSPEC);
	g_assert_cmpint(gpu_guest_get_capset_info(h.guest, 0, &reply), ==, E_PARAM);
	{
		uint8_t caps[64];
		g_assert_cmpint(gpu_guest_get_capset(h.guest, 1, 1, caps, sizeof(caps)), ==,
				E_PARAM);
	}
	g_assert_cmpint(gpu_guest_ctx_destroy(h.guest, 1), ==, OK);
	g_assert_cmpint(gpu_guest_ctx_destroy(h.guest, 1), ==, E_CTX);
	harness_finish(&h);
}

#define CURSOR_BYTES (GPU_CURSOR_SIZE * GPU_CURSOR_SIZE * 4)

/* A 64x64 resource of format holding pattern seed on the host; its guest bytes. */
static uint8_t *
cursor_resource(struct harness *h, uint32_t id, uint32_t format, uint32_t seed)
{
	uint8_t *guest;

	g_assert_cmpint(gpu_guest_resource_create_2d(h->guest, id, format, 64, 64), ==, OK);
	g_assert_cmpint(harness_attach(h, id, CURSOR_BYTES, &guest), ==, OK);
	cb_test_pattern(guest, CURSOR_BYTES, seed);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h->guest, id, 0, 0, 0, 64, 64), ==, OK);
	return guest;
}

/* The sink's last cursor image is the guest's ARGB8888 bytes (alpha forced for X formats). */
static void
assert_cursor_image(struct harness *h, const uint8_t *guest, uint32_t alpha)
{
	struct gpu_sink_counts c = counts(h);

	for (unsigned i = 0; i < GPU_CURSOR_SIZE * GPU_CURSOR_SIZE; i++) {
		uint32_t want;
		memcpy(&want, guest + i * 4, 4);
		g_assert_cmphex(c.last_cursor_image[i], ==, want | alpha);
	}
}

static void
assert_last_cursor(struct harness *h, uint32_t x, uint32_t y, uint32_t hot_x, uint32_t hot_y,
		   bool visible)
{
	struct gpu_sink_counts c = counts(h);

	g_assert_cmpuint(c.last_cursor.scanout_id, ==, 0);
	g_assert_cmpuint(c.last_cursor.x, ==, x);
	g_assert_cmpuint(c.last_cursor.y, ==, y);
	g_assert_cmpuint(c.last_cursor.hot_x, ==, hot_x);
	g_assert_cmpuint(c.last_cursor.hot_y, ==, hot_y);
	g_assert_cmpint(c.last_cursor.visible, ==, visible);
}

static uint32_t
execute_cursor(struct harness *h, uint32_t type, uint32_t scanout_id, uint32_t resource_id)
{
	struct gpu_request req = {0};
	struct gpu_response resp;

	req.hdr.type = type;
	req.cursor.scanout_id = scanout_id;
	req.cursor.x = 5;
	req.cursor.y = 6;
	req.cursor.resource_id = resource_id;
	return gpu_device_execute(h->dev, &req, 0, &resp);
}

static void
test_cursor(void)
{
	struct harness h;
	struct gpu_sink_counts c;
	uint8_t *argb, *xrgb;

	harness_init(&h, NULL);
	argb = cursor_resource(&h, 1, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 21);
	xrgb = cursor_resource(&h, 2, XRGB, 22);

	/* a new shape: the resource's pixels, hot spot and position */
	g_assert_cmpint(gpu_guest_update_cursor(h.guest, 0, 10, 20, 1, 3, 4), ==, 0);
	c = counts(&h);
	g_assert_cmpuint(c.cursor_updates, ==, 1);
	g_assert_cmpuint(c.cursor_moves + c.cursor_hides, ==, 0);
	assert_last_cursor(&h, 10, 20, 3, 4, true);
	assert_cursor_image(&h, argb, 0);

	/* a move: position only, the shape and hot spot stay */
	g_assert_cmpint(gpu_guest_move_cursor(h.guest, 0, 30, 40), ==, 0);
	c = counts(&h);
	g_assert_cmpuint(c.cursor_updates, ==, 1);
	g_assert_cmpuint(c.cursor_moves, ==, 1);
	assert_last_cursor(&h, 30, 40, 3, 4, true);
	/* a position that wrapped below 0 (Linux's crtc_x) passes through as it came */
	g_assert_cmpint(gpu_guest_move_cursor(h.guest, 0, (uint32_t)-5, 7), ==, 0);
	assert_last_cursor(&h, (uint32_t)-5, 7, 3, 4, true);

	/* an X format: converted, opaque */
	g_assert_cmpint(gpu_guest_update_cursor(h.guest, 0, 1, 2, 2, 0, 0), ==, 0);
	g_assert_cmpuint(counts(&h).cursor_updates, ==, 2);
	assert_cursor_image(&h, xrgb, 0xff000000u);

	/* resource 0 hides it; a move keeps it hidden */
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 0), ==, OK);
	c = counts(&h);
	g_assert_cmpuint(c.cursor_hides, ==, 1);
	assert_last_cursor(&h, 5, 6, 0, 0, false);
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_MOVE_CURSOR, 0, 1), ==, OK);
	g_assert_cmpuint(counts(&h).cursor_hides, ==, 2);
	g_assert_cmpuint(counts(&h).cursor_moves, ==, 2);

	/* what cannot be a cursor hides it, and the reply type (unseen on the queue) says why */
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 3, XRGB, 32, 32), ==, OK);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 4, XRGB, 64, 65), ==, OK);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 5, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 0,
						       4096, NULL, 0),
			==, OK);
	{
		const struct {
			uint32_t id, type;
		} bad[] = {{77, E_RES}, {3, E_PARAM}, {4, E_PARAM}, {5, E_PARAM}};
		for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 1), ==,
					 OK);
			g_assert_cmpuint(
				execute_cursor(&h, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, bad[i].id), ==,
				bad[i].type);
			c = counts(&h);
			g_assert_cmpuint(c.cursor_hides, ==, 3 + i);
			g_assert_false(c.last_cursor.visible);
		}
	}
	/* a scanout that does not exist: refused, the sink hears nothing */
	c = counts(&h);
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_UPDATE_CURSOR, 9, 1), ==, E_SCAN);
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_MOVE_CURSOR, 9, 1), ==, E_SCAN);
	g_assert_cmpuint(counts(&h).cursor_updates + counts(&h).cursor_moves +
				 counts(&h).cursor_hides,
			 ==, c.cursor_updates + c.cursor_moves + c.cursor_hides);

	/* the cursor's resource freed: hidden at its last position; another one is not */
	g_assert_cmpint(gpu_guest_update_cursor(h.guest, 0, 8, 9, 1, 1, 2), ==, 0);
	c = counts(&h);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 2), ==, OK);
	g_assert_cmpuint(counts(&h).cursor_hides, ==, c.cursor_hides);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==, OK);
	g_assert_cmpuint(counts(&h).cursor_hides, ==, c.cursor_hides + 1);
	assert_last_cursor(&h, 8, 9, 1, 2, false);
	/* and stays hidden when moved, even by a guest naming the freed resource */
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_MOVE_CURSOR, 0, 1), ==, OK);
	g_assert_false(counts(&h).last_cursor.visible);
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 1), ==, E_RES);
	harness_finish(&h);
}

/* A Linux guest's dumb buffer is a guest blob once RESOURCE_BLOB is on: read from its pages. */
static void
test_cursor_guest_blob(void)
{
	struct harness h;
	struct virtio_gpu_mem_entry e[4];
	uint8_t *guest;
	uint64_t gpa;

	harness_init(&h, NULL);
	gpa = harness_alloc(&h, CURSOR_BYTES, &guest);
	cb_test_pattern(guest, CURSOR_BYTES, 31);
	g_assert_cmpint(gpu_guest_backing_pages(gpa, CURSOR_BYTES, 4096, e, 4), ==, 4);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_GUEST,
						       VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0,
						       CURSOR_BYTES, e, 4),
			==, OK);
	g_assert_cmpint(gpu_guest_update_cursor(h.guest, 0, 100, 200, 1, 7, 8), ==, 0);
	g_assert_cmpuint(counts(&h).cursor_updates, ==, 1);
	assert_last_cursor(&h, 100, 200, 7, 8, true);
	assert_cursor_image(&h, guest, 0);
	/* the guest draws a new cursor into the same pages: the next UPDATE_CURSOR reads it */
	cb_test_pattern(guest, CURSOR_BYTES, 32);
	g_assert_cmpint(gpu_guest_update_cursor(h.guest, 0, 100, 200, 1, 7, 8), ==, 0);
	assert_cursor_image(&h, guest, 0);
	/* a blob too small for 64x64 pixels cannot be a cursor */
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 2, VIRTIO_GPU_BLOB_MEM_GUEST,
						       VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0, 4096,
						       e, 1),
			==, OK);
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 2), ==, E_PARAM);
	g_assert_cmpuint(counts(&h).cursor_hides, ==, 1);
	/* a device reset hides a cursor that is shown */
	g_assert_cmpint(gpu_guest_update_cursor(h.guest, 0, 1, 1, 1, 0, 0), ==, 0);
	gpu_device_reset(h.dev);
	g_assert_cmpuint(counts(&h).cursor_hides, ==, 2);
	g_assert_false(counts(&h).last_cursor.visible);
	harness_finish(&h);
}

/* A sink without a cursor hook (the PNG writer) is left alone. */
static void
test_cursor_sink_without_hook(void)
{
	struct harness h;
	g_autofree char *dir = g_dir_make_tmp("cb-cursor-XXXXXX", NULL);
	struct harness_options o = {.png_dir = dir};
	struct gpu_sink *png;

	if (gpu_sink_png_new(dir, false, &png) < 0) {
		rmdir(dir);
		g_test_skip("built without the PNG sink");
		return;
	}
	gpu_sink_destroy(png);
	harness_init(&h, &o);
	cursor_resource(&h, 1, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 1);
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 1), ==, OK);
	g_assert_cmpuint(execute_cursor(&h, VIRTIO_GPU_CMD_MOVE_CURSOR, 0, 1), ==, OK);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==, OK);
	harness_finish(&h);
	rmdir(dir);
}

static void
test_guest_mem_changed(void)
{
	struct harness h;
	struct virtio_gpu_mem_entry e[2];
	uint8_t *guest, *moved;
	uint64_t gpa;

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 16, 16), ==, OK);
	g_assert_cmpint(harness_attach(&h, 1, 16 * 16 * 4, &guest), ==, OK);
	gpa = harness_alloc(&h, 8192, NULL);
	gpu_guest_backing_pages(gpa, 8192, 4096, e, 2);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 2, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 0,
						       8192, e, 2),
			==, OK);

	/* the transport maps guest RAM elsewhere: the same memory at a new address */
	moved = mmap(NULL, HARNESS_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, h.mem_fd, 0);
	g_assert_true(moved != MAP_FAILED);
	munmap(h.mem, HARNESS_MEM_SIZE);
	h.mem = moved;
	guest_mem_init(&h.gm);
	g_assert_cmpint(guest_mem_add_region(&h.gm, HARNESS_GPA, HARNESS_MEM_SIZE, moved), ==, 0);
	g_assert_cmpuint(gpu_device_guest_mem_changed(h.dev), ==, 0);
	/* the old mapping is gone: a stale pointer would crash here */
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 16, 16), ==, OK);

	/* RAM goes away under the backings: they are dropped, not used */
	guest_mem_init(&h.gm);
	g_assert_cmpint(guest_mem_add_region(&h.gm, HARNESS_GPA + (1u << 20), 4096, moved), ==, 0);
	g_assert_cmpuint(gpu_device_guest_mem_changed(h.dev), ==, 2);
	g_assert_cmpint(gpu_guest_transfer_to_host_2d(h.guest, 1, 0, 0, 0, 16, 16), ==, E_UNSPEC);
	g_assert_cmpint(harness_attach(&h, 1, 4096, NULL), ==, E_UNSPEC);
	guest_mem_init(&h.gm);
	g_assert_cmpint(guest_mem_add_region(&h.gm, HARNESS_GPA, HARNESS_MEM_SIZE, moved), ==, 0);
	harness_finish(&h);
}

static void
test_guest_blob_export(void)
{
	struct harness h;
	struct harness_options o = {.guest_memfd = true, .udmabuf_path = "/nonexistent/udmabuf"};
	struct virtio_gpu_mem_entry e[2];
	uint64_t gpa;

	/* no way to name guest RAM as an fd: the guest still gets its answer */
	harness_init(&h, NULL);
	gpa = harness_alloc(&h, 8192, NULL);
	gpu_guest_backing_pages(gpa, 8192, 4096, e, 2);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_GUEST,
						       VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0, 8192,
						       e, 2),
			==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, NULL), ==, E_UNSPEC);
	/* a cross-device guest blob cannot be created then (it is exported at creation) */
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 2, VIRTIO_GPU_BLOB_MEM_GUEST,
						       VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE, 0,
						       8192, e, 2),
			==, E_UNSPEC);
	harness_finish(&h);

	/* with guest RAM's memfd known, the device asks for each entry and tries udmabuf */
	harness_init(&h, &o);
	gpa = harness_alloc(&h, 8192, NULL);
	gpu_guest_backing_pages(gpa, 8192, 4096, e, 2);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 1, VIRTIO_GPU_BLOB_MEM_GUEST,
						       VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 0, 8192,
						       e, 2),
			==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, NULL), ==, E_UNSPEC);
	g_assert_cmpuint(h.guest_memfd_calls, ==, 2);
	g_assert_cmpuint(harness_live_exports(&h), ==, 0);
	harness_finish(&h);
}

static void
test_reset(void)
{
	struct harness h;
	uint8_t uuid[16];

	harness_init(&h, NULL);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 16, 16), ==, OK);
	g_assert_cmpint(harness_attach(&h, 1, 16 * 16 * 4, NULL), ==, OK);
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, uuid), ==,
			VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	g_assert_cmpint(gpu_guest_set_scanout(h.guest, 0, 1, 0, 0, 16, 16), ==, OK);
	g_assert_cmpint(gpu_guest_resource_create_blob(h.guest, 2, VIRTIO_GPU_BLOB_MEM_HOST3D,
						       VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 0, 4096,
						       NULL, 0),
			==, OK);
	g_assert_cmpint(gpu_guest_map_blob(h.guest, 2, 0, NULL), ==, VIRTIO_GPU_RESP_OK_MAP_INFO);
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 3, 0, "x"), ==, OK);

	gpu_device_reset(h.dev);
	g_assert_cmpuint(gpu_device_count_resources(h.dev), ==, 0);
	g_assert_cmpuint(harness_live_exports(&h), ==, 0);
	g_assert_cmpuint(h.unmaps, ==, 1);
	g_assert_cmpuint(counts(&h).disables, ==, 1);
	/* nothing negotiated any more */
	g_assert_cmpint(gpu_guest_assign_uuid(h.guest, 1, NULL), ==, E_UNSPEC);
	/* the same ids are free again */
	g_assert_cmpint(gpu_device_set_features(h.dev, gpu_device_get_features(h.dev)), ==, 0);
	g_assert_cmpint(gpu_guest_resource_create_2d(h.guest, 1, XRGB, 16, 16), ==, OK);
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 3, 0, "x"), ==, OK);
	harness_finish(&h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/device/display-info", test_display_info);
	cb_test_add("/gpu-bridge/device/features", test_features);
	cb_test_add("/gpu-bridge/device/edid", test_edid);
	cb_test_add("/gpu-bridge/device/create-2d-errors", test_create_2d_errors);
	cb_test_add("/gpu-bridge/device/resource-limit", test_resource_limit);
	cb_test_add("/gpu-bridge/device/transfer-and-flush", test_transfer_and_flush);
	cb_test_add("/gpu-bridge/device/transfer-errors", test_transfer_errors);
	cb_test_add("/gpu-bridge/device/backing-errors", test_backing_errors);
	cb_test_add("/gpu-bridge/device/scanout-errors", test_scanout_errors);
	cb_test_add("/gpu-bridge/device/assign-uuid", test_assign_uuid);
	cb_test_add("/gpu-bridge/device/assign-uuid-failures", test_assign_uuid_failures);
	cb_test_add("/gpu-bridge/device/create-3d-nv12", test_create_3d_nv12);
	cb_test_add("/gpu-bridge/device/create-3d-planar", test_create_3d_planar);
	cb_test_add("/gpu-bridge/device/create-3d-errors", test_create_3d_errors);
	cb_test_add("/gpu-bridge/device/blob-host3d-cross-device", test_blob_host3d_cross_device);
	cb_test_add("/gpu-bridge/device/blob-errors", test_blob_errors);
	cb_test_add("/gpu-bridge/device/blob-scanout", test_blob_scanout);
	cb_test_add("/gpu-bridge/device/map-blob", test_map_blob);
	cb_test_add("/gpu-bridge/device/protected-policy", test_protected_policy);
	cb_test_add("/gpu-bridge/device/protected-scanout", test_protected_scanout);
	cb_test_add("/gpu-bridge/device/protected-blob", test_protected_blob);
	cb_test_add("/gpu-bridge/device/fences", test_fences);
	cb_test_add("/gpu-bridge/device/malformed", test_malformed);
	cb_test_add("/gpu-bridge/device/contexts", test_contexts);
	cb_test_add("/gpu-bridge/device/cursor", test_cursor);
	cb_test_add("/gpu-bridge/device/cursor-guest-blob", test_cursor_guest_blob);
	cb_test_add("/gpu-bridge/device/cursor-sink-without-hook", test_cursor_sink_without_hook);
	cb_test_add("/gpu-bridge/device/guest-mem-changed", test_guest_mem_changed);
	cb_test_add("/gpu-bridge/device/guest-blob-export", test_guest_blob_export);
	cb_test_add("/gpu-bridge/device/reset", test_reset);
	return g_test_run();
}
