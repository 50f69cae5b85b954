/* SPDX-License-Identifier: MIT */
/*
 * The device side of a split virtqueue (virtio 1.x §2.7) whose rings and buffers live in
 * guest memory mapped into this process.
 *
 * Everything read from the rings is untrusted: indexes, chain links, lengths, addresses and
 * flags are checked, descriptors are copied out once before use, and any violation marks the
 * queue broken. A broken queue pops nothing more (-EIO) until it is set up again; the vhost-user
 * backend ends the connection when that happens.
 *
 * Not thread-safe: one thread pops and pushes.
 */
#pragma once

#include "guest-mem.h"
#include "iov.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* Largest queue: the split ring's limit. */
#define VU_VIRTQ_MAX_SIZE 32768u

/* Why a queue broke (vu_virtq.broken_reason). */
enum vu_virtq_error {
	VU_VIRTQ_OK = 0,
	VU_VIRTQ_ERR_AVAIL_IDX,    /* avail->idx moved more than the queue size */
	VU_VIRTQ_ERR_HEAD_RANGE,   /* a head or next index ≥ the queue size */
	VU_VIRTQ_ERR_CHAIN_LENGTH, /* a chain (loop) longer than the queue size */
	VU_VIRTQ_ERR_BAD_ADDRESS,  /* a buffer or indirect table outside guest memory */
	VU_VIRTQ_ERR_ORDER,        /* a device-readable descriptor after a writable one */
	VU_VIRTQ_ERR_INDIRECT,     /* nested indirect, INDIRECT with NEXT, or a bad table size */
	VU_VIRTQ_ERR_USED_ID,      /* the device pushed an id it was not given (device bug) */
};

struct vring_desc;
struct vring_avail;
struct vring_used;

struct vu_virtq {
	const struct guest_mem *mem; /* borrowed; buffer addresses are guest-physical */
	unsigned size;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail_idx; /* next avail entry to pop */
	uint16_t used_idx;       /* next used entry to fill */
	unsigned in_flight;      /* popped and not pushed */
	int call_fd;             /* borrowed eventfd, -1 for none */
	bool event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool signalled_valid;    /* signalled_used holds a value */
	uint16_t signalled_used; /* used_idx at the last notification decision */
	enum vu_virtq_error broken;
};

/*
 * One popped chain. req.in are the device-readable buffers in chain order, req.out the
 * device-writable ones. The iovecs point into guest memory and are valid while the memory
 * table that produced them is mapped.
 */
struct vu_elem {
	uint16_t head;
	unsigned queue;      /* set by the backend: which queue this came from */
	uint64_t generation; /* set by the backend: the connection/ring it belongs to */
	struct cb_request req;
	unsigned n_iov;
	unsigned cap_iov;
	struct iovec iov[];
};

/* The ring sizes in bytes for a queue of size entries, with the event-idx fields. */
uint64_t vu_virtq_desc_bytes(unsigned size);
uint64_t vu_virtq_avail_bytes(unsigned size);
uint64_t vu_virtq_used_bytes(unsigned size);

/* True for a power of two between 1 and VU_VIRTQ_MAX_SIZE. */
bool vu_virtq_size_valid(unsigned size);

/*
 * Sets up vq over rings already mapped at desc/avail/used (host pointers, checked by the
 * caller to hold the sizes above), starting at avail index base. -EINVAL for a bad size or
 * misaligned ring.
 */
int vu_virtq_init(struct vu_virtq *vq, const struct guest_mem *mem, unsigned size, void *desc,
		  void *avail, void *used, uint16_t base);

/*
 * Pops the next available chain: 1 and a new element in *ret_elem (free it with
 * vu_virtq_push() or vu_elem_free()), 0 if the ring is empty, -EIO if the queue is or becomes
 * broken (vq->broken says why), -ENOMEM.
 */
int vu_virtq_pop(struct vu_virtq *vq, struct vu_elem **ret_elem);

/*
 * Puts elem (taken, freed) on the used ring with written bytes, and publishes it. Does not
 * notify. -EIO if the queue is broken (elem is still freed).
 */
int vu_virtq_push(struct vu_virtq *vq, struct vu_elem *elem, uint32_t written);

/*
 * Signals the call eventfd unless the driver suppressed interrupts: with event_idx unless
 * the used index has not passed the driver's used_event since the last notification,
 * otherwise unless VRING_AVAIL_F_NO_INTERRUPT is set. With event_idx, vu_virtq_pop() also
 * publishes avail_event when it finds the ring empty, so the driver kicks only then.
 */
void vu_virtq_notify(struct vu_virtq *vq);

/* Frees an element without using it (NULL is fine). Returns NULL. */
struct vu_elem *vu_elem_free(struct vu_elem *elem);

/* Text for an error, for logs. */
const char *vu_virtq_error_str(enum vu_virtq_error e);
