/* SPDX-License-Identifier: MIT */
#include "backend.h"

#include "macro.h"
#include "message.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Memory tables kept alive for in-flight requests before a new table is a protocol error. */
#define VU_MAX_RETIRED_TABLES 4

/* epoll tags */
enum {
	TAG_STOP = 0,
	TAG_LISTEN = 1,
	TAG_CONN = 2,
	TAG_KICK = 16,    /* + queue index */
	TAG_WATCH = 1024, /* + watch slot */
};

struct watch {
	int fd; /* borrowed, -1 for a free slot */
	void (*fn)(void *data, int fd);
	void *data;
};

struct mapping {
	uint8_t *base; /* what mmap returned */
	size_t len;
	uint64_t uaddr; /* frontend virtual address of the region */
	uint64_t size;
	uint8_t *host; /* base + mmap_offset */
	int fd;        /* owned: the region's file, kept for guest_mem's fd + offset */
};

struct queue {
	unsigned num;
	bool have_addr;
	struct vu_vring_addr addr;
	uint16_t base;
	int kick_fd;
	int call_fd;
	int err_fd;
	bool kicked_set; /* SET_VRING_KICK came: the ring is started */
	bool enabled;
	bool running; /* started, enabled, and queue_start was called */
	uint64_t generation;
	struct vu_virtq vq;
};

struct vu_backend {
	struct vu_backend_device dev;
	uint64_t shmem_sizes[VU_MAX_SHMEM];
	void *data;

	int epoll_fd;
	int stop_fd;
	struct watch watches[VU_BACKEND_MAX_WATCHES];
	int listen_fd;
	char *path;
	int conn_fd;
	bool adopted_gone;
	bool stopped;

	/* Connection state. */
	int backend_fd;
	uint64_t features;
	uint64_t protocol_features;
	bool features_set;
	struct mapping maps[VU_MAX_MEM_REGIONS];
	unsigned n_maps;
	/* Tables replaced while requests were in flight: their buffers stay mapped until the
	 * connection ends. */
	struct mapping retired[VU_MAX_RETIRED_TABLES * VU_MAX_MEM_REGIONS];
	unsigned n_retired;
	unsigned n_retired_tables;
	struct guest_mem mem;
	struct queue *queues;
	uint64_t next_generation;
	/* A protocol error or broken ring seen inside a callback: end at the top level. */
	int pending_error;
	const char *pending_why;
};

