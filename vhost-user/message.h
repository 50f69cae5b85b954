/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user wire format (QEMU docs/interop/vhost-user.rst): the message header, every
 * payload crossbuf speaks, the validation of a received message against its request type, and
 * the socket I/O that carries a message with its fds.
 *
 * Everything here is pure parsing and encoding except vu_msg_recv()/vu_msg_send(). A message
 * that fails validation is a protocol error: the receiver ends the connection.
 *
 * All numbers are in the host's byte order, as the protocol says (little-endian here).
 */
#pragma once

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Requests the frontend sends to the backend. */
enum vu_request {
	VU_REQ_NONE = 0,
	VU_REQ_GET_FEATURES = 1,
	VU_REQ_SET_FEATURES = 2,
	VU_REQ_SET_OWNER = 3,
	VU_REQ_RESET_OWNER = 4,
	VU_REQ_SET_MEM_TABLE = 5,
	VU_REQ_SET_LOG_BASE = 6,
	VU_REQ_SET_LOG_FD = 7,
	VU_REQ_SET_VRING_NUM = 8,
	VU_REQ_SET_VRING_ADDR = 9,
	VU_REQ_SET_VRING_BASE = 10,
	VU_REQ_GET_VRING_BASE = 11,
	VU_REQ_SET_VRING_KICK = 12,
	VU_REQ_SET_VRING_CALL = 13,
	VU_REQ_SET_VRING_ERR = 14,
	VU_REQ_GET_PROTOCOL_FEATURES = 15,
	VU_REQ_SET_PROTOCOL_FEATURES = 16,
	VU_REQ_GET_QUEUE_NUM = 17,
	VU_REQ_SET_VRING_ENABLE = 18,
	VU_REQ_SET_BACKEND_REQ_FD = 21,
	VU_REQ_GET_CONFIG = 24,
	VU_REQ_SET_CONFIG = 25,
	VU_REQ_GPU_SET_SOCKET = 33, /* vhost-user-gpu: the display protocol socket */
	VU_REQ_GET_SHARED_OBJECT = 41,
	VU_REQ_GET_SHMEM_CONFIG = 44,
};

/* Requests the backend sends to the frontend on the backend channel. */
enum vu_backend_request {
	VU_BREQ_NONE = 0,
	VU_BREQ_CONFIG_CHANGE_MSG = 2,
	VU_BREQ_SHARED_OBJECT_ADD = 6,
	VU_BREQ_SHARED_OBJECT_REMOVE = 7,
	VU_BREQ_SHARED_OBJECT_LOOKUP = 8,
	VU_BREQ_SHMEM_MAP = 9,
	VU_BREQ_SHMEM_UNMAP = 10,
};

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
enum vu_protocol_feature {
	VU_PROTOCOL_F_MQ = 0,
	VU_PROTOCOL_F_REPLY_ACK = 3,
	VU_PROTOCOL_F_BACKEND_REQ = 5,
	VU_PROTOCOL_F_CONFIG = 9,
	VU_PROTOCOL_F_SHARED_OBJECT = 18,
	VU_PROTOCOL_F_SHMEM = 20,
};

/* The virtio feature bit that says GET/SET_PROTOCOL_FEATURES exist. */
#define VU_F_PROTOCOL_FEATURES 30

#define VU_FLAG_VERSION      0x1u
#define VU_FLAG_VERSION_MASK 0x3u
#define VU_FLAG_REPLY        (1u << 2)
#define VU_FLAG_NEED_REPLY   (1u << 3)

/* vring index and "no fd" flag of SET_VRING_KICK/CALL/ERR's u64. */
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD     (1u << 8)

#define VU_MAX_MEM_REGIONS 8   /* the protocol's baseline, = GUEST_MEM_MAX_REGIONS */
#define VU_MAX_FDS         8   /* fds accepted with one message; more ends the connection */
#define VU_MAX_CONFIG_SIZE 256 /* virtio config space bytes */
#define VU_MAX_SHMEM       256 /* VIRTIO shared memory region ids */
#define VU_MAX_QUEUES      256 /* a vring index is 8 bits */

/* SHMEM_MAP flags. */
#define VU_SHMEM_MAP_RW 0x1u

struct vu_header {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes after the header */
};
static_assert(sizeof(struct vu_header) == 12, "vhost-user header");

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};
static_assert(sizeof(struct vu_vring_state) == 8, "vring state");

/* Ring addresses are in the frontend's virtual address space (the regions' userspace_addr). */
struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};
static_assert(sizeof(struct vu_vring_addr) == 40, "vring addr");

struct vu_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;       /* frontend virtual address */
	uint64_t mmap_offset; /* offset of the region in its fd */
};
static_assert(sizeof(struct vu_mem_region) == 32, "memory region");

