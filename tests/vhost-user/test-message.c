/* SPDX-License-Identifier: MIT */
/* The vhost-user wire format: validation per request, and socket I/O with fds. */
#include "message.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static void
msg_with(struct vu_msg *m, uint32_t request, uint32_t size, unsigned n_fds)
{
	vu_msg_init(m, request, 0, size);
	m->n_fds = n_fds; /* validation only counts fds: no fd is touched */
}

static int
check(struct vu_msg *m)
{
	return vu_msg_validate_request(m, VU_CHANNEL_FRONTEND);
}

static void
test_sizes(void)
{
	struct vu_msg m;

	msg_with(&m, VU_REQ_GET_FEATURES, 0, 0);
	g_assert_cmpint(check(&m), ==, 0);
	msg_with(&m, VU_REQ_GET_FEATURES, 8, 0);
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	msg_with(&m, VU_REQ_GET_FEATURES, 0, 1);
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	msg_with(&m, VU_REQ_SET_FEATURES, 8, 0);
	g_assert_cmpint(check(&m), ==, 0);
	msg_with(&m, VU_REQ_SET_FEATURES, 4, 0);
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	msg_with(&m, VU_REQ_SET_VRING_ADDR, 40, 0);
	g_assert_cmpint(check(&m), ==, 0);
	msg_with(&m, VU_REQ_SET_VRING_ADDR, 32, 0);
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	msg_with(&m, VU_REQ_SET_VRING_NUM, 8, 0);
	g_assert_cmpint(check(&m), ==, 0);
	msg_with(&m, VU_REQ_SET_BACKEND_REQ_FD, 0, 1);
	g_assert_cmpint(check(&m), ==, 0);
	msg_with(&m, VU_REQ_SET_BACKEND_REQ_FD, 0, 0);
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	msg_with(&m, VU_REQ_GET_SHMEM_CONFIG, 0, 0);
	g_assert_cmpint(check(&m), ==, 0);
	/* Known but not implemented, and unknown: refused, not malformed. */
	msg_with(&m, VU_REQ_SET_LOG_BASE, 16, 1);
	g_assert_cmpint(check(&m), ==, -EOPNOTSUPP);
	msg_with(&m, 200, 0, 0);
	g_assert_cmpint(check(&m), ==, -EOPNOTSUPP);
	msg_with(&m, VU_REQ_NONE, 0, 0);
	g_assert_cmpint(check(&m), ==, -EBADMSG);
}

static void
test_flags(void)
{
	struct vu_msg m;

	msg_with(&m, VU_REQ_GET_FEATURES, 0, 0);
	m.hdr.flags = 0;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.hdr.flags = VU_FLAG_VERSION | VU_FLAG_REPLY;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.hdr.flags = VU_FLAG_VERSION | VU_FLAG_NEED_REPLY;
	g_assert_cmpint(check(&m), ==, 0);
	m.hdr.flags = VU_FLAG_VERSION | 0x100;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
}

static void
test_mem_table(void)
{
	struct vu_msg m;
	struct vu_mem_region *r = m.payload.mem.regions;

	msg_with(&m, VU_REQ_SET_MEM_TABLE, 8 + 2 * 32, 2);
	m.payload.mem.n_regions = 2;
	r[0] = (struct vu_mem_region){.gpa = 0, .size = 4096, .uaddr = 0x10000};
	r[1] = (struct vu_mem_region){.gpa = 4096, .size = 4096, .uaddr = 0x20000};
	g_assert_cmpint(check(&m), ==, 0);
	/* The whole baseline table with two used entries is what QEMU sends. */
	m.hdr.size = sizeof(struct vu_mem_table);
	g_assert_cmpint(check(&m), ==, 0);
	m.hdr.size = 8 + 32;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.hdr.size = 8 + 2 * 32;
	m.n_fds = 1;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.n_fds = 2;
	r[1].gpa = 2048; /* overlaps region 0 */
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	r[1].gpa = 4096;
	r[1].uaddr = 0x10800; /* overlapping frontend addresses */
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	r[1].uaddr = 0x20000;
	r[1].gpa = UINT64_MAX - 100; /* wraps */
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	r[1].gpa = 4096;
	r[1].size = 0;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	r[1].size = 4096;
	r[1].mmap_offset = UINT64_MAX - 10;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	r[1].mmap_offset = 0;
	m.payload.mem.n_regions = 0;
	m.hdr.size = 8;
	m.n_fds = 0;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.payload.mem.n_regions = 9;
	m.hdr.size = 8 + 9 * 32;
	m.n_fds = 8;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
}

