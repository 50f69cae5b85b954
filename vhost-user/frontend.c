/* SPDX-License-Identifier: MIT */
#include "frontend.h"

#include "macro.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_MS     5000
#define MAX_SHMEM_SIZE (1ull << 36)
#define MAX_OBJECTS    4096

struct fqueue {
	unsigned size;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint64_t indirect_gpa; /* size tables of VU_FRONTEND_MAX_INDIRECT descriptors */
	uint16_t *free;        /* stack of free descriptor indexes */
	unsigned n_free;
	uint16_t *chain_len; /* per head: descriptors to free when used, 0 for raw */
	uint16_t avail_idx;
	uint16_t kicked_idx; /* avail_idx at the last kick decision */
	uint16_t last_used;
	int kick_fd;
	int call_fd;
};

struct shmem {
	uint8_t *base;
	uint64_t size;
	int fd; /* the region's own memfd, mapped where nothing else is */
};

/* Guest RAM, shared by the frontends of one guest (vu_frontend_share_ram()). */
struct guest_ram {
	unsigned refs;
	int fd;
	uint8_t *map;
	uint64_t size;
	uint64_t next; /* vu_frontend_alloc()'s bump pointer */
};

struct vu_frontend {
	int sock;
	int backend_fd; /* our end of the backend channel */
	struct guest_ram *mem;
	bool mem_table_sent;
	unsigned n_regions;
	uint64_t features;
	uint64_t protocol_features;
	unsigned queue_num;
	struct fqueue queues[VU_MAX_QUEUES];
	struct shmem shmem[VU_MAX_SHMEM];
	uint8_t (*objects)[16];
	unsigned n_objects;
	unsigned config_changes;
};

static bool
has_protocol(const struct vu_frontend *f, enum vu_protocol_feature p)
{
	return f->protocol_features & (1ull << p);
}

static struct guest_ram *
guest_ram_unref(struct guest_ram *m)
{
	if (m == NULL || --m->refs > 0)
		return NULL;
	if (m->map)
		munmap(m->map, m->size);
	safe_close(m->fd);
	free(m);
	return NULL;
}

static int
guest_ram_new(uint64_t size, struct guest_ram **ret)
{
	long page = sysconf(_SC_PAGESIZE);
	struct guest_ram *m = calloc(1, sizeof(*m));
	int r;

	if (m == NULL)
		return -ENOMEM;
	m->refs = 1;
	m->size = ALIGN_UP(size, (uint64_t)page * 8);
	m->fd = memfd_create("crossbuf-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (m->fd < 0 || ftruncate(m->fd, (off_t)m->size) < 0 ||
	    fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	m->map = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->map == MAP_FAILED) {
		m->map = NULL;
		goto fail;
	}
	m->next = 4096; /* keep gpa 0 unused: a zero address is always a bug */
	*ret = m;
	return 0;
fail:
	r = negative_errno();
	guest_ram_unref(m);
	return r;
}

int
vu_frontend_new(int fd, uint64_t ram_size, struct vu_frontend **ret)
{
	struct vu_frontend *f;
	int r;

	if (fd < 0 || ram_size == 0 || ram_size > (1ull << 40) || ret == NULL) {
		safe_close(fd);
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		close(fd);
		return -ENOMEM;
	}
	f->sock = fd;
	f->backend_fd = -1;
	f->n_regions = 1;
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
		f->queues[i].kick_fd = f->queues[i].call_fd = -1;
	for (unsigned i = 0; i < VU_MAX_SHMEM; i++)
		f->shmem[i].fd = -1;
	r = guest_ram_new(ram_size, &f->mem);
	if (r < 0) {
		vu_frontend_free(f);
		return r;
	}
	*ret = f;
	return 0;
}

int
vu_frontend_share_ram(struct vu_frontend *f, struct vu_frontend *owner)
{
	if (f == NULL || owner == NULL || f == owner)
		return -EINVAL;
	if (f->mem_table_sent)
		return -EBUSY;
	guest_ram_unref(f->mem);
	f->mem = owner->mem;
	f->mem->refs++;
	return 0;
}

