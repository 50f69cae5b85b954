/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what crossbuf-gpu reads from the VMM's display socket
 * (vhost-gpu-display.c): the input is written to the VMM's end of a socketpair, which is
 * then shut, and the sink reads it as replies. A scanout is set before and flushed after, so
 * the write paths also meet a socket that was dropped halfway.
 */
#include "vhost-gpu-display.h"

#include <drm_fourcc.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pixels[4 * 4 * 4];
	struct gpu_layout layout = {
		.fourcc = DRM_FORMAT_XRGB8888,
		.width = 4,
		.height = 4,
		.num_planes = 1,
		.planes[0] = {.offset = 0, .stride = 16, .rows = 4},
		.size = sizeof(pixels),
	};
	struct gpu_rect rect = {0, 0, 4, 4};
	struct gpu_sink_frame frame = {
		.layout = &layout,
		.data = pixels,
		.src = rect,
		.damage = rect,
	};
	struct gpu_sink *sink;
	int sv[2];

	/* A socket buffer holds far more than this; bigger inputs add nothing. */
	if (size > 4096)
		return 0;
	if (vgpu_display_new(NULL, &sink) < 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		gpu_sink_destroy(sink);
		return 0;
	}
	sink->ops->set_scanout(sink, 0, true, 1, &rect);
	if (vgpu_display_set_socket(sink, sv[1]) == 0) {
		if (size > 0 && write(sv[0], data, size) != (ssize_t)size)
			__builtin_trap();
		shutdown(sv[0], SHUT_WR);
		vgpu_display_dispatch(sink);
		sink->ops->flush(sink, &frame);
	}
	close(sv[0]);
	gpu_sink_destroy(sink);
	return 0;
}
