/* SPDX-License-Identifier: MIT */
/*
 * The virtio-gpu device core: resources, backing, scanouts, contexts and the export of
 * resources into the crossbuf registry.
 *
 * Two ways in:
 *   - gpu_device_process(): a whole control- or cursor-queue request as a descriptor chain
 *     (decoded by protocol.c, answered into the chain's writable side). This is what the
 *     vhost-user transport calls.
 *   - gpu_device_execute(): an already decoded request, for a VMM that parses the queue
 *     itself; it can also create protected resources (create_flags).
 *
 * Every request gets an answer, errors included (VIRTIO_GPU_RESP_ERR_*); nothing a guest
 * sends stops the device. Work is synchronous: when gpu_device_process() returns, the work
 * is done, so a fenced request's reply (flag, fence_id, ctx_id and ring_idx echoed) may be
 * used as the fence's completion at once.
 *
 * Error replies, summed up (docs/gpu-bridge.md has the table):
 *   short or unknown request, feature not negotiated, no backing, export impossible,
 *   protected resource refused                          -> ERR_UNSPEC
 *   resource id 0, unknown, or taken (creation)         -> ERR_INVALID_RESOURCE_ID
 *   scanout id out of range                             -> ERR_INVALID_SCANOUT_ID
 *   context id unknown, 0 or taken                      -> ERR_INVALID_CONTEXT_ID
 *   bad format, size, rectangle, offset, flags, count   -> ERR_INVALID_PARAMETER
 *   allocation failures, limits reached                 -> ERR_OUT_OF_MEMORY
 *
 * Not thread-safe: one thread drives a device.
 */
#pragma once

#include "backend.h"
#include "crossbuf/crossbuf.h"
#include "guest-mem.h"
#include "iov.h"
#include "protocol.h"
#include "sink.h"

#include <stdbool.h>
#include <stdint.h>

struct gpu_device;

/* What a protection policy sees of a resource being created. */
struct gpu_resource_class {
	uint32_t resource_id;
	uint32_t cmd;    /* VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, _3D or _BLOB */
	uint32_t fourcc; /* 0 for blobs */
	uint32_t width, height;
	uint32_t blob_mem, blob_flags;
	uint64_t size; /* blobs */
};

/* create_flags of gpu_device_execute() */
enum gpu_create_flags {
	GPU_CREATE_PROTECTED = 1u << 0,
};

struct gpu_device_config {
	struct gpu_backend *backend; /* borrowed; outlives the device */
	const struct guest_mem *mem; /* borrowed; the transport keeps it current */
	struct gpu_sink *sink;       /* borrowed, outlives the device; may be NULL */
	unsigned num_scanouts;       /* 1 to VIRTIO_GPU_MAX_SCANOUTS */
	struct {
		uint32_t width, height;
	} scanouts[VIRTIO_GPU_MAX_SCANOUTS]; /* preferred modes; 0x0 means 1024x768 */
	/* Limits on what a guest may allocate; 0 means the default (16384, 4 GiB). */
	uint32_t max_resources;
	uint64_t max_host_memory;
	/*
	 * Protection policy for classes of resources (virtio-gpu has no protected flag):
	 * return true to make the resource protected. NULL: none is.
	 */
	bool (*protect)(void *userdata, const struct gpu_resource_class *c);
	void *protect_userdata;
	/*
	 * MAP_BLOB support, provided by the transport: map size bytes of fd (borrowed) from
	 * fd_offset into the host-visible shared memory region at shm_offset. shm_offset comes
	 * from the guest: the hook checks shm_offset + size against the region (and overlaps)
	 * and fails with -EINVAL (ERR_INVALID_PARAMETER) otherwise. NULL: MAP_BLOB fails with
	 * ERR_UNSPEC.
	 */
	int (*map_blob)(void *userdata, int fd, uint64_t fd_offset, uint64_t shm_offset,
			uint64_t size);
	int (*unmap_blob)(void *userdata, uint64_t shm_offset, uint64_t size);
	void *map_userdata;
	/*
	 * Optional: guest RAM as fds (the transport has them from vhost-user SET_MEM_TABLE), so
	 * guest-memory blobs can be exported as udmabufs of the guest's own pages. For
	 * [gpa, gpa + len) inside one region: the region's memfd (borrowed, sealed with
	 * F_SEAL_SHRINK as udmabuf requires) and the offset of gpa in it; -ENOENT otherwise.
	 * NULL: guest-memory blobs cannot be exported (ASSIGN_UUID answers ERR_UNSPEC).
	 */
	int (*guest_memfd)(void *userdata, uint64_t gpa, uint64_t len, int *ret_fd,
			   uint64_t *ret_offset);
	void *guest_memfd_userdata;
	const char *udmabuf_path; /* NULL: /dev/udmabuf */
};

