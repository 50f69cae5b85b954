/* SPDX-License-Identifier: MIT */
/*
 * A small device on the vhost-user backend for the tests: the backend runs it in a thread of
 * its own, listening on a socket in a temporary folder, and the tests drive it with the
 * frontend library from the main thread.
 *
 * Requests on any of its two queues: a 16-byte header {u8 op; u8 pad[7]; le64 arg} then data.
 *   ECHO     writes the data back XORed with 0x5a; used length = bytes written.
 *   MAP      maps a new 8 KiB memfd filled with cb_test_pattern(seed = arg) at offset arg of
 *            shared memory region 0; writes the le32 result (0 or -errno).
 *   UNMAP    unmaps 8 KiB at offset arg of region 0; writes the result.
 *   OBJ_ADD  / OBJ_REMOVE: data is a UUID, sent as SHARED_OBJECT_ADD/REMOVE; writes the result.
 *   HOLD     keeps the request; it is completed when its queue stops (which must fail with
 *            -ESTALE, recorded in stale_completions) or by RELEASE.
 *   RELEASE  writes le32 ECHO_RELEASED into the held request and completes it, then itself.
 *   DEFER    completes the request later, from a watch on an eventfd (as a device whose
 *            worker thread finishes requests would), writing le32 0.
 *   CONFIG_CHANGED sends CONFIG_CHANGE_MSG; writes the result.
 * GPU_SET_SOCKET: the device writes "gpu" to the socket it is given.
 * Config space: 16 bytes, le32 magic at 0, le32 count of requests at 4 (read-only), 8 free
 * bytes at 8.
 */
#pragma once

#include "backend.h"

#include <glib.h>
#include <stdint.h>

enum echo_op {
	ECHO_OP_ECHO = 0,
	ECHO_OP_MAP = 1,
	ECHO_OP_UNMAP = 2,
	ECHO_OP_OBJ_ADD = 3,
	ECHO_OP_OBJ_REMOVE = 4,
	ECHO_OP_HOLD = 5,
	ECHO_OP_RELEASE = 6,
	ECHO_OP_DEFER = 7,
	ECHO_OP_CONFIG_CHANGED = 8,
};

/* What RELEASE writes into the held request's writable buffer. */
#define ECHO_RELEASED 0x12345678u

#define ECHO_MAGIC       0xc0ffee01u
#define ECHO_CONFIG_SIZE 16u
#define ECHO_SHMEM_SIZE  (1u << 20)
#define ECHO_MAP_LEN     8192u
#define ECHO_FEATURE_BIT 3 /* a device feature bit the device offers */
#define ECHO_N_QUEUES    2
#define ECHO_MAX_QUEUE   256

struct echo_device {
	struct vu_backend *backend;
	GThread *thread;
	char *dir;
	char *path;

	GMutex lock;
	GCond cond;
	/* Protected by lock. */
	unsigned connections_ended;
	int last_error;
	char last_why[64];
	unsigned resets;
	unsigned queue_starts;
	unsigned queue_stops;
	unsigned stale_completions;
	uint64_t features;
	/* Backend thread only. */
	uint8_t config[ECHO_CONFIG_SIZE];
	uint32_t requests;
	struct vu_elem *held[ECHO_N_QUEUES];
	struct vu_elem *deferred[64];
	unsigned n_deferred;
	int defer_fd; /* eventfd watched by the backend */
	int gpu_fd;
};

/* Starts the device listening (fails the test on error); guest memory must be sealed. */
struct echo_device *echo_device_start(void);
/* Serves a connected socket (taken) instead. */
struct echo_device *echo_device_start_adopted(int fd);
/* Stops the device; returns what its loop returned (0, or -ECONNRESET when adopted). */
int echo_device_stop(struct echo_device *d);
/* Waits until connections_ended reaches n; returns the last error. */
int echo_device_wait_ended(struct echo_device *d, unsigned n);