int
vu_frontend_connect(const char *path, uint64_t ram_size, struct vu_frontend **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (path == NULL || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	return vu_frontend_new(fd, ram_size, ret);
}

struct vu_frontend *
vu_frontend_free(struct vu_frontend *f)
{
	if (f == NULL)
		return NULL;
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
		struct fqueue *q = &f->queues[i];
		safe_close(q->kick_fd);
		safe_close(q->call_fd);
		free(q->free);
		free(q->chain_len);
	}
	for (unsigned i = 0; i < VU_MAX_SHMEM; i++) {
		if (f->shmem[i].base)
			munmap(f->shmem[i].base, f->shmem[i].size);
		safe_close(f->shmem[i].fd);
	}
	guest_ram_unref(f->mem);
	safe_close(f->backend_fd);
	safe_close(f->sock);
	free(f->objects);
	free(f);
	return NULL;
}

int
vu_frontend_set_regions(struct vu_frontend *f, unsigned n)
{
	if (f == NULL || n == 0 || n > VU_MAX_MEM_REGIONS || f->mem->size % n != 0 ||
	    (f->mem->size / n) % 4096 != 0)
		return -EINVAL;
	f->n_regions = n;
	return 0;
}

void *
vu_frontend_ram(struct vu_frontend *f, uint64_t gpa, uint64_t len)
{
	if (gpa >= f->mem->size || len > f->mem->size - gpa)
		return NULL;
	return f->mem->map + gpa;
}

int
vu_frontend_alloc(struct vu_frontend *f, uint64_t size, uint64_t align, uint64_t *ret_gpa)
{
	uint64_t start;

	if (f == NULL || size == 0 || align == 0 || (align & (align - 1)))
		return -EINVAL;
	start = ALIGN_UP(f->mem->next, align);
	if (start > f->mem->size || size > f->mem->size - start)
		return -ENOMEM;
	f->mem->next = start + size;
	*ret_gpa = start;
	return 0;
}

int
vu_frontend_ram_fd(struct vu_frontend *f)
{
	return f->mem->fd;
}

uint64_t
vu_frontend_ram_size(struct vu_frontend *f)
{
	return f->mem->size;
}

uint64_t
vu_frontend_features(struct vu_frontend *f)
{
	return f->features;
}

uint64_t
vu_frontend_protocol_features(struct vu_frontend *f)
{
	return f->protocol_features;
}

unsigned
vu_frontend_queue_num(struct vu_frontend *f)
{
	return f->queue_num;
}

/* ---- backend channel ---- */

static bool
object_index(struct vu_frontend *f, const uint8_t uuid[16], unsigned *ret)
{
	for (unsigned i = 0; i < f->n_objects; i++) {
		if (memcmp(f->objects[i], uuid, 16) == 0) {
			*ret = i;
			return true;
		}
	}
	return false;
}

static int
shmem_map(struct vu_frontend *f, const struct vu_shmem_map *m, int fd)
{
	struct shmem *s = &f->shmem[m->shmid];
	long page = sysconf(_SC_PAGESIZE);
	int prot = PROT_READ | ((m->flags & VU_SHMEM_MAP_RW) ? PROT_WRITE : 0);

	if (s->base == NULL || m->shm_offset > s->size || m->len > s->size - m->shm_offset)
		return -EINVAL;
	if (m->shm_offset % page || m->fd_offset % page || m->len % page)
		return -EINVAL;
	if (fd >= 0) {
		if (mmap(s->base + m->shm_offset, m->len, prot, MAP_SHARED | MAP_FIXED, fd,
			 (off_t)m->fd_offset) == MAP_FAILED)
			return negative_errno();
	} else {
		/* Unmap: the region's own memory comes back. */
		if (mmap(s->base + m->shm_offset, m->len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, s->fd, (off_t)m->shm_offset) == MAP_FAILED)
			return negative_errno();
	}
	return 0;
}

