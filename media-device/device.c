/* SPDX-License-Identifier: MIT */
#include "device.h"

#include "crossbuf/crossbuf.h"
#include "decoder.h"
#include "macro.h"
#include "protocol.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef MEDIA_HAVE_REGISTRY
#define MEDIA_HAVE_REGISTRY 0
#endif

#define DEFAULT_CARD "crossbuf virtio-media decoder"

struct session {
	uint32_t id;
	struct decoder *dec;
};

struct mapping {
	uint64_t addr;
	bool used;
};

struct media_device {
	struct media_device_ops ops;
	void *userdata;
	struct virtio_media_config config;
	const struct guest_mem *guest_mem;
	struct crossbuf_client *client;
	pthread_mutex_t event_lock;

	struct session sessions[MEDIA_DEVICE_MAX_SESSIONS];
	unsigned n_sessions;
	uint32_t next_id;
	struct mapping mappings[MEDIA_DEVICE_MAX_MAPPINGS];
};

static void
device_send_event(void *userdata, const void *event, size_t len)
{
	struct media_device *dev = userdata;

	assert(len <= VIRTIO_MEDIA_EVENT_MAX_SIZE);
	pthread_mutex_lock(&dev->event_lock);
	dev->ops.send_event(dev->userdata, event, len);
	pthread_mutex_unlock(&dev->event_lock);
}

#if MEDIA_HAVE_REGISTRY
static void
on_removed(void *userdata, const uint8_t uuid[CROSSBUF_UUID_SIZE],
	   enum crossbuf_removal_reason reason)
{
	struct media_device *dev = userdata;

	(void)reason;
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i++) {
		if (dev->sessions[i].dec)
			decoder_object_removed(dev->sessions[i].dec, uuid);
	}
}
#endif

int
media_device_new(const struct media_device_params *p, struct media_device **ret)
{
	struct media_device *dev;
	const char *card;

	if (p == NULL || p->ops == NULL || p->ops->send_event == NULL || ret == NULL)
		return -EINVAL;
	dev = calloc(1, sizeof(*dev));
	if (dev == NULL)
		return -ENOMEM;
	dev->ops = *p->ops;
	dev->userdata = p->userdata;
	dev->guest_mem = p->guest_mem;
	pthread_mutex_init(&dev->event_lock, NULL);
	dev->config.device_caps = V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING;
	dev->config.device_type = 0; /* VFL_TYPE_VIDEO */
	card = p->card ? p->card : DEFAULT_CARD;
	strncpy((char *)dev->config.card, card, sizeof(dev->config.card));
	dev->next_id = 1;
#if MEDIA_HAVE_REGISTRY
	if (p->client) {
		dev->client = crossbuf_client_ref(p->client);
		crossbuf_client_set_removed_callback(dev->client, on_removed, dev);
	}
#endif
	*ret = dev;
	return 0;
}

static void
session_close(struct media_device *dev, struct session *s)
{
	decoder_free(s->dec);
	s->dec = NULL;
	s->id = 0;
	dev->n_sessions--;
}

void
media_device_free(struct media_device *dev)
{
	if (dev == NULL)
		return;
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i++) {
		if (dev->sessions[i].dec)
			session_close(dev, &dev->sessions[i]);
	}
#if MEDIA_HAVE_REGISTRY
	if (dev->client) {
		crossbuf_client_set_removed_callback(dev->client, NULL, NULL);
		crossbuf_client_unref(dev->client);
	}
#endif
	pthread_mutex_destroy(&dev->event_lock);
	free(dev);
}

void
media_device_get_config(struct media_device *dev, struct virtio_media_config *ret)
{
	*ret = dev->config;
}

unsigned
media_device_session_count(struct media_device *dev)
{
	return dev->n_sessions;
}

int
media_device_dispatch_registry(struct media_device *dev)
{
#if MEDIA_HAVE_REGISTRY
	if (dev->client)
		return crossbuf_client_dispatch(dev->client);
#endif
	(void)dev;
	return 0;
}

static struct session *
session_find(struct media_device *dev, uint32_t id)
{
	if (id == 0)
		return NULL;
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i++) {
		if (dev->sessions[i].dec && dev->sessions[i].id == id)
			return &dev->sessions[i];
	}
	return NULL;
}

int
media_device_get_session_stats(struct media_device *dev, uint32_t session_id,
			       struct decoder_stats *ret)
{
	struct session *s = session_find(dev, session_id);

	if (s == NULL)
		return -ENOENT;
	decoder_get_stats(s->dec, ret);
	return 0;
}

