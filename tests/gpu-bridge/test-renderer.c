/* SPDX-License-Identifier: MIT */
/*
 * The device's paths to a renderer (what the virglrenderer backend gets), through a fake
 * rendering backend: memfd buffers plus recorded contexts, command streams, capsets and
 * fence waits. The real virglrenderer backend needs a render node this machine lacks.
 */
#include "harness.h"
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define OK VIRTIO_GPU_RESP_OK_NODATA

struct fake_renderer {
	struct gpu_backend base;
	struct gpu_backend *memfd;
	unsigned ctx_creates, ctx_destroys, attaches, detaches, submits, syncs, transfers;
	uint32_t last_ctx, last_size, last_context_init;
	uint32_t first_dword;
	char last_name[65];
	struct gpu_transfer last_transfer;
	bool last_to_host;
};

static struct fake_renderer *
fr(struct gpu_backend *b)
{
	return (struct fake_renderer *)b;
}

static void
fake_destroy(struct gpu_backend *b)
{
	gpu_backend_destroy(fr(b)->memfd);
	g_free(b);
}

static int
fake_create(struct gpu_backend *b, const struct gpu_buffer_desc *d, struct gpu_buffer **ret)
{
	struct gpu_buffer_desc copy = *d;

	/* a renderer takes any 3D resource: give unknown ones a small opaque buffer */
	if (copy.kind == GPU_BUFFER_IMAGE && copy.format == NULL) {
		copy.kind = GPU_BUFFER_BLOB;
		copy.size = 4096;
	}
	return fr(b)->memfd->ops->buffer_create(fr(b)->memfd, &copy, ret);
}

static void
fake_buffer_destroy(struct gpu_backend *b, struct gpu_buffer *buf)
{
	fr(b)->memfd->ops->buffer_destroy(fr(b)->memfd, buf);
}

static int
fake_begin(struct gpu_backend *b, struct gpu_buffer *buf, unsigned a, bool p, uint8_t **ret)
{
	return fr(b)->memfd->ops->begin_cpu(fr(b)->memfd, buf, a, p, ret);
}

static void
fake_end(struct gpu_backend *b, struct gpu_buffer *buf, unsigned a)
{
	fr(b)->memfd->ops->end_cpu(fr(b)->memfd, buf, a);
}

static int
fake_transfer(struct gpu_backend *b, struct gpu_buffer *buf, bool to_host,
	      const struct gpu_transfer *t, const struct iovec *backing, unsigned n)
{
	fr(b)->transfers++;
	fr(b)->last_transfer = *t;
	fr(b)->last_to_host = to_host;
	return n > 0 ? 0 : -EINVAL;
}

static int
fake_attach(struct gpu_backend *b, struct gpu_buffer *buf, const struct iovec *iov, unsigned n)
{
	fr(b)->attaches++;
	return 0;
}

static void
fake_detach(struct gpu_backend *b, struct gpu_buffer *buf)
{
	fr(b)->detaches++;
}

static int
fake_ctx_create(struct gpu_backend *b, uint32_t ctx, uint32_t init, const char *name)
{
	fr(b)->ctx_creates++;
	fr(b)->last_ctx = ctx;
	fr(b)->last_context_init = init;
	g_strlcpy(fr(b)->last_name, name, sizeof(fr(b)->last_name));
	return 0;
}

static void
fake_ctx_destroy(struct gpu_backend *b, uint32_t ctx)
{
	fr(b)->ctx_destroys++;
}

static int
fake_submit(struct gpu_backend *b, uint32_t ctx, void *cmds, uint32_t size)
{
	fr(b)->submits++;
	fr(b)->last_ctx = ctx;
	fr(b)->last_size = size;
	if (size >= 4)
		memcpy(&fr(b)->first_dword, cmds, 4);
	return size % 4 == 0 ? 0 : -EINVAL;
}

static uint32_t
fake_num_capsets(struct gpu_backend *b)
{
	return 1;
}

static int
fake_capset_info(struct gpu_backend *b, uint32_t index, uint32_t *id, uint32_t *ver, uint32_t *size)
{
	if (index != 0)
		return -EINVAL;
	*id = VIRTIO_GPU_CAPSET_VIRGL2;
	*ver = 2;
	*size = 16;
	return 0;
}

static int
fake_capset(struct gpu_backend *b, uint32_t id, uint32_t version, void *buf, uint32_t size)
{
	if (id != VIRTIO_GPU_CAPSET_VIRGL2 || version > 2 || size < 16)
		return -EINVAL;
	memset(buf, 0xc5, 16);
	return 16;
}

