/* SPDX-License-Identifier: MIT */
#include "message.h"

#include "macro.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
vu_msg_init(struct vu_msg *msg, uint32_t request, uint32_t flags, uint32_t size)
{
	memset(&msg->hdr, 0, sizeof(msg->hdr));
	msg->hdr.request = request;
	msg->hdr.flags = VU_FLAG_VERSION | flags;
	msg->hdr.size = size;
	memset(&msg->payload, 0, sizeof(msg->payload));
	msg->n_fds = 0;
	for (unsigned i = 0; i < VU_MAX_FDS; i++)
		msg->fds[i] = -1;
}

int
vu_msg_decode(const void *buf, size_t len, struct vu_msg *msg)
{
	struct vu_header hdr;

	if (len < sizeof(hdr))
		return -EBADMSG;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.size > VU_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (len - sizeof(hdr) < hdr.size)
		return -EBADMSG;
	msg->hdr = hdr;
	memset(&msg->payload, 0, sizeof(msg->payload));
	memcpy(&msg->payload, (const uint8_t *)buf + sizeof(hdr), hdr.size);
	return 0;
}

static int
expect(const struct vu_msg *msg, uint32_t size, unsigned n_fds)
{
	if (msg->hdr.size != size || msg->n_fds != n_fds)
		return -EBADMSG;
	return 0;
}

/* A u64 range [start, start + len) that does not wrap, len > 0. */
static bool
range_ok(uint64_t start, uint64_t len)
{
	uint64_t end;
	return len > 0 && !__builtin_add_overflow(start, len, &end);
}

static int
validate_mem_table(const struct vu_msg *msg)
{
	const struct vu_mem_table *mt = &msg->payload.mem;
	uint32_t n;

	if (msg->hdr.size < 8)
		return -EBADMSG;
	n = mt->n_regions;
	if (n == 0 || n > VU_MAX_MEM_REGIONS)
		return -EBADMSG;
	/* QEMU sends the whole table; a frontend may also send just the used regions. */
	if (msg->hdr.size != 8 + n * sizeof(struct vu_mem_region) &&
	    msg->hdr.size != sizeof(struct vu_mem_table))
		return -EBADMSG;
	if (msg->n_fds != n)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		const struct vu_mem_region *r = &mt->regions[i];
		uint64_t end;

		if (!range_ok(r->gpa, r->size) || !range_ok(r->uaddr, r->size) ||
		    __builtin_add_overflow(r->mmap_offset, r->size, &end) ||
		    end > (uint64_t)SIZE_MAX)
			return -EBADMSG;
		for (uint32_t j = 0; j < i; j++) {
			const struct vu_mem_region *o = &mt->regions[j];
			if (r->gpa < o->gpa + o->size && o->gpa < r->gpa + r->size)
				return -EBADMSG;
			if (r->uaddr < o->uaddr + o->size && o->uaddr < r->uaddr + r->size)
				return -EBADMSG;
		}
	}
	return 0;
}

static int
validate_config(const struct vu_msg *msg)
{
	const struct vu_config *c = &msg->payload.config;

	if (msg->hdr.size < VU_CONFIG_HDR_SIZE || msg->n_fds != 0)
		return -EBADMSG;
	if (c->size > VU_MAX_CONFIG_SIZE || c->offset > VU_MAX_CONFIG_SIZE ||
	    c->size + c->offset > VU_MAX_CONFIG_SIZE)
		return -EBADMSG;
	if (msg->hdr.size != VU_CONFIG_HDR_SIZE + c->size)
		return -EBADMSG;
	return 0;
}

static int
validate_vring_fd(const struct vu_msg *msg)
{
	uint64_t v = msg->payload.u64;

	if (msg->hdr.size != 8)
		return -EBADMSG;
	if (v & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD))
		return -EBADMSG;
	return expect(msg, 8, (v & VU_VRING_NOFD) ? 0 : 1);
}

static int
validate_shmem_map(const struct vu_msg *msg, bool map)
{
	const struct vu_shmem_map *m = &msg->payload.shmem_map;
	int r = expect(msg, sizeof(*m), map ? 1 : 0);

	if (r < 0)
		return r;
	if (!range_ok(m->shm_offset, m->len) || !range_ok(m->fd_offset, m->len))
		return -EBADMSG;
	if (m->flags & ~(uint64_t)VU_SHMEM_MAP_RW)
		return -EBADMSG;
	return 0;
}

