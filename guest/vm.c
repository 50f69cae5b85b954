/* SPDX-License-Identifier: MIT */
#include "vm.h"

#include "frontend.h"
#include "iov.h"
#include "macro.h"
#include "message.h"

#include <errno.h>
#include <linux/virtio_gpu.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define GPU_QUEUE_SIZE   256
#define GPU_SCRATCH_SIZE (1u << 20) /* one request's command, data and reply */
#define MEDIA_QUEUE_SIZE GUEST_VM_MEDIA_QUEUE_SIZE
#define MEDIA_N_EVBUF    GUEST_VM_MEDIA_EVENT_BUFFERS
#define MEDIA_CMD_MAX    (64u << 10) /* largest command or response vmdrv sends */
#define CONNECT_TRIES    200         /* 10 ms apart: a device just started gets 2 s */

struct gpu_link {
	struct vu_frontend *f;
	struct gpu_guest *drv;
	uint64_t scratch;
	unsigned timeout_ms;
	bool dead;
};

/*
 * The media device's link. The pump thread owns both queues; a request is handed to it
 * under lock and the caller waits on cond until the device used it.
 */
struct media_link {
	struct vu_frontend *f;
	struct vmdrv *drv;
	struct virtio_media_config config;
	uint8_t *shm;
	uint64_t shm_size;
	uint64_t ev_gpa[MEDIA_N_EVBUF];
	unsigned n_evbuf;                 /* of ev_gpa, posted */
	int ev_of_head[MEDIA_QUEUE_SIZE]; /* eventq head -> event buffer */
	uint64_t in_gpa, out_gpa;
	unsigned timeout_ms;

	pthread_t pump;
	bool pump_started;
	int wake_fd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_mutex_t submit_lock;  /* one request in flight, as the commandq has room for */
	const struct cb_request *req; /* to send; NULL when none */
	bool sent, done, stop, dead;
	int result;
	size_t used;
};

struct guest_vm {
	unsigned timeout_ms;
	struct vu_frontend *ram_owner; /* the first connected frontend */
	struct gpu_link *gpu;
	struct media_link *media;
};

int
guest_vm_connect(const char *socket, uint64_t ram_size, struct vu_frontend **ret)
{
	int r = -ENOENT;

	if (socket == NULL || ret == NULL)
		return -EINVAL;
	for (int i = 0; i < CONNECT_TRIES; i++) {
		r = vu_frontend_connect(socket, ram_size, ret);
		if (r != -ENOENT && r != -ECONNREFUSED)
			break;
		usleep(10000);
	}
	return r;
}

/* ---- virtio-gpu ---- */

/*
 * gpu_guest's transport: copies the request into guest RAM, puts it on the control queue
 * (the cursor queue for cursor commands) and waits for the device to use it.
 */
static int
gpu_submit(void *userdata, const struct cb_request *req)
{
	struct gpu_link *g = userdata;
	struct vu_buf bufs[8];
	uint64_t gpa = g->scratch;
	unsigned n = 0, q = 0;
	uint16_t head, used_head;
	uint32_t used_len, type = 0;
	int r;

	if (g->dead)
		return -ECONNRESET;
	if (req->n_in + req->n_out > ARRAY_SIZE(bufs) ||
	    iov_size(req->in, req->n_in) + iov_size(req->out, req->n_out) +
			    64ull * (req->n_in + req->n_out) >
		    GPU_SCRATCH_SIZE)
		return -E2BIG;
	for (unsigned i = 0; i < req->n_in; i++) {
		memcpy(vu_frontend_ram(g->f, gpa, req->in[i].iov_len), req->in[i].iov_base,
		       req->in[i].iov_len);
		bufs[n++] = (struct vu_buf){gpa, (uint32_t)req->in[i].iov_len, false};
		gpa += ALIGN_UP(req->in[i].iov_len, 64);
	}
	if (req->n_in > 0 && req->in[0].iov_len >= sizeof(type))
		memcpy(&type, req->in[0].iov_base, sizeof(type));
	type = le32toh(type);
	q = type == VIRTIO_GPU_CMD_UPDATE_CURSOR || type == VIRTIO_GPU_CMD_MOVE_CURSOR;
	for (unsigned i = 0; i < req->n_out; i++) {
		memset(vu_frontend_ram(g->f, gpa, req->out[i].iov_len), 0, req->out[i].iov_len);
		bufs[n++] = (struct vu_buf){gpa, (uint32_t)req->out[i].iov_len, true};
		gpa += ALIGN_UP(req->out[i].iov_len, 64);
	}
	r = vu_frontend_queue_add(g->f, q, bufs, n, false, &head);
	if (r >= 0)
		r = vu_frontend_queue_kick(g->f, q);
	if (r >= 0)
		r = vu_frontend_queue_wait(g->f, q, (int)g->timeout_ms, &used_head, &used_len);
	if (r < 0) {
		/* Hung up, or stuck: either way this device is gone for the guest. */
		g->dead = true;
		return r == -ETIMEDOUT ? r : -ECONNRESET;
	}
	if (used_head != head) {
		g->dead = true;
		return -EPROTO;
	}
	for (unsigned i = req->n_in; i < n; i++) {
		const struct iovec *o = &req->out[i - req->n_in];
		memcpy(o->iov_base, vu_frontend_ram(g->f, bufs[i].gpa, o->iov_len), o->iov_len);
	}
	return (int)used_len;
}

