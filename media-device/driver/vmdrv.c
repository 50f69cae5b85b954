/* SPDX-License-Identifier: MIT */
#include "vmdrv.h"

#include "macro.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVENT_QUEUE_MAX 256 /* per session: beyond, the session is flooded and events drop */

struct event {
	uint8_t data[VIRTIO_MEDIA_EVENT_MAX_SIZE];
	size_t len;
};

struct vmdrv_session {
	struct vmdrv *drv;
	uint32_t id;
	int timeout_ms;
	int error; /* ERROR event: positive errno */
	bool last_seen;
	struct event *events;
	unsigned n_events;
	struct vmdrv_session *next;
};

struct vmdrv {
	struct vmdrv_transport t;
	struct virtio_media_config config;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vmdrv_session *sessions;
	unsigned dropped;
};

int
vmdrv_new(const struct vmdrv_transport *t, const struct virtio_media_config *config,
	  struct vmdrv **ret)
{
	struct vmdrv *drv;

	if (t == NULL || t->submit == NULL || config == NULL || ret == NULL)
		return -EINVAL;
	drv = calloc(1, sizeof(*drv));
	if (drv == NULL)
		return -ENOMEM;
	drv->t = *t;
	drv->config = *config;
	pthread_mutex_init(&drv->lock, NULL);
	pthread_cond_init(&drv->cond, NULL);
	*ret = drv;
	return 0;
}

void
vmdrv_free(struct vmdrv *drv)
{
	if (drv == NULL)
		return;
	while (drv->sessions)
		vmdrv_close(drv->sessions);
	pthread_cond_destroy(&drv->cond);
	pthread_mutex_destroy(&drv->lock);
	free(drv);
}

static struct vmdrv_session *
find_session(struct vmdrv *drv, uint32_t id)
{
	for (struct vmdrv_session *s = drv->sessions; s; s = s->next) {
		if (s->id == id)
			return s;
	}
	return NULL;
}