static int
fake_sync(struct gpu_backend *b, uint32_t ctx)
{
	fr(b)->syncs++;
	return 0;
}

static const struct gpu_backend_ops fake_ops = {
	.name = "fake-renderer",
	.destroy = fake_destroy,
	.buffer_create = fake_create,
	.buffer_destroy = fake_buffer_destroy,
	.begin_cpu = fake_begin,
	.end_cpu = fake_end,
	.transfer = fake_transfer,
	.attach_backing = fake_attach,
	.detach_backing = fake_detach,
	.ctx_create = fake_ctx_create,
	.ctx_destroy = fake_ctx_destroy,
	.submit_3d = fake_submit,
	.num_capsets = fake_num_capsets,
	.capset_info = fake_capset_info,
	.capset = fake_capset,
	.sync = fake_sync,
};

static struct fake_renderer *
use_fake_renderer(struct harness *h)
{
	struct fake_renderer *f = g_new0(struct fake_renderer, 1);
	struct gpu_device_config config = {0};

	f->base.ops = &fake_ops;
	g_assert_cmpint(gpu_backend_memfd_new(&f->memfd), ==, 0);
	/* replace the harness' device with one on the fake renderer */
	gpu_device_free(h->dev);
	gpu_backend_destroy(h->backend);
	h->backend = &f->base;
	config.backend = h->backend;
	config.mem = &h->gm;
	config.sink = h->sink;
	config.num_scanouts = 1;
	g_assert_cmpint(gpu_device_new(&config, &h->dev), ==, 0);
	g_assert_cmpint(gpu_device_set_features(h->dev, gpu_device_get_features(h->dev)), ==, 0);
	return f;
}

