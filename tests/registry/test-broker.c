/* SPDX-License-Identifier: MIT */
/* crossbufd with real processes, real memfds and real sockets. */
#include "broker-fixture.h"
#include "protocol.h"
#include "testutil.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 4096

static struct crossbuf_buffer_info
blob_info(uint32_t flags)
{
	struct crossbuf_buffer_info info;

	memset(&info, 0, sizeof(info));
	info.flags = flags;
	info.device_kind = CROSSBUF_DEVICE_OTHER;
	return info;
}

static struct crossbuf_buffer_info
rgb_info(void)
{
	struct crossbuf_buffer_info info;

	memset(&info, 0, sizeof(info));
	info.width = 32;
	info.height = 32;
	info.fourcc = DRM_FORMAT_XRGB8888;
	info.num_planes = 1;
	info.planes[0].stride = 128;
	info.device_kind = CROSSBUF_DEVICE_GPU;
	info.resource_id = 42;
	return info;
}

/* --- two processes share a buffer ---------------------------------------------------- */

static void
test_cross_process_bytes(void)
{
	struct broker b;
	int to_parent[2], to_child[2];
	uint8_t uuid[16], mine[SIZE], theirs[SIZE];
	pid_t child;
	int status;

	broker_start(&b, NULL, 0);
	g_assert_cmpint(pipe2(to_parent, O_CLOEXEC), ==, 0);
	g_assert_cmpint(pipe2(to_child, O_CLOEXEC), ==, 0);
	cb_test_pattern(theirs, sizeof(theirs), 11);
	cb_test_pattern(mine, sizeof(mine), 12);

	child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		/* The exporter: registers its bytes, then checks the importer's. */
		struct crossbuf_client *c = broker_client(&b, NULL, 0);
		struct crossbuf_buffer_info info = rgb_info();
		int fd = cb_test_memfd("exporter", theirs, SIZE);
		uint8_t back[SIZE], go;
		if (crossbuf_client_export(c, fd, &info, uuid) < 0)
			_exit(2);
		if (write(to_parent[1], uuid, 16) != 16 || read(to_child[0], &go, 1) != 1)
			_exit(3);
		if (pread(fd, back, SIZE, 0) != SIZE || memcmp(back, mine, SIZE) != 0)
			_exit(4);
		_exit(0);
	}
	g_assert_cmpint(read(to_parent[0], uuid, 16), ==, 16);
	{
		struct crossbuf_client *c = broker_client(&b, NULL, 0);
		struct crossbuf_buffer_info info;
		uint8_t *map;
		int fd;

		g_assert_cmpint(crossbuf_client_lookup(c, uuid, &info, &fd), ==, 0);
		g_assert_cmpuint(info.resource_id, ==, 42);
		g_assert_cmpuint(info.fourcc, ==, DRM_FORMAT_XRGB8888);
		g_assert_cmpuint(info.fd_kind, ==, CROSSBUF_FD_KIND_MEMFD);
		g_assert_cmpuint(info.size, ==, SIZE);
		map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		g_assert_true(map != MAP_FAILED);
		g_assert_cmpmem(map, SIZE, theirs, SIZE);
		memcpy(map, mine, SIZE);
		munmap(map, SIZE);
		close(fd);
		g_assert_cmpint(write(to_child[1], "g", 1), ==, 1);
		crossbuf_client_unref(c);
	}
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	broker_wait_entries(&b, 0);
	for (int i = 0; i < 2; i++) {
		close(to_parent[i]);
		close(to_child[i]);
	}
	broker_stop(&b);
}

/* --- an exporter killed at any point --------------------------------------------------- */

static void
test_sigkill_exporter_anywhere(void)
{
	struct broker b;
	int baseline;

	broker_start(&b, NULL, 0);
	baseline = broker_fd_count(&b);
	g_assert_cmpint(baseline, >, 0);

	for (unsigned round = 0; round < 40; round++) {
		pid_t child = fork();
		int status;

		g_assert_cmpint(child, >=, 0);
		if (child == 0) {
			/* Export as fast as it can, with its own connection churn. */
			for (;;) {
				struct crossbuf_client *c = broker_client(&b, NULL, 0);
				struct crossbuf_buffer_info info = blob_info(0);
				int fd = cb_test_memfd("victim", NULL, SIZE);
				uint8_t uuid[16];
				for (int i = 0; i < 50; i++)
					crossbuf_client_export(c, fd, &info, uuid);
				close(fd);
				if (round % 2 == 0)
					crossbuf_client_unref(c);
			}
		}
		/* Kill it somewhere between connecting and mid-stream. */
		g_usleep(g_random_int_range(0, 20000));
		g_assert_cmpint(kill(child, SIGKILL), ==, 0);
		g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	}
	broker_wait_entries(&b, 0);
	/* The broker holds exactly what it held before: every stored fd was closed. */
	g_assert_cmpint(broker_fd_count(&b), ==, baseline);
	broker_stop(&b);
}

/* --- ownership, domains, rights ------------------------------------------------------- */

static const char *policy_text = "[domain vm0]\n"
				 "uids=0\n"
				 "protected-uids=0\n"
				 "[domain vm1]\n"
				 "uids=0\n"
				 "protected-uids=\n"
				 "[domain locked]\n"
				 "uids=12345\n"
				 "[admin]\n"
				 "uids=0\n";