static void
gpu_link_free(struct gpu_link *g)
{
	if (g == NULL)
		return;
	gpu_guest_free(g->drv);
	vu_frontend_free(g->f);
	free(g);
}

static int
gpu_link_new(struct vu_frontend *f, unsigned timeout_ms, struct gpu_link **ret)
{
	struct gpu_link *g = calloc(1, sizeof(*g));
	int r;

	if (g == NULL) {
		vu_frontend_free(f);
		return -ENOMEM;
	}
	g->f = f;
	g->timeout_ms = timeout_ms;
	r = vu_frontend_negotiate(f, GUEST_VM_GPU_FEATURES, GUEST_VM_GPU_PROTOCOL_FEATURES);
	if (r >= 0 && !(vu_frontend_features(f) & (1ull << VIRTIO_GPU_F_RESOURCE_UUID)))
		r = -EPROTONOSUPPORT; /* no ASSIGN_UUID: nothing to share */
	if (r >= 0)
		r = vu_frontend_queue_setup(f, 0, GPU_QUEUE_SIZE);
	if (r >= 0)
		r = vu_frontend_queue_setup(f, 1, GPU_QUEUE_SIZE);
	if (r >= 0)
		r = vu_frontend_alloc(f, GPU_SCRATCH_SIZE, 4096, &g->scratch);
	if (r >= 0)
		r = gpu_guest_new(gpu_submit, g, &g->drv);
	if (r < 0) {
		gpu_link_free(g);
		return r;
	}
	*ret = g;
	return 0;
}

/* ---- virtio-media ---- */

static int
add_event_buffer(struct media_link *m, unsigned i)
{
	struct vu_buf b = {m->ev_gpa[i], VIRTIO_MEDIA_EVENT_MAX_SIZE, true};
	uint16_t head;
	int r = vu_frontend_queue_add(m->f, VIRTIO_MEDIA_EVENTQ, &b, 1, false, &head);

	if (r >= 0)
		m->ev_of_head[head] = (int)i;
	return r;
}

