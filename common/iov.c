/* SPDX-License-Identifier: MIT */
#include "iov.h"

#include <string.h>

size_t
iov_size(const struct iovec *iov, unsigned n)
{
	size_t total = 0;

	for (unsigned i = 0; i < n; i++) {
		if (__builtin_add_overflow(total, iov[i].iov_len, &total))
			return SIZE_MAX;
	}
	return total;
}

/* Walks the chain from byte off, calling fn on each contiguous piece of up to len bytes. */
static size_t
iov_walk(const struct iovec *iov, unsigned n, size_t off, size_t len,
	 void (*fn)(void *piece, size_t piece_len, size_t done, void *ctx), void *ctx)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t piece = iov[i].iov_len - off;
		if (piece > len - done)
			piece = len - done;
		fn((char *)iov[i].iov_base + off, piece, done, ctx);
		done += piece;
		off = 0;
	}
	return done;
}

static void
copy_out(void *piece, size_t piece_len, size_t done, void *ctx)
{
	memcpy((char *)ctx + done, piece, piece_len);
}

static void
copy_in(void *piece, size_t piece_len, size_t done, void *ctx)
{
	memcpy(piece, (const char *)ctx + done, piece_len);
}

static void
fill(void *piece, size_t piece_len, size_t done, void *ctx)
{
	(void)done;
	memset(piece, *(const int *)ctx, piece_len);
}

size_t
iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	return iov_walk(iov, n, off, len, copy_out, buf);
}

size_t
iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	return iov_walk(iov, n, off, len, copy_in, (void *)buf);
}

size_t
iov_memset(const struct iovec *iov, unsigned n, size_t off, int c, size_t len)
{
	return iov_walk(iov, n, off, len, fill, &c);
}