static void
test_refusals(void)
{
	struct broker b;
	struct crossbuf_client *owner, *other, *vm1, *client;
	struct crossbuf_buffer_info info = blob_info(0),
				    pinfo = blob_info(CROSSBUF_BUFFER_PROTECTED), got;
	uint8_t uuid[16], puuid[16];
	int fd, fd2, imported = -1;

	broker_start(&b, policy_text, 0);
	owner = broker_client(&b, "vm0", 0);
	other = broker_client(&b, "vm0", 0);
	vm1 = broker_client(&b, "vm1", 0);
	fd = cb_test_memfd("buf", NULL, SIZE);
	fd2 = cb_test_memfd("protected", NULL, SIZE);
	g_assert_cmpint(crossbuf_client_export(owner, fd, &info, uuid), ==, 0);
	g_assert_cmpint(crossbuf_client_export(owner, fd2, &pinfo, puuid), ==, 0);

	/* non-owner remove */
	g_assert_cmpint(crossbuf_client_remove(other, uuid), ==, -EPERM);
	/* cross-domain lookup, remove, watch */
	g_assert_cmpint(crossbuf_client_lookup(vm1, uuid, &got, &imported), ==, -ENOENT);
	g_assert_cmpint(crossbuf_client_remove(vm1, uuid), ==, -ENOENT);
	g_assert_cmpint(crossbuf_client_watch(vm1, uuid), ==, -ENOENT);
	/* unauthorized protected lookup: vm0 clients that did not ask for the right */
	g_assert_cmpint(crossbuf_client_lookup(other, puuid, &got, &imported), ==, -EACCES);
	g_assert_cmpint(imported, ==, -1);
	/* ... and one that asked gets it */
	client = broker_client(&b, "vm0", CROSSBUF_RIGHT_PROTECTED);
	g_assert_cmpint(crossbuf_client_lookup(client, puuid, &got, &imported), ==, 0);
	g_assert_cmpuint(got.flags, ==, CROSSBUF_BUFFER_PROTECTED);
	close(imported);
	crossbuf_client_unref(client);

	/* rights and domains the policy does not grant are refused at connection */
	g_assert_cmpint(crossbuf_client_new(&client), ==, 0);
	crossbuf_client_set_domain(client, "vm1");
	crossbuf_client_set_rights(client, CROSSBUF_RIGHT_PROTECTED);
	g_assert_cmpint(crossbuf_client_connect(client, b.socket), ==, -EPERM);
	crossbuf_client_unref(client);
	g_assert_cmpint(crossbuf_client_new(&client), ==, 0);
	crossbuf_client_set_domain(client, "locked");
	g_assert_cmpint(crossbuf_client_connect(client, b.socket), ==, -EPERM);
	crossbuf_client_unref(client);
	/* admin operations without the right */
	{
		struct crossbuf_stats st;
		g_assert_cmpint(crossbuf_client_get_stats(other, &st), ==, -EPERM);
	}

	/* The owner removes; all good. */
	g_assert_cmpint(crossbuf_client_remove(owner, uuid), ==, 0);
	close(fd);
	close(fd2);
	crossbuf_client_unref(owner);
	crossbuf_client_unref(other);
	crossbuf_client_unref(vm1);
	broker_stop(&b);
}

static void
test_other_uid_refused(void)
{
	struct broker b;
	pid_t child;
	int status;

	/* Defaults: only root and the broker's user may connect. */
	broker_start(&b, NULL, 0);
	/* Let the socket be reached, so that the policy is what refuses. */
	g_assert_cmpint(chmod(b.dir, 0755), ==, 0);
	g_assert_cmpint(chmod(b.socket, 0666), ==, 0);
	child = fork();
	g_assert_cmpint(child, >=, 0);
	if (child == 0) {
		struct crossbuf_client *c;
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(77);
		crossbuf_client_new(&c);
		_exit(crossbuf_client_connect(c, b.socket) == -EPERM ? 0 : 1);
	}
	g_assert_cmpint(waitpid(child, &status, 0), ==, child);
	g_assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		g_test_skip("cannot change uid here");
	else
		g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	broker_stop(&b);
}

/* --- malformed messages ----------------------------------------------------------------- */

