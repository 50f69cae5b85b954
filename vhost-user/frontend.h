/* SPDX-License-Identifier: MIT */
/*
 * The VMM side of vhost-user, for tests and for crossbuf-guest, which plays VMM and guest
 * driver at once: guest RAM in a sealed memfd, the control messages, split rings inside guest
 * RAM with a driver-side API, and the backend channel (shared memory regions backed by
 * memfds that SHMEM_MAP/UNMAP map into, and a record of SHARED_OBJECT messages).
 *
 * Guest-physical addresses start at 0 and cover ram_size bytes. The frontend's "userspace
 * addresses" in SET_MEM_TABLE and SET_VRING_ADDR are the real addresses of its mapping, as in
 * QEMU. Single-threaded; the backend channel is served whenever the frontend waits (for a
 * reply, for used buffers, or in vu_frontend_serve_backend()).
 */
#pragma once

#include "message.h"

#include <stdbool.h>
#include <stdint.h>

struct vu_frontend;
struct vring_desc;

/* Connects to the backend at path; guest RAM of ram_size bytes (rounded up to pages). */
int vu_frontend_connect(const char *path, uint64_t ram_size, struct vu_frontend **ret);
/* Same over a connected socket (taken, even on failure). */
int vu_frontend_new(int fd, uint64_t ram_size, struct vu_frontend **ret);
struct vu_frontend *vu_frontend_free(struct vu_frontend *f);

/*
 * Makes f use owner's guest RAM (its memfd, mapping and allocator) instead of its own, as
 * the devices of one VM all see the same RAM. Call before vu_frontend_negotiate();
 * -EBUSY after. The RAM lives until its last frontend is freed.
 */
int vu_frontend_share_ram(struct vu_frontend *f, struct vu_frontend *owner);

/*
 * Describes guest RAM to the backend as n_regions equal regions (1..8, each its own fd
 * duplicate and mmap_offset) instead of one. Call before vu_frontend_negotiate().
 */
int vu_frontend_set_regions(struct vu_frontend *f, unsigned n_regions);

/*
 * SET_OWNER, feature negotiation (the device features in want that the backend offers, plus
 * VERSION_1, INDIRECT_DESC and PROTOCOL_FEATURES when offered; VIRTIO_RING_F_EVENT_IDX only
 * if want has it, and then the driver side honours it; the protocol features in
 * want_protocol that it offers), the backend channel when BACKEND_REQ is agreed,
 * SET_MEM_TABLE.
 */
int vu_frontend_negotiate(struct vu_frontend *f, uint64_t want, uint64_t want_protocol);
/* Sends SET_MEM_TABLE again (as a VMM does after memory hotplug). */
int vu_frontend_set_mem_table(struct vu_frontend *f);
uint64_t vu_frontend_features(struct vu_frontend *f);
uint64_t vu_frontend_protocol_features(struct vu_frontend *f);
/* GET_QUEUE_NUM's answer (needs MQ), or 0. */
unsigned vu_frontend_queue_num(struct vu_frontend *f);

/* Sends msg (need_reply is added when REPLY_ACK was agreed and ack is true); for requests
 * with a reply, waits for it into *reply. Returns the ack as 0 / -EIO, or -errno. */
int vu_frontend_request(struct vu_frontend *f, struct vu_msg *msg, bool ack, struct vu_msg *reply);
/* Sends raw bytes and fds (borrowed) as they are, for malformed-message tests. */
int vu_frontend_send_raw(struct vu_frontend *f, const void *buf, size_t len, const int *fds,
			 unsigned n_fds);
/* 0 once the backend has closed the connection, -ETIMEDOUT if not within timeout_ms. */
int vu_frontend_wait_hangup(struct vu_frontend *f, int timeout_ms);
/* Whether the backend has closed the connection; reads nothing, never waits. */
bool vu_frontend_hung_up(struct vu_frontend *f);

