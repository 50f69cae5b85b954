/* SPDX-License-Identifier: MIT */
/*
 * The crossbufd wire protocol, version 1 (docs/protocol.md is the specification).
 *
 * One message per SOCK_SEQPACKET packet, in host byte order (the socket is local). Every
 * message starts with struct cb_msg_header; its size field equals the packet's length. A
 * message carries at most one fd (SCM_RIGHTS): EXPORT carries exactly one, a successful
 * LOOKUP reply carries exactly one, nothing else carries any. All structs are fixed-width
 * and explicitly padded; reserved fields are zero and checked.
 */
#pragma once

#include <crossbuf/crossbuf.h>
#include <stddef.h>
#include <stdint.h>

#define CB_PROTOCOL_VERSION 1
#define CB_MSG_MAX_SIZE	    4096 /* bytes; larger packets are refused */

enum cb_msg_type {
	/* client -> broker requests; each is answered by one REPLY with the same serial */
	CB_MSG_HELLO = 1,
	CB_MSG_EXPORT = 2,
	CB_MSG_LOOKUP = 3,
	CB_MSG_REMOVE = 4,
	CB_MSG_WATCH = 5,
	CB_MSG_UNWATCH = 6,
	CB_MSG_LIST = 7,
	CB_MSG_STATS = 8,
	/* broker -> client */
	CB_MSG_REPLY = 0x100,	     /* the answer to a request */
	CB_MSG_LIST_ENTRY = 0x101,   /* one entry of a LIST answer, sent before its REPLY */
	CB_MSG_EVENT_REMOVED = 0x200, /* a watched entry went away (serial 0) */
};

struct cb_msg_header {
	uint32_t type;	  /* enum cb_msg_type */
	uint32_t serial;  /* chosen by the client, echoed in the reply; 0 in events */
	uint32_t size;	  /* bytes in the message, header included */
	uint32_t reserved;
};

/* The layout part of struct crossbuf_buffer_info, on the wire. */
struct cb_wire_info {
	uint32_t width;
	uint32_t height;
	uint32_t fourcc;
	uint32_t num_planes;
	uint64_t modifier;
	uint32_t offsets[CROSSBUF_MAX_PLANES];
	uint32_t strides[CROSSBUF_MAX_PLANES];
	uint32_t flags;
	uint32_t device_kind;
	uint32_t resource_id;
	uint32_t fd_kind; /* set by the broker in replies; zero in EXPORT */
	uint64_t size;	  /* set by the broker in replies; zero in EXPORT */
};

struct cb_msg_hello {
	struct cb_msg_header hdr;
	uint32_t version; /* CB_PROTOCOL_VERSION */
	uint32_t device_kind;
	uint32_t rights; /* enum crossbuf_client_rights asked for */
	uint32_t reserved;
	char domain[CROSSBUF_DOMAIN_SIZE]; /* NUL-terminated, NUL-padded */
};

struct cb_msg_uuid {
	struct cb_msg_header hdr;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
}; /* LOOKUP, REMOVE, WATCH, UNWATCH */

struct cb_msg_export {
	struct cb_msg_header hdr;
	uint8_t uuid[CROSSBUF_UUID_SIZE]; /* all zero: the broker picks a random one */
	struct cb_wire_info info;
}; /* + 1 fd */

/* LIST and STATS are a bare header. */

struct cb_msg_reply {
	struct cb_msg_header hdr;
	int32_t status; /* 0 or a negative errno */
	uint32_t request; /* the enum cb_msg_type answered */
}; /* followed by the request's result when status is 0 */

struct cb_reply_hello {
	uint32_t version;
	uint32_t client_id;
	uint32_t rights; /* granted */
	uint32_t max_entries;
};

struct cb_reply_export {
	uint8_t uuid[CROSSBUF_UUID_SIZE];
};

struct cb_reply_lookup {
	struct cb_wire_info info;
}; /* + 1 fd */

struct cb_reply_list {
	uint32_t count; /* LIST_ENTRY messages sent before this reply */
	uint32_t reserved;
};

struct cb_reply_stats {
	uint64_t entries;
	uint64_t clients;
	uint64_t exports;
	uint64_t lookups;
	uint64_t removes;
	uint64_t refused;
	uint64_t watches;
	uint64_t reserved;
};

struct cb_msg_list_entry {
	struct cb_msg_header hdr;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	struct cb_wire_info info;
	uint32_t client_id;
	int32_t pid;
	uint32_t uid;
	uint32_t reserved;
	char domain[CROSSBUF_DOMAIN_SIZE];
};

struct cb_msg_event_removed {
	struct cb_msg_header hdr;
	uint8_t uuid[CROSSBUF_UUID_SIZE];
	uint32_t reason; /* enum crossbuf_removal_reason */
	uint32_t reserved;
};

/* Every result a reply can carry; its size bounds a reply. */
union cb_reply_result {
	struct cb_reply_hello hello;
	struct cb_reply_export export;
	struct cb_reply_lookup lookup;
	struct cb_reply_list list;
	struct cb_reply_stats stats;
};
#define CB_REPLY_MAX_SIZE (sizeof(struct cb_msg_reply) + sizeof(union cb_reply_result))

/* A request as the broker sees it once decoded and checked. */
struct cb_request_msg {
	enum cb_msg_type type;
	uint32_t serial;
	union {
		struct {
			uint32_t version;
			uint32_t device_kind;
			uint32_t rights;
			char domain[CROSSBUF_DOMAIN_SIZE];
		} hello;
		struct {
			uint8_t uuid[CROSSBUF_UUID_SIZE];
			int has_uuid;
			struct crossbuf_buffer_info info;
		} export;
		uint8_t uuid[CROSSBUF_UUID_SIZE]; /* LOOKUP, REMOVE, WATCH, UNWATCH */
	};
};

/*
 * Decodes a request packet of len bytes that came with n_fds fds. On failure returns a
 * negative errno to answer with and, if the header could be read, sets *ret_serial and
 * *ret_type for the error reply: -EBADMSG (truncated, size mismatch, reserved fields set,
 * a bad domain), -EMSGSIZE (over CB_MSG_MAX_SIZE), -EOPNOTSUPP (unknown type), -EBADF (an
 * EXPORT without exactly one fd, or fds on another request), -EPROTONOSUPPORT (version).
 */
int cb_request_decode(const void *buf, size_t len, unsigned n_fds, struct cb_request_msg *ret_msg,
		      uint32_t *ret_serial, uint32_t *ret_type);

/* Builds a reply in buf (at least CB_REPLY_MAX_SIZE bytes); returns its size. */
size_t cb_reply_encode(void *buf, uint32_t serial, uint32_t request, int status,
		       const void *result, size_t result_size);

void cb_wire_info_from(struct cb_wire_info *wire, const struct crossbuf_buffer_info *info);
void cb_wire_info_to(struct crossbuf_buffer_info *info, const struct cb_wire_info *wire);
const char *cb_msg_type_name(uint32_t type);
