/* SPDX-License-Identifier: MIT */
#include "protocol.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core.h"

/* The wire layouts are the specification: pin every size and every offset. */
static_assert(sizeof(struct cb_msg_header) == 16, "header");
static_assert(offsetof(struct cb_msg_header, size) == 8, "header.size");
static_assert(sizeof(struct cb_wire_info) == 80, "wire info");
static_assert(offsetof(struct cb_wire_info, modifier) == 16, "wire info.modifier");
static_assert(offsetof(struct cb_wire_info, offsets) == 24, "wire info.offsets");
static_assert(offsetof(struct cb_wire_info, strides) == 40, "wire info.strides");
static_assert(offsetof(struct cb_wire_info, flags) == 56, "wire info.flags");
static_assert(offsetof(struct cb_wire_info, size) == 72, "wire info.size");
static_assert(sizeof(struct cb_msg_hello) == 96, "hello");
static_assert(offsetof(struct cb_msg_hello, domain) == 32, "hello.domain");
static_assert(sizeof(struct cb_msg_uuid) == 32, "uuid request");
static_assert(sizeof(struct cb_msg_export) == 112, "export");
static_assert(offsetof(struct cb_msg_export, info) == 32, "export.info");
static_assert(sizeof(struct cb_msg_reply) == 24, "reply");
static_assert(sizeof(struct cb_reply_hello) == 16, "hello reply");
static_assert(sizeof(struct cb_reply_export) == 16, "export reply");
static_assert(sizeof(struct cb_reply_lookup) == 80, "lookup reply");
static_assert(sizeof(struct cb_reply_list) == 8, "list reply");
static_assert(sizeof(struct cb_reply_stats) == 64, "stats reply");
static_assert(sizeof(struct cb_msg_list_entry) == 192, "list entry");
static_assert(offsetof(struct cb_msg_list_entry, domain) == 128, "list entry.domain");
static_assert(sizeof(struct cb_msg_event_removed) == 40, "removed event");

static bool
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0)
			return false;
	}
	return true;
}

/* A NUL-terminated, NUL-padded valid domain name in a fixed field. */
static bool
domain_field_valid(const char field[CROSSBUF_DOMAIN_SIZE])
{
	size_t len = strnlen(field, CROSSBUF_DOMAIN_SIZE);

	if (len == CROSSBUF_DOMAIN_SIZE || !all_zero(field + len, CROSSBUF_DOMAIN_SIZE - len))
		return false;
	return cb_domain_name_valid(field);
}

void
cb_wire_info_from(struct cb_wire_info *w, const struct crossbuf_buffer_info *info)
{
	memset(w, 0, sizeof(*w));
	w->width = info->width;
	w->height = info->height;
	w->fourcc = info->fourcc;
	w->num_planes = info->num_planes;
	w->modifier = info->modifier;
	for (unsigned i = 0; i < CROSSBUF_MAX_PLANES; i++) {
		w->offsets[i] = info->planes[i].offset;
		w->strides[i] = info->planes[i].stride;
	}
	w->flags = info->flags;
	w->device_kind = info->device_kind;
	w->resource_id = info->resource_id;
	w->fd_kind = info->fd_kind;
	w->size = info->size;
}

void
cb_wire_info_to(struct crossbuf_buffer_info *info, const struct cb_wire_info *w)
{
	memset(info, 0, sizeof(*info));
	info->width = w->width;
	info->height = w->height;
	info->fourcc = w->fourcc;
	info->num_planes = w->num_planes;
	info->modifier = w->modifier;
	for (unsigned i = 0; i < CROSSBUF_MAX_PLANES; i++) {
		info->planes[i].offset = w->offsets[i];
		info->planes[i].stride = w->strides[i];
	}
	info->flags = w->flags;
	info->device_kind = w->device_kind;
	info->resource_id = w->resource_id;
	info->fd_kind = w->fd_kind;
	info->size = w->size;
}