static int
raw_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 0) {
		struct cmsghdr *c;
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* The status of the next reply, or 1 if the broker closed the connection instead. */
static int
raw_status(int sock)
{
	uint8_t buf[CB_MSG_MAX_SIZE];
	struct pollfd p = {.fd = sock, .events = POLLIN};
	struct cb_msg_reply reply;
	ssize_t n;

	g_assert_cmpint(poll(&p, 1, 5000), ==, 1);
	n = recv(sock, buf, sizeof(buf), 0);
	if (n <= 0)
		return 1;
	g_assert_cmpint(n, >=, (ssize_t)sizeof(reply));
	memcpy(&reply, buf, sizeof(reply));
	g_assert_cmpuint(reply.hdr.type, ==, CB_MSG_REPLY);
	return reply.status;
}

static void
raw_hello(int sock)
{
	struct cb_msg_hello h = {
		.hdr = {.type = CB_MSG_HELLO, .serial = 1, .size = sizeof(h)},
		.version = CB_PROTOCOL_VERSION,
	};

	strcpy(h.domain, "default");
	g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
	g_assert_cmpint(raw_status(sock), ==, 0);
}

static void
test_malformed_messages(void)
{
	struct broker b;
	struct crossbuf_client *good;
	struct crossbuf_buffer_info info = blob_info(0), got;
	uint8_t uuid[16], big[8192];
	int baseline, sock, memfd, fds[6], imported;

	broker_start(&b, NULL, 0);
	baseline = broker_fd_count(&b);
	memfd = cb_test_memfd("m", NULL, SIZE);
	for (unsigned i = 0; i < G_N_ELEMENTS(fds); i++)
		fds[i] = cb_test_memfd("extra", NULL, SIZE);
	good = broker_client(&b, NULL, 0);
	g_assert_cmpint(crossbuf_client_export(good, memfd, &info, uuid), ==, 0);

	sock = broker_raw_connect(&b);
	/* before HELLO */
	{
		struct cb_msg_uuid m = {
			.hdr = {.type = CB_MSG_LOOKUP, .serial = 9, .size = sizeof(m)}};
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EPERM);
	}
	/* a wrong version, a bad domain, reserved bits */
	{
		struct cb_msg_hello h = {
			.hdr = {.type = CB_MSG_HELLO, .serial = 2, .size = sizeof(h)},
			.version = 99,
		};
		strcpy(h.domain, "default");
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EPROTONOSUPPORT);
		h.version = CB_PROTOCOL_VERSION;
		strcpy(h.domain, "bad/domain");
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADMSG);
		memset(h.domain, 'a', sizeof(h.domain)); /* not NUL-terminated */
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADMSG);
		strcpy(h.domain, "default");
		h.reserved = 1;
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADMSG);
	}
	raw_hello(sock);
	/* a second HELLO */
	{
		struct cb_msg_hello h = {
			.hdr = {.type = CB_MSG_HELLO, .serial = 3, .size = sizeof(h)},
			.version = CB_PROTOCOL_VERSION,
		};
		strcpy(h.domain, "default");
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EISCONN);
	}
	/* truncated: shorter than a header, and shorter than its type */
	g_assert_cmpint(raw_send(sock, "abcde", 5, NULL, 0), ==, 0);
	g_assert_cmpint(raw_status(sock), ==, -EBADMSG);
	{
		struct cb_msg_header h = {.type = CB_MSG_LOOKUP, .serial = 4, .size = sizeof(h)};
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADMSG);
	}
	/* size field disagreeing with the packet */
	{
		struct cb_msg_uuid m = {.hdr = {.type = CB_MSG_LOOKUP, .serial = 5, .size = 999}};
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADMSG);
	}
	/* oversized */
	memset(big, 0, sizeof(big));
	g_assert_cmpint(raw_send(sock, big, sizeof(big), NULL, 0), ==, 0);
	g_assert_cmpint(raw_status(sock), ==, -EMSGSIZE);
	/* unknown opcode, and a broker-only type */
	{
		struct cb_msg_header h = {.type = 77, .serial = 6, .size = sizeof(h)};
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EOPNOTSUPP);
		h.type = CB_MSG_REPLY;
		g_assert_cmpint(raw_send(sock, &h, sizeof(h), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EOPNOTSUPP);
	}
	/* an export with no fd, two fds, too many fds; a lookup with an fd */
	{
		struct cb_msg_export m = {
			.hdr = {.type = CB_MSG_EXPORT, .serial = 7, .size = sizeof(m)}};
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), NULL, 0), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADF);
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), fds, 2), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADF);
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), fds, 6), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -ETOOMANYREFS);
		/* fd_kind set by the sender */
		m.info.fd_kind = 2;
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), fds, 1), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADMSG);
		/* a socket instead of a buffer */
		m.info.fd_kind = 0;
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), &sock, 1), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EINVAL);
	}
	{
		struct cb_msg_uuid m = {
			.hdr = {.type = CB_MSG_LOOKUP, .serial = 8, .size = sizeof(m)}};
		memcpy(m.uuid, uuid, 16);
		g_assert_cmpint(raw_send(sock, &m, sizeof(m), fds, 1), ==, 0);
		g_assert_cmpint(raw_status(sock), ==, -EBADF);
	}
	/* The well-behaved client was not disturbed. */
	g_assert_cmpint(crossbuf_client_lookup(good, uuid, &got, &imported), ==, 0);
	close(imported);

	/* A client that keeps sending garbage is disconnected, alone. */
	for (int i = 0; i < 100; i++) {
		if (raw_send(sock, "x", 1, NULL, 0) < 0)
			break;
		if (raw_status(sock) == 1)
			break;
	}
	g_assert_cmpint(raw_send(sock, "x", 1, NULL, 0), <, 0);
	close(sock);
	g_assert_cmpint(crossbuf_client_lookup(good, uuid, &got, &imported), ==, 0);
	close(imported);

	crossbuf_client_unref(good);
	broker_wait_entries(&b, 0);
	g_assert_cmpint(broker_fd_count(&b), ==, baseline);
	close(memfd);
	for (unsigned i = 0; i < G_N_ELEMENTS(fds); i++)
		close(fds[i]);
	broker_stop(&b);
}