static int
handle_backend_request(struct vu_frontend *f, struct vu_msg *msg)
{
	const uint8_t *uuid = msg->payload.object.uuid;
	unsigned idx;
	int r;

	switch ((enum vu_backend_request)msg->hdr.request) {
	case VU_BREQ_SHMEM_MAP:
		return shmem_map(f, &msg->payload.shmem_map, msg->fds[0]);
	case VU_BREQ_SHMEM_UNMAP:
		return shmem_map(f, &msg->payload.shmem_map, -1);
	case VU_BREQ_SHARED_OBJECT_ADD:
		if (object_index(f, uuid, &idx) || f->n_objects == MAX_OBJECTS)
			return -EEXIST; /* a duplicate is refused, never replaces */
		if (f->objects == NULL) {
			f->objects = calloc(MAX_OBJECTS, 16);
			if (f->objects == NULL)
				return -ENOMEM;
		}
		memcpy(f->objects[f->n_objects++], uuid, 16);
		return 0;
	case VU_BREQ_SHARED_OBJECT_REMOVE:
		if (!object_index(f, uuid, &idx))
			return -ENOENT;
		memmove(f->objects[idx], f->objects[idx + 1], (f->n_objects - idx - 1) * 16);
		f->n_objects--;
		return 0;
	case VU_BREQ_SHARED_OBJECT_LOOKUP:
		/* This frontend holds no fds for objects: every lookup fails. */
		return -ENOENT;
	case VU_BREQ_CONFIG_CHANGE_MSG:
		f->config_changes++;
		return 0;
	case VU_BREQ_NONE:
		break;
	}
	r = -EOPNOTSUPP;
	return r;
}

/* Serves one backend channel message. -ECONNRESET when the channel is gone. */
static int
serve_one(struct vu_frontend *f)
{
	struct vu_msg msg, reply;
	int r, result;

	r = vu_msg_recv(f->backend_fd, TIMEOUT_MS, &msg);
	if (r == -EAGAIN)
		return 0;
	if (r < 0) {
		f->backend_fd = safe_close(f->backend_fd);
		return r;
	}
	r = vu_msg_validate_request(&msg, VU_CHANNEL_BACKEND);
	if (r == -EBADMSG) {
		vu_msg_close_fds(&msg);
		f->backend_fd = safe_close(f->backend_fd);
		return r;
	}
	result = r < 0 ? r : handle_backend_request(f, &msg);
	vu_msg_close_fds(&msg);
	if (msg.hdr.flags & VU_FLAG_NEED_REPLY) {
		vu_msg_init(&reply, 0, 0, 0);
		vu_msg_make_reply(&reply, &msg, 8);
		reply.payload.u64 = result < 0 ? 1 : 0;
		r = vu_msg_send(f->backend_fd, &reply);
		if (r < 0)
			return r;
	}
	return 0;
}

int
vu_frontend_serve_backend(struct vu_frontend *f, int timeout_ms)
{
	struct pollfd p;
	int r;

	if (f->backend_fd < 0)
		return -ENOTCONN;
	p = (struct pollfd){.fd = f->backend_fd, .events = POLLIN};
	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return negative_errno();
	if (r == 0)
		return -ETIMEDOUT;
	return serve_one(f);
}

int
vu_frontend_backend_fd(struct vu_frontend *f)
{
	return f ? f->backend_fd : -1;
}

/*
 * Waits until fd is readable, serving the backend channel meanwhile. -ECONNRESET if the main
 * socket hangs up first (unless fd is the socket).
 */
