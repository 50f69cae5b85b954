/* SPDX-License-Identifier: MIT */
/*
 * Exports into the crossbuf registry through a libcrossbuf client. The embedder decides how
 * the client connects (crossbufd's socket or an embedded registry) and should set its
 * device kind to CROSSBUF_DEVICE_GPU; the device only registers and removes entries.
 */
#include "crossbuf/crossbuf.h"
#include "device.h"

#include <errno.h>

static int
client_export_uuid(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE], int fd,
		   const struct crossbuf_buffer_info *info)
{
	return crossbuf_client_export_uuid(userdata, uuid, fd, info);
}

static int
client_remove(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	return crossbuf_client_remove(userdata, uuid);
}

static void
client_destroy(void *userdata)
{
	crossbuf_client_unref(userdata);
}

static const struct gpu_exporter client_exporter = {
	.export_uuid = client_export_uuid,
	.remove = client_remove,
	.destroy = client_destroy,
};

int
gpu_device_set_crossbuf_client(struct gpu_device *device, struct crossbuf_client *client)
{
	if (device == NULL || client == NULL)
		return -EINVAL;
	gpu_device_set_exporter(device, &client_exporter, crossbuf_client_ref(client));
	return 0;
}