/* The exact size of each request type, and how many fds it carries. */
static int
request_shape(uint32_t type, size_t *ret_size, unsigned *ret_fds)
{
	switch (type) {
	case CB_MSG_HELLO:
		*ret_size = sizeof(struct cb_msg_hello);
		*ret_fds = 0;
		return 0;
	case CB_MSG_EXPORT:
		*ret_size = sizeof(struct cb_msg_export);
		*ret_fds = 1;
		return 0;
	case CB_MSG_LOOKUP:
	case CB_MSG_REMOVE:
	case CB_MSG_WATCH:
	case CB_MSG_UNWATCH:
		*ret_size = sizeof(struct cb_msg_uuid);
		*ret_fds = 0;
		return 0;
	case CB_MSG_LIST:
	case CB_MSG_STATS:
		*ret_size = sizeof(struct cb_msg_header);
		*ret_fds = 0;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

int
cb_request_decode(const void *buf, size_t len, unsigned n_fds, struct cb_request_msg *ret_msg,
		  uint32_t *ret_serial, uint32_t *ret_type)
{
	struct cb_msg_header hdr;
	struct cb_request_msg msg;
	size_t want_size;
	unsigned want_fds;
	int r;

	*ret_serial = 0;
	*ret_type = 0;
	if (len > CB_MSG_MAX_SIZE)
		return -EMSGSIZE;
	if (len < sizeof(hdr))
		return -EBADMSG;
	memcpy(&hdr, buf, sizeof(hdr));
	*ret_serial = hdr.serial;
	*ret_type = hdr.type;
	if (hdr.size != len || hdr.reserved != 0)
		return -EBADMSG;
	r = request_shape(hdr.type, &want_size, &want_fds);
	if (r < 0)
		return r;
	if (len != want_size)
		return -EBADMSG;
	if (n_fds != want_fds)
		return -EBADF;

	memset(&msg, 0, sizeof(msg));
	msg.type = hdr.type;
	msg.serial = hdr.serial;
	switch ((enum cb_msg_type)hdr.type) {
	case CB_MSG_HELLO: {
		struct cb_msg_hello m;
		memcpy(&m, buf, sizeof(m));
		if (m.reserved != 0 || !domain_field_valid(m.domain))
			return -EBADMSG;
		if (m.version != CB_PROTOCOL_VERSION)
			return -EPROTONOSUPPORT;
		msg.hello.version = m.version;
		msg.hello.device_kind = m.device_kind;
		msg.hello.rights = m.rights;
		memcpy(msg.hello.domain, m.domain, sizeof(m.domain));
		break;
	}
	case CB_MSG_EXPORT: {
		struct cb_msg_export m;
		memcpy(&m, buf, sizeof(m));
		if (m.info.fd_kind != 0 || m.info.size != 0)
			return -EBADMSG;
		msg.export.has_uuid = !all_zero(m.uuid, sizeof(m.uuid));
		memcpy(msg.export.uuid, m.uuid, sizeof(m.uuid));
		cb_wire_info_to(&msg.export.info, &m.info);
		break;
	}
	case CB_MSG_LOOKUP:
	case CB_MSG_REMOVE:
	case CB_MSG_WATCH:
	case CB_MSG_UNWATCH: {
		struct cb_msg_uuid m;
		memcpy(&m, buf, sizeof(m));
		memcpy(msg.uuid, m.uuid, sizeof(m.uuid));
		break;
	}
	case CB_MSG_LIST:
	case CB_MSG_STATS:
		break;
	case CB_MSG_REPLY:
	case CB_MSG_LIST_ENTRY:
	case CB_MSG_EVENT_REMOVED:
		/* request_shape() refused these already */
		return -EOPNOTSUPP;
	}
	*ret_msg = msg;
	return 0;
}

size_t
cb_reply_encode(void *buf, uint32_t serial, uint32_t request, int status, const void *result,
		size_t result_size)
{
	struct cb_msg_reply reply = {
		.hdr = { .type = CB_MSG_REPLY, .serial = serial },
		.status = status,
		.request = request,
	};

	assert(result_size <= CB_REPLY_MAX_SIZE - sizeof(reply));
	if (status < 0)
		result_size = 0;
	reply.hdr.size = (uint32_t)(sizeof(reply) + result_size);
	memcpy(buf, &reply, sizeof(reply));
	if (result_size > 0)
		memcpy((uint8_t *)buf + sizeof(reply), result, result_size);
	return reply.hdr.size;
}

const char *
cb_msg_type_name(uint32_t type)
{
	switch ((enum cb_msg_type)type) {
	case CB_MSG_HELLO:
		return "HELLO";
	case CB_MSG_EXPORT:
		return "EXPORT";
	case CB_MSG_LOOKUP:
		return "LOOKUP";
	case CB_MSG_REMOVE:
		return "REMOVE";
	case CB_MSG_WATCH:
		return "WATCH";
	case CB_MSG_UNWATCH:
		return "UNWATCH";
	case CB_MSG_LIST:
		return "LIST";
	case CB_MSG_STATS:
		return "STATS";
	case CB_MSG_REPLY:
		return "REPLY";
	case CB_MSG_LIST_ENTRY:
		return "LIST_ENTRY";
	case CB_MSG_EVENT_REMOVED:
		return "EVENT_REMOVED";
	}
	return "unknown";
}