/*
 * Where exported resources go. export_uuid registers fd (borrowed) under uuid with info;
 * it returns 0, -EEXIST if the UUID is taken, or another negative errno. remove takes the
 * entry away again. export-crossbuf.c implements it over a struct crossbuf_client.
 */
struct gpu_exporter {
	int (*export_uuid)(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE], int fd,
			   const struct crossbuf_buffer_info *info);
	int (*remove)(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE]);
	void (*destroy)(void *userdata); /* when replaced or the device goes; may be NULL */
};

int gpu_device_new(const struct gpu_device_config *config, struct gpu_device **ret_device);
/* Frees every resource (removing its registry entry) and the device. Accepts NULL. */
void gpu_device_free(struct gpu_device *device);
/*
 * Back to the state of a new device, as a virtio device reset (or a vhost-user RESET_OWNER,
 * or the connection ending) requires: every resource freed (its registry entry removed, its
 * blob mapping undone), every context destroyed, every scanout disabled, no feature
 * negotiated. The configuration, exporter and sink stay.
 */
void gpu_device_reset(struct gpu_device *device);

/*
 * Sets where exports go (NULL ops: nowhere; ASSIGN_UUID then fails with ERR_UNSPEC).
 * Existing exports stay where they were registered.
 */
void gpu_device_set_exporter(struct gpu_device *device, const struct gpu_exporter *ops,
			     void *userdata);
/*
 * Exports into the registry through client (a reference is taken; the embedder chooses how
 * it connects: crossbufd or an embedded registry). Only in builds with libcrossbuf.
 */
int gpu_device_set_crossbuf_client(struct gpu_device *device, struct crossbuf_client *client);

/* Feature bits (VIRTIO_GPU_F_*) the device offers, and the ones the driver accepted. */
uint64_t gpu_device_get_features(const struct gpu_device *device);
/* -EINVAL if acked has a bit that was not offered. */
int gpu_device_set_features(struct gpu_device *device, uint64_t acked);
/* The config space (num_scanouts, num_capsets), little-endian as on the wire. */
void gpu_device_get_config(const struct gpu_device *device, struct virtio_gpu_config *ret_config);

/*
 * Handles one request from the control or cursor queue and writes the reply into the
 * writable side. Returns the number of bytes written (for the used ring's len), 0 when the
 * chain has no room (cursor requests).
 */
size_t gpu_device_process(struct gpu_device *device, const struct cb_request *req);

/*
 * The guest memory table changed (the transport remapped guest RAM): every resource's backing
 * is resolved again. A backing that no longer maps is dropped (the resource then behaves as
 * without backing). Returns how many were dropped.
 */
unsigned gpu_device_guest_mem_changed(struct gpu_device *device);

/* Handles a decoded request; returns the reply type (ret_response->type). */
uint32_t gpu_device_execute(struct gpu_device *device, const struct gpu_request *request,
			    uint32_t create_flags, struct gpu_response *ret_response);

/* What the host knows of a resource, for embedders and tests. */
struct gpu_resource_info {
	uint32_t resource_id;
	uint32_t cmd; /* how it was created */
	struct gpu_layout layout;
	bool protected_;
	bool has_backing;
	bool exported;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	uint32_t blob_mem, blob_flags;
};

/* -ENOENT for an unknown resource. */
int gpu_device_get_resource(const struct gpu_device *device, uint32_t resource_id,
			    struct gpu_resource_info *ret_info);
/* The host buffer's fd: a new fd (the caller closes it). -ENOENT, -ENODATA without one. */
int gpu_device_dup_resource_fd(const struct gpu_device *device, uint32_t resource_id, int *ret_fd);
/* Number of live resources. */
unsigned gpu_device_count_resources(const struct gpu_device *device);