static uint64_t
offered_features(const struct vu_backend *b)
{
	return b->dev.features | (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
	       (1ull << VU_F_PROTOCOL_FEATURES);
}

static uint64_t
offered_protocol_features(const struct vu_backend *b)
{
	uint64_t f = (1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) |
		     (1ull << VU_PROTOCOL_F_BACKEND_REQ) | (1ull << VU_PROTOCOL_F_SHARED_OBJECT);
	if (b->dev.config_size > 0)
		f |= 1ull << VU_PROTOCOL_F_CONFIG;
	if (b->dev.n_shmem > 0)
		f |= 1ull << VU_PROTOCOL_F_SHMEM;
	return f;
}

static bool
has_protocol(const struct vu_backend *b, enum vu_protocol_feature f)
{
	return b->protocol_features & (1ull << f);
}

static int
epoll_add(struct vu_backend *b, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return negative_errno();
	return 0;
}

static void
epoll_del(struct vu_backend *b, int fd)
{
	if (fd >= 0)
		epoll_ctl(b->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

int
vu_backend_new(const struct vu_backend_device *dev, void *data, struct vu_backend **ret)
{
	struct vu_backend *b;

	if (dev == NULL || ret == NULL || dev->n_queues == 0 || dev->n_queues > VU_MAX_QUEUES ||
	    dev->config_size > VU_MAX_CONFIG_SIZE || dev->n_shmem > VU_MAX_SHMEM ||
	    (dev->n_shmem > 0 && dev->shmem_sizes == NULL) || dev->handle == NULL ||
	    dev->max_queue_size > VU_VIRTQ_MAX_SIZE ||
	    (dev->max_queue_size != 0 && !vu_virtq_size_valid(dev->max_queue_size)) ||
	    (dev->config_size > 0 && dev->get_config == NULL))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->dev = *dev;
	if (b->dev.max_queue_size == 0)
		b->dev.max_queue_size = VU_VIRTQ_MAX_SIZE;
	for (unsigned i = 0; i < dev->n_shmem; i++)
		b->shmem_sizes[i] = dev->shmem_sizes[i];
	b->dev.shmem_sizes = b->shmem_sizes;
	b->data = data;
	b->listen_fd = b->conn_fd = b->backend_fd = -1;
	b->queues = calloc(dev->n_queues, sizeof(*b->queues));
	b->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->queues == NULL || b->epoll_fd < 0 || b->stop_fd < 0 ||
	    epoll_add(b, b->stop_fd, TAG_STOP) < 0) {
		vu_backend_free(b);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < dev->n_queues; i++)
		b->queues[i].kick_fd = b->queues[i].call_fd = b->queues[i].err_fd = -1;
	for (unsigned i = 0; i < VU_BACKEND_MAX_WATCHES; i++)
		b->watches[i].fd = -1;
	guest_mem_init(&b->mem);
	*ret = b;
	return 0;
}

/* ---- connection teardown ---- */

static void
queue_stop(struct vu_backend *b, unsigned i)
{
	struct queue *q = &b->queues[i];

	if (q->running) {
		q->running = false;
		if (b->dev.queue_stop)
			b->dev.queue_stop(b->data, i);
	}
	q->generation = 0;
}

static void
queue_clear(struct vu_backend *b, unsigned i)
{
	struct queue *q = &b->queues[i];

	queue_stop(b, i);
	epoll_del(b, q->kick_fd);
	q->kick_fd = safe_close(q->kick_fd);
	q->call_fd = safe_close(q->call_fd);
	q->err_fd = safe_close(q->err_fd);
	*q = (struct queue){.kick_fd = -1, .call_fd = -1, .err_fd = -1};
}

static void
unmap_memory(struct vu_backend *b)
{
	for (unsigned i = 0; i < b->n_maps; i++) {
		munmap(b->maps[i].base, b->maps[i].len);
		safe_close(b->maps[i].fd);
	}
	b->n_maps = 0;
	for (unsigned i = 0; i < b->n_retired; i++) {
		munmap(b->retired[i].base, b->retired[i].len);
		safe_close(b->retired[i].fd);
	}
	b->n_retired = 0;
	b->n_retired_tables = 0;
	guest_mem_init(&b->mem);
}

static bool
requests_in_flight(const struct vu_backend *b)
{
	for (unsigned i = 0; i < b->dev.n_queues; i++) {
		if (b->queues[i].running && b->queues[i].vq.in_flight > 0)
			return true;
	}
	return false;
}

/* Unmaps the current table, or keeps it for requests still holding its buffers. */
static int
retire_memory(struct vu_backend *b)
{
	if (!requests_in_flight(b)) {
		/* Nothing holds a buffer of any older table either. */
		unmap_memory(b);
		return 0;
	} else {
		if (b->n_retired_tables == VU_MAX_RETIRED_TABLES)
			return -EBADMSG;
		memcpy(b->retired + b->n_retired, b->maps, sizeof(b->maps[0]) * b->n_maps);
		b->n_retired += b->n_maps;
		b->n_retired_tables++;
	}
	b->n_maps = 0;
	guest_mem_init(&b->mem);
	return 0;
}

/* True if fd is an eventfd: anything else could block a write or wake epoll forever. */
static bool
is_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

static void
device_reset(struct vu_backend *b)
{
	for (unsigned i = 0; i < b->dev.n_queues; i++)
		queue_clear(b, i);
	if (b->dev.reset)
		b->dev.reset(b->data);
	b->features = 0;
	b->features_set = false;
}

static void
end_connection(struct vu_backend *b, int error, const char *why)
{
	if (b->conn_fd < 0)
		return;
	device_reset(b);
	unmap_memory(b);
	b->protocol_features = 0;
	b->backend_fd = safe_close(b->backend_fd);
	epoll_del(b, b->conn_fd);
	b->conn_fd = safe_close(b->conn_fd);
	b->pending_error = 0;
	b->pending_why = NULL;
	if (b->listen_fd >= 0)
		epoll_add(b, b->listen_fd, TAG_LISTEN);
	else
		b->adopted_gone = true;
	if (b->dev.connection_ended)
		b->dev.connection_ended(b->data, error, why);
}

struct vu_backend *
vu_backend_free(struct vu_backend *b)
{
	if (b == NULL)
		return NULL;
	if (b->queues != NULL)
		end_connection(b, 0, "backend freed");
	free(b->queues);
	if (b->listen_fd >= 0) {
		close(b->listen_fd);
		if (b->path)
			unlink(b->path);
	}
	free(b->path);
	safe_close(b->stop_fd);
	safe_close(b->epoll_fd);
	free(b);
	return NULL;
}

/* ---- sockets ---- */

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return negative_errno();
	return 0;
}

int
vu_backend_listen(struct vu_backend *b, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	if (b == NULL || path == NULL || strlen(path) >= sizeof(sa.sun_path) || b->listen_fd >= 0)
		return -EINVAL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		/* Replace a socket nobody listens on any more, never a live one. */
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN) {
			close(fd);
			return -EADDRINUSE;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return negative_errno();
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		r = negative_errno();
		close(fd);
		return r;
	}
	b->path = strdup(path);
	if (b->path == NULL) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	b->listen_fd = fd;
	if (b->conn_fd < 0)
		return epoll_add(b, fd, TAG_LISTEN);
	return 0;
}

