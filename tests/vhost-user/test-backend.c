/* SPDX-License-Identifier: MIT */
/*
 * The backend and frontend libraries end to end: the echo device (echo-device.h) runs in a
 * thread behind a real unix socket, the frontend drives it with guest RAM in a memfd, rings
 * in that RAM and eventfds.
 */
#include "echo-device.h"
#include "frontend.h"
#include "testutil.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RAM_SIZE   (8u << 20)
#define QSIZE      64
#define TIMEOUT_MS 10000

static const uint64_t all_protocol =
	(1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) |
	(1ull << VU_PROTOCOL_F_BACKEND_REQ) | (1ull << VU_PROTOCOL_F_CONFIG) |
	(1ull << VU_PROTOCOL_F_SHARED_OBJECT) | (1ull << VU_PROTOCOL_F_SHMEM);

/* Whether frontends ask for VIRTIO_RING_F_EVENT_IDX: tests run both ways. */
static uint64_t event_idx = 1ull << VIRTIO_RING_F_EVENT_IDX;

static struct vu_frontend *
fe_connect(struct echo_device *d, uint64_t protocol, unsigned n_regions)
{
	struct vu_frontend *f;

	g_assert_cmpint(vu_frontend_connect(d->path, RAM_SIZE, &f), ==, 0);
	if (n_regions > 1)
		g_assert_cmpint(vu_frontend_set_regions(f, n_regions), ==, 0);
	g_assert_cmpint(vu_frontend_negotiate(f, (1ull << ECHO_FEATURE_BIT) | event_idx, protocol),
			==, 0);
	g_assert_cmpint(vu_frontend_queue_setup(f, 0, QSIZE), ==, 0);
	return f;
}

/* Guest RAM for one request: a readable header + data area and a writable area. */
struct area {
	uint64_t in_gpa;
	uint64_t out_gpa;
	size_t cap;
};

static void
area_alloc(struct vu_frontend *f, struct area *a, size_t cap)
{
	a->cap = cap;
	g_assert_cmpint(vu_frontend_alloc(f, 16 + cap, 64, &a->in_gpa), ==, 0);
	g_assert_cmpint(vu_frontend_alloc(f, cap, 64, &a->out_gpa), ==, 0);
}

static void
put_header(struct vu_frontend *f, const struct area *a, enum echo_op op, uint64_t arg)
{
	uint8_t *h = vu_frontend_ram(f, a->in_gpa, 16);

	memset(h, 0, 16);
	h[0] = op;
	arg = htole64(arg);
	memcpy(h + 8, &arg, 8);
}

/*
 * Splits [gpa, gpa + len) into n pieces appended to bufs. Empty pieces are allowed: the
 * device skips zero-length descriptors.
 */
static unsigned
split(struct vu_buf *bufs, unsigned at, uint64_t gpa, size_t len, unsigned n, bool writable)
{
	size_t piece = len / n;

	for (unsigned i = 0; i < n; i++) {
		size_t l = i + 1 == n ? len - piece * i : piece;
		bufs[at++] = (struct vu_buf){
			.gpa = gpa + piece * i, .len = (uint32_t)l, .writable = writable};
	}
	return at;
}

/* One echo request of len bytes; checks the answer. */
static void
echo(struct vu_frontend *f, unsigned q, const struct area *a, size_t len, unsigned n_in,
     unsigned n_out, bool indirect, uint32_t seed)
{
	struct vu_buf bufs[16];
	uint8_t *data = vu_frontend_ram(f, a->in_gpa + 16, len ? len : 1);
	uint8_t *out = vu_frontend_ram(f, a->out_gpa, len ? len : 1);
	uint8_t *expect = g_malloc(len + 1);
	unsigned n;
	uint16_t head, got_head;
	uint32_t used;

	g_assert_cmpuint(len, <=, a->cap);
	put_header(f, a, ECHO_OP_ECHO, 0);
	cb_test_pattern(data, len, seed);
	memset(out, 0, len);
	n = split(bufs, 0, a->in_gpa, 16 + len, n_in, false);
	n = split(bufs, n, a->out_gpa, len, n_out, true);
	g_assert_cmpint(vu_frontend_queue_add(f, q, bufs, n, indirect, &head), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, q), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, q, TIMEOUT_MS, &got_head, &used), ==, 0);
	g_assert_cmpuint(got_head, ==, head);
	g_assert_cmpuint(used, ==, len);
	cb_test_pattern(expect, len, seed);
	for (size_t i = 0; i < len; i++)
		expect[i] ^= 0x5a;
	g_assert_cmpmem(out, len, expect, len);
	g_free(expect);
}

/* A control request (MAP, UNMAP, OBJ_*): returns the device's le32 result. */
static int32_t
control(struct vu_frontend *f, const struct area *a, enum echo_op op, uint64_t arg,
	const void *data, size_t len)
{
	struct vu_buf bufs[2] = {
		{.gpa = a->in_gpa, .len = (uint32_t)(16 + len)},
		{.gpa = a->out_gpa, .len = 4, .writable = true},
	};
	uint32_t used;
	int32_t result;

	put_header(f, a, op, arg);
	if (len)
		memcpy(vu_frontend_ram(f, a->in_gpa + 16, len), data, len);
	g_assert_cmpint(vu_frontend_queue_add(f, 0, bufs, 2, false, NULL), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, NULL, &used), ==, 0);
	g_assert_cmpuint(used, ==, 4);
	memcpy(&result, vu_frontend_ram(f, a->out_gpa, 4), 4);
	return (int32_t)le32toh((uint32_t)result);
}

/* A new frontend can connect and be served: what every failure test ends with. */
static void
assert_serves_next(struct echo_device *d)
{
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct area a;

	area_alloc(f, &a, 4096);
	echo(f, 0, &a, 1000, 1, 1, false, 99);
	vu_frontend_free(f);
}

