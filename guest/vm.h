/* SPDX-License-Identifier: MIT */
/*
 * The machine crossbuf-guest plays: guest RAM in a sealed memfd, and a virtio-gpu and a
 * virtio-media device reached over vhost-user, each with its guest driver on top:
 *   - virtio-gpu: the control and cursor queues carry requests built by gpu_guest (the
 *     Linux virtio-gpu driver's layouts); one request at a time, answered synchronously;
 *   - virtio-media: vmdrv (the user-space virtio-media driver) on the commandq; the eventq is
 *     kept full of buffers sized for any event by a pump thread, which also serves the
 *     backend channel (SHMEM_MAP/UNMAP into shared memory region 0).
 * Both devices see the same RAM, as the devices of one VM do (vu_frontend_share_ram()).
 *
 * A device that hangs up (killed, crashed, refused a malformed request) makes every later
 * request to it fail with -ECONNRESET; nothing waits longer than the timeout.
 *
 * Threads: guest_vm_* and the gpu calls from one thread. vmdrv calls from that thread too;
 * the pump thread only touches the media device's queues, never allocates guest RAM.
 */
#pragma once

#include "guest-driver.h"
#include "message.h"
#include "vmdrv.h"

#include <linux/virtio_gpu.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>

struct guest_vm;
struct vu_frontend;

/*
 * How long one request may take before the device counts as stuck: the default, and the
 * longest guest_vm_options.timeout_ms takes.
 */
#define GUEST_VM_TIMEOUT_MS     10000
#define GUEST_VM_TIMEOUT_MAX_MS 3600000

/*
 * What the machine asks of each device: the virtio features (the gpu's without
 * RESOURCE_UUID fail the connection with -EPROTONOSUPPORT: nothing could be shared) and the
 * vhost-user protocol features. Tests check the answers against these.
 */
#define GUEST_VM_GPU_FEATURES                                                                      \
	((1ull << VIRTIO_GPU_F_EDID) | (1ull << VIRTIO_GPU_F_RESOURCE_UUID) |                      \
	 (1ull << VIRTIO_GPU_F_RESOURCE_BLOB) | (1ull << VIRTIO_RING_F_EVENT_IDX))
#define GUEST_VM_GPU_PROTOCOL_FEATURES                                                             \
	((1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) |                          \
	 (1ull << VU_PROTOCOL_F_BACKEND_REQ) | (1ull << VU_PROTOCOL_F_CONFIG) |                    \
	 (1ull << VU_PROTOCOL_F_SHARED_OBJECT))
#define GUEST_VM_MEDIA_FEATURES (1ull << VIRTIO_RING_F_EVENT_IDX)
#define GUEST_VM_MEDIA_PROTOCOL_FEATURES                                                           \
	(GUEST_VM_GPU_PROTOCOL_FEATURES | (1ull << VU_PROTOCOL_F_SHMEM))

/* Entries of each virtio-media queue, and the eventq buffers posted by default. */
#define GUEST_VM_MEDIA_QUEUE_SIZE    64
#define GUEST_VM_MEDIA_EVENT_BUFFERS 32

/* Choices for guest_vm_new_with(); all zero is what guest_vm_new() does. */
struct guest_vm_options {
	/*
	 * Eventq buffers the media driver keeps posted, 1..GUEST_VM_MEDIA_EVENT_BUFFERS
	 * (0: all of them). With fewer, events wait in the device's backlog.
	 */
	unsigned media_event_buffers;
	/* Per request, 1..GUEST_VM_TIMEOUT_MAX_MS (0: GUEST_VM_TIMEOUT_MS). */
	unsigned timeout_ms;
};

/* Connects to both devices (either socket may be NULL: that device is absent). */
int guest_vm_new(const char *gpu_socket, const char *media_socket, uint64_t ram_size,
		 struct guest_vm **ret);
/* The same with options (NULL: the defaults); -EINVAL for an option out of range. */
int guest_vm_new_with(const char *gpu_socket, const char *media_socket, uint64_t ram_size,
		      const struct guest_vm_options *opts, struct guest_vm **ret);
void guest_vm_free(struct guest_vm *vm);

/*
 * Connects a bare vhost-user frontend to socket (nothing negotiated yet), retrying for up to
 * 2 s while nobody listens there: a device just started gets the time to bind. For tests
 * that speak to a device below the drivers (malformed messages).
 */
int guest_vm_connect(const char *socket, uint64_t ram_size, struct vu_frontend **ret);

/* The request timeout in force, in milliseconds. */
unsigned guest_vm_timeout_ms(const struct guest_vm *vm);
/* The virtio-gpu driver, or NULL without that device. */
struct gpu_guest *guest_vm_gpu(struct guest_vm *vm);
/* The virtio-media driver, or NULL without that device. */
struct vmdrv *guest_vm_media(struct guest_vm *vm);
/* Whether the device hung up (a request failed so, or the connection is closed). */
bool guest_vm_gpu_dead(struct guest_vm *vm);
bool guest_vm_media_dead(struct guest_vm *vm);

/* Guest RAM, and the media device's shared memory region 0 (guest-visible host memory). */
uint8_t *guest_vm_ram(struct guest_vm *vm, uint64_t *ret_size);
int guest_vm_ram_fd(struct guest_vm *vm);
uint8_t *guest_vm_media_shm(struct guest_vm *vm, uint64_t *ret_size);

/* The virtio-media config space read at connection, or NULL without that device. */
const struct virtio_media_config *guest_vm_media_config(struct guest_vm *vm);

enum guest_vm_device {
	GUEST_VM_GPU,
	GUEST_VM_MEDIA,
};

/*
 * A device's vhost-user frontend (borrowed; NULL without that device), for tests that look
 * below the drivers: raw messages, hang-up, config space, the memory table, the shared
 * object table, guest RAM allocation (both devices share one allocator). The gpu's is only
 * used between requests. The media device's queues and backend channel belong to the pump
 * thread: other threads may allocate and read guest RAM, and touch the commandq only while
 * no request is in flight (as a malformed-ring test does).
 */
struct vu_frontend *guest_vm_frontend(struct guest_vm *vm, enum guest_vm_device device);
