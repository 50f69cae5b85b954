/* SPDX-License-Identifier: MIT */
/*
 * A vhost-user backend for one virtio device: the protocol, the memory table, the split
 * virtqueues and the backend channel, so that a device core only sees requests
 * (struct cb_request through struct vu_elem), config space and feature callbacks.
 *
 * Event loop: the backend is single-threaded. vu_backend_get_fd() is an epoll fd that is
 * readable whenever the backend has work (a frontend connecting, a message, a kick, a stop);
 * vu_backend_dispatch() does that work without blocking on the socket and runs the device
 * callbacks from inside. vu_backend_run() is a loop around both that returns after
 * vu_backend_stop(), which is async-signal-safe (call it from a SIGTERM handler). Every other
 * call must come from the thread that dispatches.
 *
 * One frontend at a time: on a listening socket the backend accepts a connection, serves it
 * until it ends (hang-up, RESET/malformed message, broken ring), tears everything of it down
 * (device callbacks queue_stop and reset, memory unmapped, fds closed) and accepts the next.
 * Nothing a frontend or a guest sends can crash or hang the backend: a malformed message or
 * ring ends the connection, reported through connection_ended.
 */
#pragma once

#include "guest-mem.h"
#include "iov.h"
#include "virtqueue.h"

#include <stdbool.h>
#include <stdint.h>

struct vu_backend;

/* The device behind the backend. Callbacks get data as given to vu_backend_new(). */
struct vu_backend_device {
	/* Device feature bits offered; the library adds VERSION_1, INDIRECT_DESC and
	 * PROTOCOL_FEATURES. */
	uint64_t features;
	unsigned n_queues;       /* 1..VU_MAX_QUEUES */
	unsigned max_queue_size; /* 0 means VU_VIRTQ_MAX_SIZE */
	uint32_t config_size;    /* bytes of config space, 0..VU_MAX_CONFIG_SIZE */
	unsigned n_shmem;        /* shared memory regions 0..n_shmem-1 */
	const uint64_t *shmem_sizes;
	/* Refuse guest memory fds without F_SEAL_SHRINK (QEMU's memory-backend-memfd seals by
	 * default). Without it, a frontend that shrinks its memory file under the mapping makes
	 * the backend take SIGBUS; files that cannot be sealed (hugetlbfs, /dev/shm) need it off.
	 */
	bool require_sealed_memory;

	/* The frontend acked features (all bits, library ones included). May be NULL. */
	int (*set_features)(void *data, uint64_t features);
	/* Reads/writes [offset, offset + len) of config space, within config_size. */
	int (*get_config)(void *data, uint32_t offset, void *buf, uint32_t len);
	int (*set_config)(void *data, uint32_t offset, const void *buf, uint32_t len);
	/* A queue began/stopped processing (SET_VRING_ENABLE 0 only pauses a started queue, it
	 * does not stop it). After queue_stop the device must not touch the
	 * buffers of elements it still holds from that queue (it may still pass them to
	 * vu_backend_complete(), which then just frees them). May be NULL. */
	void (*queue_start)(void *data, unsigned queue);
	void (*queue_stop)(void *data, unsigned queue);
	/* A request popped from queue. elem is taken: hand it back with vu_backend_complete(),
	 * now or later, from the dispatch thread. */
	void (*handle)(void *data, unsigned queue, struct vu_elem *elem);
	/* The device must return to its initial state: the connection ended or the frontend
	 * sent RESET_OWNER. Every queue has been stopped before. May be NULL. */
	void (*reset)(void *data);
	/* vhost-user-gpu's GPU_SET_SOCKET: fd (taken) is the display protocol socket. May be
	 * NULL: the request is then refused and the fd closed. */
	int (*gpu_set_socket)(void *data, int fd);
	/* A connection ended; error is 0 for a clean hang-up, else why (-EBADMSG for a
	 * malformed message, -EIO for a broken ring, ...), and why is a short text. May be NULL. */
	void (*connection_ended)(void *data, int error, const char *why);
	/* SET_MEM_TABLE replaced guest memory (vu_backend_guest_mem() is the new table; its
	 * regions carry their fd and offset): devices holding translated addresses redo them,
	 * e.g. gpu_device_guest_mem_changed(). May be NULL. */
	void (*mem_table_changed)(void *data);
};

