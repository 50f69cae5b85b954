/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the virtio-gpu request decoder. The first byte of the input says
 * where to split the rest into descriptors (so requests spread over several descriptors
 * are covered); the rest is the device-readable side of the chain. Every decoded request
 * is answered into a writable side of a size chosen by the second byte.
 */
#include "macro.h"
#include "protocol.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec in[4], out[2];
	uint8_t resp[2048];
	struct cb_request req = {.in = in, .out = out};
	struct gpu_request r;
	struct gpu_response response = {0};
	unsigned n = 0;
	size_t split, room;

	if (size < 2)
		return 0;
	split = data[0];
	room = (size_t)data[1] * 8;
	data += 2;
	size -= 2;
	/* up to four descriptors: [0, split), [split, 2 split), ... and the tail */
	while (n < 3 && split > 0 && size > split) {
		in[n++] = (struct iovec){.iov_base = (void *)data, .iov_len = split};
		data += split;
		size -= split;
	}
	in[n++] = (struct iovec){.iov_base = (void *)data, .iov_len = size};
	req.n_in = n;
	out[0] = (struct iovec){.iov_base = resp, .iov_len = MIN(room, sizeof(resp)) / 2};
	out[1] = (struct iovec){.iov_base = resp + sizeof(resp) / 2,
				.iov_len = MIN(room, sizeof(resp)) - out[0].iov_len};
	req.n_out = 2;

	int ret = gpu_request_decode(&req, &r);
	response.type = ret < 0 ? gpu_decode_error_response(ret) : VIRTIO_GPU_RESP_OK_NODATA;
	if (ret == 0 && r.hdr.type == VIRTIO_GPU_CMD_GET_DISPLAY_INFO)
		response.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
	gpu_response_encode(&r.hdr, &response, &req);
	gpu_request_finish(&r);
	return 0;
}