void
vmdrv_push_event(struct vmdrv *drv, const void *data, size_t len)
{
	struct virtio_media_event_header h;
	struct vmdrv_session *s;
	size_t need;

	if (len < sizeof(h) || len > VIRTIO_MEDIA_EVENT_MAX_SIZE) {
		__atomic_add_fetch(&drv->dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	memcpy(&h, data, sizeof(h));
	switch (h.event) {
	case VIRTIO_MEDIA_EVT_ERROR:
		need = sizeof(struct virtio_media_event_error);
		break;
	case VIRTIO_MEDIA_EVT_DQBUF:
		need = sizeof(struct virtio_media_event_dqbuf);
		break;
	case VIRTIO_MEDIA_EVT_EVENT:
		need = sizeof(struct virtio_media_event_event);
		break;
	default:
		need = SIZE_MAX;
		break;
	}
	pthread_mutex_lock(&drv->lock);
	s = find_session(drv, h.session_id);
	if (s == NULL || len < need) {
		drv->dropped++;
		goto out;
	}
	if (h.event == VIRTIO_MEDIA_EVT_ERROR) {
		struct virtio_media_event_error e;

		memcpy(&e, data, sizeof(e));
		s->error = e.error ? (int)e.error : EIO;
		goto out;
	}
	if (s->n_events >= EVENT_QUEUE_MAX) {
		drv->dropped++;
		goto out;
	}
	memcpy(s->events[s->n_events].data, data, len);
	s->events[s->n_events].len = len;
	s->n_events++;
out:
	pthread_cond_broadcast(&drv->cond);
	pthread_mutex_unlock(&drv->lock);
}

unsigned
vmdrv_dropped_events(struct vmdrv *drv)
{
	unsigned n;

	pthread_mutex_lock(&drv->lock);
	n = drv->dropped;
	pthread_mutex_unlock(&drv->lock);
	return n;
}

static int
submit(struct vmdrv *drv, const struct iovec *in, unsigned n_in, const struct iovec *out,
       unsigned n_out, size_t *ret_used)
{
	struct cb_request req = {.in = in, .n_in = n_in, .out = out, .n_out = n_out};
	size_t used = 0;
	int r;

	r = drv->t.submit(drv->t.userdata, &req, &used);
	if (r < 0)
		return r;
	*ret_used = used;
	return 0;
}

int
vmdrv_raw(struct vmdrv *drv, const void *in, size_t in_len, void *out, size_t out_len)
{
	struct iovec i = {(void *)in, in_len}, o = {out, out_len};
	size_t used;
	int r = submit(drv, &i, 1, &o, 1, &used);

	return r < 0 ? r : (int)used;
}

int
vmdrv_open(struct vmdrv *drv, struct vmdrv_session **ret)
{
	struct virtio_media_cmd_open c = {.hdr.cmd = VIRTIO_MEDIA_CMD_OPEN};
	struct virtio_media_resp_open r = {0};
	struct iovec i = {&c, sizeof(c)}, o = {&r, sizeof(r)};
	struct vmdrv_session *s;
	size_t used;
	int err;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->events = calloc(EVENT_QUEUE_MAX, sizeof(*s->events));
	if (s->events == NULL) {
		free(s);
		return -ENOMEM;
	}
	err = submit(drv, &i, 1, &o, 1, &used);
	if (err == 0 && used < sizeof(r.hdr))
		err = -EIO;
	if (err == 0 && r.hdr.status)
		err = -(int)r.hdr.status;
	if (err == 0 && used < sizeof(r))
		err = -EIO;
	if (err < 0) {
		free(s->events);
		free(s);
		return err;
	}
	s->drv = drv;
	s->id = r.session_id;
	s->timeout_ms = 5000;
	pthread_mutex_lock(&drv->lock);
	s->next = drv->sessions;
	drv->sessions = s;
	pthread_mutex_unlock(&drv->lock);
	*ret = s;
	return 0;
}

void
vmdrv_close(struct vmdrv_session *s)
{
	struct vmdrv *drv;
	struct virtio_media_cmd_close c = {.hdr.cmd = VIRTIO_MEDIA_CMD_CLOSE};
	struct iovec i = {&c, sizeof(c)};
	size_t used;

	if (s == NULL)
		return;
	drv = s->drv;
	c.session_id = s->id;
	(void)submit(drv, &i, 1, NULL, 0, &used);
	pthread_mutex_lock(&drv->lock);
	for (struct vmdrv_session **p = &drv->sessions; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&drv->lock);
	free(s->events);
	free(s);
}

uint32_t
vmdrv_session_id(struct vmdrv_session *s)
{
	return s->id;
}

void
vmdrv_set_timeout(struct vmdrv_session *s, int timeout_ms)
{
	s->timeout_ms = timeout_ms;
}

/* Drops queued DQBUF events of one queue type (STREAMOFF discards finished buffers). */
static void
drop_dqbufs(struct vmdrv_session *s, uint32_t type)
{
	unsigned k = 0;

	pthread_mutex_lock(&s->drv->lock);
	for (unsigned i = 0; i < s->n_events; i++) {
		struct virtio_media_event_dqbuf *e = (void *)s->events[i].data;

		if (e->hdr.event == VIRTIO_MEDIA_EVT_DQBUF && e->buffer.type == type)
			continue;
		if (k != i)
			s->events[k] = s->events[i];
		k++;
	}
	s->n_events = k;
	pthread_mutex_unlock(&s->drv->lock);
}

/* Waits for the first event matching (event, type); copies it out. */
static int
wait_event(struct vmdrv_session *s, uint32_t event, uint32_t type, void *out, size_t len)
{
	struct vmdrv *drv = s->drv;
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += s->timeout_ms / 1000;
	deadline.tv_nsec += (long)(s->timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&drv->lock);
	for (;;) {
		for (unsigned i = 0; i < s->n_events; i++) {
			struct virtio_media_event_dqbuf *e = (void *)s->events[i].data;

			if (e->hdr.event != event ||
			    (event == VIRTIO_MEDIA_EVT_DQBUF && e->buffer.type != type))
				continue;
			memcpy(out, s->events[i].data, MIN(len, s->events[i].len));
			memmove(&s->events[i], &s->events[i + 1],
				(s->n_events - i - 1) * sizeof(s->events[0]));
			s->n_events--;
			goto out;
		}
		if (s->error) {
			r = -EIO;
			break;
		}
		if (s->timeout_ms == 0) {
			r = -EAGAIN;
			break;
		}
		if (pthread_cond_timedwait(&drv->cond, &drv->lock, &deadline) == ETIMEDOUT) {
			r = -EAGAIN;
			break;
		}
	}
out:
	pthread_mutex_unlock(&drv->lock);
	return r;
}

/* Called with the lock held. */
static int
poll_flags(struct vmdrv_session *s)
{
	int r = 0;

	if (s->error)
		r |= VMDRV_POLL_ERROR;
	if (s->last_seen)
		r |= VMDRV_POLL_CAPTURE; /* DQBUF answers EPIPE at once */
	for (unsigned i = 0; i < s->n_events; i++) {
		struct virtio_media_event_dqbuf *e = (void *)s->events[i].data;

		if (e->hdr.event == VIRTIO_MEDIA_EVT_EVENT)
			r |= VMDRV_POLL_EVENT;
		else if (V4L2_TYPE_IS_OUTPUT(e->buffer.type))
			r |= VMDRV_POLL_OUTPUT;
		else
			r |= VMDRV_POLL_CAPTURE;
	}
	return r;
}

int
vmdrv_poll(struct vmdrv_session *s, int timeout_ms)
{
	struct vmdrv *drv = s->drv;
	struct timespec deadline;
	int r;

	clock_gettime(CLOCK_REALTIME, &deadline);
	if (timeout_ms > 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&drv->lock);
	while ((r = poll_flags(s)) == 0 && timeout_ms != 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&drv->cond, &drv->lock);
		else if (pthread_cond_timedwait(&drv->cond, &drv->lock, &deadline) == ETIMEDOUT)
			break;
	}
	r = poll_flags(s);
	pthread_mutex_unlock(&drv->lock);
	return r;
}

static int
dqbuf(struct vmdrv_session *s, struct v4l2_buffer *b)
{
	struct virtio_media_event_dqbuf ev;
	struct v4l2_plane *planes = b->m.planes;
	uint32_t length = b->length;
	int r;

	if (b->type == V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE && s->last_seen)
		return -EPIPE;
	r = wait_event(s, VIRTIO_MEDIA_EVT_DQBUF, b->type, &ev, sizeof(ev));
	if (r < 0)
		return r;
	*b = ev.buffer;
	if (V4L2_TYPE_IS_MULTIPLANAR(b->type)) {
		if (planes == NULL || length < ev.buffer.length)
			return -EINVAL;
		memcpy(planes, ev.planes,
		       MIN(ev.buffer.length, VIDEO_MAX_PLANES) * sizeof(planes[0]));
		b->m.planes = planes;
	}
	if (!V4L2_TYPE_IS_OUTPUT(b->type) && (b->flags & V4L2_BUF_FLAG_LAST))
		s->last_seen = true;
	return 0;
}

static int
dqevent(struct vmdrv_session *s, struct v4l2_event *e)
{
	struct virtio_media_event_event ev;
	int r = wait_event(s, VIRTIO_MEDIA_EVT_EVENT, 0, &ev, sizeof(ev));

	if (r < 0)
		return r;
	*e = ev.event;
	return 0;
}

static int
querycap(struct vmdrv_session *s, struct v4l2_capability *c)
{
	const struct virtio_media_config *cfg = &s->drv->config;

	memset(c, 0, sizeof(*c));
	snprintf((char *)c->driver, sizeof(c->driver), "virtio-media");
	memcpy(c->card, cfg->card, MIN(sizeof(c->card) - 1, sizeof(cfg->card)));
	snprintf((char *)c->bus_info, sizeof(c->bus_info), "platform:virtio-media");
	c->version = 0x060100;
	c->device_caps = cfg->device_caps;
	c->capabilities = cfg->device_caps | V4L2_CAP_DEVICE_CAPS;
	return 0;
}

/*
 * One IOCTL command: header and payload in, status and payload out, with the planes or
 * controls the payload points to, and the memory trailer of buffers.
 */
static int
do_ioctl(struct vmdrv_session *s, unsigned long request, void *arg, const struct vmdrv_mem *mem,
	 uint8_t *ret_uuid)
{
	uint32_t code = _IOC_NR(request), size = _IOC_SIZE(request);
	bool dev_reads = _IOC_DIR(request) & _IOC_WRITE, dev_writes = _IOC_DIR(request) & _IOC_READ;
	struct virtio_media_cmd_ioctl hdr = {
		.hdr.cmd = VIRTIO_MEDIA_CMD_IOCTL, .session_id = s->id, .code = code};
	struct virtio_media_resp_ioctl resp = {0};
	struct iovec in[4 + VIDEO_MAX_PLANES], out[4];
	unsigned n_in = 0, n_out = 0;
	void *extra = NULL; /* the pointed array: planes or controls */
	size_t extra_len = 0, used, want;
	uint8_t uuids_out[VIDEO_MAX_PLANES][16];
	size_t uuid_len = 0;
	int r;

	in[n_in++] = (struct iovec){&hdr, sizeof(hdr)};
	out[n_out++] = (struct iovec){&resp, sizeof(resp)};
	if (dev_reads)
		in[n_in++] = (struct iovec){arg, size};
	if (dev_writes)
		out[n_out++] = (struct iovec){arg, size};

	if (code == _IOC_NR(VIDIOC_QBUF) || code == _IOC_NR(VIDIOC_QUERYBUF) ||
	    code == _IOC_NR(VIDIOC_PREPARE_BUF)) {
		struct v4l2_buffer *b = arg;
		unsigned n_mem = 1;

		if (V4L2_TYPE_IS_MULTIPLANAR(b->type)) {
			if (b->m.planes == NULL || b->length == 0 || b->length > VIDEO_MAX_PLANES)
				return -EINVAL;
			extra = b->m.planes;
			extra_len = b->length * sizeof(struct v4l2_plane);
			n_mem = b->length;
		}
		if (extra) {
			in[n_in++] = (struct iovec){extra, extra_len};
			out[n_out++] = (struct iovec){extra, extra_len};
		}
		if (code != _IOC_NR(VIDIOC_QUERYBUF) && b->memory == VIRTIO_MEDIA_OBJECT) {
			if (mem == NULL || mem->uuids == NULL)
				return -EINVAL;
			uuid_len = n_mem * 16;
			in[n_in++] = (struct iovec){(void *)mem->uuids, uuid_len};
			out[n_out++] = (struct iovec){uuids_out, uuid_len};
		}
		if (code != _IOC_NR(VIDIOC_QUERYBUF) && b->memory == VIRTIO_MEDIA_SHARED_PAGES) {
			if (mem == NULL)
				return -EINVAL;
			for (unsigned p = 0; p < n_mem; p++)
				in[n_in++] = (struct iovec){(void *)mem->sg[p],
							    mem->n_sg[p] * sizeof(*mem->sg[p])};
		}
	} else if (code == _IOC_NR(VIDIOC_G_EXT_CTRLS) || code == _IOC_NR(VIDIOC_S_EXT_CTRLS) ||
		   code == _IOC_NR(VIDIOC_TRY_EXT_CTRLS)) {
		struct v4l2_ext_controls *c = arg;

		if (c->count > 0) {
			if (c->controls == NULL)
				return -EINVAL;
			extra = c->controls;
			extra_len = c->count * sizeof(struct v4l2_ext_control);
			in[n_in++] = (struct iovec){extra, extra_len};
			out[n_out++] = (struct iovec){extra, extra_len};
		}
	} else if (code == _IOC_NR(VIDIOC_EXPBUF)) {
		out[n_out++] = (struct iovec){ret_uuid, 16};
	}

	r = submit(s->drv, in, n_in, out, n_out, &used);
	if (r < 0)
		return r;
	if (used < sizeof(resp))
		return -EIO;
	if (resp.hdr.status)
		return -(int)resp.hdr.status;
	want = sizeof(resp) + (dev_writes ? size : 0) + (dev_writes ? extra_len : 0);
	if (used < want)
		return -EIO;
	return 0;
}

int
vmdrv_ioctl(struct vmdrv_session *s, unsigned long request, void *arg)
{
	int r;

	if (s == NULL || arg == NULL)
		return -EINVAL;
	switch (request) {
	case VIDIOC_QUERYCAP:
		return querycap(s, arg);
	case VIDIOC_DQBUF:
		return dqbuf(s, arg);
	case VIDIOC_DQEVENT:
		return dqevent(s, arg);
	case VIDIOC_EXPBUF:
		return -EINVAL; /* vmdrv_expbuf() */
	case VIDIOC_QBUF:
	case VIDIOC_PREPARE_BUF: {
		const struct v4l2_buffer *b = arg;

		if (b->memory != V4L2_MEMORY_MMAP)
			return -EINVAL; /* vmdrv_qbuf_mem() */
		break;
	}
	}
	if (s->error)
		return -EIO;

	if (request == VIDIOC_REQBUFS) {
		struct v4l2_requestbuffers *rb = arg;

		if (rb->count == 0) {
			drop_dqbufs(s, rb->type);
			if (!V4L2_TYPE_IS_OUTPUT(rb->type))
				s->last_seen = false;
		}
	}
	r = do_ioctl(s, request, arg, NULL, NULL);
	if (r < 0)
		return s->error ? -EIO : r;
	switch (request) {
	case VIDIOC_STREAMOFF:
		drop_dqbufs(s, (uint32_t) * (int *)arg);
		/* fall through */
	case VIDIOC_STREAMON:
		if (!V4L2_TYPE_IS_OUTPUT((uint32_t) * (int *)arg))
			s->last_seen = false;
		break;
	case VIDIOC_DECODER_CMD:
		if (((struct v4l2_decoder_cmd *)arg)->cmd == V4L2_DEC_CMD_START)
			s->last_seen = false;
		break;
	}
	return 0;
}

int
vmdrv_qbuf_mem(struct vmdrv_session *s, struct v4l2_buffer *b, const struct vmdrv_mem *mem)
{
	if (s == NULL || b == NULL)
		return -EINVAL;
	if (s->error)
		return -EIO;
	return do_ioctl(s, VIDIOC_QBUF, b, mem, NULL);
}

int
vmdrv_expbuf(struct vmdrv_session *s, struct v4l2_exportbuffer *e, uint8_t ret_uuid[16])
{
	uint8_t uuid[16] = {0};
	int r;

	if (s == NULL || e == NULL || ret_uuid == NULL)
		return -EINVAL;
	if (s->error)
		return -EIO;
	r = do_ioctl(s, VIDIOC_EXPBUF, e, NULL, uuid);
	if (r < 0)
		return r;
	memcpy(ret_uuid, uuid, 16);
	return 0;
}

int
vmdrv_mmap(struct vmdrv_session *s, uint32_t mem_offset, bool writable, void **ret_ptr,
	   uint64_t *ret_addr, uint64_t *ret_len)
{
	struct vmdrv *drv = s->drv;
	struct virtio_media_cmd_mmap c = {.hdr.cmd = VIRTIO_MEDIA_CMD_MMAP,
					  .session_id = s->id,
					  .flags = writable ? VIRTIO_MEDIA_MMAP_FLAG_RW : 0,
					  .offset = mem_offset};
	struct virtio_media_resp_mmap r = {0};
	struct iovec i = {&c, sizeof(c)}, o = {&r, sizeof(r)};
	size_t used;
	int err;

	err = submit(drv, &i, 1, &o, 1, &used);
	if (err < 0)
		return err;
	if (used < sizeof(r.hdr))
		return -EIO;
	if (r.hdr.status)
		return -(int)r.hdr.status;
	if (used < sizeof(r) || drv->t.shm_base == NULL || r.driver_addr > drv->t.shm_size ||
	    r.len > drv->t.shm_size - r.driver_addr)
		return -EIO;
	*ret_ptr = drv->t.shm_base + r.driver_addr;
	*ret_addr = r.driver_addr;
	*ret_len = r.len;
	return 0;
}

int
vmdrv_munmap(struct vmdrv *drv, uint64_t addr)
{
	struct virtio_media_cmd_munmap c = {.hdr.cmd = VIRTIO_MEDIA_CMD_MUNMAP,
					    .driver_addr = addr};
	struct virtio_media_resp_munmap r = {0};
	struct iovec i = {&c, sizeof(c)}, o = {&r, sizeof(r)};
	size_t used;
	int err = submit(drv, &i, 1, &o, 1, &used);

	if (err < 0)
		return err;
	if (used < sizeof(r))
		return -EIO;
	return -(int)r.hdr.status;
}
