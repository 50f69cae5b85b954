/* SPDX-License-Identifier: MIT */
/*
 * Lookup latency over the broker socket, against the floor of the transport itself.
 *
 * Three ways of getting one fd from another process for a 16-byte name, timed one round
 * trip at a time, in interleaved rounds so that the noise of a shared machine falls on all
 * of them alike:
 *
 *   floor        a bare request/reply on a SOCK_SEQPACKET socketpair to a forked server
 *                that answers each request packet with a reply packet carrying one memfd
 *                (SCM_RIGHTS): blocking sendmsg() and recvmsg() on both sides, the same
 *                packet sizes as a LOOKUP and its reply, nothing else;
 *   raw          the same bare client, speaking the crossbuf protocol to a real crossbufd
 *                (one HELLO, then LOOKUP packets): the broker's own cost over the floor;
 *   libcrossbuf  crossbuf_client_lookup() to the same crossbufd: what applications get.
 *
 * Every variant closes the fd it receives, as a consumer would. The entries (256 of them,
 * all sharing one sealed memfd) are looked up in a random order. The ratio that matters is
 * p50(libcrossbuf) / p50(floor); the goal (issue 2) is 1.25 or less. It is printed, never
 * asserted: the program fails only when a lookup fails or returns no fd.
 *
 * Usage: bench-lookup [--crossbufd PATH] [--pin] [rounds [batch]]
 *   --pin  puts this process on CPU 0 and both servers on CPU 1 (default: no pinning).
 */
#include "bench-util.h"
#include "protocol.h"

#include <errno.h>
#include <glib.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_ENTRIES 256
#define WARMUP    2000

enum variant {
	FLOOR,
	RAW,
	LIBCROSSBUF,
	N_VARIANTS,
};

static const char *const variant_name[N_VARIANTS] = {
	[FLOOR] = "floor (bare SCM_RIGHTS)",
	[RAW] = "crossbufd, raw protocol",
	[LIBCROSSBUF] = "crossbufd, libcrossbuf",
};

#define REPLY_SIZE (sizeof(struct cb_msg_reply) + sizeof(struct cb_reply_lookup))

/* --- The floor's server ------------------------------------------------------------------ */

/* Sends len bytes of buf with fd (borrowed) attached, or without if fd < 0. */
static int
send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

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
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

/*
 * Receives one packet into buf (cap bytes) and the fd it carries, blocking. Returns the
 * packet's length with *ret_fd set (new, or -1), or -errno.
 */
static ssize_t
recv_with_fd(int sock, void *buf, size_t cap, int *ret_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	*ret_fd = -1;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
	    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(ret_fd, CMSG_DATA(cmsg), sizeof(int));
	return n;
}

static _Noreturn void
floor_server(int sock, int memfd)
{
	uint8_t req[CB_MSG_MAX_SIZE], rep[REPLY_SIZE];

	memset(rep, 0, sizeof(rep));
	for (;;) {
		ssize_t n = recv(sock, req, sizeof(req), 0);
		if (n <= 0)
			_exit(n == 0 ? 0 : 1);
		/* Echo the serial, as any request/reply protocol would. */
		memcpy(rep + 4, req + 4, 4);
		if (send_with_fd(sock, rep, sizeof(rep), memfd) < 0)
			_exit(1);
	}
}

static int
floor_start(int memfd, pid_t *ret_pid)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		floor_server(sv[1], memfd);
	}
	close(sv[1]);
	*ret_pid = pid;
	return sv[0];
}

/* --- The bare client, for the floor and the raw protocol ----------------------------- */

struct raw {
	int sock;
	uint32_t serial;
};

/* One request/reply: sends a LOOKUP of uuid, receives the reply and closes its fd. */
static int
raw_lookup(struct raw *raw, const uint8_t uuid[CROSSBUF_UUID_SIZE])
{
	struct cb_msg_uuid req = {
		.hdr = {.type = CB_MSG_LOOKUP, .serial = ++raw->serial, .size = sizeof(req)},
	};
	uint8_t rep[CB_MSG_MAX_SIZE];
	struct cb_msg_reply hdr;
	ssize_t n;
	int fd, r;

	memcpy(req.uuid, uuid, CROSSBUF_UUID_SIZE);
	r = send_with_fd(raw->sock, &req, sizeof(req), -1);
	if (r < 0)
		return r;
	n = recv_with_fd(raw->sock, rep, sizeof(rep), &fd);
	if (n < 0)
		return (int)n;
	if (fd < 0)
		return -EPROTO;
	close(fd);
	if ((size_t)n != REPLY_SIZE)
		return -EPROTO;
	memcpy(&hdr, rep, sizeof(hdr));
	if (hdr.hdr.serial != raw->serial)
		return -EPROTO;
	return hdr.status;
}