static int
start_connection(struct vu_backend *b, int fd)
{
	int r = set_nonblock(fd);

	if (r == 0)
		r = epoll_add(b, fd, TAG_CONN);
	if (r < 0) {
		close(fd);
		return r;
	}
	b->conn_fd = fd;
	b->adopted_gone = false;
	if (b->listen_fd >= 0)
		epoll_del(b, b->listen_fd);
	return 0;
}

int
vu_backend_adopt(struct vu_backend *b, int fd)
{
	if (b == NULL || fd < 0 || b->conn_fd >= 0) {
		safe_close(fd);
		return -EINVAL;
	}
	return start_connection(b, fd);
}

int
vu_backend_add_watch(struct vu_backend *b, int fd, void (*fn)(void *data, int fd), void *data)
{
	unsigned free_slot = VU_BACKEND_MAX_WATCHES;
	int r;

	if (b == NULL || fd < 0 || fn == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < VU_BACKEND_MAX_WATCHES; i++) {
		if (b->watches[i].fd == fd)
			return -EEXIST;
		if (b->watches[i].fd < 0 && free_slot == VU_BACKEND_MAX_WATCHES)
			free_slot = i;
	}
	if (free_slot == VU_BACKEND_MAX_WATCHES)
		return -ENOSPC;
	r = epoll_add(b, fd, TAG_WATCH + free_slot);
	if (r < 0)
		return r;
	b->watches[free_slot] = (struct watch){.fd = fd, .fn = fn, .data = data};
	return 0;
}

int
vu_backend_remove_watch(struct vu_backend *b, int fd)
{
	if (b == NULL || fd < 0)
		return -EINVAL;
	for (unsigned i = 0; i < VU_BACKEND_MAX_WATCHES; i++) {
		if (b->watches[i].fd == fd) {
			epoll_del(b, fd);
			b->watches[i].fd = -1;
			return 0;
		}
	}
	return -ENOENT;
}

int
vu_backend_get_fd(struct vu_backend *b)
{
	return b ? b->epoll_fd : -EINVAL;
}

bool
vu_backend_connected(struct vu_backend *b)
{
	return b && b->conn_fd >= 0;
}

uint64_t
vu_backend_features(struct vu_backend *b)
{
	return b->features;
}

uint64_t
vu_backend_protocol_features(struct vu_backend *b)
{
	return b->protocol_features;
}

const struct guest_mem *
vu_backend_guest_mem(struct vu_backend *b)
{
	return &b->mem;
}

void
vu_backend_stop(struct vu_backend *b)
{
	uint64_t one = 1;
	ssize_t n _unused_ = write(b->stop_fd, &one, sizeof(one));
}

/* ---- memory ---- */

static void *
uva_to_host(struct vu_backend *b, uint64_t uaddr, uint64_t len)
{
	for (unsigned i = 0; i < b->n_maps; i++) {
		const struct mapping *m = &b->maps[i];
		if (uaddr >= m->uaddr && uaddr - m->uaddr < m->size &&
		    len <= m->size - (uaddr - m->uaddr))
			return m->host + (uaddr - m->uaddr);
	}
	return NULL;
}

/* Points the queue's vq at its rings in the current memory. -EFAULT if they are not mapped. */
static int
queue_map_rings(struct vu_backend *b, unsigned i)
{
	struct queue *q = &b->queues[i];
	uint16_t last = q->base, used = q->base;
	unsigned in_flight = 0;
	void *desc, *avail, *usedp;
	int r;

	if (q->running || q->vq.size) {
		last = q->vq.last_avail_idx;
		used = q->vq.used_idx;
		in_flight = q->vq.in_flight;
	}
	desc = uva_to_host(b, q->addr.desc, vu_virtq_desc_bytes(q->num));
	avail = uva_to_host(b, q->addr.avail, vu_virtq_avail_bytes(q->num));
	usedp = uva_to_host(b, q->addr.used, vu_virtq_used_bytes(q->num));
	if (desc == NULL || avail == NULL || usedp == NULL)
		return -EFAULT;
	r = vu_virtq_init(&q->vq, &b->mem, q->num, desc, avail, usedp, last);
	if (r < 0)
		return -EFAULT;
	q->vq.used_idx = used;
	q->vq.in_flight = in_flight;
	q->vq.call_fd = q->call_fd;
	q->vq.event_idx = b->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	return 0;
}

