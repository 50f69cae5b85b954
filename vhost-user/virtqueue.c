/* SPDX-License-Identifier: MIT */
#include "virtqueue.h"

#include "macro.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t
vu_virtq_desc_bytes(unsigned size)
{
	return (uint64_t)size * sizeof(struct vring_desc);
}

uint64_t
vu_virtq_avail_bytes(unsigned size)
{
	return 6 + (uint64_t)size * 2;
}

uint64_t
vu_virtq_used_bytes(unsigned size)
{
	return 6 + (uint64_t)size * sizeof(struct vring_used_elem);
}

bool
vu_virtq_size_valid(unsigned size)
{
	return size >= 1 && size <= VU_VIRTQ_MAX_SIZE && (size & (size - 1)) == 0;
}

int
vu_virtq_init(struct vu_virtq *vq, const struct guest_mem *mem, unsigned size, void *desc,
	      void *avail, void *used, uint16_t base)
{
	if (!vu_virtq_size_valid(size) || desc == NULL || avail == NULL || used == NULL)
		return -EINVAL;
	if ((uintptr_t)desc % 16 || (uintptr_t)avail % 2 || (uintptr_t)used % 4)
		return -EINVAL;
	*vq = (struct vu_virtq){
		.mem = mem,
		.size = size,
		.desc = desc,
		.avail = avail,
		.used = used,
		.last_avail_idx = base,
		.used_idx = base,
		.call_fd = -1,
	};
	return 0;
}

const char *
vu_virtq_error_str(enum vu_virtq_error e)
{
	switch (e) {
	case VU_VIRTQ_OK:
		return "ok";
	case VU_VIRTQ_ERR_AVAIL_IDX:
		return "available index moved by more than the queue size";
	case VU_VIRTQ_ERR_HEAD_RANGE:
		return "descriptor index out of range";
	case VU_VIRTQ_ERR_CHAIN_LENGTH:
		return "descriptor chain longer than the queue (loop?)";
	case VU_VIRTQ_ERR_BAD_ADDRESS:
		return "buffer outside guest memory";
	case VU_VIRTQ_ERR_ORDER:
		return "device-readable descriptor after a device-writable one";
	case VU_VIRTQ_ERR_INDIRECT:
		return "malformed indirect descriptor";
	case VU_VIRTQ_ERR_USED_ID:
		return "used element for a descriptor not in flight";
	}
	return "unknown";
}

static int
fail(struct vu_virtq *vq, enum vu_virtq_error e)
{
	vq->broken = e;
	return -EIO;
}

struct vu_elem *
vu_elem_free(struct vu_elem *elem)
{
	free(elem);
	return NULL;
}

static uint16_t
load_avail_idx(const struct vu_virtq *vq)
{
	return le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
}

/* Appends [gpa, gpa + len) as one iovec per guest memory region it crosses. */
static int
add_buffer(struct vu_virtq *vq, struct vu_elem **pelem, uint64_t gpa, uint32_t len)
{
	const struct guest_mem *gm = vq->mem;
	uint64_t left = len;

	while (left > 0) {
		const struct guest_mem_region *r = NULL;
		struct vu_elem *elem = *pelem;
		uint64_t chunk;

		for (unsigned i = 0; i < gm->n_regions; i++) {
			if (gpa >= gm->regions[i].gpa &&
			    gpa - gm->regions[i].gpa < gm->regions[i].size) {
				r = &gm->regions[i];
				break;
			}
		}
		if (r == NULL)
			return fail(vq, VU_VIRTQ_ERR_BAD_ADDRESS);
		chunk = MIN(left, r->size - (gpa - r->gpa));
		if (elem->n_iov == elem->cap_iov) {
			/* At most 4 iovecs per allowed descriptor: a hostile layout stays bounded.
			 */
			unsigned cap = elem->cap_iov * 2;
			struct vu_elem *n;
			if (elem->cap_iov >= 4 * vq->size)
				return fail(vq, VU_VIRTQ_ERR_CHAIN_LENGTH);
			n = realloc(elem, sizeof(*elem) + cap * sizeof(struct iovec));
			if (n == NULL)
				return -ENOMEM;
			n->cap_iov = cap;
			*pelem = elem = n;
		}
		elem->iov[elem->n_iov++] = (struct iovec){
			.iov_base = r->host + (gpa - r->gpa),
			.iov_len = (size_t)chunk,
		};
		gpa += chunk;
		left -= chunk;
	}
	return 0;
}

/*
 * Walks one chain of descriptors (the ring's table or an indirect table of n entries),
 * starting at index i, appending buffers. *count counts descriptors across the whole chain.
 */