static int
raw_connect(const char *path, struct raw *raw)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct cb_msg_hello hello = {
		.hdr = {.type = CB_MSG_HELLO, .serial = 1, .size = sizeof(hello)},
		.version = CB_PROTOCOL_VERSION,
		.device_kind = CROSSBUF_DEVICE_MEDIA,
	};
	uint8_t rep[CB_MSG_MAX_SIZE];
	struct cb_msg_reply hdr;
	ssize_t n;
	int fd;

	raw->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	raw->serial = 1;
	if (raw->sock < 0)
		return -errno;
	g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
	g_strlcpy(hello.domain, CROSSBUF_DEFAULT_DOMAIN, sizeof(hello.domain));
	if (connect(raw->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    send_with_fd(raw->sock, &hello, sizeof(hello), -1) < 0)
		return -errno;
	n = recv_with_fd(raw->sock, rep, sizeof(rep), &fd);
	if (n < (ssize_t)sizeof(hdr))
		return n < 0 ? (int)n : -EPROTO;
	if (fd >= 0)
		close(fd);
	memcpy(&hdr, rep, sizeof(hdr));
	return hdr.status;
}

/* --- Measurement ------------------------------------------------------------------------- */

struct ctx {
	struct raw floor;
	struct raw raw;
	struct crossbuf_client *client;
	uint8_t (*uuids)[CROSSBUF_UUID_SIZE];
	uint32_t *order;
	size_t n_order;
	size_t next;
};

static int
one_lookup(struct ctx *x, enum variant v)
{
	const uint8_t *uuid = x->uuids[x->order[x->next++ % x->n_order]];
	struct crossbuf_buffer_info info;
	int fd, r;

	switch (v) {
	case FLOOR:
		return raw_lookup(&x->floor, uuid);
	case RAW:
		return raw_lookup(&x->raw, uuid);
	case LIBCROSSBUF:
		r = crossbuf_client_lookup(x->client, uuid, &info, &fd);
		if (r < 0)
			return r;
		close(fd);
		return info.size == BENCH_SIZE ? 0 : -EPROTO;
	case N_VARIANTS:
		break;
	}
	return -EINVAL;
}

/* Times n lookups of one variant into out[]; 0 or the first error. */
static int
run_batch(struct ctx *x, enum variant v, uint64_t *out, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		int r = one_lookup(x, v);
		uint64_t t1 = bench_now_ns();

		if (r < 0) {
			fprintf(stderr, "%s: lookup failed: %s\n", variant_name[v], strerror(-r));
			return r;
		}
		if (out != NULL)
			out[i] = t1 - t0;
	}
	return 0;
}

static void
pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(pid, sizeof(set), &set) < 0)
		fprintf(stderr, "# cannot pin pid %d to CPU %d: %s\n", (int)pid, cpu,
			strerror(errno));
}