struct vu_mem_table {
	uint32_t n_regions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MAX_MEM_REGIONS];
};
static_assert(sizeof(struct vu_mem_table) == 8 + 8 * 32, "memory table");

#define VU_CONFIG_HDR_SIZE 12u
struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VU_MAX_CONFIG_SIZE];
};
static_assert(offsetof(struct vu_config, data) == VU_CONFIG_HDR_SIZE, "config header");

/* SHMEM_MAP and SHMEM_UNMAP (the fd is attached to MAP only). */
struct vu_shmem_map {
	uint8_t shmid;
	uint8_t padding[7];
	uint64_t fd_offset;
	uint64_t shm_offset;
	uint64_t len;
	uint64_t flags;
};
static_assert(sizeof(struct vu_shmem_map) == 40, "shmem map");
static_assert(offsetof(struct vu_shmem_map, fd_offset) == 8, "shmem map fd_offset");

/* GET_SHMEM_CONFIG's reply: the size of region i is sizes[i], 0 if absent. */
struct vu_shmem_config {
	uint32_t n_regions;
	uint32_t padding;
	uint64_t sizes[VU_MAX_SHMEM];
};
static_assert(sizeof(struct vu_shmem_config) == 8 + 256 * 8, "shmem config");

struct vu_shared_object {
	uint8_t uuid[16];
};

union vu_payload {
	uint64_t u64;
	struct vu_vring_state state;
	struct vu_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_config config;
	struct vu_shmem_map shmem_map;
	struct vu_shmem_config shmem_config;
	struct vu_shared_object object;
	uint8_t bytes[1];
};

#define VU_MAX_PAYLOAD sizeof(union vu_payload)

/*
 * One message. fds are owned by the message once received (vu_msg_close_fds() closes the ones
 * still there; take one by setting its slot to -1).
 */
struct vu_msg {
	struct vu_header hdr;
	union vu_payload payload;
	int fds[VU_MAX_FDS];
	unsigned n_fds;
};

/* Which way a message travels, which decides the meaning of its request number. */
enum vu_channel {
	VU_CHANNEL_FRONTEND, /* frontend → backend requests, on the main socket */
	VU_CHANNEL_BACKEND,  /* backend → frontend requests, on the backend channel */
};

/* A message with no payload and no fds, for request on channel. */
void vu_msg_init(struct vu_msg *msg, uint32_t request, uint32_t flags, uint32_t size);

/*
 * Decodes header and payload from bytes (the fuzzable part of receiving): -EBADMSG when the
 * bytes are shorter than the header plus its size, -EMSGSIZE when the size exceeds
 * VU_MAX_PAYLOAD. Leaves msg->fds alone. Bytes beyond the message are ignored.
 */
int vu_msg_decode(const void *buf, size_t len, struct vu_msg *msg);

/*
 * Checks a received request against its type: version, flags, payload size, number of fds,
 * and the contents (counts, ranges, overflow) of every payload the library handles.
 * Returns 0, -EBADMSG for a malformed message, -EOPNOTSUPP for a well-formed request of a type
 * the library does not implement (the caller may answer it with a failed ack).
 */
int vu_msg_validate_request(const struct vu_msg *msg, enum vu_channel channel);

/*
 * Checks a reply to request: reply flag, version, the payload size that request's reply has
 * (reply_ack: a u64 ack), and no fds unless allow_fd. -EBADMSG otherwise.
 */
int vu_msg_validate_reply(const struct vu_msg *msg, uint32_t request, bool reply_ack,
			  unsigned max_fds);

/* Name of a request for logs, or NULL if unknown. */
const char *vu_request_name(uint32_t request, enum vu_channel channel);

/* Closes the message's fds (and forgets them). */
void vu_msg_close_fds(struct vu_msg *msg);

/*
 * Receives one message from a stream socket (borrowed): the header with its fds
 * (MSG_CMSG_CLOEXEC), then the payload, waiting up to timeout_ms for the rest of a message
 * once its first byte has arrived. Returns 0, -EAGAIN if nothing is there yet (non-blocking
 * sockets), -ECONNRESET on end of stream, -EBADMSG/-EMSGSIZE for a message that cannot be
 * read (too large, too many fds, truncated), -ETIMEDOUT, or another -errno. On failure no fd
 * is left open and ret_msg is untouched; on success its fds are new (the message owns them).
 */
int vu_msg_recv(int sock, int timeout_ms, struct vu_msg *ret_msg);

/* Sends header, payload (hdr.size bytes) and fds (borrowed). */
int vu_msg_send(int sock, const struct vu_msg *msg);

/* Fills msg as the reply to req with size bytes of payload (the payload is left alone). */
void vu_msg_make_reply(struct vu_msg *msg, const struct vu_msg *req, uint32_t size);
