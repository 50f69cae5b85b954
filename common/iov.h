/* SPDX-License-Identifier: MIT */
/*
 * A virtio request as a device sees it: the descriptor chain split into the bytes the
 * device may read (what the driver sent) and the bytes the device may write (the room
 * for its answer). Both devices' cores take requests in this form; the transport builds it
 * from the virtqueue, tests build it from plain buffers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct cb_request {
	const struct iovec *in; /* device-readable */
	unsigned n_in;
	const struct iovec *out; /* device-writable */
	unsigned n_out;
};

/* Total bytes of an iovec array. Saturates at SIZE_MAX instead of overflowing. */
size_t iov_size(const struct iovec *iov, unsigned n);

/*
 * Copies len bytes starting at byte offset off of the readable side into buf.
 * Returns the number of bytes copied (less than len if the chain is shorter).
 */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);

/* Copies len bytes of buf into the writable side at byte offset off. Returns bytes copied. */
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);

/* Zero-fills len bytes of the writable side at off. Returns bytes written. */
size_t iov_memset(const struct iovec *iov, unsigned n, size_t off, int c, size_t len);