static void
finish_request(struct media_link *m, int result, size_t used)
{
	pthread_mutex_lock(&m->lock);
	m->req = NULL;
	m->sent = false;
	m->result = result;
	m->used = used;
	m->done = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void
send_request(struct media_link *m, const struct cb_request *req)
{
	size_t in_len = iov_size(req->in, req->n_in), out_len = iov_size(req->out, req->n_out);
	struct vu_buf bufs[2];
	unsigned n = 0;
	int r;

	if (in_len > MEDIA_CMD_MAX || out_len > MEDIA_CMD_MAX || in_len == 0) {
		finish_request(m, -E2BIG, 0);
		return;
	}
	iov_to_buf(req->in, req->n_in, 0, vu_frontend_ram(m->f, m->in_gpa, in_len), in_len);
	bufs[n++] = (struct vu_buf){m->in_gpa, (uint32_t)in_len, false};
	if (out_len > 0) {
		memset(vu_frontend_ram(m->f, m->out_gpa, out_len), 0, out_len);
		bufs[n++] = (struct vu_buf){m->out_gpa, (uint32_t)out_len, true};
	}
	r = vu_frontend_queue_add(m->f, VIRTIO_MEDIA_COMMANDQ, bufs, n, false, NULL);
	if (r >= 0)
		r = vu_frontend_queue_kick(m->f, VIRTIO_MEDIA_COMMANDQ);
	if (r < 0) {
		finish_request(m, r, 0);
		return;
	}
	pthread_mutex_lock(&m->lock);
	m->sent = true;
	pthread_mutex_unlock(&m->lock);
}

/* Hands the eventq's used buffers to the driver and posts them again. */
static int
pump_events(struct media_link *m)
{
	bool returned = false;
	uint16_t head;
	uint32_t len;
	int r;

	while ((r = vu_frontend_queue_wait(m->f, VIRTIO_MEDIA_EVENTQ, 0, &head, &len)) == 0) {
		int i = head < MEDIA_QUEUE_SIZE ? m->ev_of_head[head] : -1;

		if (i < 0)
			return -EPROTO;
		len = MIN(len, (uint32_t)VIRTIO_MEDIA_EVENT_MAX_SIZE);
		vmdrv_push_event(m->drv, vu_frontend_ram(m->f, m->ev_gpa[i], 1), len);
		r = add_event_buffer(m, (unsigned)i);
		if (r < 0)
			return r;
		returned = true;
	}
	if (returned)
		vu_frontend_queue_kick(m->f, VIRTIO_MEDIA_EVENTQ);
	return r == -ETIMEDOUT ? 0 : r;
}

static void *
pump(void *data)
{
	struct media_link *m = data;
	int call_cmd = vu_frontend_queue_call_fd(m->f, VIRTIO_MEDIA_COMMANDQ);
	int call_ev = vu_frontend_queue_call_fd(m->f, VIRTIO_MEDIA_EVENTQ);
	int backend = vu_frontend_backend_fd(m->f);

	for (;;) {
		struct pollfd p[4] = {
			{.fd = call_cmd, .events = POLLIN},
			{.fd = call_ev, .events = POLLIN},
			{.fd = m->wake_fd, .events = POLLIN},
			{.fd = backend, .events = POLLIN},
		};
		const struct cb_request *req;
		bool sent;
		uint16_t head;
		uint32_t len;
		uint64_t v;
		int r;

		/* Clear the notifications before looking at the rings: none is lost. */
		while (read(call_cmd, &v, sizeof(v)) > 0 || read(call_ev, &v, sizeof(v)) > 0 ||
		       read(m->wake_fd, &v, sizeof(v)) > 0)
			;
		pthread_mutex_lock(&m->lock);
		req = m->req;
		sent = m->sent;
		if (m->stop) {
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
		pthread_mutex_unlock(&m->lock);

		r = pump_events(m);
		if (r < 0)
			break;
		if (req && sent) {
			r = vu_frontend_queue_wait(m->f, VIRTIO_MEDIA_COMMANDQ, 0, &head, &len);
			if (r == 0) {
				size_t out_len = iov_size(req->out, req->n_out);

				len = (uint32_t)MIN((size_t)len, out_len);
				if (len > 0)
					iov_from_buf(req->out, req->n_out, 0,
						     vu_frontend_ram(m->f, m->out_gpa, len), len);
				finish_request(m, 0, len);
				continue;
			}
			if (r != -ETIMEDOUT)
				break;
		} else if (req) {
			send_request(m, req);
			continue;
		}
		r = poll(p, backend >= 0 ? 4 : 3, 100);
		if (r > 0 && backend >= 0 && p[3].revents) {
			r = vu_frontend_serve_backend(m->f, 0);
			if (r < 0 && r != -ETIMEDOUT)
				break;
		}
	}
	/* The device hung up or broke the protocol: every request fails from now on. */
	pthread_mutex_lock(&m->lock);
	m->dead = true;
	while (!m->stop) {
		if (m->req) {
			m->req = NULL;
			m->sent = false;
			m->result = -ECONNRESET;
			m->used = 0;
			m->done = true;
			pthread_cond_broadcast(&m->cond);
			continue;
		}
		pthread_cond_wait(&m->cond, &m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* vmdrv's transport: one request at a time through the pump. */
static int
media_submit(void *userdata, const struct cb_request *req, size_t *ret_used)
{
	struct media_link *m = userdata;
	uint64_t one = 1;
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += m->timeout_ms / 1000;
	deadline.tv_nsec += (long)(m->timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&m->submit_lock);
	pthread_mutex_lock(&m->lock);
	if (m->stop || m->dead) {
		pthread_mutex_unlock(&m->lock);
		pthread_mutex_unlock(&m->submit_lock);
		return -ECONNRESET;
	}
	m->req = req;
	m->done = false;
	pthread_mutex_unlock(&m->lock);
	if (write(m->wake_fd, &one, sizeof(one)) < 0)
		r = negative_errno();
	pthread_mutex_lock(&m->lock);
	while (!m->done && r == 0)
		r = -pthread_cond_timedwait(&m->cond, &m->lock, &deadline);
	if (m->done) {
		r = m->result;
		*ret_used = m->used;
	} else {
		/* Stuck device: the request stays on the ring, the device counts as gone. */
		m->dead = true;
		m->req = NULL;
		r = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&m->submit_lock);
	return r;
}

static void
media_link_free(struct media_link *m)
{
	uint64_t one = 1;

	if (m == NULL)
		return;
	if (m->pump_started) {
		pthread_mutex_lock(&m->lock);
		m->stop = true;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		if (write(m->wake_fd, &one, sizeof(one)) < 0) {
			/* an eventfd write only fails on overflow: the pump wakes anyway */
		}
		pthread_join(m->pump, NULL);
	}
	/* Sessions still open are dropped with the connection. */
	vu_frontend_free(m->f);
	vmdrv_free(m->drv);
	safe_close(m->wake_fd);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->submit_lock);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int
media_link_setup(struct media_link *m)
{
	uint64_t sizes[VU_MAX_SHMEM];
	struct vmdrv_transport t;
	unsigned n_shmem;
	int r;

	r = vu_frontend_negotiate(m->f, GUEST_VM_MEDIA_FEATURES, GUEST_VM_MEDIA_PROTOCOL_FEATURES);
	if (r < 0)
		return r;
	if (vu_frontend_queue_num(m->f) < 2)
		return -EPROTO;
	r = vu_frontend_get_config(m->f, 0, &m->config, sizeof(m->config));
	if (r < 0)
		return r;
	r = vu_frontend_get_shmem_config(m->f, sizes, &n_shmem);
	if (r < 0)
		return r;
	m->shm = vu_frontend_shmem(m->f, VIRTIO_MEDIA_SHM_MMAP, &m->shm_size);
	r = vu_frontend_queue_setup(m->f, VIRTIO_MEDIA_COMMANDQ, MEDIA_QUEUE_SIZE);
	if (r >= 0)
		r = vu_frontend_queue_setup(m->f, VIRTIO_MEDIA_EVENTQ, MEDIA_QUEUE_SIZE);
	if (r >= 0)
		r = vu_frontend_alloc(m->f, MEDIA_CMD_MAX, 4096, &m->in_gpa);
	if (r >= 0)
		r = vu_frontend_alloc(m->f, MEDIA_CMD_MAX, 4096, &m->out_gpa);
	for (unsigned i = 0; i < MEDIA_QUEUE_SIZE; i++)
		m->ev_of_head[i] = -1;
	for (unsigned i = 0; i < m->n_evbuf && r >= 0; i++) {
		r = vu_frontend_alloc(m->f, VIRTIO_MEDIA_EVENT_MAX_SIZE, 64, &m->ev_gpa[i]);
		if (r >= 0)
			r = add_event_buffer(m, i);
	}
	if (r >= 0)
		r = vu_frontend_queue_kick(m->f, VIRTIO_MEDIA_EVENTQ);
	if (r < 0)
		return r;
	t = (struct vmdrv_transport){
		.submit = media_submit, .userdata = m, .shm_base = m->shm, .shm_size = m->shm_size};
	r = vmdrv_new(&t, &m->config, &m->drv);
	if (r < 0)
		return r;
	r = -pthread_create(&m->pump, NULL, pump, m);
	if (r < 0)
		return r;
	m->pump_started = true;
	return 0;
}

static int
media_link_new(struct vu_frontend *f, unsigned n_evbuf, unsigned timeout_ms,
	       struct media_link **ret)
{
	struct media_link *m = calloc(1, sizeof(*m));
	pthread_condattr_t attr;
	int r;

	if (m == NULL) {
		vu_frontend_free(f);
		return -ENOMEM;
	}
	m->f = f;
	m->n_evbuf = n_evbuf;
	m->timeout_ms = timeout_ms;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->submit_lock, NULL);
	/* Request deadlines on the monotonic clock: a wall clock step is no timeout. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &attr);
	pthread_condattr_destroy(&attr);
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = m->wake_fd < 0 ? negative_errno() : media_link_setup(m);
	if (r < 0) {
		media_link_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

/* ---- the machine ---- */

int
guest_vm_new(const char *gpu_socket, const char *media_socket, uint64_t ram_size,
	     struct guest_vm **ret)
{
	return guest_vm_new_with(gpu_socket, media_socket, ram_size, NULL, ret);
}

int
guest_vm_new_with(const char *gpu_socket, const char *media_socket, uint64_t ram_size,
		  const struct guest_vm_options *opts, struct guest_vm **ret)
{
	unsigned n_evbuf =
		opts && opts->media_event_buffers ? opts->media_event_buffers : MEDIA_N_EVBUF;
	unsigned timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : GUEST_VM_TIMEOUT_MS;
	struct guest_vm *vm;
	struct vu_frontend *gf = NULL, *mf = NULL;
	int r = 0;

	if (ret == NULL || n_evbuf > MEDIA_N_EVBUF || timeout_ms > GUEST_VM_TIMEOUT_MAX_MS)
		return -EINVAL;
	vm = calloc(1, sizeof(*vm));
	if (vm == NULL)
		return -ENOMEM;
	vm->timeout_ms = timeout_ms;
	if (gpu_socket)
		r = guest_vm_connect(gpu_socket, ram_size, &gf);
	if (r >= 0 && media_socket) {
		r = guest_vm_connect(media_socket, ram_size, &mf);
		/* One RAM for the whole guest: the media device sees the gpu's. */
		if (r >= 0 && gf)
			r = vu_frontend_share_ram(mf, gf);
	}
	if (r < 0) {
		vu_frontend_free(gf);
		vu_frontend_free(mf);
		free(vm);
		return r;
	}
	vm->ram_owner = gf ? gf : mf;
	if (gf)
		r = gpu_link_new(gf, timeout_ms, &vm->gpu);
	if (r >= 0 && mf)
		r = media_link_new(mf, n_evbuf, timeout_ms, &vm->media);
	else if (mf)
		vu_frontend_free(mf);
	if (r < 0) {
		guest_vm_free(vm);
		return r;
	}
	*ret = vm;
	return 0;
}

void
guest_vm_free(struct guest_vm *vm)
{
	if (vm == NULL)
		return;
	media_link_free(vm->media);
	gpu_link_free(vm->gpu);
	free(vm);
}

unsigned
guest_vm_timeout_ms(const struct guest_vm *vm)
{
	return vm->timeout_ms;
}

struct gpu_guest *
guest_vm_gpu(struct guest_vm *vm)
{
	return vm->gpu ? vm->gpu->drv : NULL;
}

struct vmdrv *
guest_vm_media(struct guest_vm *vm)
{
	return vm->media ? vm->media->drv : NULL;
}

bool
guest_vm_gpu_dead(struct guest_vm *vm)
{
	if (vm->gpu != NULL && !vm->gpu->dead && vu_frontend_hung_up(vm->gpu->f))
		vm->gpu->dead = true;
	return vm->gpu == NULL || vm->gpu->dead;
}

bool
guest_vm_media_dead(struct guest_vm *vm)
{
	bool dead;

	if (vm->media == NULL)
		return true;
	pthread_mutex_lock(&vm->media->lock);
	dead = vm->media->dead;
	pthread_mutex_unlock(&vm->media->lock);
	return dead;
}

uint8_t *
guest_vm_ram(struct guest_vm *vm, uint64_t *ret_size)
{
	*ret_size = vu_frontend_ram_size(vm->ram_owner);
	return vu_frontend_ram(vm->ram_owner, 0, *ret_size);
}

int
guest_vm_ram_fd(struct guest_vm *vm)
{
	return vu_frontend_ram_fd(vm->ram_owner);
}

uint8_t *
guest_vm_media_shm(struct guest_vm *vm, uint64_t *ret_size)
{
	*ret_size = vm->media ? vm->media->shm_size : 0;
	return vm->media ? vm->media->shm : NULL;
}

const struct virtio_media_config *
guest_vm_media_config(struct guest_vm *vm)
{
	return vm->media ? &vm->media->config : NULL;
}

struct vu_frontend *
guest_vm_frontend(struct guest_vm *vm, enum guest_vm_device device)
{
	switch (device) {
	case GUEST_VM_GPU:
		return vm->gpu ? vm->gpu->f : NULL;
	case GUEST_VM_MEDIA:
		return vm->media ? vm->media->f : NULL;
	}
	return NULL;
}
