/* SPDX-License-Identifier: MIT */
/*
 * Guest memory as a device sees it: guest-physical address ranges mapped into this
 * process. The transport fills it (vhost-user SET_MEM_TABLE); tests back it with a memfd.
 * Every translation is bounds-checked: an address from a guest is never trusted.
 *
 * The struct is plain data owned by whoever fills it; the devices only read it.
 */
#pragma once

#include <stdint.h>
#include <sys/uio.h>

/* vhost-user's baseline number of memory regions. */
#define GUEST_MEM_MAX_REGIONS 8

struct guest_mem_region {
	uint64_t gpa;  /* guest-physical start */
	uint64_t size; /* bytes */
	uint8_t *host; /* where the region is mapped in this process */
	/* Optional: the file behind the region (borrowed from whoever filled the table, e.g.
	 * the vhost-user backend's SET_MEM_TABLE memfd) and the offset of gpa in it; -1 when
	 * unknown. Lets devices export guest pages (udmabuf) or hand them to a display. */
	int fd;
	uint64_t fd_offset;
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned n_regions;
};

/* One guest scatter-gather element (virtio-gpu mem entry, virtio-media sg entry). */
struct guest_sg_entry {
	uint64_t gpa;
	uint32_t len;
};

void guest_mem_init(struct guest_mem *gm);

/* -EINVAL for an empty, wrapping or overlapping range, -ENOSPC when the table is full. */
int guest_mem_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host);
/* Same, with the region's file: fd is borrowed and must outlive the table entry. */
int guest_mem_add_region_fd(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host, int fd,
			    uint64_t fd_offset);

/*
 * The file behind [gpa, gpa + len) when the range lies in one region that has one: *ret_fd
 * (borrowed) and the offset of gpa in it. -ENOENT otherwise (len 0 included).
 */
int guest_mem_fd(const struct guest_mem *gm, uint64_t gpa, uint64_t len, int *ret_fd,
		 uint64_t *ret_offset);

/*
 * The host address of [gpa, gpa + len), or NULL unless the whole range lies in one region.
 * len 0 is refused.
 */
void *guest_mem_translate(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copies between guest memory and buf; the range may span regions. -EFAULT if unmapped. */
int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len);
int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len);

/*
 * Resolves a scatter-gather list into host iovecs (one per entry, in order). Every entry
 * must be non-empty and lie in one region. -EFAULT for an unmapped or empty entry.
 */
int guest_mem_sg_to_iov(const struct guest_mem *gm, const struct guest_sg_entry *sg, unsigned n,
			struct iovec *ret_iov);
