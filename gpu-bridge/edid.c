/* SPDX-License-Identifier: MIT */
#include "edid.h"

#include "macro.h"

#include <string.h>

/* One 18-byte detailed timing descriptor, with simple fixed blanking. */
static void
detailed_timing(uint8_t *d, uint32_t w, uint32_t h)
{
	const uint32_t hblank = 160, vblank = 30, hsync_off = 48, hsync_w = 32, vsync_off = 3,
		       vsync_w = 5;
	uint32_t clock = (uint32_t)(((uint64_t)(w + hblank) * (h + vblank) * 60) / 10000);

	w = MIN(w, 4095u);
	h = MIN(h, 4095u);
	clock = MIN(clock, 65535u);
	d[0] = clock & 0xff;
	d[1] = clock >> 8;
	d[2] = w & 0xff;
	d[3] = hblank & 0xff;
	d[4] = (uint8_t)(((w >> 8) << 4) | (hblank >> 8));
	d[5] = h & 0xff;
	d[6] = vblank & 0xff;
	d[7] = (uint8_t)(((h >> 8) << 4) | (vblank >> 8));
	d[8] = hsync_off;
	d[9] = hsync_w;
	d[10] = (uint8_t)((vsync_off << 4) | vsync_w);
	d[11] = 0;
	/* image size in mm: about 96 dpi */
	uint32_t wmm = MIN(w * 254 / 960, 4095u), hmm = MIN(h * 254 / 960, 4095u);
	d[12] = wmm & 0xff;
	d[13] = hmm & 0xff;
	d[14] = (uint8_t)(((wmm >> 8) << 4) | (hmm >> 8));
	d[17] = 0x18; /* digital separate sync */
}

void
gpu_edid_generate(uint32_t width, uint32_t height, uint32_t serial,
		  uint8_t ret_edid[GPU_EDID_BLOCK_SIZE])
{
	static const uint8_t header[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
	uint8_t *e = ret_edid, sum = 0;

	memset(e, 0, GPU_EDID_BLOCK_SIZE);
	memcpy(e, header, sizeof(header));
	/* manufacturer "CBF": three 5-bit letters, big-endian */
	uint16_t mfg = (uint16_t)((('C' - '@') << 10) | (('B' - '@') << 5) | ('F' - '@'));
	e[8] = mfg >> 8;
	e[9] = mfg & 0xff;
	e[10] = 0x01; /* product code */
	e[12] = serial & 0xff;
	e[13] = (serial >> 8) & 0xff;
	e[14] = (serial >> 16) & 0xff;
	e[15] = (serial >> 24) & 0xff;
	e[16] = 1;  /* week */
	e[17] = 34; /* year - 1990 */
	e[18] = 1;  /* EDID 1.4 */
	e[19] = 4;
	e[20] = 0xa5; /* digital, 8 bits per colour, DisplayPort */
	e[21] = (uint8_t)MIN(width * 254 / 9600, 255u); /* cm */
	e[22] = (uint8_t)MIN(height * 254 / 9600, 255u);
	e[23] = 120;  /* gamma 2.2 */
	e[24] = 0x06; /* sRGB default, preferred timing is native */
	/* chromaticity: sRGB primaries */
	static const uint8_t chroma[10] = {0xee, 0x91, 0xa3, 0x54, 0x4c,
					   0x99, 0x26, 0x0f, 0x50, 0x54};
	memcpy(e + 25, chroma, sizeof(chroma));
	/* no established or standard timings */
	for (int i = 38; i < 54; i++)
		e[i] = 0x01;
	detailed_timing(e + 54, width, height);
	/* monitor name descriptor */
	static const uint8_t name[18] = {0,   0,   0,   0xfc, 0,    'c', 'r', 'o', 's',
					 's', 'b', 'u', 'f',  '\n', ' ', ' ', ' ', ' '};
	memcpy(e + 72, name, sizeof(name));
	/* two dummy descriptors */
	e[90 + 3] = 0x10;
	e[108 + 3] = 0x10;
	e[126] = 0; /* no extensions */
	for (int i = 0; i < 127; i++)
		sum += e[i];
	e[127] = (uint8_t)(0x100 - sum);
}
