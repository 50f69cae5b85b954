/* SPDX-License-Identifier: MIT */
/*
 * One session's V4L2 stateful decoder (dev-decoder.rst), multi-planar memory-to-memory:
 * OUTPUT takes bitstream, CAPTURE returns decoded pictures. A worker thread per session
 * runs the codec (codec.h) off the command path.
 *
 * Threading: decoder_ioctl(), decoder_mmap_lookup() and decoder_object_removed() run on the
 * command thread (the device's caller), one at a time; the environment callbacks may run on
 * the worker too. The registry client in the environment is only used on the command thread.
 */
#pragma once

#include "guest-mem.h"
#include "protocol.h"

#include <stdbool.h>
#include <stdint.h>

struct crossbuf_client;
struct decoder;

struct decoder_env {
	/* Queues one event on the eventq; serialized by the caller of decoder_new(). */
	void (*send_event)(void *userdata, const void *event, size_t len);
	void *userdata;
	const struct guest_mem *guest_mem; /* SHARED_PAGES; may be NULL */
	struct crossbuf_client *client;    /* OBJECT and EXPBUF; may be NULL */
};

/* Limits the guest cannot raise. */
#define DECODER_MAX_BUFFERS        32
#define DECODER_MAX_WIDTH          8192
#define DECODER_MAX_HEIGHT         8192
#define DECODER_MAX_BITSTREAM_SIZE (16u << 20)
/* Host memory a session may have the device allocate (MMAP planes, SHARED_PAGES bounces). */
#define DECODER_MAX_SESSION_MEMORY (1ull << 30)

int decoder_new(const struct decoder_env *env, uint32_t session_id, struct decoder **ret);
/* Stops the worker and releases every buffer, mapping source and registry entry. */
void decoder_free(struct decoder *dec);
/*
 * The same, keeping the (dead) session: its ioctls then fail with EIO until it is freed.
 * For sessions that died of an error, whose resources must not wait for the driver's CLOSE.
 * Command thread only; idempotent.
 */
void decoder_shutdown(struct decoder *dec);
/* Whether a fatal error ended the session and it still holds its resources. */
bool decoder_needs_shutdown(struct decoder *dec);

/*
 * Runs one parsed ioctl (cmd->desc != NULL) in place: the payload and its trailers become
 * the answer. Returns 0 or a negative errno. *ret_write_on_error is set for ioctls whose
 * payload carries error information (the extended controls' error_idx).
 */
int decoder_ioctl(struct decoder *dec, struct vmd_command *cmd, bool *ret_write_on_error);

/*
 * The MMAP plane at mem_offset: a new fd (the caller closes it) and its length. -EINVAL for
 * no such plane, -EACCES when the session holds protected buffers.
 */
int decoder_mmap_lookup(struct decoder *dec, uint32_t mem_offset, int *ret_fd, uint64_t *ret_len);

/* A registry entry went away: buffers resolved from it fail instead of being written. */
void decoder_object_removed(struct decoder *dec, const uint8_t uuid[16]);

/* Whether a fatal error (an ERROR event) ended the session. */
bool decoder_is_dead(struct decoder *dec);

/*
 * Counters, for tests and benchmarks; the guest reads them as the controls of
 * crossbuf-media-controls.h. They never decrease during a session.
 */
struct decoder_stats {
	uint64_t frames_done;
	uint64_t frames_error;
	uint64_t object_lookups; /* registry lookups: cached resolutions do not count */
	uint64_t bytes_bounced;  /* SHARED_PAGES CAPTURE copies */
	/*
	 * The codec's own counters (codec_get_stats()), summed over the session's codecs,
	 * as of the last frame the codec returned or the last call it finished.
	 */
	uint64_t codec_frames_decoded;
	uint64_t codec_frames_copied; /* frames that could not be decoded in place */
	uint64_t codec_bytes_copied;
	uint64_t codec_frames_corrupt;
};
void decoder_get_stats(struct decoder *dec, struct decoder_stats *ret);
