/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the whole device: a sequence of requests, each prefixed by its
 * length (le16; an empty record resets the device), run through gpu_device_process()
 * against the memfd backend, 1 MiB of guest RAM at 0x10000, a counting sink, an exporter
 * that accepts everything, and a policy protecting resources with ids >= 0x1000 (so the
 * protected paths are reached too).
 */
#include "device.h"
#include "macro.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_GPA  0x10000
#define RAM_SIZE (1u << 20)

static uint8_t ram[RAM_SIZE];

static int
accept_export(void *userdata, const uint8_t uuid[16], int fd,
	      const struct crossbuf_buffer_info *info)
{
	return fd >= 0 ? 0 : -EBADF;
}

static int
accept_remove(void *userdata, const uint8_t uuid[16])
{
	return 0;
}

static const struct gpu_exporter exporter = {
	.export_uuid = accept_export,
	.remove = accept_remove,
};

static bool
protect_high_ids(void *userdata, const struct gpu_resource_class *c)
{
	return c->resource_id >= 0x1000;
}

static int
map_ok(void *userdata, int fd, uint64_t fd_offset, uint64_t shm_offset, uint64_t size)
{
	return 0;
}

static int
unmap_ok(void *userdata, uint64_t shm_offset, uint64_t size)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem gm;
	struct gpu_backend *backend;
	struct gpu_sink *sink;
	struct gpu_device *dev;
	struct gpu_device_config config = {0};
	static uint8_t reply[2048];

	memset(ram, 0, sizeof(ram));
	guest_mem_init(&gm);
	if (guest_mem_add_region(&gm, RAM_GPA, RAM_SIZE, ram) < 0)
		abort();
	if (gpu_backend_memfd_new(&backend) < 0 || gpu_sink_count_new(false, &sink) < 0)
		abort();
	config.backend = backend;
	config.mem = &gm;
	config.sink = sink;
	config.num_scanouts = 2;
	config.max_resources = 64;
	config.max_host_memory = 64u << 20;
	config.protect = protect_high_ids;
	config.map_blob = map_ok;
	config.unmap_blob = unmap_ok;
	if (gpu_device_new(&config, &dev) < 0)
		abort();
	gpu_device_set_features(dev, gpu_device_get_features(dev));
	gpu_device_set_exporter(dev, &exporter, NULL);

	while (size >= 2) {
		size_t len = (size_t)data[0] | ((size_t)data[1] << 8);
		struct iovec in = {.iov_base = (void *)(data + 2)};
		struct iovec out = {.iov_base = reply, .iov_len = sizeof(reply)};
		struct cb_request req = {.in = &in, .n_in = 1, .out = &out, .n_out = 1};

		data += 2;
		size -= 2;
		if (len == 0) {
			/* an empty record: a device reset, then the features again */
			gpu_device_reset(dev);
			gpu_device_set_features(dev, gpu_device_get_features(dev));
			continue;
		}
		len = MIN(len, size);
		in.iov_len = len;
		if (gpu_device_process(dev, &req) > sizeof(reply))
			abort();
		data += len;
		size -= len;
	}

	gpu_device_free(dev);
	gpu_sink_destroy(sink);
	gpu_backend_destroy(backend);
	return 0;
}
