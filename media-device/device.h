/* SPDX-License-Identifier: MIT */
/*
 * The virtio-media device, transport-independent: the embedder (a vhost-user backend, a
 * VMM, a test) hands it commandq requests as struct cb_request and gives it callbacks for
 * the eventq and for shared memory region 0; the device runs one V4L2 stateful decoder
 * per session.
 *
 * Threading: media_device_handle_command() and media_device_dispatch_registry() are called
 * from one thread (the command thread). The ops may be called from that thread and from the
 * decoders' workers; the device serializes send_event calls.
 */
#pragma once

#include "guest-mem.h"
#include "iov.h"
#include "virtio-media.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crossbuf_client;
struct media_device;

#define MEDIA_DEVICE_MAX_SESSIONS 64
#define MEDIA_DEVICE_MAX_MAPPINGS 1024

struct media_device_ops {
	/*
	 * Puts one event (len <= VIRTIO_MEDIA_EVENT_MAX_SIZE bytes, copied by the callee)
	 * on the eventq. Never called concurrently with itself. It must not wait for the
	 * guest (a full eventq): it runs with a session's lock held, so the transport keeps
	 * events that do not fit yet and posts them when the driver returns eventq buffers.
	 */
	void (*send_event)(void *userdata, const void *event, size_t len);
	/*
	 * Maps len bytes of fd (borrowed; the callee duplicates or maps it) into shared
	 * memory region 0, read-write if writable, and returns its offset in the region.
	 */
	int (*shm_map)(void *userdata, int fd, uint64_t len, bool writable, uint64_t *ret_addr);
	/* Removes a mapping made by shm_map. */
	int (*shm_unmap)(void *userdata, uint64_t addr);
};

struct media_device_params {
	const struct media_device_ops *ops;
	void *userdata;
	const char *card;                  /* the config space card name; NULL for a default */
	const struct guest_mem *guest_mem; /* borrowed, for SHARED_PAGES; may be NULL */
	/*
	 * The registry client for OBJECT buffers and EXPBUF (a reference is taken), or NULL.
	 * The device installs its own removed-callback on it and is its only user.
	 */
	struct crossbuf_client *client;
};

int media_device_new(const struct media_device_params *params, struct media_device **ret);
/* Closes every session and drops the mappings' bookkeeping (not the transport's maps). */
void media_device_free(struct media_device *dev);

void media_device_get_config(struct media_device *dev, struct virtio_media_config *ret);

/*
 * Handles one commandq request and returns the number of bytes written into its writable
 * part: the used length to return the chain with. Never fails: malformed requests get an
 * error status (or nothing, when even the status does not fit).
 */
size_t media_device_handle_command(struct media_device *dev, const struct cb_request *req);

/*
 * Runs pending registry notifications (entries removed under queued buffers). Call it
 * when the fd of crossbuf_client_get_fd() is readable; media_device_handle_command() also
 * calls it. Returns the number handled or a negative errno.
 */
int media_device_dispatch_registry(struct media_device *dev);

/* Number of open sessions, for tests. */
unsigned media_device_session_count(struct media_device *dev);

struct decoder_stats;
/* A session's counters (decoder.h), for tests and benchmarks. -ENOENT for no such session. */
int media_device_get_session_stats(struct media_device *dev, uint32_t session_id,
				   struct decoder_stats *ret);