/* --- a client that does not read --------------------------------------------------------- */

static void
test_unread_replies_do_not_block(void)
{
	struct broker b;
	struct crossbuf_client *good;
	struct crossbuf_buffer_info info = blob_info(0), got;
	uint8_t uuid[16];
	int sock, memfd, imported, sent = 0;

	broker_start(&b, NULL, 0);
	memfd = cb_test_memfd("m", NULL, SIZE);
	good = broker_client(&b, NULL, 0);
	g_assert_cmpint(crossbuf_client_export(good, memfd, &info, uuid), ==, 0);

	sock = broker_raw_connect(&b);
	raw_hello(sock);
	/* Lookups (each answered with an fd) until our socket buffer is full. */
	fcntl(sock, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 100000; i++) {
		struct cb_msg_uuid m = {
			.hdr = {.type = CB_MSG_LOOKUP, .serial = i + 10, .size = sizeof(m)}};
		memcpy(m.uuid, uuid, 16);
		if (raw_send(sock, &m, sizeof(m), NULL, 0) < 0)
			break;
		sent++;
	}
	g_assert_cmpint(sent, >, 100);
	/* The broker still serves others. */
	g_assert_cmpint(crossbuf_client_lookup(good, uuid, &got, &imported), ==, 0);
	close(imported);
	close(sock);
	g_assert_cmpint(crossbuf_client_lookup(good, uuid, &got, &imported), ==, 0);
	close(imported);
	crossbuf_client_unref(good);
	close(memfd);
	broker_stop(&b);
}

/* --- broker restart ---------------------------------------------------------------------- */

static bool
broker_log_has(const struct broker *b, const char *text)
{
	g_autofree char *path = g_build_filename(b->dir, "broker.log", NULL);
	g_autofree char *log = NULL;

	return g_file_get_contents(path, &log, NULL, NULL) && strstr(log, text) != NULL;
}

/* Lets client notice the restart and register its entries again. */
static void
reconnect(struct crossbuf_client *client)
{
	struct pollfd p = {.fd = crossbuf_client_get_fd(client), .events = POLLIN};

	g_assert_cmpint(poll(&p, 1, 5000), ==, 1);
	g_assert_cmpint(crossbuf_client_dispatch(client), >=, 0);
}

static void
test_broker_restart(void)
{
	struct broker b;
	struct crossbuf_client *exporter, *importer;
	struct crossbuf_buffer_info info = rgb_info(), got;
	uint8_t uuid[16], pattern[SIZE], *map;
	int fd, held, again;

	broker_start(&b, NULL, 0);
	exporter = broker_client(&b, NULL, 0);
	importer = broker_client(&b, NULL, 0);
	cb_test_pattern(pattern, SIZE, 5);
	fd = cb_test_memfd("survivor", pattern, SIZE);
	g_assert_cmpint(crossbuf_client_export(exporter, fd, &info, uuid), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(importer, uuid, &got, &held), ==, 0);

	broker_kill(&b);
	broker_restart(&b, 0);

	/* The exporter notices on its next dispatch and registers its entry again. */
	reconnect(exporter);
	/* The importer reconnects on its next request and finds the same UUID. */
	g_assert_cmpint(crossbuf_client_lookup(importer, uuid, &got, &again), ==, 0);
	g_assert_cmpuint(got.resource_id, ==, 42);
	/* The fd it held across the restart still reaches the same memory. */
	map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, held, 0);
	g_assert_true(map != MAP_FAILED);
	g_assert_cmpmem(map, SIZE, pattern, SIZE);
	munmap(map, SIZE);
	map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, again, 0);
	g_assert_cmpmem(map, SIZE, pattern, SIZE);
	munmap(map, SIZE);

	close(held);
	close(again);
	close(fd);
	crossbuf_client_unref(exporter);
	crossbuf_client_unref(importer);
	broker_stop(&b);
}

/*
 * A watcher that reconnects to a restarted broker before the exporter has registered its
 * entries again gives them a grace period: an entry back within it is not reported removed;
 * one whose exporter never comes back is, once the grace is over.
 */
struct removals {
	unsigned n;
	uint8_t uuid[16];
	int reason;
};

static void
on_removed(void *data, const uint8_t uuid[16], enum crossbuf_removal_reason reason)
{
	struct removals *r = data;

	r->n++;
	memcpy(r->uuid, uuid, 16);
	r->reason = (int)reason;
}

/* Waits 300 ms, then lets the exporter notice the restart and register its entry again. */
static gpointer
late_exporter(gpointer data)
{
	struct crossbuf_client *exporter = data;
	struct pollfd p = {.fd = crossbuf_client_get_fd(exporter), .events = POLLIN};

	g_usleep(300000);
	if (poll(&p, 1, 5000) != 1)
		return GINT_TO_POINTER(-ETIMEDOUT);
	return GINT_TO_POINTER(crossbuf_client_dispatch(exporter));
}

