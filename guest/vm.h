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
#include "vmdrv.h"

#include <stdbool.h>
#include <stdint.h>

struct guest_vm;
struct vu_frontend;

/* How long one request may take before the device counts as stuck. */
#define GUEST_VM_TIMEOUT_MS 10000

/* Connects to both devices (either socket may be NULL: that device is absent). */
int guest_vm_new(const char *gpu_socket, const char *media_socket, uint64_t ram_size,
		 struct guest_vm **ret);
void guest_vm_free(struct guest_vm *vm);

/* The virtio-gpu driver, or NULL without that device. */
struct gpu_guest *guest_vm_gpu(struct guest_vm *vm);
/* The virtio-media driver, or NULL without that device. */
struct vmdrv *guest_vm_media(struct guest_vm *vm);
/* Whether the device hung up. */
bool guest_vm_gpu_dead(struct guest_vm *vm);
bool guest_vm_media_dead(struct guest_vm *vm);

/* Guest RAM, and the media device's shared memory region 0 (guest-visible host memory). */
uint8_t *guest_vm_ram(struct guest_vm *vm, uint64_t *ret_size);
int guest_vm_ram_fd(struct guest_vm *vm);
uint8_t *guest_vm_media_shm(struct guest_vm *vm, uint64_t *ret_size);
