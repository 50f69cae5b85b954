/* SPDX-License-Identifier: MIT */
/* A minimal EDID 1.4 base block announcing one preferred mode, for GET_EDID. */
#pragma once

#include <stdint.h>

#define GPU_EDID_BLOCK_SIZE 128

/* Writes a 128-byte EDID for a width x height, 60 Hz monitor named "crossbuf". */
void gpu_edid_generate(uint32_t width, uint32_t height, uint32_t serial,
		       uint8_t ret_edid[GPU_EDID_BLOCK_SIZE]);