static void
test_broker_restart_watch_grace(void)
{
	struct broker b;
	struct crossbuf_client *back, *gone, *watcher;
	struct crossbuf_buffer_info info = rgb_info(), got;
	struct removals removed = {0};
	uint8_t uuid_back[16], uuid_gone[16];
	int fd_back, fd_gone, fd;
	GThread *t;

	broker_start(&b, NULL, 0);
	back = broker_client(&b, NULL, 0);
	gone = broker_client(&b, NULL, 0);
	watcher = broker_client(&b, NULL, 0);
	crossbuf_client_set_removed_callback(watcher, on_removed, &removed);
	fd_back = cb_test_memfd("back", NULL, SIZE);
	fd_gone = cb_test_memfd("gone", NULL, SIZE);
	g_assert_cmpint(crossbuf_client_export(back, fd_back, &info, uuid_back), ==, 0);
	g_assert_cmpint(crossbuf_client_export(gone, fd_gone, &info, uuid_gone), ==, 0);
	g_assert_cmpint(crossbuf_client_watch(watcher, uuid_back), ==, 0);
	g_assert_cmpint(crossbuf_client_watch(watcher, uuid_gone), ==, 0);

	broker_kill(&b);
	broker_restart(&b, 0);
	t = g_thread_new("late-exporter", late_exporter, back);
	/* The watcher reconnects first; "gone" never dispatches, so its entry stays away. */
	{
		struct pollfd p = {.fd = crossbuf_client_get_fd(watcher), .events = POLLIN};
		g_assert_cmpint(poll(&p, 1, 5000), ==, 1);
	}
	g_assert_cmpint(crossbuf_client_dispatch(watcher), >=, 0);
	g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(t)), >=, 0);
	g_assert_cmpuint(removed.n, ==, 1);
	g_assert_cmpmem(removed.uuid, 16, uuid_gone, 16);
	g_assert_cmpint(removed.reason, ==, CROSSBUF_REMOVED_OWNER_GONE);
	/* The entry that came back is still watched: its removal is reported. */
	g_assert_cmpint(crossbuf_client_lookup(watcher, uuid_back, &got, &fd), ==, 0);
	close(fd);
	g_assert_cmpint(crossbuf_client_remove(back, uuid_back), ==, 0);
	for (int i = 0; i < 100 && removed.n < 2; i++) {
		struct pollfd p = {.fd = crossbuf_client_get_fd(watcher), .events = POLLIN};
		if (poll(&p, 1, 50) == 1)
			crossbuf_client_dispatch(watcher);
	}
	g_assert_cmpuint(removed.n, ==, 2);
	g_assert_cmpmem(removed.uuid, 16, uuid_back, 16);
	g_assert_cmpint(removed.reason, ==, CROSSBUF_REMOVED_BY_OWNER);

	close(fd_back);
	close(fd_gone);
	crossbuf_client_unref(back);
	crossbuf_client_unref(gone);
	crossbuf_client_unref(watcher);
	broker_stop(&b);
}

/*
 * The state file: a restarted broker holds each UUID for the exporter that had it (the one
 * that shows the same buffer again), so that another client of the domain that knows the UUID
 * cannot take it before the exporter is back.
 */
static void
test_broker_restart_holds_uuids(void)
{
	struct broker b;
	struct crossbuf_client *owner, *thief;
	struct crossbuf_buffer_info info = rgb_info(), got;
	uint8_t uuid[16], pattern[SIZE], *map;
	int fd, other, held;

	broker_start(&b, NULL, 0);
	owner = broker_client(&b, NULL, 0);
	cb_test_pattern(pattern, SIZE, 7);
	fd = cb_test_memfd("owner", pattern, SIZE);
	other = cb_test_memfd("thief", NULL, SIZE);
	g_assert_cmpint(crossbuf_client_export(owner, fd, &info, uuid), ==, 0);

	broker_kill(&b);
	broker_restart(&b, 0);
	/* Another client of the domain that knows the UUID is first: refused. */
	thief = broker_client(&b, NULL, 0);
	g_assert_true(broker_log_has(&b, "1 UUIDs held for their exporters"));
	g_assert_cmpint(crossbuf_client_export_uuid(thief, uuid, other, &info), ==, -EEXIST);
	/* The owner comes back with its buffer and has its UUID again. */
	reconnect(owner);
	g_assert_cmpint(crossbuf_client_lookup(thief, uuid, &got, &held), ==, 0);
	map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, held, 0);
	g_assert_true(map != MAP_FAILED);
	g_assert_cmpmem(map, SIZE, pattern, SIZE);
	munmap(map, SIZE);
	close(held);
	g_assert_cmpint(crossbuf_client_export_uuid(thief, uuid, other, &info), ==, -EEXIST);

	close(fd);
	close(other);
	crossbuf_client_unref(owner);
	crossbuf_client_unref(thief);
	broker_stop(&b);
}

/*
 * The hold lasts --hold-time: an exporter that never comes back frees its UUID then. Also
 * after a clean stop (SIGTERM): the state file outlives the broker either way. The same
 * buffer shown by another client takes the UUID, but a protected entry only protected again.
 */
