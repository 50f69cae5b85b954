/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the whole media device (parser, sessions, decoder state machine,
 * memory types) with the fake codec: the input is a sequence of commandq requests, each
 *   le16 readable length, le16 writable length, readable bytes
 * run in order against a fresh device with 1 MiB of guest memory at 0x100000. Events are
 * dropped. The corpus (fuzz/corpus/media-device) was recorded from the device tests with
 * CROSSBUF_MEDIA_RECORD set (see harness.c).
 */
#include "device.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQUESTS 256
#define GUEST_GPA    0x100000ull
#define GUEST_SIZE   (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
drop_event(void *userdata, const void *event, size_t len)
{
	(void)userdata, (void)event, (void)len;
}

static int
shm_map(void *userdata, int fd, uint64_t len, bool writable, uint64_t *ret_addr)
{
	uint64_t *next = userdata;

	(void)fd, (void)writable;
	*ret_addr = *next;
	*next += (len + 4095) & ~4095ull;
	return 0;
}

static int
shm_unmap(void *userdata, uint64_t addr)
{
	(void)userdata, (void)addr;
	return 0;
}

static const struct media_device_ops ops = {
	.send_event = drop_event,
	.shm_map = shm_map,
	.shm_unmap = shm_unmap,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[8192];
	uint8_t *guest = calloc(1, GUEST_SIZE);
	struct guest_mem gm;
	uint64_t shm_next = 0;
	struct media_device_params p = {.ops = &ops, .userdata = &shm_next, .guest_mem = &gm};
	struct media_device *dev;
	size_t off = 0;

	if (guest == NULL)
		return 0;
	guest_mem_init(&gm);
	guest_mem_add_region(&gm, GUEST_GPA, GUEST_SIZE, guest);
	if (media_device_new(&p, &dev) < 0) {
		free(guest);
		return 0;
	}
	for (unsigned n = 0; n < MAX_REQUESTS && off + 4 <= size; n++) {
		uint16_t in_len, out_len;
		struct iovec in, o;
		struct cb_request req = {.in = &in, .n_in = 1, .out = &o, .n_out = 1};

		memcpy(&in_len, data + off, 2);
		memcpy(&out_len, data + off + 2, 2);
		off += 4;
		if (in_len > size - off)
			in_len = (uint16_t)(size - off);
		in.iov_base = (void *)(data + off);
		in.iov_len = in_len;
		o.iov_base = out;
		o.iov_len = out_len % sizeof(out);
		off += in_len;
		(void)media_device_handle_command(dev, &req);
	}
	media_device_free(dev);
	free(guest);
	return 0;
}