/* How long a message that has begun may take to arrive, and a backend channel reply. */
#define VU_BACKEND_TIMEOUT_MS 5000

/* dev is copied (shmem_sizes too). -EINVAL for a bad device description. */
int vu_backend_new(const struct vu_backend_device *dev, void *data, struct vu_backend **ret);
/* Closes everything, unlinks the socket path it created. NULL is fine. Returns NULL. */
struct vu_backend *vu_backend_free(struct vu_backend *b);

/* Listens on a unix socket at path. A stale socket there is replaced; one that a process
 * still listens on is not (-EADDRINUSE). */
int vu_backend_listen(struct vu_backend *b, const char *path);
/* Serves an already connected socket (taken, even on failure; made non-blocking). When it
 * ends and the backend is not listening, vu_backend_dispatch() returns -ECONNRESET. */
int vu_backend_adopt(struct vu_backend *b, int fd);

/* The epoll fd to wait on (borrowed, lives as long as b). */
int vu_backend_get_fd(struct vu_backend *b);
/*
 * Adds fd (borrowed; keep it open until removed) to the backend's loop: fn runs from
 * dispatch when it is readable, e.g. an eventfd a worker thread signals when it finished
 * requests the device must complete. Up to VU_BACKEND_MAX_WATCHES. -EEXIST, -ENOSPC.
 */
#define VU_BACKEND_MAX_WATCHES 16
int vu_backend_add_watch(struct vu_backend *b, int fd, void (*fn)(void *data, int fd), void *data);
int vu_backend_remove_watch(struct vu_backend *b, int fd);

/* Does all pending work. 0, -ECONNRESET (see vu_backend_adopt()), -ESHUTDOWN after
 * vu_backend_stop(), or a fatal -errno (e.g. accept failing). */
int vu_backend_dispatch(struct vu_backend *b);
/* Dispatches until stopped (0) or a fatal error. */
int vu_backend_run(struct vu_backend *b);
/* Makes run()/dispatch() return. Async-signal-safe; callable from any thread. */
void vu_backend_stop(struct vu_backend *b);

bool vu_backend_connected(struct vu_backend *b);
/* Negotiated virtio features and protocol features of the current connection. */
uint64_t vu_backend_features(struct vu_backend *b);
uint64_t vu_backend_protocol_features(struct vu_backend *b);
/* Guest memory of the current connection (guest-physical; empty when not connected). */
const struct guest_mem *vu_backend_guest_mem(struct vu_backend *b);

/*
 * Hands a request back: written bytes go to the used ring and the driver is notified.
 * elem is taken. -ESTALE (elem just freed) if its queue stopped since it was popped.
 */
int vu_backend_complete(struct vu_backend *b, struct vu_elem *elem, uint32_t written);

/*
 * The backend channel. Each call sends one request and, when REPLY_ACK was negotiated,
 * waits up to VU_BACKEND_TIMEOUT_MS for the frontend's answer. -ENOTCONN without a
 * connection or backend channel, -EOPNOTSUPP unless the protocol feature was negotiated
 * (SHMEM, SHARED_OBJECT), -EIO if the frontend refused, -ETIMEDOUT.
 */
/* Maps [fd_offset, fd_offset + len) of fd (borrowed) at shm_offset of region shmid. */
int vu_backend_shmem_map(struct vu_backend *b, uint8_t shmid, uint64_t shm_offset, int fd,
			 uint64_t fd_offset, uint64_t len, bool writable);
int vu_backend_shmem_unmap(struct vu_backend *b, uint8_t shmid, uint64_t shm_offset, uint64_t len);
/* CONFIG_CHANGE_MSG: config space changed (e.g. virtio-gpu display events); needs CONFIG. */
int vu_backend_config_changed(struct vu_backend *b);
int vu_backend_shared_object_add(struct vu_backend *b, const uint8_t uuid[16]);
int vu_backend_shared_object_remove(struct vu_backend *b, const uint8_t uuid[16]);