static void
test_broker_restart_hold_ends(void)
{
	struct broker b;
	struct crossbuf_client *owner, *other;
	struct crossbuf_buffer_info info = rgb_info();
	uint8_t uuid[16], uuid_prot[16];
	int fd, fd_prot, fd_other, status, r = -EEXIST;

	broker_start(&b, NULL, 0);
	owner = broker_client(&b, NULL, 0);
	fd = cb_test_memfd("gone", NULL, SIZE);
	fd_prot = cb_test_memfd("protected", NULL, SIZE);
	fd_other = cb_test_memfd("other", NULL, SIZE);
	g_assert_cmpint(crossbuf_client_export(owner, fd, &info, uuid), ==, 0);
	info.flags = CROSSBUF_BUFFER_PROTECTED;
	g_assert_cmpint(crossbuf_client_export(owner, fd_prot, &info, uuid_prot), ==, 0);
	info.flags = 0;

	g_assert_cmpint(kill(b.pid, SIGTERM), ==, 0);
	g_assert_cmpint(waitpid(b.pid, &status, 0), ==, b.pid);
	g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	b.hold = "1";
	broker_restart(&b, 0);
	other = broker_client(&b, NULL, 0);
	/* The protected entry's buffer, shown again without the flag: refused; with it: taken. */
	g_assert_cmpint(crossbuf_client_export_uuid(other, uuid_prot, fd_prot, &info), ==, -EEXIST);
	info.flags = CROSSBUF_BUFFER_PROTECTED;
	g_assert_cmpint(crossbuf_client_export_uuid(other, uuid_prot, fd_prot, &info), ==, 0);
	info.flags = 0;
	/* The other UUID is held until the hold ends (1 s), then anyone's. */
	g_assert_cmpint(crossbuf_client_export_uuid(other, uuid, fd_other, &info), ==, -EEXIST);
	for (int i = 0; i < 100 && r == -EEXIST; i++) {
		g_usleep(50000);
		r = crossbuf_client_export_uuid(other, uuid, fd_other, &info);
	}
	g_assert_cmpint(r, ==, 0);
	g_assert_true(broker_log_has(&b, "1 held UUIDs were not registered again: released"));

	close(fd);
	close(fd_prot);
	close(fd_other);
	crossbuf_client_unref(owner);
	crossbuf_client_unref(other);
	broker_stop(&b);
}

