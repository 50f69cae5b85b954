/* SPDX-License-Identifier: MIT */
#include "packet.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"

int
cb_packet_send(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : negative_errno();
	return 0;
}

void
cb_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fds[i] = safe_close(fds[i]);
}

int
cb_packet_recv(int sock, void *buf, size_t cap, int flags, size_t *ret_len, int *fds,
	       unsigned *ret_nfds)
{
	union {
		/* One more slot than allowed, to tell "too many" from "just enough". */
		char buf[CMSG_SPACE(sizeof(int) * (CB_PACKET_MAX_FDS + 1))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	unsigned nfds = 0;
	ssize_t n;
	int r = 0;

	do {
		n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();

	int extra[CB_PACKET_MAX_FDS + 1];
	unsigned n_extra = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < CB_PACKET_MAX_FDS)
				fds[nfds++] = fd;
			else if (n_extra < ARRAY_SIZE(extra))
				extra[n_extra++] = fd;
			else
				close(fd);
		}
	}
	if (n_extra > 0)
		r = -ETOOMANYREFS;
	else if (msg.msg_flags & MSG_CTRUNC)
		r = -EMFILE;
	else if (msg.msg_flags & MSG_TRUNC)
		r = -EMSGSIZE;
	else if (n == 0 && nfds == 0)
		r = -ECONNRESET;
	*ret_len = MIN((size_t)n, cap);
	if (r < 0) {
		cb_close_fds(extra, n_extra);
		cb_close_fds(fds, nfds);
		return r;
	}
	*ret_nfds = nfds;
	return 0;
}