/* ---- replies ---- */

static int
send_reply(struct vu_backend *b, struct vu_msg *reply)
{
	return vu_msg_send(b->conn_fd, reply);
}

static int
reply_u64(struct vu_backend *b, const struct vu_msg *req, uint64_t v)
{
	struct vu_msg reply;

	vu_msg_init(&reply, 0, 0, 0);
	vu_msg_make_reply(&reply, req, 8);
	reply.payload.u64 = v;
	return send_reply(b, &reply);
}

/* The REPLY_ACK answer to a request without its own reply. */
static int
ack(struct vu_backend *b, const struct vu_msg *req, int result)
{
	if (!(req->hdr.flags & VU_FLAG_NEED_REPLY) || !has_protocol(b, VU_PROTOCOL_F_REPLY_ACK))
		return 0;
	return reply_u64(b, req, result < 0 ? 1 : 0);
}

/* ---- queues ---- */

static void
queue_process(struct vu_backend *b, unsigned i)
{
	struct queue *q = &b->queues[i];

	while (q->running && q->enabled && b->pending_error == 0) {
		struct vu_elem *elem;
		int r = vu_virtq_pop(&q->vq, &elem);

		if (r == 0)
			return;
		if (r < 0) {
			b->pending_error = r == -ENOMEM ? -ENOMEM : -EIO;
			b->pending_why =
				r == -ENOMEM ? "out of memory" : vu_virtq_error_str(q->vq.broken);
			if (q->err_fd >= 0) {
				uint64_t one = 1;
				ssize_t n _unused_ = write(q->err_fd, &one, sizeof(one));
			}
			return;
		}
		elem->queue = i;
		elem->generation = q->generation;
		b->dev.handle(b->data, i, elem);
	}
}

/* Starts processing if the ring has everything it needs. */
static int
queue_maybe_start(struct vu_backend *b, unsigned i)
{
	struct queue *q = &b->queues[i];
	int r;

	if (q->running || !q->kicked_set || !q->enabled || !q->have_addr || q->num == 0 ||
	    b->n_maps == 0)
		return 0;
	memset(&q->vq, 0, sizeof(q->vq));
	r = queue_map_rings(b, i);
	if (r < 0)
		return r;
	q->running = true;
	q->generation = ++b->next_generation;
	if (b->dev.queue_start)
		b->dev.queue_start(b->data, i);
	queue_process(b, i);
	return 0;
}

int
vu_backend_complete(struct vu_backend *b, struct vu_elem *elem, uint32_t written)
{
	struct queue *q;
	int r;

	if (b == NULL || elem == NULL) {
		vu_elem_free(elem);
		return -EINVAL;
	}
	if (elem->queue >= b->dev.n_queues || b->conn_fd < 0) {
		vu_elem_free(elem);
		return -ESTALE;
	}
	q = &b->queues[elem->queue];
	if (!q->running || q->generation != elem->generation) {
		vu_elem_free(elem);
		return -ESTALE;
	}
	r = vu_virtq_push(&q->vq, elem, written);
	if (r < 0) {
		b->pending_error = -EIO;
		b->pending_why = vu_virtq_error_str(q->vq.broken);
		return r;
	}
	vu_virtq_notify(&q->vq);
	return 0;
}

/* ---- requests ---- */

static int
handle_mem_table(struct vu_backend *b, struct vu_msg *msg)
{
	const struct vu_mem_table *mt = &msg->payload.mem;
	struct mapping maps[VU_MAX_MEM_REGIONS];
	struct guest_mem mem;
	unsigned n = 0;
	int r = 0;

	guest_mem_init(&mem);
	for (; n < mt->n_regions; n++) {
		const struct vu_mem_region *reg = &mt->regions[n];
		struct stat st;
		uint64_t end = reg->mmap_offset + reg->size; /* validated: no overflow */
		void *p;

		if (fstat(msg->fds[n], &st) < 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size < end) {
			r = -EBADMSG;
			break;
		}
		if (b->dev.require_sealed_memory) {
			int seals = fcntl(msg->fds[n], F_GET_SEALS);
			if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
				r = -EBADMSG;
				break;
			}
		}
		p = mmap(NULL, (size_t)end, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			 msg->fds[n], 0);
		if (p == MAP_FAILED) {
			r = -EBADMSG;
			break;
		}
		maps[n] = (struct mapping){
			.base = p,
			.len = (size_t)end,
			.uaddr = reg->uaddr,
			.size = reg->size,
			.host = (uint8_t *)p + reg->mmap_offset,
			.fd = msg->fds[n],
		};
		msg->fds[n] = -1;
		r = guest_mem_add_region_fd(&mem, reg->gpa, reg->size, maps[n].host, maps[n].fd,
					    reg->mmap_offset);
		if (r < 0) {
			n++;
			r = -EBADMSG;
			break;
		}
	}
	vu_msg_close_fds(msg);
	if (r >= 0)
		r = retire_memory(b);
	if (r < 0) {
		for (unsigned i = 0; i < n; i++) {
			munmap(maps[i].base, maps[i].len);
			safe_close(maps[i].fd);
		}
		return r;
	}
	memcpy(b->maps, maps, sizeof(maps[0]) * n);
	b->n_maps = n;
	b->mem = mem;
	/* Rings already running follow the new table (QEMU resends it on hotplug). */
	for (unsigned i = 0; i < b->dev.n_queues; i++) {
		if (b->queues[i].running && queue_map_rings(b, i) < 0)
			return -EFAULT;
	}
	if (b->dev.mem_table_changed)
		b->dev.mem_table_changed(b->data);
	return 0;
}