/* A state file cut short by a crash, or damaged, costs its bad lines, nothing else. */
static void
test_broker_state_file_damaged(void)
{
	struct broker b;
	struct crossbuf_client *c;
	struct crossbuf_buffer_info info = rgb_info();
	static const uint8_t held[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88,
					 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
	static const uint8_t freed[16] = {0x21, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88,
					  0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
	static const char text[] = "crossbufd-state 1\n"
				   "+ default 11223344-5566-4788-99aa-bbccddeeff01 1 2 0\n"
				   "+ default 21223344-5566-4788-99aa-bbccddeeff01 1 3 0\n"
				   "- default 21223344-5566-4788-99aa-bbccddeeff01\n"
				   "garbage\n"
				   "+ bad/domain 31223344-5566-4788-99aa-bbccddeeff01 1 4 0\n"
				   "+ default not-a-uuid 1 5 0\n"
				   "+ default 41223344-5566-4788-99aa-bbccddeeff01 1 -6 0\n"
				   "+ default 51223344-5566-4788-99aa-bbccddeeff01 1 7 0 extra\n"
				   "+ default 61223344-5566-4788-99aa-bbccddeeff01 1 8";
	int fd;

	broker_start(&b, NULL, 0);
	broker_kill(&b);
	g_assert_true(g_file_set_contents(b.state, text, sizeof(text) - 1, NULL));
	broker_restart(&b, 0);
	c = broker_client(&b, NULL, 0); /* the broker has read its state file by now */
	g_assert_true(broker_log_has(&b, "6 lines skipped"));
	g_assert_true(broker_log_has(&b, "1 UUIDs held for their exporters"));
	fd = cb_test_memfd("new", NULL, SIZE);
	g_assert_cmpint(crossbuf_client_export_uuid(c, held, fd, &info), ==, -EEXIST);
	g_assert_cmpint(crossbuf_client_export_uuid(c, freed, fd, &info), ==, 0);
	/* The file was rewritten: the damage is gone, the held UUID and the new entry kept. */
	{
		g_autofree char *now = NULL;

		g_assert_true(g_file_get_contents(b.state, &now, NULL, NULL));
		g_assert_true(g_str_has_prefix(now, "crossbufd-state 1\n"));
		g_assert_null(strstr(now, "garbage"));
		g_assert_nonnull(
			strstr(now, "+ default 11223344-5566-4788-99aa-bbccddeeff01 1 2 0\n"));
		g_assert_nonnull(strstr(now, "+ default 21223344-5566-4788-99aa-bbccddeeff01 "));
	}
	close(fd);
	crossbuf_client_unref(c);
	broker_stop(&b);
}

/*
 * A client's supplementary groups come from the socket (SO_PEERGROUPS), as they were when it
 * connected, not from the user database: a child given a group root is not a member of in
 * /etc/group joins the domain open to that group, and only with that group.
 */
static int
connect_with_groups(const struct broker *b, const gid_t *groups, size_t n, uint32_t rights)
{
	pid_t pid = fork();
	int status;

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		struct crossbuf_client *c = NULL;
		int r;

		if (setgroups(n, groups) < 0)
			_exit(3);
		if (crossbuf_client_new(&c) < 0 || crossbuf_client_set_domain(c, "vm0") < 0 ||
		    crossbuf_client_set_rights(c, rights) < 0)
			_exit(4);
		r = crossbuf_client_connect(c, b->socket);
		_exit(r == 0 ? 0 : r == -EPERM ? 1 : 2);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_broker_peer_groups(void)
{
	static const gid_t member[] = {4242}, protected_member[] = {4242, 4243}, none[] = {0};
	struct broker b;

	broker_start(&b, "[domain vm0]\nuids=\ngids=4242\nprotected-uids=\nprotected-gids=4243\n",
		     0);
	if (connect_with_groups(&b, member, 1, 0) == 3) {
		g_test_skip("setgroups() refused: needs CAP_SETGID to give a child other groups");
		broker_stop(&b);
		return;
	}
	g_assert_cmpint(connect_with_groups(&b, member, 1, 0), ==, 0);
	g_assert_cmpint(connect_with_groups(&b, member, 1, CROSSBUF_RIGHT_PROTECTED), ==, 1);
	g_assert_cmpint(connect_with_groups(&b, protected_member, 2, CROSSBUF_RIGHT_PROTECTED), ==,
			0);
	g_assert_cmpint(connect_with_groups(&b, none, 0, 0), ==, 1);
	g_assert_cmpint(connect_with_groups(&b, none, 1, 0), ==, 1);
	broker_stop(&b);
}

/* --- out of fds ---------------------------------------------------------------------------- */

static void
test_broker_out_of_fds(void)
{
	struct broker b;
	struct crossbuf_client *c, *late;
	struct crossbuf_buffer_info info = blob_info(0), got;
	uint8_t uuid[16], first[16];
	int fd, imported, r = 0, n = 0;

	/* A broker with room for a few dozen fds. */
	broker_start(&b, NULL, 48);
	c = broker_client(&b, NULL, 0);
	fd = cb_test_memfd("many", NULL, SIZE);
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, first), ==, 0);
	while (n < 200) {
		r = crossbuf_client_export(c, fd, &info, uuid);
		if (r < 0)
			break;
		n++;
	}
	/* It answers with an error instead of dying... */
	g_assert_cmpint(r, ==, -EMFILE);
	g_assert_cmpint(n, >, 10);
	/* ... new clients are dropped, not left hanging ... */
	g_assert_cmpint(crossbuf_client_new(&late), ==, 0);
	g_assert_cmpint(crossbuf_client_connect(late, b.socket), <, 0);
	crossbuf_client_unref(late);
	/* ... and it still serves the clients it has. */
	g_assert_cmpint(crossbuf_client_lookup(c, first, &got, &imported), ==, 0);
	close(imported);
	crossbuf_client_unref(c);
	close(fd);
	/* Once it has closed that client's fds, it takes new clients again. */
	broker_fd_count(&b);
	broker_wait_entries(&b, 0);
	broker_stop(&b);
}

/* --- systemd socket activation ----------------------------------------------------------- */

static void
test_socket_activation(void)
{
	struct broker b = {0};
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct crossbuf_client *c;
	struct crossbuf_buffer_info info = blob_info(0), got;
	uint8_t uuid[16];
	int listen_fd, fd, imported, status;
	pid_t pid;

	b.dir = g_dir_make_tmp("crossbuf-test-XXXXXX", NULL);
	b.socket = g_build_filename(b.dir, "activated.sock", NULL);
	b.config = g_build_filename(b.dir, "none.conf", NULL);
	g_strlcpy(addr.sun_path, b.socket, sizeof(addr.sun_path));
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	g_assert_cmpint(bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	g_assert_cmpint(listen(listen_fd, 16), ==, 0);

	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* As systemd does: the socket at fd 3, LISTEN_PID naming this process. */
		char pidstr[32];
		int devnull = open("/dev/null", O_WRONLY);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(devnull, 2);
		/* dup2() onto itself keeps close-on-exec: clear it explicitly. */
		if (dup2(listen_fd, 3) != 3 || fcntl(3, F_SETFD, 0) < 0)
			_exit(126);
		g_snprintf(pidstr, sizeof(pidstr), "%d", (int)getpid());
		setenv("LISTEN_PID", pidstr, 1);
		setenv("LISTEN_FDS", "1", 1);
		execl(g_getenv("CROSSBUFD"), "crossbufd", "--config", b.config, (char *)NULL);
		_exit(127);
	}
	close(listen_fd);
	b.pid = pid;

	/* The broker answers on the socket it was handed, which it did not create. */
	c = broker_client(&b, NULL, 0);
	fd = cb_test_memfd("activated", NULL, SIZE);
	g_assert_cmpint(crossbuf_client_export(c, fd, &info, uuid), ==, 0);
	g_assert_cmpint(crossbuf_client_lookup(c, uuid, &got, &imported), ==, 0);
	close(imported);
	close(fd);
	crossbuf_client_unref(c);
	g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	/* It leaves the socket file to systemd. */
	g_assert_true(g_file_test(b.socket, G_FILE_TEST_EXISTS));
	b.pid = 0;
	broker_stop(&b);
}

static void
test_command_line(void)
{
	const char *exe = g_getenv("CROSSBUFD");
	g_autofree char *out = NULL, *err = NULL;
	int status;
	char *help[] = {(char *)exe, "--help", NULL};
	char *version[] = {(char *)exe, "--version", NULL};
	char *bad[] = {(char *)exe, "--socket-mode", "999", NULL};
	char *extra[] = {(char *)exe, "surplus", NULL};
	char *badconf[] = {(char *)exe, "--config", "/proc/self/status", NULL};
	static const char *const bad_hold[] = {"",     "abc", "-1",
					       "3601", "1.5", "99999999999999999999"};

	g_assert_true(g_spawn_sync(NULL, help, NULL, 0, NULL, NULL, &out, NULL, &status, NULL));
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_assert_nonnull(strstr(out, "--socket"));
	g_clear_pointer(&out, g_free);
	g_assert_true(g_spawn_sync(NULL, version, NULL, 0, NULL, NULL, &out, NULL, &status, NULL));
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_assert_true(g_str_has_prefix(out, "crossbufd "));
	g_clear_pointer(&out, g_free);
	g_assert_true(g_spawn_sync(NULL, bad, NULL, 0, NULL, NULL, NULL, &err, &status, NULL));
	g_assert_false(g_spawn_check_wait_status(status, NULL));
	g_assert_nonnull(strstr(err, "--socket-mode"));
	g_clear_pointer(&err, g_free);
	g_assert_true(g_spawn_sync(NULL, extra, NULL, 0, NULL, NULL, NULL, &err, &status, NULL));
	g_assert_false(g_spawn_check_wait_status(status, NULL));
	g_clear_pointer(&err, g_free);
	for (unsigned i = 0; i < G_N_ELEMENTS(bad_hold); i++) {
		char *argv[] = {(char *)exe, "--hold-time", (char *)bad_hold[i], NULL};

		g_assert_true(
			g_spawn_sync(NULL, argv, NULL, 0, NULL, NULL, NULL, &err, &status, NULL));
		g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
		g_assert_nonnull(strstr(err, "--hold-time"));
		g_clear_pointer(&err, g_free);
	}
	/* A state file that cannot be opened (a folder): the broker does not start. */
	{
		g_autofree char *dir = g_dir_make_tmp("crossbuf-test-XXXXXX", NULL);
		g_autofree char *sock = g_build_filename(dir, "b.sock", NULL);
		g_autofree char *state = g_strdup_printf("--state-file=%s", dir);
		char *argv[] = {(char *)exe, "--socket", sock, state, NULL};

		g_assert_true(
			g_spawn_sync(NULL, argv, NULL, 0, NULL, NULL, NULL, &err, &status, NULL));
		g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
		g_assert_nonnull(strstr(err, "state file"));
		g_clear_pointer(&err, g_free);
		g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));
		g_assert_cmpint(rmdir(dir), ==, 0);
	}
	/* A malformed config is refused with the file named, before anything listens. */
	g_assert_true(g_spawn_sync(NULL, badconf, NULL, 0, NULL, NULL, NULL, &err, &status, NULL));
	g_assert_false(g_spawn_check_wait_status(status, NULL));
	g_assert_nonnull(strstr(err, "/proc/self/status"));
}

