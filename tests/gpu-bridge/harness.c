/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int
submit(void *userdata, const struct cb_request *req)
{
	struct harness *h = userdata;
	return (int)gpu_device_process(h->dev, req);
}

static int
fake_export_uuid(void *userdata, const uint8_t uuid[16], int fd,
		 const struct crossbuf_buffer_info *info)
{
	struct harness *h = userdata;
	struct fake_export *e;

	if (h->export_error != 0) {
		int r = h->export_error;
		h->export_error = 0;
		return r;
	}
	if (harness_find_export(h, uuid) != NULL)
		return -EEXIST;
	if (h->n_exports == HARNESS_MAX_EXPORTS)
		return -EDQUOT;
	e = &h->exports[h->n_exports++];
	memcpy(e->uuid, uuid, 16);
	e->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	g_assert_cmpint(e->fd, >=, 0);
	e->info = *info;
	e->live = true;
	return 0;
}

static int
fake_remove(void *userdata, const uint8_t uuid[16])
{
	struct harness *h = userdata;
	struct fake_export *e = harness_find_export(h, uuid);

	if (e == NULL)
		return -ENOENT;
	close(e->fd);
	e->fd = -1;
	e->live = false;
	h->removes++;
	return 0;
}

static const struct gpu_exporter fake_exporter = {
	.export_uuid = fake_export_uuid,
	.remove = fake_remove,
};

static bool
protect_policy(void *userdata, const struct gpu_resource_class *c)
{
	struct harness *h = userdata;
	return h->protect_nv12 && c->fourcc == 0x3231564e; /* NV12 */
}

static int
map_blob(void *userdata, int fd, uint64_t fd_offset, uint64_t shm_offset, uint64_t size)
{
	struct harness *h = userdata;
	g_assert_cmpint(fd, >=, 0);
	h->maps++;
	return 0;
}

static int
unmap_blob(void *userdata, uint64_t shm_offset, uint64_t size)
{
	struct harness *h = userdata;
	h->unmaps++;
	return 0;
}

static int
guest_memfd(void *userdata, uint64_t gpa, uint64_t len, int *ret_fd, uint64_t *ret_offset)
{
	struct harness *h = userdata;

	h->guest_memfd_calls++;
	if (gpa < HARNESS_GPA || gpa - HARNESS_GPA > HARNESS_MEM_SIZE ||
	    len > HARNESS_MEM_SIZE - (gpa - HARNESS_GPA))
		return -ENOENT;
	*ret_fd = h->mem_fd;
	*ret_offset = gpa - HARNESS_GPA;
	return 0;
}

void
harness_init(struct harness *h, const struct harness_options *opts)
{
	static const struct harness_options defaults = {0};
	struct gpu_device_config config = {0};

	if (opts == NULL)
		opts = &defaults;
	memset(h, 0, sizeof(*h));
	h->protect_nv12 = opts->protect_nv12;
	/* sealed against shrinking, as a VMM's RAM memfd is (udmabuf requires it) */
	h->mem_fd = cb_test_memfd("guest-ram", NULL, HARNESS_MEM_SIZE);
	h->mem = mmap(NULL, HARNESS_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, h->mem_fd, 0);
	g_assert_true(h->mem != MAP_FAILED);
	guest_mem_init(&h->gm);
	g_assert_cmpint(guest_mem_add_region(&h->gm, HARNESS_GPA, HARNESS_MEM_SIZE, h->mem), ==, 0);
	g_assert_cmpint(gpu_backend_memfd_new(&h->backend), ==, 0);
	if (opts->png_dir != NULL)
		g_assert_cmpint(gpu_sink_png_new(opts->png_dir, opts->authorized_sink, &h->sink),
				==, 0);
	else
		g_assert_cmpint(gpu_sink_count_new(opts->authorized_sink, &h->sink), ==, 0);

	config.backend = h->backend;
	config.mem = &h->gm;
	config.sink = h->sink;
	config.num_scanouts = 2;
	config.scanouts[0].width = 640;
	config.scanouts[0].height = 480;
	config.max_resources = opts->max_resources;
	config.protect = protect_policy;
	config.protect_userdata = h;
	config.map_blob = map_blob;
	config.unmap_blob = unmap_blob;
	config.map_userdata = h;
	if (opts->guest_memfd) {
		config.guest_memfd = guest_memfd;
		config.guest_memfd_userdata = h;
		config.udmabuf_path = opts->udmabuf_path;
	}
	g_assert_cmpint(gpu_device_new(&config, &h->dev), ==, 0);
	if (!opts->no_features) {
		uint64_t f = opts->features ? opts->features : gpu_device_get_features(h->dev);
		g_assert_cmpint(gpu_device_set_features(h->dev, f), ==, 0);
	}
	if (!opts->no_exporter)
		gpu_device_set_exporter(h->dev, &fake_exporter, h);
	g_assert_cmpint(gpu_guest_new(submit, h, &h->guest), ==, 0);
}

void
harness_finish(struct harness *h)
{
	gpu_guest_free(h->guest);
	gpu_device_free(h->dev);
	for (unsigned i = 0; i < h->n_exports; i++) {
		/* the device removes its exports when it goes */
		g_assert_false(h->exports[i].live);
	}
	gpu_sink_destroy(h->sink);
	gpu_backend_destroy(h->backend);
	munmap(h->mem, HARNESS_MEM_SIZE);
	close(h->mem_fd);
}

uint64_t
harness_alloc(struct harness *h, uint64_t size, uint8_t **ret_host)
{
	uint64_t off = h->mem_used;

	size = (size + 4095) & ~4095ull;
	g_assert_cmpuint(off + size, <=, HARNESS_MEM_SIZE);
	h->mem_used += size;
	if (ret_host != NULL)
		*ret_host = h->mem + off;
	return HARNESS_GPA + off;
}

int
harness_attach(struct harness *h, uint32_t id, uint64_t size, uint8_t **ret_host)
{
	uint64_t gpa = harness_alloc(h, size, ret_host);
	unsigned max = (unsigned)(size / 4096 + 1);
	struct virtio_gpu_mem_entry *e = g_new0(struct virtio_gpu_mem_entry, max);
	int n = gpu_guest_backing_pages(gpa, size, 4096, e, max);
	int r;

	g_assert_cmpint(n, >, 0);
	r = gpu_guest_attach_backing(h->guest, id, e, (uint32_t)n);
	g_free(e);
	return r;
}

struct fake_export *
harness_find_export(struct harness *h, const uint8_t uuid[16])
{
	for (unsigned i = 0; i < h->n_exports; i++) {
		if (h->exports[i].live && memcmp(h->exports[i].uuid, uuid, 16) == 0)
			return &h->exports[i];
	}
	return NULL;
}

unsigned
harness_live_exports(const struct harness *h)
{
	unsigned n = 0;
	for (unsigned i = 0; i < h->n_exports; i++)
		n += h->exports[i].live;
	return n;
}