static struct queue *
msg_queue(struct vu_backend *b, uint32_t index)
{
	return index < b->dev.n_queues ? &b->queues[index] : NULL;
}

static int
handle_vring_fd(struct vu_backend *b, struct vu_msg *msg)
{
	unsigned index = msg->payload.u64 & VU_VRING_IDX_MASK;
	struct queue *q = msg_queue(b, index);
	int fd = -1;

	if (q == NULL)
		return -EBADMSG;
	if (msg->n_fds == 1) {
		fd = msg->fds[0];
		msg->fds[0] = -1;
		msg->n_fds = 0;
		if (!is_eventfd(fd) || set_nonblock(fd) < 0) {
			close(fd);
			return -EBADMSG;
		}
	}
	if (msg->hdr.request == VU_REQ_SET_VRING_KICK) {
		queue_stop(b, index);
		epoll_del(b, q->kick_fd);
		safe_close(q->kick_fd);
		q->kick_fd = fd;
		if (fd >= 0 && epoll_add(b, fd, TAG_KICK + index) < 0) {
			q->kick_fd = safe_close(fd);
			return -EBADMSG;
		}
		q->kicked_set = true;
		/* Without PROTOCOL_FEATURES a started ring is enabled. */
		if (!(b->features & (1ull << VU_F_PROTOCOL_FEATURES)))
			q->enabled = true;
		return queue_maybe_start(b, index) < 0 ? -EBADMSG : 0;
	}
	if (msg->hdr.request == VU_REQ_SET_VRING_CALL) {
		safe_close(q->call_fd);
		q->call_fd = fd;
		q->vq.call_fd = fd;
		return 0;
	}
	safe_close(q->err_fd);
	q->err_fd = fd;
	return 0;
}

static int
handle_config(struct vu_backend *b, struct vu_msg *msg)
{
	struct vu_config *c = &msg->payload.config;
	bool get = msg->hdr.request == VU_REQ_GET_CONFIG;
	int r = -EINVAL;

	if (!has_protocol(b, VU_PROTOCOL_F_CONFIG))
		return -EBADMSG;
	if (c->size > 0 && c->offset + c->size <= b->dev.config_size) {
		if (get)
			r = b->dev.get_config(b->data, c->offset, c->data, c->size);
		else if (b->dev.set_config)
			r = b->dev.set_config(b->data, c->offset, c->data, c->size);
		else
			r = -EPERM;
	}
	if (get) {
		struct vu_msg reply = *msg;
		/* A failed GET_CONFIG answers with an empty payload. */
		vu_msg_make_reply(&reply, msg, r < 0 ? 0 : msg->hdr.size);
		return send_reply(b, &reply);
	}
	return ack(b, msg, r);
}