static int
cmd_open(struct media_device *dev, uint32_t *ret_id)
{
	struct decoder_env env = {
		.send_event = device_send_event,
		.userdata = dev,
		.guest_mem = dev->guest_mem,
		.client = dev->client,
	};
	struct session *slot = NULL;
	uint32_t id;
	int r;

	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i++) {
		if (dev->sessions[i].dec == NULL) {
			slot = &dev->sessions[i];
			break;
		}
	}
	if (slot == NULL)
		return -EMFILE;
	/* Unique among open sessions, never 0, not reused soon. */
	do {
		id = dev->next_id++;
		if (dev->next_id == 0)
			dev->next_id = 1;
	} while (id == 0 || session_find(dev, id));
	r = decoder_new(&env, id, &slot->dec);
	if (r < 0)
		return r;
	slot->id = id;
	dev->n_sessions++;
	*ret_id = id;
	return 0;
}

static int
cmd_mmap(struct media_device *dev, const struct vmd_command *cmd, uint64_t *ret_addr,
	 uint64_t *ret_len)
{
	struct session *s = session_find(dev, cmd->session_id);
	struct mapping *slot = NULL;
	uint64_t len, addr;
	int fd, r;

	if (s == NULL)
		return -EINVAL;
	if (dev->ops.shm_map == NULL)
		return -ENODEV;
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_MAPPINGS; i++) {
		if (!dev->mappings[i].used) {
			slot = &dev->mappings[i];
			break;
		}
	}
	if (slot == NULL)
		return -ENOMEM;
	r = decoder_mmap_lookup(s->dec, cmd->mmap_offset, &fd, &len);
	if (r < 0)
		return r;
	r = dev->ops.shm_map(dev->userdata, fd, len, cmd->mmap_flags & VIRTIO_MEDIA_MMAP_FLAG_RW,
			     &addr);
	close(fd);
	if (r < 0)
		return r;
	slot->used = true;
	slot->addr = addr;
	*ret_addr = addr;
	*ret_len = len;
	return 0;
}

static int
cmd_munmap(struct media_device *dev, uint64_t addr)
{
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_MAPPINGS; i++) {
		struct mapping *m = &dev->mappings[i];

		if (m->used && m->addr == addr) {
			int r = dev->ops.shm_unmap ? dev->ops.shm_unmap(dev->userdata, addr) : 0;

			m->used = false;
			return r;
		}
	}
	return -EINVAL;
}

static size_t
handle_ioctl(struct media_device *dev, const struct cb_request *req, struct vmd_command *cmd,
	     int parse_status)
{
	struct session *s = session_find(dev, cmd->session_id);
	bool write_on_error = false;
	int r;

	/* An unknown session is EINVAL whatever the ioctl (the driver's bug, not the ioctl's). */
	if (s == NULL)
		return vmd_encode_ioctl(req, -EINVAL, cmd, false);
	if (parse_status < 0)
		return vmd_encode_ioctl(req, parse_status, cmd, false);
	r = decoder_ioctl(s->dec, cmd, &write_on_error);
	return vmd_encode_ioctl(req, r, cmd, write_on_error);
}

size_t
media_device_handle_command(struct media_device *dev, const struct cb_request *req)
{
	struct vmd_command *cmd;
	size_t used = 0;
	int r;

	(void)media_device_dispatch_registry(dev);
	/* Sessions that died of an error release what they hold now, not at CLOSE. */
	for (unsigned i = 0; i < MEDIA_DEVICE_MAX_SESSIONS; i++) {
		if (dev->sessions[i].dec && decoder_needs_shutdown(dev->sessions[i].dec))
			decoder_shutdown(dev->sessions[i].dec);
	}

	cmd = malloc(sizeof(*cmd));
	if (cmd == NULL)
		return vmd_encode_status(req, -ENOMEM);
	r = vmd_command_parse(req, cmd);
	if (r == -EPROTO || (r < 0 && cmd->cmd == 0)) {
		used = vmd_encode_status(req, r == -EPROTO ? -ENOTTY : r);
		goto out;
	}

	switch (cmd->cmd) {
	case VIRTIO_MEDIA_CMD_OPEN: {
		uint32_t id = 0;

		/* No room for the session id: the driver could never close the session. */
		if (iov_size(req->out, req->n_out) < sizeof(struct virtio_media_resp_open))
			r = -EINVAL;
		else
			r = cmd_open(dev, &id);
		used = vmd_encode_open(req, r, id);
		break;
	}
	case VIRTIO_MEDIA_CMD_CLOSE: {
		struct session *s = r == 0 ? session_find(dev, cmd->session_id) : NULL;

		/* No response: the chain goes back empty. */
		if (s)
			session_close(dev, s);
		used = 0;
		break;
	}
	case VIRTIO_MEDIA_CMD_IOCTL:
		used = handle_ioctl(dev, req, cmd, r);
		break;
	case VIRTIO_MEDIA_CMD_MMAP: {
		uint64_t addr = 0, len = 0;

		if (r == 0)
			r = cmd_mmap(dev, cmd, &addr, &len);
		used = vmd_encode_mmap(req, r, addr, len);
		break;
	}
	case VIRTIO_MEDIA_CMD_MUNMAP:
		if (r == 0)
			r = cmd_munmap(dev, cmd->driver_addr);
		used = vmd_encode_status(req, r);
		break;
	}
out:
	vmd_command_finish(cmd);
	free(cmd);
	return used;
}
