/* SPDX-License-Identifier: MIT */
/*
 * A virtio-gpu device with everything around it, for tests: guest memory in a memfd, the
 * memfd backend, a counting sink, a fake exporter that records what is registered, and the
 * guest driver library talking to the device directly.
 */
#pragma once

#include "backend.h"
#include "device.h"
#include "guest-driver.h"
#include "sink.h"

#include <stdbool.h>
#include <stdint.h>

#define HARNESS_GPA         0x100000ull
#define HARNESS_MEM_SIZE    (32u << 20)
#define HARNESS_MAX_EXPORTS 64

struct fake_export {
	uint8_t uuid[16];
	int fd; /* our duplicate */
	struct crossbuf_buffer_info info;
	bool live;
};

struct harness {
	int mem_fd;
	uint8_t *mem;
	uint64_t mem_used;
	struct guest_mem gm;
	struct gpu_backend *backend;
	struct gpu_sink *sink;
	struct gpu_device *dev;
	struct gpu_guest *guest;
	struct fake_export exports[HARNESS_MAX_EXPORTS];
	unsigned n_exports, removes;
	int export_error; /* next export fails with this when not 0 */
	unsigned maps, unmaps;
	bool protect_nv12; /* policy: every NV12 resource is protected */
	unsigned guest_memfd_calls;
};

struct harness_options {
	bool authorized_sink;
	bool no_exporter;
	uint64_t features; /* 0: all offered */
	bool no_features;
	bool protect_nv12;
	uint32_t max_resources;
	const char *png_dir;      /* a PNG sink writing there instead of the counting sink */
	bool guest_memfd;         /* tell the device guest RAM's memfd (for udmabuf exports) */
	const char *udmabuf_path; /* NULL: /dev/udmabuf */
};

void harness_init(struct harness *h, const struct harness_options *opts);
void harness_finish(struct harness *h);

/* Bump allocation of guest memory (page aligned); returns the gpa, *ret_host the mapping. */
uint64_t harness_alloc(struct harness *h, uint64_t size, uint8_t **ret_host);
/* Allocates size bytes and attaches them, split into pages, as id's backing. */
int harness_attach(struct harness *h, uint32_t id, uint64_t size, uint8_t **ret_host);
struct fake_export *harness_find_export(struct harness *h, const uint8_t uuid[16]);
unsigned harness_live_exports(const struct harness *h);