/* --- a broker that never answers ---------------------------------------------------------- */

static void
test_silent_broker_times_out(void)
{
	g_autofree char *dir = g_dir_make_tmp("crossbuf-test-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "silent.sock", NULL);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct crossbuf_client *c;
	int listen_fd;

	/* Connections are queued by the kernel and never accepted, let alone answered. */
	g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	g_assert_cmpint(bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	g_assert_cmpint(listen(listen_fd, 4), ==, 0);

	g_assert_cmpint(crossbuf_client_new(&c), ==, 0);
	/* The 5 s reply timeout ends the wait; meson's test timeout would catch a hang. */
	g_assert_cmpint(crossbuf_client_connect(c, path), ==, -ETIMEDOUT);
	crossbuf_client_unref(c);
	close(listen_fd);
	unlink(path);
	rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	cb_test_add("/registry/broker/cross-process-bytes", test_cross_process_bytes);
	cb_test_add("/registry/broker/sigkill-exporter-anywhere", test_sigkill_exporter_anywhere);
	cb_test_add("/registry/broker/refusals", test_refusals);
	cb_test_add("/registry/broker/other-uid-refused", test_other_uid_refused);
	cb_test_add("/registry/broker/malformed-messages", test_malformed_messages);
	cb_test_add("/registry/broker/unread-replies-do-not-block",
		    test_unread_replies_do_not_block);
	cb_test_add("/registry/broker/restart", test_broker_restart);
	cb_test_add("/registry/broker/restart-watch-grace", test_broker_restart_watch_grace);
	cb_test_add("/registry/broker/restart-holds-uuids", test_broker_restart_holds_uuids);
	cb_test_add("/registry/broker/restart-hold-ends", test_broker_restart_hold_ends);
	cb_test_add("/registry/broker/state-file-damaged", test_broker_state_file_damaged);
	cb_test_add("/registry/broker/peer-groups", test_broker_peer_groups);
	cb_test_add("/registry/broker/out-of-fds", test_broker_out_of_fds);
	cb_test_add("/registry/broker/socket-activation", test_socket_activation);
	cb_test_add("/registry/broker/command-line", test_command_line);
	cb_test_add("/registry/broker/silent-broker-times-out", test_silent_broker_times_out);
	return g_test_run();
}