static int
exports(struct crossbuf_client *exporter, int memfd, uint8_t (*uuids)[CROSSBUF_UUID_SIZE])
{
	struct crossbuf_buffer_info info;

	bench_info(&info);
	for (unsigned i = 0; i < N_ENTRIES; i++) {
		int r = crossbuf_client_export(exporter, memfd, &info, uuids[i]);
		if (r < 0) {
			fprintf(stderr, "export failed: %s\n", strerror(-r));
			return r;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *exe = bench_crossbufd_path(&argc, argv);
	unsigned rounds = 50, batch = 2000;
	bool do_pin = false;
	struct bench_broker broker;
	struct crossbuf_client *exporter = NULL;
	struct ctx x = {.floor.sock = -1, .raw.sock = -1};
	uint64_t *lat[N_VARIANTS] = {0}, *round_p50[N_VARIANTS] = {0}, *tmp = NULL;
	double *ratio = NULL;
	pid_t floor_pid = 0;
	int memfd, status, r, ret = EXIT_FAILURE;
	unsigned argi = 1;
	GRand *rand;

	if (argi < (unsigned)argc && strcmp(argv[argi], "--pin") == 0) {
		do_pin = true;
		argi++;
	}
	if (argi < (unsigned)argc)
		rounds = (unsigned)CLAMP(atoi(argv[argi]), 1, 100000);
	if (++argi < (unsigned)argc)
		batch = (unsigned)CLAMP(atoi(argv[argi]), 1, 1000000);
	if (exe == NULL) {
		fprintf(stderr, "bench-lookup: set $CROSSBUFD or pass --crossbufd PATH\n");
		return 77;
	}

	memfd = bench_memfd();
	if (memfd < 0) {
		fprintf(stderr, "memfd: %s\n", strerror(-memfd));
		return EXIT_FAILURE;
	}
	r = bench_broker_start(&broker, exe, NULL);
	if (r < 0) {
		close(memfd);
		return EXIT_FAILURE;
	}
	x.floor.sock = floor_start(memfd, &floor_pid);
	if (x.floor.sock < 0) {
		fprintf(stderr, "floor server: %s\n", strerror(-x.floor.sock));
		goto out;
	}
	if (do_pin) {
		pin(0, 0);
		pin(floor_pid, 1);
		pin(broker.pid, 1);
	}

	x.uuids = g_malloc_n(N_ENTRIES, CROSSBUF_UUID_SIZE);
	exporter = bench_broker_client(&broker, 0);
	if (exporter == NULL || exports(exporter, memfd, x.uuids) < 0)
		goto out;
	x.client = bench_broker_client(&broker, 0);
	if (x.client == NULL)
		goto out;
	r = raw_connect(broker.socket, &x.raw);
	if (r < 0) {
		fprintf(stderr, "raw connection to crossbufd: %s\n", strerror(-r));
		goto out;
	}

	rand = g_rand_new();
	x.n_order = 65536;
	x.order = g_new(uint32_t, x.n_order);
	for (size_t i = 0; i < x.n_order; i++)
		x.order[i] = (uint32_t)g_rand_int_range(rand, 0, N_ENTRIES);
	g_rand_free(rand);

	for (int v = 0; v < N_VARIANTS; v++) {
		lat[v] = g_new(uint64_t, (size_t)rounds * batch);
		round_p50[v] = g_new(uint64_t, rounds);
		if (run_batch(&x, v, NULL, WARMUP) < 0)
			goto out;
	}
	tmp = g_new(uint64_t, batch);
	ratio = g_new(double, rounds);

	for (unsigned round = 0; round < rounds; round++) {
		/* A different variant goes first in each round. */
		for (int k = 0; k < N_VARIANTS; k++) {
			int v = (int)((round + (unsigned)k) % N_VARIANTS);
			uint64_t *out = lat[v] + (size_t)round * batch;

			if (run_batch(&x, v, out, batch) < 0)
				goto out;
			memcpy(tmp, out, batch * sizeof(*tmp));
			round_p50[v][round] = bench_percentile_u64(tmp, batch, 50);
		}
		ratio[round] =
			(double)round_p50[LIBCROSSBUF][round] / (double)round_p50[FLOOR][round];
	}

#ifndef __OPTIMIZE__
	printf("# note: built without optimisation; use a release build for real numbers\n");
#endif
	printf("# lookup round trip to another process over AF_UNIX SOCK_SEQPACKET, one fd per\n"
	       "# reply (SCM_RIGHTS), closed on arrival; %u lookups per variant in %u interleaved\n"
	       "# rounds of %u, over %u entries in random order; %s; microseconds\n",
	       rounds * batch, rounds, batch, N_ENTRIES,
	       do_pin ? "client on CPU 0, servers on CPU 1" : "no CPU pinning");
	printf("# variant                      p50       p99   p50/floor  p99/floor\n");
	{
		uint64_t p50[N_VARIANTS], p99[N_VARIANTS];
		size_t n = (size_t)rounds * batch;
		double goal;

		for (int v = 0; v < N_VARIANTS; v++) {
			p50[v] = bench_percentile_u64(lat[v], n, 50);
			p99[v] = bench_percentile_u64(lat[v], n, 99);
		}
		for (int v = 0; v < N_VARIANTS; v++)
			printf("%-26s %9.2f %9.2f  %9.2f  %9.2f\n", variant_name[v], p50[v] / 1e3,
			       p99[v] / 1e3, (double)p50[v] / (double)p50[FLOOR],
			       (double)p99[v] / (double)p99[FLOOR]);
		goal = (double)p50[LIBCROSSBUF] / (double)p50[FLOOR];
		printf("# median over rounds of p50(libcrossbuf)/p50(floor): %.2f\n",
		       bench_median(ratio, rounds));
		printf("# goal p50(libcrossbuf)/p50(floor) <= 1.25: %.2f, %s\n", goal,
		       goal <= 1.25 ? "met" : "NOT met");
	}
	ret = EXIT_SUCCESS;

out:
	if (x.raw.sock >= 0)
		close(x.raw.sock);
	crossbuf_client_unref(x.client);
	crossbuf_client_unref(exporter);
	if (x.floor.sock >= 0)
		close(x.floor.sock);
	if (floor_pid > 0)
		waitpid(floor_pid, &status, 0);
	if (bench_broker_stop(&broker) < 0)
		ret = EXIT_FAILURE;
	close(memfd);
	for (int v = 0; v < N_VARIANTS; v++) {
		g_free(lat[v]);
		g_free(round_p50[v]);
	}
	g_free(tmp);
	g_free(ratio);
	g_free(x.order);
	g_free(x.uuids);
	return ret;
}