/* Returns < 0 to end the connection (-EBADMSG for a protocol error). */
static int
handle_request(struct vu_backend *b, struct vu_msg *msg)
{
	struct queue *q;
	int r;

	r = vu_msg_validate_request(msg, VU_CHANNEL_FRONTEND);
	if (r == -EOPNOTSUPP) {
		/* Well-formed but not ours: refuse it, keep the connection. */
		vu_msg_close_fds(msg);
		return ack(b, msg, -EOPNOTSUPP);
	}
	if (r < 0)
		return r;

	switch ((enum vu_request)msg->hdr.request) {
	case VU_REQ_GET_FEATURES:
		return reply_u64(b, msg, offered_features(b));
	case VU_REQ_SET_FEATURES:
		if (msg->payload.u64 & ~offered_features(b))
			return -EBADMSG;
		b->features = msg->payload.u64;
		b->features_set = true;
		r = b->dev.set_features ? b->dev.set_features(b->data, b->features) : 0;
		return ack(b, msg, r);
	case VU_REQ_GET_PROTOCOL_FEATURES:
		return reply_u64(b, msg, offered_protocol_features(b));
	case VU_REQ_SET_PROTOCOL_FEATURES:
		if (msg->payload.u64 & ~offered_protocol_features(b))
			return -EBADMSG;
		b->protocol_features = msg->payload.u64;
		return ack(b, msg, 0);
	case VU_REQ_SET_OWNER:
		return ack(b, msg, 0);
	case VU_REQ_RESET_OWNER:
		device_reset(b);
		return ack(b, msg, 0);
	case VU_REQ_GET_QUEUE_NUM:
		return reply_u64(b, msg, b->dev.n_queues);
	case VU_REQ_SET_MEM_TABLE:
		r = handle_mem_table(b, msg);
		if (r < 0)
			return r;
		return ack(b, msg, 0);
	case VU_REQ_SET_VRING_NUM:
		q = msg_queue(b, msg->payload.state.index);
		if (q == NULL || q->running || !vu_virtq_size_valid(msg->payload.state.num) ||
		    msg->payload.state.num > b->dev.max_queue_size)
			return -EBADMSG;
		q->num = msg->payload.state.num;
		return ack(b, msg, 0);
	case VU_REQ_SET_VRING_ADDR:
		q = msg_queue(b, msg->payload.addr.index);
		if (q == NULL || msg->payload.addr.flags & ~1u)
			return -EBADMSG;
		q->addr = msg->payload.addr;
		q->have_addr = true;
		if (q->running && queue_map_rings(b, msg->payload.addr.index) < 0)
			return -EBADMSG;
		return ack(b, msg, 0);
	case VU_REQ_SET_VRING_BASE:
		q = msg_queue(b, msg->payload.state.index);
		if (q == NULL || q->running || msg->payload.state.num > UINT16_MAX)
			return -EBADMSG;
		q->base = (uint16_t)msg->payload.state.num;
		return ack(b, msg, 0);
	case VU_REQ_GET_VRING_BASE: {
		struct vu_msg reply = *msg;
		unsigned index = msg->payload.state.index;

		q = msg_queue(b, index);
		if (q == NULL)
			return -EBADMSG;
		reply.payload.state.num = q->running ? q->vq.last_avail_idx : q->base;
		queue_stop(b, index);
		q->base = (uint16_t)reply.payload.state.num;
		q->kicked_set = false;
		epoll_del(b, q->kick_fd);
		q->kick_fd = safe_close(q->kick_fd);
		q->call_fd = safe_close(q->call_fd);
		memset(&q->vq, 0, sizeof(q->vq));
		vu_msg_make_reply(&reply, msg, sizeof(struct vu_vring_state));
		return send_reply(b, &reply);
	}
	case VU_REQ_SET_VRING_KICK:
	case VU_REQ_SET_VRING_CALL:
	case VU_REQ_SET_VRING_ERR:
		r = handle_vring_fd(b, msg);
		if (r < 0)
			return r;
		return ack(b, msg, 0);
	case VU_REQ_SET_VRING_ENABLE: {
		unsigned index = msg->payload.state.index;

		q = msg_queue(b, index);
		if (q == NULL || !(b->features & (1ull << VU_F_PROTOCOL_FEATURES)))
			return -EBADMSG;
		/* Disabling only pauses popping: requests in flight still complete. */
		q->enabled = msg->payload.state.num == 1;
		if (q->enabled && q->running)
			queue_process(b, index);
		else if (q->enabled && queue_maybe_start(b, index) < 0)
			return -EBADMSG;
		return ack(b, msg, 0);
	}
	case VU_REQ_SET_BACKEND_REQ_FD:
		if (!has_protocol(b, VU_PROTOCOL_F_BACKEND_REQ))
			return -EBADMSG;
		safe_close(b->backend_fd);
		b->backend_fd = msg->fds[0];
		msg->fds[0] = -1;
		msg->n_fds = 0;
		if (set_nonblock(b->backend_fd) < 0)
			return -EBADMSG;
		return ack(b, msg, 0);
	case VU_REQ_GET_CONFIG:
	case VU_REQ_SET_CONFIG:
		return handle_config(b, msg);
	case VU_REQ_GPU_SET_SOCKET: {
		int fd = msg->fds[0];

		msg->fds[0] = -1;
		msg->n_fds = 0;
		if (b->dev.gpu_set_socket == NULL) {
			close(fd);
			return ack(b, msg, -EOPNOTSUPP);
		}
		return ack(b, msg, b->dev.gpu_set_socket(b->data, fd));
	}
	case VU_REQ_GET_SHMEM_CONFIG: {
		struct vu_msg reply;

		if (!has_protocol(b, VU_PROTOCOL_F_SHMEM))
			return -EBADMSG;
		vu_msg_init(&reply, 0, 0, 0);
		vu_msg_make_reply(&reply, msg, sizeof(struct vu_shmem_config));
		reply.payload.shmem_config.n_regions = b->dev.n_shmem;
		memcpy(reply.payload.shmem_config.sizes, b->shmem_sizes,
		       sizeof(uint64_t) * b->dev.n_shmem);
		return send_reply(b, &reply);
	}
	case VU_REQ_NONE:
	case VU_REQ_SET_LOG_BASE:
	case VU_REQ_SET_LOG_FD:
	case VU_REQ_GET_SHARED_OBJECT:
		break;
	}
	return -EBADMSG;
}