static void
test_config(void)
{
	struct vu_msg m;

	msg_with(&m, VU_REQ_GET_CONFIG, VU_CONFIG_HDR_SIZE + 16, 0);
	m.payload.config.size = 16;
	g_assert_cmpint(check(&m), ==, 0);
	m.payload.config.offset = 250;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.payload.config.offset = 0;
	m.payload.config.size = 300;
	m.hdr.size = VU_CONFIG_HDR_SIZE + 300;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.payload.config.size = 8;
	m.hdr.size = VU_CONFIG_HDR_SIZE + 16;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.payload.config.offset = UINT32_MAX;
	m.hdr.size = VU_CONFIG_HDR_SIZE + 8;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
}

static void
test_vring_fd(void)
{
	struct vu_msg m;

	msg_with(&m, VU_REQ_SET_VRING_KICK, 8, 1);
	m.payload.u64 = 1;
	g_assert_cmpint(check(&m), ==, 0);
	m.payload.u64 = 1 | VU_VRING_NOFD;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	m.n_fds = 0;
	g_assert_cmpint(check(&m), ==, 0);
	m.payload.u64 = 1ull << 40;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
	msg_with(&m, VU_REQ_SET_VRING_ENABLE, 8, 0);
	m.payload.state.num = 2;
	g_assert_cmpint(check(&m), ==, -EBADMSG);
}

static void
test_backend_channel(void)
{
	struct vu_msg m;

	msg_with(&m, VU_BREQ_SHMEM_MAP, sizeof(struct vu_shmem_map), 1);
	m.payload.shmem_map = (struct vu_shmem_map){.len = 4096, .flags = VU_SHMEM_MAP_RW};
	g_assert_cmpint(vu_msg_validate_request(&m, VU_CHANNEL_BACKEND), ==, 0);
	m.payload.shmem_map.flags = 2;
	g_assert_cmpint(vu_msg_validate_request(&m, VU_CHANNEL_BACKEND), ==, -EBADMSG);
	m.payload.shmem_map.flags = 0;
	m.payload.shmem_map.shm_offset = UINT64_MAX;
	g_assert_cmpint(vu_msg_validate_request(&m, VU_CHANNEL_BACKEND), ==, -EBADMSG);
	m.payload.shmem_map.shm_offset = 0;
	m.n_fds = 0;
	g_assert_cmpint(vu_msg_validate_request(&m, VU_CHANNEL_BACKEND), ==, -EBADMSG);
	m.hdr.request = VU_BREQ_SHMEM_UNMAP;
	g_assert_cmpint(vu_msg_validate_request(&m, VU_CHANNEL_BACKEND), ==, 0);
	msg_with(&m, VU_BREQ_SHARED_OBJECT_ADD, 16, 0);
	g_assert_cmpint(vu_msg_validate_request(&m, VU_CHANNEL_BACKEND), ==, 0);
	m.hdr.size = 15;
	g_assert_cmpint(vu_msg_validate_request(&m, VU_CHANNEL_BACKEND), ==, -EBADMSG);
	g_assert_cmpstr(vu_request_name(VU_BREQ_SHMEM_MAP, VU_CHANNEL_BACKEND), ==, "SHMEM_MAP");
	g_assert_cmpstr(vu_request_name(VU_REQ_GET_SHMEM_CONFIG, VU_CHANNEL_FRONTEND), ==,
			"GET_SHMEM_CONFIG");
	g_assert_null(vu_request_name(99, VU_CHANNEL_FRONTEND));
}

static void
test_replies(void)
{
	struct vu_msg req, m;

	vu_msg_init(&req, VU_REQ_GET_FEATURES, 0, 0);
	vu_msg_init(&m, 0, 0, 0);
	vu_msg_make_reply(&m, &req, 8);
	g_assert_cmpint(vu_msg_validate_reply(&m, VU_REQ_GET_FEATURES, false, 0), ==, 0);
	g_assert_cmpint(vu_msg_validate_reply(&m, VU_REQ_GET_QUEUE_NUM, false, 0), ==, -EBADMSG);
	m.hdr.flags = VU_FLAG_VERSION;
	g_assert_cmpint(vu_msg_validate_reply(&m, VU_REQ_GET_FEATURES, false, 0), ==, -EBADMSG);
	vu_msg_init(&req, VU_REQ_GET_SHMEM_CONFIG, 0, 0);
	vu_msg_make_reply(&m, &req, sizeof(struct vu_shmem_config));
	m.payload.shmem_config.n_regions = 257;
	g_assert_cmpint(vu_msg_validate_reply(&m, VU_REQ_GET_SHMEM_CONFIG, false, 0), ==, -EBADMSG);
}

