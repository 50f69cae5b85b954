/* SPDX-License-Identifier: MIT */
/*
 * CPU copies between a resource's guest backing and its host buffer, for backends that do
 * not move the data themselves.
 *
 * Images: the guest backing holds the image in the guest layout (gpu_layout_guest() with
 * the transfer's stride, tight when 0); t->offset is where the box's first pixel sits in
 * the backing (the Linux driver sends y * pitch + x * cpp), so the image starts at
 * t->offset - (y * stride + x * cpp). Each plane's share of the box is copied; chroma
 * boxes are the luma box scaled by the subsampling, rounded outwards.
 * Blobs: bytes [x, x + w) of the host buffer and [offset, offset + w) of the backing.
 */
#pragma once

#include "backend.h"
#include "backing.h"
#include "formats.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Checks the whole transfer first (box inside the image, every byte inside the backing),
 * then copies. -EINVAL for a box outside the resource or an offset that does not fit
 * the box, -EFAULT for a range outside the backing; nothing is copied then.
 */
int gpu_transfer_cpu(const struct gpu_format *format, const struct gpu_layout *host,
		     uint8_t *host_base, const struct gpu_backing_map *backing,
		     const struct gpu_transfer *t, bool to_host);
