/* SPDX-License-Identifier: MIT */
/*
 * vmdrv: a user-space virtio-media driver. It speaks to a virtio-media device the way the
 * Linux virtio-media driver does and offers a V4L2-like ioctl entry point on top, so tests,
 * the pipeline tool and (later) V4L2 applications can drive a device without a guest
 * kernel:
 *   - QUERYCAP is answered from the config space (bus_info "platform:virtio-media");
 *   - DQBUF and DQEVENT are served from eventq events, every eventq buffer being sized for
 *     the largest event (VIRTIO_MEDIA_EVENT_MAX_SIZE);
 *   - after a CAPTURE buffer flagged V4L2_BUF_FLAG_LAST, CAPTURE DQBUF fails with EPIPE until
 *     STREAMOFF/STREAMON(CAPTURE) or a successful DECODER_CMD(START);
 *   - REQBUFS(count = 0) is an implicit STREAMOFF;
 *   - an ERROR event kills the session: its ioctls then fail with EIO.
 *
 * The transport (how a request reaches the device and how events come back) is a small
 * function table: in-process tests call the device directly; a vhost-user or virtqueue
 * transport can be slotted in later.
 *
 * Threading: vmdrv_push_event() may be called from any thread; the other calls of one
 * session from one thread at a time.
 */
#pragma once

#include "iov.h"
#include "virtio-media.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmdrv;
struct vmdrv_session;

struct vmdrv_transport {
	/*
	 * Sends one commandq request and waits for the device to return it. *ret_used is
	 * the number of bytes the device wrote. Returns 0 or a negative errno (-ETIMEDOUT).
	 */
	int (*submit)(void *userdata, const struct cb_request *req, size_t *ret_used);
	void *userdata;
	/* Shared memory region 0 as mapped on the driver's side (NULL when there is none). */
	uint8_t *shm_base;
	uint64_t shm_size;
};

int vmdrv_new(const struct vmdrv_transport *transport, const struct virtio_media_config *config,
	      struct vmdrv **ret);
void vmdrv_free(struct vmdrv *drv);

/*
 * Delivers one eventq buffer as the device filled it (len bytes used). Events longer than
 * VIRTIO_MEDIA_EVENT_MAX_SIZE, shorter than their type's size or for unknown sessions are
 * counted and dropped.
 */
void vmdrv_push_event(struct vmdrv *drv, const void *data, size_t len);
unsigned vmdrv_dropped_events(struct vmdrv *drv);

int vmdrv_open(struct vmdrv *drv, struct vmdrv_session **ret);
/* Sends CLOSE and frees the session. */
void vmdrv_close(struct vmdrv_session *s);
uint32_t vmdrv_session_id(struct vmdrv_session *s);

/* How long DQBUF and DQEVENT wait for an event: 0 returns -EAGAIN at once. Default 5000. */
void vmdrv_set_timeout(struct vmdrv_session *s, int timeout_ms);

/* What vmdrv_poll() reports, as poll(2) on a video node would (POLLIN, POLLOUT, POLLPRI). */
enum vmdrv_poll_flags {
	VMDRV_POLL_CAPTURE = 1u << 0, /* a CAPTURE buffer (or EPIPE) is ready for DQBUF */
	VMDRV_POLL_OUTPUT = 1u << 1,  /* an OUTPUT buffer is ready for DQBUF */
	VMDRV_POLL_EVENT = 1u << 2,   /* a V4L2 event is ready for DQEVENT */
	VMDRV_POLL_ERROR = 1u << 3,   /* the session is dead (ERROR event) */
};

/*
 * Waits up to timeout_ms (0: not at all, < 0: forever) until one of the conditions in
 * enum vmdrv_poll_flags holds, and returns them (0 on timeout).
 */
int vmdrv_poll(struct vmdrv_session *s, int timeout_ms);

/*
 * A V4L2 ioctl, as ioctl(2) on a video node but returning 0 or a negative errno. Buffers of
 * memory type V4L2_MEMORY_DMABUF or _USERPTR need vmdrv_qbuf_mem() (UUIDs or sg lists have
 * no place in struct v4l2_buffer); VIDIOC_EXPBUF needs vmdrv_expbuf().
 */
int vmdrv_ioctl(struct vmdrv_session *s, unsigned long request, void *arg);

/* Where a buffer's memory is, for QBUF of OBJECT (uuids) or SHARED_PAGES (sg) buffers. */
struct vmdrv_mem {
	const uint8_t (*uuids)[16]; /* one per plane */
	const struct virtio_media_sg_entry *sg[VIDEO_MAX_PLANES];
	unsigned n_sg[VIDEO_MAX_PLANES];
};
int vmdrv_qbuf_mem(struct vmdrv_session *s, struct v4l2_buffer *b, const struct vmdrv_mem *mem);

/* VIDIOC_EXPBUF: the buffer's virtio object UUID instead of an fd. */
int vmdrv_expbuf(struct vmdrv_session *s, struct v4l2_exportbuffer *e, uint8_t ret_uuid[16]);

/*
 * CMD_MMAP of the plane at mem_offset: *ret_ptr points into the shared memory region.
 * *ret_addr is the region offset to give vmdrv_munmap().
 */
int vmdrv_mmap(struct vmdrv_session *s, uint32_t mem_offset, bool writable, void **ret_ptr,
	       uint64_t *ret_addr, uint64_t *ret_len);
int vmdrv_munmap(struct vmdrv *drv, uint64_t addr);

/* A raw request, for tests of malformed input: returns the used length or -errno. */
int vmdrv_raw(struct vmdrv *drv, const void *in, size_t in_len, void *out, size_t out_len);