static void
test_decode(void)
{
	uint8_t buf[32] = {0};
	struct vu_header h = {.request = VU_REQ_SET_FEATURES, .flags = 1, .size = 8};
	struct vu_msg m;

	memcpy(buf, &h, sizeof(h));
	g_assert_cmpint(vu_msg_decode(buf, 11, &m), ==, -EBADMSG);
	g_assert_cmpint(vu_msg_decode(buf, 19, &m), ==, -EBADMSG);
	g_assert_cmpint(vu_msg_decode(buf, 20, &m), ==, 0);
	h.size = UINT32_MAX;
	memcpy(buf, &h, sizeof(h));
	g_assert_cmpint(vu_msg_decode(buf, sizeof(buf), &m), ==, -EMSGSIZE);
}

static void
test_socket_fds(void)
{
	struct vu_msg m, got;
	int sv[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	vu_msg_init(&m, VU_REQ_SET_VRING_CALL, 0, 8);
	m.payload.u64 = 1;
	m.fds[0] = eventfd(0, EFD_CLOEXEC);
	m.n_fds = 1;
	g_assert_cmpint(vu_msg_send(sv[0], &m), ==, 0);
	g_assert_cmpint(vu_msg_recv(sv[1], 1000, &got), ==, 0);
	g_assert_cmpuint(got.hdr.request, ==, VU_REQ_SET_VRING_CALL);
	g_assert_cmpuint(got.payload.u64, ==, 1);
	g_assert_cmpuint(got.n_fds, ==, 1);
	g_assert_cmpint(fcntl(got.fds[0], F_GETFD), ==, FD_CLOEXEC);
	g_assert_cmpint(vu_msg_validate_request(&got, VU_CHANNEL_FRONTEND), ==, 0);
	vu_msg_close_fds(&got);
	vu_msg_close_fds(&m);
	/* Nothing there: -EAGAIN, no blocking. */
	g_assert_cmpint(vu_msg_recv(sv[1], 1000, &got), ==, -EAGAIN);
	close(sv[0]);
	g_assert_cmpint(vu_msg_recv(sv[1], 1000, &got), ==, -ECONNRESET);
	close(sv[1]);
}

static void
test_socket_too_many_fds(void)
{
	struct vu_header h = {.request = VU_REQ_GET_FEATURES, .flags = 1};
	int fds[12], sv[2];
	union {
		char b[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.b,
			    .msg_controllen = sizeof(control.b)};
	struct cmsghdr *c;
	struct vu_msg got;
	GArray *before;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	before = cb_test_fd_snapshot();
	for (unsigned i = 0; i < G_N_ELEMENTS(fds); i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	g_assert_cmpint(sendmsg(sv[0], &mh, 0), ==, sizeof(h));
	for (unsigned i = 0; i < G_N_ELEMENTS(fds); i++)
		close(fds[i]);
	g_assert_cmpint(vu_msg_recv(sv[1], 1000, &got), ==, -EBADMSG);
	/* No received fd stays open. */
	cb_test_fd_assert_same(before);
	g_array_unref(before);
	close(sv[0]);
	close(sv[1]);
}

static void
test_socket_oversized(void)
{
	struct vu_header h = {.request = VU_REQ_SET_FEATURES, .flags = 1, .size = 1u << 20};
	struct vu_msg got;
	int sv[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	g_assert_cmpint(write(sv[0], &h, sizeof(h)), ==, sizeof(h));
	g_assert_cmpint(vu_msg_recv(sv[1], 1000, &got), ==, -EMSGSIZE);
	/* A message whose payload never comes times out instead of hanging. */
	h.size = 8;
	g_assert_cmpint(write(sv[0], &h, sizeof(h)), ==, sizeof(h));
	g_assert_cmpint(vu_msg_recv(sv[1], 50, &got), ==, -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/vhost-user/message/sizes", test_sizes);
	cb_test_add("/vhost-user/message/flags", test_flags);
	cb_test_add("/vhost-user/message/mem-table", test_mem_table);
	cb_test_add("/vhost-user/message/config", test_config);
	cb_test_add("/vhost-user/message/vring-fd", test_vring_fd);
	cb_test_add("/vhost-user/message/backend-channel", test_backend_channel);
	cb_test_add("/vhost-user/message/replies", test_replies);
	cb_test_add("/vhost-user/message/decode", test_decode);
	cb_test_add("/vhost-user/message/socket/fds", test_socket_fds);
	cb_test_add("/vhost-user/message/socket/too-many-fds", test_socket_too_many_fds);
	cb_test_add("/vhost-user/message/socket/oversized", test_socket_oversized);
	return g_test_run();
}
