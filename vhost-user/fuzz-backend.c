/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the whole backend: the input plays a frontend. It starts with a le16
 * length n and n bytes that become the start of a 1 MiB guest RAM memfd; the rest is a
 * stream of vhost-user messages sent as they are over a real socket to a backend serving a
 * small device. The fds each request needs are made up here: the RAM memfd for every
 * memory region, eventfds for vring fds (kicked at once), socketpairs for the backend
 * channel. Replies are drained and thrown away. Whatever the stream, the backend must
 * neither crash nor leak, and must end the connection when the stream ends.
 */
#include "backend.h"
#include "message.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (1u << 20)

static int
get_config(void *data, uint32_t offset, void *buf, uint32_t len)
{
	memset(buf, 0x42, len);
	return 0;
}

static void
handle(void *data, unsigned queue, struct vu_elem *elem)
{
	struct vu_backend *b = *(struct vu_backend **)data;
	size_t n = iov_size(elem->req.out, elem->req.n_out);
	volatile uint8_t sum = 0;

	/* Touch every byte the guest lent us, both ways. */
	for (unsigned i = 0; i < elem->req.n_in; i++) {
		const uint8_t *p = elem->req.in[i].iov_base;
		for (size_t j = 0; j < elem->req.in[i].iov_len; j++)
			sum += p[j];
	}
	iov_memset(elem->req.out, elem->req.n_out, 0, 0x5a, n);
	vu_backend_complete(b, elem, (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n));
}

static void
drain(int fd)
{
	char buf[4096];
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} control;

	for (;;) {
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = control.b,
				    .msg_controllen = sizeof(control.b)};
		if (recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_type == SCM_RIGHTS) {
				int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				int *fds = (int *)CMSG_DATA(c);
				for (int i = 0; i < n; i++)
					close(fds[i]);
			}
		}
	}
}

/* The fds a request carries, made up; returns how many. */
static unsigned
make_fds(const struct vu_header *h, const uint8_t *payload, size_t payload_len, int ram_fd,
	 int *fds)
{
	uint64_t u64 = 0;
	unsigned n = 0;

	if (payload_len >= 8)
		memcpy(&u64, payload, 8);
	switch (h->request) {
	case VU_REQ_SET_MEM_TABLE: {
		uint32_t regions = 0;
		if (payload_len >= 4)
			memcpy(&regions, payload, 4);
		n = regions > VU_MAX_FDS ? VU_MAX_FDS : regions;
		for (unsigned i = 0; i < n; i++)
			fds[i] = fcntl(ram_fd, F_DUPFD_CLOEXEC, 0);
		return n;
	}
	case VU_REQ_SET_VRING_KICK:
	case VU_REQ_SET_VRING_CALL:
	case VU_REQ_SET_VRING_ERR:
		if (u64 & VU_VRING_NOFD)
			return 0;
		fds[0] = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
		return 1;
	case VU_REQ_SET_BACKEND_REQ_FD:
	case VU_REQ_GPU_SET_SOCKET: {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return 0;
		close(sv[1]);
		fds[0] = sv[0];
		return 1;
	}
	default:
		return 0;
	}
}

static int
send_with_fds(int sock, const uint8_t *buf, size_t len, const int *fds, unsigned n_fds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

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
	return sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t shmem_sizes[] = {1u << 20};
	struct vu_backend *b = NULL;
	const struct vu_backend_device dev = {
		.features = 1,
		.n_queues = 2,
		.max_queue_size = 256,
		.config_size = 16,
		.n_shmem = 1,
		.shmem_sizes = shmem_sizes,
		.get_config = get_config,
		.handle = handle,
	};
	uint16_t ram_len;
	uint8_t *ram;
	int ram_fd, sv[2];
	size_t off;

	if (size < 2)
		return 0;
	memcpy(&ram_len, data, 2);
	if (ram_len > size - 2)
		ram_len = (uint16_t)(size - 2);
	ram_fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
	if (ram_fd < 0 || ftruncate(ram_fd, RAM_SIZE) < 0)
		abort();
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	if (ram == MAP_FAILED)
		abort();
	memcpy(ram, data + 2, ram_len);
	munmap(ram, RAM_SIZE);
	off = 2 + (size_t)ram_len;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    vu_backend_new(&dev, &b, &b) < 0 || vu_backend_adopt(b, sv[0]) < 0)
		abort();

	while (size - off >= sizeof(struct vu_header)) {
		struct vu_header h;
		int fds[VU_MAX_FDS];
		unsigned n_fds;
		size_t len;
		int r = 0;

		memcpy(&h, data + off, sizeof(h));
		len = sizeof(h) + (h.size <= VU_MAX_PAYLOAD ? h.size : 0);
		/* Only whole messages: a cut one would just make the backend wait. */
		if (len > size - off)
			break;
		n_fds = make_fds(&h, data + off + sizeof(h), len - sizeof(h), ram_fd, fds);
		if (send_with_fds(sv[1], data + off, len, fds, n_fds) < 0)
			r = -1;
		for (unsigned i = 0; i < n_fds; i++)
			close(fds[i]);
		off += len;
		for (unsigned i = 0; i < 3 && r == 0; i++) {
			r = vu_backend_dispatch(b);
			drain(sv[1]);
		}
		if (r != 0)
			break;
	}
	close(sv[1]);
	while (vu_backend_dispatch(b) == 0)
		;
	vu_backend_free(b);
	close(ram_fd);
	return 0;
}
