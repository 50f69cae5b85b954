/* SPDX-License-Identifier: MIT */
/*
 * What the registry accepts as a buffer, and the checks on an exporter's layout.
 *
 * Accepted fds: a dma-buf; a memfd sealed with F_SEAL_SHRINK (so a consumer's mapping can
 * never run past the end and SIGBUS); a memfd_secret. All must be open for reading and
 * writing. Everything else (sockets, pipes, regular files, directories, unsealed memfds)
 * is refused.
 */
#pragma once

#include <crossbuf/crossbuf.h>
#include <stdint.h>

/*
 * Classifies fd (borrowed). -EBADF for a closed fd; -EINVAL for a kind the registry does
 * not hold, with a static reason in *ret_reason for the log.
 */
int cb_buffer_classify(int fd, enum crossbuf_fd_kind *ret_kind, uint64_t *ret_size,
		       const char **ret_reason);

/*
 * Checks an exporter's buffer info against the fd's kind and size: known flags and device
 * kind, zero reserved fields, plane count, every plane's rows inside the fd, linear
 * modifier for memfds, protected and guest-mappable not both set. -EINVAL with a static
 * reason in *ret_reason.
 */
int cb_buffer_info_check(const struct crossbuf_buffer_info *info, enum crossbuf_fd_kind kind,
			 uint64_t size, const char **ret_reason);

/* Bytes per pixel of plane 0 and the vertical subsampling of later planes for fourcc. */
struct cb_format_desc {
	uint32_t fourcc;
	uint8_t num_planes;
	uint8_t cpp[CROSSBUF_MAX_PLANES]; /* bytes per pixel (per sample pair for chroma) */
	uint8_t hsub, vsub;		  /* chroma subsampling of planes 1..n */
};
const struct cb_format_desc *cb_format_lookup(uint32_t fourcc);