static int
wait_fd(struct vu_frontend *f, int fd, int timeout_ms)
{
	for (;;) {
		struct pollfd p[3] = {
			{.fd = fd, .events = POLLIN},
			{.fd = f->backend_fd, .events = POLLIN},
			{.fd = f->sock, .events = POLLIN},
		};
		int r = poll(p, fd == f->sock ? 2 : 3, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return negative_errno();
		if (r == 0)
			return -ETIMEDOUT;
		if (p[0].revents)
			return 0;
		if (p[1].revents) {
			r = serve_one(f);
			if (r < 0 && r != -ECONNRESET)
				return r;
		}
		if (fd != f->sock && p[2].revents) {
			/* The backend never sends unasked: any readiness is a hang-up. */
			char c;
			if (recv(f->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
				return -ECONNRESET;
			return -EPROTO;
		}
	}
}

/* ---- control messages ---- */

static bool
has_reply(uint32_t request)
{
	switch (request) {
	case VU_REQ_GET_FEATURES:
	case VU_REQ_GET_PROTOCOL_FEATURES:
	case VU_REQ_GET_QUEUE_NUM:
	case VU_REQ_GET_VRING_BASE:
	case VU_REQ_GET_CONFIG:
	case VU_REQ_GET_SHMEM_CONFIG:
		return true;
	default:
		return false;
	}
}

static int
recv_reply(struct vu_frontend *f, uint32_t request, bool is_ack, struct vu_msg *reply)
{
	int r;

	for (;;) {
		r = wait_fd(f, f->sock, TIMEOUT_MS);
		if (r < 0)
			return r;
		r = vu_msg_recv(f->sock, TIMEOUT_MS, reply);
		if (r == -EAGAIN)
			continue;
		if (r < 0)
			return r;
		break;
	}
	r = vu_msg_validate_reply(reply, request, is_ack, 0);
	vu_msg_close_fds(reply);
	return r;
}

int
vu_frontend_request(struct vu_frontend *f, struct vu_msg *msg, bool ack, struct vu_msg *reply)
{
	struct vu_msg tmp;
	bool wants_ack = false;
	int r;

	if (ack && has_protocol(f, VU_PROTOCOL_F_REPLY_ACK) && !has_reply(msg->hdr.request)) {
		msg->hdr.flags |= VU_FLAG_NEED_REPLY;
		wants_ack = true;
	}
	r = vu_msg_send(f->sock, msg);
	if (r < 0)
		return r;
	if (has_reply(msg->hdr.request))
		return recv_reply(f, msg->hdr.request, false, reply ? reply : &tmp);
	if (!wants_ack)
		return 0;
	r = recv_reply(f, msg->hdr.request, true, &tmp);
	if (r < 0)
		return r;
	return tmp.payload.u64 == 0 ? 0 : -EIO;
}

int
vu_frontend_send_raw(struct vu_frontend *f, const void *buf, size_t len, const int *fds,
		     unsigned n_fds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (n_fds > 64)
		return -EINVAL;
	if (n_fds > 0) {
		struct cmsghdr *c;
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	if (sendmsg(f->sock, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		return errno ? negative_errno() : -EIO;
	return 0;
}

int
vu_frontend_wait_hangup(struct vu_frontend *f, int timeout_ms)
{
	for (;;) {
		struct pollfd p = {.fd = f->sock, .events = POLLIN};
		char buf[256];
		ssize_t n;
		int r = poll(&p, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -ETIMEDOUT;
		n = recv(f->sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		/* Replies still in flight are dropped. */
	}
}

bool
vu_frontend_hung_up(struct vu_frontend *f)
{
	struct pollfd p = {.fd = f->sock, .events = POLLRDHUP};

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int
simple(struct vu_frontend *f, uint32_t request, uint64_t *ret_u64)
{
	struct vu_msg msg, reply;
	int r;

	vu_msg_init(&msg, request, 0, 0);
	r = vu_frontend_request(f, &msg, true, &reply);
	if (r == 0 && ret_u64)
		*ret_u64 = reply.payload.u64;
	return r;
}

static int
set_u64(struct vu_frontend *f, uint32_t request, uint64_t v)
{
	struct vu_msg msg;

	vu_msg_init(&msg, request, 0, 8);
	msg.payload.u64 = v;
	return vu_frontend_request(f, &msg, true, NULL);
}

static int
send_mem_table(struct vu_frontend *f)
{
	uint64_t chunk = f->mem->size / f->n_regions;
	struct vu_msg msg;
	int r = 0;

	vu_msg_init(&msg, VU_REQ_SET_MEM_TABLE, 0, 8 + f->n_regions * sizeof(struct vu_mem_region));
	msg.payload.mem.n_regions = f->n_regions;
	for (unsigned i = 0; i < f->n_regions; i++) {
		msg.payload.mem.regions[i] = (struct vu_mem_region){
			.gpa = i * chunk,
			.size = chunk,
			.uaddr = (uint64_t)(uintptr_t)(f->mem->map + i * chunk),
			.mmap_offset = i * chunk,
		};
		msg.fds[i] = fcntl(f->mem->fd, F_DUPFD_CLOEXEC, 0);
		if (msg.fds[i] < 0)
			r = negative_errno();
	}
	msg.n_fds = f->n_regions;
	f->mem_table_sent = true;
	if (r == 0)
		r = vu_frontend_request(f, &msg, true, NULL);
	vu_msg_close_fds(&msg);
	return r;
}

int
vu_frontend_set_mem_table(struct vu_frontend *f)
{
	return f ? send_mem_table(f) : -EINVAL;
}

int
vu_frontend_negotiate(struct vu_frontend *f, uint64_t want, uint64_t want_protocol)
{
	uint64_t offered, poffered = 0, ack;
	int r;

	r = simple(f, VU_REQ_SET_OWNER, NULL);
	if (r < 0)
		return r;
	r = simple(f, VU_REQ_GET_FEATURES, &offered);
	if (r < 0)
		return r;
	ack = (want | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
	       (1ull << VU_F_PROTOCOL_FEATURES)) &
	      offered;
	if (ack & (1ull << VU_F_PROTOCOL_FEATURES)) {
		r = simple(f, VU_REQ_GET_PROTOCOL_FEATURES, &poffered);
		if (r < 0)
			return r;
		f->protocol_features = poffered & want_protocol;
		r = set_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, f->protocol_features);
		if (r < 0)
			return r;
	}
	if (has_protocol(f, VU_PROTOCOL_F_MQ)) {
		uint64_t n;
		r = simple(f, VU_REQ_GET_QUEUE_NUM, &n);
		if (r < 0)
			return r;
		f->queue_num = n > VU_MAX_QUEUES ? VU_MAX_QUEUES : (unsigned)n;
	}
	if (has_protocol(f, VU_PROTOCOL_F_BACKEND_REQ)) {
		int sv[2];
		struct vu_msg msg;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return negative_errno();
		vu_msg_init(&msg, VU_REQ_SET_BACKEND_REQ_FD, 0, 0);
		msg.fds[0] = sv[1];
		msg.n_fds = 1;
		r = vu_frontend_request(f, &msg, true, NULL);
		close(sv[1]);
		if (r < 0) {
			close(sv[0]);
			return r;
		}
		safe_close(f->backend_fd);
		f->backend_fd = sv[0];
	}
	r = set_u64(f, VU_REQ_SET_FEATURES, ack);
	if (r < 0)
		return r;
	f->features = ack;
	return send_mem_table(f);
}

int
vu_frontend_get_config(struct vu_frontend *f, uint32_t offset, void *buf, uint32_t len)
{
	struct vu_msg msg, reply;
	int r;

	if (len > VU_MAX_CONFIG_SIZE)
		return -EINVAL;
	vu_msg_init(&msg, VU_REQ_GET_CONFIG, 0, VU_CONFIG_HDR_SIZE + len);
	msg.payload.config.offset = offset;
	msg.payload.config.size = len;
	r = vu_frontend_request(f, &msg, false, &reply);
	if (r < 0)
		return r;
	if (reply.payload.config.size != len || reply.payload.config.offset != offset)
		return -EIO;
	memcpy(buf, reply.payload.config.data, len);
	return 0;
}

int
vu_frontend_set_config(struct vu_frontend *f, uint32_t offset, const void *buf, uint32_t len)
{
	struct vu_msg msg;

	if (len > VU_MAX_CONFIG_SIZE)
		return -EINVAL;
	vu_msg_init(&msg, VU_REQ_SET_CONFIG, 0, VU_CONFIG_HDR_SIZE + len);
	msg.payload.config.offset = offset;
	msg.payload.config.size = len;
	memcpy(msg.payload.config.data, buf, len);
	return vu_frontend_request(f, &msg, true, NULL);
}

int
vu_frontend_get_shmem_config(struct vu_frontend *f, uint64_t *ret_sizes, unsigned *ret_n)
{
	struct vu_msg msg, reply;
	long page = sysconf(_SC_PAGESIZE);
	int r;

	vu_msg_init(&msg, VU_REQ_GET_SHMEM_CONFIG, 0, 0);
	r = vu_frontend_request(f, &msg, false, &reply);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < VU_MAX_SHMEM; i++) {
		uint64_t size = reply.payload.shmem_config.sizes[i];
		struct shmem *s = &f->shmem[i];

		if (size == 0 || s->base != NULL)
			continue;
		if (size > MAX_SHMEM_SIZE || size % page)
			return -EPROTO;
		s->fd = memfd_create("crossbuf-shmem", MFD_CLOEXEC);
		if (s->fd < 0 || ftruncate(s->fd, (off_t)size) < 0)
			return negative_errno();
		s->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			       s->fd, 0);
		if (s->base == MAP_FAILED) {
			s->base = NULL;
			return negative_errno();
		}
		s->size = size;
	}
	if (ret_sizes)
		memcpy(ret_sizes, reply.payload.shmem_config.sizes,
		       sizeof(uint64_t) * VU_MAX_SHMEM);
	if (ret_n)
		*ret_n = reply.payload.shmem_config.n_regions;
	return 0;
}

void *
vu_frontend_shmem(struct vu_frontend *f, unsigned shmid, uint64_t *ret_size)
{
	if (shmid >= VU_MAX_SHMEM || f->shmem[shmid].base == NULL)
		return NULL;
	if (ret_size)
		*ret_size = f->shmem[shmid].size;
	return f->shmem[shmid].base;
}

unsigned
vu_frontend_config_changes(struct vu_frontend *f)
{
	return f->config_changes;
}

unsigned
vu_frontend_shared_object_count(struct vu_frontend *f)
{
	return f->n_objects;
}

bool
vu_frontend_has_shared_object(struct vu_frontend *f, const uint8_t uuid[16])
{
	unsigned i;
	return object_index(f, uuid, &i);
}

/* ---- queues ---- */

static int
set_state(struct vu_frontend *f, uint32_t request, unsigned q, unsigned num)
{
	struct vu_msg msg;

	vu_msg_init(&msg, request, 0, sizeof(struct vu_vring_state));
	msg.payload.state = (struct vu_vring_state){.index = q, .num = num};
	return vu_frontend_request(f, &msg, true, NULL);
}

static int
set_vring_fd(struct vu_frontend *f, uint32_t request, unsigned q, int fd)
{
	struct vu_msg msg;

	vu_msg_init(&msg, request, 0, 8);
	msg.payload.u64 = q;
	msg.fds[0] = fd;
	msg.n_fds = 1;
	return vu_frontend_request(f, &msg, true, NULL);
}

int
vu_frontend_queue_setup(struct vu_frontend *f, unsigned qi, unsigned size)
{
	struct fqueue *q;
	struct vu_msg msg;
	int r;

	if (f == NULL || qi >= VU_MAX_QUEUES || size == 0 || size > 32768 || (size & (size - 1)))
		return -EINVAL;
	q = &f->queues[qi];
	if (q->size != size) {
		free(q->free);
		free(q->chain_len);
		*q = (struct fqueue){.kick_fd = q->kick_fd, .call_fd = q->call_fd, .size = size};
		q->free = calloc(size, sizeof(uint16_t));
		q->chain_len = calloc(size, sizeof(uint16_t));
		if (q->free == NULL || q->chain_len == NULL)
			return -ENOMEM;
		if ((r = vu_frontend_alloc(f, 16ull * size, 16, &q->desc_gpa)) < 0 ||
		    (r = vu_frontend_alloc(f, 6 + 2ull * size, 2, &q->avail_gpa)) < 0 ||
		    (r = vu_frontend_alloc(f, 6 + 8ull * size, 4, &q->used_gpa)) < 0 ||
		    (r = vu_frontend_alloc(f, 16ull * VU_FRONTEND_MAX_INDIRECT * size, 16,
					   &q->indirect_gpa)) < 0)
			return r;
	}
	q->desc = vu_frontend_ram(f, q->desc_gpa, 16ull * size);
	q->avail = vu_frontend_ram(f, q->avail_gpa, 6 + 2ull * size);
	q->used = vu_frontend_ram(f, q->used_gpa, 6 + 8ull * size);
	memset(q->desc, 0, 16ull * size);
	memset(q->avail, 0, 6 + 2ull * size);
	memset(q->used, 0, 6 + 8ull * size);
	q->n_free = size;
	for (unsigned i = 0; i < size; i++) {
		q->free[i] = (uint16_t)(size - 1 - i);
		q->chain_len[i] = 0;
	}
	q->avail_idx = q->last_used = q->kicked_idx = 0;
	safe_close(q->kick_fd);
	safe_close(q->call_fd);
	q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kick_fd < 0 || q->call_fd < 0)
		return negative_errno();

	if ((r = set_state(f, VU_REQ_SET_VRING_NUM, qi, size)) < 0 ||
	    (r = set_state(f, VU_REQ_SET_VRING_BASE, qi, 0)) < 0)
		return r;
	vu_msg_init(&msg, VU_REQ_SET_VRING_ADDR, 0, sizeof(struct vu_vring_addr));
	msg.payload.addr = (struct vu_vring_addr){
		.index = qi,
		.desc = (uint64_t)(uintptr_t)q->desc,
		.avail = (uint64_t)(uintptr_t)q->avail,
		.used = (uint64_t)(uintptr_t)q->used,
	};
	if ((r = vu_frontend_request(f, &msg, true, NULL)) < 0 ||
	    (r = set_vring_fd(f, VU_REQ_SET_VRING_CALL, qi, q->call_fd)) < 0 ||
	    (r = set_vring_fd(f, VU_REQ_SET_VRING_KICK, qi, q->kick_fd)) < 0)
		return r;
	if (f->features & (1ull << VU_F_PROTOCOL_FEATURES))
		return set_state(f, VU_REQ_SET_VRING_ENABLE, qi, 1);
	return 0;
}

int
vu_frontend_queue_stop(struct vu_frontend *f, unsigned qi, uint16_t *ret_base)
{
	struct vu_msg msg, reply;
	int r;

	if (f == NULL || qi >= VU_MAX_QUEUES)
		return -EINVAL;
	vu_msg_init(&msg, VU_REQ_GET_VRING_BASE, 0, sizeof(struct vu_vring_state));
	msg.payload.state.index = qi;
	r = vu_frontend_request(f, &msg, false, &reply);
	if (r < 0)
		return r;
	if (ret_base)
		*ret_base = (uint16_t)reply.payload.state.num;
	return 0;
}

static void
publish(struct fqueue *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->size] = htole16(head);
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, htole16(q->avail_idx), __ATOMIC_RELEASE);
}

static struct fqueue *
get_queue(struct vu_frontend *f, unsigned qi)
{
	if (f == NULL || qi >= VU_MAX_QUEUES || f->queues[qi].size == 0)
		return NULL;
	return &f->queues[qi];
}

int
vu_frontend_queue_add(struct vu_frontend *f, unsigned qi, const struct vu_buf *bufs, unsigned n,
		      bool indirect, uint16_t *ret_head)
{
	struct fqueue *q = get_queue(f, qi);
	unsigned need;
	uint16_t head, prev = 0;

	if (q == NULL || n == 0 || (indirect && n > VU_FRONTEND_MAX_INDIRECT))
		return -EINVAL;
	need = indirect ? 1 : n;
	if (q->n_free < need)
		return -ENOSPC;
	if (indirect) {
		struct vring_desc *table;
		uint64_t table_gpa;

		head = q->free[--q->n_free];
		table_gpa = q->indirect_gpa + 16ull * VU_FRONTEND_MAX_INDIRECT * head;
		table = vu_frontend_ram(f, table_gpa, 16ull * n);
		for (unsigned i = 0; i < n; i++) {
			table[i] = (struct vring_desc){
				.addr = htole64(bufs[i].gpa),
				.len = htole32(bufs[i].len),
				.flags = htole16((bufs[i].writable ? VRING_DESC_F_WRITE : 0) |
						 (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				.next = htole16(i + 1 < n ? i + 1 : 0),
			};
		}
		q->desc[head] = (struct vring_desc){
			.addr = htole64(table_gpa),
			.len = htole32(16 * n),
			.flags = htole16(VRING_DESC_F_INDIRECT),
		};
	} else {
		head = 0;
		/* Link back to front so each descriptor knows its successor. */
		for (unsigned i = n; i-- > 0;) {
			uint16_t d = q->free[--q->n_free];
			q->desc[d] = (struct vring_desc){
				.addr = htole64(bufs[i].gpa),
				.len = htole32(bufs[i].len),
				.flags = htole16((bufs[i].writable ? VRING_DESC_F_WRITE : 0) |
						 (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				.next = htole16(i + 1 < n ? prev : 0),
			};
			prev = d;
		}
		head = prev;
	}
	q->chain_len[head] = (uint16_t)need;
	publish(q, head);
	if (ret_head)
		*ret_head = head;
	return 0;
}

int
vu_frontend_queue_kick(struct vu_frontend *f, unsigned qi)
{
	struct fqueue *q = get_queue(f, qi);
	uint64_t one = 1;

	if (q == NULL)
		return -EINVAL;
	if (f->features & (1ull << VIRTIO_RING_F_EVENT_IDX)) {
		uint16_t old = q->kicked_idx, avail_event;

		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_event = le16toh(
			__atomic_load_n(&((volatile uint16_t *)(void *)&q->used->ring[q->size])[0],
					__ATOMIC_RELAXED));
		q->kicked_idx = q->avail_idx;
		if (!vring_need_event(avail_event, q->avail_idx, old))
			return 0;
	}
	if (write(q->kick_fd, &one, sizeof(one)) < 0)
		return negative_errno();
	return 0;
}

static void
free_chain(struct fqueue *q, uint16_t head)
{
	uint16_t d = head;

	for (unsigned i = 0; i < q->chain_len[head] && q->n_free < q->size; i++) {
		uint16_t next = le16toh(q->desc[d].next);
		q->free[q->n_free++] = d;
		d = next % q->size;
	}
	q->chain_len[head] = 0;
}

int
vu_frontend_queue_wait(struct vu_frontend *f, unsigned qi, int timeout_ms, uint16_t *ret_head,
		       uint32_t *ret_len)
{
	struct fqueue *q = get_queue(f, qi);

	if (q == NULL)
		return -EINVAL;
	for (;;) {
		uint16_t used_idx = le16toh(__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE));
		uint64_t v;
		int r;

		if (used_idx != q->last_used) {
			struct vring_used_elem e = q->used->ring[q->last_used % q->size];
			uint32_t id = le32toh(e.id);

			q->last_used++;
			if (id >= q->size)
				return -EPROTO;
			free_chain(q, (uint16_t)id);
			if (ret_head)
				*ret_head = (uint16_t)id;
			if (ret_len)
				*ret_len = le32toh(e.len);
			return 0;
		}
		if (f->features & (1ull << VIRTIO_RING_F_EVENT_IDX)) {
			/* Interrupt me at the next used element, then look again. */
			__atomic_store_n(&((volatile uint16_t *)q->avail->ring)[q->size],
					 htole16(q->last_used), __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (le16toh(__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE)) !=
			    q->last_used)
				continue;
		}
		r = wait_fd(f, q->call_fd, timeout_ms);
		if (r < 0)
			return r;
		while (read(q->call_fd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
	}
}

int
vu_frontend_queue_call_fd(struct vu_frontend *f, unsigned qi)
{
	struct fqueue *q = get_queue(f, qi);
	return q ? q->call_fd : -1;
}

struct vring_desc *
vu_frontend_queue_desc(struct vu_frontend *f, unsigned qi)
{
	struct fqueue *q = get_queue(f, qi);
	return q ? q->desc : NULL;
}

int
vu_frontend_queue_publish_raw(struct vu_frontend *f, unsigned qi, uint16_t head)
{
	struct fqueue *q = get_queue(f, qi);

	if (q == NULL)
		return -EINVAL;
	publish(q, head);
	return 0;
}

int
vu_frontend_queue_set_avail_idx(struct vu_frontend *f, unsigned qi, uint16_t idx)
{
	struct fqueue *q = get_queue(f, qi);

	if (q == NULL)
		return -EINVAL;
	q->avail_idx = idx;
	__atomic_store_n(&q->avail->idx, htole16(idx), __ATOMIC_RELEASE);
	return 0;
}