static int
validate_frontend_request(const struct vu_msg *msg)
{
	switch ((enum vu_request)msg->hdr.request) {
	case VU_REQ_GET_FEATURES:
	case VU_REQ_GET_PROTOCOL_FEATURES:
	case VU_REQ_GET_QUEUE_NUM:
	case VU_REQ_SET_OWNER:
	case VU_REQ_RESET_OWNER:
	case VU_REQ_GET_SHMEM_CONFIG:
		return expect(msg, 0, 0);
	case VU_REQ_SET_FEATURES:
	case VU_REQ_SET_PROTOCOL_FEATURES:
		return expect(msg, 8, 0);
	case VU_REQ_SET_MEM_TABLE:
		return validate_mem_table(msg);
	case VU_REQ_SET_VRING_NUM:
	case VU_REQ_SET_VRING_BASE:
	case VU_REQ_GET_VRING_BASE:
		return expect(msg, sizeof(struct vu_vring_state), 0);
	case VU_REQ_SET_VRING_ENABLE:
		if (msg->payload.state.num > 1)
			return -EBADMSG;
		return expect(msg, sizeof(struct vu_vring_state), 0);
	case VU_REQ_SET_VRING_ADDR:
		return expect(msg, sizeof(struct vu_vring_addr), 0);
	case VU_REQ_SET_VRING_KICK:
	case VU_REQ_SET_VRING_CALL:
	case VU_REQ_SET_VRING_ERR:
		return validate_vring_fd(msg);
	case VU_REQ_SET_BACKEND_REQ_FD:
	case VU_REQ_GPU_SET_SOCKET:
		return expect(msg, 0, 1);
	case VU_REQ_GET_CONFIG:
	case VU_REQ_SET_CONFIG:
		return validate_config(msg);
	case VU_REQ_NONE:
		return -EBADMSG;
	case VU_REQ_SET_LOG_BASE:
	case VU_REQ_SET_LOG_FD:
	case VU_REQ_GET_SHARED_OBJECT:
		return -EOPNOTSUPP;
	}
	return -EOPNOTSUPP;
}

static int
validate_backend_request(const struct vu_msg *msg)
{
	switch ((enum vu_backend_request)msg->hdr.request) {
	case VU_BREQ_SHARED_OBJECT_ADD:
	case VU_BREQ_SHARED_OBJECT_REMOVE:
	case VU_BREQ_SHARED_OBJECT_LOOKUP:
		return expect(msg, sizeof(struct vu_shared_object), 0);
	case VU_BREQ_SHMEM_MAP:
		return validate_shmem_map(msg, true);
	case VU_BREQ_SHMEM_UNMAP:
		return validate_shmem_map(msg, false);
	case VU_BREQ_CONFIG_CHANGE_MSG:
		return expect(msg, 0, 0);
	case VU_BREQ_NONE:
		return -EBADMSG;
	}
	return -EOPNOTSUPP;
}