int vu_frontend_get_config(struct vu_frontend *f, uint32_t offset, void *buf, uint32_t len);
int vu_frontend_set_config(struct vu_frontend *f, uint32_t offset, const void *buf, uint32_t len);
/* GET_SHMEM_CONFIG; creates the shared memory regions the backend then maps into.
 * ret_sizes has VU_MAX_SHMEM entries. */
int vu_frontend_get_shmem_config(struct vu_frontend *f, uint64_t *ret_sizes, unsigned *ret_n);
/* Where shared memory region shmid is mapped here; NULL if absent. */
void *vu_frontend_shmem(struct vu_frontend *f, unsigned shmid, uint64_t *ret_size);
/* CONFIG_CHANGE_MSG messages received so far. */
unsigned vu_frontend_config_changes(struct vu_frontend *f);
/* Shared objects the backend added and has not removed. */
unsigned vu_frontend_shared_object_count(struct vu_frontend *f);
bool vu_frontend_has_shared_object(struct vu_frontend *f, const uint8_t uuid[16]);
/* Serves backend channel messages for up to timeout_ms (returns after the first one). */
int vu_frontend_serve_backend(struct vu_frontend *f, int timeout_ms);
/* The backend channel's socket (borrowed; -1 without one), to poll it with other fds. */
int vu_frontend_backend_fd(struct vu_frontend *f);

/* ---- guest RAM ---- */
/* Host pointer of [gpa, gpa + len), or NULL. */
void *vu_frontend_ram(struct vu_frontend *f, uint64_t gpa, uint64_t len);
/* Allocates guest RAM (never freed). -ENOMEM when full. */
int vu_frontend_alloc(struct vu_frontend *f, uint64_t size, uint64_t align, uint64_t *ret_gpa);
/* The guest RAM memfd (borrowed), e.g. to dump it. */
int vu_frontend_ram_fd(struct vu_frontend *f);
uint64_t vu_frontend_ram_size(struct vu_frontend *f);

/* ---- the driver side of a queue ---- */
/* Largest chain vu_frontend_queue_add() accepts when indirect. */
#define VU_FRONTEND_MAX_INDIRECT 64

struct vu_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable; /* device-writable */
};

/* Rings in guest RAM, kick/call eventfds, NUM, BASE, ADDR, CALL, KICK, ENABLE. */
int vu_frontend_queue_setup(struct vu_frontend *f, unsigned q, unsigned size);
/* GET_VRING_BASE: stops the ring. */
int vu_frontend_queue_stop(struct vu_frontend *f, unsigned q, uint16_t *ret_base);
/* Adds a chain (readable buffers first) and makes it available;
 * -ENOSPC without free descriptors. */
int vu_frontend_queue_add(struct vu_frontend *f, unsigned q, const struct vu_buf *bufs, unsigned n,
			  bool indirect, uint16_t *ret_head);
int vu_frontend_queue_kick(struct vu_frontend *f, unsigned q);
/* Waits up to timeout_ms for a used element: 0 and its head and length, -ETIMEDOUT,
 * -ECONNRESET if the backend hung up. Serves the backend channel meanwhile. */
int vu_frontend_queue_wait(struct vu_frontend *f, unsigned q, int timeout_ms, uint16_t *ret_head,
			   uint32_t *ret_len);
/*
 * The queue's call eventfd (borrowed; -1 before vu_frontend_queue_setup()), for a driver that
 * waits on several queues at once: poll it, then vu_frontend_queue_wait() with timeout 0.
 */
int vu_frontend_queue_call_fd(struct vu_frontend *f, unsigned q);

/* Raw ring access for malformed-ring tests: the descriptor table (size entries), and
 * making head available as it is (its descriptors are not tracked). */
struct vring_desc *vu_frontend_queue_desc(struct vu_frontend *f, unsigned q);
int vu_frontend_queue_publish_raw(struct vu_frontend *f, unsigned q, uint16_t head);
/* Sets avail->idx directly. */
int vu_frontend_queue_set_avail_idx(struct vu_frontend *f, unsigned q, uint16_t idx);