/* ---- dispatch ---- */

static int
on_listen(struct vu_backend *b)
{
	int fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return 0;
		return negative_errno();
	}
	return start_connection(b, fd);
}

static const char *
error_why(int r)
{
	switch (r) {
	case -EBADMSG:
		return "malformed message";
	case -EMSGSIZE:
		return "message too large";
	case -ETIMEDOUT:
		return "message incomplete";
	case -EFAULT:
		return "ring outside guest memory";
	default:
		return "connection error";
	}
}

static void
on_conn(struct vu_backend *b)
{
	/* A bounded batch per wake-up, so kicks get their turn. */
	for (unsigned n = 0; n < 64 && b->conn_fd >= 0; n++) {
		struct vu_msg msg;
		int r = vu_msg_recv(b->conn_fd, VU_BACKEND_TIMEOUT_MS, &msg);

		if (r == -EAGAIN)
			return;
		if (r == -ECONNRESET) {
			end_connection(b, 0, "frontend hung up");
			return;
		}
		if (r < 0) {
			end_connection(b, r, error_why(r));
			return;
		}
		r = handle_request(b, &msg);
		vu_msg_close_fds(&msg);
		if (r < 0) {
			end_connection(b, r == -EPIPE ? 0 : r, error_why(r));
			return;
		}
		if (b->pending_error) {
			end_connection(b, b->pending_error, b->pending_why);
			return;
		}
	}
}