static void
test_negotiate(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	uint64_t want = (1ull << ECHO_FEATURE_BIT) | (1ull << VIRTIO_F_VERSION_1) |
			(1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VU_F_PROTOCOL_FEATURES) |
			(1ull << VIRTIO_RING_F_EVENT_IDX);

	g_assert_cmphex(vu_frontend_features(f), ==, want);
	g_assert_cmphex(vu_frontend_protocol_features(f), ==, all_protocol);
	g_assert_cmpuint(vu_frontend_queue_num(f), ==, ECHO_N_QUEUES);
	g_mutex_lock(&d->lock);
	g_assert_cmphex(d->features, ==, want);
	g_assert_cmpuint(d->queue_starts, ==, 1);
	g_mutex_unlock(&d->lock);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_wait_ended(d, 1), ==, 0);
	g_mutex_lock(&d->lock);
	g_assert_cmpuint(d->queue_stops, ==, 1);
	g_assert_cmpuint(d->resets, >=, 1);
	g_mutex_unlock(&d->lock);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_config(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	uint8_t cfg[ECHO_CONFIG_SIZE], name[8] = "crossbuf";
	uint32_t v;

	g_assert_cmpint(vu_frontend_get_config(f, 0, cfg, sizeof(cfg)), ==, 0);
	memcpy(&v, cfg, 4);
	g_assert_cmphex(le32toh(v), ==, ECHO_MAGIC);
	/* Writable bytes take, read-only ones are refused through REPLY_ACK. */
	g_assert_cmpint(vu_frontend_set_config(f, 8, name, 8), ==, 0);
	g_assert_cmpint(vu_frontend_set_config(f, 0, name, 4), ==, -EIO);
	g_assert_cmpint(vu_frontend_get_config(f, 8, cfg, 8), ==, 0);
	g_assert_cmpmem(cfg, 8, name, 8);
	/* Past the device's config space: an empty reply, the connection lives on. */
	g_assert_cmpint(vu_frontend_get_config(f, 8, cfg, 16), ==, -EBADMSG);
	g_assert_cmpint(vu_frontend_get_config(f, 4, cfg, 4), ==, 0);
	/* The device says its config changed, over the backend channel. */
	{
		struct area a;
		area_alloc(f, &a, 64);
		g_assert_cmpuint(vu_frontend_config_changes(f), ==, 0);
		g_assert_cmpint(control(f, &a, ECHO_OP_CONFIG_CHANGED, 0, NULL, 0), ==, 0);
		g_assert_cmpuint(vu_frontend_config_changes(f), ==, 1);
	}
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_many_requests(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	GRand *rand = g_rand_new_with_seed(5);
	unsigned n = g_getenv("CROSSBUF_UNDER_VALGRIND") ? 200 : 2000;
	struct area a;

	g_assert_cmpint(vu_frontend_queue_setup(f, 1, QSIZE), ==, 0);
	area_alloc(f, &a, 65536);
	for (unsigned i = 0; i < n; i++) {
		size_t len = g_rand_int_range(rand, 0, 65537);
		unsigned n_in = g_rand_int_range(rand, 1, 5);
		unsigned n_out = g_rand_int_range(rand, 1, 5);
		echo(f, i % 2, &a, len, n_in, n_out, g_rand_boolean(rand), i);
	}
	g_assert_cmpint(vu_frontend_get_config(f, 4, &n, 4), ==, 0);
	g_rand_free(rand);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_many_requests_no_event_idx(void)
{
	event_idx = 0;
	test_many_requests();
	event_idx = 1ull << VIRTIO_RING_F_EVENT_IDX;
}

static void
test_in_flight(void)
{
	/* A full ring in one kick: 8 direct chains of 2 descriptors and 48 indirect ones. */
	enum { N_DIRECT = 8, N = QSIZE - N_DIRECT };
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct area a[N];
	bool seen[N] = {false};
	uint16_t heads[N];

	for (unsigned i = 0; i < N; i++) {
		struct vu_buf bufs[2];

		area_alloc(f, &a[i], 256);
		put_header(f, &a[i], ECHO_OP_ECHO, 0);
		memset(vu_frontend_ram(f, a[i].in_gpa + 16, 256), i, 256);
		bufs[0] = (struct vu_buf){.gpa = a[i].in_gpa, .len = 16 + 256};
		bufs[1] = (struct vu_buf){.gpa = a[i].out_gpa, .len = 256, .writable = true};
		g_assert_cmpint(vu_frontend_queue_add(f, 0, bufs, 2, i >= N_DIRECT, &heads[i]), ==,
				0);
	}
	g_assert_cmpint(vu_frontend_queue_add(f, 0,
					      (struct vu_buf[]){{.gpa = a[0].in_gpa, .len = 16}}, 1,
					      false, NULL),
			==, -ENOSPC);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	for (unsigned i = 0; i < N; i++) {
		uint16_t head;
		uint32_t used;
		unsigned k;

		g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, &head, &used), ==, 0);
		g_assert_cmpuint(used, ==, 256);
		for (k = 0; k < N && heads[k] != head; k++)
			;
		g_assert_cmpuint(k, <, N);
		g_assert_false(seen[k]);
		seen[k] = true;
		g_assert_cmpuint(*(uint8_t *)vu_frontend_ram(f, a[k].out_gpa + 100, 1), ==,
				 (uint8_t)(k ^ 0x5a));
	}
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_indirect(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct area a;

	area_alloc(f, &a, 8192);
	echo(f, 0, &a, 8192, 8, 8, true, 1);
	echo(f, 0, &a, 100, 1, 1, true, 2);
	/* Zero-length descriptors inside an indirect table are skipped. */
	echo(f, 0, &a, 3, 5, 7, true, 3);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_multi_region(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 4);
	uint64_t boundary = RAM_SIZE / 4;
	uint64_t gpa;
	struct area a;

	/* Buffers that straddle the boundary between regions 0 and 1. */
	do
		g_assert_cmpint(vu_frontend_alloc(f, 4096, 4096, &gpa), ==, 0);
	while (gpa + 8192 < boundary);
	a.cap = 4096;
	a.in_gpa = boundary - 2000;
	a.out_gpa = boundary + 100000;
	echo(f, 0, &a, 4000, 1, 1, false, 4);
	a.in_gpa = boundary - 100000;
	a.out_gpa = boundary - 1000;
	echo(f, 0, &a, 4000, 2, 1, true, 5);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

/* Two devices of one guest see the same RAM, as two backends of one VM do. */
static void
test_shared_ram(void)
{
	struct echo_device *d1 = echo_device_start(), *d2 = echo_device_start();
	struct vu_frontend *f1, *f2;
	struct area a1, a2;

	g_assert_cmpint(vu_frontend_connect(d1->path, RAM_SIZE, &f1), ==, 0);
	g_assert_cmpint(vu_frontend_connect(d2->path, RAM_SIZE, &f2), ==, 0);
	g_assert_cmpint(vu_frontend_share_ram(f2, f2), ==, -EINVAL);
	g_assert_cmpint(vu_frontend_share_ram(f2, f1), ==, 0);
	g_assert_cmpint(vu_frontend_ram_fd(f2), ==, vu_frontend_ram_fd(f1));
	g_assert_cmpuint(vu_frontend_ram_size(f2), ==, vu_frontend_ram_size(f1));
	g_assert_cmpint(
		vu_frontend_negotiate(f1, (1ull << ECHO_FEATURE_BIT) | event_idx, all_protocol), ==,
		0);
	g_assert_cmpint(
		vu_frontend_negotiate(f2, (1ull << ECHO_FEATURE_BIT) | event_idx, all_protocol), ==,
		0);
	/* Once SET_MEM_TABLE went out, the RAM cannot change under the backend. */
	g_assert_cmpint(vu_frontend_share_ram(f1, f2), ==, -EBUSY);

	/* One allocator: the two frontends' allocations never overlap. */
	g_assert_cmpint(vu_frontend_queue_setup(f1, 0, QSIZE), ==, 0);
	g_assert_cmpint(vu_frontend_queue_setup(f2, 0, QSIZE), ==, 0);
	area_alloc(f1, &a1, 4096);
	area_alloc(f2, &a2, 4096);
	g_assert_true(a2.in_gpa >= a1.out_gpa + a1.cap || a1.in_gpa >= a2.out_gpa + a2.cap);
	g_assert_true(vu_frontend_ram(f1, a2.in_gpa, 16) == vu_frontend_ram(f2, a2.in_gpa, 16));
	echo(f1, 0, &a1, 4000, 1, 1, false, 1);
	echo(f2, 0, &a2, 4000, 2, 2, true, 2);

	/* The RAM outlives the frontend that made it. */
	vu_frontend_free(f1);
	echo(f2, 0, &a2, 3000, 1, 3, false, 3);
	vu_frontend_free(f2);
	g_assert_cmpint(echo_device_stop(d1), ==, 0);
	g_assert_cmpint(echo_device_stop(d2), ==, 0);
}

static void
test_reconnect(void)
{
	struct echo_device *d = echo_device_start();

	for (unsigned i = 0; i < 3; i++) {
		struct vu_frontend *f = fe_connect(d, all_protocol, 1);
		struct area a;

		area_alloc(f, &a, 4096);
		echo(f, 0, &a, 4096, 2, 2, i == 1, i);
		vu_frontend_free(f);
		g_assert_cmpint(echo_device_wait_ended(d, i + 1), ==, 0);
	}
	/* A frontend that knows no protocol features: rings start enabled, no acks. */
	{
		struct vu_frontend *f;
		struct area a;

		g_assert_cmpint(vu_frontend_connect(d->path, RAM_SIZE, &f), ==, 0);
		g_assert_cmpint(vu_frontend_negotiate(f, 0, 0), ==, 0);
		g_assert_cmpint(vu_frontend_queue_setup(f, 0, 16), ==, 0);
		area_alloc(f, &a, 4096);
		echo(f, 0, &a, 10, 1, 1, false, 9);
		/* Without REPLY_ACK a refused SET_CONFIG goes unnoticed but harms nothing. */
		vu_frontend_free(f);
	}
	g_mutex_lock(&d->lock);
	g_assert_cmpuint(d->resets, >=, 3);
	g_mutex_unlock(&d->lock);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_stop_ring(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct vu_buf bufs[2];
	struct area a;
	uint16_t base;

	area_alloc(f, &a, 64);
	echo(f, 0, &a, 10, 1, 1, false, 1);
	/* A request the device holds when the ring stops: its completion is refused. */
	put_header(f, &a, ECHO_OP_HOLD, 0);
	bufs[0] = (struct vu_buf){.gpa = a.in_gpa, .len = 16};
	bufs[1] = (struct vu_buf){.gpa = a.out_gpa, .len = 4, .writable = true};
	g_assert_cmpint(vu_frontend_queue_add(f, 0, bufs, 2, false, NULL), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, 100, NULL, NULL), ==, -ETIMEDOUT);
	g_assert_cmpint(vu_frontend_queue_stop(f, 0, &base), ==, 0);
	g_assert_cmpuint(base, ==, 2);
	g_mutex_lock(&d->lock);
	g_assert_cmpuint(d->stale_completions, ==, 1);
	g_assert_cmpuint(d->queue_stops, ==, 1);
	g_mutex_unlock(&d->lock);
	/* The ring starts again. */
	g_assert_cmpint(vu_frontend_queue_setup(f, 0, QSIZE), ==, 0);
	echo(f, 0, &a, 64, 1, 1, false, 2);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

/* A new memory table while the device holds a request: its buffers stay valid. */
static void
test_mem_table_in_flight(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 2);
	struct vu_buf bufs[2], rel[2];
	struct area held, a;
	uint16_t head, got, rel_head;
	uint32_t used, v;

	area_alloc(f, &held, 64);
	area_alloc(f, &a, 64);
	put_header(f, &held, ECHO_OP_HOLD, 0);
	bufs[0] = (struct vu_buf){.gpa = held.in_gpa, .len = 16};
	bufs[1] = (struct vu_buf){.gpa = held.out_gpa, .len = 4, .writable = true};
	g_assert_cmpint(vu_frontend_queue_add(f, 0, bufs, 2, false, &head), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, 100, NULL, NULL), ==, -ETIMEDOUT);
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(vu_frontend_set_mem_table(f), ==, 0);
	/* The held request is written through the old mapping, the new one serves the rest. */
	echo(f, 0, &a, 32, 1, 1, false, 3);
	put_header(f, &a, ECHO_OP_RELEASE, 0);
	rel[0] = (struct vu_buf){.gpa = a.in_gpa, .len = 16};
	rel[1] = (struct vu_buf){.gpa = a.out_gpa, .len = 4, .writable = true};
	g_assert_cmpint(vu_frontend_queue_add(f, 0, rel, 2, false, &rel_head), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, &got, &used), ==, 0);
	g_assert_cmpuint(got, ==, head);
	g_assert_cmpuint(used, ==, 4);
	memcpy(&v, vu_frontend_ram(f, held.out_gpa, 4), 4);
	g_assert_cmphex(le32toh(v), ==, ECHO_RELEASED);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, &got, &used), ==, 0);
	g_assert_cmpuint(got, ==, rel_head);
	memcpy(&v, vu_frontend_ram(f, a.out_gpa, 4), 4);
	g_assert_cmpint(le32toh(v), ==, 0);
	/* Tables pile up only while requests are held: a fifth is one too many. */
	g_assert_cmpint(vu_frontend_set_mem_table(f), ==, 0);
	put_header(f, &held, ECHO_OP_HOLD, 0);
	g_assert_cmpint(vu_frontend_queue_add(f, 0, bufs, 2, false, &head), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, 100, NULL, NULL), ==, -ETIMEDOUT);
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmpint(vu_frontend_set_mem_table(f), ==, 0);
	g_assert_cmpint(vu_frontend_set_mem_table(f), <, 0);
	g_assert_cmpint(echo_device_wait_ended(d, 1), ==, -EBADMSG);
	vu_frontend_free(f);
	assert_serves_next(d);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_reset_owner(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct vu_msg msg;
	struct area a;

	area_alloc(f, &a, 64);
	echo(f, 0, &a, 64, 1, 1, false, 1);
	vu_msg_init(&msg, VU_REQ_RESET_OWNER, 0, 0);
	g_assert_cmpint(vu_frontend_request(f, &msg, true, NULL), ==, 0);
	g_mutex_lock(&d->lock);
	g_assert_cmpuint(d->resets, ==, 1);
	g_assert_cmpuint(d->queue_stops, ==, 1);
	g_mutex_unlock(&d->lock);
	/* The same connection sets the device up again. */
	g_assert_cmpint(vu_frontend_negotiate(f, 0, all_protocol), ==, 0);
	g_assert_cmpint(vu_frontend_queue_setup(f, 0, QSIZE), ==, 0);
	echo(f, 0, &a, 64, 1, 1, true, 2);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_deferred(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct area a;

	area_alloc(f, &a, 64);
	for (unsigned i = 0; i < 10; i++) {
		memset(vu_frontend_ram(f, a.out_gpa, 4), 0xff, 4);
		g_assert_cmpint(control(f, &a, ECHO_OP_DEFER, 0, NULL, 0), ==, 0);
	}
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_gpu_socket(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct vu_msg msg;
	char buf[4] = {0};
	int sv[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	vu_msg_init(&msg, VU_REQ_GPU_SET_SOCKET, 0, 0);
	msg.fds[0] = sv[1];
	msg.n_fds = 1;
	g_assert_cmpint(vu_frontend_request(f, &msg, true, NULL), ==, 0);
	close(sv[1]);
	g_assert_cmpint(read(sv[0], buf, 3), ==, 3);
	g_assert_cmpstr(buf, ==, "gpu");
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_wait_ended(d, 1), ==, 0);
	/* The device let go of the socket with the connection. */
	g_assert_cmpint(read(sv[0], buf, 3), ==, 0);
	close(sv[0]);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
enable(struct vu_frontend *f, unsigned q, unsigned on)
{
	struct vu_msg msg;

	vu_msg_init(&msg, VU_REQ_SET_VRING_ENABLE, 0, sizeof(struct vu_vring_state));
	msg.payload.state = (struct vu_vring_state){.index = q, .num = on};
	g_assert_cmpint(vu_frontend_request(f, &msg, true, NULL), ==, 0);
}

/* SET_VRING_ENABLE 0 pauses popping; what the device holds still completes. */
static void
test_enable_pause(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct vu_buf bufs[2], rel[2], eb[2];
	struct area held, a, e;
	uint16_t head, got, echo_head;
	uint32_t used;

	area_alloc(f, &held, 64);
	area_alloc(f, &a, 64);
	area_alloc(f, &e, 64);
	put_header(f, &held, ECHO_OP_HOLD, 0);
	bufs[0] = (struct vu_buf){.gpa = held.in_gpa, .len = 16};
	bufs[1] = (struct vu_buf){.gpa = held.out_gpa, .len = 4, .writable = true};
	g_assert_cmpint(vu_frontend_queue_add(f, 0, bufs, 2, false, &head), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, 100, NULL, NULL), ==, -ETIMEDOUT);
	enable(f, 0, 0);
	put_header(f, &e, ECHO_OP_ECHO, 0);
	eb[0] = (struct vu_buf){.gpa = e.in_gpa, .len = 16 + 8};
	eb[1] = (struct vu_buf){.gpa = e.out_gpa, .len = 8, .writable = true};
	g_assert_cmpint(vu_frontend_queue_add(f, 0, eb, 2, false, &echo_head), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, 200, NULL, NULL), ==, -ETIMEDOUT);
	enable(f, 0, 1);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, &got, &used), ==, 0);
	g_assert_cmpuint(got, ==, echo_head);
	g_assert_cmpuint(used, ==, 8);
	put_header(f, &a, ECHO_OP_RELEASE, 0);
	rel[0] = (struct vu_buf){.gpa = a.in_gpa, .len = 16};
	rel[1] = (struct vu_buf){.gpa = a.out_gpa, .len = 4, .writable = true};
	g_assert_cmpint(vu_frontend_queue_add(f, 0, rel, 2, false, NULL), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, &got, &used), ==, 0);
	g_assert_cmpuint(got, ==, head);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, NULL, NULL), ==, 0);
	g_mutex_lock(&d->lock);
	g_assert_cmpuint(d->queue_stops, ==, 0);
	g_assert_cmpuint(d->stale_completions, ==, 0);
	g_mutex_unlock(&d->lock);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_unsupported_request(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct vu_msg msg;
	struct area a;

	/* Well-formed requests the backend does not implement are refused, not fatal. */
	vu_msg_init(&msg, 200, 0, 0);
	g_assert_cmpint(vu_frontend_request(f, &msg, true, NULL), ==, -EIO);
	vu_msg_init(&msg, VU_REQ_SET_LOG_BASE, 0, 16);
	msg.fds[0] = eventfd(0, EFD_CLOEXEC);
	msg.n_fds = 1;
	g_assert_cmpint(vu_frontend_request(f, &msg, true, NULL), ==, -EIO);
	vu_msg_close_fds(&msg);
	area_alloc(f, &a, 64);
	echo(f, 0, &a, 64, 1, 1, false, 2);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_shmem(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	uint64_t sizes[VU_MAX_SHMEM], size;
	uint8_t *region, *expect = g_malloc(ECHO_MAP_LEN);
	unsigned n;
	struct area a;

	g_assert_cmpint(vu_frontend_get_shmem_config(f, sizes, &n), ==, 0);
	g_assert_cmpuint(n, ==, 1);
	g_assert_cmpuint(sizes[0], ==, ECHO_SHMEM_SIZE);
	g_assert_cmpuint(sizes[1], ==, 0);
	region = vu_frontend_shmem(f, 0, &size);
	g_assert_nonnull(region);
	g_assert_cmpuint(size, ==, ECHO_SHMEM_SIZE);
	area_alloc(f, &a, 64);

	g_assert_cmpint(control(f, &a, ECHO_OP_MAP, 65536, NULL, 0), ==, 0);
	cb_test_pattern(expect, ECHO_MAP_LEN, 65536);
	g_assert_cmpmem(region + 65536, ECHO_MAP_LEN, expect, ECHO_MAP_LEN);
	/* The mapping is shared: the device's memfd shows through, not a copy. */
	g_assert_cmpint(control(f, &a, ECHO_OP_UNMAP, 65536, NULL, 0), ==, 0);
	memset(expect, 0, ECHO_MAP_LEN);
	g_assert_cmpmem(region + 65536, ECHO_MAP_LEN, expect, ECHO_MAP_LEN);
	/* Outside the region: the library refuses before asking. */
	g_assert_cmpint(control(f, &a, ECHO_OP_MAP, ECHO_SHMEM_SIZE, NULL, 0), ==, -EINVAL);
	/* Not page aligned: the frontend refuses, through REPLY_ACK. */
	g_assert_cmpint(control(f, &a, ECHO_OP_MAP, 100, NULL, 0), ==, -EIO);
	g_free(expect);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_shmem_not_negotiated(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d,
					   all_protocol & ~((1ull << VU_PROTOCOL_F_SHMEM) |
							    (1ull << VU_PROTOCOL_F_SHARED_OBJECT)),
					   1);
	uint8_t uuid[16] = {1};
	struct area a;

	area_alloc(f, &a, 64);
	g_assert_cmpint(control(f, &a, ECHO_OP_MAP, 0, NULL, 0), ==, -EOPNOTSUPP);
	g_assert_cmpint(control(f, &a, ECHO_OP_OBJ_ADD, 0, uuid, 16), ==, -EOPNOTSUPP);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

static void
test_shared_object(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	uint8_t u1[16], u2[16];
	struct area a;

	memset(u1, 0x11, 16);
	memset(u2, 0x22, 16);
	area_alloc(f, &a, 64);
	g_assert_cmpint(control(f, &a, ECHO_OP_OBJ_ADD, 0, u1, 16), ==, 0);
	g_assert_cmpint(control(f, &a, ECHO_OP_OBJ_ADD, 0, u2, 16), ==, 0);
	g_assert_cmpuint(vu_frontend_shared_object_count(f), ==, 2);
	g_assert_true(vu_frontend_has_shared_object(f, u1));
	/* A duplicate is refused and replaces nothing. */
	g_assert_cmpint(control(f, &a, ECHO_OP_OBJ_ADD, 0, u1, 16), ==, -EIO);
	g_assert_cmpint(control(f, &a, ECHO_OP_OBJ_REMOVE, 0, u1, 16), ==, 0);
	g_assert_cmpint(control(f, &a, ECHO_OP_OBJ_REMOVE, 0, u1, 16), ==, -EIO);
	g_assert_false(vu_frontend_has_shared_object(f, u1));
	g_assert_true(vu_frontend_has_shared_object(f, u2));
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

/* ---- malformed messages ---- */

enum bad_msg {
	BAD_VERSION,
	BAD_REPLY_FLAG,
	BAD_OVERSIZED,
	BAD_SHORT_PAYLOAD,
	BAD_FEATURES_UNOFFERED,
	BAD_PROTOCOL_UNOFFERED,
	BAD_MEM_NO_REGIONS,
	BAD_MEM_FD_MISMATCH,
	BAD_MEM_BEYOND_FD,
	BAD_MEM_NOT_A_FILE,
	BAD_MEM_OVERLAP,
	BAD_MEM_UNSEALED,
	BAD_VRING_NUM_NOT_POW2,
	BAD_VRING_NUM_TOO_BIG,
	BAD_VRING_NUM_RUNNING,
	BAD_VRING_INDEX,
	BAD_VRING_ADDR_UNMAPPED,
	BAD_VRING_ADDR_MISALIGNED,
	BAD_VRING_BASE_RANGE,
	BAD_KICK_EXTRA_BITS,
	BAD_KICK_MISSING_FD,
	BAD_KICK_NOT_EVENTFD,
	BAD_CALL_NOT_EVENTFD,
	BAD_ENABLE_VALUE,
	BAD_TOO_MANY_FDS,
	BAD_CONFIG_OVERSIZED,
	BAD_BACKEND_REQ_NO_FD,
	BAD_TRUNCATED,
	N_BAD_MSG
};

static const char *const bad_msg_names[N_BAD_MSG] = {
	[BAD_VERSION] = "version",
	[BAD_REPLY_FLAG] = "reply-flag",
	[BAD_OVERSIZED] = "oversized",
	[BAD_SHORT_PAYLOAD] = "short-payload",
	[BAD_FEATURES_UNOFFERED] = "features-unoffered",
	[BAD_PROTOCOL_UNOFFERED] = "protocol-features-unoffered",
	[BAD_MEM_NO_REGIONS] = "mem-table-empty",
	[BAD_MEM_FD_MISMATCH] = "mem-table-fd-count",
	[BAD_MEM_BEYOND_FD] = "mem-table-beyond-fd",
	[BAD_MEM_NOT_A_FILE] = "mem-table-not-a-file",
	[BAD_MEM_OVERLAP] = "mem-table-overlap",
	[BAD_MEM_UNSEALED] = "mem-table-unsealed",
	[BAD_VRING_NUM_NOT_POW2] = "vring-num-not-power-of-two",
	[BAD_VRING_NUM_TOO_BIG] = "vring-num-too-big",
	[BAD_VRING_NUM_RUNNING] = "vring-num-while-running",
	[BAD_VRING_INDEX] = "vring-index",
	[BAD_VRING_ADDR_UNMAPPED] = "vring-addr-unmapped",
	[BAD_VRING_ADDR_MISALIGNED] = "vring-addr-misaligned",
	[BAD_VRING_BASE_RANGE] = "vring-base-range",
	[BAD_KICK_EXTRA_BITS] = "kick-extra-bits",
	[BAD_KICK_MISSING_FD] = "kick-missing-fd",
	[BAD_KICK_NOT_EVENTFD] = "kick-not-eventfd",
	[BAD_CALL_NOT_EVENTFD] = "call-not-eventfd",
	[BAD_ENABLE_VALUE] = "enable-value",
	[BAD_TOO_MANY_FDS] = "too-many-fds",
	[BAD_CONFIG_OVERSIZED] = "config-oversized",
	[BAD_BACKEND_REQ_NO_FD] = "backend-req-no-fd",
	[BAD_TRUNCATED] = "truncated",
};

static void
send_msg_raw(struct vu_frontend *f, struct vu_msg *m)
{
	uint8_t buf[sizeof(m->hdr) + VU_MAX_PAYLOAD];
	size_t len = sizeof(m->hdr) + MIN(m->hdr.size, VU_MAX_PAYLOAD);

	memcpy(buf, &m->hdr, sizeof(m->hdr));
	memcpy(buf + sizeof(m->hdr), &m->payload, len - sizeof(m->hdr));
	g_assert_cmpint(vu_frontend_send_raw(f, buf, len, m->fds, m->n_fds), ==, 0);
}

static void
state_msg(struct vu_msg *m, uint32_t request, uint32_t index, uint32_t num)
{
	vu_msg_init(m, request, 0, sizeof(struct vu_vring_state));
	m->payload.state = (struct vu_vring_state){.index = index, .num = num};
}

/* Sends the malformed message (or sequence ending in one) for kind. */
static void
send_bad(struct vu_frontend *f, enum bad_msg kind)
{
	struct vu_msg m;
	int fds[VU_MAX_FDS + 1];

	vu_msg_init(&m, VU_REQ_GET_FEATURES, 0, 0);
	switch (kind) {
	case BAD_VERSION:
		m.hdr.flags = 2;
		break;
	case BAD_REPLY_FLAG:
		m.hdr.flags |= VU_FLAG_REPLY;
		break;
	case BAD_OVERSIZED: {
		struct vu_header h = {.request = VU_REQ_SET_FEATURES, .flags = 1, .size = 1u << 24};
		g_assert_cmpint(vu_frontend_send_raw(f, &h, sizeof(h), NULL, 0), ==, 0);
		return;
	}
	case BAD_SHORT_PAYLOAD:
		vu_msg_init(&m, VU_REQ_SET_FEATURES, 0, 4);
		break;
	case BAD_FEATURES_UNOFFERED:
		vu_msg_init(&m, VU_REQ_SET_FEATURES, 0, 8);
		m.payload.u64 = (1ull << 60) | (1ull << VIRTIO_F_VERSION_1);
		break;
	case BAD_PROTOCOL_UNOFFERED:
		vu_msg_init(&m, VU_REQ_SET_PROTOCOL_FEATURES, 0, 8);
		m.payload.u64 = 1ull << 1; /* LOG_SHMFD */
		break;
	case BAD_MEM_NO_REGIONS:
		vu_msg_init(&m, VU_REQ_SET_MEM_TABLE, 0, 8);
		break;
	case BAD_MEM_FD_MISMATCH:
	case BAD_MEM_BEYOND_FD:
	case BAD_MEM_NOT_A_FILE:
	case BAD_MEM_OVERLAP: {
		unsigned n = kind == BAD_MEM_BEYOND_FD || kind == BAD_MEM_NOT_A_FILE ? 1 : 2;
		vu_msg_init(&m, VU_REQ_SET_MEM_TABLE, 0, 8 + n * 32);
		m.payload.mem.n_regions = n;
		for (unsigned i = 0; i < n; i++) {
			m.payload.mem.regions[i] = (struct vu_mem_region){
				.gpa = i * 4096ull,
				.size = 4096,
				.uaddr = 0x100000 + i * 0x10000ull,
			};
		}
		if (kind == BAD_MEM_OVERLAP)
			m.payload.mem.regions[1].gpa = 100;
		if (kind == BAD_MEM_BEYOND_FD)
			m.payload.mem.regions[0].size = RAM_SIZE * 2ull;
		m.n_fds = kind == BAD_MEM_FD_MISMATCH ? 1 : n;
		for (unsigned i = 0; i < m.n_fds; i++)
			m.fds[i] = kind == BAD_MEM_NOT_A_FILE
					   ? eventfd(0, EFD_CLOEXEC)
					   : fcntl(vu_frontend_ram_fd(f), F_DUPFD_CLOEXEC, 0);
		break;
	}
	case BAD_MEM_UNSEALED:
		vu_msg_init(&m, VU_REQ_SET_MEM_TABLE, 0, 8 + 32);
		m.payload.mem.n_regions = 1;
		m.payload.mem.regions[0] = (struct vu_mem_region){.size = 65536, .uaddr = 0x100000};
		m.fds[0] = cb_test_memfd_unsealed("unsealed", NULL, 65536);
		m.n_fds = 1;
		break;
	case BAD_VRING_NUM_NOT_POW2:
		state_msg(&m, VU_REQ_SET_VRING_NUM, 1, 100);
		break;
	case BAD_VRING_NUM_TOO_BIG:
		state_msg(&m, VU_REQ_SET_VRING_NUM, 1, ECHO_MAX_QUEUE * 2);
		break;
	case BAD_VRING_NUM_RUNNING:
		state_msg(&m, VU_REQ_SET_VRING_NUM, 0, 16);
		break;
	case BAD_VRING_INDEX:
		state_msg(&m, VU_REQ_SET_VRING_NUM, ECHO_N_QUEUES, 16);
		break;
	case BAD_VRING_ADDR_UNMAPPED:
	case BAD_VRING_ADDR_MISALIGNED: {
		uint64_t gpa;
		uintptr_t base;

		g_assert_cmpint(vu_frontend_alloc(f, 4096, 4096, &gpa), ==, 0);
		base = (uintptr_t)vu_frontend_ram(f, gpa, 4096);
		state_msg(&m, VU_REQ_SET_VRING_NUM, 1, 16);
		send_msg_raw(f, &m);
		vu_msg_init(&m, VU_REQ_SET_VRING_ADDR, 0, sizeof(struct vu_vring_addr));
		m.payload.addr = (struct vu_vring_addr){
			.index = 1,
			.desc = base + (kind == BAD_VRING_ADDR_MISALIGNED ? 8 : 0),
			.avail = base + 1024,
			.used = kind == BAD_VRING_ADDR_UNMAPPED ? base + RAM_SIZE * 4ull
								: base + 2048,
		};
		send_msg_raw(f, &m);
		vu_msg_init(&m, VU_REQ_SET_VRING_KICK, 0, 8);
		m.payload.u64 = 1;
		m.fds[0] = eventfd(0, EFD_CLOEXEC);
		m.n_fds = 1;
		send_msg_raw(f, &m);
		vu_msg_close_fds(&m);
		state_msg(&m, VU_REQ_SET_VRING_ENABLE, 1, 1);
		break;
	}
	case BAD_VRING_BASE_RANGE:
		state_msg(&m, VU_REQ_SET_VRING_BASE, 1, 70000);
		break;
	case BAD_KICK_EXTRA_BITS:
		vu_msg_init(&m, VU_REQ_SET_VRING_KICK, 0, 8);
		m.payload.u64 = 1 | (1ull << 20);
		m.fds[0] = eventfd(0, EFD_CLOEXEC);
		m.n_fds = 1;
		break;
	case BAD_KICK_MISSING_FD:
		vu_msg_init(&m, VU_REQ_SET_VRING_KICK, 0, 8);
		m.payload.u64 = 1;
		break;
	case BAD_KICK_NOT_EVENTFD:
	case BAD_CALL_NOT_EVENTFD: {
		int p[2];

		/* A pipe's read end: read would block, EOF would wake epoll forever. */
		g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
		close(p[1]);
		vu_msg_init(&m,
			    kind == BAD_KICK_NOT_EVENTFD ? VU_REQ_SET_VRING_KICK
							 : VU_REQ_SET_VRING_CALL,
			    0, 8);
		m.payload.u64 = 1;
		m.fds[0] = p[0];
		m.n_fds = 1;
		break;
	}
	case BAD_ENABLE_VALUE:
		state_msg(&m, VU_REQ_SET_VRING_ENABLE, 0, 7);
		break;
	case BAD_TOO_MANY_FDS:
		for (unsigned i = 0; i < G_N_ELEMENTS(fds); i++)
			fds[i] = eventfd(0, EFD_CLOEXEC);
		vu_msg_init(&m, VU_REQ_GET_FEATURES, 0, 0);
		{
			uint8_t buf[12];
			memcpy(buf, &m.hdr, 12);
			g_assert_cmpint(vu_frontend_send_raw(f, buf, 12, fds, G_N_ELEMENTS(fds)),
					==, 0);
		}
		for (unsigned i = 0; i < G_N_ELEMENTS(fds); i++)
			close(fds[i]);
		return;
	case BAD_CONFIG_OVERSIZED:
		vu_msg_init(&m, VU_REQ_GET_CONFIG, 0, VU_CONFIG_HDR_SIZE + 200);
		m.payload.config.offset = 100;
		m.payload.config.size = 200;
		break;
	case BAD_BACKEND_REQ_NO_FD:
		vu_msg_init(&m, VU_REQ_SET_BACKEND_REQ_FD, 0, 0);
		break;
	case BAD_TRUNCATED: {
		struct vu_header h = {.request = VU_REQ_SET_FEATURES, .flags = 1, .size = 8};
		uint8_t buf[16] = {0};
		memcpy(buf, &h, sizeof(h));
		/* Four bytes of the eight promised, then silence. */
		g_assert_cmpint(vu_frontend_send_raw(f, buf, 16, NULL, 0), ==, 0);
		return;
	}
	case N_BAD_MSG:
		g_assert_not_reached();
	}
	send_msg_raw(f, &m);
	vu_msg_close_fds(&m);
}

static void
test_bad_message(const void *data)
{
	enum bad_msg kind = GPOINTER_TO_UINT(data);
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	int error;

	send_bad(f, kind);
	g_assert_cmpint(vu_frontend_wait_hangup(f, 4 * VU_BACKEND_TIMEOUT_MS), ==, 0);
	error = echo_device_wait_ended(d, 1);
	g_assert_cmpint(error, <, 0);
	if (kind == BAD_OVERSIZED)
		g_assert_cmpint(error, ==, -EMSGSIZE);
	else if (kind == BAD_TRUNCATED)
		g_assert_cmpint(error, ==, -ETIMEDOUT);
	else
		g_assert_cmpint(error, ==, -EBADMSG);
	vu_frontend_free(f);
	assert_serves_next(d);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

/* ---- malformed rings ---- */

enum bad_ring {
	RING_LOOP,
	RING_SELF_LOOP,
	RING_HEAD_RANGE,
	RING_NEXT_RANGE,
	RING_ADDRESS,
	RING_ADDRESS_WRAP,
	RING_ADDRESS_PARTLY,
	RING_ORDER,
	RING_ORDER_INDIRECT,
	RING_INDIRECT_TOO_LONG,
	RING_INDIRECT_NESTED,
	RING_INDIRECT_NEXT,
	RING_INDIRECT_SIZE,
	RING_INDIRECT_ADDRESS,
	RING_INDIRECT_LOOP,
	RING_AVAIL_IDX,
	N_BAD_RING
};

static const char *const bad_ring_names[N_BAD_RING] = {
	[RING_LOOP] = "loop",
	[RING_SELF_LOOP] = "self-loop",
	[RING_HEAD_RANGE] = "head-out-of-range",
	[RING_NEXT_RANGE] = "next-out-of-range",
	[RING_ADDRESS] = "address-unmapped",
	[RING_ADDRESS_WRAP] = "address-wraps",
	[RING_ADDRESS_PARTLY] = "address-partly-unmapped",
	[RING_ORDER] = "readable-after-writable",
	[RING_ORDER_INDIRECT] = "readable-after-writable-indirect",
	[RING_INDIRECT_TOO_LONG] = "indirect-longer-than-queue",
	[RING_INDIRECT_NESTED] = "indirect-nested",
	[RING_INDIRECT_NEXT] = "indirect-with-next",
	[RING_INDIRECT_SIZE] = "indirect-size",
	[RING_INDIRECT_ADDRESS] = "indirect-unmapped",
	[RING_INDIRECT_LOOP] = "indirect-loop",
	[RING_AVAIL_IDX] = "avail-index-jump",
};

static struct vring_desc
desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	return (struct vring_desc){.addr = htole64(addr),
				   .len = htole32(len),
				   .flags = htole16(flags),
				   .next = htole16(next)};
}

static void
make_bad_ring(struct vu_frontend *f, enum bad_ring kind, const struct area *a)
{
	struct vring_desc *t = vu_frontend_queue_desc(f, 0);
	struct vring_desc *ind;
	uint64_t ind_gpa;
	uint16_t head = 0;
	const uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE, I = VRING_DESC_F_INDIRECT;

	g_assert_cmpint(vu_frontend_alloc(f, 16 * (QSIZE + 2), 16, &ind_gpa), ==, 0);
	ind = vu_frontend_ram(f, ind_gpa, 16 * (QSIZE + 2));
	put_header(f, a, ECHO_OP_ECHO, 0);
	switch (kind) {
	case RING_LOOP:
		t[0] = desc(a->in_gpa, 16, N, 1);
		t[1] = desc(a->in_gpa, 16, N, 2);
		t[2] = desc(a->in_gpa, 16, N, 0);
		break;
	case RING_SELF_LOOP:
		t[0] = desc(a->in_gpa, 16, N, 0);
		break;
	case RING_HEAD_RANGE:
		head = QSIZE + 3;
		break;
	case RING_NEXT_RANGE:
		t[0] = desc(a->in_gpa, 16, N, 500);
		break;
	case RING_ADDRESS:
		t[0] = desc(RAM_SIZE + 4096ull, 16, 0, 0);
		break;
	case RING_ADDRESS_WRAP:
		t[0] = desc(UINT64_MAX - 8, 64, 0, 0);
		break;
	case RING_ADDRESS_PARTLY:
		t[0] = desc(RAM_SIZE - 8ull, 64, 0, 0);
		break;
	case RING_ORDER:
		t[0] = desc(a->in_gpa, 16, N, 1);
		t[1] = desc(a->out_gpa, 16, N | W, 2);
		t[2] = desc(a->in_gpa, 16, 0, 0);
		break;
	case RING_ORDER_INDIRECT:
		ind[0] = desc(a->out_gpa, 16, N | W, 1);
		ind[1] = desc(a->in_gpa, 16, 0, 0);
		t[0] = desc(ind_gpa, 32, I, 0);
		break;
	case RING_INDIRECT_TOO_LONG:
		for (unsigned i = 0; i < QSIZE + 1; i++)
			ind[i] = desc(a->in_gpa, 16, i < QSIZE ? N : 0, i + 1);
		t[0] = desc(ind_gpa, 16 * (QSIZE + 1), I, 0);
		break;
	case RING_INDIRECT_NESTED:
		ind[0] = desc(a->in_gpa, 16, N, 1);
		ind[1] = desc(ind_gpa, 32, I, 0);
		t[0] = desc(ind_gpa, 32, I, 0);
		break;
	case RING_INDIRECT_NEXT:
		ind[0] = desc(a->in_gpa, 16, 0, 0);
		t[0] = desc(ind_gpa, 16, I | N, 1);
		t[1] = desc(a->out_gpa, 16, W, 0);
		break;
	case RING_INDIRECT_SIZE:
		ind[0] = desc(a->in_gpa, 16, 0, 0);
		t[0] = desc(ind_gpa, 20, I, 0);
		break;
	case RING_INDIRECT_ADDRESS:
		t[0] = desc(RAM_SIZE - 16ull, 32, I, 0);
		break;
	case RING_INDIRECT_LOOP:
		ind[0] = desc(a->in_gpa, 16, N, 1);
		ind[1] = desc(a->in_gpa, 16, N, 0);
		t[0] = desc(ind_gpa, 32, I, 0);
		break;
	case RING_AVAIL_IDX:
		g_assert_cmpint(vu_frontend_queue_set_avail_idx(f, 0, QSIZE + 5), ==, 0);
		return;
	case N_BAD_RING:
		g_assert_not_reached();
	}
	g_assert_cmpint(vu_frontend_queue_publish_raw(f, 0, head), ==, 0);
}

static void
test_bad_ring(const void *data)
{
	enum bad_ring kind = GPOINTER_TO_UINT(data);
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct area a;

	area_alloc(f, &a, 64);
	echo(f, 0, &a, 64, 1, 1, false, 1);
	make_bad_ring(f, kind, &a);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_wait_hangup(f, 2 * VU_BACKEND_TIMEOUT_MS), ==, 0);
	g_assert_cmpint(echo_device_wait_ended(d, 1), ==, -EIO);
	vu_frontend_free(f);
	assert_serves_next(d);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

/* A chain exactly as long as the queue is fine, directly or indirectly. */
static void
test_ring_limits(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct vring_desc *t = vu_frontend_queue_desc(f, 0);
	struct area a;
	uint32_t used;

	area_alloc(f, &a, 64);
	put_header(f, &a, ECHO_OP_ECHO, 0);
	for (unsigned i = 0; i < QSIZE; i++) {
		uint16_t flags =
			(i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0) | (i >= 2 ? VRING_DESC_F_WRITE : 0);
		uint64_t addr = i == 0 ? a.in_gpa : i == 1 ? a.in_gpa + 16 : a.out_gpa;
		t[i] = desc(addr, i == 0 ? 16 : 1, flags, i + 1);
	}
	g_assert_cmpint(vu_frontend_queue_publish_raw(f, 0, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_kick(f, 0), ==, 0);
	g_assert_cmpint(vu_frontend_queue_wait(f, 0, TIMEOUT_MS, NULL, &used), ==, 0);
	g_assert_cmpuint(used, ==, 1);
	vu_frontend_free(f);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
}

/* ---- lifecycle ---- */

static struct vu_backend *sigterm_backend;

static void
on_sigterm(int sig)
{
	vu_backend_stop(sigterm_backend);
}

static void
test_sigterm(void)
{
	struct echo_device *d = echo_device_start();
	struct vu_frontend *f = fe_connect(d, all_protocol, 1);
	struct sigaction sa = {.sa_handler = on_sigterm}, old;

	sigterm_backend = d->backend;
	g_assert_cmpint(sigaction(SIGTERM, &sa, &old), ==, 0);
	g_assert_cmpint(kill(getpid(), SIGTERM), ==, 0);
	/* The backend's loop returns 0, with a frontend still connected. */
	g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(d->thread)), ==, 0);
	sigaction(SIGTERM, &old, NULL);
	vu_frontend_free(f);
	/* Freeing the backend tears the connection down. */
	vu_backend_free(d->backend);
	d->backend = NULL;
	close(d->defer_fd);
	g_assert_cmpint(echo_device_wait_ended(d, 1), ==, 0);
	g_assert_false(g_file_test(d->path, G_FILE_TEST_EXISTS));
	g_rmdir(d->dir);
	g_free(d->dir);
	g_free(d->path);
	g_mutex_clear(&d->lock);
	g_cond_clear(&d->cond);
	g_free(d);
}

static void
drop(void *data, unsigned queue, struct vu_elem *elem)
{
	vu_elem_free(elem);
}

static void
test_adopt(void)
{
	struct vu_backend_device dev = {.n_queues = 1, .handle = NULL};
	struct echo_device *d;
	struct vu_frontend *f;
	struct vu_backend *b;
	struct area a;
	int sv[2];

	/* Argument checks. */
	g_assert_cmpint(vu_backend_new(&dev, NULL, &b), ==, -EINVAL);
	dev.n_queues = 0;
	g_assert_cmpint(vu_backend_new(&dev, NULL, &b), ==, -EINVAL);

	/* A live socket is not taken over; a stale one is. */
	d = echo_device_start();
	dev = (struct vu_backend_device){.n_queues = 1, .handle = drop};
	g_assert_cmpint(vu_backend_new(&dev, NULL, &b), ==, 0);
	g_assert_cmpint(vu_backend_listen(b, d->path), ==, -EADDRINUSE);
	g_assert_cmpint(echo_device_stop(d), ==, 0);
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		char *dir = g_dir_make_tmp("cb-vu-XXXXXX", NULL);
		char *path = g_build_filename(dir, "stale.sock", NULL);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
		g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
		close(fd); /* bound, never listened: stale */
		g_assert_cmpint(vu_backend_listen(b, path), ==, 0);
		vu_backend_free(b);
		g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
		g_rmdir(dir);
		g_free(path);
		g_free(dir);
	}

	/* The echo device served over a socketpair instead of a listening socket. */
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	d = echo_device_start_adopted(sv[0]);
	g_assert_cmpint(vu_frontend_new(sv[1], RAM_SIZE, &f), ==, 0);
	g_assert_cmpint(vu_frontend_negotiate(f, 0, all_protocol), ==, 0);
	g_assert_cmpint(vu_frontend_queue_setup(f, 0, 16), ==, 0);
	area_alloc(f, &a, 128);
	echo(f, 0, &a, 128, 1, 1, false, 1);
	vu_frontend_free(f);
	/* Without a listening socket the loop ends with the connection (-ECONNRESET). */
	g_assert_cmpint(echo_device_wait_ended(d, 1), ==, 0);
	g_assert_cmpint(echo_device_stop(d), ==, -ECONNRESET);
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	g_test_init(&argc, &argv, NULL);
	cb_test_add("/vhost-user/backend/negotiate", test_negotiate);
	cb_test_add("/vhost-user/backend/config", test_config);
	cb_test_add("/vhost-user/backend/many-requests", test_many_requests);
	cb_test_add("/vhost-user/backend/many-requests-no-event-idx",
		    test_many_requests_no_event_idx);
	cb_test_add("/vhost-user/backend/full-ring", test_in_flight);
	cb_test_add("/vhost-user/backend/indirect", test_indirect);
	cb_test_add("/vhost-user/backend/multi-region", test_multi_region);
	cb_test_add("/vhost-user/backend/shared-ram", test_shared_ram);
	cb_test_add("/vhost-user/backend/reconnect", test_reconnect);
	cb_test_add("/vhost-user/backend/stop-ring", test_stop_ring);
	cb_test_add("/vhost-user/backend/unsupported-request", test_unsupported_request);
	cb_test_add("/vhost-user/backend/reset-owner", test_reset_owner);
	cb_test_add("/vhost-user/backend/enable-pause", test_enable_pause);
	cb_test_add("/vhost-user/backend/deferred-completion", test_deferred);
	cb_test_add("/vhost-user/backend/gpu-set-socket", test_gpu_socket);
	cb_test_add("/vhost-user/backend/mem-table-in-flight", test_mem_table_in_flight);
	cb_test_add("/vhost-user/backend/shmem", test_shmem);
	cb_test_add("/vhost-user/backend/shmem-not-negotiated", test_shmem_not_negotiated);
	cb_test_add("/vhost-user/backend/shared-object", test_shared_object);
	cb_test_add("/vhost-user/backend/ring-limits", test_ring_limits);
	cb_test_add("/vhost-user/backend/sigterm", test_sigterm);
	cb_test_add("/vhost-user/backend/adopt", test_adopt);
	for (unsigned i = 0; i < N_BAD_MSG; i++) {
		char *path =
			g_strdup_printf("/vhost-user/backend/bad-message/%s", bad_msg_names[i]);
		cb_test_add_data(path, GUINT_TO_POINTER(i), test_bad_message);
		g_free(path);
	}
	for (unsigned i = 0; i < N_BAD_RING; i++) {
		char *path = g_strdup_printf("/vhost-user/backend/bad-ring/%s", bad_ring_names[i]);
		cb_test_add_data(path, GUINT_TO_POINTER(i), test_bad_ring);
		g_free(path);
	}
	return g_test_run();
}