static int
walk_chain(struct vu_virtq *vq, struct vu_elem **pelem, const volatile struct vring_desc *table,
	   unsigned n, unsigned i, bool indirect, unsigned *count, unsigned *n_in, bool *seen_write)
{
	for (;;) {
		struct vring_desc d;
		uint16_t flags;
		int r;

		if (i >= n)
			return fail(vq, VU_VIRTQ_ERR_HEAD_RANGE);
		if (++*count > vq->size)
			return fail(vq, VU_VIRTQ_ERR_CHAIN_LENGTH);
		/* One copy of the descriptor: the guest may change it under us. */
		d.addr = le64toh(table[i].addr);
		d.len = le32toh(table[i].len);
		d.flags = le16toh(table[i].flags);
		d.next = le16toh(table[i].next);
		flags = d.flags;

		if (flags & VRING_DESC_F_INDIRECT) {
			struct vring_desc *ind;
			unsigned n_ind;

			if (indirect || (flags & VRING_DESC_F_NEXT) || d.len == 0 ||
			    d.len % sizeof(struct vring_desc) != 0 ||
			    d.len / sizeof(struct vring_desc) > vq->size)
				return fail(vq, VU_VIRTQ_ERR_INDIRECT);
			n_ind = d.len / sizeof(struct vring_desc);
			ind = malloc(d.len);
			if (ind == NULL)
				return -ENOMEM;
			if (guest_mem_read(vq->mem, d.addr, ind, d.len) < 0) {
				free(ind);
				return fail(vq, VU_VIRTQ_ERR_BAD_ADDRESS);
			}
			/* The indirect descriptor itself does not count against the chain. */
			--*count;
			r = walk_chain(vq, pelem, ind, n_ind, 0, true, count, n_in, seen_write);
			free(ind);
			return r;
		}
		if (flags & VRING_DESC_F_WRITE)
			*seen_write = true;
		else if (*seen_write)
			return fail(vq, VU_VIRTQ_ERR_ORDER);
		if (d.len > 0) {
			r = add_buffer(vq, pelem, d.addr, d.len);
			if (r < 0)
				return r;
			if (!(flags & VRING_DESC_F_WRITE))
				*n_in = (*pelem)->n_iov;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int
vu_virtq_pop(struct vu_virtq *vq, struct vu_elem **ret_elem)
{
	struct vu_elem *elem;
	unsigned count = 0, n_in = 0;
	bool seen_write = false;
	uint16_t avail_idx, head;
	int r;

	if (vq->broken)
		return -EIO;
	avail_idx = load_avail_idx(vq);
	if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->size)
		return fail(vq, VU_VIRTQ_ERR_AVAIL_IDX);
	if (avail_idx == vq->last_avail_idx) {
		if (!vq->event_idx)
			return 0;
		/* Ask for a kick at the next buffer, then look again: one may have come. */
		__atomic_store_n((uint16_t *)&vq->used->ring[vq->size], htole16(vq->last_avail_idx),
				 __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = load_avail_idx(vq);
		if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->size)
			return fail(vq, VU_VIRTQ_ERR_AVAIL_IDX);
		if (avail_idx == vq->last_avail_idx)
			return 0;
	}
	head = le16toh(((volatile uint16_t *)vq->avail->ring)[vq->last_avail_idx % vq->size]);
	if (head >= vq->size)
		return fail(vq, VU_VIRTQ_ERR_HEAD_RANGE);

	elem = malloc(sizeof(*elem) + 8 * sizeof(struct iovec));
	if (elem == NULL)
		return -ENOMEM;
	*elem = (struct vu_elem){.head = head, .cap_iov = 8};
	r = walk_chain(vq, &elem, vq->desc, vq->size, head, false, &count, &n_in, &seen_write);
	if (r < 0) {
		free(elem);
		return r;
	}
	elem->req.in = elem->iov;
	elem->req.n_in = n_in;
	elem->req.out = elem->iov + n_in;
	elem->req.n_out = elem->n_iov - n_in;
	vq->last_avail_idx++;
	vq->in_flight++;
	*ret_elem = elem;
	return 1;
}

int
vu_virtq_push(struct vu_virtq *vq, struct vu_elem *elem, uint32_t written)
{
	volatile struct vring_used_elem *ue;

	if (vq->broken) {
		vu_elem_free(elem);
		return -EIO;
	}
	if (elem->head >= vq->size || vq->in_flight == 0) {
		vu_elem_free(elem);
		return fail(vq, VU_VIRTQ_ERR_USED_ID);
	}
	ue = &vq->used->ring[vq->used_idx % vq->size];
	ue->id = htole32(elem->head);
	ue->len = htole32(written);
	vq->used_idx++;
	vq->in_flight--;
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
	vu_elem_free(elem);
	return 0;
}

void
vu_virtq_notify(struct vu_virtq *vq)
{
	uint64_t one = 1;
	uint16_t flags;

	if (vq->call_fd < 0)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		uint16_t used_event = le16toh(__atomic_load_n(
			&((volatile uint16_t *)vq->avail->ring)[vq->size], __ATOMIC_RELAXED));
		uint16_t old = vq->signalled_used;
		bool valid = vq->signalled_valid;

		vq->signalled_used = vq->used_idx;
		vq->signalled_valid = true;
		if (valid && !vring_need_event(used_event, vq->used_idx, old))
			return;
	} else {
		flags = le16toh(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED));
		if (flags & VRING_AVAIL_F_NO_INTERRUPT)
			return;
	}
	while (write(vq->call_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}