static void
on_kick(struct vu_backend *b, unsigned i)
{
	struct queue *q = &b->queues[i];
	uint64_t v;

	if (q->kick_fd < 0)
		return;
	while (read(q->kick_fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	queue_process(b, i);
	if (b->pending_error)
		end_connection(b, b->pending_error, b->pending_why);
}

int
vu_backend_dispatch(struct vu_backend *b)
{
	struct epoll_event ev[16];
	int n;

	if (b == NULL)
		return -EINVAL;
	do
		n = epoll_wait(b->epoll_fd, ev, ARRAY_SIZE(ev), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	for (int i = 0; i < n; i++) {
		uint64_t tag = ev[i].data.u64;

		if (tag == TAG_STOP) {
			uint64_t v;
			ssize_t r _unused_ = read(b->stop_fd, &v, sizeof(v));
			b->stopped = true;
		} else if (tag == TAG_LISTEN) {
			int r = on_listen(b);
			if (r < 0)
				return r;
		} else if (tag == TAG_CONN) {
			on_conn(b);
		} else if (tag >= TAG_WATCH && tag < TAG_WATCH + VU_BACKEND_MAX_WATCHES) {
			struct watch *w = &b->watches[tag - TAG_WATCH];
			if (w->fd >= 0)
				w->fn(w->data, w->fd);
			if (b->pending_error)
				end_connection(b, b->pending_error, b->pending_why);
		} else if (tag >= TAG_KICK && tag < TAG_KICK + b->dev.n_queues) {
			/* A kick fd may have been replaced or the connection ended meanwhile. */
			if (b->conn_fd >= 0)
				on_kick(b, (unsigned)(tag - TAG_KICK));
		}
	}
	if (b->stopped) {
		b->stopped = false;
		return -ESHUTDOWN;
	}
	if (b->adopted_gone)
		return -ECONNRESET;
	return 0;
}

int
vu_backend_run(struct vu_backend *b)
{
	for (;;) {
		struct epoll_event ev;
		int r;

		r = epoll_wait(b->epoll_fd, &ev, 1, -1);
		if (r < 0 && errno != EINTR)
			return negative_errno();
		r = vu_backend_dispatch(b);
		if (r == -ESHUTDOWN)
			return 0;
		if (r < 0)
			return r;
	}
}

/* ---- backend channel ---- */

static int
backend_request(struct vu_backend *b, struct vu_msg *msg)
{
	bool want_ack = has_protocol(b, VU_PROTOCOL_F_REPLY_ACK);
	struct vu_msg reply;
	int r;

	if (b->conn_fd < 0 || b->backend_fd < 0)
		return -ENOTCONN;
	if (want_ack)
		msg->hdr.flags |= VU_FLAG_NEED_REPLY;
	r = vu_msg_send(b->backend_fd, msg);
	if (r < 0 || !want_ack)
		return r;
	for (;;) {
		r = vu_msg_recv(b->backend_fd, VU_BACKEND_TIMEOUT_MS, &reply);
		if (r == -EAGAIN) {
			struct pollfd p = {.fd = b->backend_fd, .events = POLLIN};
			r = poll(&p, 1, VU_BACKEND_TIMEOUT_MS);
			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0 && errno != EINTR)
				return negative_errno();
			continue;
		}
		if (r < 0)
			return r;
		break;
	}
	r = vu_msg_validate_reply(&reply, msg->hdr.request, true, 0);
	vu_msg_close_fds(&reply);
	if (r < 0)
		return r;
	return reply.payload.u64 == 0 ? 0 : -EIO;
}

int
vu_backend_shmem_map(struct vu_backend *b, uint8_t shmid, uint64_t shm_offset, int fd,
		     uint64_t fd_offset, uint64_t len, bool writable)
{
	struct vu_msg msg;
	uint64_t end;

	if (b == NULL || fd < 0 || len == 0 || __builtin_add_overflow(fd_offset, len, &end))
		return -EINVAL;
	if (!has_protocol(b, VU_PROTOCOL_F_SHMEM))
		return b->conn_fd < 0 ? -ENOTCONN : -EOPNOTSUPP;
	if (shmid >= b->dev.n_shmem || shm_offset > b->shmem_sizes[shmid] ||
	    len > b->shmem_sizes[shmid] - shm_offset)
		return -EINVAL;
	vu_msg_init(&msg, VU_BREQ_SHMEM_MAP, 0, sizeof(struct vu_shmem_map));
	msg.payload.shmem_map = (struct vu_shmem_map){
		.shmid = shmid,
		.fd_offset = fd_offset,
		.shm_offset = shm_offset,
		.len = len,
		.flags = writable ? VU_SHMEM_MAP_RW : 0,
	};
	msg.fds[0] = fd;
	msg.n_fds = 1;
	return backend_request(b, &msg);
}

int
vu_backend_shmem_unmap(struct vu_backend *b, uint8_t shmid, uint64_t shm_offset, uint64_t len)
{
	struct vu_msg msg;

	if (b == NULL || len == 0)
		return -EINVAL;
	if (!has_protocol(b, VU_PROTOCOL_F_SHMEM))
		return b->conn_fd < 0 ? -ENOTCONN : -EOPNOTSUPP;
	if (shmid >= b->dev.n_shmem || shm_offset > b->shmem_sizes[shmid] ||
	    len > b->shmem_sizes[shmid] - shm_offset)
		return -EINVAL;
	vu_msg_init(&msg, VU_BREQ_SHMEM_UNMAP, 0, sizeof(struct vu_shmem_map));
	msg.payload.shmem_map = (struct vu_shmem_map){
		.shmid = shmid,
		.shm_offset = shm_offset,
		.len = len,
	};
	return backend_request(b, &msg);
}

int
vu_backend_config_changed(struct vu_backend *b)
{
	struct vu_msg msg;

	if (b == NULL)
		return -EINVAL;
	if (!has_protocol(b, VU_PROTOCOL_F_CONFIG))
		return b->conn_fd < 0 ? -ENOTCONN : -EOPNOTSUPP;
	vu_msg_init(&msg, VU_BREQ_CONFIG_CHANGE_MSG, 0, 0);
	return backend_request(b, &msg);
}

static int
shared_object(struct vu_backend *b, uint32_t request, const uint8_t uuid[16])
{
	struct vu_msg msg;

	if (b == NULL || uuid == NULL)
		return -EINVAL;
	if (!has_protocol(b, VU_PROTOCOL_F_SHARED_OBJECT))
		return b->conn_fd < 0 ? -ENOTCONN : -EOPNOTSUPP;
	vu_msg_init(&msg, request, 0, sizeof(struct vu_shared_object));
	memcpy(msg.payload.object.uuid, uuid, 16);
	return backend_request(b, &msg);
}

int
vu_backend_shared_object_add(struct vu_backend *b, const uint8_t uuid[16])
{
	return shared_object(b, VU_BREQ_SHARED_OBJECT_ADD, uuid);
}

int
vu_backend_shared_object_remove(struct vu_backend *b, const uint8_t uuid[16])
{
	return shared_object(b, VU_BREQ_SHARED_OBJECT_REMOVE, uuid);
}