static void
test_features_and_capsets(void)
{
	struct harness h;
	struct fake_renderer *f;
	struct gpu_guest_reply reply;
	struct virtio_gpu_config config;
	uint8_t caps[32];

	harness_init(&h, NULL);
	f = use_fake_renderer(&h);
	g_assert_true(gpu_device_get_features(h.dev) & (1ull << VIRTIO_GPU_F_VIRGL));
	g_assert_true(gpu_device_get_features(h.dev) & (1ull << VIRTIO_GPU_F_CONTEXT_INIT));
	gpu_device_get_config(h.dev, &config);
	g_assert_cmpuint(le32toh(config.num_capsets), ==, 1);
	g_assert_cmpint(gpu_guest_get_capset_info(h.guest, 0, &reply), ==,
			VIRTIO_GPU_RESP_OK_CAPSET_INFO);
	g_assert_cmpuint(le32toh(reply.capset_info.capset_id), ==, VIRTIO_GPU_CAPSET_VIRGL2);
	g_assert_cmpuint(le32toh(reply.capset_info.capset_max_version), ==, 2);
	g_assert_cmpuint(le32toh(reply.capset_info.capset_max_size), ==, 16);
	g_assert_cmpint(gpu_guest_get_capset_info(h.guest, 1, &reply), ==,
			VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	memset(caps, 0, sizeof(caps));
	g_assert_cmpint(gpu_guest_get_capset(h.guest, VIRTIO_GPU_CAPSET_VIRGL2, 2, caps, 16), ==,
			VIRTIO_GPU_RESP_OK_CAPSET);
	g_assert_cmpuint(caps[0], ==, 0xc5);
	g_assert_cmpuint(caps[15], ==, 0xc5);
	g_assert_cmpint(gpu_guest_get_capset(h.guest, VIRTIO_GPU_CAPSET_VIRGL2, 3, caps, 16), ==,
			VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	g_assert_cmpint(gpu_guest_get_capset(h.guest, VIRTIO_GPU_CAPSET_VIRGL, 1, caps, 16), ==,
			VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* a reply buffer too small for the capset: an error header */
	g_assert_cmpint(gpu_guest_get_capset(h.guest, VIRTIO_GPU_CAPSET_VIRGL2, 2, caps, 8), ==,
			VIRTIO_GPU_RESP_ERR_UNSPEC);
	(void)f;
	harness_finish(&h);
}

static void
test_contexts_and_submit(void)
{
	struct harness h;
	struct fake_renderer *f;
	uint32_t cmds[3] = {0x11223344, 0, 0};

	harness_init(&h, NULL);
	f = use_fake_renderer(&h);
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 5, 2, "mesa-virgl"), ==, OK);
	g_assert_cmpuint(f->ctx_creates, ==, 1);
	g_assert_cmpuint(f->last_context_init, ==, 2);
	g_assert_cmpstr(f->last_name, ==, "mesa-virgl");
	g_assert_cmpint(gpu_guest_submit_3d(h.guest, 5, cmds, sizeof(cmds)), ==, OK);
	g_assert_cmpuint(f->submits, ==, 1);
	g_assert_cmpuint(f->last_ctx, ==, 5);
	g_assert_cmpuint(f->last_size, ==, 12);
	g_assert_cmpuint(f->first_dword, ==, 0x11223344);
	g_assert_cmpint(gpu_guest_submit_3d(h.guest, 6, cmds, sizeof(cmds)), ==,
			VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	g_assert_cmpint(gpu_guest_submit_3d(h.guest, 5, cmds, 6), ==,
			VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	g_assert_cmpint(gpu_guest_submit_3d(h.guest, 5, NULL, 0), ==, OK);

	/* a fenced request waits for the renderer before its reply */
	gpu_guest_set_fence(h.guest, true, 5, 0);
	g_assert_cmpint(gpu_guest_submit_3d(h.guest, 5, cmds, sizeof(cmds)), ==, OK);
	g_assert_cmpuint(f->syncs, ==, 1);
	gpu_guest_set_fence(h.guest, false, 0, -1);
	g_assert_cmpint(gpu_guest_ctx_destroy(h.guest, 5), ==, OK);
	g_assert_cmpuint(f->ctx_destroys, ==, 1);
	/* contexts still alive when the device goes are destroyed */
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 7, 0, NULL), ==, OK);
	harness_finish(&h);
}

static void
test_3d_resources_and_transfers(void)
{
	struct harness h;
	struct fake_renderer *f;
	struct virtio_gpu_resource_create_3d c = {0};
	struct virtio_gpu_box box = {.x = 1, .y = 2, .w = 3, .h = 4, .d = 1};

	harness_init(&h, NULL);
	f = use_fake_renderer(&h);
	/* any target goes to the renderer: a buffer, a 3D texture with mipmaps */
	c.resource_id = htole32(1);
	c.target = htole32(GPU_PIPE_BUFFER);
	c.format = htole32(64); /* R8_UNORM: not a format the bridge lays out itself */
	c.width = htole32(4096);
	c.height = htole32(1);
	c.depth = htole32(1);
	c.array_size = htole32(1);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, OK);
	c.resource_id = htole32(2);
	c.target = htole32(GPU_PIPE_TEXTURE_2D);
	c.format = htole32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
	c.width = htole32(64);
	c.height = htole32(64);
	c.last_level = htole32(6);
	g_assert_cmpint(gpu_guest_resource_create_3d(h.guest, &c), ==, OK);
	g_assert_cmpint(harness_attach(&h, 2, 65536, NULL), ==, OK);
	g_assert_cmpuint(f->attaches, ==, 1);
	/* the renderer handles levels and boxes itself */
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, true, 2, &box, 128, 3, 256, 0), ==, OK);
	g_assert_cmpuint(f->transfers, ==, 1);
	g_assert_true(f->last_to_host);
	g_assert_cmpuint(f->last_transfer.level, ==, 3);
	g_assert_cmpuint(f->last_transfer.stride, ==, 256);
	g_assert_cmpuint(f->last_transfer.offset, ==, 128);
	g_assert_cmpuint(f->last_transfer.x, ==, 1);
	g_assert_cmpuint(f->last_transfer.h, ==, 4);
	g_assert_cmpint(gpu_guest_transfer_3d(h.guest, false, 2, &box, 0, 0, 0, 0), ==, OK);
	g_assert_false(f->last_to_host);
	g_assert_cmpint(gpu_guest_ctx_create(h.guest, 1, 0, "c"), ==, OK);
	g_assert_cmpint(gpu_guest_ctx_resource(h.guest, true, 1, 2), ==, OK);
	g_assert_cmpint(gpu_guest_detach_backing(h.guest, 2), ==, OK);
	g_assert_cmpuint(f->detaches, ==, 1);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 2), ==, OK);
	g_assert_cmpint(gpu_guest_resource_unref(h.guest, 1), ==, OK);
	harness_finish(&h);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/gpu-bridge/renderer/features-and-capsets", test_features_and_capsets);
	cb_test_add("/gpu-bridge/renderer/contexts-and-submit", test_contexts_and_submit);
	cb_test_add("/gpu-bridge/renderer/3d-resources-and-transfers",
		    test_3d_resources_and_transfers);
	return g_test_run();
}
