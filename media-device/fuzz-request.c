/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the virtio-media request parser and response encoder. The input is
 * the readable part of a descriptor chain; its first byte picks how the bytes are split into
 * descriptors (the parser must not care) and how much writable room the response gets.
 */
#include "protocol.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[8192];
	struct iovec in[4], outv[2];
	struct cb_request req = {.in = in, .out = outv};
	struct vmd_command *cmd;
	unsigned split, room;
	size_t piece;

	if (size < 1)
		return 0;
	split = data[0] & 3;
	room = (data[0] >> 2) & 1 ? sizeof(out) : (data[0] >> 3) * 16u;
	data++;
	size--;

	/* The readable part in split + 1 pieces. */
	piece = size / (split + 1);
	for (unsigned i = 0; i <= split; i++) {
		in[i].iov_base = (void *)(data + i * piece);
		in[i].iov_len = i == split ? size - i * piece : piece;
	}
	req.n_in = split + 1;
	outv[0].iov_base = out;
	outv[0].iov_len = room / 2;
	outv[1].iov_base = out + room / 2;
	outv[1].iov_len = room - room / 2;
	req.n_out = 2;

	cmd = malloc(sizeof(*cmd));
	if (cmd == NULL)
		return 0;
	int r = vmd_command_parse(&req, cmd);
	if (r == 0 && cmd->cmd == VIRTIO_MEDIA_CMD_IOCTL) {
		vmd_encode_ioctl(&req, 0, cmd, false);
		vmd_encode_ioctl(&req, -EINVAL, cmd, true);
		if (cmd->desc->kind == VMD_PAYLOAD_BUFFER) {
			struct virtio_media_event_dqbuf ev;

			vmd_event_dqbuf(&ev, cmd->session_id, &cmd->payload.buf, cmd->planes);
		}
	} else {
		vmd_encode_status(&req, r < 0 ? r : 0);
		vmd_encode_open(&req, 0, 1);
		vmd_encode_mmap(&req, 0, 0, 4096);
	}
	vmd_command_finish(cmd);
	free(cmd);
	return 0;
}