int
vu_msg_validate_request(const struct vu_msg *msg, enum vu_channel channel)
{
	if ((msg->hdr.flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION)
		return -EBADMSG;
	if (msg->hdr.flags & ~(VU_FLAG_VERSION_MASK | VU_FLAG_NEED_REPLY))
		return -EBADMSG;
	if (msg->hdr.size > VU_MAX_PAYLOAD || msg->n_fds > VU_MAX_FDS)
		return -EBADMSG;
	switch (channel) {
	case VU_CHANNEL_FRONTEND:
		return validate_frontend_request(msg);
	case VU_CHANNEL_BACKEND:
		return validate_backend_request(msg);
	}
	return -EBADMSG;
}

int
vu_msg_validate_reply(const struct vu_msg *msg, uint32_t request, bool reply_ack, unsigned max_fds)
{
	uint32_t size = 8;

	if ((msg->hdr.flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION ||
	    !(msg->hdr.flags & VU_FLAG_REPLY) || msg->hdr.request != request ||
	    msg->n_fds > max_fds || msg->hdr.size > VU_MAX_PAYLOAD)
		return -EBADMSG;
	if (reply_ack)
		return msg->hdr.size == 8 ? 0 : -EBADMSG;
	switch ((enum vu_request)request) {
	case VU_REQ_GET_CONFIG:
		if (msg->hdr.size < VU_CONFIG_HDR_SIZE)
			return -EBADMSG;
		return validate_config(msg);
	case VU_REQ_GET_SHMEM_CONFIG:
		if (msg->hdr.size != sizeof(struct vu_shmem_config) ||
		    msg->payload.shmem_config.n_regions > VU_MAX_SHMEM)
			return -EBADMSG;
		return 0;
	case VU_REQ_GET_VRING_BASE:
		size = sizeof(struct vu_vring_state);
		break;
	case VU_REQ_GET_FEATURES:
	case VU_REQ_GET_PROTOCOL_FEATURES:
	case VU_REQ_GET_QUEUE_NUM:
		size = 8;
		break;
	case VU_REQ_NONE:
	case VU_REQ_SET_FEATURES:
	case VU_REQ_SET_OWNER:
	case VU_REQ_RESET_OWNER:
	case VU_REQ_SET_MEM_TABLE:
	case VU_REQ_SET_LOG_BASE:
	case VU_REQ_SET_LOG_FD:
	case VU_REQ_SET_VRING_NUM:
	case VU_REQ_SET_VRING_ADDR:
	case VU_REQ_SET_VRING_BASE:
	case VU_REQ_SET_VRING_KICK:
	case VU_REQ_SET_VRING_CALL:
	case VU_REQ_SET_VRING_ERR:
	case VU_REQ_SET_PROTOCOL_FEATURES:
	case VU_REQ_SET_VRING_ENABLE:
	case VU_REQ_SET_BACKEND_REQ_FD:
	case VU_REQ_SET_CONFIG:
	case VU_REQ_GPU_SET_SOCKET:
	case VU_REQ_GET_SHARED_OBJECT:
		/* These have no reply but an ack. */
		size = 8;
		break;
	}
	return msg->hdr.size == size ? 0 : -EBADMSG;
}

const char *
vu_request_name(uint32_t request, enum vu_channel channel)
{
	static const char *const frontend[] = {
		[VU_REQ_GET_FEATURES] = "GET_FEATURES",
		[VU_REQ_SET_FEATURES] = "SET_FEATURES",
		[VU_REQ_SET_OWNER] = "SET_OWNER",
		[VU_REQ_RESET_OWNER] = "RESET_OWNER",
		[VU_REQ_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VU_REQ_SET_LOG_BASE] = "SET_LOG_BASE",
		[VU_REQ_SET_LOG_FD] = "SET_LOG_FD",
		[VU_REQ_SET_VRING_NUM] = "SET_VRING_NUM",
		[VU_REQ_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VU_REQ_SET_VRING_BASE] = "SET_VRING_BASE",
		[VU_REQ_GET_VRING_BASE] = "GET_VRING_BASE",
		[VU_REQ_SET_VRING_KICK] = "SET_VRING_KICK",
		[VU_REQ_SET_VRING_CALL] = "SET_VRING_CALL",
		[VU_REQ_SET_VRING_ERR] = "SET_VRING_ERR",
		[VU_REQ_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VU_REQ_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VU_REQ_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VU_REQ_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
		[VU_REQ_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
		[VU_REQ_GET_CONFIG] = "GET_CONFIG",
		[VU_REQ_SET_CONFIG] = "SET_CONFIG",
		[VU_REQ_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
		[VU_REQ_GET_SHARED_OBJECT] = "GET_SHARED_OBJECT",
		[VU_REQ_GET_SHMEM_CONFIG] = "GET_SHMEM_CONFIG",
	};
	static const char *const backend[] = {
		[VU_BREQ_CONFIG_CHANGE_MSG] = "CONFIG_CHANGE_MSG",
		[VU_BREQ_SHARED_OBJECT_ADD] = "SHARED_OBJECT_ADD",
		[VU_BREQ_SHARED_OBJECT_REMOVE] = "SHARED_OBJECT_REMOVE",
		[VU_BREQ_SHARED_OBJECT_LOOKUP] = "SHARED_OBJECT_LOOKUP",
		[VU_BREQ_SHMEM_MAP] = "SHMEM_MAP",
		[VU_BREQ_SHMEM_UNMAP] = "SHMEM_UNMAP",
	};

	switch (channel) {
	case VU_CHANNEL_FRONTEND:
		return request < ARRAY_SIZE(frontend) ? frontend[request] : NULL;
	case VU_CHANNEL_BACKEND:
		return request < ARRAY_SIZE(backend) ? backend[request] : NULL;
	}
	return NULL;
}

void
vu_msg_close_fds(struct vu_msg *msg)
{
	for (unsigned i = 0; i < msg->n_fds && i < VU_MAX_FDS; i++)
		msg->fds[i] = safe_close(msg->fds[i]);
	msg->n_fds = 0;
}

static int
wait_readable(int sock, int timeout_ms)
{
	struct pollfd p = {.fd = sock, .events = POLLIN};
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return negative_errno();
	if (r == 0)
		return -ETIMEDOUT;
	return 0;
}

/* Collects SCM_RIGHTS fds into msg; -EBADMSG (everything closed) if they did not all fit. */
static int
take_fds(struct msghdr *mh, struct vu_msg *msg)
{
	int r = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int fds[VU_MAX_FDS];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > VU_MAX_FDS)
			n = VU_MAX_FDS;
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (msg->n_fds < VU_MAX_FDS)
				msg->fds[msg->n_fds++] = fds[i];
			else {
				close(fds[i]);
				r = -EBADMSG;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		r = -EBADMSG;
	return r;
}

int
vu_msg_recv(int sock, int timeout_ms, struct vu_msg *ret_msg)
{
	struct vu_msg m, *msg = &m;
	uint8_t buf[sizeof(struct vu_header) + VU_MAX_PAYLOAD];
	union {
		char b[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} control;
	size_t got = 0, want = sizeof(struct vu_header);
	bool have_size = false;
	int r;

	vu_msg_init(msg, 0, 0, 0);
	while (got < want) {
		struct iovec iov = {.iov_base = buf + got, .iov_len = want - got};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (got < sizeof(struct vu_header)) {
			mh.msg_control = control.b;
			mh.msg_controllen = sizeof(control.b);
		}
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (got == 0) {
				r = -EAGAIN;
				goto fail;
			}
			r = wait_readable(sock, timeout_ms);
			if (r < 0)
				goto fail;
			continue;
		}
		if (n < 0) {
			r = negative_errno();
			goto fail;
		}
		if (n == 0) {
			r = -ECONNRESET;
			goto fail;
		}
		if (mh.msg_control != NULL) {
			r = take_fds(&mh, msg);
			if (r < 0)
				goto fail;
		}
		got += (size_t)n;
		if (!have_size && got >= sizeof(struct vu_header)) {
			struct vu_header hdr;
			memcpy(&hdr, buf, sizeof(hdr));
			if (hdr.size > VU_MAX_PAYLOAD) {
				r = -EMSGSIZE;
				goto fail;
			}
			want = sizeof(hdr) + hdr.size;
			have_size = true;
		}
	}
	r = vu_msg_decode(buf, got, msg);
	if (r < 0)
		goto fail;
	*ret_msg = m;
	return 0;
fail:
	vu_msg_close_fds(msg);
	return r;
}

int
vu_msg_send(int sock, const struct vu_msg *msg)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov[2] = {
		{.iov_base = (void *)&msg->hdr, .iov_len = sizeof(msg->hdr)},
		{.iov_base = (void *)&msg->payload, .iov_len = msg->hdr.size},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	size_t total = sizeof(msg->hdr) + msg->hdr.size, sent = 0;

	if (msg->hdr.size > VU_MAX_PAYLOAD || msg->n_fds > VU_MAX_FDS)
		return -EINVAL;
	if (msg->n_fds > 0) {
		struct cmsghdr *c;
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * msg->n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * msg->n_fds);
		memcpy(CMSG_DATA(c), msg->fds, sizeof(int) * msg->n_fds);
	}
	while (sent < total) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = {.fd = sock, .events = POLLOUT};
			if (poll(&p, 1, 5000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0)
			return negative_errno();
		sent += (size_t)n;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		/* Advance the iovecs past what went out. */
		while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov[0].iov_len) {
			n -= (ssize_t)mh.msg_iov[0].iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov[0].iov_base = (uint8_t *)mh.msg_iov[0].iov_base + n;
			mh.msg_iov[0].iov_len -= (size_t)n;
		}
	}
	return 0;
}

void
vu_msg_make_reply(struct vu_msg *msg, const struct vu_msg *req, uint32_t size)
{
	msg->hdr.request = req->hdr.request;
	msg->hdr.flags = VU_FLAG_VERSION | VU_FLAG_REPLY;
	msg->hdr.size = size;
	msg->n_fds = 0;
}
