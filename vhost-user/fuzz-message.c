/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the vhost-user message decoder and validators. The first byte picks
 * the channel (bit 0), whether the bytes are checked as a reply (bit 1) and how many fds
 * arrived with the message (bits 2-5; fd slots hold -1, nothing is opened or closed). The
 * rest is the message as it came off the socket.
 */
#include "message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vu_msg msg;
	enum vu_channel channel;
	unsigned n_fds;
	bool reply;

	if (size < 1)
		return 0;
	channel = (data[0] & 1) ? VU_CHANNEL_BACKEND : VU_CHANNEL_FRONTEND;
	reply = data[0] & 2;
	n_fds = (data[0] >> 2) & 15;
	data++;
	size--;

	vu_msg_init(&msg, 0, 0, 0);
	if (vu_msg_decode(data, size, &msg) < 0)
		return 0;
	msg.n_fds = n_fds > VU_MAX_FDS ? VU_MAX_FDS : n_fds;
	if (reply) {
		(void)vu_msg_validate_reply(&msg, msg.hdr.request, false, 1);
		(void)vu_msg_validate_reply(&msg, msg.hdr.request, true, 0);
	} else if (vu_msg_validate_request(&msg, channel) == 0) {
		/* What the validators promise, checked. */
		if (channel == VU_CHANNEL_FRONTEND && msg.hdr.request == VU_REQ_SET_MEM_TABLE) {
			if (msg.payload.mem.n_regions == 0 ||
			    msg.payload.mem.n_regions > VU_MAX_MEM_REGIONS)
				abort();
		}
		if (channel == VU_CHANNEL_FRONTEND && (msg.hdr.request == VU_REQ_GET_CONFIG ||
						       msg.hdr.request == VU_REQ_SET_CONFIG)) {
			if (msg.payload.config.offset + msg.payload.config.size >
			    VU_MAX_CONFIG_SIZE)
				abort();
		}
	}
	(void)vu_request_name(msg.hdr.request, channel);
	return 0;
}
